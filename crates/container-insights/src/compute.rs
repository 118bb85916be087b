//! Container Insights' formulas, as pure functions of one collection's inputs.
//!
//! The semantics copied from the agent (see `docs/metrics.md`):
//! - **Denominators are capacity**, not allocatable: `node_cpu_limit` is the node's cores ×
//!   1000, so "reserved" on a node with 4 CPU capacity and 3.92 allocatable is over 4.
//! - **Requests** are built from the node's whole pod list, whatever the phase (the kubelet's
//!   `/pods` still lists finished pods until they are deleted): per pod, the sum of the app
//!   containers' requests that are set (init containers and overhead ignored), the node's
//!   sum clamped to its capacity.
//! - `pod_cpu_request` is a field only when > 0; `pod_cpu_limit` only when *every* container
//!   sets a limit, and so does `pod_cpu_utilization_over_pod_limit`.
//! - `pod_number_of_container_restarts` is the change since the previous collection.
//! - Usage is the Metrics API's: the CPU rate in millicores and the working set.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::catalog::RecordType;
use crate::inputs::{ContainerState, NodeInput, PodInput};
use crate::pod_name::pod_name;

/// One performance log event before encoding: its type, its string dimensions (and other
/// string fields) and its numeric fields. Which numeric fields become metrics, under which
/// dimension sets, is the catalogue's business.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: RecordType,
    /// The node whose log stream carries the record (cluster-wide records: the first node).
    pub node: String,
    pub dimensions: BTreeMap<&'static str, String>,
    pub values: BTreeMap<&'static str, f64>,
}

impl Record {
    fn new(kind: RecordType, cluster: &str, node: &str) -> Record {
        Record {
            kind,
            node: node.to_string(),
            dimensions: BTreeMap::from([("ClusterName", cluster.to_string())]),
            values: BTreeMap::new(),
        }
    }

    fn set(&mut self, name: &'static str, value: f64) {
        if value.is_finite() {
            self.values.insert(name, value);
        }
    }

    fn flag(&mut self, name: &'static str, on: bool) {
        self.set(name, if on { 1.0 } else { 0.0 });
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }
}

/// The records of one collection, and the restart counts the next one diffs against.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub records: Vec<Record>,
    pub restarts: HashMap<String, i64>,
}

fn percent(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole * 100.0)
}

/// A pod's request (sum of the containers that set one) and limit (only when all set one).
fn request_and_limit(
    pod: &PodInput,
    request: fn(&crate::inputs::ContainerInput) -> Option<f64>,
    limit: fn(&crate::inputs::ContainerInput) -> Option<f64>,
) -> (f64, Option<f64>) {
    let req = pod.containers.iter().filter_map(request).sum();
    let all_limited =
        !pod.containers.is_empty() && pod.containers.iter().all(|c| limit(c).is_some());
    let lim = all_limited.then(|| pod.containers.iter().filter_map(limit).sum());
    (req, lim)
}

fn cpu(pod: &PodInput) -> (f64, Option<f64>) {
    request_and_limit(
        pod,
        |c| c.cpu_request_millicores,
        |c| c.cpu_limit_millicores,
    )
}

fn memory(pod: &PodInput) -> (f64, Option<f64>) {
    request_and_limit(pod, |c| c.memory_request_bytes, |c| c.memory_limit_bytes)
}

fn running_containers(pod: &PodInput) -> usize {
    pod.containers
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .count()
}

