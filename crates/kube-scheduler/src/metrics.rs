//! kube-scheduler's Prometheus metrics, with its names, labels and buckets.
//!
//! - `/metrics`: `scheduler_schedule_attempts_total{result,profile}`,
//!   `scheduler_scheduling_attempt_duration_seconds{result,profile}`,
//!   `scheduler_pending_pods{queue}`, `scheduler_preemption_attempts_total`,
//!   `scheduler_preemption_victims` — recorded by the loop as it runs (process-wide: one
//!   scheduler per process);
//! - `/metrics/resources`: `kube_pod_resource_request` / `kube_pod_resource_limit`
//!   (`pkg/scheduler/metrics/resources`), computed at scrape time from the API server's
//!   pods ([`PodResources`]).
//!
//! Queues: `active` is the scheduling queue; a pod that failed is in `backoff` until its
//! back-off has passed, then `unschedulable` until a cluster change (or the periodic
//! flush) moves it back; `gated` counts pods with `schedulingGates`. A scheduling attempt
//! is `scheduled` (bound), `unschedulable`, or `error` (the binding write failed). Every
//! unschedulable attempt runs the preemption plugin, as kube-scheduler's PostFilter does,
//! and counts as a preemption attempt; `scheduler_preemption_victims` observes the number
//! of victims when a preemption plan is carried out.

use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use sparkyard_kube_apiserver::Client;
use sparkyard_scheduling::{PodRequirements, Resources};

use crate::{Scheduler, State, DEFAULT_SCHEDULER, PODS};

/// The scheduler profile every pod here is scheduled by.
pub const PROFILE: &str = DEFAULT_SCHEDULER;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub result: &'static str,
    pub profile: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

type AttemptDurations = Family<AttemptLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    durations: AttemptDurations,
    pending: Family<QueueLabels, Gauge<i64, AtomicI64>>,
    preemption_attempts: Counter,
    preemption_victims: Histogram,
    gated: Mutex<HashSet<String>>,
    pending_updated: Mutex<Option<Instant>>,
}

fn attempt_histogram() -> Histogram {
    // kube-scheduler: ExponentialBuckets(0.001, 2, 15).
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

const QUEUES: [&str; 4] = ["active", "backoff", "unschedulable", "gated"];

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let attempts = Family::<AttemptLabels, Counter>::default();
    let durations: AttemptDurations = Family::new_with_constructor(attempt_histogram);
    let pending = Family::<QueueLabels, Gauge<i64, AtomicI64>>::default();
    for queue in QUEUES {
        let _ = pending.get_or_create(&QueueLabels { queue });
    }
    let preemption_attempts = Counter::default();
    // kube-scheduler: ExponentialBuckets(1, 2, 7).
    let preemption_victims = Histogram::new(exponential_buckets(1.0, 2.0, 7));
    let mut registry = Registry::default();
    // `register` appends the final period; counters get `_total` when encoded.
    registry.register(
        "scheduler_schedule_attempts",
        "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem",
        attempts.clone(),
    );
    registry.register(
        "scheduler_scheduling_attempt_duration_seconds",
        "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
        durations.clone(),
    );
    registry.register(
        "scheduler_pending_pods",
        "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated",
        pending.clone(),
    );
    registry.register(
        "scheduler_preemption_attempts",
        "Total preemption attempts in the cluster till now",
        preemption_attempts.clone(),
    );
    registry.register(
        "scheduler_preemption_victims",
        "Number of selected preemption victims",
        preemption_victims.clone(),
    );
    Metrics {
        registry,
        attempts,
        durations,
        pending,
        preemption_attempts,
        preemption_victims,
        gated: Mutex::new(HashSet::new()),
        pending_updated: Mutex::new(None),
    }
});

/// One scheduling attempt ended with `result` (`scheduled`, `unschedulable`, `error`).
pub(crate) fn attempt(result: &'static str, started: Instant) {
    let labels = AttemptLabels {
        result,
        profile: PROFILE,
    };
    METRICS.attempts.get_or_create(&labels).inc();
    METRICS
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
}

