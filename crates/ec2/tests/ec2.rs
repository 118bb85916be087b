//! The embedded EC2 against a real embedded cluster (in process): instances boot as Nodes
//! and go with their pods, node groups scale out and in with a drain, spot instances are
//! warned and taken back, and a restarted EC2 adopts its running instances' nodes.
//!
//! Every wait is on an event (a watch or an EC2 event), never on the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_cluster::registry::{EventType, Resource};
use sparkyard_cluster::scheduling::node::CapacityType;
use sparkyard_cluster::scheduling::{NodeConfig, Taint, TaintEffect};
use sparkyard_cluster::{Client, Cluster, ClusterConfig};
use sparkyard_ec2::{
    pick_victims, Ec2, Ec2Config, Ec2Error, Ec2Event, GroupSpec, GroupStatus, InstanceState,
    LaunchRequest,
};

const NODES: Resource = Resource::new("", "nodes");
const PODS: Resource = Resource::new("", "pods");

async fn cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let n = std::process::id() ^ std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.11.{}.{}:443", n % 250, 2 + (n >> 8) % 250)
            .parse()
            .unwrap(),
        pod_cidr: format!("127.{}.0.0/16", 20 + (n >> 4) % 200),
        persistence: false,
        ..ClusterConfig::default()
    };
    let cluster = sparkyard_cluster::cluster::start(config, dir.path())
        .await
        .unwrap();
    (cluster, dir)
}

fn ec2(cluster: &Cluster, dir: &std::path::Path, spot_notice: Duration) -> Ec2 {
    let mut config = Ec2Config::new("us-east-2", "test", dir.join("ec2/state.json"));
    // Boots are quick here; the delay still separates `pending` from `running`.
    config.boot_delay = Duration::from_millis(100);
    config.spot_notice = spot_notice;
    Ec2::new(cluster.client(), cluster.kubelet(), config).unwrap()
}

