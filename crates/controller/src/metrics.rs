//! `sparkyard_job_run_*`: job-run metrics in the style of the kubeflow spark-operator's
//! `spark_application_*`, labelled `{virtual_cluster_id, namespace}` (never a job-run id,
//! so the cardinality stays bounded).
//!
//! | exposed series | type | spark-operator analogue |
//! |---|---|---|
//! | `sparkyard_job_run_submitted_total` | counter: runs the controller submitted (PENDING → SUBMITTED) | `spark_application_submit_count` |
//! | `sparkyard_job_run_running` | gauge: runs RUNNING now | `spark_application_running_count` |
//! | `sparkyard_job_run_completed_total` | counter: runs that ended COMPLETED | `spark_application_success_count` |
//! | `sparkyard_job_run_failed_total` | counter: runs that ended FAILED | `spark_application_failure_count` |
//! | `sparkyard_job_run_cancelled_total` | counter: runs that ended CANCELLED | — |
//! | `sparkyard_job_run_submit_latency_seconds` | histogram: StartJobRun → driver pod created | `spark_application_submit_latency_seconds_histogram` |
//! | `sparkyard_job_run_start_latency_seconds` | histogram: StartJobRun → driver running | `spark_application_start_latency_seconds_histogram` |
//! | `sparkyard_job_run_vcpu_hours_total` | counter: requested vCPU-hours of ended runs' pods (crate::cost) | — |
//! | `sparkyard_job_run_memory_gb_hours_total` | counter: requested GB-hours of ended runs' pods | — |
//! | `sparkyard_job_run_ec2_cost_usd_total` | counter: ended runs' share of their EC2 instances, USD | — |
//! | `sparkyard_job_run_emr_cost_usd_total` | counter: ended runs' EMR on EKS charge, USD | — |
//!
//! **Restarts.** A restarted controller re-reconciles every active run, so it counts only
//! what it sees happen itself: the transitions it makes, and runs it saw active that
//! ended by other means (CancelJobRun of a PENDING run, DeleteVirtualCluster). A latency
//! is observed only when its event (the driver's creation, the driver starting to run)
//! happened after this controller started, once per run. So no run is counted twice
//! across restarts; a run that ends while no controller runs is not counted. The running
//! gauge is recomputed from the stored states after every pass.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{LazyLock, Mutex};

use k8s_openapi::api::core::v1::Pod;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sparkyard_emr::{Emr, JobRunRecord, JobRunState};

use crate::update_status::DRIVER_CONTAINER;

