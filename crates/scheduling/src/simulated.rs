//! Pods on simulated nodes (`simulated = true` in `[[cluster.nodes]]`): no process runs;
//! the pod's status moves as a kubelet would report it, driven only by the clock. This is
//! how sparkyard offers thousands of nodes on one machine for scheduling, autoscaling and
//! preemption scenarios (and the 5,000-node benchmark), KWOK-style.
//!
//! Annotations on the pod choose what its containers "do":
//! - `sparkyard.dev/simulated-duration` — how long the containers run, as a Go-style
//!   duration (`30s`, `1m30s`, `1.5h`, `250ms`) or a bare number of seconds. Absent:
//!   they run until the pod is deleted.
//! - `sparkyard.dev/simulated-exit-code` — their exit code when the duration ends
//!   (default `0`).
//!
//! Transitions ([`simulated_status`]):
//! 1. bound and not yet started → `Running` at once: init containers `Completed`, every
//!    container running and ready, `startTime` now, conditions all `True`;
//! 2. running and `startedAt + duration` reached → per `restartPolicy`: `Never` (and
//!    `OnFailure` after exit 0) → `Succeeded` (exit 0) or `Failed`, containers terminated
//!    (`Completed` / `Error`) at exactly `startedAt + duration`, `Ready` and
//!    `ContainersReady` `False` with reason `PodCompleted` / `PodFailed`; `Always` (and
//!    `OnFailure` after a non-zero exit) → containers restart, `restartCount` + 1, the
//!    previous run in `lastState`.
//!
//! Deletion needs no transition: with no process to stop, the kubelet side can finish a
//! simulated pod's graceful deletion at once. [`next_transition`] tells the caller when
//! to look again, so thousands of simulated pods need no polling.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

pub const ANNOTATION_DURATION: &str = "sparkyard.dev/simulated-duration";
pub const ANNOTATION_EXIT_CODE: &str = "sparkyard.dev/simulated-exit-code";

