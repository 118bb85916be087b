//! Spark's executor lifecycle read from the driver's log (log4j2 on stderr).
//!
//! Why the log: it exists from the driver's first second to its last, with or without
//! the Spark History Server, and its stored CloudWatch copy outlives the pod. The driver's
//! scheduler backend and task scheduler print one line per change:
//!
//! ```text
//! 26/12/04 13:53:41 INFO KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint: Registered executor NettyRpcEndpointRef(spark-client://Executor) (127.0.0.1:50004) with ID 1, ResourceProfileId 0
//! 26/12/04 13:53:54 INFO KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint: Disabling executor 2.
//! 26/12/04 13:53:55 ERROR TaskSchedulerImpl: Lost executor 2 on 127.1.26.123: The executor with id 2 was deleted by a user or the framework.
//! ```
//!
//! Spark's default layout (`log4j2-defaults.properties`) stamps `yy/MM/dd HH:mm:ss` in the
//! pod's zone (UTC here); a line may also carry the precise RFC 3339 time the Kubernetes
//! log API adds with `timestamps=true` (or the console adds from a CloudWatch event's
//! timestamp), which wins.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::timeline::SparkExecutor;

/// What one log line says about one executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Registered with the driver (`Registered executor … with ID n`); the detail is the
    /// executor's address.
    Added { address: String },
    /// The driver stopped using it (`Disabling executor n.`).
    Disabled,
    /// The task scheduler lost it (`Lost executor n on <host>: <reason>`).
    Lost { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineEvent {
    pub time: DateTime<Utc>,
    pub executor: u32,
    pub change: Change,
}

/// Splits a line into its time and the log4j message after the level and logger
/// (`Registered executor …`, with the logger's short name).
fn time_and_rest(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let line = line.trim_end();
    // An optional RFC 3339 prefix (`2026-12-04T13:53:41.969297110Z `).
    let (precise, rest) = match line.split_once(' ') {
        Some((first, rest)) if first.len() > 20 && first.as_bytes()[4] == b'-' => {
            match DateTime::parse_from_rfc3339(first) {
                Ok(t) => (Some(t.with_timezone(&Utc)), rest),
                Err(_) => (None, line),
            }
        }
        _ => (None, line),
    };
    // `yy/MM/dd HH:mm:ss LEVEL Logger: message`
    let stamp = rest.get(..17)?;
    let log4j = NaiveDateTime::parse_from_str(stamp, "%y/%m/%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc());
    let time = precise.or(log4j)?;
    let message = if log4j.is_some() {
        // Past the level (`INFO`, `WARN`, `ERROR`).
        rest[17..]
            .trim_start()
            .split_once(' ')
            .map_or("", |(_, m)| m)
    } else {
        rest
    };
    Some((time, message.trim_start()))
}

/// The number right after `prefix` in `text` (`with ID 3, …` → 3).
fn number_after(text: &str, prefix: &str) -> Option<u32> {
    let (_, after) = text.split_once(prefix)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One executor change, if the line is one.
pub fn parse_line(line: &str) -> Option<LineEvent> {
    // The cheap test first: most of a driver's lines are task progress.
    if ![
        "Registered executor ",
        "Disabling executor ",
        "Lost executor ",
    ]
    .iter()
    .any(|k| line.contains(k))
    {
        return None;
    }
    let (time, message) = time_and_rest(line)?;
    let event = |executor, change| {
        Some(LineEvent {
            time,
            executor,
            change,
        })
    };
    if message.contains("SchedulerBackend") && message.contains("Registered executor ") {
        let executor = number_after(message, ") with ID ")?;
        let address = message
            .rsplit_once(") with ID ")
            .and_then(|(head, _)| head.rsplit_once(" ("))
            .map(|(_, a)| a.to_string())
            .unwrap_or_default();
        return event(executor, Change::Added { address });
    }
    if message.contains("SchedulerBackend") && message.contains(": Disabling executor ") {
        return event(
            number_after(message, "Disabling executor ")?,
            Change::Disabled,
        );
    }
    if message.starts_with("TaskSchedulerImpl: Lost executor ") {
        let executor = number_after(message, "Lost executor ")?;
        let reason = message
            .split_once(" on ")
            .and_then(|(_, host_reason)| host_reason.split_once(": "))
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default();
        return event(executor, Change::Lost { reason });
    }
    None
}

/// Each executor's life from the driver's log lines: added at its registration, removed
/// at the first sign the driver let it go, with the task scheduler's reason when given.
pub fn executors<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<SparkExecutor> {
    let mut by_id: BTreeMap<u32, SparkExecutor> = BTreeMap::new();
    for e in lines.into_iter().filter_map(parse_line) {
        let x = by_id.entry(e.executor).or_insert_with(|| SparkExecutor {
            id: e.executor.to_string(),
            ..SparkExecutor::default()
        });
        match e.change {
            Change::Added { address } => {
                x.added.get_or_insert(e.time);
                if x.address.is_empty() {
                    x.address = address;
                }
            }
            Change::Disabled => {
                x.removed = Some(x.removed.map_or(e.time, |t| t.min(e.time)));
            }
            Change::Lost { reason } => {
                x.removed = Some(x.removed.map_or(e.time, |t| t.min(e.time)));
                if !reason.is_empty() {
                    x.remove_reason = reason;
                }
            }
        }
    }
    by_id.into_values().collect()
}

/// The application id in the driver's `Logging events to …/eventlog_v2_<app>/…` line
/// (or `…/<app>.inprogress` for single-file event logs), for when the driver pod and its
/// `spark-app-selector` label are gone.
pub fn app_id_in(line: &str) -> Option<String> {
    let (_, path) = line.split_once("Logging events to ")?;
    let name = match path.split_once("eventlog_v2_") {
        Some((_, rest)) => rest.split('/').next()?,
        None => path.rsplit('/').next()?.split('.').next()?,
    };
    (name.starts_with("spark-") || name.starts_with("application_"))
        .then(|| name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as Spark 4.0.1's driver printed them in this cluster (`kubectl logs`), and
    // one as the log API returns it with `timestamps=true`.
    const REGISTERED: &str = "26/12/04 13:53:41 INFO KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint: Registered executor NettyRpcEndpointRef(spark-client://Executor) (127.0.0.1:50004) with ID 1, ResourceProfileId 0";
    const REGISTERED_3: &str = "2026-12-04T13:53:59.435241493Z 26/12/04 13:53:59 INFO KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint: Registered executor NettyRpcEndpointRef(spark-client://Executor) (127.0.0.1:47168) with ID 3, ResourceProfileId 0";
    const DISABLING: &str = "26/12/04 13:53:54 INFO KubernetesClusterSchedulerBackend$KubernetesDriverEndpoint: Disabling executor 2.";
    const LOST: &str = "26/12/04 13:53:55 ERROR TaskSchedulerImpl: Lost executor 2 on 127.1.26.123: The executor with id 2 was deleted by a user or the framework.";
    const TASK: &str = "26/12/04 13:55:40 INFO TaskSetManager: Finished task 975.0 in stage 0.0 (TID 976) in 155 ms on 127.1.26.124 (executor 1) (976/3000)";
    const DAG: &str = "26/12/04 13:53:54 INFO DAGScheduler: Executor lost: 2 (epoch 0)";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn registrations_are_additions() {
        let e = parse_line(REGISTERED).unwrap();
        assert_eq!(e.executor, 1);
        assert_eq!(e.time, t("2026-12-04T13:53:41Z"));
        assert_eq!(
            e.change,
            Change::Added {
                address: "127.0.0.1:50004".into()
            }
        );
        let precise = parse_line(REGISTERED_3).unwrap();
        assert_eq!(
            (precise.executor, precise.time),
            (3, t("2026-12-04T13:53:59.435241493Z"))
        );
    }

    #[test]
    fn disabling_and_losing_are_removals() {
        assert_eq!(parse_line(DISABLING).unwrap().change, Change::Disabled);
        let lost = parse_line(LOST).unwrap();
        assert_eq!(lost.executor, 2);
        assert_eq!(
            lost.change,
            Change::Lost {
                reason: "The executor with id 2 was deleted by a user or the framework.".into()
            }
        );
    }

    #[test]
    fn other_lines_are_not_changes() {
        for line in [
            TASK,
            DAG,
            "",
            "WARNING: Using incubator modules",
            "26/12/04",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn the_application_id_comes_from_the_event_log_line() {
        let line = "26/12/04 13:51:43 INFO RollingEventLogFilesWriter: Logging events to file:/var/log/spark/apps/eventlog_v2_spark-3b22de7fa4424383a4920f014ba173f8/events_1_spark-3b22de7fa4424383a4920f014ba173f8.zstd";
        assert_eq!(
            app_id_in(line).as_deref(),
            Some("spark-3b22de7fa4424383a4920f014ba173f8")
        );
        assert_eq!(
            app_id_in(
                "x INFO SingleEventLogFileWriter: Logging events to s3://b/l/spark-abc.inprogress"
            )
            .as_deref(),
            Some("spark-abc")
        );
        assert_eq!(app_id_in(REGISTERED), None);
    }

    #[test]
    fn lives_fold_per_executor() {
        let lines = [REGISTERED, TASK, DISABLING, LOST, REGISTERED_3];
        let xs = executors(lines);
        let ids: Vec<&str> = xs.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(xs[0].added, Some(t("2026-12-04T13:53:41Z")));
        assert_eq!(xs[0].removed, None);
        // Executor 2 registered before the log's kept tail: removal only.
        assert_eq!(xs[1].added, None);
        assert_eq!(xs[1].removed, Some(t("2026-12-04T13:53:54Z")));
        assert_eq!(
            xs[1].remove_reason,
            "The executor with id 2 was deleted by a user or the framework."
        );
    }
}
