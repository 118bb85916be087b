//! Turning observations into counters and rates (pure): what the sampler saw at one
//! instant → cumulative CPU seconds that never go backwards, working sets, and the CPU
//! rate over the last two samples, per container, pod and node.
//!
//! - A container's counter is the sum of the positive steps of its process tree's CPU
//!   total (a process whose time the kernel drops — reaped by a parent that ignores
//!   SIGCHLD — lowers the total; the counter holds instead of going back). A restarted
//!   container (new container ID) starts a new counter, as a new cgroup does.
//! - A pod's and a node's counters add the steps of their containers (a container's whole
//!   counter at its first sample: it started since the last one), so they keep counting
//!   across container restarts and pods coming and going.
//! - Rate = Δcounter / Δt between the last two samples of the series; the window is that
//!   Δt. A series seen once has no rate yet (the Metrics API leaves it out).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{ContainerUsage, NodeUsage, PodUsage, Snapshot};

/// How a container's CPU was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cpu {
    /// Total CPU seconds of its processes now (real containers).
    Total(f64),
    /// A modelled rate in cores (simulated nodes), integrated by the series.
    Rate(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerObservation {
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub start_time: Option<DateTime<Utc>>,
    pub cpu: Cpu,
    pub memory_bytes: u64,
    pub processes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodObservation {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub start_time: Option<DateTime<Utc>>,
    pub containers: Vec<ContainerObservation>,
}

/// A served node at sampling time.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeObservation {
    pub name: String,
    pub simulated: bool,
    /// The node's capacity: its "machine" (each node is a scheduling budget on one host).
    pub machine_cpu_cores: f64,
    pub machine_memory_bytes: u64,
}

/// A counter with its last two points.
#[derive(Debug, Clone, Default)]
struct Series {
    total: f64,
    previous: Option<(Instant, f64)>,
    current: Option<(Instant, f64)>,
}

impl Series {
    fn add(&mut self, at: Instant, step: f64) {
        self.total += step.max(0.0);
        self.previous = self.current;
        self.current = Some((at, self.total));
    }

    /// (nanocores, window) over the last two points.
    fn rate(&self) -> Option<(u64, Duration)> {
        let ((t0, c0), (t1, c1)) = (self.previous?, self.current?);
        let window = t1.checked_duration_since(t0)?;
        if window.is_zero() {
            return None;
        }
        let cores = ((c1 - c0) / window.as_secs_f64()).max(0.0);
        Some(((cores * 1e9).round() as u64, round_ms(window)))
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(((d.as_nanos() + 500_000) / 1_000_000) as u64)
}

#[derive(Debug, Clone)]
struct ContainerSeries {
    container_id: String,
    /// The raw total (or modelled integral) at the last sample.
    raw: f64,
    cpu: Series,
    last: Instant,
}

/// Every series, kept between samples.
#[derive(Debug, Default)]
pub struct State {
    nodes: HashMap<String, (Series, DateTime<Utc>)>,
    pods: HashMap<String, Series>,
    /// (pod uid, container name)
    containers: HashMap<(String, String), ContainerSeries>,
}

impl State {
    /// Takes one sample: `pods` running on `nodes`, observed at `at` (`now` on the wall
    /// clock). Pods of nodes not in `nodes` are ignored.
    pub fn update(
        &mut self,
        at: Instant,
        now: DateTime<Utc>,
        nodes: &[NodeObservation],
        pods: &[PodObservation],
    ) -> Snapshot {
        let served: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut node_steps: HashMap<&str, f64> = HashMap::new();
        let mut node_memory: HashMap<&str, u64> = HashMap::new();
        let mut seen_pods = HashSet::new();
        let mut seen_containers = HashSet::new();
        let mut pod_usage = Vec::new();
        for pod in pods.iter().filter(|p| served.contains(p.node.as_str())) {
            let mut pod_step = 0.0;
            let mut containers = Vec::new();
            for c in &pod.containers {
                let key = (pod.uid.clone(), c.name.clone());
                let existing = self
                    .containers
                    .get_mut(&key)
                    .filter(|s| s.container_id == c.container_id);
                let step = match (existing, c.cpu) {
                    (Some(series), Cpu::Total(raw)) => {
                        let step = (raw - series.raw).max(0.0);
                        series.raw = raw;
                        series.last = at;
                        series.cpu.add(at, step);
                        step
                    }
                    (Some(series), Cpu::Rate(cores)) => {
                        let step = cores * at.saturating_duration_since(series.last).as_secs_f64();
                        series.raw += step;
                        series.last = at;
                        series.cpu.add(at, step);
                        step
                    }
                    (None, cpu) => {
                        let initial = match cpu {
                            Cpu::Total(raw) => raw,
                            Cpu::Rate(cores) => {
                                let ran = c
                                    .start_time
                                    .map(|s| (now - s).to_std().unwrap_or_default())
                                    .unwrap_or_default();
                                cores * ran.as_secs_f64()
                            }
                        };
                        let mut cpu_series = Series::default();
                        cpu_series.add(at, initial);
                        self.containers.insert(
                            key.clone(),
                            ContainerSeries {
                                container_id: c.container_id.clone(),
                                raw: initial,
                                cpu: cpu_series,
                                last: at,
                            },
                        );
                        initial.max(0.0)
                    }
                };
                pod_step += step;
                let series = &self.containers[&key];
                let rate = series.cpu.rate();
                containers.push(ContainerUsage {
                    name: c.name.clone(),
                    container_id: c.container_id.clone(),
                    image: c.image.clone(),
                    start_time: c.start_time,
                    timestamp: now,
                    window: rate.map(|r| r.1),
                    cpu_seconds_total: series.cpu.total,
                    cpu_nano_cores: rate.map(|r| r.0),
                    memory_working_set_bytes: c.memory_bytes,
                    processes: c.processes,
                });
                seen_containers.insert(key);
            }
            let series = self.pods.entry(pod.uid.clone()).or_default();
            series.add(at, pod_step);
            seen_pods.insert(pod.uid.clone());
            let memory: u64 = containers.iter().map(|c| c.memory_working_set_bytes).sum();
            *node_steps.entry(pod.node.as_str()).or_default() += pod_step;
            *node_memory.entry(pod.node.as_str()).or_default() += memory;
            let rate = series.rate();
            pod_usage.push(PodUsage {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                uid: pod.uid.clone(),
                node: pod.node.clone(),
                start_time: pod.start_time,
                timestamp: now,
                window: rate.map(|r| r.1),
                cpu_seconds_total: series.total,
                cpu_nano_cores: rate.map(|r| r.0),
                memory_working_set_bytes: memory,
                containers,
            });
        }
        self.pods.retain(|uid, _| seen_pods.contains(uid));
        self.containers
            .retain(|key, _| seen_containers.contains(key));
        self.nodes.retain(|name, _| served.contains(name.as_str()));
        let mut node_usage = Vec::new();
        for node in nodes {
            let (series, since) = self
                .nodes
                .entry(node.name.clone())
                .or_insert_with(|| (Series::default(), now));
            series.add(
                at,
                node_steps.get(node.name.as_str()).copied().unwrap_or(0.0),
            );
            let rate = series.rate();
            node_usage.push(NodeUsage {
                name: node.name.clone(),
                simulated: node.simulated,
                start_time: *since,
                timestamp: now,
                window: rate.map(|r| r.1),
                cpu_seconds_total: series.total,
                cpu_nano_cores: rate.map(|r| r.0),
                memory_working_set_bytes: node_memory.get(node.name.as_str()).copied().unwrap_or(0),
                machine_cpu_cores: node.machine_cpu_cores,
                machine_memory_bytes: node.machine_memory_bytes,
            });
        }
        Snapshot {
            taken_at: Some(now),
            nodes: node_usage,
            pods: pod_usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeObservation {
        NodeObservation {
            name: name.into(),
            simulated: false,
            machine_cpu_cores: 8.0,
            machine_memory_bytes: 32 << 30,
        }
    }

    fn pod(uid: &str, node: &str, containers: Vec<ContainerObservation>) -> PodObservation {
        PodObservation {
            namespace: "ns".into(),
            name: format!("pod-{uid}"),
            uid: uid.into(),
            node: node.into(),
            start_time: None,
            containers,
        }
    }

    fn container(name: &str, id: &str, cpu: Cpu, memory: u64) -> ContainerObservation {
        ContainerObservation {
            name: name.into(),
            container_id: id.into(),
            image: "busybox".into(),
            start_time: None,
            cpu,
            memory_bytes: memory,
            processes: 1,
        }
    }

    #[test]
    fn rates_come_from_the_last_two_samples_and_counters_never_go_back() {
        let mut state = State::default();
        let t0 = Instant::now();
        let now = Utc::now();
        let nodes = [node("a")];
        let at = |s: u64| t0 + Duration::from_secs(s);
        let obs = |total: f64| {
            [pod(
                "u1",
                "a",
                vec![container("main", "c1", Cpu::Total(total), 4096)],
            )]
        };
        let first = state.update(at(0), now, &nodes, &obs(5.0));
        assert_eq!(
            first.pods[0].cpu_nano_cores, None,
            "one sample: no rate yet"
        );
        assert_eq!(first.pods[0].cpu_seconds_total, 5.0);
        assert_eq!(first.nodes[0].cpu_nano_cores, None);
        let second = state.update(at(10), now, &nodes, &obs(15.0));
        assert_eq!(second.pods[0].cpu_nano_cores, Some(1_000_000_000));
        assert_eq!(second.pods[0].window, Some(Duration::from_secs(10)));
        assert_eq!(
            second.pods[0].containers[0].cpu_nano_cores,
            Some(1_000_000_000)
        );
        assert_eq!(second.nodes[0].cpu_nano_cores, Some(1_000_000_000));
        assert_eq!(second.nodes[0].memory_working_set_bytes, 4096);
        assert_eq!(second.nodes[0].cpu_seconds_total, 15.0);
        // A drop (time the kernel no longer reports) holds the counter.
        let third = state.update(at(20), now, &nodes, &obs(12.0));
        assert_eq!(third.pods[0].cpu_seconds_total, 15.0);
        assert_eq!(third.pods[0].cpu_nano_cores, Some(0));
        let fourth = state.update(at(30), now, &nodes, &obs(17.0));
        assert_eq!(fourth.pods[0].cpu_seconds_total, 20.0);
        assert_eq!(fourth.pods[0].cpu_nano_cores, Some(500_000_000));
    }

    #[test]
    fn a_restart_starts_a_new_container_counter_and_the_pod_keeps_counting() {
        let mut state = State::default();
        let t0 = Instant::now();
        let now = Utc::now();
        let nodes = [node("a")];
        let at = |s: u64| t0 + Duration::from_secs(s);
        let run = |id: &str, total: f64| {
            [pod(
                "u1",
                "a",
                vec![container("main", id, Cpu::Total(total), 0)],
            )]
        };
        state.update(at(0), now, &nodes, &run("c1", 100.0));
        state.update(at(10), now, &nodes, &run("c1", 105.0));
        let restarted = state.update(at(20), now, &nodes, &run("c2", 2.0));
        let c = &restarted.pods[0].containers[0];
        assert_eq!((c.cpu_seconds_total, c.cpu_nano_cores), (2.0, None));
        assert_eq!(restarted.pods[0].cpu_seconds_total, 107.0);
        assert_eq!(restarted.pods[0].cpu_nano_cores, Some(200_000_000));
        assert_eq!(restarted.nodes[0].cpu_seconds_total, 107.0);
        // The pod goes; the node's counter stays.
        let gone = state.update(at(30), now, &nodes, &[]);
        assert!(gone.pods.is_empty());
        assert_eq!(gone.nodes[0].cpu_seconds_total, 107.0);
        assert_eq!(gone.nodes[0].memory_working_set_bytes, 0);
    }

    #[test]
    fn modelled_rates_integrate_exactly() {
        let mut state = State::default();
        let t0 = Instant::now();
        let now = Utc::now();
        let mut sim = node("s");
        sim.simulated = true;
        let nodes = [sim];
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let obs = [pod(
            "u",
            "s",
            vec![container("main", "c", Cpu::Rate(0.9), 1 << 30)],
        )];
        state.update(at(0), now, &nodes, &obs);
        let second = state.update(at(10_000), now, &nodes, &obs);
        assert_eq!(second.pods[0].cpu_nano_cores, Some(900_000_000));
        assert!((second.pods[0].cpu_seconds_total - 9.0).abs() < 1e-9);
        assert_eq!(second.nodes[0].memory_working_set_bytes, 1 << 30);
        // Pods of nodes not served are ignored.
        let other = [pod(
            "x",
            "elsewhere",
            vec![container("main", "c", Cpu::Rate(1.0), 1)],
        )];
        assert!(state
            .update(at(20_000), now, &nodes, &other)
            .pods
            .is_empty());
    }
}
