//! sparkyard's configuration: defaults, overridden by a TOML file, overridden by flags.
//!
//! Every section is optional; `sparkyard serve` with no file at all runs with the defaults
//! documented in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::ServeArgs;

/// Default AWS endpoint address: loopback only, since the bootstrap key is an administrator.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4750";
/// AWS's own example account id, the one the AWS documentation uses.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_account_id")]
    pub account_id: String,
    #[serde(default)]
    pub emr: sparkyard_emr::EmrConfig,
    /// The embedded Kubernetes cluster (`[cluster]`).
    #[serde(default)]
    pub cluster: sparkyard_cluster::ClusterConfig,
    /// `[services]`: S3, Logs, IAM, STS, EKS (cluster name, OIDC issuer).
    #[serde(default)]
    pub services: sparkyard_services::ServicesConfig,
    /// `[controller]`: the job-run controller (kubeconfig, release images).
    #[serde(default)]
    pub controller: sparkyard_controller::ControllerConfig,
    /// `[logs]`: the container log shipper (S3 and CloudWatch Logs).
    #[serde(default)]
    pub logs: sparkyard_logs::shipper::LogsConfig,
    /// `[history]`: Spark event logs and the Spark History Server (persistent app UI).
    #[serde(default)]
    pub history: sparkyard_logs::history::HistoryConfig,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("valid default address")
}

fn default_region() -> String {
    DEFAULT_REGION.into()
}

fn default_account_id() -> String {
    DEFAULT_ACCOUNT_ID.into()
}

/// `$XDG_DATA_HOME/sparkyard`, else `~/.local/share/sparkyard`, else `./.sparkyard`.
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("sparkyard");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/sparkyard"),
        None => PathBuf::from(".sparkyard"),
    }
}

impl Config {
    /// Reads the file named by `--config` (if any) and applies the command-line flags over it.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut config: Config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => toml::from_str("")?,
        };
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(address) = args.cluster_listen {
            config.cluster.api_listen = address;
        }
        if let Some(address) = args.cluster_service_address {
            config.cluster.service_address = address;
        }
        validate_account_id(&config.account_id)?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }
}

fn validate_account_id(account_id: &str) -> anyhow::Result<()> {
    if account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        anyhow::bail!("account-id must be 12 digits, got {account_id:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.region, "us-east-1");
        assert_eq!(config.account_id, "123456789012");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn account_id_must_be_twelve_digits() {
        assert!(validate_account_id("12345").is_err());
        assert!(validate_account_id("12345678901a").is_err());
        assert!(validate_account_id("000000000000").is_ok());
    }
}
