//! `[container-insights]` in sparkyard's configuration file.

use serde::Deserialize;

/// Where the agent publishes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PublishTo {
    /// sparkyard's own endpoint, with its administrator key.
    #[default]
    Sparkyard,
    /// The AWS endpoints and credentials of the process environment, as the SDKs read them
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`, IRSA or access keys): real
    /// CloudWatch, for a real cluster.
    Aws,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InsightsConfig {
    /// Run the agent (default: yes, as after the seed's steps 12–13).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often metrics are collected (Container Insights' default: 60 s).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Ship container logs to `/aws/containerinsights/<cluster>/application` (embedded
    /// cluster only; on a real cluster the fluent-bit DaemonSet does it).
    #[serde(default = "yes")]
    pub application_logs: bool,
    /// How often new log lines are looked for (fluent-bit's flush: 5 s).
    #[serde(default = "default_log_interval")]
    pub log_interval: String,
    #[serde(default)]
    pub publish_to: PublishTo,
}

fn yes() -> bool {
    true
}

fn default_interval() -> String {
    "60s".into()
}

fn default_log_interval() -> String {
    "5s".into()
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_interval(),
            application_logs: true,
            log_interval: default_log_interval(),
            publish_to: PublishTo::default(),
        }
    }
}
