//! The scheduler (simple for now): binds pending pods to a node whose allocatable minus
//! what its non-terminal pods request still fits the pod's requests. Pending pods go in
//! order of priority, then age. The fit is pure (`fit`, `pod_requests`, `unschedulable`)
//! so that priorities and preemption can build on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::events::{self, Kind, Source};
use super::quantity;
use crate::cluster::Cluster;
use crate::registry::{now_rfc3339, Resource};

const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// Unschedulable pods are retried at least this often (capacity can free up without an
/// event this scheduler reacts to).
const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    fn add(&mut self, other: Resources) {
        self.cpu_millis += other.cpu_millis;
        self.memory += other.memory;
        self.pods += other.pods;
    }
}

/// What a pod asks for: the larger of the sum of its containers and its largest init
/// container, plus `spec.overhead`, and one pod slot.
pub fn pod_requests(pod: &Value) -> Resources {
    let request = |c: &Value, key: &str| -> Option<String> {
        let requests = &c["resources"]["requests"][key];
        let limits = &c["resources"]["limits"][key];
        // A limit without a request defaults the request to the limit.
        quantity::value_text(requests).or_else(|| quantity::value_text(limits))
    };
    let sum = |list: &str| -> (i64, i64) {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .fold((0, 0), |(cpu, mem), c| {
                (
                    cpu + request(c, "cpu")
                        .and_then(|q| quantity::cpu_millis(&q))
                        .unwrap_or(0),
                    mem + request(c, "memory")
                        .and_then(|q| quantity::units(&q))
                        .unwrap_or(0),
                )
            })
    };
    let (cpu, memory) = sum("containers");
    let (mut init_cpu, mut init_memory) = (0, 0);
    for c in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        init_cpu = init_cpu.max(
            request(c, "cpu")
                .and_then(|q| quantity::cpu_millis(&q))
                .unwrap_or(0),
        );
        init_memory = init_memory.max(
            request(c, "memory")
                .and_then(|q| quantity::units(&q))
                .unwrap_or(0),
        );
    }
    let overhead = &pod["spec"]["overhead"];
    Resources {
        cpu_millis: cpu.max(init_cpu)
            + quantity::value_text(&overhead["cpu"])
                .and_then(|q| quantity::cpu_millis(&q))
                .unwrap_or(0),
        memory: memory.max(init_memory)
            + quantity::value_text(&overhead["memory"])
                .and_then(|q| quantity::units(&q))
                .unwrap_or(0),
        pods: 1,
    }
}

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub unschedulable: bool,
}

impl NodeInfo {
    pub fn from_node(node: &Value) -> Self {
        let alloc = &node["status"]["allocatable"];
        let get = |k: &str| quantity::value_text(&alloc[k]);
        Self {
            name: node["metadata"]["name"].as_str().unwrap_or("").into(),
            labels: node["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            allocatable: Resources {
                cpu_millis: get("cpu")
                    .and_then(|q| quantity::cpu_millis(&q))
                    .unwrap_or(0),
                memory: get("memory").and_then(|q| quantity::units(&q)).unwrap_or(0),
                pods: get("pods").and_then(|q| quantity::units(&q)).unwrap_or(110),
            },
            requested: Resources::default(),
            unschedulable: node["spec"]["unschedulable"] == true,
        }
    }
}

/// Why a pod does not fit a node, in the scheduler's words (empty: it fits).
pub fn fit(pod: &Value, requests: Resources, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.unschedulable {
        reasons.push("node(s) were unschedulable".to_string());
        return reasons;
    }
    if let Some(selector) = pod["spec"]["nodeSelector"].as_object() {
        if !selector
            .iter()
            .all(|(k, v)| node.labels.get(k).map(String::as_str) == v.as_str())
        {
            reasons.push("node(s) didn't match Pod's node affinity/selector".to_string());
            return reasons;
        }
    }
    let free = |alloc: i64, used: i64| alloc - used;
    if requests.pods > free(node.allocatable.pods, node.requested.pods) {
        reasons.push("Too many pods".to_string());
    }
    if requests.cpu_millis > 0
        && requests.cpu_millis > free(node.allocatable.cpu_millis, node.requested.cpu_millis)
    {
        reasons.push("Insufficient cpu".to_string());
    }
    if requests.memory > 0 && requests.memory > free(node.allocatable.memory, node.requested.memory)
    {
        reasons.push("Insufficient memory".to_string());
    }
    reasons
}