/// Computes every record of one collection for cluster `cluster`.
pub fn compute(
    cluster: &str,
    nodes: &[NodeInput],
    pods: &[PodInput],
    previous_restarts: &HashMap<String, i64>,
) -> Collection {
    let mut out = Collection::default();
    let first_node = nodes.iter().map(|n| n.name.as_str()).min().unwrap_or("");
    let by_name: HashMap<&str, &NodeInput> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();

    for node in nodes {
        out.records.push(node_record(cluster, node, pods));
    }

    for pod in pods {
        let node = pod.node.as_deref().and_then(|n| by_name.get(n).copied());
        let restarts: i64 = pod.containers.iter().map(|c| c.restart_count).sum();
        let delta = previous_restarts
            .get(&pod.uid)
            .map(|before| (restarts - before).max(0))
            .unwrap_or(0);
        out.restarts.insert(pod.uid.clone(), restarts);
        out.records
            .push(pod_record(cluster, pod, node, delta, first_node));
        if let Some(node) = node {
            for c in &pod.containers {
                out.records.push(container_record(cluster, pod, c, node));
            }
        }
    }

    // Cluster-wide records go out on the first node's stream, as the agent's leader
    // publishes them on its own.
    let running = |p: &&PodInput| p.phase == "Running";
    let mut cluster_record = Record::new(RecordType::Cluster, cluster, first_node);
    cluster_record.set("cluster_node_count", nodes.len() as f64);
    cluster_record.set(
        "cluster_failed_node_count",
        nodes.iter().filter(|n| node_failed(n)).count() as f64,
    );
    cluster_record.set(
        "cluster_number_of_running_pods",
        pods.iter().filter(running).count() as f64,
    );
    out.records.push(cluster_record);

    let namespaces: BTreeSet<&str> = pods.iter().map(|p| p.namespace.as_str()).collect();
    for ns in namespaces {
        let mut r = Record::new(RecordType::ClusterNamespace, cluster, first_node);
        r.dimensions.insert("Namespace", ns.to_string());
        r.set(
            "namespace_number_of_running_pods",
            pods.iter()
                .filter(running)
                .filter(|p| p.namespace == ns)
                .count() as f64,
        );
        out.records.push(r);
    }

    let services: BTreeSet<(&str, &str)> = pods
        .iter()
        .flat_map(|p| {
            p.services
                .iter()
                .map(|s| (p.namespace.as_str(), s.as_str()))
        })
        .collect();
    for (ns, service) in services {
        let mut r = Record::new(RecordType::ClusterService, cluster, first_node);
        r.dimensions.insert("Namespace", ns.to_string());
        r.dimensions.insert("Service", service.to_string());
        r.set(
            "service_number_of_running_pods",
            pods.iter()
                .filter(running)
                .filter(|p| p.namespace == ns && p.services.iter().any(|s| s == service))
                .count() as f64,
        );
        out.records.push(r);
    }
    out
}

/// MemoryPressure, DiskPressure, PIDPressure or NetworkUnavailable not `False`; Ready is
/// not looked at (the agent's node client does the same).
fn node_failed(node: &NodeInput) -> bool {
    [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "NetworkUnavailable",
    ]
    .iter()
    .any(|c| node.conditions.get(*c).is_some_and(|s| s != "False"))
}

fn node_record(cluster: &str, node: &NodeInput, pods: &[PodInput]) -> Record {
    let mut r = Record::new(RecordType::Node, cluster, &node.name);
    r.dimensions.insert("NodeName", node.name.clone());
    r.dimensions.insert("InstanceId", node.instance_id.clone());
    if let Some(t) = &node.instance_type {
        r.dimensions.insert("InstanceType", t.clone());
    }
    let on_node: Vec<&PodInput> = pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
        .collect();
    let cpu_limit = node.cpu_capacity_millicores;
    let memory_limit = node.memory_capacity_bytes;
    let cpu_request = on_node.iter().map(|p| cpu(p).0).sum::<f64>().min(cpu_limit);
    let memory_request = on_node
        .iter()
        .map(|p| memory(p).0)
        .sum::<f64>()
        .min(memory_limit);
    r.set("node_cpu_limit", cpu_limit);
    r.set("node_memory_limit", memory_limit);
    r.set("node_cpu_request", cpu_request);
    r.set("node_memory_request", memory_request);
    if let Some(p) = percent(cpu_request, cpu_limit) {
        r.set("node_cpu_reserved_capacity", p);
    }
    if let Some(p) = percent(memory_request, memory_limit) {
        r.set("node_memory_reserved_capacity", p);
    }
    if let Some(u) = node.usage {
        r.set("node_cpu_usage_total", u.cpu_millicores);
        r.set("node_memory_working_set", u.memory_bytes);
        if let Some(p) = percent(u.cpu_millicores, cpu_limit) {
            r.set("node_cpu_utilization", p);
        }
        if let Some(p) = percent(u.memory_bytes, memory_limit) {
            r.set("node_memory_utilization", p);
        }
    }
    r.set(
        "node_number_of_running_pods",
        on_node.iter().filter(|p| p.phase == "Running").count() as f64,
    );
    r.set(
        "node_number_of_running_containers",
        on_node.iter().map(|p| running_containers(p)).sum::<usize>() as f64,
    );
    let condition = |t: &str| node.conditions.get(t).is_some_and(|s| s == "True");
    r.flag("node_status_condition_ready", condition("Ready"));
    r.flag(
        "node_status_condition_disk_pressure",
        condition("DiskPressure"),
    );
    r.flag(
        "node_status_condition_memory_pressure",
        condition("MemoryPressure"),
    );
    r.flag(
        "node_status_condition_pid_pressure",
        condition("PIDPressure"),
    );
    r.flag(
        "node_status_condition_network_unavailable",
        condition("NetworkUnavailable"),
    );
    r.flag(
        "node_status_condition_unknown",
        node.conditions.values().any(|s| s == "Unknown"),
    );
    r.set("node_status_capacity_pods", node.pods_capacity);
    r.set("node_status_allocatable_pods", node.pods_allocatable);
    r
}

