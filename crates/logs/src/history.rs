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
    /// Host directory of the event logs; default `<data_dir>/spark-events`.
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

    pub fn event_log_dir(&self, data_dir: &Path) -> PathBuf {
        self.event_log_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("spark-events"))
    }
}

/// The history server's `spark-defaults`-style properties.
pub fn properties(config: &HistoryConfig, event_log_dir: &Path) -> String {
    format!(
        "spark.history.fs.logDirectory=file://{}\nspark.history.ui.port={}\nspark.ui.bindAddress={}\nspark.history.fs.update.interval=2s\nspark.history.fs.cleaner.enabled=false\n",
        event_log_dir.display(),
        config.port,
        config.host
    )
}

/// Starts the history server; it stops with sparkyard, however sparkyard ends.
pub fn start(
    config: &HistoryConfig,
    spark_home: &Path,
    java_home: Option<&Path>,
    event_log_dir: &Path,
    work_dir: &Path,
) -> anyhow::Result<tokio::process::Child> {
    let spark_class = spark_home.join("bin/spark-class");
    if !spark_class.exists() {
        bail!(
            "no Spark distribution at {} (bin/spark-class missing)",
            spark_home.display()
        );
    }
    std::fs::create_dir_all(event_log_dir)?;
    std::fs::create_dir_all(work_dir)?;
    let props = work_dir.join("spark-history.conf");
    std::fs::write(&props, properties(config, event_log_dir))?;
    let log = std::fs::File::create(work_dir.join("history-server.log"))?;
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
            PathBuf::from("/d/spark-events")
        );
        let p = properties(&c, Path::new("/d/spark-events"));
        assert!(p.contains("spark.history.fs.logDirectory=file:///d/spark-events\n"));
        assert!(p.contains("spark.history.ui.port=18080\n"));
    }
}
