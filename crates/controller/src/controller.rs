//! The reconcile loop: for every active job run, dereference → validate → build → apply →
//! update status, driven by watches on the runs' Jobs and pods and by a periodic resync.
//!
//! Work queue: a watch event marks its run (by the job-run-id label) dirty; a pass looks at
//! the dirty runs, the PENDING and CANCEL_PENDING ones (StartJobRun and CancelJobRun wake
//! the loop at once) and the ones waiting out a retry back-off, and at every active run once
//! per resync. The runs of a pass are reconciled concurrently, at most
//! [`MAX_IN_FLIGHT`] at a time: that is the backpressure — runs beyond it stay PENDING in
//! the durable store, in order, and a slow API server slows submission instead of piling up
//! requests.
//!
//! Crash safety: every object has a stable name (per run and attempt) and is applied
//! server-side, and a state is recorded only after what it stands for exists. A restarted
//! controller lists what the cluster has (the reflectors are primed before the first pass)
//! and continues: nothing is created twice and no run is lost.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use sparkyard_emr::{
    Emr, FailureReason, JobRunRecord, JobRunState, JobRunTransition, TransitionError,
};
use tokio::sync::Notify;

use crate::apply;
use crate::build::job_runner::RUNNER_CONTAINER;
use crate::build::{self, LABEL_JOB_ID};
use crate::config::ControllerConfig;
use crate::dereference::{dereference, Failure, RunRefs};
use crate::status::{self, DriverObservation};
use crate::update_status::{free_slots, observe, retry_delay, to_emr};
use crate::validate::{validate, SubmitSettings, Validated};

/// Where the controller finds the cluster; `sparkyard serve` fills the defaults from the
/// embedded cluster when it runs one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: ControllerConfig,
    /// Used when `[controller] kubeconfig` is not set.
    pub default_kubeconfig: Option<PathBuf>,
    /// Used when `[controller] master` is not set.
    pub default_master: Option<String>,
    /// Where drivers write Spark event logs for the History Server (the persistent app
    /// UI); `None` when `[history]` is disabled.
    pub event_logs: Option<sparkyard_logs::EventLogSettings>,
    /// Where S3 is for the runs' S3A defaults (crate::s3a); `None`: no S3 defaults.
    pub s3: Option<crate::s3a::S3Settings>,
    /// The cluster's Spark carries sparkyard's spark-runtime jar, so runs get EMR's
    /// `spark.app.id` (`spark-<jobRunId>`, crate::submit::APP_ID_STEP) and SQL job drivers
    /// run in cluster mode (crate::submit::SQL_RUNNER).
    pub spark_runtime: bool,
}

/// The API server URL as pods see it, when nothing says otherwise.
pub const IN_CLUSTER_MASTER: &str = "https://kubernetes.default.svc";

/// When sparkyard itself runs in a pod: the API server as the kubelet told this pod
/// (`KUBERNETES_SERVICE_HOST`/`_PORT`, what client-go's in-cluster config uses), so pods it
/// starts reach it the same way — `kubernetes.default.svc` assumes port 443, which not
/// every cluster serves (the embedded one binds where it can).
fn own_pods_master() -> Option<String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Some(format!("https://{host}:{port}"))
}

/// Starts the controller as a background task. It retries connecting to the cluster until
/// it can, so `sparkyard serve` never fails because the cluster is not there yet.
pub fn spawn(emr: Emr, settings: Settings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(emr, settings))
}

