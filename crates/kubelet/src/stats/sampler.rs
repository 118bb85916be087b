//! The sampler task: every interval, one scan of `/proc` for the containers of real nodes
//! (the pod workers report which run, with their sandbox pids), the usage model for pods
//! on simulated nodes, and the result recorded in the [`UsageStore`](super::UsageStore).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::proc::ProcTable;
use super::series::{ContainerObservation, Cpu, NodeObservation, PodObservation};
use super::{RunningPod, Snapshot, SIMULATED_CPU_FACTOR};
use crate::{is_mirror_pod, Kubelet, PODS};
use sparkyard_scheduling::quantity;
use sparkyard_scheduling::NodeConfig;

/// `comm` of a container's root process: the sandbox.
const SANDBOX_COMM: &str = "bwrap";

/// Samples every interval, for as long as the kubelet runs.
pub async fn run(k: Arc<Kubelet>) {
    let store = k.stats.clone();
    tracing::info!(
        interval = ?store.interval(),
        cgroup_v2 = %store.cgroup_v2(),
        "usage accounting: container process trees from /proc (CPU utime+stime+cutime+cstime, \
         working set = RSS); per-pod cgroup v2 accounting is not implemented"
    );
    let mut ticker = tokio::time::interval(store.interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let k = k.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || sample(&k)).await {
            tracing::warn!(error = %e, "usage sample failed");
        }
    }
}

/// Takes one sample now.
pub fn sample(k: &Kubelet) -> Arc<Snapshot> {
    let configs = k.nodes.configs();
    let nodes: Vec<NodeObservation> = configs.iter().map(node_observation).collect();
    let real: HashSet<&str> = configs
        .iter()
        .filter(|c| !c.simulated)
        .map(|c| c.name.as_str())
        .collect();
    let running: Vec<RunningPod> = k
        .stats
        .running()
        .into_iter()
        .filter(|p| real.contains(p.node.as_str()))
        .collect();
    let at = Instant::now();
    let now = Utc::now();
    let mut pods = Vec::new();
    if !running.is_empty() {
        let table = ProcTable::scan();
        pods.extend(running.iter().map(|p| observe_real(&table, p)));
    }
    if configs.iter().any(|c| c.simulated) {
        let simulated: HashSet<&str> = configs
            .iter()
            .filter(|c| c.simulated)
            .map(|c| c.name.as_str())
            .collect();
        let (listed, _) = k.client.list(PODS, None);
        pods.extend(
            listed
                .iter()
                .filter(|p| simulated.contains(p["spec"]["nodeName"].as_str().unwrap_or("")))
                .filter_map(|p| observe_simulated(p)),
        );
    }
    k.stats.record(at, now, &nodes, &pods)
}

