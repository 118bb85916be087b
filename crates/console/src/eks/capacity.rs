//! What nodes give and what is asked of them: pods' effective requests (the scheduler's
//! rule), nodes' status and pool labels, and the nodes table's rows. Pure functions over
//! API objects: one pod list and one metrics list serve every node.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{self, age, parse_cpu, parse_memory, percent_step, show_cpu, show_memory};
use crate::pages::{self, text};

/// CPU (cores) and memory (bytes).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Resources {
    pub cpu: f64,
    pub memory: f64,
}

impl Resources {
    fn of(list: &Value) -> Resources {
        Resources {
            cpu: list
                .get("cpu")
                .and_then(Value::as_str)
                .and_then(parse_cpu)
                .unwrap_or(0.0),
            memory: list
                .get("memory")
                .and_then(Value::as_str)
                .and_then(parse_memory)
                .unwrap_or(0.0),
        }
    }

    fn add(&mut self, other: Resources) {
        self.cpu += other.cpu;
        self.memory += other.memory;
    }
}

/// A pod that still holds its node's resources (not Succeeded or Failed).
pub(super) fn holds_resources(pod: &Value) -> bool {
    !matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// A pod's effective requests as the scheduler counts them: the larger of its
/// containers' sum and its largest init container, per resource, plus its overhead.
pub(super) fn pod_requests(pod: &Value) -> Resources {
    let requests =
        |c: &Value| Resources::of(c.pointer("/resources/requests").unwrap_or(&Value::Null));
    let containers = |key: &str| {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut sum = Resources::default();
    for c in containers("containers") {
        sum.add(requests(&c));
    }
    for c in containers("initContainers") {
        let r = requests(&c);
        sum.cpu = sum.cpu.max(r.cpu);
        sum.memory = sum.memory.max(r.memory);
    }
    sum.add(Resources::of(
        pod.pointer("/spec/overhead").unwrap_or(&Value::Null),
    ));
    sum
}

/// Restarts of all of a pod's containers.
pub(super) fn restarts(pod: &Value) -> u64 {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0)
}

/// `Ready`, `NotReady` or `Unknown`, with `,SchedulingDisabled` for a cordoned node, as
/// `kubectl get nodes` prints STATUS.
pub(super) fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"].as_str().unwrap_or("Unknown").to_string());
    let mut status = match ready.as_deref() {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if cordoned(node) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

pub(super) fn cordoned(node: &Value) -> bool {
    node.pointer("/spec/unschedulable") == Some(&Value::Bool(true))
}

pub(super) fn label(object: &Value, key: &str) -> String {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// EKS managed node groups' and Karpenter's capacity-type labels (`ON_DEMAND`, `spot`).
pub(super) fn capacity_type(node: &Value) -> String {
    let eks = label(node, "eks.amazonaws.com/capacityType");
    if eks.is_empty() {
        label(node, "karpenter.sh/capacity-type")
    } else {
        eks
    }
}

/// Which pool a node belongs to: `(kind, name)` for a managed node group, a Karpenter
/// NodePool or a v1alpha5 Provisioner.
pub(super) fn node_pool(node: &Value) -> (&'static str, String) {
    for (kind, key) in [
        ("Node group", "eks.amazonaws.com/nodegroup"),
        ("NodePool", "karpenter.sh/nodepool"),
        ("Provisioner", "karpenter.sh/provisioner-name"),
    ] {
        let name = label(node, key);
        if !name.is_empty() {
            return (kind, name);
        }
    }
    ("", String::new())
}

/// What the pods bound to each node request, and how many there are.
pub(super) fn requests_by_node(pods: &[Value]) -> HashMap<String, (Resources, usize)> {
    let mut by_node: HashMap<String, (Resources, usize)> = HashMap::new();
    for pod in pods.iter().filter(|p| holds_resources(p)) {
        let node = text(pod, "/spec/nodeName");
        if node.is_empty() {
            continue;
        }
        let entry = by_node.entry(node).or_default();
        entry.0.add(pod_requests(pod));
        entry.1 += 1;
    }
    by_node
}

/// One resource of a node: requested, allocatable and used, formatted, with the
/// requests' bar step.
pub(super) struct Usage {
    pub requests: String,
    pub allocatable: String,
    pub usage: String,
    /// Requests of allocatable in whole percent.
    pub percent: u32,
    /// The same, in 5 % steps (`pct-N`).
    pub step: u32,
}

impl Usage {
    fn new(requested: f64, allocatable: f64, used: Option<f64>, show: fn(f64) -> String) -> Self {
        Usage {
            requests: show(requested),
            allocatable: show(allocatable),
            usage: used.map(show).unwrap_or_else(|| "—".into()),
            percent: format::percent(requested, allocatable),
            step: percent_step(requested, allocatable),
        }
    }
}

pub(super) struct NodeRow {
    pub name: String,
    pub status: String,
    pub ready: bool,
    pub instance_type: String,
    pub capacity_type: String,
    pub zone: String,
    pub pool_kind: &'static str,
    pub pool: String,
    pub cpu: Usage,
    pub memory: Usage,
    pub pods: usize,
    pub age: String,
}

/// The nodes table: nodes, the requests of their pods, their usage (when metrics are
/// readable), sorted by name.
pub(super) fn node_rows(
    nodes: &[Value],
    pods: &[Value],
    usage: &HashMap<String, Resources>,
    now: DateTime<Utc>,
) -> Vec<NodeRow> {
    let requested = requests_by_node(pods);
    let mut rows: Vec<NodeRow> = nodes
        .iter()
        .map(|node| {
            let name = text(node, "/metadata/name");
            let allocatable =
                Resources::of(node.pointer("/status/allocatable").unwrap_or(&Value::Null));
            let (req, pod_count) = requested.get(&name).copied().unwrap_or_default();
            let used = usage.get(&name);
            let (pool_kind, pool) = node_pool(node);
            let status = node_status(node);
            NodeRow {
                ready: status.starts_with("Ready"),
                status,
                instance_type: pages::or_dash(label(node, "node.kubernetes.io/instance-type")),
                capacity_type: pages::or_dash(capacity_type(node)),
                zone: pages::or_dash(label(node, "topology.kubernetes.io/zone")),
                pool_kind,
                pool,
                cpu: Usage::new(req.cpu, allocatable.cpu, used.map(|u| u.cpu), show_cpu),
                memory: Usage::new(
                    req.memory,
                    allocatable.memory,
                    used.map(|u| u.memory),
                    show_memory,
                ),
                pods: pod_count,
                age: age(pages::timestamp(node, "/metadata/creationTimestamp"), now),
                name,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// metrics.k8s.io `NodeMetrics` by node name.
pub(super) fn usage_by_node(metrics: &[Value]) -> HashMap<String, Resources> {
    metrics
        .iter()
        .map(|m| {
            (
                text(m, "/metadata/name"),
                Resources::of(m.get("usage").unwrap_or(&Value::Null)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str, phase: &str, cpu: &str, memory: &str) -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [
                {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
                {"name": "b", "resources": {}},
            ]},
            "status": {"phase": phase},
        })
    }

    #[test]
    fn requests_follow_the_schedulers_rules() {
        let mut p = pod("n1", "Running", "500m", "1Gi");
        p["spec"]["initContainers"] =
            json!([{"name": "init", "resources": {"requests": {"cpu": "2", "memory": "10Mi"}}}]);
        p["spec"]["overhead"] = json!({"cpu": "100m"});
        let r = pod_requests(&p);
        assert!((r.cpu - 2.1).abs() < 1e-9, "init container dominates CPU");
        assert_eq!(r.memory, 1073741824.0, "containers' sum dominates memory");
    }

    #[test]
    fn node_rows_sum_requests_of_running_pods_only() {
        let node = json!({
            "metadata": {"name": "n1", "labels": {
                "node.kubernetes.io/instance-type": "m5.2xlarge",
                "karpenter.sh/capacity-type": "spot",
                "topology.kubernetes.io/zone": "us-east-2a",
                "karpenter.sh/nodepool": "emr"}},
            "spec": {"unschedulable": true},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi"},
                       "conditions": [{"type": "Ready", "status": "True"}]},
        });
        let pods = vec![
            pod("n1", "Running", "2", "8Gi"),
            pod("n1", "Pending", "1", "0"),
            pod("n1", "Succeeded", "4", "4Gi"),
            pod("n2", "Running", "1", "1Gi"),
            pod("", "Pending", "1", "1Gi"),
        ];
        let usage = HashMap::from([(
            "n1".to_string(),
            Resources {
                cpu: 0.25,
                memory: 536870912.0,
            },
        )]);
        let rows = node_rows(&[node], &pods, &usage, Utc::now());
        let r = &rows[0];
        assert_eq!(r.status, "Ready,SchedulingDisabled");
        assert_eq!((r.pool_kind, r.pool.as_str()), ("NodePool", "emr"));
        assert_eq!(r.capacity_type, "spot");
        assert_eq!(r.pods, 2);
        assert_eq!(r.cpu.requests, "3");
        assert_eq!(r.cpu.allocatable, "8");
        assert_eq!(r.cpu.usage, "250m");
        assert_eq!((r.cpu.percent, r.cpu.step), (38, 40));
        assert_eq!(r.memory.requests, "8Gi");
        assert_eq!(r.memory.usage, "512Mi");
        assert_eq!(r.memory.step, 25);
    }
}