async fn run(emr: Emr, settings: Settings) {
    let kubeconfig = settings
        .config
        .kubeconfig
        .clone()
        .or(settings.default_kubeconfig.clone());
    let client = loop {
        match crate::client::connect(kubeconfig.as_deref()).await {
            Ok(client) => break client,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "job-run controller cannot reach the cluster yet; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    crate::namespace_rbac::spawn(emr.clone(), client.clone());
    let queue = Arc::new(Queue::default());
    let ledger = Arc::new(crate::cost::Ledger::default());
    let nodes = watch_nodes(&client);
    let jobs = reflect::<Job>(&client, &queue, |_, _| {});
    let pods = {
        let (ledger, nodes) = (ledger.clone(), nodes.clone());
        reflect::<Pod>(&client, &queue, move |pod, deleted| {
            ledger.observe(pod, deleted, chrono::Utc::now(), |name| {
                nodes
                    .get(&ObjectRef::new(name))
                    .map(|n| n.metadata.labels.clone().unwrap_or_default())
            })
        })
    };
    // The first pass must see what already exists, or it would submit runs again.
    let (jobs_ready, pods_ready) = tokio::join!(jobs.wait_until_ready(), pods.wait_until_ready());
    if jobs_ready.is_err() || pods_ready.is_err() {
        tracing::error!("job-run controller: watches ended before listing; controller stopped");
        return;
    }
    let master = settings
        .config
        .master
        .clone()
        .or(settings.default_master.clone())
        .or_else(own_pods_master)
        .unwrap_or_else(|| IN_CLUSTER_MASTER.to_string());
    tracing::info!(%master, kubeconfig = ?kubeconfig, "job-run controller started");
    let resync = settings.config.resync();
    let mut requested = emr.job_runs_requested();
    let controller = Controller {
        emr,
        config: settings.config,
        event_logs: settings.event_logs,
        s3: settings.s3,
        spark_runtime: settings.spark_runtime,
        master,
        client,
        jobs,
        pods,
        retries: Mutex::new(HashMap::new()),
        metrics: crate::metrics::Tracker::new(),
        recently_applied: apply::RecentlyApplied::default(),
        ledger,
    };
    let mut last_full = Instant::now();
    let mut last_collection = Instant::now();
    controller.pass(None).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until((last_full + resync).into()) => {}
            _ = queue.wake.notified() => {
                // Let a burst of events (a pod's status changing several times) settle.
                tokio::time::sleep(SETTLE).await;
            }
            _ = requested.changed() => {}
        }
        let dirty = queue.take();
        if last_full.elapsed() >= resync || dirty.relisted {
            last_full = Instant::now();
            controller.pass(None).await;
        } else {
            controller.pass(Some(&dirty.runs)).await;
        }
        // At most once a second: it walks the caches, which hold every run's objects.
        if last_collection.elapsed() >= Duration::from_secs(1) {
            last_collection = Instant::now();
            controller.collect_finished().await;
            controller.record_costs().await;
        }
    }
}

/// How many runs a pass reconciles at once (each a handful of API calls).
pub const MAX_IN_FLIGHT: usize = 64;

/// How long the loop lets watch events accumulate before a pass.
const SETTLE: Duration = Duration::from_millis(20);

/// The work queue: the runs whose Jobs or pods changed since the last pass, keyed by run id
/// (many events for one run are one entry).
#[derive(Default)]
struct Queue {
    dirty: Mutex<Dirty>,
    wake: Notify,
}

#[derive(Default)]
struct Dirty {
    runs: HashSet<String>,
    /// A watch listed again (after a disconnect): anything may have changed.
    relisted: bool,
}

impl Queue {
    fn add(&self, run_id: Option<&String>, relisted: bool) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = run_id {
            if !dirty.runs.contains(id) {
                dirty.runs.insert(id.clone());
            }
        }
        dirty.relisted |= relisted;
        drop(dirty);
        self.wake.notify_one();
    }

    fn take(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A reflector of the objects labelled with a job-run id, in every namespace; each change
/// marks its run dirty and wakes the loop. `seen` gets every object the watch delivers
/// (`true`: deleted), before the loop looks.
fn reflect<K>(
    client: &Client,
    queue: &Arc<Queue>,
    seen: impl Fn(&K, bool) + Send + Sync + 'static,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(
        Api::<K>::all(client.clone()),
        watcher::Config::default().labels(LABEL_JOB_ID),
    )
    .default_backoff()
    .reflect(writer);
    let queue = queue.clone();
    tokio::spawn(async move {
        stream
            .for_each(|event| {
                match event {
                    Ok(watcher::Event::Apply(o)) => {
                        seen(&o, false);
                        queue.add(o.labels().get(LABEL_JOB_ID), false)
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        seen(&o, true);
                        queue.add(o.labels().get(LABEL_JOB_ID), false)
                    }
                    Ok(watcher::Event::InitApply(o)) => seen(&o, false),
                    Ok(watcher::Event::InitDone) => queue.add(None, true),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "job-run watch interrupted; resuming")
                    }
                }
                futures::future::ready(())
            })
            .await;
    });
    reader
}