fn pod_record(
    cluster: &str,
    pod: &PodInput,
    node: Option<&NodeInput>,
    restarts_delta: i64,
    first_node: &str,
) -> Record {
    let stream = node.map(|n| n.name.as_str()).unwrap_or(first_node);
    let mut r = Record::new(RecordType::Pod, cluster, stream);
    r.dimensions.insert("Namespace", pod.namespace.clone());
    r.dimensions
        .insert("PodName", pod_name(&pod.name, &pod.owners));
    r.dimensions.insert("FullPodName", pod.name.clone());
    if let Some(service) = pod.services.first() {
        r.dimensions.insert("Service", service.clone());
    }
    if let Some(n) = &pod.node {
        r.dimensions.insert("NodeName", n.clone());
    }
    let (cpu_request, cpu_limit) = cpu(pod);
    let (memory_request, memory_limit) = memory(pod);
    if cpu_request > 0.0 {
        r.set("pod_cpu_request", cpu_request);
    }
    if memory_request > 0.0 {
        r.set("pod_memory_request", memory_request);
    }
    if let Some(l) = cpu_limit {
        r.set("pod_cpu_limit", l);
    }
    if let Some(l) = memory_limit {
        r.set("pod_memory_limit", l);
    }
    if let Some(node) = node {
        if cpu_request > 0.0 {
            if let Some(p) = percent(cpu_request, node.cpu_capacity_millicores) {
                r.set("pod_cpu_reserved_capacity", p);
            }
        }
        if memory_request > 0.0 {
            if let Some(p) = percent(memory_request, node.memory_capacity_bytes) {
                r.set("pod_memory_reserved_capacity", p);
            }
        }
        if let (Some(u), "Running") = (pod.usage, pod.phase.as_str()) {
            r.set("pod_cpu_usage_total", u.cpu_millicores);
            r.set("pod_memory_working_set", u.memory_bytes);
            if let Some(p) = percent(u.cpu_millicores, node.cpu_capacity_millicores) {
                r.set("pod_cpu_utilization", p);
            }
            if let Some(p) = percent(u.memory_bytes, node.memory_capacity_bytes) {
                r.set("pod_memory_utilization", p);
            }
            if let Some(p) = cpu_limit.and_then(|l| percent(u.cpu_millicores, l)) {
                r.set("pod_cpu_utilization_over_pod_limit", p);
            }
            if let Some(p) = memory_limit.and_then(|l| percent(u.memory_bytes, l)) {
                r.set("pod_memory_utilization_over_pod_limit", p);
            }
        }
        r.set("pod_number_of_container_restarts", restarts_delta as f64);
    }
    let phase = pod.phase.as_str();
    r.flag("pod_status_ready", pod.ready);
    r.flag("pod_status_scheduled", pod.scheduled || pod.node.is_some());
    r.flag("pod_status_running", phase == "Running");
    r.flag("pod_status_pending", phase == "Pending");
    r.flag("pod_status_failed", phase == "Failed");
    r.flag("pod_status_succeeded", phase == "Succeeded");
    r.flag("pod_status_unknown", phase == "Unknown");
    r.set("pod_number_of_containers", pod.containers.len() as f64);
    r.set(
        "pod_number_of_running_containers",
        running_containers(pod) as f64,
    );
    r
}

