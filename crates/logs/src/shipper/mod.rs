//! The log shipper: for every pod of a job run (label `emr-containers.amazonaws.com/job.id`),
//! follow its main container's output through the Kubernetes API from the moment it starts,
//! and deliver it to the run's S3 `logUri` and CloudWatch stream in EMR's layout
//! ([`crate::layout`]) when it exits — runner, driver and every executor, including
//! executors preempted or deleted mid-run (the follow stream ends with the container; what
//! was streamed is delivered).
//!
//! Writes use the run's role: a token for the pod's service account is minted with the
//! Kubernetes TokenRequest API (audience `sts.amazonaws.com`, as the EKS pod-identity
//! webhook projects it) and exchanged with STS `AssumeRoleWithWebIdentity` for the run's
//! execution role — IRSA, done on the pod's behalf, the same against sparkyard and AWS.
//!
//! stdout and stderr are shipped apart (`stdout.gz`/`stderr.gz`, two CloudWatch streams)
//! when the cluster serves `pods/log?stream=` — sparkyard's own does; on other clusters
//! only with `[logs] split-streams = true` (see [`LogsConfig::split_streams`]).
//!
//! A pod that is gone before its log could be followed (deleted while sparkyard was busy or
//! down) is read from the embedded cluster's log file when the binary provides
//! [`Settings::local_log`]; a real cluster has no such fallback (documented).
//!
//! A container whose shipping had begun when sparkyard stopped is finished after the restart
//! even if its pod was deleted meanwhile ([`pending`]): the watch's first list no longer
//! shows such a pod.

pub mod checkpoint;
mod credentials;
mod pending;
pub mod sink;
pub mod source;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde::Deserialize;

use crate::aws::cloudwatch::Logs;
use crate::aws::env::AwsEnv;
use crate::aws::s3;
use crate::layout::{self, PodKind, Stream};
use crate::run_config::RunLogConfig;
use sink::{CloudWatchTarget, S3Target, Sink};

pub const LABEL_JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
/// Spark's own label on driver and executor pods.
const LABEL_SPARK_ROLE: &str = "spark-role";
/// Spark's label with the application id on driver and executor pods.
const LABEL_SPARK_APP: &str = "spark-app-selector";
/// Main containers as EMR on EKS names them.
const MAIN_CONTAINERS: &[&str] = &[
    "job-runner",
    "spark-kubernetes-driver",
    "spark-kubernetes-executor",
];

/// `[logs]` in sparkyard's configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogsConfig {
    /// Ship container logs at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ask the API server for stdout and stderr separately (`pods/log?stream=`, Kubernetes
    /// 1.32+ with the `PodLogsQuerySplitStreams` gate). Unset: only when the cluster is
    /// sparkyard's (its version ends in `+sparkyard`), since an API server without the gate
    /// ignores `stream` and would put everything in both. Off: the combined output goes to
    /// `stdout`.
    #[serde(default)]
    pub split_streams: Option<bool>,
    /// How often queued CloudWatch events are sent while a container runs.
    #[serde(default = "default_flush_ms")]
    pub flush_interval_ms: u64,
}

fn yes() -> bool {
    true
}

fn default_flush_ms() -> u64 {
    1000
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            split_streams: None,
            flush_interval_ms: default_flush_ms(),
        }
    }
}

/// Looks a run up by id (the binary wires it to emr-containers' store).
pub type RunLookup = Arc<dyn Fn(&str) -> Option<RunLogConfig> + Send + Sync>;
/// The embedded cluster's record of what `(namespace, pod, uid, container)` wrote to a
/// stream (`None`: both).
pub type LocalLog =
    Arc<dyn Fn(&str, &str, &str, &str, Option<Stream>) -> std::io::Result<Vec<u8>> + Send + Sync>;

