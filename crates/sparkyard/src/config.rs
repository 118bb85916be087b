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
    /// `store-url`: the emr-containers records' database (SQLite path or URL, or
    /// PostgreSQL URL). Unset: `<data-dir>/sparkyard.db`.
    #[serde(default)]
    pub store_url: Option<String>,
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
    /// `[autoscaling]`: the embedded EC2's timings and Karpenter (docs/autoscaling.md).
    #[serde(default)]
    pub autoscaling: AutoscalingConfig,
    /// `[metrics]`: the Prometheus listener (docs/metrics.md).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[container-insights]`: the built-in Container Insights agent.
    #[serde(default)]
    pub container_insights: sparkyard_container_insights::InsightsConfig,
    /// `[console]`: the web console's listener (docs/console.md).
    #[serde(default)]
    pub console: sparkyard_console::ConsoleConfig,
    /// `[cost]`: the daily Cost and Usage Report–shaped export (docs/cost.md).
    #[serde(default)]
    pub cost: crate::cost_export::CostConfig,
    /// `--cluster-config`: the eksctl ClusterConfig whose managed node groups `serve`
    /// creates at start (not a TOML key).
    #[serde(skip)]
    pub eksctl: Option<crate::eksctl::ClusterConfig>,
}

/// `[autoscaling]`: how the embedded cluster grows and shrinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AutoscalingConfig {
    /// Run the Karpenter controller (it acts only once a Provisioner or NodePool exists).
    #[serde(default = "yes")]
    pub karpenter: bool,
    /// From RunInstances to the node registering: EC2 takes 45–65 s, the embedded default
    /// is a few seconds. A Go duration (`3s`, `1m`).
    #[serde(default = "default_boot_delay")]
    pub boot_delay: String,
    /// How long a spot interruption warning comes before the instance goes (AWS: 2 min).
    #[serde(default = "default_spot_notice")]
    pub spot_notice: String,
    /// Karpenter's `BATCH_IDLE_DURATION` and `BATCH_MAX_DURATION`.
    #[serde(default = "default_batch_idle")]
    pub batch_idle: String,
    #[serde(default = "default_batch_max")]
    pub batch_max: String,
    /// Where the Prometheus listener serves `GET /metrics` (every component's metrics,
    /// `karpenter_*` included) and `GET /metrics/resources`. `[metrics] listen`, when
    /// set, takes precedence; this key keeps working.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
}

/// `[metrics]`: the Prometheus listener, always started (docs/metrics.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// Where `GET /metrics` and `GET /metrics/resources` are served. Unset: `[autoscaling]
    /// metrics-listen` (default `127.0.0.1:4751`). A taken port falls back to a free one on
    /// the same IP; `<data-dir>/metrics.addr` names the address bound.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Where the emr-containers records live: `store-url`, else `<data-dir>/sparkyard.db`.
    pub fn store_location(&self) -> anyhow::Result<sparkyard_store::Location> {
        match &self.store_url {
            Some(url) => {
                sparkyard_store::Location::parse(url).map_err(|e| anyhow::anyhow!("store-url: {e}"))
            }
            None => Ok(sparkyard_store::Location::Sqlite(
                self.data_dir.join("sparkyard.db"),
            )),
        }
    }

    /// The Prometheus listener's address: `[metrics] listen`, else `[autoscaling]
    /// metrics-listen`.
    pub fn metrics_listen(&self) -> SocketAddr {
        self.metrics
            .listen
            .unwrap_or(self.autoscaling.metrics_listen)
    }
}

fn yes() -> bool {
    true
}
fn default_boot_delay() -> String {
    "3s".into()
}
fn default_spot_notice() -> String {
    "2m".into()
}
fn default_batch_idle() -> String {
    "1s".into()
}
fn default_batch_max() -> String {
    "10s".into()
}
fn default_metrics_listen() -> SocketAddr {
    "127.0.0.1:4751".parse().expect("valid default address")
}

impl Default for AutoscalingConfig {
    fn default() -> Self {
        AutoscalingConfig {
            karpenter: true,
            boot_delay: default_boot_delay(),
            spot_notice: default_spot_notice(),
            batch_idle: default_batch_idle(),
            batch_max: default_batch_max(),
            metrics_listen: default_metrics_listen(),
        }
    }
}

