//! The kubelet's dynamic node set (in process): a node that registers gets its Node object
//! (labels, register-with-taints) and its pods served, including pods bound before it
//! came; registering again adopts; a node that goes away has its processes killed with
//! nothing posted, and its Node object is left for the cloud layer. Mirror pods never run.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_cluster::registry::Resource;
use sparkyard_cluster::scheduling::{NodeConfig, Taint, TaintEffect};
use sparkyard_cluster::{Client, Cluster, ClusterConfig};

const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");

async fn cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let n = std::process::id() ^ std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.12.{}.{}:443", n % 250, 2 + (n >> 8) % 250)
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

/// Waits, watching the resource, until `check` holds of the named object.
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

fn running(pod: Option<&Value>) -> bool {
    pod.is_some_and(|p| p["status"]["phase"] == "Running")
}

fn pod(name: &str, node: &str, command: &[&str]) -> Value {
    json!({"metadata": {"name": name},
           "spec": {"nodeName": node, "restartPolicy": "Never",
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "busybox", "command": command}]}})
}

/// Processes on this machine whose command line ends with `argv` (the sandbox, `bwrap …
/// -- argv`, and the container's process itself).
fn pids_of(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(&wanted))
        })
        .collect()
}

/// A process's exit has no event to watch from here: poll /proc for it.
async fn until_gone(pid: u32) {
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_nodes_register_later_and_adopt_their_node() {
    let (cluster, _dir) = cluster().await;
    let client = cluster.client();
    let kubelet = cluster.kubelet();
    let names: Vec<String> = kubelet.nodes().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["sparkyard-node-1"], "the configured node");

    // Bound before its node exists: served once it registers.
    client
        .create(PODS, "default", pod("early", "late-1", &["true"]))
        .unwrap();
    let unregistered = Taint {
        key: "karpenter.sh/unregistered".into(),
        value: String::new(),
        effect: TaintEffect::NoExecute,
    };
    let late = NodeConfig {
        name: "late-1".into(),
        nodegroup: None,
        simulated: true,
        labels: [("karpenter.sh/capacity-type".to_string(), "spot".to_string())].into(),
        taints: vec![unregistered],
        ..NodeConfig::default()
    };
    kubelet.register_node(late.clone()).unwrap();
    assert!(kubelet.serves("late-1"));
    let node = client.get(NODES, "", "late-1").unwrap();
    assert_eq!(
        node["spec"]["taints"][0]["key"],
        "karpenter.sh/unregistered"
    );
    assert_eq!(
        node["metadata"]["labels"]["karpenter.sh/capacity-type"],
        "spot"
    );
    assert!(node["metadata"]["labels"]["eks.amazonaws.com/capacityType"].is_null());
    wait_object(&client, PODS, "default", "early", running).await;

    // Registering again (a restarted kubelet) adopts the Node as it is now.
    client
        .modify(
            NODES,
            "",
            "late-1",
            sparkyard_cluster::Subresource::Main,
            |n| {
                n["spec"]["taints"] = json!([]);
                Ok(())
            },
        )
        .unwrap();
    assert!(kubelet.deregister_node("late-1"));
    assert!(!kubelet.deregister_node("late-1"), "already gone");
    kubelet.register_node(late.clone()).unwrap();
    kubelet.register_node(late).unwrap();
    let adopted = client.get(NODES, "", "late-1").unwrap();
    assert_eq!(adopted["metadata"]["uid"], node["metadata"]["uid"]);
    assert_eq!(adopted["spec"]["taints"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_away_stops_its_processes_and_leaves_its_node() {
    let (cluster, _dir) = cluster().await;
    let client = cluster.client();
    let kubelet = cluster.kubelet();
    kubelet
        .register_node(NodeConfig {
            name: "dyn-1".into(),
            ..NodeConfig::default()
        })
        .unwrap();
    wait_object(&client, NODES, "", "dyn-1", |n| n.is_some()).await;

    // A mirror pod is the API's copy of a static pod: this kubelet never runs it.
    let mut mirror = pod("mirror", "dyn-1", &["sleep", "1000"]);
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
    client.create(PODS, "default", mirror).unwrap();
    let seconds = format!("{}.5", 40_000 + std::process::id() % 10_000);
    let argv = ["sleep", seconds.as_str()];
    client
        .create(PODS, "default", pod("worker", "dyn-1", &argv))
        .unwrap();
    let worker = wait_object(&client, PODS, "default", "worker", running)
        .await
        .unwrap();
    // The dispatcher saw the mirror pod before the worker and left it alone.
    let mirror = client.get(PODS, "default", "mirror").unwrap();
    assert!(mirror["status"]["podIP"].is_null(), "{mirror:#}");
    assert_ne!(mirror["status"]["phase"], "Running");

    let pids = pids_of(&argv);
    assert!(!pids.is_empty(), "the container runs here");
    assert!(kubelet.deregister_node("dyn-1"));
    for pid in pids {
        until_gone(pid).await;
    }
    // The sandbox's own child (bwrap forks before it execs the command) may not have
    // existed yet when the pids were sampled: wait for every process of the command.
    while !pids_of(&argv).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!kubelet.serves("dyn-1"));
    assert!(
        client.get(NODES, "", "dyn-1").is_some(),
        "the Node object is the cloud layer's to delete"
    );
    // A machine that is gone posts nothing: the pod still shows what it last reported.
    let after = client.get(PODS, "default", "worker").unwrap();
    assert_eq!(after["status"]["phase"], "Running");
    assert!(
        after["status"]["containerStatuses"][0]["state"]["running"].is_object(),
        "{after:#}"
    );
    assert_eq!(after["metadata"]["uid"], worker["metadata"]["uid"]);
}