pub struct Settings {
    pub config: LogsConfig,
    pub kube: kube::Client,
    /// Where sparkyard's own STS, S3 and Logs are (or AWS's).
    pub aws: AwsEnv,
    /// Checkpoints: `<data_dir>/logs`.
    pub state_dir: PathBuf,
    pub runs: RunLookup,
    pub local_log: Option<LocalLog>,
    /// The persistent UI's event-log directory, from which a finished driver's event log is
    /// copied to `emr-containers-defaults: logging.eventLog.dir` when the run asks.
    pub event_log_dir: Option<PathBuf>,
    /// The history server's base URL, to print each finished run's UI address.
    pub history_url: Option<String>,
}

struct Shared {
    settings: Settings,
    http: reqwest::Client,
    credentials: credentials::RunCredentials,
    /// `<uid>/<container>` being shipped or shipped.
    started: Mutex<HashSet<String>>,
    /// Whether stdout and stderr are asked for apart; decided once the API server answers.
    split_streams: OnceLock<bool>,
}

/// Starts the shipper in the background.
pub fn spawn(settings: Settings) -> tokio::task::JoinHandle<()> {
    crate::aws::install_crypto_provider();
    let http = reqwest::Client::new();
    let credentials =
        credentials::RunCredentials::new(settings.kube.clone(), settings.aws.clone(), http.clone());
    let shared = Arc::new(Shared {
        settings,
        http,
        credentials,
        started: Mutex::new(HashSet::new()),
        split_streams: OnceLock::new(),
    });
    tokio::spawn(watch(shared))
}

async fn watch(shared: Arc<Shared>) {
    let split = match shared.settings.config.split_streams {
        Some(split) => split,
        None => serves_split_streams(&shared.settings.kube).await,
    };
    let _ = shared.split_streams.set(split);
    tracing::info!(split_streams = split, "log shipper started");
    let pods: Api<Pod> = Api::all(shared.settings.kube.clone());
    let config = watcher::Config::default().labels(LABEL_JOB_ID);
    let mut events = watcher(pods, config).boxed();
    let mut resumed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) | Ok(watcher::Event::InitApply(pod)) => {
                consider(&shared, pod, false)
            }
            Ok(watcher::Event::Delete(pod)) => consider(&shared, pod, true),
            // Every pod that still exists has been considered: what is left pending belongs
            // to pods deleted before the last stop finished shipping them.
            Ok(watcher::Event::InitDone) if !resumed => {
                resumed = true;
                resume_pending(&shared);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "log shipper pod watch error; the watcher retries");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether the API server is sparkyard's, which always serves `pods/log?stream=`.
async fn serves_split_streams(kube: &kube::Client) -> bool {
    for _ in 0..10 {
        match kube.apiserver_version().await {
            Ok(info) => return info.git_version.ends_with("+sparkyard"),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the API server's version yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    false
}

/// The pod's main container: the one EMR names, else the first.
fn main_container(pod: &Pod) -> Option<String> {
    let containers = &pod.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| MAIN_CONTAINERS.contains(&c.name.as_str()))
        .or_else(|| containers.first())
        .map(|c| c.name.clone())
}

/// Whether the container has produced a log the API can serve.
fn container_started(pod: &Pod, container: &str) -> bool {
    let status = pod.status.as_ref();
    let phase_done = status
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    let state = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container))
        .and_then(|c| c.state.as_ref());
    phase_done || state.is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

fn kind_of(pod: &Pod) -> PodKind {
    match pod.labels().get(LABEL_SPARK_ROLE).map(String::as_str) {
        Some("driver") | Some("executor") => PodKind::Spark,
        _ => PodKind::JobRunner,
    }
}