/// `0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.`
pub fn unschedulable_message(total_nodes: usize, reasons: &[Vec<String>]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node_reasons in reasons {
        for r in node_reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    if parts.is_empty() {
        return format!("0/{total_nodes} nodes are available.");
    }
    format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    )
}

fn wants_this_scheduler(pod: &Value) -> bool {
    let name = pod["spec"]["schedulerName"]
        .as_str()
        .unwrap_or(DEFAULT_SCHEDULER);
    name == DEFAULT_SCHEDULER || name.is_empty()
}

/// The pending pods in scheduling order: highest priority first, then oldest.
pub fn queue(pods: &[Arc<Value>]) -> Vec<Arc<Value>> {
    let mut pending: Vec<Arc<Value>> = pods
        .iter()
        .filter(|p| p["spec"]["nodeName"].as_str().unwrap_or("").is_empty())
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && !is_terminal(p)
                && wants_this_scheduler(p)
        })
        .cloned()
        .collect();
    pending.sort_by(|a, b| {
        let priority = |p: &Value| p["spec"]["priority"].as_i64().unwrap_or(0);
        let created = |p: &Value| {
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        priority(b)
            .cmp(&priority(a))
            .then_with(|| created(a).cmp(&created(b)))
            .then_with(|| {
                let rv = |p: &Value| {
                    p["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                rv(a).cmp(&rv(b))
            })
    });
    pending
}

pub async fn run(cluster: Cluster) {
    let source = Source {
        component: DEFAULT_SCHEDULER,
        host: None,
    };
    // Last unschedulable message per pod uid, so that an event is recorded once per change.
    let mut reported: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let revision = cluster.registry.revision();
        schedule_once(&cluster, &source, &mut reported);
        let (Ok(pods), Ok(nodes)) = (
            cluster.registry.watch(PODS, Some(revision)),
            cluster.registry.watch(NODES, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut merged = futures::stream::select(Box::pin(pods), Box::pin(nodes));
        // Wake on any pod or node change, or periodically.
        let _ = tokio::time::timeout(RETRY, merged.next()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One pass over the pending queue.
pub fn schedule_once(cluster: &Cluster, source: &Source, reported: &mut BTreeMap<String, String>) {
    let (nodes, _) = cluster.registry.list(NODES, None);
    let (pods, _) = cluster.registry.list(PODS, None);
    let mut infos: Vec<NodeInfo> = nodes.iter().map(|n| NodeInfo::from_node(n)).collect();
    for pod in pods.iter().filter(|p| !is_terminal(p)) {
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            if let Some(info) = infos.iter_mut().find(|i| i.name == node) {
                info.requested.add(pod_requests(pod));
            }
        }
    }
    let live: std::collections::HashSet<&str> = pods
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str())
        .collect();
    reported.retain(|uid, _| live.contains(uid.as_str()));
    for pod in queue(&pods) {
        let requests = pod_requests(&pod);
        let reasons: Vec<Vec<String>> = infos.iter().map(|n| fit(&pod, requests, n)).collect();
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        match reasons.iter().position(|r| r.is_empty()) {
            Some(index) => {
                let node = infos[index].name.clone();
                if bind(cluster, &pod, &node).is_ok() {
                    infos[index].requested.add(requests);
                    reported.remove(&uid);
                    let mut involved = (*pod).clone();
                    involved["kind"] = json!("Pod");
                    involved["apiVersion"] = json!("v1");
                    events::record(
                        &cluster.registry,
                        &involved,
                        Kind::Normal,
                        "Scheduled",
                        &format!("Successfully assigned {ns}/{name} to {node}"),
                        source,
                    );
                }
            }
            None => {
                let message = unschedulable_message(infos.len(), &reasons);
                if reported.get(&uid) != Some(&message) {
                    mark_unschedulable(cluster, &pod, &message);
                    let mut involved = (*pod).clone();
                    involved["kind"] = json!("Pod");
                    involved["apiVersion"] = json!("v1");
                    events::record(
                        &cluster.registry,
                        &involved,
                        Kind::Warning,
                        "FailedScheduling",
                        &message,
                        source,
                    );
                    reported.insert(uid, message);
                }
            }
        }
    }
}

fn bind(cluster: &Cluster, pod: &Value, node: &str) -> Result<(), crate::error::ApiError> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].clone();
    cluster.registry.modify(PODS, ns, name, |p| {
        if p["metadata"]["uid"] != uid || !p["spec"]["nodeName"].as_str().unwrap_or("").is_empty() || !p["metadata"]["deletionTimestamp"].is_null() {
            return Err(crate::error::ApiError::conflict("", "pods", name));
        }
        p["spec"]["nodeName"] = json!(node);
        set_condition(p, json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
        if p["status"]["phase"].is_null() {
            p["status"]["phase"] = json!("Pending");
        }
        Ok(())
    })?;
    Ok(())
}

fn mark_unschedulable(cluster: &Cluster, pod: &Value, message: &str) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let uid = pod["metadata"]["uid"].clone();
    let _ = cluster.registry.modify(PODS, ns, name, |p| {
        if p["metadata"]["uid"] != uid {
            return Err(crate::error::ApiError::conflict("", "pods", name));
        }
        set_condition(
            p,
            json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null, "lastTransitionTime": now_rfc3339(),
                   "reason": "Unschedulable", "message": message}),
        );
        if p["status"]["phase"].is_null() {
            p["status"]["phase"] = json!("Pending");
        }
        Ok(())
    });
}

