//! The persistent app UI: the real Spark History Server of the installed Spark distribution,
//! run by `sparkyard serve` as a child process over the event-log directory.
//!
//! Started in the foreground with `bin/spark-class org.apache.spark.deploy.history.HistoryServer`
//! rather than `sbin/start-history-server.sh`, which daemonizes: a child process dies with
//! sparkyard (`kill_on_drop`) and its output goes to sparkyard's data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use serde::Deserialize;

/// `[history]` in sparkyard's configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HistoryConfig {
    /// Keep Spark event logs for the persistent app UI and serve them.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `start` (with `sparkyard serve`) or `on-demand` (at the first finished run that has
    /// an event log).
    #[serde(default)]
    pub start: StartMode,
    /// Address of the history server's UI.
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Where the event logs are: a host directory (default `<data_dir>/spark-events`), or
    /// `s3://bucket/prefix` to keep them in S3 (read and written through S3A).
    #[serde(default)]
    pub event_log_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    Start,
    /// The default: a History Server is a JVM, started only once a finished run has an event
    /// log, so servers that never run Spark (tests, API-only use) don't pay for one.
    #[default]
    OnDemand,
}

fn yes() -> bool {
    true
}

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_port() -> u16 {
    18080
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            start: StartMode::Start,
            host: default_host(),
            port: default_port(),
            event_log_dir: None,
        }
    }
}

impl HistoryConfig {
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The host directory of the event logs; `None` when they are in S3.
    pub fn event_log_dir(&self, data_dir: &Path) -> Option<PathBuf> {
        if self.s3_event_log_dir().is_some() {
            return None;
        }
        Some(
            self.event_log_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("spark-events")),
        )
    }

    /// `event-log-dir` as the `s3a://` URI Spark is given, when it names S3 (`s3://`,
    /// `s3a://` or `s3n://`, all S3A in sparkyard's runs).
    pub fn s3_event_log_dir(&self) -> Option<String> {
        let dir = self.event_log_dir.as_ref()?.to_str()?;
        ["s3://", "s3a://", "s3n://"].iter().find_map(|scheme| {
            dir.strip_prefix(scheme)
                .map(|rest| format!("s3a://{}", rest.trim_end_matches('/')))
        })
    }

    /// `spark.history.fs.logDirectory`.
    pub fn log_directory(&self, data_dir: &Path) -> String {
        match self.event_log_dir(data_dir) {
            Some(dir) => format!("file://{}", dir.display()),
            None => self.s3_event_log_dir().unwrap_or_default(),
        }
    }
}

/// How the History Server reaches S3 when its event logs are there: S3A's `spark.hadoop.*`
/// settings (endpoint, credentials provider) and the environment the provider reads; and
/// the credentials sparkyard creates the directory with before any run writes to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Access {
    pub properties: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub credentials: Option<crate::aws::credentials::Credentials>,
}

/// The history server's `spark-defaults`-style properties.
pub fn properties(config: &HistoryConfig, log_directory: &str, s3: &S3Access) -> String {
    let mut text = format!(
        "spark.history.fs.logDirectory={log_directory}\nspark.history.ui.port={}\nspark.ui.bindAddress={}\nspark.history.fs.update.interval=2s\nspark.history.fs.cleaner.enabled=false\n",
        config.port, config.host
    );
    if log_directory.starts_with("s3a://") {
        for (key, value) in &s3.properties {
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    text
}

/// `SPARK_HISTORY_OPTS` as the user set it, plus `-XX:-UsePerfData`.
fn history_java_options() -> String {
    match std::env::var("SPARK_HISTORY_OPTS") {
        Ok(user) if !user.trim().is_empty() => format!("{user} -XX:-UsePerfData"),
        _ => "-XX:-UsePerfData".to_string(),
    }
}

/// Starts the history server; it stops with sparkyard, however sparkyard ends.
pub fn start(
    config: &HistoryConfig,
    spark_home: &Path,
    java_home: Option<&Path>,
    log_directory: &str,
    s3: &S3Access,
    work_dir: &Path,
) -> anyhow::Result<tokio::process::Child> {
    let spark_class = spark_home.join("bin/spark-class");
    if !spark_class.exists() {
        bail!(
            "no Spark distribution at {} (bin/spark-class missing)",
            spark_home.display()
        );
    }
    std::fs::create_dir_all(work_dir)?;
    let props = work_dir.join("spark-history.conf");
    std::fs::write(&props, properties(config, log_directory, s3))?;
    // Appended to: a server started again keeps the reason the last one stopped.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work_dir.join("history-server.log"))?;
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(&spark_class)
        .arg("org.apache.spark.deploy.history.HistoryServer")
        .arg("--properties-file")
        .arg(&props)
        .env("SPARK_HOME", spark_home)
        // Binds where configured, not on every interface.
        .env("SPARK_LOCAL_IP", &config.host)
        .env("SPARK_NO_DAEMONIZE", "1")
        // No /tmp/hsperfdata_<user>/<pid> file: the JVM removes it only on an orderly exit,
        // and a server stopped by sparkyard's own SIGKILL would leave one per restart.
        .env("SPARK_HISTORY_OPTS", history_java_options())
        .envs(s3.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            // Stop with sparkyard even when it is killed outright (kill_on_drop needs an
            // orderly exit): the server would otherwise keep its port and a JVM heap, and the
            // next sparkyard's History Server could not bind. `spark-class` execs java, which
            // keeps this setting. The parent here is a runtime worker thread, which lives as
            // long as sparkyard.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if let Some(java) = java_home {
        command.env("JAVA_HOME", java);
    }
    command.spawn().with_context(|| {
        format!(
            "cannot start the Spark History Server from {}",
            spark_home.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_properties() {
        let c = HistoryConfig::default();
        assert_eq!(c.base_url(), "http://127.0.0.1:18080");
        assert_eq!(
            c.event_log_dir(Path::new("/d")),
            Some(PathBuf::from("/d/spark-events"))
        );
        let p = properties(&c, &c.log_directory(Path::new("/d")), &S3Access::default());
        assert!(p.contains("spark.history.fs.logDirectory=file:///d/spark-events\n"));
        assert!(p.contains("spark.history.ui.port=18080\n"));
    }

    #[test]
    fn an_s3_directory_is_read_through_s3a() {
        let c = HistoryConfig {
            event_log_dir: Some(PathBuf::from("s3://history/spark-events/")),
            ..HistoryConfig::default()
        };
        assert_eq!(c.event_log_dir(Path::new("/d")), None);
        assert_eq!(
            c.s3_event_log_dir().as_deref(),
            Some("s3a://history/spark-events")
        );
        let s3 = S3Access {
            properties: vec![("spark.hadoop.fs.s3a.endpoint".into(), "http://e".into())],
            ..S3Access::default()
        };
        let p = properties(&c, &c.log_directory(Path::new("/d")), &s3);
        assert!(p.contains("spark.history.fs.logDirectory=s3a://history/spark-events\n"));
        assert!(p.contains("spark.hadoop.fs.s3a.endpoint=http://e\n"));
    }
}
