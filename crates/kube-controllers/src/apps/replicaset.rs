//! The ReplicaSet controller: keeps `spec.replicas` active pods from the template, creating
//! (stopping at the first refusal, as kube's slow-start batches do, so a quota's 403 is
//! recorded once per pass rather than per missing pod) and deleting the least useful pods
//! first (unscheduled, then pending, then not ready, then the youngest), and reports
//! `replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`.
//!
//! Pods are the ones the set controls (owner reference with `controller: true`); orphans
//! matching the selector are not adopted (nothing in sparkyard orphans them).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use sparkyard_kube_apiserver::events::Source;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::{ApiError, Client};

use super::*;

#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub create: usize,
    pub delete: Vec<String>,
    pub requeue_after: Option<Duration>,
}

/// How many pods to create or which to delete, given the set and the pods it controls.
pub fn decide(rs: &Value, pods: &[Arc<Value>], now: DateTime<Utc>) -> Decision {
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let mut active: Vec<&Arc<Value>> = pods.iter().filter(|p| is_active(p)).collect();
    let mut decision = Decision {
        requeue_after: pods
            .iter()
            .filter_map(|p| available_in(p, min_ready, now))
            .min(),
        ..Decision::default()
    };
    if active.len() < want {
        decision.create = want - active.len();
    } else if active.len() > want {
        active.sort_by_key(|p| deletion_rank(p));
        decision.delete = active[..active.len() - want]
            .iter()
            .map(|p| name(p).to_string())
            .collect();
    }
    decision
}

/// Lower ranks are deleted first (kube's `ActivePodsWithRanks`, simplified): unscheduled,
/// pending, not ready, recently ready, then younger pods.
fn deletion_rank(
    pod: &Value,
) -> (
    bool,
    bool,
    bool,
    std::cmp::Reverse<String>,
    std::cmp::Reverse<String>,
) {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let running = pod["status"]["phase"] == "Running";
    let ready = is_ready(pod);
    let ready_since = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or("")
        .to_string();
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (
        scheduled,
        running,
        ready,
        std::cmp::Reverse(ready_since),
        std::cmp::Reverse(created),
    )
}

/// The set's `status` for these pods (creation failure, if any, as `ReplicaFailure`).
pub fn status(rs: &Value, pods: &[Arc<Value>], failure: Option<&str>, now: DateTime<Utc>) -> Value {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| is_active(p)).collect();
    let labels = rs["spec"]["template"]["metadata"]["labels"].as_object();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            labels
                .into_iter()
                .flatten()
                .all(|(k, v)| p["metadata"]["labels"][k] == *v)
        })
        .count();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let mut conditions: Vec<Value> = rs["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match failure {
        Some(message) => set_condition(
            &mut conditions,
            "ReplicaFailure",
            "True",
            "FailedCreate",
            message,
            now,
            false,
        ),
        None => conditions.retain(|c| c["type"] != "ReplicaFailure"),
    }
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    // kube omits zero counts (omitempty) except `replicas`.
    omit_zeros(
        &mut status,
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"],
    );
    status
}

const SOURCE: Source = Source {
    component: "replicaset-controller",
    host: None,
};

fn relevant(kind: &Resource, object: &Value) -> bool {
    *kind != PODS || controlled_by(object, "ReplicaSet")
}

pub async fn run(client: Client) {
    control_loop(client, &[REPLICA_SETS, PODS], relevant, reconcile_all).await
}