/// spark-operator's default `--metrics-job-submit-latency-buckets`.
pub const SUBMIT_LATENCY_BUCKETS: [f64; 10] =
    [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// spark-operator's default `--metrics-job-start-latency-buckets` (30 … 300 by 30).
pub const START_LATENCY_BUCKETS: [f64; 10] = [
    30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0, 240.0, 270.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RunLabels {
    pub virtual_cluster_id: String,
    pub namespace: String,
}

impl RunLabels {
    pub fn of(run: &JobRunRecord) -> RunLabels {
        RunLabels {
            virtual_cluster_id: run.virtual_cluster_id.clone(),
            namespace: run.namespace.clone(),
        }
    }
}

type Histograms = Family<RunLabels, Histogram, fn() -> Histogram>;
type Amounts = Family<RunLabels, Counter<f64, AtomicU64>>;

struct Metrics {
    registry: Registry,
    submitted: Family<RunLabels, Counter>,
    running: Family<RunLabels, Gauge<i64, AtomicI64>>,
    completed: Family<RunLabels, Counter>,
    failed: Family<RunLabels, Counter>,
    cancelled: Family<RunLabels, Counter>,
    submit_latency: Histograms,
    start_latency: Histograms,
    vcpu_hours: Amounts,
    gb_hours: Amounts,
    ec2_usd: Amounts,
    emr_usd: Amounts,
}

fn submit_histogram() -> Histogram {
    Histogram::new(SUBMIT_LATENCY_BUCKETS)
}

fn start_histogram() -> Histogram {
    Histogram::new(START_LATENCY_BUCKETS)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        registry: Registry::default(),
        submitted: Family::default(),
        running: Family::default(),
        completed: Family::default(),
        failed: Family::default(),
        cancelled: Family::default(),
        submit_latency: Family::new_with_constructor(submit_histogram),
        start_latency: Family::new_with_constructor(start_histogram),
        vcpu_hours: Family::default(),
        gb_hours: Family::default(),
        ec2_usd: Family::default(),
        emr_usd: Family::default(),
    };
    let mut registry = Registry::default();
    // `register` appends the final period; counters get `_total` when encoded.
    registry.register(
        "sparkyard_job_run_submitted",
        "Job runs the controller submitted to the cluster",
        m.submitted.clone(),
    );
    registry.register(
        "sparkyard_job_run_running",
        "Job runs in state RUNNING",
        m.running.clone(),
    );
    registry.register(
        "sparkyard_job_run_completed",
        "Job runs that ended COMPLETED",
        m.completed.clone(),
    );
    registry.register(
        "sparkyard_job_run_failed",
        "Job runs that ended FAILED",
        m.failed.clone(),
    );
    registry.register(
        "sparkyard_job_run_cancelled",
        "Job runs that ended CANCELLED",
        m.cancelled.clone(),
    );
    registry.register(
        "sparkyard_job_run_submit_latency_seconds",
        "Time from StartJobRun to the driver pod's creation",
        m.submit_latency.clone(),
    );
    registry.register(
        "sparkyard_job_run_start_latency_seconds",
        "Time from StartJobRun to the driver running",
        m.start_latency.clone(),
    );
    registry.register(
        "sparkyard_job_run_vcpu_hours",
        "Requested vCPU-hours of the pods of ended job runs",
        m.vcpu_hours.clone(),
    );
    registry.register(
        "sparkyard_job_run_memory_gb_hours",
        "Requested memory GB-hours of the pods of ended job runs",
        m.gb_hours.clone(),
    );
    registry.register(
        "sparkyard_job_run_ec2_cost_usd",
        "Ended job runs' share of the EC2 instances their pods ran on, in USD",
        m.ec2_usd.clone(),
    );
    registry.register(
        "sparkyard_job_run_emr_cost_usd",
        "Ended job runs' EMR on EKS charge (requested vCPU and memory, per second), in USD",
        m.emr_usd.clone(),
    );
    Metrics { registry, ..m }
});

/// The job-run families as OpenMetrics text (no `# EOF`).
pub fn metrics_text() -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry);
    out
}

fn count_end(state: JobRunState, labels: &RunLabels) {
    let family = match state {
        JobRunState::Completed => &METRICS.completed,
        JobRunState::Failed => &METRICS.failed,
        JobRunState::Cancelled => &METRICS.cancelled,
        _ => return,
    };
    family.get_or_create(labels).inc();
}

#[derive(Default)]
struct Seen {
    /// Active runs seen by this controller, not yet counted as ended.
    active: HashMap<String, RunLabels>,
    submit_observed: HashSet<String>,
    start_observed: HashSet<String>,
    /// Label sets the running gauge has had (set back to 0 when they have none).
    running_keys: HashSet<RunLabels>,
}