/// Sets a condition by type, keeping its transition time when the status is unchanged.
pub fn set_condition(object: &mut Value, condition: Value) {
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    if !object["status"]["conditions"].is_array() {
        object["status"]["conditions"] = json!([]);
    }
    let list = object["status"]["conditions"].as_array_mut().unwrap();
    match list.iter_mut().find(|c| c["type"] == condition["type"]) {
        Some(existing) => {
            let mut next = condition.clone();
            if existing["status"] == condition["status"]
                && !existing["lastTransitionTime"].is_null()
            {
                next["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = next;
        }
        None => list.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: &str, memory: &str) -> NodeInfo {
        NodeInfo::from_node(
            &json!({"metadata": {"name": "n1", "labels": {"pool": "a"}}, "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}),
        )
    }

    fn pod(cpu: &str, memory: &str) -> Value {
        json!({"spec": {"containers": [{"resources": {"requests": {"cpu": cpu}, "limits": {"memory": memory}}}]}})
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init() {
        let p = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}, {"resources": {"requests": {"cpu": "250m"}}}],
                                "initContainers": [{"resources": {"requests": {"cpu": "2"}}}]}});
        let r = pod_requests(&p);
        assert_eq!(
            r,
            Resources {
                cpu_millis: 2000,
                memory: 1 << 30,
                pods: 1
            }
        );
        assert_eq!(pod_requests(&pod("1", "896Mi")).memory, 896 << 20);
    }

    #[test]
    fn fit_reports_each_shortage_in_kubernetes_words() {
        let mut n = node("2", "4Gi");
        n.requested = Resources {
            cpu_millis: 1500,
            memory: 0,
            pods: 1,
        };
        let p = pod("1", "896Mi");
        assert_eq!(fit(&p, pod_requests(&p), &n), ["Insufficient cpu"]);
        let reasons = vec![fit(&p, pod_requests(&p), &n)];
        assert_eq!(
            unschedulable_message(1, &reasons),
            "0/1 nodes are available: 1 Insufficient cpu."
        );
        let big = pod("4", "8Gi");
        assert_eq!(
            fit(&big, pod_requests(&big), &n),
            ["Insufficient cpu", "Insufficient memory"]
        );
        let ok = pod("500m", "1Gi");
        assert!(fit(&ok, pod_requests(&ok), &n).is_empty());
        let mut selective = ok.clone();
        selective["spec"]["nodeSelector"] = json!({"pool": "b"});
        assert_eq!(
            fit(&selective, pod_requests(&selective), &n),
            ["node(s) didn't match Pod's node affinity/selector"]
        );
    }

    #[test]
    fn queue_orders_by_priority_then_age_and_skips_bound_pods() {
        let p = |name: &str, prio: i64, created: &str, node: Option<&str>| {
            Arc::new(
                json!({"metadata": {"name": name, "creationTimestamp": created}, "spec": {"priority": prio, "nodeName": node}}),
            )
        };
        let pods = vec![
            p("old-low", 0, "2024-01-01T00:00:00Z", None),
            p("new-high", 100, "2024-01-02T00:00:00Z", None),
            p("old-high", 100, "2024-01-01T00:00:00Z", None),
            p("bound", 1000, "2024-01-01T00:00:00Z", Some("n1")),
        ];
        let names: Vec<String> = queue(&pods)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["old-high", "new-high", "old-low"]);
    }
}
