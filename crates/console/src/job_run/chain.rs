//! The run's pod chain — job runner → driver → executors — from ONE labelled pod list,
//! completed with the pods the API no longer has (preempted or deleted executors), known
//! from their Kubernetes events, their shipped log streams or Spark's executor list.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Spark's own pod labels (`spark-role=driver|executor`, `spark-exec-id=<n>`) and the
/// application id the driver pod carries.
const SPARK_ROLE: &str = "spark-role";
const SPARK_EXEC_ID: &str = "spark-exec-id";
const SPARK_APP: &str = "spark-app-selector";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    JobRunner,
    Driver,
    Executor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::JobRunner => "job-runner",
            Role::Driver => "driver",
            Role::Executor => "executor",
        }
    }
}

/// One pod of the run, live or remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainPod {
    pub name: String,
    pub role: Role,
    /// Spark's executor id (`spark-exec-id`, else the `-exec-<n>` name suffix).
    pub exec_id: Option<u32>,
    /// The pod's `status.phase`, or `Deleted` when the API no longer has it.
    pub phase: String,
    pub node: String,
    pub restarts: i64,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    /// `DisruptionTarget`/`PreemptionByScheduler`, or a `Preempted` event.
    pub preempted: bool,
    /// In the API's pod list (false: known only from events, logs or Spark).
    pub live: bool,
    pub pod_ip: String,
    /// The driver's `spark-app-selector`.
    pub app_id: String,
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `<prefix>-exec-<n>` → `n`: Spark on Kubernetes names executor pods so.
pub fn exec_id_of_name(name: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once("-exec-")?;
    n.parse().ok()
}

/// A pod's role from its name alone (for pods the API no longer has).
pub fn role_of_name(job_run_id: &str, name: &str) -> Role {
    if name == format!("spark-{job_run_id}-driver") || name.ends_with("-driver") {
        Role::Driver
    } else if exec_id_of_name(name).is_some() {
        Role::Executor
    } else {
        Role::JobRunner
    }
}

/// Whether a pod name belongs to the run: the runner (`<id>-…`, `<id>--<attempt>-…`),
/// the driver (`spark-<id>-…`), or an executor under one of the run's executor name
/// prefixes (`<prefix>-exec-<n>`).
pub fn belongs(job_run_id: &str, exec_prefixes: &BTreeSet<String>, name: &str) -> bool {
    if name.starts_with(&format!("{job_run_id}-"))
        || name.starts_with(&format!("spark-{job_run_id}-"))
    {
        return true;
    }
    match name.rsplit_once("-exec-") {
        Some((prefix, n)) => n.parse::<u32>().is_ok() && exec_prefixes.contains(prefix),
        None => false,
    }
}

/// The executor name prefixes among `names` (`pythonpi-8f1c…` of `pythonpi-8f1c…-exec-2`).
pub fn exec_prefixes<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names
        .into_iter()
        .filter_map(|n| {
            let (prefix, id) = n.rsplit_once("-exec-")?;
            id.parse::<u32>().ok().map(|_| prefix.to_string())
        })
        .collect()
}

/// A pod of the labelled list as a chain entry.
pub fn from_api(pod: &Value) -> ChainPod {
    let labels = &pod["metadata"]["labels"];
    let label = |k: &str| labels.get(k).and_then(Value::as_str).unwrap_or_default();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let role = match label(SPARK_ROLE) {
        "driver" => Role::Driver,
        "executor" => Role::Executor,
        _ => Role::JobRunner,
    };
    let exec_id = label(SPARK_EXEC_ID).parse().ok().or_else(|| {
        (role == Role::Executor)
            .then(|| exec_id_of_name(&name))
            .flatten()
    });
    let status = &pod["status"];
    let statuses = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let restarts = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let all_ended = !statuses.is_empty()
        && statuses
            .iter()
            .all(|c| c["state"].get("terminated").is_some());
    let ended = if all_ended {
        statuses
            .iter()
            .filter_map(|c| parse_time(&c["state"]["terminated"]["finishedAt"]))
            .max()
    } else {
        None
    };
    let preempted = status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "PreemptionByScheduler")
    });
    ChainPod {
        role,
        exec_id,
        phase: status["phase"].as_str().unwrap_or("Unknown").to_string(),
        node: pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        restarts,
        started: parse_time(&status["startTime"]),
        ended,
        preempted,
        live: true,
        pod_ip: status["podIP"].as_str().unwrap_or_default().to_string(),
        app_id: label(SPARK_APP).to_string(),
        name,
    }
}