pub fn reconcile_all(client: &Client) -> Option<Duration> {
    let (sets, _) = client.list(REPLICA_SETS, None);
    if sets.is_empty() {
        return None;
    }
    let (pods, _) = client.list(PODS, None);
    let pods: Vec<Arc<Value>> = pods
        .into_iter()
        .filter(|p| controlled_by(p, "ReplicaSet"))
        .collect();
    let now = Utc::now();
    let mut soonest: Option<Duration> = None;
    for rs in sets.iter().filter(|rs| !deleting(rs)) {
        let owned = owned_by(rs, &pods);
        let decision = decide(rs, &owned, now);
        let ns = namespace(rs);
        let involved = involved(rs, "ReplicaSet");
        let mut failure = None;
        for _ in 0..decision.create {
            let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str();
            let extra: Vec<(&str, &str)> =
                hash.map(|h| ("pod-template-hash", h)).into_iter().collect();
            let pod = pod_from_template(
                rs,
                "ReplicaSet",
                &rs["spec"]["template"],
                None,
                &format!("{}-", name(rs)),
                &extra,
            );
            if let Err(message) = create_pod(client, &involved, &SOURCE, pod) {
                failure = Some(message);
                // Try again later, as the work queue's rate limiter would.
                soonest =
                    Some(soonest.map_or(Duration::from_secs(5), |s| s.min(Duration::from_secs(5))));
                break;
            }
        }
        for pod_name in &decision.delete {
            delete_pod(client, &involved, &SOURCE, pod_name);
        }
        if let Some(after) = decision.requeue_after {
            soonest = Some(soonest.map_or(after, |s| s.min(after)));
        }
        // Status from what is stored now, so the counts include this pass's writes.
        let owned = if decision.create > 0 || !decision.delete.is_empty() {
            let (all, _) = client.list(PODS, Some(ns));
            owned_by(rs, &all)
        } else {
            owned
        };
        let new_status = status(rs, &owned, failure.as_deref(), now);
        write_status(client, REPLICA_SETS, rs, new_status);
    }
    soonest
}

/// Writes `status` if it changed, to the same object (same uid) only.
pub(crate) fn write_status(client: &Client, resource: Resource, object: &Value, status: Value) {
    if strip_times(&object["status"]) == strip_times(&status) {
        return;
    }
    let expected_uid = uid(object).to_string();
    let object_name = name(object).to_string();
    let _ = client.update_status(resource, namespace(object), &object_name, |o| {
        if o["metadata"]["uid"] != expected_uid.as_str() {
            return Err(ApiError::conflict(
                resource.group,
                resource.plural,
                &object_name,
            ));
        }
        o["status"] = status.clone();
        Ok(())
    });
}

/// A status with condition times removed: a pass that changes nothing but the clock
/// writes nothing.
fn strip_times(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions {
            if let Some(c) = c.as_object_mut() {
                c.remove("lastUpdateTime");
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, ready: bool, node: Option<&str>) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": format!("2026-01-01T00:00:0{}Z", name.len() % 10), "labels": {"app": "web"}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
    }

    fn rs(replicas: i64) -> Value {
        json!({"metadata": {"name": "web-abc", "namespace": "ns", "uid": "u", "generation": 3}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}}})
    }

    #[test]
    fn creates_the_missing_and_ignores_finished_pods() {
        let pods = vec![
            pod("a", "Running", true, Some("n")),
            pod("b", "Failed", false, Some("n")),
        ];
        let d = decide(&rs(3), &pods, Utc::now());
        assert_eq!(d.create, 2);
        assert!(d.delete.is_empty());
    }

    #[test]
    fn deletes_unscheduled_and_unready_pods_first() {
        let pods = vec![
            pod("ready", "Running", true, Some("n")),
            pod("pending", "Pending", false, None),
            pod("unready", "Running", false, Some("n")),
        ];
        let d = decide(&rs(1), &pods, Utc::now());
        assert_eq!(d.delete, vec!["pending".to_string(), "unready".to_string()]);
    }

    #[test]
    fn status_counts_ready_and_available_and_records_failure() {
        let pods = vec![
            pod("a", "Running", true, Some("n")),
            pod("b", "Pending", false, None),
        ];
        let s = status(&rs(2), &pods, Some("exceeded quota"), Utc::now());
        assert_eq!(s["replicas"], 2);
        assert_eq!(s["readyReplicas"], 1);
        assert_eq!(s["availableReplicas"], 1);
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["conditions"][0]["type"], "ReplicaFailure");
        assert_eq!(s["conditions"][0]["reason"], "FailedCreate");
    }
}