fn consider(shared: &Arc<Shared>, pod: Pod, deleted: bool) {
    let Some(job_id) = pod.labels().get(LABEL_JOB_ID).cloned() else {
        return;
    };
    let Some(container) = main_container(&pod) else {
        return;
    };
    if !deleted && !container_started(&pod, &container) {
        return;
    }
    let uid = pod.uid().unwrap_or_default();
    let key = format!("{uid}/{container}");
    if shared.started.lock().expect("not poisoned").contains(&key) {
        return;
    }
    let Some(run) = (shared.settings.runs)(&job_id) else {
        return;
    };
    let kind = kind_of(&pod);
    let role = pod.labels().get(LABEL_SPARK_ROLE).cloned();
    let is_executor = role.as_deref() == Some("executor");
    let wanted = run.ships_logs()
        && match kind {
            PodKind::JobRunner => run.runner_logging,
            PodKind::Spark => run.executor_logging || !is_executor,
        };
    if !wanted {
        return;
    }
    shared
        .started
        .lock()
        .expect("not poisoned")
        .insert(key.clone());
    let app_id = pod
        .labels()
        .get(LABEL_SPARK_APP)
        .cloned()
        .unwrap_or_else(|| crate::event_log::application_id(&job_id));
    let shared = shared.clone();
    tokio::spawn(async move {
        let target = ContainerRef {
            namespace: pod.namespace().unwrap_or_default(),
            pod: pod.name_any(),
            uid,
            container,
            service_account: pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            job_id,
            kind,
            is_driver: role.as_deref() == Some("driver"),
            app_id,
        };
        pending::record(&shared.settings.state_dir, &target);
        if !ship_container(&shared, &run, &target, deleted).await && !deleted {
            // Nothing could be read yet (e.g. a transient API error): the pod's next event
            // tries again.
            shared.started.lock().expect("not poisoned").remove(&key);
        } else {
            pending::remove(&shared.settings.state_dir, &target);
        }
    });
}

