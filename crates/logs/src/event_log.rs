//! The persistent app UI (EMR's `persistentAppUI`): Spark event logs kept per run so the
//! real Spark History Server can show finished applications.
//!
//! The driver writes its event log to a host directory mounted into the driver pod with
//! Spark's own `spark.kubernetes.driver.volumes.hostPath.*` confs (no pod template change
//! needed), and the history server reads that directory. Each run's log is the file
//! `spark-<jobRunId>` there, since EMR sets `spark.app.id = spark-<jobRunId>`.
//!
//! Works where sparkyard can read the node's disk: the embedded cluster. With
//! `[history] event-log-dir = "s3://bucket/prefix"` drivers write to S3 instead and the
//! History Server reads S3, which works on any cluster; see docs/logs.md.

use crate::run_config::RunLogConfig;

/// Where drivers see the event-log directory (EMR's own path for Spark event logs).
pub const IN_POD_DIR: &str = "/var/log/spark/apps";
/// The Spark volume name of the mount.
pub const VOLUME_NAME: &str = "sparkyard-event-logs";

/// Where drivers write event logs: settings of the sparkyard instance, not of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventLogSettings {
    /// A host directory the History Server reads (`spark.history.fs.logDirectory`), mounted
    /// into drivers: the embedded cluster.
    HostDir(String),
    /// `s3a://bucket/prefix` (`[history] event-log-dir = "s3://…"`): drivers write there
    /// through S3A with the run's role, and the History Server reads it with the same
    /// connector, as with EMR's event logs in S3. Any cluster.
    S3(String),
}

/// The Spark confs the controller adds to a run (at spark-defaults precedence, so a value
/// the user set in `sparkSubmitParameters` still wins). Empty when the run turned the
/// persistent UI off, or set its own `spark.eventLog.dir` (EMR lets the user's directory win;
/// the reference notes the two conflict).
pub fn event_log_confs(run: &RunLogConfig, settings: &EventLogSettings) -> Vec<(String, String)> {
    let wanted = run.persistent_app_ui || run.event_log_copy_dir.is_some();
    if !wanted || run.user_event_log_dir.is_some() || run.user_event_log_enabled == Some(false) {
        return Vec::new();
    }
    let mut confs = vec![("spark.eventLog.enabled".to_string(), "true".to_string())];
    match settings {
        EventLogSettings::S3(uri) => confs.push(("spark.eventLog.dir".into(), uri.clone())),
        EventLogSettings::HostDir(host_dir) => {
            let prefix = format!("spark.kubernetes.driver.volumes.hostPath.{VOLUME_NAME}");
            confs.extend([
                ("spark.eventLog.dir".into(), format!("file://{IN_POD_DIR}")),
                (format!("{prefix}.mount.path"), IN_POD_DIR.into()),
                (format!("{prefix}.mount.readOnly"), "false".into()),
                (format!("{prefix}.options.path"), host_dir.clone()),
                (format!("{prefix}.options.type"), "DirectoryOrCreate".into()),
            ]);
        }
    }
    confs
}

/// The Spark application id EMR gives a run (`spark.app.id`). Open-source Spark on
/// Kubernetes ignores a submitted `spark.app.id` in cluster mode and draws its own
/// `spark-<32 hex>`, which the driver pod carries in its `spark-app-selector` label: the
/// shipper uses that label for the event log and the UI address, and this id only when the
/// label is absent.
pub fn application_id(job_run_id: &str) -> String {
    format!("spark-{job_run_id}")
}

/// The history server's page for an application.
pub fn history_url(base_url: &str, app_id: &str) -> String {
    format!("{}/history/{app_id}/", base_url.trim_end_matches('/'))
}

/// Where a finished application's event log is in the directory: the single file Spark
/// writes by default, or the directory of `spark.eventLog.rolling.enabled` logs.
pub fn find_event_log(dir: &std::path::Path, app_id: &str) -> Option<std::path::PathBuf> {
    [app_id.to_string(), format!("eventlog_v2_{app_id}")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> EventLogSettings {
        EventLogSettings::HostDir("/data/spark-events".into())
    }

    #[test]
    fn enabled_by_default_with_a_host_path_mount() {
        let run = RunLogConfig::from_overrides("vc", "r", None);
        let confs = event_log_confs(&run, &settings());
        let get = |k: &str| {
            confs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("spark.eventLog.enabled"), Some("true"));
        assert_eq!(
            get("spark.eventLog.dir"),
            Some("file:///var/log/spark/apps")
        );
        assert_eq!(
            get("spark.kubernetes.driver.volumes.hostPath.sparkyard-event-logs.options.path"),
            Some("/data/spark-events")
        );
        assert_eq!(
            get("spark.kubernetes.driver.volumes.hostPath.sparkyard-event-logs.mount.path"),
            Some("/var/log/spark/apps")
        );
    }

    #[test]
    fn an_s3_directory_needs_no_mount() {
        let run = RunLogConfig::from_overrides("vc", "r", None);
        let confs = event_log_confs(&run, &EventLogSettings::S3("s3a://history/events".into()));
        assert_eq!(
            confs,
            vec![
                ("spark.eventLog.enabled".to_string(), "true".to_string()),
                ("spark.eventLog.dir".into(), "s3a://history/events".into())
            ]
        );
    }

    #[test]
    fn disabled_or_user_directory_adds_nothing() {
        let off = json!({"monitoringConfiguration": {"persistentAppUI": "DISABLED"}});
        assert!(event_log_confs(
            &RunLogConfig::from_overrides("vc", "r", Some(&off)),
            &settings()
        )
        .is_empty());
        let own = json!({"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.eventLog.dir": "file:///mine"}}]});
        assert!(event_log_confs(
            &RunLogConfig::from_overrides("vc", "r", Some(&own)),
            &settings()
        )
        .is_empty());
        // DISABLED UI but a copy to the user's bucket still needs the log.
        let copy = json!({
            "monitoringConfiguration": {"persistentAppUI": "DISABLED"},
            "applicationConfiguration": [{"classification": "emr-containers-defaults",
                "properties": {"logging.eventLog.dir": "s3://b/ev"}}]});
        assert!(!event_log_confs(
            &RunLogConfig::from_overrides("vc", "r", Some(&copy)),
            &settings()
        )
        .is_empty());
    }

    #[test]
    fn urls_and_event_log_names() {
        assert_eq!(
            history_url(
                "http://127.0.0.1:18080/",
                &application_id("0000000327fe50tosa4")
            ),
            "http://127.0.0.1:18080/history/spark-0000000327fe50tosa4/"
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_event_log(dir.path(), "spark-a"), None);
        std::fs::create_dir(dir.path().join("eventlog_v2_spark-a")).unwrap();
        assert_eq!(
            find_event_log(dir.path(), "spark-a"),
            Some(dir.path().join("eventlog_v2_spark-a"))
        );
        std::fs::write(dir.path().join("spark-b"), "{}").unwrap();
        assert_eq!(
            find_event_log(dir.path(), "spark-b"),
            Some(dir.path().join("spark-b"))
        );
    }
}
