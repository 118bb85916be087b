//! What `sparkyard serve` starts from this crate, in one call so the binary's wiring stays
//! a few lines: the log shipper (once the cluster answers) and the Spark History Server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::aws::credentials::{CachedCredentials, Credentials, StaticCredentials};
use crate::aws::env::AwsEnv;
use crate::history::{self, HistoryConfig, StartMode};
use crate::shipper::{self, LocalLog, LogsConfig, RunLookup};

pub struct ServeSettings {
    pub data_dir: PathBuf,
    pub region: String,
    /// sparkyard's AWS endpoint (`http://127.0.0.1:4750`): STS, S3 and Logs for the
    /// shipper. `None`: AWS itself (the environment's `AWS_ENDPOINT_URL*` still apply).
    pub endpoint_url: Option<String>,
    /// Kubeconfig of the cluster the runs' pods are on (the embedded one by default).
    pub kubeconfig: PathBuf,
    pub logs: LogsConfig,
    pub history: HistoryConfig,
    pub runs: RunLookup,
    /// The embedded cluster's log files, for pods gone before they could be followed.
    pub local_log: Option<LocalLog>,
    /// Spark distribution and Java for the history server.
    pub spark_home: Option<PathBuf>,
    pub java_home: Option<PathBuf>,
    /// How the History Server reaches S3 when `[history] event-log-dir` is there.
    pub history_s3: history::S3Access,
}

/// Starts what is enabled; failures are logged, never fatal to `serve`.
pub fn start(settings: ServeSettings) {
    let event_log_dir = settings.history.event_log_dir(&settings.data_dir);
    if settings.history.enabled {
        if let Some(dir) = &event_log_dir {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot create the Spark event log directory");
            }
        }
        start_history_server(&settings, event_log_dir.clone());
    }
    if settings.logs.enabled {
        let aws = match &settings.endpoint_url {
            Some(url) => AwsEnv::single(&settings.region, url),
            None => AwsEnv {
                region: settings.region.clone(),
                ..AwsEnv::from_env()
            },
        };
        let state_dir = settings.data_dir.join("logs");
        let kubeconfig = settings.kubeconfig.clone();
        let (config, runs, local_log) = (
            settings.logs.clone(),
            settings.runs.clone(),
            settings.local_log.clone(),
        );
        let event_log_dir = event_log_dir.filter(|_| settings.history.enabled);
        let history_url = settings
            .history
            .enabled
            .then(|| settings.history.base_url());
        tokio::spawn(async move {
            let kube = connect_when_ready(&kubeconfig).await;
            shipper::spawn(shipper::Settings {
                config,
                kube,
                aws,
                state_dir,
                runs,
                local_log,
                event_log_dir,
                history_url,
            });
        });
    }
}

/// Starts the History Server and keeps it up: if it exits (Spark's refuses an event-log
/// directory that does not exist yet, as an S3 prefix does before the first run writes it)
/// it is started again, less often the more it fails.
fn start_history_server(settings: &ServeSettings, event_log_dir: Option<PathBuf>) {
    let Some(spark_home) = settings.spark_home.clone() else {
        tracing::warn!("no Spark distribution found: the Spark History Server is not started");
        return;
    };
    let (config, java_home, work_dir, s3) = (
        settings.history.clone(),
        settings.java_home.clone(),
        settings.data_dir.join("history"),
        settings.history_s3.clone(),
    );
    let log_directory = config.log_directory(&settings.data_dir);
    let aws = match &settings.endpoint_url {
        Some(url) => AwsEnv::single(&settings.region, url),
        None => AwsEnv {
            region: settings.region.clone(),
            ..AwsEnv::from_env()
        },
    };
    tokio::spawn(async move {
        if let (Some(uri), Some(credentials)) = (config.s3_event_log_dir(), &s3.credentials) {
            ensure_s3_directory(&aws, &uri, credentials).await;
        }
        if let (StartMode::OnDemand, Some(dir)) = (config.start, &event_log_dir) {
            // Started at the first event log, so idle instances pay no JVM. (An S3 directory
            // is not watched: the server starts at once and retries until it exists.)
            while std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true)
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        let mut backoff = RESTART_FIRST;
        loop {
            let started = std::time::Instant::now();
            match history::start(
                &config,
                &spark_home,
                java_home.as_deref(),
                &log_directory,
                &s3,
                &work_dir,
            ) {
                Ok(mut child) => {
                    tracing::info!(url = %config.base_url(), dir = %log_directory, "Spark History Server started");
                    match child.wait().await {
                        Ok(status) => {
                            tracing::warn!(%status, log = %work_dir.join("history-server.log").display(), "Spark History Server exited")
                        }
                        Err(e) => tracing::warn!(error = %e, "Spark History Server: cannot wait"),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot start the Spark History Server")
                }
            }
            if started.elapsed() > RESTART_MAX {
                backoff = RESTART_FIRST;
            }
            tracing::info!(
                in_seconds = backoff.as_secs(),
                "Spark History Server will be started again"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RESTART_MAX);
        }
    });
}

/// Creates the S3 event-log directory, retrying until sparkyard's S3 answers: runs fail
/// without it (Spark's event-log writer requires the directory to exist).
async fn ensure_s3_directory(aws: &AwsEnv, uri: &str, credentials: &Credentials) {
    let http = reqwest::Client::new();
    let credentials = CachedCredentials::new(Box::new(StaticCredentials(credentials.clone())));
    let mut wait = Duration::from_millis(200);
    loop {
        match crate::aws::s3::ensure_directory(aws, &http, &credentials, uri).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%uri, error = %format!("{e:#}"), "cannot create the Spark event-log directory yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RESTART_MAX);
            }
        }
    }
}

/// First and longest wait before the History Server is started again.
const RESTART_FIRST: Duration = Duration::from_secs(5);
const RESTART_MAX: Duration = Duration::from_secs(60);

/// A client for the kubeconfig, retried until the cluster is up.
async fn connect_when_ready(kubeconfig: &std::path::Path) -> kube::Client {
    loop {
        match connect(kubeconfig).await {
            Ok(client) => return client,
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "log shipper waits for the cluster");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

async fn connect(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    crate::aws::install_crypto_provider();
    // sparkyard in a pod (the Helm chart): no kubeconfig file, the pod's service account.
    if !kubeconfig.exists() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Ok(kube::Client::try_from(kube::Config::incluster()?)?);
    }
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