/// The cluster's nodes, for the labels that price a pod's node (crate::cost). Without the
/// permission to list nodes the watch retries quietly and pods are recorded without one.
fn watch_nodes(client: &Client) -> Store<Node> {
    let (reader, writer) = reflector::store();
    let stream = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    tokio::spawn(async move {
        stream
            .for_each(|event| {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "node watch interrupted; resuming");
                }
                futures::future::ready(())
            })
            .await;
    });
    reader
}

/// A failed attempt waiting for its back-off before the next one.
struct PendingRetry {
    not_before: Instant,
}

struct Controller {
    emr: Emr,
    config: ControllerConfig,
    event_logs: Option<sparkyard_logs::EventLogSettings>,
    s3: Option<crate::s3a::S3Settings>,
    spark_runtime: bool,
    master: String,
    client: Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    retries: Mutex<HashMap<String, PendingRetry>>,
    /// `sparkyard_job_run_*`: what this process saw happen (crate::metrics).
    metrics: crate::metrics::Tracker,
    /// The shared objects (namespace and role RBAC, service accounts) applied lately.
    recently_applied: apply::RecentlyApplied,
    /// Every pod of every active run, for the cost records (crate::cost).
    ledger: Arc<crate::cost::Ledger>,
}

type PassResult = anyhow::Result<()>;

/// What the serial part of a pass decided for a PENDING run.
enum Admission {
    /// No free slot yet: it stays PENDING, in its place in the queue.
    Wait,
    Submit(Box<RunRefs>, Box<Validated>),
    Fail(Failure),
}

/// What a pass does for one run.
enum Step {
    Submit(Box<RunRefs>, Box<Validated>),
    Fail(Failure),
    Follow,
    Cancel,
}

impl Controller {
    /// One look at the active runs (all of them, or the PENDING, CANCEL_PENDING, retrying
    /// and `dirty` ones), oldest first, so that queued runs take the free slots in order.
    async fn pass(&self, dirty: Option<&HashSet<String>>) {
        use JobRunState::*;
        let runs = self
            .emr
            .job_runs_in_states(&[Pending, Submitted, Running, CancelPending]);
        let mut busy: HashMap<String, u64> = HashMap::new();
        for run in &runs {
            if matches!(run.state, Submitted | Running | CancelPending) {
                *busy.entry(run.virtual_cluster_id.clone()).or_default() += 1;
            }
        }
        let retrying: HashSet<String> = self.retries().keys().cloned().collect();
        let mut work = Vec::new();
        for run in &runs {
            let wanted = match dirty {
                None => true,
                Some(dirty) => {
                    matches!(run.state, Pending | CancelPending)
                        || dirty.contains(&run.id)
                        || retrying.contains(&run.id)
                }
            };
            if !wanted {
                continue;
            }
            // PENDING runs take their slots here, in order, before any runs concurrently.
            let step = match run.state {
                Pending => match self.admit(run, &mut busy) {
                    Admission::Wait => continue,
                    Admission::Submit(refs, validated) => Step::Submit(refs, validated),
                    Admission::Fail(failure) => Step::Fail(failure),
                },
                Submitted | Running => Step::Follow,
                CancelPending => Step::Cancel,
                _ => continue,
            };
            work.push(self.reconcile(run, step));
        }
        futures::stream::iter(work)
            .buffer_unordered(MAX_IN_FLIGHT)
            .for_each(|()| futures::future::ready(()))
            .await;
        let active: HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        self.retries().retain(|id, _| active.contains(id.as_str()));
        let now = chrono::Utc::now();
        let settle = chrono::Duration::from_std(crate::cost::SETTLE_LIMIT).unwrap_or_default();
        self.ledger.retain(&active, |id| {
            let run = self.emr.job_run(id)?;
            let ended = run.finished_at.filter(|_| run.cost.is_none())?;
            (now - ended < settle).then_some(ended)
        });
        self.metrics.after_pass(&self.emr, &runs);
    }

