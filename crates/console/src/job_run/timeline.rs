//! The run's timeline: the Kubernetes events of its pods merged with Spark's executor
//! added/removed events, oldest first, and the executor-lifetime chart's geometry.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::chain::EventFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    K8s,
    Spark,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::K8s => "k8s",
            Kind::Spark => "spark",
        }
    }
}

/// One row of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub time: DateTime<Utc>,
    pub kind: Kind,
    /// `Normal`/`Warning` (Spark's removals are warnings).
    pub event_type: String,
    /// The pod, or `executor <n>` for Spark's events.
    pub object: String,
    /// Kubernetes' reason (`Scheduled`, `Preempted`, `Killing`, …) or
    /// `ExecutorAdded`/`ExecutorRemoved`.
    pub reason: String,
    pub message: String,
}

/// One executor's life as the driver's log tells it ([`super::spark_log`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparkExecutor {
    pub id: String,
    /// `host:port` it registered from.
    pub address: String,
    pub added: Option<DateTime<Utc>>,
    pub removed: Option<DateTime<Utc>>,
    pub remove_reason: String,
}

fn rfc3339(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// When a Kubernetes event last happened: `lastTimestamp`, else `eventTime` (events.k8s.io
/// style), else `firstTimestamp`, else its creation.
pub fn event_time(e: &Value) -> Option<DateTime<Utc>> {
    rfc3339(&e["lastTimestamp"])
        .or_else(|| rfc3339(&e["eventTime"]))
        .or_else(|| rfc3339(&e["firstTimestamp"]))
        .or_else(|| rfc3339(&e["metadata"]["creationTimestamp"]))
}

/// The events of the run's pods (`keep` decides by pod name), as timeline rows, and what
/// they tell about each pod.
pub fn k8s_entries(
    events: &[Value],
    keep: impl Fn(&str) -> bool,
) -> (Vec<Entry>, BTreeMap<String, EventFacts>) {
    let mut entries = Vec::new();
    let mut facts: BTreeMap<String, EventFacts> = BTreeMap::new();
    for e in events {
        let object = &e["involvedObject"];
        let name = object["name"].as_str().unwrap_or_default();
        if object["kind"] != "Pod" || !keep(name) {
            continue;
        }
        let Some(time) = event_time(e) else { continue };
        let reason = e["reason"].as_str().unwrap_or_default().to_string();
        let message = e["message"].as_str().unwrap_or_default().to_string();
        let f = facts.entry(name.to_string()).or_default();
        f.first = Some(f.first.map_or(time, |t| t.min(time)));
        f.last = Some(f.last.map_or(time, |t| t.max(time)));
        if reason == "Preempted" {
            f.preempted = true;
        }
        if reason == "Scheduled" {
            // "Successfully assigned <ns>/<pod> to <node>"
            f.node = message.rsplit_once(" to ").map(|(_, n)| n.to_string());
        }
        entries.push(Entry {
            time,
            kind: Kind::K8s,
            event_type: e["type"].as_str().unwrap_or("Normal").to_string(),
            object: name.to_string(),
            reason,
            message,
        });
    }
    (entries, facts)
}

/// Spark's executor events as timeline rows: `Executor 3 added (127.0.0.1:50004)`,
/// `Executor 2 removed: <reason>`; the message always starts `Executor <n> added|removed`.
pub fn spark_entries(executors: &[SparkExecutor]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for x in executors {
        if let Some(time) = x.added {
            entries.push(Entry {
                time,
                kind: Kind::Spark,
                event_type: "Normal".into(),
                object: format!("executor {}", x.id),
                reason: "ExecutorAdded".into(),
                message: if x.address.is_empty() {
                    format!("Executor {} added", x.id)
                } else {
                    format!("Executor {} added ({})", x.id, x.address)
                },
            });
        }
        if let Some(time) = x.removed {
            let message = if x.remove_reason.is_empty() {
                format!("Executor {} removed (disabled by the driver)", x.id)
            } else {
                format!("Executor {} removed: {}", x.id, x.remove_reason)
            };
            entries.push(Entry {
                time,
                kind: Kind::Spark,
                event_type: "Warning".into(),
                object: format!("executor {}", x.id),
                reason: "ExecutorRemoved".into(),
                message,
            });
        }
    }
    entries
}

/// Both sources, oldest first (stable: same-time rows keep their source order).
pub fn merge(mut k8s: Vec<Entry>, spark: Vec<Entry>) -> Vec<Entry> {
    k8s.extend(spark);
    k8s.sort_by_key(|e| e.time);
    k8s
}

/// One bar of the executor-lifetime chart (SVG user units).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub y: u32,
    pub x: u32,
    pub width: u32,
    /// `running`, `removed` or `preempted`: the bar's CSS class.
    pub class: &'static str,
    pub title: String,
}