/// An unschedulable attempt ran preemption; `victims` when a plan was carried out.
pub(crate) fn preemption(victims: Option<usize>) {
    METRICS.preemption_attempts.inc();
    if let Some(n) = victims {
        METRICS.preemption_victims.observe(n as f64);
    }
}

/// Whether the pod `key` waits on scheduling gates (`false` also when it is gone).
pub(crate) fn gated(key: &str, req: Option<&PodRequirements>) {
    let is_gated = req.is_some_and(|r| {
        r.gated && r.node_name.is_none() && !r.terminal && r.deletion_timestamp.is_none()
    });
    let mut set = METRICS.gated.lock().unwrap_or_else(|e| e.into_inner());
    if is_gated {
        set.insert(key.to_string());
    } else {
        set.remove(key);
    }
}

/// Forgets every gated pod (before a full resync).
pub(crate) fn reset_gated() {
    METRICS
        .gated
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Sets `scheduler_pending_pods` from the queue. Cheap for small queues; with thousands
/// of pending pods at most every half second (the loop wakes every second while pods wait).
pub(crate) fn update_pending(s: &Scheduler) {
    let now = Instant::now();
    {
        let mut last = METRICS
            .pending_updated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if s.pending.len() > 1000
            && last.is_some_and(|t| now.duration_since(t) < Duration::from_millis(500))
        {
            return;
        }
        *last = Some(now);
    }
    let (mut active, mut backoff, mut unschedulable) = (0i64, 0i64, 0i64);
    for p in s.pending.values() {
        match p.state {
            State::Active => active += 1,
            State::Unschedulable { retry_at, .. } if retry_at > now => backoff += 1,
            State::Unschedulable { .. } => unschedulable += 1,
        }
    }
    let gated = METRICS
        .gated
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len() as i64;
    for (queue, n) in [
        ("active", active),
        ("backoff", backoff),
        ("unschedulable", unschedulable),
        ("gated", gated),
    ] {
        METRICS.pending.get_or_create(&QueueLabels { queue }).set(n);
    }
}

/// The scheduler's `/metrics` families as OpenMetrics text (no `# EOF`).
pub fn metrics_text() -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry);
    out
}

/// `kube_pod_resource_request` / `kube_pod_resource_limit`, computed from the API
/// server's pods at each scrape, as kube-scheduler's `/metrics/resources` does: every pod
/// that is not terminal (a pod not bound yet never is), its requests and limits
/// aggregated as the scheduler counts them — app containers summed, init containers as
/// their peak, sidecars (restartable init containers) added, and the pod overhead added
/// (to limits only for the resources that have one). CPU in `cores`, memory and storage
/// in `bytes`.
#[derive(Clone)]
pub struct PodResources {
    client: Client,
}

impl std::fmt::Debug for PodResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodResources").finish()
    }
}

impl PodResources {
    pub fn new(client: Client) -> PodResources {
        PodResources { client }
    }

    /// The `/metrics/resources` families as OpenMetrics text (no `# EOF`).
    pub fn text(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
        out
    }
}

type Row = (Vec<(&'static str, String)>, f64);

/// Requests and limits of one pod, `None` when terminal or unreadable.
pub fn pod_requests_and_limits(pod: &Value) -> Option<(Resources, Resources)> {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if bound && matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let requests = PodRequirements::from_pod(pod).ok()?.requests;
    // Limits aggregate like requests: the same pod with each container's limits as its
    // only resources, overhead added afterwards for the resources that have a limit.
    let only_limits = |list: Option<&Value>| -> Vec<Value> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                json!({
                    "name": c.get("name").cloned().unwrap_or(Value::Null),
                    "restartPolicy": c.get("restartPolicy").cloned().unwrap_or(Value::Null),
                    "resources": {"limits": c.pointer("/resources/limits").cloned().unwrap_or(json!({}))},
                })
            })
            .collect()
    };
    let shadow = json!({
        "metadata": {"name": "limits"},
        "spec": {
            "containers": only_limits(pod.pointer("/spec/containers")),
            "initContainers": only_limits(pod.pointer("/spec/initContainers")),
        }
    });
    let mut limits = PodRequirements::from_pod(&shadow).ok()?.requests;
    if let Some(overhead) = pod.pointer("/spec/overhead") {
        let overhead = Resources::from_resource_list(overhead).ok()?;
        if limits.milli_cpu > 0 {
            limits.milli_cpu += overhead.milli_cpu;
        }
        if limits.memory > 0 {
            limits.memory += overhead.memory;
        }
        if limits.ephemeral_storage > 0 {
            limits.ephemeral_storage += overhead.ephemeral_storage;
        }
    }
    Some((requests, limits))
}

