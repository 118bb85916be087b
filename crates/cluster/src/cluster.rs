//! The running embedded cluster: configuration and the handle every component shares.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::registry::Registry;

/// The `[cluster]` table of sparkyard's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    /// Where the API server listens for clients on the host (kubectl, spark-submit, kube-rs).
    #[serde(default = "default_api_listen")]
    pub api_listen: std::net::SocketAddr,
}

fn default_api_listen() -> std::net::SocketAddr {
    "127.0.0.1:6443".parse().unwrap()
}

impl Default for ClusterConfig {
    fn default() -> Self {
        toml_default()
    }
}

fn toml_default() -> ClusterConfig {
    ClusterConfig { api_listen: default_api_listen() }
}

/// Shared handle to the running cluster's parts.
#[derive(Clone)]
pub struct Cluster {
    pub config: Arc<ClusterConfig>,
    pub registry: Arc<Registry>,
    /// Directory for the cluster's own state (PKI, kubeconfig, pod sandboxes, logs).
    pub data_dir: PathBuf,
}
