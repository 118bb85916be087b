//! The agent's CPU cost per collection: decoding the API's node and pod lists (as kube-rs
//! does), computing Container Insights' records and encoding them as EMF events — for 100
//! and 1,000 pods on 10 nodes. Prints CPU time per collection and the share of one core
//! that costs at the default 60 s interval. Run: `cargo bench -p sparkyard-container-insights`.
//! (The HTTP round trips to the API server and CloudWatch Logs are not included.)

use std::collections::HashMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use sparkyard_container_insights::compute::compute;
use sparkyard_container_insights::emf;
use sparkyard_container_insights::inputs::{NodeInput, PodInput, PodMetrics};

fn node(i: usize) -> Value {
    json!({
        "metadata": {"name": format!("ip-10-0-{i}-1"), "labels": {"node.kubernetes.io/instance-type": "m5.xlarge"}},
        "spec": {"providerID": format!("aws:///us-east-2a/i-{i:017x}")},
        "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "58"},
                   "allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "58"},
                   "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}
    })
}

fn pod(i: usize, nodes: usize) -> Value {
    json!({
        "metadata": {"name": format!("spark-exec-{i}"), "namespace": "monthly-batch", "uid": format!("uid-{i}"),
                     "labels": {"spark-role": "executor", "spark-app-selector": "spark-1"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "spark-driver", "uid": "d"}]},
        "spec": {"nodeName": format!("ip-10-0-{}-1", i % nodes), "containers": [
            {"name": "spark-kubernetes-executor", "image": "spark:4",
             "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "spark-kubernetes-executor", "ready": true, "restartCount": 0,
                                          "image": "spark:4", "imageID": "", "state": {"running": {}}}]}
    })
}

fn metrics(i: usize) -> Value {
    json!({"metadata": {"name": format!("spark-exec-{i}"), "namespace": "monthly-batch"},
           "containers": [{"name": "spark-kubernetes-executor", "usage": {"cpu": "812345678n", "memory": "1536Mi"}}]})
}

fn main() {
    for pods_n in [100usize, 1000] {
        let nodes_n = 10;
        let nodes_json = serde_json::to_vec(&(0..nodes_n).map(node).collect::<Vec<_>>()).unwrap();
        let pods_json =
            serde_json::to_vec(&(0..pods_n).map(|i| pod(i, nodes_n)).collect::<Vec<_>>()).unwrap();
        let metrics_json =
            serde_json::to_vec(&(0..pods_n).map(metrics).collect::<Vec<_>>()).unwrap();
        let rounds = 20;
        let mut best = f64::MAX;
        let mut events = 0;
        for _ in 0..rounds {
            let start = Instant::now();
            let nodes: Vec<Node> = serde_json::from_slice(&nodes_json).unwrap();
            let pods: Vec<Pod> = serde_json::from_slice(&pods_json).unwrap();
            let pm: Vec<PodMetrics> = serde_json::from_slice(&metrics_json).unwrap();
            let by: HashMap<&str, &PodMetrics> =
                pm.iter().map(|m| (m.metadata.name.as_str(), m)).collect();
            let nodes: Vec<NodeInput> = nodes
                .iter()
                .map(|n| NodeInput::from_node(n, None))
                .collect();
            let pods: Vec<PodInput> = pods
                .iter()
                .map(|p| {
                    PodInput::from_pod(p, &[], by.get(p.metadata.name.as_deref().unwrap()).copied())
                })
                .collect();
            let collection = compute("eks-emr-cluster", &nodes, &pods, &HashMap::new());
            let encoded: Vec<String> = collection
                .records
                .iter()
                .map(|r| emf::event(r, 1_700_000_000_000).to_string())
                .collect();
            events = encoded.len();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "{pods_n} pods on {nodes_n} nodes: {:.2} ms per collection ({events} EMF events); at a 60 s interval {:.4} % of one core ({:.4} % per 100 pods)",
            best * 1e3,
            best / 60.0 * 100.0,
            best / 60.0 * 100.0 * 100.0 / pods_n as f64
        );
    }
}