/// A node's "machine": its capacity (allocatable where no larger capacity is set).
pub fn node_observation(config: &NodeConfig) -> NodeObservation {
    type Parse = fn(&str) -> Result<i64, quantity::QuantityError>;
    let pick = |capacity: Option<&String>, allocatable: &str, parse: Parse| -> i64 {
        let allocatable = parse(allocatable).unwrap_or(0);
        capacity
            .and_then(|c| parse(c).ok())
            .filter(|c| *c >= allocatable)
            .unwrap_or(allocatable)
    };
    let capacity = config.capacity.clone().unwrap_or_default();
    let millis = pick(capacity.cpu.as_ref(), &config.cpu, quantity::millis);
    let memory = pick(capacity.memory.as_ref(), &config.memory, quantity::units);
    NodeObservation {
        name: config.name.clone(),
        simulated: config.simulated,
        machine_cpu_cores: millis.max(0) as f64 / 1000.0,
        machine_memory_bytes: memory.max(0) as u64,
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A real pod: each container's process tree (a container whose sandbox is gone, or
/// whose pid now belongs to another program, is left out).
fn observe_real(table: &ProcTable, pod: &RunningPod) -> PodObservation {
    let containers = pod
        .containers
        .iter()
        .filter_map(|c| {
            let usage = table.tree(c.pid, Some(SANDBOX_COMM))?;
            Some(ContainerObservation {
                name: c.name.clone(),
                container_id: c.container_id.clone(),
                image: c.image.clone(),
                start_time: parse_time(&c.started_at),
                cpu: Cpu::Total(usage.cpu_seconds),
                memory_bytes: usage.rss_bytes,
                processes: usage.processes,
            })
        })
        .collect();
    PodObservation {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        node: pod.node.clone(),
        start_time: parse_time(&pod.start_time),
        containers,
    }
}

/// A container's request for `resource`, else its limit, else 0.
fn requested(
    container: &Value,
    resource: &str,
    parse: fn(&str) -> Result<i64, quantity::QuantityError>,
) -> i64 {
    ["requests", "limits"]
        .iter()
        .find_map(|kind| {
            let text = quantity::json_text(&container["resources"][kind][resource])?;
            parse(&text).ok()
        })
        .unwrap_or(0)
        .max(0)
}

/// A pod on a simulated node: its running containers use the model's share of their
/// requests. `None` unless the pod runs.
pub fn observe_simulated(pod: &Value) -> Option<PodObservation> {
    if is_mirror_pod(pod) || pod["status"]["phase"] != "Running" {
        return None;
    }
    let statuses = pod["status"]["containerStatuses"].as_array()?;
    let specs = pod["spec"]["containers"].as_array()?;
    let containers = specs
        .iter()
        .filter_map(|spec| {
            let name = spec["name"].as_str()?;
            let status = statuses.iter().find(|s| s["name"] == name)?;
            let started = status["state"]["running"]["startedAt"].as_str()?;
            let cpu_millis = requested(spec, "cpu", quantity::millis);
            Some(ContainerObservation {
                name: name.to_string(),
                container_id: status["containerID"].as_str().unwrap_or("").to_string(),
                image: spec["image"].as_str().unwrap_or("").to_string(),
                start_time: parse_time(started),
                cpu: Cpu::Rate(cpu_millis as f64 / 1000.0 * SIMULATED_CPU_FACTOR),
                memory_bytes: requested(spec, "memory", quantity::units) as u64,
                processes: 0,
            })
        })
        .collect();
    let meta = &pod["metadata"];
    Some(PodObservation {
        namespace: meta["namespace"].as_str()?.to_string(),
        name: meta["name"].as_str()?.to_string(),
        uid: meta["uid"].as_str()?.to_string(),
        node: pod["spec"]["nodeName"].as_str()?.to_string(),
        start_time: pod["status"]["startTime"].as_str().and_then(parse_time),
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simulated_containers_use_their_requests_or_limits() {
        let pod = json!({
            "metadata": {"namespace": "ns", "name": "p", "uid": "u"},
            "spec": {"nodeName": "sim", "containers": [
                {"name": "a", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "image": "x", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
                {"name": "c", "image": "x"},
                {"name": "d", "image": "x"},
            ]},
            "status": {"phase": "Running", "startTime": "2025-01-01T00:00:00Z", "containerStatuses": [
                {"name": "a", "containerID": "sim://a", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}},
                {"name": "b", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}},
                {"name": "c", "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}},
                {"name": "d", "state": {"terminated": {"exitCode": 0}}},
            ]},
        });
        let obs = observe_simulated(&pod).unwrap();
        let cpu: Vec<Cpu> = obs.containers.iter().map(|c| c.cpu).collect();
        assert_eq!(cpu, [Cpu::Rate(0.9), Cpu::Rate(0.45), Cpu::Rate(0.0)]);
        let memory: Vec<u64> = obs.containers.iter().map(|c| c.memory_bytes).collect();
        assert_eq!(memory, [1 << 30, 256 << 20, 0]);
        assert_eq!(obs.containers[0].container_id, "sim://a");
        let mut pending = pod.clone();
        pending["status"]["phase"] = json!("Pending");
        assert!(observe_simulated(&pending).is_none());
    }

    #[test]
    fn a_nodes_machine_is_its_capacity() {
        let mut node = sparkyard_scheduling::default_nodes().remove(0);
        node.cpu = "7910m".into();
        node.memory = "30Gi".into();
        node.capacity = Some(sparkyard_scheduling::node::CapacityConfig {
            cpu: Some("8".into()),
            memory: Some("32Gi".into()),
            pods: None,
            ephemeral_storage: None,
        });
        let obs = node_observation(&node);
        assert_eq!(
            (obs.machine_cpu_cores, obs.machine_memory_bytes),
            (8.0, 32 << 30)
        );
        node.capacity = None;
        assert_eq!(node_observation(&node).machine_cpu_cores, 7.91);
    }
}