/// What this controller process has seen of the runs (see the module docs).
pub struct Tracker {
    started_ms: i64,
    seen: Mutex<Seen>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        LazyLock::force(&METRICS);
        Tracker {
            started_ms: chrono::Utc::now().timestamp_millis(),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The controller moved `before` to `after`.
    pub fn transitioned(&self, before: &JobRunRecord, after: &JobRunRecord) {
        let labels = RunLabels::of(after);
        if before.state == JobRunState::Pending && after.state == JobRunState::Submitted {
            METRICS.submitted.get_or_create(&labels).inc();
        }
        if after.state.is_terminal() {
            let mut seen = self.seen();
            seen.active.remove(&after.id);
            seen.submit_observed.remove(&after.id);
            seen.start_observed.remove(&after.id);
            drop(seen);
            count_end(after.state, &labels);
        }
    }

    /// The controller wrote the ended run's cost record (once per run).
    pub fn cost_recorded(&self, run: &JobRunRecord, cost: &sparkyard_cost::RunCost) {
        let labels = RunLabels::of(run);
        METRICS
            .vcpu_hours
            .get_or_create(&labels)
            .inc_by(cost.vcpu_hours);
        METRICS
            .gb_hours
            .get_or_create(&labels)
            .inc_by(cost.gb_hours);
        METRICS.ec2_usd.get_or_create(&labels).inc_by(cost.ec2_usd);
        METRICS.emr_usd.get_or_create(&labels).inc_by(cost.emr_usd);
    }

    /// The run's driver pod as the controller sees it now: observes the latencies once
    /// per run, for events after this controller started.
    pub fn driver_seen(&self, run: &JobRunRecord, driver: Option<&Pod>) {
        let Some(pod) = driver else {
            return;
        };
        let start_ms = run.created_at.timestamp_millis();
        let labels = RunLabels::of(run);
        let mut seen = self.seen();
        if let Some(created) = pod.metadata.creation_timestamp.as_ref() {
            let created_ms = created.0.as_millisecond();
            if created_ms >= self.started_ms && seen.submit_observed.insert(run.id.clone()) {
                METRICS
                    .submit_latency
                    .get_or_create(&labels)
                    .observe((created_ms - start_ms).max(0) as f64 / 1000.0);
            }
        }
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let driver_status = statuses.and_then(|cs| {
            cs.iter()
                .find(|c| c.name == DRIVER_CONTAINER)
                .or_else(|| cs.first())
        });
        let running_since = driver_status
            .and_then(|c| c.state.as_ref())
            .and_then(|s| {
                s.running
                    .as_ref()
                    .and_then(|r| r.started_at.clone())
                    .or_else(|| s.terminated.as_ref().and_then(|t| t.started_at.clone()))
            })
            .map(|t| t.0.as_millisecond());
        if let Some(running_ms) = running_since {
            if running_ms >= self.started_ms && seen.start_observed.insert(run.id.clone()) {
                METRICS
                    .start_latency
                    .get_or_create(&labels)
                    .observe((running_ms - start_ms).max(0) as f64 / 1000.0);
            }
        }
    }

    /// After a pass over `active` (the runs that were active at its start): counts the
    /// runs seen before that ended without the controller's doing, and sets the running
    /// gauge from the stored states.
    pub fn after_pass(&self, emr: &Emr, active: &[JobRunRecord]) {
        let now_active = emr.job_runs_in_states(&[
            JobRunState::Pending,
            JobRunState::Submitted,
            JobRunState::Running,
            JobRunState::CancelPending,
        ]);
        let ids: HashSet<&str> = now_active.iter().map(|r| r.id.as_str()).collect();
        let mut seen = self.seen();
        let gone: Vec<String> = seen
            .active
            .keys()
            .filter(|id| !ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            let labels = seen.active.remove(&id).expect("listed above");
            seen.submit_observed.remove(&id);
            seen.start_observed.remove(&id);
            if let Some(run) = emr.job_run(&id) {
                count_end(run.state, &labels);
            }
        }
        for run in active.iter().chain(now_active.iter()) {
            if ids.contains(run.id.as_str()) {
                seen.active
                    .entry(run.id.clone())
                    .or_insert_with(|| RunLabels::of(run));
            }
        }
        let mut running: HashMap<RunLabels, i64> = HashMap::new();
        for run in now_active
            .iter()
            .filter(|r| r.state == JobRunState::Running)
        {
            *running.entry(RunLabels::of(run)).or_default() += 1;
        }
        let keys: Vec<RunLabels> = seen
            .running_keys
            .iter()
            .cloned()
            .chain(running.keys().cloned())
            .collect();
        for key in keys {
            let n = running.get(&key).copied().unwrap_or(0);
            METRICS.running.get_or_create(&key).set(n);
            seen.running_keys.insert(key);
        }
    }
}