/// Finishes, from the node's log files, the containers whose shipping had begun before the
/// last stop and whose pods are gone.
fn resume_pending(shared: &Arc<Shared>) {
    for target in pending::list(&shared.settings.state_dir) {
        let key = format!("{}/{}", target.uid, target.container);
        if !shared
            .started
            .lock()
            .expect("not poisoned")
            .insert(key.clone())
        {
            continue;
        }
        let Some(run) = (shared.settings.runs)(&target.job_id) else {
            pending::remove(&shared.settings.state_dir, &target);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            tracing::info!(pod = %format!("{}/{}", target.namespace, target.pod), container = %target.container, "finishing the log of a container whose pod was deleted before the last stop");
            ship_container(&shared, &run, &target, true).await;
            pending::remove(&shared.settings.state_dir, &target);
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ContainerRef {
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    service_account: String,
    job_id: String,
    kind: PodKind,
    is_driver: bool,
    /// The Spark application id (`spark-app-selector`), which names the event log.
    app_id: String,
}

impl ContainerRef {
    fn label(&self, stream: Stream) -> String {
        format!(
            "{}/{}/{}:{}",
            self.namespace,
            self.pod,
            self.container,
            stream.as_str()
        )
    }
}

/// Ships every stream of the container; `false` when no output could be read at all.
async fn ship_container(
    shared: &Arc<Shared>,
    run: &RunLogConfig,
    c: &ContainerRef,
    deleted: bool,
) -> bool {
    let split = shared.split_streams.get().copied().unwrap_or(false);
    let streams: Vec<Option<Stream>> = if split {
        vec![Some(Stream::Stdout), Some(Stream::Stderr)]
    } else {
        vec![None]
    };
    let creds = shared.credentials.for_service_account(
        &c.namespace,
        &c.service_account,
        &run.execution_role_arn,
    );
    let tasks = streams.into_iter().map(|stream| {
        let creds = creds.clone();
        async move {
            let shipped = stream.unwrap_or(Stream::Stdout);
            let mut sink = make_sink(shared, run, c, shipped, creds);
            if sink.already_done() {
                return true;
            }
            let read = follow(shared, c, stream, deleted, &mut sink).await;
            if read {
                sink.finish().await;
                tracing::info!(stream = %sink.label, "container log shipped");
            }
            read
        }
    });
    let read = futures::future::join_all(tasks)
        .await
        .into_iter()
        .any(|r| r);
    if c.is_driver {
        if let Some(base) = shared
            .settings
            .history_url
            .as_deref()
            .filter(|_| run.persistent_app_ui)
        {
            tracing::info!(run = %c.job_id, app = %c.app_id, url = %crate::event_log::history_url(base, &c.app_id), "Spark UI of the finished run");
        }
        // With event logs in S3 (`[history] event-log-dir = "s3://…"`) the log is already in
        // a bucket; the copy is made from a host directory only.
        if let (Some(dir), Some(target)) = (&shared.settings.event_log_dir, &run.event_log_copy_dir)
        {
            copy_event_log(shared, dir, target, c, creds).await;
        }
    }
    read
}

/// `logging.eventLog.dir`: EMR copies the run's event log to the user's bucket too. A
/// rolling log (a directory) is copied file by file under its directory name.
async fn copy_event_log(
    shared: &Shared,
    dir: &std::path::Path,
    target: &str,
    c: &ContainerRef,
    creds: Arc<crate::aws::credentials::CachedCredentials>,
) {
    use object_store::ObjectStoreExt;
    let Some(source) = crate::event_log::find_event_log(dir, &c.app_id) else {
        tracing::warn!(run = %c.job_id, app = %c.app_id, "no finished event log to copy to logging.eventLog.dir");
        return;
    };
    let Some(rest) = target.strip_prefix("s3://") else {
        tracing::warn!(%target, "logging.eventLog.dir is not an s3:// URI; event log not copied");
        return;
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut files = Vec::new();
    if source.is_dir() {
        if let Ok(entries) = std::fs::read_dir(&source) {
            for entry in entries.flatten() {
                files.push((
                    format!("{name}/{}", entry.file_name().to_string_lossy()),
                    entry.path(),
                ));
            }
        }
    } else {
        files.push((name, source.clone()));
    }
    let store = match s3::bucket(&shared.settings.aws, bucket, creds) {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(run = %c.job_id, error = %e, "cannot copy the event log");
            return;
        }
    };
    for (relative, path) in files {
        let key = if prefix.is_empty() {
            relative
        } else {
            format!("{prefix}/{relative}")
        };
        let result = match tokio::fs::read(&path).await {
            Ok(bytes) => store
                .put(&object_store::path::Path::from(key.as_str()), bytes.into())
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => tracing::info!(run = %c.job_id, %bucket, %key, "event log copied"),
            Err(e) => {
                tracing::warn!(run = %c.job_id, %key, error = %format!("{e:#}"), "cannot copy the event log")
            }
        }
    }
}

fn make_sink(
    shared: &Shared,
    run: &RunLogConfig,
    c: &ContainerRef,
    stream: Stream,
    creds: Arc<crate::aws::credentials::CachedCredentials>,
) -> Sink {
    let aws = &shared.settings.aws;
    let s3_target = run.s3_log_uri.as_deref().and_then(|uri| {
        let (bucket, key) = layout::s3_object(
            uri,
            &run.virtual_cluster_id,
            &c.job_id,
            c.kind,
            &c.pod,
            stream,
        )?;
        match s3::bucket(aws, &bucket, creds.clone()) {
            Ok(store) => Some(S3Target {
                store: Arc::new(store),
                key,
                rotation: run.rotation,
            }),
            Err(e) => {
                tracing::warn!(%bucket, error = %e, "cannot use the log bucket");
                None
            }
        }
    });
    let cw_target = run.cloudwatch.as_ref().map(|cw| CloudWatchTarget {
        logs: Arc::new(Logs::new(aws, shared.http.clone(), creds.clone())),
        group: cw.log_group.clone(),
        stream: layout::cloudwatch_stream(
            cw.stream_prefix.as_deref(),
            &run.virtual_cluster_id,
            &c.job_id,
            c.kind,
            &c.pod,
            stream,
        ),
    });
    let path = checkpoint::path(
        &shared.settings.state_dir,
        &c.namespace,
        &c.pod,
        &c.uid,
        &c.container,
        stream.as_str(),
    );
    Sink::new(c.label(stream), s3_target, cw_target, path)
}

/// Streams the container's output into the sink until the container has exited; `false`
/// when no output could be read at all (nothing is then written: a pod that never ran
/// leaves no empty objects behind).
async fn follow(
    shared: &Shared,
    c: &ContainerRef,
    stream: Option<Stream>,
    deleted: bool,
    sink: &mut Sink,
) -> bool {
    let flush_every = Duration::from_millis(shared.settings.config.flush_interval_ms.max(100));
    let request = match source::follow_request(&c.namespace, &c.pod, &c.container, stream) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the log request");
            return false;
        }
    };
    let reader = if deleted {
        Err(source::OpenError::Gone)
    } else {
        source::open(&shared.settings.kube, request).await
    };
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(source::OpenError::Gone) => return from_local_file(shared, c, stream, sink).await,
        Err(source::OpenError::Other(e)) => {
            tracing::warn!(stream = %sink.label, error = %format!("{e:#}"), "cannot follow the container log; trying the node's file");
            return from_local_file(shared, c, stream, sink).await;
        }
    };
    let mut ticker = tokio::time::interval(flush_every);
    loop {
        tokio::select! {
            chunk = source::read_chunk(&mut reader) => match chunk {
                Ok(chunk) if chunk.is_empty() => break,
                Ok(chunk) => sink.push(&chunk).await,
                Err(e) => {
                    tracing::debug!(stream = %sink.label, error = %e, "log stream ended with an error");
                    break;
                }
            },
            _ = ticker.tick() => sink.flush().await,
        }
    }
    true
}

