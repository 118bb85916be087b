//! What a job run asks of the log shipper, read from its `configurationOverrides`
//! (reference §8, §9): where logs go, rotation, which pods are logged, persistent UI.
//!
//! Pure: takes the run's JSON as stored by emr-containers, so the shipper does not depend
//! on the API crate and the rules are tested without a server.

use serde_json::Value;

/// `cloudWatchMonitoringConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchTarget {
    pub log_group: String,
    pub stream_prefix: Option<String>,
}

/// `containerLogRotationConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes of (uncompressed) output per segment.
    pub size_bytes: u64,
    /// Objects kept per stream, the current one included.
    pub max_files: u32,
}

/// Everything the shipper and the event-log wiring need to know about one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunLogConfig {
    pub virtual_cluster_id: String,
    pub execution_role_arn: String,
    /// `s3MonitoringConfiguration.logUri`.
    pub s3_log_uri: Option<String>,
    pub cloudwatch: Option<CloudWatchTarget>,
    pub rotation: Option<Rotation>,
    /// `emr-containers-defaults: executor.logging` is not `DISABLED`.
    pub executor_logging: bool,
    /// `emr-job-submitter: jobsubmitter.logging` is not `DISABLED`.
    pub runner_logging: bool,
    /// `persistentAppUI` is not `DISABLED` (ENABLED is the default).
    pub persistent_app_ui: bool,
    /// `emr-containers-defaults: logging.eventLog.dir`: where the event log is copied too.
    pub event_log_copy_dir: Option<String>,
    /// The user set `spark.eventLog.dir` (spark-defaults); EMR lets it win.
    pub user_event_log_dir: Option<String>,
    /// The user set `spark.eventLog.enabled` (spark-defaults).
    pub user_event_log_enabled: Option<bool>,
}