pub const CHART_LEFT: u32 = 110;
pub const CHART_WIDTH: u32 = 800;
pub const ROW_HEIGHT: u32 = 22;

/// Like the Spark UI's event timeline: one bar per executor from added to removed (or
/// `now` while it lives), on a time axis from the run's creation to its end (or `now`).
/// Spark posts no removal for executors still there when the application stops: with the
/// run `finished`, those end with it.
pub fn bars(
    executors: &[SparkExecutor],
    preempted: &BTreeSet<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    finished: bool,
) -> Vec<Bar> {
    let span = (end - start).num_milliseconds().max(1) as f64;
    let at = |t: DateTime<Utc>| {
        let f = ((t - start).num_milliseconds() as f64 / span).clamp(0.0, 1.0);
        CHART_LEFT + (f * f64::from(CHART_WIDTH)).round() as u32
    };
    let mut sorted: Vec<&SparkExecutor> = executors.iter().filter(|x| x.added.is_some()).collect();
    sorted.sort_by_key(|x| (x.id.parse::<u32>().unwrap_or(u32::MAX), x.id.clone()));
    sorted
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let added = x.added.unwrap_or(start);
            let x0 = at(added);
            let x1 = at(x.removed.unwrap_or(end)).max(x0 + 2);
            let class = if preempted.contains(&x.id) {
                "preempted"
            } else if x.removed.is_some() || finished {
                "removed"
            } else {
                "running"
            };
            Bar {
                label: format!("executor {}", x.id),
                y: i as u32 * ROW_HEIGHT,
                x: x0,
                width: x1 - x0,
                class,
                title: match x.removed {
                    Some(r) => format!(
                        "executor {}: added {}, removed {} {}",
                        x.id,
                        added.format("%H:%M:%S"),
                        r.format("%H:%M:%S"),
                        x.remove_reason
                    ),
                    None => format!("executor {}: added {}", x.id, added.format("%H:%M:%S")),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn events_and_executors_merge_in_time_order() {
        let events = vec![
            json!({"involvedObject": {"kind": "Pod", "name": "pi-exec-2"}, "reason": "Preempted", "type": "Normal",
                   "message": "Preempted by pod 1234 on node n1", "lastTimestamp": "2026-12-04T13:41:10Z"}),
            json!({"involvedObject": {"kind": "Pod", "name": "pi-exec-2"}, "reason": "Scheduled", "type": "Normal",
                   "message": "Successfully assigned ns/pi-exec-2 to n1", "eventTime": "2026-12-04T13:41:01.000000Z"}),
            json!({"involvedObject": {"kind": "Pod", "name": "someone-else"}, "reason": "Scheduled",
                   "lastTimestamp": "2026-12-04T13:41:00Z"}),
        ];
        let (k8s, facts) = k8s_entries(&events, |n| n.starts_with("pi-"));
        assert_eq!(k8s.len(), 2);
        let f = &facts["pi-exec-2"];
        assert!(f.preempted);
        assert_eq!(f.node.as_deref(), Some("n1"));
        let spark = vec![SparkExecutor {
            id: "2".into(),
            address: "127.0.0.1:50012".into(),
            added: Some(t("2026-12-04T13:41:05Z")),
            removed: Some(t("2026-12-04T13:41:11Z")),
            remove_reason: "The executor with id 2 was deleted by a user or the framework.".into(),
        }];
        let all = merge(k8s, spark_entries(&spark));
        let text: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            text,
            [
                "Successfully assigned ns/pi-exec-2 to n1",
                "Executor 2 added (127.0.0.1:50012)",
                "Preempted by pod 1234 on node n1",
                "Executor 2 removed: The executor with id 2 was deleted by a user or the framework."
            ]
        );
        assert_eq!(all[1].kind.as_str(), "spark");
    }

    #[test]
    fn bars_span_the_run() {
        let start = t("2026-12-04T13:40:00Z");
        let end = t("2026-12-04T13:41:40Z");
        let xs = vec![
            SparkExecutor {
                id: "2".into(),
                added: Some(t("2026-12-04T13:40:50Z")),
                removed: Some(t("2026-12-04T13:41:40Z")),
                ..SparkExecutor::default()
            },
            SparkExecutor {
                id: "1".into(),
                added: Some(start),
                ..SparkExecutor::default()
            },
        ];
        let b = bars(&xs, &BTreeSet::from(["2".to_string()]), start, end, false);
        assert_eq!(
            bars(&xs, &BTreeSet::new(), start, end, true)[0].class,
            "removed"
        );
        assert_eq!(
            (b[0].label.as_str(), b[0].x, b[0].width, b[0].class),
            ("executor 1", CHART_LEFT, CHART_WIDTH, "running")
        );
        assert_eq!(
            (b[1].y, b[1].x, b[1].width, b[1].class),
            (ROW_HEIGHT, CHART_LEFT + 400, 400, "preempted")
        );
    }
}