fn container_record(
    cluster: &str,
    pod: &PodInput,
    c: &crate::inputs::ContainerInput,
    node: &NodeInput,
) -> Record {
    let mut r = Record::new(RecordType::Container, cluster, &node.name);
    r.dimensions.insert("Namespace", pod.namespace.clone());
    r.dimensions
        .insert("PodName", pod_name(&pod.name, &pod.owners));
    r.dimensions.insert("FullPodName", pod.name.clone());
    r.dimensions.insert("ContainerName", c.name.clone());
    r.dimensions.insert("NodeName", node.name.clone());
    if let Some(v) = c.cpu_request_millicores {
        r.set("container_cpu_request", v);
    }
    if let Some(v) = c.cpu_limit_millicores {
        r.set("container_cpu_limit", v);
    }
    if let Some(v) = c.memory_request_bytes {
        r.set("container_memory_request", v);
    }
    if let Some(v) = c.memory_limit_bytes {
        r.set("container_memory_limit", v);
    }
    if let (Some(u), ContainerState::Running) = (c.usage, &c.state) {
        r.set("container_cpu_usage_total", u.cpu_millicores);
        r.set("container_memory_working_set", u.memory_bytes);
        if let Some(p) = percent(u.cpu_millicores, node.cpu_capacity_millicores) {
            r.set("container_cpu_utilization", p);
        }
        if let Some(p) = percent(u.memory_bytes, node.memory_capacity_bytes) {
            r.set("container_memory_utilization", p);
        }
    }
    r.flag(
        "container_status_running",
        c.state == ContainerState::Running,
    );
    r.flag(
        "container_status_terminated",
        c.state == ContainerState::Terminated,
    );
    let waiting_reason = match &c.state {
        ContainerState::Waiting { reason } => Some(reason.as_deref().unwrap_or("")),
        _ => None,
    };
    r.flag("container_status_waiting", waiting_reason.is_some());
    r.flag(
        "container_status_waiting_reason_crashed",
        waiting_reason == Some("CrashLoopBackOff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{ContainerInput, Usage};
    use crate::pod_name::Owner;

    fn node(name: &str, cpu: f64) -> NodeInput {
        NodeInput {
            name: name.into(),
            instance_id: format!("i-{name}"),
            instance_type: Some("m5.xlarge".into()),
            cpu_capacity_millicores: cpu,
            memory_capacity_bytes: 16e9,
            pods_capacity: 58.0,
            pods_allocatable: 58.0,
            conditions: [("Ready".to_string(), "True".to_string())].into(),
            usage: Some(Usage {
                cpu_millicores: 1000.0,
                memory_bytes: 4e9,
            }),
        }
    }

    fn container(name: &str, cpu_req: Option<f64>, cpu_lim: Option<f64>) -> ContainerInput {
        ContainerInput {
            name: name.into(),
            cpu_request_millicores: cpu_req,
            cpu_limit_millicores: cpu_lim,
            memory_request_bytes: Some(1e9),
            memory_limit_bytes: None,
            state: ContainerState::Running,
            restart_count: 0,
            usage: Some(Usage {
                cpu_millicores: 250.0,
                memory_bytes: 5e8,
            }),
        }
    }

    fn pod(name: &str, node: &str, phase: &str, mut containers: Vec<ContainerInput>) -> PodInput {
        if phase != "Running" {
            for c in &mut containers {
                c.state = ContainerState::Terminated;
            }
        }
        PodInput {
            namespace: "monthly-batch".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            node: Some(node.into()),
            phase: phase.into(),
            owners: vec![],
            ready: phase == "Running",
            scheduled: true,
            usage: Some(Usage {
                cpu_millicores: 250.0 * containers.len() as f64,
                memory_bytes: 5e8 * containers.len() as f64,
            }),
            containers,
            services: vec![],
        }
    }

    fn find<'a>(c: &'a Collection, kind: RecordType, key: &str, value: &str) -> &'a Record {
        c.records
            .iter()
            .find(|r| r.kind == kind && r.dimensions.get(key).map(String::as_str) == Some(value))
            .unwrap()
    }

    #[test]
    fn reserved_is_over_capacity_and_counts_finished_pods() {
        let nodes = [node("n1", 4000.0)];
        let pods = [
            pod(
                "exec-1",
                "n1",
                "Running",
                vec![container("spark", Some(1000.0), None)],
            ),
            pod(
                "exec-2",
                "n1",
                "Running",
                vec![container("spark", Some(1000.0), None)],
            ),
            // Still listed by the kubelet: counts toward the node's requests.
            pod(
                "done",
                "n1",
                "Succeeded",
                vec![container("spark", Some(1700.0), None)],
            ),
        ];
        let c = compute("eks-emr-cluster", &nodes, &pods, &HashMap::new());
        let n = find(&c, RecordType::Node, "NodeName", "n1");
        assert_eq!(n.value("node_cpu_request"), Some(3700.0));
        assert_eq!(n.value("node_cpu_reserved_capacity"), Some(92.5));
        assert_eq!(n.value("node_cpu_utilization"), Some(25.0));
        assert_eq!(n.value("node_number_of_running_pods"), Some(2.0));
        assert_eq!(n.value("node_number_of_running_containers"), Some(2.0));
        assert_eq!(n.dimensions["InstanceId"], "i-n1");
    }

    #[test]
    fn node_request_is_clamped_to_capacity() {
        let nodes = [node("n1", 2000.0)];
        let pods = [pod(
            "big",
            "n1",
            "Running",
            vec![container("c", Some(3000.0), None)],
        )];
        let c = compute("c", &nodes, &pods, &HashMap::new());
        let n = find(&c, RecordType::Node, "NodeName", "n1");
        assert_eq!(n.value("node_cpu_reserved_capacity"), Some(100.0));
    }

    #[test]
    fn pod_limits_only_when_every_container_sets_one() {
        let nodes = [node("n1", 4000.0)];
        let pods = [
            pod(
                "half",
                "n1",
                "Running",
                vec![
                    container("a", Some(500.0), Some(1000.0)),
                    container("b", None, None),
                ],
            ),
            pod(
                "full",
                "n1",
                "Running",
                vec![container("a", Some(500.0), Some(500.0))],
            ),
            pod("none", "n1", "Running", vec![container("a", None, None)]),
        ];
        let c = compute("c", &nodes, &pods, &HashMap::new());
        let half = find(&c, RecordType::Pod, "FullPodName", "half");
        assert_eq!(half.value("pod_cpu_request"), Some(500.0));
        assert_eq!(half.value("pod_cpu_limit"), None);
        assert_eq!(half.value("pod_cpu_utilization_over_pod_limit"), None);
        assert_eq!(half.value("pod_cpu_utilization"), Some(12.5));
        let full = find(&c, RecordType::Pod, "FullPodName", "full");
        assert_eq!(full.value("pod_cpu_utilization_over_pod_limit"), Some(50.0));
        assert_eq!(full.value("pod_cpu_reserved_capacity"), Some(12.5));
        let none = find(&c, RecordType::Pod, "FullPodName", "none");
        assert_eq!(none.value("pod_cpu_request"), None);
        assert_eq!(none.value("pod_cpu_reserved_capacity"), None);
    }

    #[test]
    fn restarts_are_a_delta() {
        let nodes = [node("n1", 4000.0)];
        let mut c1 = container("a", None, None);
        c1.restart_count = 3;
        let pods = [pod("p", "n1", "Running", vec![c1.clone()])];
        let first = compute("c", &nodes, &pods, &HashMap::new());
        assert_eq!(
            find(&first, RecordType::Pod, "FullPodName", "p")
                .value("pod_number_of_container_restarts"),
            Some(0.0)
        );
        c1.restart_count = 5;
        let pods = [pod("p", "n1", "Running", vec![c1])];
        let second = compute("c", &nodes, &pods, &first.restarts);
        assert_eq!(
            find(&second, RecordType::Pod, "FullPodName", "p")
                .value("pod_number_of_container_restarts"),
            Some(2.0)
        );
    }

    #[test]
    fn pod_name_dimension_and_cluster_counts() {
        let mut nodes = vec![node("n1", 4000.0), node("n2", 4000.0)];
        nodes[1]
            .conditions
            .insert("MemoryPressure".into(), "True".into());
        let mut runner = pod(
            "000000030mq3vadqab3-xk2lp",
            "n1",
            "Running",
            vec![container("job-runner", None, None)],
        );
        runner.owners = vec![Owner {
            kind: "Job".into(),
            name: "000000030mq3vadqab3".into(),
        }];
        runner.services = vec!["svc".into()];
        let pending = PodInput {
            node: None,
            phase: "Pending".into(),
            ..pod("waiting", "n1", "Pending", vec![])
        };
        let c = compute(
            "eks-emr-cluster",
            &nodes,
            &[runner, pending],
            &HashMap::new(),
        );
        let r = find(
            &c,
            RecordType::Pod,
            "FullPodName",
            "000000030mq3vadqab3-xk2lp",
        );
        assert_eq!(r.dimensions["PodName"], "000000030mq3vadqab3");
        assert_eq!(r.dimensions["Service"], "svc");
        let cluster = c
            .records
            .iter()
            .find(|r| r.kind == RecordType::Cluster)
            .unwrap();
        assert_eq!(cluster.value("cluster_node_count"), Some(2.0));
        assert_eq!(cluster.value("cluster_failed_node_count"), Some(1.0));
        assert_eq!(cluster.value("cluster_number_of_running_pods"), Some(1.0));
        let ns = find(
            &c,
            RecordType::ClusterNamespace,
            "Namespace",
            "monthly-batch",
        );
        assert_eq!(ns.value("namespace_number_of_running_pods"), Some(1.0));
        let svc = find(&c, RecordType::ClusterService, "Service", "svc");
        assert_eq!(svc.value("service_number_of_running_pods"), Some(1.0));
        let waiting = find(&c, RecordType::Pod, "FullPodName", "waiting");
        assert_eq!(waiting.value("pod_status_pending"), Some(1.0));
        assert_eq!(waiting.value("pod_cpu_utilization"), None);
    }
}