/// Waits until `check` holds of the named object (`None`: it does not exist), watching
/// the resource for changes.
async fn wait_object(
    client: &Client,
    resource: Resource,
    ns: &str,
    name: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Arc<Value>> {
    loop {
        let revision = client.revision();
        let current = client.get(resource, ns, name);
        if check(current.as_deref()) {
            return current;
        }
        let mut stream = Box::pin(client.watch(resource, Some(revision)).unwrap());
        while let Some(event) = stream.next().await {
            if event.object["metadata"]["name"] == name {
                break;
            }
        }
    }
}

/// Waits until `check` holds of the group, re-checking on every EC2 event and Node change.
async fn wait_group(
    ec2: &Ec2,
    client: &Client,
    name: &str,
    check: impl Fn(&GroupStatus) -> bool,
) -> GroupStatus {
    let mut events = ec2.subscribe();
    loop {
        let revision = client.revision();
        if let Some(status) = ec2.group(name) {
            if check(&status) {
                return status;
            }
        }
        let mut nodes = Box::pin(client.watch(NODES, Some(revision)).unwrap());
        tokio::select! {
            _ = events.recv() => {}
            _ = nodes.next() => {}
        }
    }
}

async fn next_state(
    events: &mut tokio::sync::broadcast::Receiver<Ec2Event>,
    id: &str,
) -> InstanceState {
    loop {
        if let Ec2Event::StateChange { instance_id, state } = events.recv().await.unwrap() {
            if instance_id == id {
                return state;
            }
        }
    }
}

fn labels(node: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(node["metadata"]["labels"].clone()).unwrap()
}

fn simulated_pod(name: &str, node: &str, extra: Value) -> Value {
    let mut pod = json!({
        "metadata": {"name": name, "annotations": {}},
        "spec": {"nodeName": node,
                 "restartPolicy": "Never",
                 "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "main", "image": "busybox"}]},
    });
    if let Some(annotations) = extra.get("annotations") {
        pod["metadata"]["annotations"] = annotations.clone();
    }
    pod
}

fn running(pod: Option<&Value>) -> bool {
    pod.is_some_and(|p| p["status"]["phase"] == "Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_boots_as_a_node_and_goes_with_its_pods() {
    let (cluster, dir) = cluster().await;
    let client = cluster.client();
    let ec2 = ec2(&cluster, dir.path(), Duration::from_secs(120));
    let mut events = ec2.subscribe();

    let unknown = ec2.run_instance(LaunchRequest {
        instance_type: "q9.huge".into(),
        zone: "us-east-2a".into(),
        ..Default::default()
    });
    assert!(matches!(unknown, Err(Ec2Error::InvalidInstanceType(_))));
    let wrong_zone = ec2.run_instance(LaunchRequest {
        instance_type: "m5.large".into(),
        zone: "eu-west-1a".into(),
        ..Default::default()
    });
    assert!(matches!(wrong_zone, Err(Ec2Error::InvalidParameter(_))));

    // A Karpenter-style launch: its labels, and the taint it registers with.
    let unregistered = Taint {
        key: "karpenter.sh/unregistered".into(),
        value: String::new(),
        effect: TaintEffect::NoExecute,
    };
    let instance = ec2
        .run_instance(LaunchRequest {
            instance_type: "m5.large".into(),
            zone: "us-east-2b".into(),
            capacity_type: CapacityType::Spot,
            labels: BTreeMap::from([
                ("karpenter.sh/capacity-type".into(), "spot".into()),
                ("karpenter.sh/nodepool".into(), "default".into()),
            ]),
            taints: vec![unregistered.clone()],
            simulated: true,
            tags: BTreeMap::from([("karpenter.sh/nodepool".into(), "default".into())]),
        })
        .unwrap();
    assert_eq!(instance.state, InstanceState::Pending);
    let id = instance.instance_id.clone();
    let node_name = instance.node_name.clone();
    let [a, b, c, d]: [u8; 4] = instance
        .private_ip
        .parse::<std::net::Ipv4Addr>()
        .unwrap()
        .octets();
    assert_eq!((a, b), (192, 168));
    assert_eq!(
        node_name,
        format!("ip-192-168-{c}-{d}.us-east-2.compute.internal")
    );
    assert!(id.starts_with("i-") && id.len() == 19, "{id}");
    assert_eq!(next_state(&mut events, &id).await, InstanceState::Pending);
    assert_eq!(next_state(&mut events, &id).await, InstanceState::Running);

    let node = wait_object(&client, NODES, "", &node_name, |n| n.is_some())
        .await
        .unwrap();
    assert_eq!(
        node["spec"]["providerID"],
        format!("aws:///us-east-2b/{id}")
    );
    let l = labels(&node);
    assert_eq!(l["topology.kubernetes.io/zone"], "us-east-2b");
    assert_eq!(l["topology.kubernetes.io/region"], "us-east-2");
    assert_eq!(l["node.kubernetes.io/instance-type"], "m5.large");
    assert_eq!(l["karpenter.sh/capacity-type"], "spot");
    assert!(
        !l.keys().any(|k| k.starts_with("eks.amazonaws.com/")),
        "not a node group node: {l:?}"
    );
    assert_eq!(
        node["spec"]["taints"][0]["key"],
        "karpenter.sh/unregistered"
    );
    assert_eq!(node["spec"]["taints"][0]["effect"], "NoExecute");
    let mut expected = NodeConfig::default();
    sparkyard_instance_types::get("m5.large")
        .unwrap()
        .apply_to(&mut expected);
    assert_eq!(node["status"]["allocatable"]["cpu"], expected.cpu.as_str());
    assert_eq!(
        node["status"]["allocatable"]["memory"],
        expected.memory.as_str()
    );
    assert_eq!(
        node["status"]["allocatable"]["pods"],
        expected.pods.to_string()
    );
    assert!(cluster.kubelet().serves(&node_name));
    assert_eq!(ec2.instance_by_node(&node_name).unwrap().instance_id, id);

    // A pod on it runs (simulated), and is collected once the node is gone.
    client
        .create(
            PODS,
            "default",
            simulated_pod("on-spot", &node_name, json!({})),
        )
        .unwrap();
    wait_object(&client, PODS, "default", "on-spot", running).await;
    let revision = client.revision();
    let terminated = ec2.terminate_instance(&id).unwrap();
    assert_eq!(terminated.state, InstanceState::Terminated);
    assert_eq!(
        next_state(&mut events, &id).await,
        InstanceState::ShuttingDown
    );
    assert_eq!(
        next_state(&mut events, &id).await,
        InstanceState::Terminated
    );
    wait_object(&client, NODES, "", &node_name, |n| n.is_none()).await;
    wait_object(&client, PODS, "default", "on-spot", |p| p.is_none()).await;
    // Its last write before the deletion was PodGC's.
    let mut stream = Box::pin(client.watch(PODS, Some(revision)).unwrap());
    let mut last = None;
    while let Some(event) = stream.next().await {
        if event.object["metadata"]["name"] != "on-spot" {
            continue;
        }
        if event.event_type == EventType::Deleted {
            break;
        }
        last = Some(event.object.clone());
    }
    let last = last.unwrap();
    let gc = last["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap();
    assert_eq!(gc["reason"], "DeletionByPodGC");
    assert_eq!(last["status"]["phase"], "Failed");
    assert!(!cluster.kubelet().serves(&node_name));
    assert_eq!(ec2.instance(&id).unwrap().state, InstanceState::Terminated);
    assert!(ec2.instance_by_node(&node_name).is_none());
    // Terminating twice is harmless.
    assert_eq!(
        ec2.terminate_instance(&id).unwrap().state,
        InstanceState::Terminated
    );
}

fn group_spec(desired: u32) -> GroupSpec {
    GroupSpec {
        name: "eks-spark-ng".into(),
        nodegroup: "spark-ng".into(),
        instance_types: vec!["m5.xlarge".into()],
        capacity_type: CapacityType::OnDemand,
        min: 1,
        max: 3,
        desired,
        labels: BTreeMap::from([("intent".into(), "spark".into())]),
        taints: vec![],
        zones: vec![
            "us-east-2a".into(),
            "us-east-2b".into(),
            "us-east-2c".into(),
        ],
        simulated: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_group_scales_out_and_in_with_a_drain() {
    let (cluster, dir) = cluster().await;
    let client = cluster.client();
    let ec2 = ec2(&cluster, dir.path(), Duration::from_secs(120));
    let invalid = GroupSpec {
        desired: 4,
        ..group_spec(1)
    };
    assert!(matches!(
        ec2.put_group(invalid),
        Err(Ec2Error::InvalidGroup(_))
    ));

    ec2.put_group(group_spec(1)).unwrap();
    let one = wait_group(&ec2, &client, "eks-spark-ng", |g| g.settled).await;
    assert_eq!(one.instances.len(), 1);
    ec2.put_group(group_spec(3)).unwrap();
    let three = wait_group(&ec2, &client, "eks-spark-ng", |g| g.settled).await;
    assert_eq!(three.ready_nodes, 3);
    let zones: BTreeSet<&str> = three.instances.iter().map(|i| i.zone.as_str()).collect();
    assert_eq!(zones.len(), 3, "one per zone: {zones:?}");
    for instance in &three.instances {
        let node = client.get(NODES, "", &instance.node_name).unwrap();
        let l = labels(&node);
        assert_eq!(l["eks.amazonaws.com/nodegroup"], "spark-ng");
        assert_eq!(l["eks.amazonaws.com/capacityType"], "ON_DEMAND");
        assert_eq!(l["intent"], "spark");
        assert!(!l.contains_key("karpenter.sh/capacity-type"), "{l:?}");
        assert_eq!(
            instance.tags["aws:autoscaling:groupName"], "eks-spark-ng",
            "membership is the Auto Scaling tag"
        );
    }

    // One pod per node; on one node to be removed, a do-not-disrupt pod that finishes on
    // its own (simulated for 2 s): the drain waits for it instead of evicting it.
    let victims = pick_victims(&three.instances, 2);
    let mut pod_of = BTreeMap::new();
    for (n, instance) in three.instances.iter().enumerate() {
        let name = format!("work-{n}");
        client
            .create(
                PODS,
                "default",
                simulated_pod(&name, &instance.node_name, json!({})),
            )
            .unwrap();
        wait_object(&client, PODS, "default", &name, running).await;
        pod_of.insert(instance.instance_id.clone(), name);
    }
    let protected_node = three
        .instances
        .iter()
        .find(|i| i.instance_id == victims[0])
        .unwrap()
        .node_name
        .clone();
    client
        .create(
            PODS,
            "default",
            simulated_pod(
                "protected",
                &protected_node,
                json!({"annotations": {"karpenter.sh/do-not-disrupt": "true",
                                       "sparkyard.dev/simulated-duration": "2s"}}),
            ),
        )
        .unwrap();
    // (Under load it may already have finished by the time this looks.)
    wait_object(&client, PODS, "default", "protected", |p| {
        p.is_some_and(|p| matches!(p["status"]["phase"].as_str(), Some("Running" | "Succeeded")))
    })
    .await;

    let revision = client.revision();
    let mut events = ec2.subscribe();
    ec2.put_group(group_spec(1)).unwrap();
    // Until both victims are terminated, the group never has fewer than `min` live
    // instances and the survivor is never touched.
    let mut gone = BTreeSet::new();
    while gone.len() < 2 {
        if let Ec2Event::StateChange { instance_id, state } = events.recv().await.unwrap() {
            let live = ec2.group("eks-spark-ng").unwrap().instances.len();
            assert!(live >= 1, "below min");
            if state == InstanceState::Terminated {
                assert!(
                    victims.contains(&instance_id),
                    "{instance_id} was not to go"
                );
                gone.insert(instance_id);
            }
        }
    }
    let one = wait_group(&ec2, &client, "eks-spark-ng", |g| g.settled).await;
    assert_eq!(one.instances.len(), 1);
    assert!(!victims.contains(&one.instances[0].instance_id));

    // The victims' pods were evicted (the Eviction API's condition, then deleted), the
    // protected one finished rather than being evicted, the survivor's pod still runs.
    let mut evicted = BTreeSet::new();
    let mut protected_phases = vec![];
    let mut stream = Box::pin(client.watch(PODS, Some(revision)).unwrap());
    while evicted.len() < 2 || protected_phases.last().map(String::as_str) != Some("Succeeded") {
        let event = stream.next().await.unwrap();
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        if name == "protected" {
            let disrupted = event.object["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["reason"] == "EvictionByEvictionAPI"));
            assert!(!disrupted, "a do-not-disrupt pod was evicted");
            protected_phases.push(
                event.object["status"]["phase"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
            continue;
        }
        let by_eviction = event.object["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["reason"] == "EvictionByEvictionAPI"));
        if by_eviction {
            evicted.insert(name);
        }
    }
    let expected: BTreeSet<String> = victims.iter().map(|v| pod_of[v].clone()).collect();
    assert_eq!(evicted, expected);
    let survivor_pod = &pod_of[&one.instances[0].instance_id];
    assert!(running(
        client.get(PODS, "default", survivor_pod).as_deref()
    ));

    // Deleting the group drains the rest and forgets it.
    let mut events = ec2.subscribe();
    ec2.delete_group("eks-spark-ng").unwrap();
    let last = one.instances[0].clone();
    while ec2.group("eks-spark-ng").is_some() {
        let _ = events.recv().await;
    }
    wait_object(&client, NODES, "", &last.node_name, |n| n.is_none()).await;
    assert_eq!(
        ec2.instance(&last.instance_id).unwrap().state,
        InstanceState::Terminated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_instance_is_warned_then_taken_back() {
    let (cluster, dir) = cluster().await;
    let client = cluster.client();
    let notice = Duration::from_millis(800);
    let ec2 = ec2(&cluster, dir.path(), notice);
    let mut events = ec2.subscribe();
    let launch = |capacity_type| LaunchRequest {
        instance_type: "m5.large".into(),
        zone: "us-east-2a".into(),
        capacity_type,
        simulated: true,
        ..Default::default()
    };
    let on_demand = ec2.run_instance(launch(CapacityType::OnDemand)).unwrap();
    assert!(matches!(
        ec2.send_spot_interruption(&on_demand.instance_id),
        Err(Ec2Error::IncorrectState(_))
    ));
    let spot = ec2.run_instance(launch(CapacityType::Spot)).unwrap();
    let id = spot.instance_id.clone();
    while next_state(&mut events, &id).await != InstanceState::Running {}
    wait_object(&client, NODES, "", &spot.node_name, |n| n.is_some()).await;

    let action_time = ec2.send_spot_interruption(&id).unwrap();
    loop {
        if let Ec2Event::SpotInterruptionWarning {
            instance_id,
            node_name,
            action_time: at,
        } = events.recv().await.unwrap()
        {
            assert_eq!(instance_id, id);
            assert_eq!(node_name, spot.node_name);
            assert_eq!(at, action_time);
            break;
        }
    }
    assert_eq!(ec2.instance(&id).unwrap().state, InstanceState::Running);
    assert_eq!(
        next_state(&mut events, &id).await,
        InstanceState::ShuttingDown
    );
    assert!(
        chrono::Utc::now() >= action_time,
        "taken back only at the action time"
    );
    assert_eq!(
        next_state(&mut events, &id).await,
        InstanceState::Terminated
    );
    wait_object(&client, NODES, "", &spot.node_name, |n| n.is_none()).await;
    assert_eq!(
        ec2.instance(&on_demand.instance_id).unwrap().state,
        InstanceState::Running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ec2_adopts_its_running_instances() {
    let (cluster, dir) = cluster().await;
    let client = cluster.client();
    let first = ec2(&cluster, dir.path(), Duration::from_secs(120));
    let mut events = first.subscribe();
    let instance = first
        .run_instance(LaunchRequest {
            instance_type: "m5.large".into(),
            zone: "us-east-2c".into(),
            simulated: true,
            taints: vec![Taint {
                key: "karpenter.sh/unregistered".into(),
                value: String::new(),
                effect: TaintEffect::NoExecute,
            }],
            ..Default::default()
        })
        .unwrap();
    let id = instance.instance_id.clone();
    while next_state(&mut events, &id).await != InstanceState::Running {}
    let node = wait_object(&client, NODES, "", &instance.node_name, |n| n.is_some())
        .await
        .unwrap();
    // The launcher (Karpenter) lifts the registration taint once the node is its.
    client
        .modify(
            NODES,
            "",
            &instance.node_name,
            sparkyard_cluster::Subresource::Main,
            |n| {
                n["spec"]["taints"] = json!([]);
                Ok(())
            },
        )
        .unwrap();

    // What a restart leaves: the state file and the Node object, but a kubelet that no
    // longer serves the node.
    assert!(cluster.kubelet().deregister_node(&instance.node_name));
    let second = ec2(&cluster, dir.path(), Duration::from_secs(120));
    assert_eq!(second.instance(&id).unwrap().state, InstanceState::Running);
    assert!(cluster.kubelet().serves(&instance.node_name));
    let adopted = client.get(NODES, "", &instance.node_name).unwrap();
    assert_eq!(
        adopted["metadata"]["uid"], node["metadata"]["uid"],
        "adopted, not recreated"
    );
    assert_eq!(
        adopted["spec"]["taints"],
        json!([]),
        "register-with-taints apply only to a new Node"
    );
    // Pods bound to it run again.
    client
        .create(
            PODS,
            "default",
            simulated_pod("after-restart", &instance.node_name, json!({})),
        )
        .unwrap();
    wait_object(&client, PODS, "default", "after-restart", running).await;
}