fn resource_rows(r: &Resources) -> Vec<(String, &'static str, f64)> {
    let mut rows = Vec::new();
    if r.milli_cpu != 0 {
        rows.push(("cpu".to_string(), "cores", r.milli_cpu as f64 / 1000.0));
    }
    if r.memory != 0 {
        rows.push(("memory".to_string(), "bytes", r.memory as f64));
    }
    if r.ephemeral_storage != 0 {
        rows.push((
            "ephemeral-storage".to_string(),
            "bytes",
            r.ephemeral_storage as f64,
        ));
    }
    for (name, v) in &r.scalars {
        let unit = if name.starts_with("hugepages-") {
            "bytes"
        } else if name.starts_with("attachable-volumes-") {
            "integer"
        } else {
            ""
        };
        rows.push((name.clone(), unit, *v as f64));
    }
    rows
}

impl Collector for PodResources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (pods, _) = self.client.list(PODS, None);
        let mut requests: Vec<Row> = Vec::new();
        let mut limits: Vec<Row> = Vec::new();
        for pod in &pods {
            let Some((req, lim)) = pod_requests_and_limits(pod) else {
                continue;
            };
            let s = |p: &str| {
                pod.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let scheduler = match s("/spec/schedulerName") {
                n if n.is_empty() => DEFAULT_SCHEDULER.to_string(),
                n => n,
            };
            let priority = pod
                .pointer("/spec/priority")
                .and_then(Value::as_i64)
                .map(|p| p.to_string())
                .unwrap_or_default();
            for (rows, resources) in [(&mut requests, &req), (&mut limits, &lim)] {
                for (resource, unit, value) in resource_rows(resources) {
                    rows.push((
                        vec![
                            ("namespace", s("/metadata/namespace")),
                            ("pod", s("/metadata/name")),
                            ("node", s("/spec/nodeName")),
                            ("scheduler", scheduler.clone()),
                            ("priority", priority.clone()),
                            ("resource", resource),
                            ("unit", unit.to_string()),
                        ],
                        value,
                    ));
                }
            }
        }
        for (name, help, rows) in [
            (
                "kube_pod_resource_request",
                "Resources requested by workloads on the cluster, broken down by pod.",
                requests,
            ),
            (
                "kube_pod_resource_limit",
                "Resources limit for workloads on the cluster, broken down by pod.",
                limits,
            ),
        ] {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0).metric_type())?;
            for (labels, value) in rows {
                ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_limits_count_init_containers_and_overhead() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "nodeName": "n1",
                "overhead": {"cpu": "100m", "memory": "10Mi"},
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "3"}}}
                ]
            },
            "status": {"phase": "Running"}
        });
        let (req, lim) = pod_requests_and_limits(&pod).unwrap();
        // max(250m + 250m, 2) + 100m overhead.
        assert_eq!(req.milli_cpu, 2100);
        assert_eq!(req.memory, 64 * 1024 * 1024 + 10 * 1024 * 1024);
        // max(1, 3) + overhead; no memory limit, so no memory overhead.
        assert_eq!(lim.milli_cpu, 3100);
        assert_eq!(lim.memory, 0);
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(pod_requests_and_limits(&done).is_none());
        let mut pending = done.clone();
        pending["spec"]["nodeName"] = json!("");
        assert!(pod_requests_and_limits(&pending).is_some());
    }
}