impl RunLogConfig {
    /// Reads a run's `configurationOverrides` (absent = nothing configured).
    pub fn from_overrides(
        virtual_cluster_id: &str,
        execution_role_arn: &str,
        overrides: Option<&Value>,
    ) -> Self {
        let empty = Value::Null;
        let overrides = overrides.unwrap_or(&empty);
        let monitoring = &overrides["monitoringConfiguration"];
        let text = |v: &Value| {
            v.as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let s3_log_uri = text(&monitoring["s3MonitoringConfiguration"]["logUri"]);
        let cloudwatch = text(&monitoring["cloudWatchMonitoringConfiguration"]["logGroupName"])
            .map(|log_group| CloudWatchTarget {
                log_group,
                stream_prefix: text(
                    &monitoring["cloudWatchMonitoringConfiguration"]["logStreamNamePrefix"],
                ),
            });
        let rotation = parse_rotation(&monitoring["containerLogRotationConfiguration"]);
        let persistent_app_ui = !monitoring["persistentAppUI"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("DISABLED"));
        let classifications = overrides["applicationConfiguration"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let property = |classification: &str, key: &str| -> Option<String> {
            classifications
                .iter()
                .rev()
                .filter(|c| c["classification"].as_str() == Some(classification))
                .find_map(|c| c["properties"][key].as_str().map(String::from))
        };
        let disabled =
            |v: Option<String>| v.is_some_and(|v| v.trim().eq_ignore_ascii_case("DISABLED"));
        Self {
            virtual_cluster_id: virtual_cluster_id.to_string(),
            execution_role_arn: execution_role_arn.to_string(),
            s3_log_uri,
            cloudwatch,
            rotation,
            executor_logging: !disabled(property("emr-containers-defaults", "executor.logging")),
            runner_logging: !disabled(property("emr-job-submitter", "jobsubmitter.logging")),
            persistent_app_ui,
            event_log_copy_dir: property("emr-containers-defaults", "logging.eventLog.dir")
                .filter(|d| !d.is_empty()),
            user_event_log_dir: property("spark-defaults", "spark.eventLog.dir")
                .filter(|d| !d.is_empty()),
            user_event_log_enabled: property("spark-defaults", "spark.eventLog.enabled")
                .map(|v| v.trim().eq_ignore_ascii_case("true")),
        }
    }

    /// Whether any container log of this run is shipped at all.
    pub fn ships_logs(&self) -> bool {
        self.s3_log_uri.is_some() || self.cloudwatch.is_some()
    }
}

/// `{"rotationSize": "2GB", "maxFilesToKeep": 10}`; `maxFilesToKeep` may come as a string
/// (the AWS docs' own example sends `"3"`). Invalid or absent values mean no rotation: the
/// API validates them before a run exists.
fn parse_rotation(value: &Value) -> Option<Rotation> {
    let size_bytes = parse_size(value["rotationSize"].as_str()?)?;
    let max_files = match &value["maxFilesToKeep"] {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Rotation {
        size_bytes,
        max_files: u32::try_from(max_files).ok()?.clamp(1, 50),
    })
}

/// `2KB`, `10MB`, `2GB` (integer units, binary multiples as the fluentd/logrotate sizes are),
/// also `2K`, `2M`, `2G` and plain bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_pi_overrides() -> Value {
        json!({
            "applicationConfiguration": [{
                "classification": "spark-defaults",
                "properties": {"spark.dynamicAllocation.enabled": "false"}
            }],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {
                    "logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch",
                    "logStreamNamePrefix": "pi"
                },
                "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-123456789012-us-east-2/"}
            }
        })
    }

    #[test]
    fn reads_the_seeds_monitoring_configuration() {
        let c =
            RunLogConfig::from_overrides("vc", "arn:aws:iam::1:role/r", Some(&seed_pi_overrides()));
        assert_eq!(
            c.s3_log_uri.as_deref(),
            Some("s3://monthly-batch-logs-123456789012-us-east-2/")
        );
        assert_eq!(
            c.cloudwatch,
            Some(CloudWatchTarget {
                log_group: "/emr-on-eks/eks-emr-cluster/monthly-batch".into(),
                stream_prefix: Some("pi".into())
            })
        );
        assert!(c.executor_logging && c.runner_logging && c.persistent_app_ui && c.ships_logs());
        assert_eq!(c.rotation, None);
    }

    #[test]
    fn nothing_configured_ships_nothing() {
        let c = RunLogConfig::from_overrides("vc", "r", None);
        assert!(!c.ships_logs());
        assert!(c.persistent_app_ui, "persistentAppUI is ENABLED by default");
    }

    #[test]
    fn logging_switches_and_event_log_dir() {
        let o = json!({
            "applicationConfiguration": [
                {"classification": "emr-containers-defaults",
                 "properties": {"executor.logging": "DISABLED", "logging.eventLog.dir": "s3://b/events"}},
                {"classification": "emr-job-submitter", "properties": {"jobsubmitter.logging": "disabled"}},
                {"classification": "spark-defaults", "properties": {"spark.eventLog.dir": "file:///tmp/ev"}}
            ],
            "monitoringConfiguration": {"persistentAppUI": "DISABLED"}
        });
        let c = RunLogConfig::from_overrides("vc", "r", Some(&o));
        assert!(!c.executor_logging && !c.runner_logging && !c.persistent_app_ui);
        assert_eq!(c.event_log_copy_dir.as_deref(), Some("s3://b/events"));
        assert_eq!(c.user_event_log_dir.as_deref(), Some("file:///tmp/ev"));
    }

    #[test]
    fn rotation_sizes_and_string_counts() {
        let o = json!({"monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": "s3://b"},
            "containerLogRotationConfiguration": {"rotationSize": "2KB", "maxFilesToKeep": "3"}}});
        let c = RunLogConfig::from_overrides("vc", "r", Some(&o));
        assert_eq!(
            c.rotation,
            Some(Rotation {
                size_bytes: 2048,
                max_files: 3
            })
        );
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        assert_eq!(parse_size("10mb"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5GB"), None);
        assert_eq!(parse_size("0KB"), None);
        assert_eq!(parse_size("3TB"), None);
    }
}