/// A pod the API no longer has.
pub fn remembered(job_run_id: &str, name: &str) -> ChainPod {
    let role = role_of_name(job_run_id, name);
    ChainPod {
        name: name.to_string(),
        role,
        exec_id: (role == Role::Executor)
            .then(|| exec_id_of_name(name))
            .flatten(),
        phase: "Deleted".into(),
        node: String::new(),
        restarts: 0,
        started: None,
        ended: None,
        preempted: false,
        live: false,
        pod_ip: String::new(),
        app_id: String::new(),
    }
}

/// What the events say about a pod: scheduled where, when it started and ended, and
/// whether the scheduler preempted it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFacts {
    pub node: Option<String>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub preempted: bool,
}

/// The chain in EMR's order: job runner(s), driver(s), executors by id, each pod once.
/// `extra` are names known only from events or logs; `facts` fill in what the API no
/// longer says about them.
pub fn assemble(
    job_run_id: &str,
    live: Vec<ChainPod>,
    extra: impl IntoIterator<Item = String>,
    facts: &BTreeMap<String, EventFacts>,
) -> Vec<ChainPod> {
    let mut by_name: BTreeMap<String, ChainPod> =
        live.into_iter().map(|p| (p.name.clone(), p)).collect();
    for name in extra {
        by_name
            .entry(name.clone())
            .or_insert_with(|| remembered(job_run_id, &name));
    }
    for pod in by_name.values_mut() {
        let Some(f) = facts.get(&pod.name) else {
            continue;
        };
        pod.preempted |= f.preempted;
        if !pod.live {
            pod.node = f.node.clone().unwrap_or_default();
            pod.started = f.first;
            pod.ended = f.last;
        }
    }
    let mut pods: Vec<ChainPod> = by_name.into_values().collect();
    pods.sort_by(|a, b| {
        (a.role, a.exec_id.unwrap_or(u32::MAX), a.started, &a.name).cmp(&(
            b.role,
            b.exec_id.unwrap_or(u32::MAX),
            b.started,
            &b.name,
        ))
    });
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RUN: &str = "000000036abc";

    #[test]
    fn roles_come_from_spark_labels_then_names() {
        let exec = json!({"metadata": {"name": "pi-1a2b-exec-2", "labels": {"spark-role": "executor", "spark-exec-id": "2"}},
            "spec": {"nodeName": "ip-10-0-1-1"},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:05Z", "podIP": "127.1.0.7",
                "containerStatuses": [{"restartCount": 1, "state": {"running": {}}}],
                "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}});
        let p = from_api(&exec);
        assert_eq!(
            (p.role, p.exec_id, p.restarts, p.preempted),
            (Role::Executor, Some(2), 1, true)
        );
        assert_eq!(p.ended, None);
        assert_eq!(
            role_of_name(RUN, &format!("spark-{RUN}-driver")),
            Role::Driver
        );
        assert_eq!(role_of_name(RUN, "pi-1a2b-exec-11"), Role::Executor);
        assert_eq!(role_of_name(RUN, &format!("{RUN}-x7k2p")), Role::JobRunner);
    }

    #[test]
    fn deleted_executors_join_the_chain_in_id_order() {
        let runner = remembered(RUN, &format!("{RUN}-x7k2p"));
        let driver = remembered(RUN, &format!("spark-{RUN}-driver"));
        let mut facts = BTreeMap::new();
        facts.insert(
            "pi-1a2b-exec-1".to_string(),
            EventFacts {
                node: Some("n1".into()),
                preempted: true,
                ..Default::default()
            },
        );
        let chain = assemble(
            RUN,
            vec![driver, runner],
            [
                "pi-1a2b-exec-10".to_string(),
                "pi-1a2b-exec-1".to_string(),
                "pi-1a2b-exec-2".to_string(),
            ],
            &facts,
        );
        let names: Vec<&str> = chain.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                &format!("{RUN}-x7k2p") as &str,
                &format!("spark-{RUN}-driver"),
                "pi-1a2b-exec-1",
                "pi-1a2b-exec-2",
                "pi-1a2b-exec-10"
            ]
        );
        assert!(chain[2].preempted && chain[2].node == "n1" && chain[2].phase == "Deleted");
    }

    #[test]
    fn only_the_runs_pods_belong() {
        let prefixes = exec_prefixes(["pi-1a2b-exec-1", "spark-x-driver"]);
        assert!(belongs(RUN, &prefixes, "pi-1a2b-exec-7"));
        assert!(belongs(RUN, &prefixes, &format!("{RUN}--2-abcde")));
        assert!(!belongs(RUN, &prefixes, "other-exec-1"));
        assert!(!belongs(RUN, &prefixes, "000000036abcd-x"));
    }
}
