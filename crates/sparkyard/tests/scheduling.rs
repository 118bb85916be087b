//! The scheduler through the API, on multi-node layouts declared in `[[cluster.nodes]]`:
//! node selectors, required node affinity, taints and tolerations (`NoSchedule`,
//! `NoExecute`), cordon and label changes, priority order, preemption's victim choice
//! and `preemptionPolicy: Never` — with kube-rs on simulated nodes; and what `kubectl`
//! shows (`describe` with `FailedScheduling`, `get -o wide` with `NOMINATED NODE`) on a
//! real node whose victim takes its grace period to stop.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::time::{Duration, Instant};

use cluster::{kubectl, ClusterServer};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};

async fn client(server: &ClusterServer) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.kubeconfig().exists() {
        assert!(
            Instant::now() < deadline,
            "no kubeconfig:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(server.kubeconfig()).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// The seed's four priority classes (step 14), plus a non-preempting class at 300.
async fn priority_classes(client: &Client) {
    let api: Api<PriorityClass> = Api::all(client.clone());
    for (name, value, global, policy) in [
        ("critical-priority", 400, true, "PreemptLowerPriority"),
        ("realtime-priority", 300, false, "PreemptLowerPriority"),
        ("high-priority", 200, false, "PreemptLowerPriority"),
        ("low-priority", 100, false, "PreemptLowerPriority"),
        ("realtime-no-preempt", 300, false, "Never"),
    ] {
        let class: PriorityClass = serde_json::from_value(json!({
            "metadata": {"name": name}, "value": value, "globalDefault": global,
            "preemptionPolicy": policy, "description": format!("{name} ({value})")
        }))
        .unwrap();
        api.create(&PostParams::default(), &class).await.unwrap();
    }
}

/// A pod that requests `cpu` and 1Gi, with a priority class and extra spec fields.
fn pod(name: &str, class: &str, cpu: &str, extra: Value) -> Pod {
    let mut spec = json!({
        "priorityClassName": class,
        "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                        "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn on_node(node: &str) -> Value {
    json!({"nodeSelector": {"kubernetes.io/hostname": node}})
}

async fn create(pods: &Api<Pod>, p: Pod) -> Pod {
    pods.create(&PostParams::default(), &p).await.unwrap()
}

async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pod = pods
            .get_opt(name)
            .await
            .unwrap()
            .map(|p| serde_json::to_value(p).unwrap())
            .unwrap_or(Value::Null);
        if check(&pod) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "pod {name}: timed out waiting for {what}; last seen:\n{pod:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API server's clock, to the second: the `creationTimestamp` it gives a dry-run pod
/// (nothing is stored).
async fn server_now(
    pods: &Api<Pod>,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = pod("clock", "low-priority", "100m", json!({}));
    let created = pods.create(&params, &probe).await.unwrap();
    assert!(created.metadata.creation_timestamp.is_some(), "{created:?}");
    created.metadata.creation_timestamp
}

/// `scheduler_pending_pods{queue}` on sparkyard's Prometheus listener.
async fn pending_pods(server: &ClusterServer) -> std::collections::HashMap<String, f64> {
    let addr = std::fs::read_to_string(server.server.data_dir.path().join("metrics.addr"))
        .expect("metrics.addr");
    let text = reqwest::get(format!("http://{}/metrics", addr.trim()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = regex::Regex::new(r#"^scheduler_pending_pods\{queue="(\w+)"\} (\S+)$"#).unwrap();
    text.lines()
        .filter_map(|l| series.captures(l))
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect()
}

/// Waits until every pending pod has been tried and its back-off has passed: none in the
/// `active` or `backoff` queues (the scheduler updates the gauges each time it wakes, at
/// least every second while pods wait; a pod leaves `backoff` only by being due, and is
/// tried again only after a cluster change or half a minute).
async fn wait_for_backoffs_to_pass(server: &ClusterServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queues = pending_pods(server).await;
        if queues.get("active") == Some(&0.0) && queues.get("backoff") == Some(&0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pods still backing off: {queues:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn scheduled_condition(pod: &Value) -> Value {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
        .unwrap_or(Value::Null)
}

fn unschedulable_message(pod: &Value) -> Option<String> {
    let c = scheduled_condition(pod);
    (c["reason"] == "Unschedulable").then(|| c["message"].as_str().unwrap_or("").to_string())
}

async fn bound_to(pods: &Api<Pod>, name: &str, node: &str) -> Value {
    wait_pod(pods, name, &format!("bound to {node}"), |p| {
        node_of(p) == node
    })
    .await
}

async fn running(pods: &Api<Pod>, name: &str) -> Value {
    wait_pod(pods, name, "Running", |p| p["status"]["phase"] == "Running").await
}

async fn pending_with(pods: &Api<Pod>, name: &str, message: &str) -> Value {
    let pod = wait_pod(pods, name, "Unschedulable", |p| {
        unschedulable_message(p).is_some()
    })
    .await;
    assert_eq!(node_of(&pod), "", "{pod:#}");
    assert_eq!(
        unschedulable_message(&pod).as_deref(),
        Some(message),
        "PodScheduled condition of {name}"
    );
    pod
}

/// The events of `name` once one with `reason` has been recorded (the scheduler records
/// them on its writer thread, after the binding a test may already have seen).
async fn events_with(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<(String, String)> {
    use futures::StreamExt;
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let config =
        kube::runtime::watcher::Config::default().fields(&format!("involvedObject.name={name}"));
    let mut stream = std::pin::pin!(kube::runtime::watcher(api, config));
    while let Some(event) = stream.next().await {
        if let Ok(
            kube::runtime::watcher::Event::Apply(e) | kube::runtime::watcher::Event::InitApply(e),
        ) = event
        {
            if e.reason.as_deref() == Some(reason) {
                break;
            }
        }
    }
    events_of(client, ns, name).await
}

async fn events_of(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    list.items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

const SIMULATED_LAYOUT: &str = r#"
[cluster]

[[cluster.nodes]]
name = "od-a"
simulated = true
cpu = "4"
memory = "16Gi"
labels = { pool = "a" }

[[cluster.nodes]]
name = "od-b"
simulated = true
zone = "us-east-1b"
cpu = "4"
memory = "16Gi"
labels = { pool = "b" }

[[cluster.nodes]]
name = "spot-1"
simulated = true
capacity-type = "spot"
nodegroup = "spark-spot"
cpu = "4"
memory = "16Gi"
taints = [{ key = "spot", value = "true", effect = "NoSchedule" }]

[[cluster.nodes]]
name = "ml-1"
simulated = true
cpu = "4"
memory = "16Gi"
taints = [{ key = "dedicated", value = "ml", effect = "NoExecute" }]

[[cluster.nodes]]
name = "pre-1"
simulated = true
cpu = "2"
memory = "16Gi"
labels = { pool = "pre" }

[[cluster.nodes]]
name = "pre-2"
simulated = true
cpu = "2"
memory = "16Gi"
labels = { pool = "pre" }

[[cluster.nodes]]
name = "pre-3"
simulated = true
cpu = "2"
memory = "16Gi"
labels = { pool = "pre" }

[[cluster.nodes]]
name = "pre-4"
simulated = true
cpu = "2"
memory = "16Gi"
labels = { pool = "pre" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_affinity_taints_priority_and_preemption_on_simulated_nodes() {
    let server = ClusterServer::start_with_config(SIMULATED_LAYOUT);
    let client = client(&server).await;
    priority_classes(&client).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // The configured nodes are Node objects with the declared shape.
    let list = nodes.list(&ListParams::default()).await.unwrap();
    let names: Vec<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    let spot = serde_json::to_value(nodes.get("spot-1").await.unwrap()).unwrap();
    assert_eq!(spot["status"]["allocatable"]["cpu"], "4");
    assert_eq!(
        spot["metadata"]["labels"]["eks.amazonaws.com/capacityType"],
        "SPOT"
    );
    assert_eq!(
        spot["metadata"]["annotations"]["sparkyard.dev/simulated"],
        "true"
    );
    assert_eq!(spot["spec"]["taints"][0]["key"], "spot");

    // nodeSelector: to the only node with the label; a simulated pod runs at once.
    create(
        &pods,
        pod(
            "sel-b",
            "low-priority",
            "1",
            json!({"nodeSelector": {"pool": "b"}}),
        ),
    )
    .await;
    bound_to(&pods, "sel-b", "od-b").await;
    let p = running(&pods, "sel-b").await;
    assert!(
        p["status"]["podIP"].as_str().unwrap().starts_with("10."),
        "{p:#}"
    );
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
    assert_eq!(scheduled_condition(&p)["status"], "True");
    let events = events_with(&client, "default", "sel-b", "Scheduled").await;
    assert!(
        events.contains(&(
            "Scheduled".into(),
            "Successfully assigned default/sel-b to od-b".into()
        )),
        "{events:?}"
    );

    // Required node affinity on the zone label.
    create(
        &pods,
        pod("aff-zone", "low-priority", "500m", json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]}]}
            ]}}}})),
    )
    .await;
    bound_to(&pods, "aff-zone", "od-b").await;

    // A spot-only pod without the toleration: the taint keeps it off; with it, it lands.
    let spot_only = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "eks.amazonaws.com/capacityType", "operator": "In", "values": ["SPOT"]}]}]}}}});
    create(
        &pods,
        pod("spot-untolerated", "low-priority", "1", spot_only.clone()),
    )
    .await;
    pending_with(
        &pods,
        "spot-untolerated",
        "0/8 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 1 node(s) had untolerated taint {spot: true}, 6 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/8 nodes are available: 8 Preemption is not helpful for scheduling.",
    )
    .await;
    let mut tolerated = spot_only.clone();
    tolerated["tolerations"] =
        json!([{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
    create(&pods, pod("spot-tolerated", "low-priority", "1", tolerated)).await;
    bound_to(&pods, "spot-tolerated", "spot-1").await;

    // NoExecute: untolerated keeps pods off the node; `Exists` on the key tolerates it.
    create(
        &pods,
        pod("ml-untolerated", "low-priority", "1", on_node("ml-1")),
    )
    .await;
    let msg = pending_with(
        &pods,
        "ml-untolerated",
        "0/8 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 1 node(s) had untolerated taint {spot: true}, 6 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/8 nodes are available: 8 Preemption is not helpful for scheduling.",
    )
    .await;
    drop(msg);
    let mut ml = on_node("ml-1");
    ml["tolerations"] = json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]);
    create(&pods, pod("ml-tolerated", "low-priority", "1", ml)).await;
    bound_to(&pods, "ml-tolerated", "ml-1").await;
    // FailedScheduling was recorded once, not once per retry.
    let failed: Vec<_> = events_with(&client, "default", "ml-untolerated", "FailedScheduling")
        .await
        .into_iter()
        .filter(|(r, _)| r == "FailedScheduling")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");

    // `kubectl label` takes effect: a pod waiting for pool=c binds once od-a has it.
    create(
        &pods,
        pod(
            "wants-c",
            "low-priority",
            "1",
            json!({"nodeSelector": {"pool": "c"}}),
        ),
    )
    .await;
    wait_pod(&pods, "wants-c", "Unschedulable", |p| {
        unschedulable_message(p).is_some()
    })
    .await;
    nodes
        .patch(
            "od-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pool": "c"}}})),
        )
        .await
        .unwrap();
    bound_to(&pods, "wants-c", "od-a").await;

    // The pods left pending by the checks above go: the scheduler's queue gauges below
    // then speak of this section's pods alone.
    for name in ["spot-untolerated", "ml-untolerated"] {
        pods.delete(name, &Default::default()).await.unwrap();
        wait_pod(&pods, name, "deleted", |p| p.is_null()).await;
    }

    // Cordon, then priority order: two pods wait for the cordoned od-a, which has room for
    // one; the older low-priority pod loses to the younger high-priority one on uncordon.
    let cordon = |on: bool| Patch::Merge(json!({"spec": {"unschedulable": on}}));
    nodes
        .patch("od-a", &PatchParams::default(), &cordon(true))
        .await
        .unwrap();
    // queue-low fits od-a: the scheduler must have seen the cordon before it is created.
    // A probe no node can ever hold (5 CPUs on od-a's 4) reports od-a "unschedulable"
    // rather than short of CPU once it has (NodeUnschedulable is the first filter).
    create(
        &pods,
        pod("cordon-probe", "low-priority", "5", on_node("od-a")),
    )
    .await;
    wait_pod(&pods, "cordon-probe", "the cordon in its message", |p| {
        unschedulable_message(p).is_some_and(|m| m.contains("1 node(s) were unschedulable"))
    })
    .await;
    pods.delete("cordon-probe", &Default::default())
        .await
        .unwrap();
    wait_pod(&pods, "cordon-probe", "deleted", |p| p.is_null()).await;
    create(
        &pods,
        pod("queue-low", "low-priority", "3", on_node("od-a")),
    )
    .await;
    // The queue orders by priority, then by creation second, then by name: queue-high must
    // be created in a later second than queue-low (or "queue-high" < "queue-low" would
    // put it first by name alone), so wait until the API server's clock has moved on.
    let low_created = pods
        .get("queue-low")
        .await
        .unwrap()
        .metadata
        .creation_timestamp;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server_now(&pods).await <= low_created {
        assert!(
            Instant::now() < deadline,
            "the API server's clock stands still"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let high = create(
        &pods,
        pod("queue-high", "high-priority", "3", on_node("od-a")),
    )
    .await;
    assert!(
        high.metadata.creation_timestamp > low_created,
        "queue-high is the younger pod"
    );
    for name in ["queue-low", "queue-high"] {
        let p = wait_pod(&pods, name, "Unschedulable", |p| {
            unschedulable_message(p).is_some()
        })
        .await;
        assert!(
            unschedulable_message(&p).unwrap().starts_with(
                "0/8 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 1 node(s) had untolerated taint {spot: true}, 1 node(s) were unschedulable, 5 node(s) didn't match Pod's node affinity/selector."
            ),
            "{p:#}"
        );
    }
    // Both back-offs pass before the node changes, so both retry in the same round (a pod
    // still backing off would stay out of it): no pending pod is in the back-off queue.
    wait_for_backoffs_to_pass(&server).await;
    nodes
        .patch("od-a", &PatchParams::default(), &cordon(false))
        .await
        .unwrap();
    bound_to(&pods, "queue-high", "od-a").await;
    // The round that bound queue-high refused queue-low for lack of CPU: its condition
    // says so once that decision is written (or it was bound instead).
    let low = wait_pod(&pods, "queue-low", "the round after the uncordon", |p| {
        !node_of(p).is_empty()
            || unschedulable_message(p).is_some_and(|m| !m.contains("were unschedulable"))
    })
    .await;
    assert_eq!(
        node_of(&low),
        "",
        "the low-priority pod must still wait: {low:#}"
    );
    // It cannot preempt a higher-priority pod: it stays pending.
    assert!(
        unschedulable_message(&low)
            .unwrap()
            .contains("1 Insufficient cpu"),
        "{low:#}"
    );

    // Preemption's victim choice. pre-1: two low pods (two victims); pre-2: one low pod
    // (one victim: the best); pre-3: one high pod (a higher-priority victim); pre-4: a low
    // and a critical pod (evicting the low one frees too little).
    let layout = [
        ("v1a", "pre-1", "low-priority", "1"),
        ("v1b", "pre-1", "low-priority", "1"),
        ("v2", "pre-2", "low-priority", "2"),
        ("v3", "pre-3", "high-priority", "2"),
        ("v4a", "pre-4", "low-priority", "1"),
        ("v4b", "pre-4", "critical-priority", "1"),
    ];
    for (name, node, class, cpu) in layout {
        create(&pods, pod(name, class, cpu, on_node(node))).await;
    }
    for (name, node, _, _) in layout {
        bound_to(&pods, name, node).await;
        running(&pods, name).await;
    }
    let preemptor = create(
        &pods,
        pod(
            "preemptor",
            "realtime-priority",
            "2",
            json!({"nodeSelector": {"pool": "pre"}}),
        ),
    )
    .await;
    let preemptor_uid = preemptor.metadata.uid.unwrap();
    bound_to(&pods, "preemptor", "pre-2").await;
    wait_pod(&pods, "v2", "deleted", |p| p.is_null()).await;
    let events = events_with(&client, "default", "v2", "Preempted").await;
    assert!(
        events.contains(&(
            "Preempted".into(),
            format!("Preempted by pod {preemptor_uid} on node pre-2")
        )),
        "{events:?}"
    );
    for name in ["v1a", "v1b", "v3", "v4a", "v4b"] {
        let p = serde_json::to_value(pods.get(name).await.unwrap()).unwrap();
        assert!(
            p["metadata"]["deletionTimestamp"].is_null(),
            "{name} was not a victim: {p:#}"
        );
        assert_eq!(p["status"]["phase"], "Running", "{name}");
        assert!(events_of(&client, "default", name)
            .await
            .iter()
            .all(|(r, _)| r != "Preempted"));
    }
    let failed = events_with(&client, "default", "preemptor", "FailedScheduling").await;
    assert!(
        failed.iter().any(|(r, m)| r == "FailedScheduling"
            && m == "0/8 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 1 node(s) had untolerated taint {spot: true}, 2 node(s) didn't match Pod's node affinity/selector, 4 Insufficient cpu."),
        "the preemptor's FailedScheduling before it nominated pre-2: {failed:?}"
    );

    // preemptionPolicy: Never — the same request waits instead of evicting anyone.
    create(
        &pods,
        pod(
            "polite",
            "realtime-no-preempt",
            "2",
            json!({"nodeSelector": {"pool": "pre"}}),
        ),
    )
    .await;
    pending_with(
        &pods,
        "polite",
        "0/8 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 1 node(s) had untolerated taint {spot: true}, 2 node(s) didn't match Pod's node affinity/selector, 4 Insufficient cpu. \
         preemption: not eligible due to preemptionPolicy=Never.",
    )
    .await;
    // The scheduler's writer thread carries out a decision's evictions before the
    // preemptor's condition: the condition just seen follows any eviction it decided.
    for name in ["v1a", "v1b", "v3", "v4a"] {
        let p = serde_json::to_value(pods.get(name).await.unwrap()).unwrap();
        assert!(
            p["metadata"]["deletionTimestamp"].is_null(),
            "{name}: {p:#}"
        );
    }

    // A simulated pod ends after its annotated duration, with its exit code.
    let mut short = pod(
        "short",
        "low-priority",
        "100m",
        json!({"restartPolicy": "Never", "nodeSelector": {"pool": "b"}}),
    );
    short.metadata.annotations = Some(
        [(
            "sparkyard.dev/simulated-duration".to_string(),
            "1s".to_string(),
        )]
        .into_iter()
        .collect(),
    );
    create(&pods, short).await;
    let done = wait_pod(&pods, "short", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(
        done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
}

fn kubectl_ok(server: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&server.kubeconfig(), args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubectl_shows_failed_scheduling_and_nominated_node() {
    let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
    let config = format!(
        r#"
[cluster]
pod-cidr = "127.{}.0.0/16"

[[cluster.nodes]]
name = "real-1"
cpu = "1"
memory = "4Gi"
"#,
        30 + n % 200
    );
    let server = ClusterServer::start_with_config(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.kubeconfig().exists() {
        assert!(
            Instant::now() < deadline,
            "no kubeconfig:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = server.server.data_dir.path();
    let manifest = r#"apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: low-priority
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high-priority
value: 200
---
apiVersion: v1
kind: Pod
metadata:
  name: victim
spec:
  priorityClassName: low-priority
  terminationGracePeriodSeconds: 4
  containers:
  - name: main
    image: busybox:1.36
    # Ignores SIGTERM: the pod takes its whole grace period to stop.
    command: ["/bin/sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
    resources:
      requests: {cpu: 800m, memory: 256Mi}
"#;
    std::fs::write(dir.join("victim.yaml"), manifest).unwrap();
    kubectl_ok(
        &server,
        &["apply", "-f", dir.join("victim.yaml").to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while kubectl_ok(
        &server,
        &["get", "pod", "victim", "-o", "jsonpath={.status.phase}"],
    ) != "Running"
    {
        assert!(
            Instant::now() < deadline,
            "victim never ran:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A pod too big for the node: `kubectl describe` shows kube-scheduler's words.
    let big = r#"apiVersion: v1
kind: Pod
metadata:
  name: big
spec:
  priorityClassName: low-priority
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: "2", memory: 256Mi}
"#;
    std::fs::write(dir.join("big.yaml"), big).unwrap();
    kubectl_ok(
        &server,
        &["apply", "-f", dir.join("big.yaml").to_str().unwrap()],
    );
    let expected = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
    let deadline = Instant::now() + Duration::from_secs(20);
    let described = loop {
        let text = kubectl_ok(&server, &["describe", "pod", "big"]);
        if text.contains("FailedScheduling") {
            break text;
        }
        assert!(Instant::now() < deadline, "no FailedScheduling:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let line = described
        .lines()
        .find(|l| l.contains("FailedScheduling"))
        .unwrap();
    assert!(line.contains("Warning"), "{line}");
    assert!(line.contains("default-scheduler"), "{line}");
    assert!(line.contains(expected), "{line}\n{described}");
    let has_line = |words: &[&str]| {
        described
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == words)
    };
    assert!(has_line(&["Status:", "Pending"]), "{described}");
    assert!(has_line(&["PodScheduled", "False"]), "{described}");

    // A high-priority pod preempts the victim; while it terminates the preemptor waits
    // with NOMINATED NODE set, then binds there.
    let preemptor = r#"apiVersion: v1
kind: Pod
metadata:
  name: preemptor
spec:
  priorityClassName: high-priority
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 500m, memory: 256Mi}
"#;
    std::fs::write(dir.join("preemptor.yaml"), preemptor).unwrap();
    kubectl_ok(&server, &["delete", "pod", "big", "--wait=false"]);
    kubectl_ok(
        &server,
        &["apply", "-f", dir.join("preemptor.yaml").to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let wide = loop {
        let text = kubectl_ok(&server, &["get", "pods", "-o", "wide"]);
        let row = text
            .lines()
            .find(|l| l.starts_with("preemptor"))
            .unwrap_or("");
        if row.split_whitespace().any(|c| c == "real-1") {
            break text;
        }
        assert!(Instant::now() < deadline, "no nominated node:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert!(
        wide.lines().next().unwrap().contains("NOMINATED NODE"),
        "{wide}"
    );
    let row: Vec<&str> = wide
        .lines()
        .find(|l| l.starts_with("preemptor"))
        .unwrap()
        .split_whitespace()
        .collect();
    // NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES
    assert_eq!(header[6], "NODE", "{wide}");
    assert_eq!(row[2], "Pending", "{wide}");
    assert_eq!(row[6], "<none>", "not bound yet: {wide}");
    assert_eq!(row[7], "real-1", "nominated: {wide}");
    let victim_row = wide.lines().find(|l| l.starts_with("victim")).unwrap_or("");
    assert!(victim_row.contains("Terminating"), "{wide}");

    let deadline = Instant::now() + Duration::from_secs(30);
    while kubectl_ok(
        &server,
        &["get", "pod", "preemptor", "-o", "jsonpath={.spec.nodeName}"],
    ) != "real-1"
    {
        assert!(
            Instant::now() < deadline,
            "preemptor never bound:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = kubectl_ok(
        &server,
        &["get", "events", "--field-selector", "reason=Preempted"],
    );
    assert!(events.contains("pod/victim"), "{events}");
    assert!(events.contains("Preempted by pod "), "{events}");
    assert!(events.contains("on node real-1"), "{events}");
    let described = kubectl_ok(&server, &["describe", "pod", "preemptor"]);
    assert!(
        described.contains("Successfully assigned default/preemptor to real-1"),
        "{described}"
    );
}
