//! Resource usage of pods and nodes: what cAdvisor and the kubelet's stats provider
//! measure on a real node, here from the process trees in `/proc`.
//!
//! The machine's cgroup v2 hierarchy is usually not delegated to sparkyard (read-only, or a
//! hybrid v1/v2 layout), so usage is accounted per **process tree**: each running
//! container is the tree rooted at its sandbox's `bwrap` pid ([`proc`]). At start the
//! sampler logs whether a writable cgroup v2 hierarchy exists ([`detect_cgroup_v2`]);
//! creating per-pod cgroups there is future work, and accounting stays the same either way.
//!
//! A sampler task ([`sampler`]) takes a sample every `interval` (10 s by default,
//! `[cluster] usage-sample-interval`) into the [`UsageStore`]: per container cumulative
//! CPU seconds, working set and start time; per pod and per node the sums ([`series`]).
//! Pods on simulated nodes run no process; their usage is modelled: each running
//! container uses [`SIMULATED_CPU_FACTOR`] × its CPU request (else its limit, else 0) and
//! its memory request (else its limit, else 0).
//!
//! The store is read through [`crate::KubeletHandle::usage`]: the API server serves
//! `metrics.k8s.io` and the node proxy's kubelet endpoints ([`exposition`]) from it (it is
//! the API server's [`MetricsSource`]), and other readers (a Container Insights agent,
//! Prometheus exposition) take [`UsageStore::snapshot`].

pub mod exposition;
pub mod proc;
pub mod sampler;
pub mod series;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use sparkyard_kube_apiserver::metrics_api::{
    ContainerMetric, KubeletReply, MetricsSource, NodeMetric, PodMetric, Usage,
};

/// Default time between two samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// A simulated container's CPU usage as a fraction of its request (or limit).
pub const SIMULATED_CPU_FACTOR: f64 = 0.9;

/// A container a pod worker runs now, as it reports it to the sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningContainer {
    pub name: String,
    /// The sandbox's `bwrap` pid: the root of the container's process tree.
    pub pid: u32,
    pub container_id: String,
    pub image: String,
    /// RFC 3339.
    pub started_at: String,
}

/// A pod of a real node with its running containers.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// `status.startTime`, RFC 3339.
    pub start_time: String,
    pub containers: Vec<RunningContainer>,
}

/// A container's usage at the latest sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUsage {
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub start_time: Option<DateTime<Utc>>,
    pub timestamp: DateTime<Utc>,
    /// The interval the CPU rate covers; `None` until the second sample.
    pub window: Option<Duration>,
    pub cpu_seconds_total: f64,
    pub cpu_nano_cores: Option<u64>,
    pub memory_working_set_bytes: u64,
    /// Processes in its tree (0 for a simulated container).
    pub processes: usize,
}

/// A pod's usage: the sums of its containers'.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub start_time: Option<DateTime<Utc>>,
    pub timestamp: DateTime<Utc>,
    pub window: Option<Duration>,
    pub cpu_seconds_total: f64,
    pub cpu_nano_cores: Option<u64>,
    pub memory_working_set_bytes: u64,
    pub containers: Vec<ContainerUsage>,
}

/// A node's usage: the sums of its pods'. Its "machine" is the node's capacity (every
/// embedded node is a scheduling budget on this one host).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeUsage {
    pub name: String,
    pub simulated: bool,
    /// When the sampler first saw the node.
    pub start_time: DateTime<Utc>,
    pub timestamp: DateTime<Utc>,
    pub window: Option<Duration>,
    pub cpu_seconds_total: f64,
    pub cpu_nano_cores: Option<u64>,
    pub memory_working_set_bytes: u64,
    pub machine_cpu_cores: f64,
    pub machine_memory_bytes: u64,
}

/// Everything the latest sample saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `None` before the first sample.
    pub taken_at: Option<DateTime<Utc>>,
    pub nodes: Vec<NodeUsage>,
    pub pods: Vec<PodUsage>,
}

impl Snapshot {
    pub fn node(&self, name: &str) -> Option<&NodeUsage> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn pods_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodUsage> + 'a {
        self.pods.iter().filter(move |p| p.node == node)
    }
}

/// Whether this machine offers a cgroup v2 hierarchy sparkyard could create pod cgroups in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupV2 {
    /// No cgroup v2 mount found.
    Absent,
    /// Mounted (pure or hybrid layout) but this process cannot create cgroups in it.
    ReadOnly(PathBuf),
    /// Mounted and writable where this process lives (delegated).
    Writable(PathBuf),
}