/// The embedded cluster keeps a deleted pod's log file, stream by stream.
async fn from_local_file(
    shared: &Shared,
    c: &ContainerRef,
    stream: Option<Stream>,
    sink: &mut Sink,
) -> bool {
    let Some(local) = shared.settings.local_log.clone() else {
        tracing::warn!(stream = %sink.label, "pod is gone and the cluster keeps no log files: output lost");
        return false;
    };
    let (ns, pod, uid, container) = (
        c.namespace.clone(),
        c.pod.clone(),
        c.uid.clone(),
        c.container.clone(),
    );
    let read =
        tokio::task::spawn_blocking(move || local(&ns, &pod, &uid, &container, stream)).await;
    match read {
        Ok(Ok(bytes)) => {
            sink.push(&bytes).await;
            true
        }
        Ok(Err(e)) => {
            tracing::debug!(stream = %sink.label, error = %e, "no log file for a gone pod (it never ran)");
            false
        }
        Err(e) => {
            tracing::warn!(stream = %sink.label, error = %e, "reading the node's log file failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn picks_main_containers_and_kinds() {
        let driver = pod(serde_json::json!({
            "metadata": {"name": "spark-x-driver", "labels": {"spark-role": "driver", LABEL_JOB_ID: "x"}},
            "spec": {"containers": [{"name": "sidecar"}, {"name": "spark-kubernetes-driver"}]},
            "status": {"containerStatuses": [{"name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}
        }));
        assert_eq!(
            main_container(&driver).as_deref(),
            Some("spark-kubernetes-driver")
        );
        assert_eq!(kind_of(&driver), PodKind::Spark);
        assert!(container_started(&driver, "spark-kubernetes-driver"));
        let runner = pod(serde_json::json!({
            "metadata": {"name": "x-abcde", "labels": {LABEL_JOB_ID: "x"}},
            "spec": {"containers": [{"name": "job-runner"}]},
            "status": {"phase": "Pending"}
        }));
        assert_eq!(kind_of(&runner), PodKind::JobRunner);
        assert!(!container_started(&runner, "job-runner"));
    }
}
