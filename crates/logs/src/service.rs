//! What `sparkyard serve` starts from this crate, in one call so the binary's wiring stays
//! a few lines: the log shipper (once the cluster answers) and the Spark History Server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};

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
}

/// Starts what is enabled; failures are logged, never fatal to `serve`.
pub fn start(settings: ServeSettings) {
    let event_log_dir = settings.history.event_log_dir(&settings.data_dir);
    if settings.history.enabled {
        if let Err(e) = std::fs::create_dir_all(&event_log_dir) {
            tracing::warn!(dir = %event_log_dir.display(), error = %e, "cannot create the Spark event log directory");
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
        let event_log_dir = settings.history.enabled.then_some(event_log_dir);
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

fn start_history_server(settings: &ServeSettings, event_log_dir: PathBuf) {
    let Some(spark_home) = settings.spark_home.clone() else {
        tracing::warn!("no Spark distribution found: the Spark History Server is not started");
        return;
    };
    let (config, java_home, work_dir) = (
        settings.history.clone(),
        settings.java_home.clone(),
        settings.data_dir.join("history"),
    );
    tokio::spawn(async move {
        if config.start == StartMode::OnDemand {
            // Started at the first event log, so idle instances pay no JVM.
            while std::fs::read_dir(&event_log_dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true)
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        match history::start(
            &config,
            &spark_home,
            java_home.as_deref(),
            &event_log_dir,
            &work_dir,
        ) {
            Ok(mut child) => {
                tracing::info!(url = %config.base_url(), dir = %event_log_dir.display(), "Spark History Server started");
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
    });
}

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
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