/// A Go `time.ParseDuration` string (`h`, `m`, `s`, `ms`, `us`/`µs`, `ns` units, decimals
/// allowed, concatenated), or a bare non-negative number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(seconds) = t.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::nanoseconds((seconds * 1e9) as i64));
    }
    let mut rest = t;
    let mut total_ns = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total_ns += number * scale;
        rest = &rest[unit_end..];
    }
    (total_ns < i64::MAX as f64).then(|| Duration::nanoseconds(total_ns as i64))
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn condition(kind: &str, status: bool, reason: Option<&str>, at: &str) -> Value {
    let mut c = json!({"type": kind, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn containers<'a>(pod: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn container_id(pod: &Value, name: &str, restart: i64) -> String {
    // Deterministic, containerd-shaped ids (64 hex digits) per pod, container and run.
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let seed = format!("{uid}/{name}/{restart}");
    let mut hex = String::new();
    for round in 0u64..4 {
        let mut h: u64 = 0xcbf29ce484222325 ^ round;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        hex.push_str(&format!("{h:016x}"));
    }
    format!("containerd://{hex}")
}

fn base_status(c: &Value, pod: &Value, restart: i64) -> Map<String, Value> {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("image".into(), json!(image));
    m.insert("imageID".into(), json!(image));
    m.insert(
        "containerID".into(),
        json!(container_id(pod, name, restart)),
    );
    m.insert("restartCount".into(), json!(restart));
    m
}

fn running_status(
    c: &Value,
    pod: &Value,
    restart: i64,
    started: &str,
    last: Option<Value>,
) -> Value {
    let mut m = base_status(c, pod, restart);
    m.insert("state".into(), json!({"running": {"startedAt": started}}));
    m.insert("lastState".into(), last.unwrap_or_else(|| json!({})));
    m.insert("ready".into(), json!(true));
    m.insert("started".into(), json!(true));
    Value::Object(m)
}

fn terminated(exit_code: i64, started: &str, finished: &str, cid: &str) -> Value {
    json!({"terminated": {
        "exitCode": exit_code,
        "reason": if exit_code == 0 { "Completed" } else { "Error" },
        "startedAt": started,
        "finishedAt": finished,
        "containerID": cid,
    }})
}

/// When the running containers started (their `startedAt`, else `status.startTime`).
fn run_started(pod: &Value) -> Option<DateTime<Utc>> {
    let from_container = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|c| c.pointer("/state/running/startedAt"));
    time(from_container).or_else(|| time(pod.pointer("/status/startTime")))
}

fn is_started(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// When the pod's next simulated transition is due, if it has one (a time ≤ now means
/// "now"). Unbound, terminal, deleting and run-until-deleted pods have none.
pub fn next_transition(pod: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        || is_terminal(pod)
        || pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
    {
        return None;
    }
    if !is_started(pod) {
        return Some(now);
    }
    let duration = parse_duration(annotation(pod, ANNOTATION_DURATION)?)?;
    Some(run_started(pod).unwrap_or(now) + duration)
}

/// The pod's new `status` on a simulated node at `now`, or `None` when nothing changes.
/// The caller writes it with the status subresource (and emits the usual events).
pub fn simulated_status(pod: &Value, now: DateTime<Utc>) -> Option<Value> {
    let due = next_transition(pod, now)?;
    if due > now {
        return None;
    }
    let mut status = pod
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let at = rfc3339(now);
    if !is_started(pod) {
        let init: Vec<Value> = containers(pod, "initContainers")
            .map(|c| {
                let mut m = base_status(c, pod, 0);
                let cid = m["containerID"].as_str().unwrap_or("").to_string();
                m.insert("state".into(), terminated(0, &at, &at, &cid));
                m.insert("lastState".into(), json!({}));
                m.insert("ready".into(), json!(true));
                m.insert("started".into(), json!(false));
                Value::Object(m)
            })
            .collect();
        let main: Vec<Value> = containers(pod, "containers")
            .map(|c| running_status(c, pod, 0, &at, None))
            .collect();
        status.insert("phase".into(), json!("Running"));
        status.insert("startTime".into(), json!(at));
        status.insert(
            "conditions".into(),
            json!([
                condition("PodReadyToStartContainers", true, None, &at),
                condition("Initialized", true, None, &at),
                condition("Ready", true, None, &at),
                condition("ContainersReady", true, None, &at),
                condition("PodScheduled", true, None, &at),
            ]),
        );
        if !init.is_empty() {
            status.insert("initContainerStatuses".into(), Value::Array(init));
        }
        status.insert("containerStatuses".into(), Value::Array(main));
        return Some(Value::Object(status));
    }

    // The run ends exactly at startedAt + duration, however late we look.
    let started = run_started(pod).unwrap_or(now);
    let finished = rfc3339(due);
    let started_text = rfc3339(started);
    let exit_code = annotation(pod, ANNOTATION_EXIT_CODE)
        .and_then(|c| c.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let policy = pod
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    let restart = policy == "Always" || (policy == "OnFailure" && exit_code != 0);
    let previous = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut statuses = Vec::new();
    for c in containers(pod, "containers") {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let count = previous
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|s| s.get("restartCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let cid = container_id(pod, name, count);
        let ended = terminated(exit_code, &started_text, &finished, &cid);
        if restart {
            statuses.push(running_status(c, pod, count + 1, &finished, Some(ended)));
        } else {
            let mut m = base_status(c, pod, count);
            m.insert("state".into(), ended);
            m.insert("lastState".into(), json!({}));
            m.insert("ready".into(), json!(false));
            m.insert("started".into(), json!(false));
            statuses.push(Value::Object(m));
        }
    }
    status.insert("containerStatuses".into(), Value::Array(statuses));
    if !restart {
        let (phase, reason) = if exit_code == 0 {
            ("Succeeded", "PodCompleted")
        } else {
            ("Failed", "PodFailed")
        };
        status.insert("phase".into(), json!(phase));
        let conditions = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let conditions: Vec<Value> = conditions
            .into_iter()
            .map(|c| match c.get("type").and_then(Value::as_str) {
                Some(kind @ ("Ready" | "ContainersReady")) => {
                    condition(kind, false, Some(reason), &finished)
                }
                Some(kind @ "PodReadyToStartContainers") => condition(kind, false, None, &finished),
                _ => c,
            })
            .collect();
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Some(Value::Object(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pod(annotations: Value, restart_policy: &str) -> Value {
        json!({
            "metadata": {"name": "exec-1", "uid": "u1", "annotations": annotations},
            "spec": {"nodeName": "sim-1", "restartPolicy": restart_policy,
                     "initContainers": [{"name": "init", "image": "busybox"}],
                     "containers": [{"name": "spark-kubernetes-executor", "image": "spark:4"}]},
            "status": {"phase": "Pending"}
        })
    }

    fn step(p: &mut Value, now: DateTime<Utc>) -> bool {
        match simulated_status(p, now) {
            Some(s) => {
                p["status"] = s;
                true
            }
            None => false,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::seconds(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::seconds(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::milliseconds(250)));
        assert_eq!(parse_duration("2"), Some(Duration::seconds(2)));
        assert_eq!(parse_duration("0"), Some(Duration::zero()));
        for bad in ["", "s", "5 s", "5d", "-1", "1x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn runs_then_succeeds_after_the_duration() {
        let mut p = pod(json!({ANNOTATION_DURATION: "30s"}), "Never");
        assert_eq!(
            next_transition(&p, t("2025-01-01T00:00:00Z")),
            Some(t("2025-01-01T00:00:00Z"))
        );
        assert!(step(&mut p, t("2025-01-01T00:00:00Z")));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["status"]["startTime"], "2025-01-01T00:00:00Z");
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"],
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
        assert_eq!(
            p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(
            next_transition(&p, t("2025-01-01T00:00:10Z")),
            Some(t("2025-01-01T00:00:30Z"))
        );
        assert!(!step(&mut p, t("2025-01-01T00:00:29Z")));
        assert!(
            step(&mut p, t("2025-01-01T00:05:00Z")),
            "late look still ends at start + duration"
        );
        let s = &p["status"];
        assert_eq!(s["phase"], "Succeeded");
        let term = &s["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (term["exitCode"].as_i64(), term["reason"].as_str()),
            (Some(0), Some("Completed"))
        );
        assert_eq!(term["finishedAt"], "2025-01-01T00:00:30Z");
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("PodCompleted"))
        );
        assert_eq!(next_transition(&p, t("2025-01-01T00:06:00Z")), None);
        assert!(!step(&mut p, t("2025-01-01T00:06:00Z")));
    }

    #[test]
    fn exit_codes_and_restart_policies() {
        let mut p = pod(
            json!({ANNOTATION_DURATION: "10s", ANNOTATION_EXIT_CODE: "3"}),
            "Never",
        );
        step(&mut p, t("2025-01-01T00:00:00Z"));
        step(&mut p, t("2025-01-01T00:00:10Z"));
        assert_eq!(p["status"]["phase"], "Failed");
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );

        let mut p = pod(
            json!({ANNOTATION_DURATION: "10s", ANNOTATION_EXIT_CODE: "1"}),
            "OnFailure",
        );
        step(&mut p, t("2025-01-01T00:00:00Z"));
        step(&mut p, t("2025-01-01T00:00:10Z"));
        let c = &p["status"]["containerStatuses"][0];
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(c["restartCount"], 1);
        assert_eq!(c["state"]["running"]["startedAt"], "2025-01-01T00:00:10Z");
        assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(
            next_transition(&p, t("2025-01-01T00:00:11Z")),
            Some(t("2025-01-01T00:00:20Z"))
        );
        step(&mut p, t("2025-01-01T00:00:20Z"));
        assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 2);

        let mut p = pod(json!({ANNOTATION_DURATION: "10s"}), "OnFailure");
        step(&mut p, t("2025-01-01T00:00:00Z"));
        step(&mut p, t("2025-01-01T00:00:10Z"));
        assert_eq!(p["status"]["phase"], "Succeeded");
    }

    #[test]
    fn no_duration_runs_until_deleted() {
        let mut p = pod(json!({}), "Never");
        step(&mut p, t("2025-01-01T00:00:00Z"));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(next_transition(&p, t("2030-01-01T00:00:00Z")), None);
        assert_eq!(simulated_status(&p, t("2030-01-01T00:00:00Z")), None);
        let mut unbound = pod(json!({}), "Never");
        unbound["spec"]["nodeName"] = Value::Null;
        assert_eq!(simulated_status(&unbound, t("2025-01-01T00:00:00Z")), None);
        let mut deleting = pod(json!({}), "Never");
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(simulated_status(&deleting, t("2025-01-01T00:00:00Z")), None);
    }
}