    fn retries(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingRetry>> {
        self.retries.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn reconcile(&self, run: &JobRunRecord, step: Step) {
        let result = match step {
            Step::Submit(refs, validated) => self.pending(run, refs, validated).await,
            Step::Fail(failure) => self.fail(run, failure).await,
            Step::Follow => self.active(run).await,
            Step::Cancel => self.cancelling(run).await,
        };
        if let Err(e) = result {
            tracing::warn!(job_run = %run.id, error = %format!("{e:#}"), "reconcile failed; will retry");
        }
    }

    /// Deletes the objects of runs that finished `ttl-seconds-after-finished` ago.
    async fn collect_finished(&self) {
        use JobRunState::*;
        let runs = self
            .emr
            .job_runs_in_states(&[Pending, Submitted, Running, CancelPending]);
        let active: HashSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        let (jobs, pods) = (self.jobs.state(), self.pods.state());
        let plan = crate::collect::plan(
            jobs.iter().map(|j| j.as_ref()),
            pods.iter().map(|p| p.as_ref()),
            &active,
            |id| self.emr.job_run(id),
            chrono::Utc::now(),
            self.config.ttl_after_finished(),
        );
        for collection in plan {
            tracing::info!(job_run = %collection.job_run_id, namespace = %collection.namespace, jobs = ?collection.jobs, pods = ?collection.pods, "deleting a finished job run's objects (ttl-seconds-after-finished)");
            if let Err(e) = apply::delete_finished(&self.client, &collection).await {
                tracing::warn!(job_run = %collection.job_run_id, error = %e, "deleting a finished job run's objects failed; will retry");
            }
        }
    }

    /// Writes the cost records that are due (crate::cost): ended runs whose pods have all
    /// ended too.
    async fn record_costs(&self) {
        let region = self.emr.settings().region.clone();
        for (id, cost) in self.ledger.take_due(&region, chrono::Utc::now()) {
            let Some(cost) = cost else { continue };
            match self.emr.record_job_run_cost(&id, cost).await {
                Ok(run) => {
                    if let Some(cost) = &run.cost {
                        tracing::info!(job_run = %id, vcpu_hours = cost.vcpu_hours, gb_hours = cost.gb_hours, ec2_usd = cost.ec2_usd, emr_usd = cost.emr_usd, "job run cost recorded");
                        self.metrics.cost_recorded(&run, cost);
                    }
                }
                Err(e) => {
                    tracing::warn!(job_run = %id, error = %e, "recording the job run's cost failed")
                }
            }
        }
    }

    fn settings(&self) -> SubmitSettings<'_> {
        SubmitSettings {
            master: &self.master,
            spark_home: &self.config.spark_home,
            spark_runtime: self.spark_runtime,
        }
    }

    fn prepare(&self, run: &JobRunRecord) -> Result<(RunRefs, Validated), Failure> {
        let vc = self.emr.virtual_cluster(&run.virtual_cluster_id);
        let refs = dereference(run, vc.as_ref(), &self.config)?;
        let mut validated = validate(&refs, &self.settings())?;
        if let Some(event_logs) = &self.event_logs {
            let logging = sparkyard_logs::RunLogConfig::from_overrides(
                &run.virtual_cluster_id,
                &run.execution_role_arn,
                run.configuration_overrides.as_ref(),
            );
            // spark-defaults precedence: a user's `--conf` for the same key still wins.
            for (key, value) in sparkyard_logs::event_log_confs(&logging, event_logs) {
                validated
                    .resolved
                    .spark_defaults
                    .entry(key)
                    .or_insert(value);
            }
        }
        // s3:// through S3A with the pod's web identity; the user's settings win.
        if let Some(s3) = &self.s3 {
            for (key, value) in crate::s3a::run_defaults(s3, &validated.resolved) {
                validated.resolved.spark_defaults.insert(key, value);
            }
        }
        Ok((refs, validated))
    }

    /// PENDING, in the pass's serial part: prepared, and given a slot of its virtual
    /// cluster's `maxConcurrentJobRuns` if one is free.
    fn admit(&self, run: &JobRunRecord, busy: &mut HashMap<String, u64>) -> Admission {
        let (refs, validated) = match self.prepare(run) {
            Ok(ready) => ready,
            Err(failure) => return Admission::Fail(failure),
        };
        let max = self
            .emr
            .virtual_cluster(&run.virtual_cluster_id)
            .and_then(|vc| vc.max_concurrent());
        let used = busy.entry(run.virtual_cluster_id.clone()).or_default();
        if free_slots(max, *used) == Some(0) {
            let waited = (chrono::Utc::now() - run.created_at)
                .to_std()
                .unwrap_or_default();
            if waited >= self.config.queue_timeout() {
                let details = format!(
                    "JobRun failed: it waited {} minutes in the queue of virtual cluster {} without a free slot (maxConcurrentJobRuns {}).",
                    waited.as_secs() / 60,
                    run.virtual_cluster_id,
                    max.unwrap_or_default()
                );
                return Admission::Fail(Failure::new(FailureReason::UserError, details));
            }
            return Admission::Wait;
        }
        *used += 1;
        Admission::Submit(Box::new(refs), Box::new(validated))
    }

    /// PENDING with a slot: check the namespace, apply, then record SUBMITTED.
    async fn pending(
        &self,
        run: &JobRunRecord,
        refs: Box<RunRefs>,
        validated: Box<Validated>,
    ) -> PassResult {
        let Some(namespace_uid) = apply::namespace_uid(&self.client, &refs.namespace).await? else {
            let details = format!(
                "Cluster {} is not usable for virtual cluster {}: namespace {} does not exist. Create it (kubectl create namespace {}) and start the job run again.",
                refs.cluster_id, refs.virtual_cluster_id, refs.namespace, refs.namespace
            );
            return self
                .fail(
                    run,
                    Failure::new(FailureReason::ClusterUnavailable, details),
                )
                .await;
        };
        if let Err(failure) = self.submit(&refs, &validated, Some(namespace_uid)).await? {
            return self.fail(run, failure).await;
        }
        tracing::info!(job_run = %run.id, runner = %refs.runner_job_name(), namespace = %refs.namespace, "job run submitted");
        self.transition(run, JobRunTransition::to(JobRunState::Submitted))
            .await
    }

    /// Applies one attempt's objects. `Ok(Err(_))`: the cluster refused them for good.
    /// `namespace_uid`: the namespace's uid when the caller just read it.
    async fn submit(
        &self,
        refs: &RunRefs,
        validated: &Validated,
        namespace_uid: Option<String>,
    ) -> anyhow::Result<Result<(), Failure>> {
        let namespace_uid = match namespace_uid {
            Some(uid) => uid,
            None => apply::namespace_uid(&self.client, &refs.namespace)
                .await?
                .unwrap_or_default(),
        };
        let objects = build::run_objects(
            refs,
            validated,
            &self.config.tool_image,
            self.config.native_submission,
        );
        match apply::apply_run(
            &self.client,
            &objects,
            &self.recently_applied,
            &namespace_uid,
        )
        .await
        {
            Ok(()) => Ok(Ok(())),
            Err(e) if apply::is_permanent(&e) => {
                tracing::error!(job_run = %refs.job_run_id, error = %e, "the cluster refused the job run's objects");
                Ok(Err(Failure::new(
                    FailureReason::InternalError,
                    "JobRun submission failed due to an internal error.",
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// SUBMITTED / RUNNING: follow the current attempt's runner and driver.
    async fn active(&self, run: &JobRunRecord) -> PassResult {
        let (refs, validated) = match self.prepare(run) {
            Ok(ready) => ready,
            Err(failure) => return self.fail(run, failure).await,
        };
        let ns = refs.namespace.as_str();
        let runner = self
            .jobs
            .get(&ObjectRef::new(&refs.runner_job_name()).within(ns));
        let driver = self
            .pods
            .get(&ObjectRef::new(&refs.driver_pod_name()).within(ns));
        self.metrics.driver_seen(run, driver.as_deref());
        if runner.is_none() && driver.is_none() && run.state == JobRunState::Submitted {
            // Not in the cache yet (just applied) or removed behind our back: applying again
            // is a no-op in the first case and restores the runner in the second.
            if let Err(failure) = self.submit(&refs, &validated, None).await? {
                return self.fail(run, failure).await;
            }
            return Ok(());
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut observed = observe(run.state, runner.as_deref(), driver.as_deref(), now_ms);
        if observed.runner_failed && observed.driver.is_none() {
            observed.runner_error = self.runner_error(ns, &refs.runner_job_name()).await;
        }
        let timeout = validated.resolved.container_defaults.job_start_timeout;
        let Some(next) = status::next(run.state, &observed, timeout, &refs.log_locations()) else {
            return Ok(());
        };
        let attempt_failed = next.state == JobRunState::Failed
            && match &observed.driver {
                Some(DriverObservation::Failed { .. } | DriverObservation::Deleted) => true,
                None => observed.runner_failed,
                _ => false,
            };
        if attempt_failed && refs.attempt < refs.max_attempts {
            return self.retry(run, refs).await;
        }
        if next.state.is_terminal() {
            tracing::info!(job_run = %run.id, state = next.state.as_str(), details = ?next.state_details, "job run finished");
        }
        self.transition(run, to_emr(&next)).await
    }

    /// What the failed runner Job's pod said: its `job-runner` container's termination
    /// message (`FallbackToLogsOnError`), else the tail of its log. Looked up only once a
    /// runner has failed.
    async fn runner_error(&self, namespace: &str, job_name: &str) -> Option<String> {
        let pod = self.pods.state().into_iter().find(|p| {
            p.namespace().as_deref() == Some(namespace)
                && p.labels().get("job-name").map(String::as_str) == Some(job_name)
        })?;
        let message = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == RUNNER_CONTAINER))
            .and_then(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone());
        if let Some(error) = message.as_deref().and_then(status::spark_submit_error) {
            return Some(error);
        }
        let params = kube::api::LogParams {
            container: Some(RUNNER_CONTAINER.into()),
            tail_lines: Some(80),
            ..Default::default()
        };
        let log = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .logs(&pod.name_any(), &params)
            .await
            .ok()?;
        status::spark_submit_error(&log)
    }

    /// The current attempt failed and attempts remain: after the back-off, apply the next
    /// attempt's runner (new names), then record it.
    async fn retry(&self, run: &JobRunRecord, refs: RunRefs) -> PassResult {
        let now = Instant::now();
        let not_before = self
            .retries()
            .entry(run.id.clone())
            .or_insert_with(|| {
                let delay = retry_delay(refs.attempt);
                tracing::info!(job_run = %run.id, attempt = refs.attempt, ?delay, "driver attempt failed; retrying after back-off");
                PendingRetry { not_before: now + delay }
            })
            .not_before;
        if now < not_before {
            return Ok(());
        }
        let mut next = refs;
        next.attempt += 1;
        let validated = match validate(&next, &self.settings()) {
            Ok(v) => v,
            Err(failure) => return self.fail(run, failure).await,
        };
        if let Err(failure) = self.submit(&next, &validated, None).await? {
            return self.fail(run, failure).await;
        }
        self.retries().remove(&run.id);
        let details = format!(
            "Driver attempt {} failed; started attempt {} of {}.",
            next.attempt - 1,
            next.attempt,
            next.max_attempts
        );
        tracing::info!(job_run = %run.id, attempt = next.attempt, "next attempt submitted");
        self.transition(
            run,
            JobRunTransition {
                state: JobRunState::Submitted,
                state_details: Some(Some(details)),
                failure_reason: Some(None),
                finished_at: None,
                attempt_count: Some(next.attempt),
            },
        )
        .await
    }

    /// CANCEL_PENDING: delete every runner Job and pod of the run; CANCELLED once gone.
    async fn cancelling(&self, run: &JobRunRecord) -> PassResult {
        self.retries().remove(&run.id);
        let ours = |labels: &std::collections::BTreeMap<String, String>, ns: Option<String>| {
            labels.get(LABEL_JOB_ID) == Some(&run.id) && ns.as_deref() == Some(&run.namespace)
        };
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .state()
            .into_iter()
            .filter(|j| ours(j.labels(), j.namespace()))
            .collect();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| ours(p.labels(), p.namespace()))
            .collect();
        if jobs.is_empty() && pods.is_empty() {
            apply::delete_config_map(&self.client, &run.namespace, &run.id).await?;
            return self
                .transition(
                    run,
                    JobRunTransition {
                        state_details: Some(Some("JobRun CANCELLED successfully.".into())),
                        ..JobRunTransition::to(JobRunState::Cancelled)
                    },
                )
                .await;
        }
        let not_deleting = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.deletion_timestamp.is_none()
        };
        let job_names: Vec<String> = jobs
            .iter()
            .filter(|j| not_deleting(&j.metadata))
            .map(|j| j.name_any())
            .collect();
        let pod_names: Vec<String> = pods
            .iter()
            .filter(|p| not_deleting(&p.metadata))
            .map(|p| p.name_any())
            .collect();
        if !job_names.is_empty() || !pod_names.is_empty() {
            tracing::info!(job_run = %run.id, jobs = ?job_names, pods = ?pod_names, "cancelling: deleting the run's jobs and pods");
            apply::delete_jobs_and_pods(&self.client, &run.namespace, &job_names, &pod_names)
                .await?;
        }
        Ok(())
    }

    async fn fail(&self, run: &JobRunRecord, failure: Failure) -> PassResult {
        tracing::info!(job_run = %run.id, reason = ?failure.reason, details = %failure.details, "job run failed");
        let details: String = if failure.details.chars().count() > 256 {
            failure.details.chars().take(253).collect::<String>() + "..."
        } else {
            failure.details
        };
        self.transition(
            run,
            JobRunTransition {
                state_details: Some(Some(details)),
                failure_reason: Some(Some(failure.reason)),
                ..JobRunTransition::to(JobRunState::Failed)
            },
        )
        .await
    }

    async fn transition(&self, run: &JobRunRecord, t: JobRunTransition) -> PassResult {
        match self.emr.transition_job_run(&run.id, t).await {
            Ok(after) => {
                self.metrics.transitioned(run, &after);
                if after.state.is_terminal() {
                    self.ledger.ended(&run.id, chrono::Utc::now());
                }
                if after.state != run.state {
                    // Every state a run passes through, even one shorter than any poll.
                    tracing::info!(job_run = %run.id, from = %run.state.as_str(), to = %after.state.as_str(), "job run state changed");
                }
                Ok(())
            }
            // The API changed the run meanwhile (a cancel, most likely): the next pass sees it.
            Err(TransitionError::Illegal { from, to, .. }) => {
                tracing::debug!(job_run = %run.id, ?from, ?to, "transition superseded");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