impl std::fmt::Display for CgroupV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CgroupV2::Absent => write!(f, "no cgroup v2 hierarchy"),
            CgroupV2::ReadOnly(p) => write!(f, "cgroup v2 at {} is not writable", p.display()),
            CgroupV2::Writable(p) => write!(f, "cgroup v2 at {} is writable", p.display()),
        }
    }
}

/// Looks for cgroup v2 (`/sys/fs/cgroup` in the unified layout, `/sys/fs/cgroup/unified`
/// in the hybrid one) and checks whether this process's own cgroup there is writable.
pub fn detect_cgroup_v2() -> CgroupV2 {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        })
        .unwrap_or_else(|| "/".into());
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let root = PathBuf::from(root);
        if !root.join("cgroup.controllers").exists() {
            continue;
        }
        let dir = root.join(own.trim_start_matches('/'));
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok();
        // SAFETY: access(2) on a NUL-terminated path we own.
        let writable = c_dir
            .map(|p| unsafe { libc::access(p.as_ptr(), libc::W_OK) } == 0)
            .unwrap_or(false);
        return if writable {
            CgroupV2::Writable(dir)
        } else {
            CgroupV2::ReadOnly(dir)
        };
    }
    CgroupV2::Absent
}

/// The samples, the running containers the pod workers report, and the latest snapshot.
pub struct UsageStore {
    interval: Duration,
    cgroup_v2: CgroupV2,
    running: Mutex<HashMap<String, RunningPod>>,
    series: Mutex<series::State>,
    latest: RwLock<Arc<Snapshot>>,
}

impl UsageStore {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(100)),
            cgroup_v2: detect_cgroup_v2(),
            running: Mutex::default(),
            series: Mutex::default(),
            latest: RwLock::default(),
        }
    }

    /// Time between two samples.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// What was found of cgroup v2 at start (accounting is per process tree either way).
    pub fn cgroup_v2(&self) -> &CgroupV2 {
        &self.cgroup_v2
    }

    /// The latest sample (empty before the first).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.latest.read().unwrap().clone()
    }

    /// A pod worker's running containers now (none: the pod is forgotten).
    pub fn report(&self, pod: RunningPod) {
        let mut running = self.running.lock().unwrap();
        if pod.containers.is_empty() {
            running.remove(&pod.uid);
        } else {
            running.insert(pod.uid.clone(), pod);
        }
    }

    /// The pod's worker ended.
    pub fn forget(&self, uid: &str) {
        self.running.lock().unwrap().remove(uid);
    }

    /// The real pods running now.
    pub fn running(&self) -> Vec<RunningPod> {
        self.running.lock().unwrap().values().cloned().collect()
    }

    /// Records one sample (the sampler's; tests).
    pub fn record(
        &self,
        at: std::time::Instant,
        now: DateTime<Utc>,
        nodes: &[series::NodeObservation],
        pods: &[series::PodObservation],
    ) -> Arc<Snapshot> {
        let snapshot = Arc::new(self.series.lock().unwrap().update(at, now, nodes, pods));
        *self.latest.write().unwrap() = snapshot.clone();
        snapshot
    }
}

fn usage(cpu_nano_cores: Option<u64>, memory: u64) -> Option<Usage> {
    Some(Usage {
        cpu_nano_cores: cpu_nano_cores?,
        memory_bytes: memory,
    })
}

/// metrics-server's view: the latest rates, for series with two samples.
impl MetricsSource for UsageStore {
    fn node_metrics(&self) -> Vec<NodeMetric> {
        self.snapshot()
            .nodes
            .iter()
            .filter_map(|n| {
                Some(NodeMetric {
                    name: n.name.clone(),
                    timestamp: n.timestamp,
                    window: n.window?,
                    usage: usage(n.cpu_nano_cores, n.memory_working_set_bytes)?,
                })
            })
            .collect()
    }

    fn pod_metrics(&self, namespace: Option<&str>) -> Vec<PodMetric> {
        self.snapshot()
            .pods
            .iter()
            .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
            .filter_map(|p| {
                let containers: Vec<ContainerMetric> = p
                    .containers
                    .iter()
                    .filter_map(|c| {
                        Some(ContainerMetric {
                            name: c.name.clone(),
                            usage: usage(c.cpu_nano_cores, c.memory_working_set_bytes)?,
                        })
                    })
                    .collect();
                if containers.is_empty() {
                    return None;
                }
                Some(PodMetric {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    uid: p.uid.clone(),
                    timestamp: p.timestamp,
                    window: p.window?,
                    containers,
                })
            })
            .collect()
    }

    fn kubelet_get(&self, node: &str, path: &str, query: &str) -> Option<KubeletReply> {
        let _ = query;
        let snapshot = self.snapshot();
        snapshot.node(node)?;
        Some(exposition::serve(&snapshot, node, path))
    }
}