impl AutoscalingConfig {
    /// A duration field, refused with the key named when it is not a Go duration.
    pub fn duration(key: &str, text: &str) -> anyhow::Result<std::time::Duration> {
        sparkyard_karpenter::lifecycle::parse_duration(text).ok_or_else(|| {
            anyhow::anyhow!(
                "[autoscaling] {key}: {text:?} is not a duration such as \"3s\" or \"2m\""
            )
        })
    }
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
        let (mut config, explicit) = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => (toml::from_str("")?, toml::Table::new()),
        };
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(dir) = &args.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &args.store_url {
            config.store_url = Some(url.clone());
        }
        // A URL that names no backend is refused before anything starts.
        config.store_location()?;
        if let Some(address) = args.cluster_listen {
            config.cluster.api_listen = address;
        }
        if let Some(address) = args.cluster_service_address {
            config.cluster.service_address = address;
        }
        validate_account_id(&config.account_id)?;
        config.cost.destination()?;
        if let Some(path) = &args.cluster_config {
            config.apply_cluster_config(path, &explicit)?;
        }
        config.place_nodes_in_region(&explicit)?;
        Ok(config)
    }

    /// One region everywhere: a node whose entry names no zone is in the region's first
    /// (`<region>a`, so its `topology.kubernetes.io/region` label and provider id agree with
    /// the ARNs and the profile); a zone the entry names must be in the region.
    fn place_nodes_in_region(&mut self, explicit: &toml::Table) -> anyhow::Result<()> {
        let entries = explicit
            .get("cluster")
            .and_then(|c| c.get("nodes"))
            .and_then(|n| n.as_array());
        for (i, node) in self.cluster.nodes.iter_mut().enumerate() {
            let named = entries
                .and_then(|e| e.get(i))
                .is_some_and(|e| e.get("zone").is_some());
            if !named {
                node.zone = format!("{}a", self.region);
                continue;
            }
            let in_region = node
                .zone
                .strip_prefix(self.region.as_str())
                .is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase())
                });
            if !in_region {
                anyhow::bail!(
                    "cluster.nodes[{i}] ({}): zone {:?} is not in region {:?}; name a zone of the region or leave zone out",
                    node.name,
                    node.zone,
                    self.region
                );
            }
        }
        Ok(())
    }

    /// The configuration and the keys the file really sets (to tell an explicit setting
    /// from a default when a ClusterConfig says otherwise).
    fn from_file(path: &Path) -> anyhow::Result<(Self, toml::Table)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        let config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
        let table = toml::from_str(&text).unwrap_or_default();
        Ok((config, table))
    }

    /// Takes the cluster's name, region, version and tags from an eksctl ClusterConfig.
    /// A setting the TOML file makes explicitly must agree with it: two sources of truth
    /// that differ are refused at start rather than one silently winning. Without
    /// explicit `[[cluster.nodes]]`, the node groups provide all the capacity and the
    /// base node becomes the control plane's ([`crate::eksctl::control_plane_node`]).
    fn apply_cluster_config(&mut self, path: &Path, explicit: &toml::Table) -> anyhow::Result<()> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read cluster config {shown}: {e}"))?;
        let loaded = crate::eksctl::parse(&text)
            .map_err(|e| anyhow::anyhow!("invalid cluster config {shown}: {e}"))?;
        if !loaded.ignored.is_empty() {
            tracing::warn!(file = %shown, fields = %loaded.ignored.join(", "), "cluster config: fields sparkyard does not use are ignored");
        }
        let eks = loaded.config;
        if !eks.with_oidc {
            tracing::warn!(file = %shown, "cluster config: iam.withOIDC is not true, but sparkyard's cluster always has an OIDC issuer (IRSA works regardless)");
        }
        let set = |section: Option<&str>, key: &str| -> Option<String> {
            let table = match section {
                Some(s) => explicit.get(s)?.as_table()?,
                None => explicit,
            };
            table.get(key).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
        };
        let agree = |field: &str,
                     ours: Option<String>,
                     theirs: &str,
                     key: &str|
         -> anyhow::Result<()> {
            match ours {
                Some(ours) if ours != theirs => anyhow::bail!(
                    "cluster config {shown}: {field} is {theirs:?} but the configuration file sets {key} = {ours:?}; make them agree or remove one"
                ),
                _ => Ok(()),
            }
        };
        agree(
            "metadata.name",
            set(Some("services"), "cluster-name"),
            &eks.name,
            "services.cluster-name",
        )?;
        self.services.cluster_name = eks.name.clone();
        if let Some(region) = &eks.region {
            agree("metadata.region", set(None, "region"), region, "region")?;
            self.region = region.clone();
        }
        if let Some(version) = &eks.version {
            agree(
                "metadata.version",
                set(Some("services"), "kubernetes-version"),
                version,
                "services.kubernetes-version",
            )?;
            self.services.kubernetes_version = version.clone();
        }
        if !eks.tags.is_empty() {
            self.services.cluster_tags = Some(eks.tags.clone());
        }
        let nodes_given = explicit
            .get("cluster")
            .and_then(|c| c.as_table())
            .is_some_and(|c| c.contains_key("nodes"));
        if !nodes_given {
            self.cluster.nodes = vec![crate::eksctl::control_plane_node(&self.region)];
        }
        self.eksctl = Some(eks);
        Ok(())
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
    fn metrics_listen_alias_takes_precedence() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.metrics_listen().to_string(), "127.0.0.1:4751");
        let config: Config =
            toml::from_str("[autoscaling]\nmetrics-listen = \"127.0.0.1:9100\"\n").unwrap();
        assert_eq!(config.metrics_listen().to_string(), "127.0.0.1:9100");
        let config: Config = toml::from_str(
            "[autoscaling]\nmetrics-listen = \"127.0.0.1:9100\"\n[metrics]\nlisten = \"0.0.0.0:9200\"\n",
        )
        .unwrap();
        assert_eq!(config.metrics_listen().to_string(), "0.0.0.0:9200");
    }

    #[test]
    fn console_defaults_to_loopback_and_can_be_moved() {
        let config: Config = toml::from_str("").unwrap();
        assert!(config.console.enabled);
        assert_eq!(config.console.listen.to_string(), "127.0.0.1:4752");
        assert_eq!(config.console.session_hours, 12);
        let config: Config = toml::from_str(
            "[console]\nlisten = \"127.0.0.1:9752\"\nsession-hours = 1\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(config.console.listen.to_string(), "127.0.0.1:9752");
        assert_eq!(config.console.session_hours, 1);
        assert!(!config.console.enabled);
        assert!(toml::from_str::<Config>("[console]\nlisen = \"x\"\n").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
    }

    fn placed(text: &str) -> anyhow::Result<Config> {
        let mut config: Config = toml::from_str(text).unwrap();
        config.place_nodes_in_region(&toml::from_str(text).unwrap())?;
        Ok(config)
    }

    #[test]
    fn nodes_follow_the_region_unless_they_name_a_zone_in_it() {
        assert_eq!(placed("").unwrap().cluster.nodes[0].zone, "us-east-1a");
        let config = placed("region = \"eu-west-1\"\n").unwrap();
        assert_eq!(config.cluster.nodes[0].zone, "eu-west-1a");
        let text = "region = \"eu-west-1\"\n[[cluster.nodes]]\nname = \"a\"\n[[cluster.nodes]]\nname = \"b\"\nzone = \"eu-west-1c\"\n";
        let zones: Vec<String> = placed(text)
            .unwrap()
            .cluster
            .nodes
            .into_iter()
            .map(|n| n.zone)
            .collect();
        assert_eq!(zones, ["eu-west-1a", "eu-west-1c"]);
        let elsewhere = "[[cluster.nodes]]\nname = \"a\"\nzone = \"us-east-2b\"\n";
        let error = placed(elsewhere).unwrap_err().to_string();
        assert!(
            error.contains("zone \"us-east-2b\" is not in region \"us-east-1\""),
            "{error}"
        );
    }

    #[test]
    fn store_url_defaults_to_the_data_dir_file_and_names_its_backend() {
        let config: Config = toml::from_str("data-dir = \"/srv/sy\"\n").unwrap();
        assert_eq!(
            config.store_location().unwrap().to_string(),
            "/srv/sy/sparkyard.db"
        );
        let config: Config =
            toml::from_str("store-url = \"postgres://sy:pw@db:5432/sparkyard\"\n").unwrap();
        assert_eq!(
            config.store_location().unwrap().to_string(),
            "postgres://sy@db:5432/sparkyard"
        );
        let config: Config = toml::from_str("store-url = \"etcd://x\"\n").unwrap();
        let error = config.store_location().unwrap_err().to_string();
        assert!(
            error.starts_with("store-url: invalid store URL \"etcd://x\": unknown scheme \"etcd\""),
            "{error}"
        );
    }

    #[test]
    fn account_id_must_be_twelve_digits() {
        assert!(validate_account_id("12345").is_err());
        assert!(validate_account_id("12345678901a").is_err());
        assert!(validate_account_id("000000000000").is_ok());
    }
}
