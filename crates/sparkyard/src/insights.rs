//! Starting the built-in Container Insights agent (`crates/container-insights`) for
//! `serve`: a kube-rs client of the cluster the controller uses, and a CloudWatch Logs
//! client of sparkyard's endpoint (or of real AWS, `publish-to = "aws"`).

use std::sync::Arc;

use anyhow::Context;
use sparkyard_container_insights::{agent, application_logs, PublishTo};
use sparkyard_logs::aws::cloudwatch::Logs;
use sparkyard_logs::aws::credentials::{self, CachedCredentials, Credentials, StaticCredentials};
use sparkyard_logs::aws::env::AwsEnv;

use crate::config::Config;

fn duration(key: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    sparkyard_karpenter::lifecycle::parse_duration(text).ok_or_else(|| {
        anyhow::anyhow!(
            "[container-insights] {key}: {text:?} is not a duration such as \"10s\" or \"1m\""
        )
    })
}

/// Starts the agent (and, beside the embedded cluster, the application-log shipper);
/// `None` when `[container-insights] enabled = false`.
pub async fn start(
    config: &Config,
    endpoint_url: &str,
    admin: &sparkyard_aws::keyring::AccessKey,
    cluster: Option<&sparkyard_cluster::Cluster>,
) -> anyhow::Result<Option<agent::Latest>> {
    let ci = &config.container_insights;
    if !ci.enabled {
        return Ok(None);
    }
    let interval = duration("interval", &ci.interval)?;
    let log_interval = duration("log-interval", &ci.log_interval)?;
    let kubeconfig = config
        .controller
        .kubeconfig
        .clone()
        .unwrap_or_else(|| config.data_dir.join("cluster/kubeconfig"));
    let kube = match sparkyard_controller::client::connect(Some(&kubeconfig)).await {
        Ok(kube) => kube,
        // `serve --no-cluster` without a cluster to watch: nothing to report on.
        Err(e) => {
            tracing::warn!(error = %e, "Container Insights is off: no Kubernetes cluster");
            return Ok(None);
        }
    };
    let http = reqwest::Client::new();
    let (env, creds) = match ci.publish_to {
        PublishTo::Sparkyard => (
            AwsEnv::single(&config.region, endpoint_url),
            CachedCredentials::new(Box::new(StaticCredentials(Credentials {
                access_key_id: admin.access_key_id.clone(),
                secret_access_key: admin.secret_access_key.clone(),
                session_token: None,
                expires_at: None,
            }))),
        ),
        PublishTo::Aws => {
            let env = AwsEnv::from_env();
            let creds = credentials::from_env(&env, http.clone())
                .context("Container Insights (publish-to = \"aws\")")?;
            (env, creds)
        }
    };
    let logs = || Logs::new(&env, http.clone(), Arc::clone(&creds));
    let cluster_name = config.services.cluster_name.clone();
    let latest = agent::spawn(agent::AgentSettings {
        cluster_name: cluster_name.clone(),
        interval,
        kube: kube.clone(),
        logs: logs(),
    });
    if let (true, Some(cluster)) = (ci.application_logs, cluster) {
        let dir = config.data_dir.join("container-insights");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        application_logs::spawn(application_logs::ApplicationLogSettings {
            cluster_name,
            cluster_data_dir: cluster.data_dir.clone(),
            checkpoint: dir.join("application-offsets.json"),
            interval: log_interval,
            kube,
            logs: logs(),
        });
    }
    Ok(Some(latest))
}
