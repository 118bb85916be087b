//! `policy/v1` PodDisruptionBudgets and the eviction subresource that honours them.
//!
//! There is no disruption controller: a budget's status (`currentHealthy`,
//! `desiredHealthy`, `expectedPods`, `disruptionsAllowed`, the `DisruptionAllowed`
//! condition) is computed from the pods when the budget is read (`GET`, lists, tables)
//! and when an eviction consults it. An allowed eviction is recorded in
//! `status.disruptedPods` (the pod then no longer counts as healthy, as in
//! kube-controller-manager, until it is gone or two minutes pass).
//!
//! Expected pods are the pods the selector matches when `minAvailable` is a number; for a
//! percentage or `maxUnavailable` they are the scale of the pods' controllers (a
//! Deployment's, ReplicaSet's or StatefulSet's `spec.replicas`, each counted once), as
//! kube-controller-manager's disruption controller reads them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::deletion::{delete_internal, DeleteOptions};
use crate::error::ApiError;
use crate::registry::{now_rfc3339, object_name};
use crate::resources::{PODS, POD_DISRUPTION_BUDGETS};
use crate::selectors::LabelSelector;
use crate::ApiServer;

/// How long an eviction keeps a pod out of `currentHealthy` if it does not go
/// (kube-controller-manager's `DeletionTimeout`).
const DISRUPTED_POD_TIMEOUT_SECONDS: i64 = 120;

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn matches(pdb: &Value, pod: &Value) -> bool {
    // policy/v1: an empty selector selects every pod of the namespace; none selects none.
    match pdb.pointer("/spec/selector") {
        Some(selector) if selector.is_object() => {
            LabelSelector::from_label_selector_object(selector).matches(pod)
        }
        _ => false,
    }
}

/// `intstr.GetScaledValueFromIntOrPercent` rounding up.
fn scaled(value: &Value, total: i64) -> i64 {
    match value {
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => (p * total + 99) / 100,
            None => s.parse().unwrap_or(0),
        },
        other => other.as_i64().unwrap_or(0),
    }
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The budget's status over `pods` (those of its namespace) at `now`.
pub fn compute_status(pdb: &Value, pods: &[Value], now: DateTime<Utc>) -> Value {
    compute_status_scaled(pdb, pods, None, now)
}

/// Whether the budget's expected count comes from its pods' controllers.
fn uses_scale(pdb: &Value) -> bool {
    pdb.pointer("/spec/maxUnavailable").is_some()
        || pdb
            .pointer("/spec/minAvailable")
            .is_some_and(Value::is_string)
}

/// The total `spec.replicas` of the controllers of the budget's pods, each counted once
/// (a ReplicaSet owned by a Deployment counts as the Deployment); `None` when a pod has
/// no such controller, so the pod count stands.
fn controllers_scale(server: &ApiServer, ns: &str, pdb: &Value, pods: &[Value]) -> Option<i64> {
    use crate::resources::{DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS};
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for pod in pods.iter().filter(|p| matches(pdb, p)) {
        let owner = pod
            .pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|o| o["controller"] == true)?;
        let (kind, name) = (owner["kind"].as_str()?, owner["name"].as_str()?);
        let (info, name) = match kind {
            "ReplicaSet" => {
                let rs = server.registry.get(REPLICA_SETS.resource(), ns, name)?;
                let parent = rs
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|o| {
                        o.iter()
                            .find(|o| o["controller"] == true && o["kind"] == "Deployment")
                    })
                    .and_then(|o| o["name"].as_str())
                    .map(String::from);
                match parent {
                    Some(d) => (&DEPLOYMENTS, d),
                    None => (&REPLICA_SETS, name.to_string()),
                }
            }
            "StatefulSet" => (&STATEFUL_SETS, name.to_string()),
            _ => return None,
        };
        if seen.insert((info.plural, name.clone())) {
            let controller = server.registry.get(info.resource(), ns, &name)?;
            total += controller
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
        }
    }
    Some(total)
}

/// [`compute_status`] with the expected count given by the pods' controllers.
pub fn compute_status_scaled(
    pdb: &Value,
    pods: &[Value],
    scale: Option<i64>,
    now: DateTime<Utc>,
) -> Value {
    let selected: Vec<&Value> = pods.iter().filter(|p| matches(pdb, p)).collect();
    let mut disrupted = serde_json::Map::new();
    for (name, since) in pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let live = selected.iter().any(|p| {
            object_name(p) == Some(name.as_str())
                && p.pointer("/metadata/deletionTimestamp").is_none()
        });
        let fresh = parse_time(since)
            .is_some_and(|t| (now - t).num_seconds() < DISRUPTED_POD_TIMEOUT_SECONDS);
        if live && fresh {
            disrupted.insert(name.clone(), since.clone());
        }
    }
    let expected = scale
        .filter(|_| uses_scale(pdb))
        .unwrap_or(selected.len() as i64);
    let healthy = selected
        .iter()
        .filter(|p| {
            is_ready(p)
                && p.pointer("/metadata/deletionTimestamp").is_none()
                && !disrupted.contains_key(object_name(p).unwrap_or_default())
        })
        .count() as i64;
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(min, expected)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, expected)).max(0)
    } else {
        0
    };
    let allowed = (healthy - desired).max(0);
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let since = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "DisruptionAllowed" && c["status"] == status)
        })
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    json!({
        "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "disruptedPods": disrupted,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [{"type": "DisruptionAllowed", "status": status, "reason": reason,
                        "message": "", "observedGeneration": pdb.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
                        "lastTransitionTime": since}],
    })
}

fn namespace_pods(server: &ApiServer, ns: &str) -> Vec<Value> {
    let (pods, _) = server.registry.list(PODS.resource(), Some(ns));
    pods.iter().map(|p| (**p).clone()).collect()
}

/// The budget as read: its status computed from the pods now.
pub fn present(server: &ApiServer, pdb: &mut Value) {
    let ns = pdb
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let pods = namespace_pods(server, &ns);
    let scale = controllers_scale(server, &ns, pdb, &pods);
    pdb["status"] = compute_status_scaled(pdb, &pods, scale, Utc::now());
}

/// Validation of a budget's spec.
pub fn validate(pdb: &Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    if pdb.pointer("/spec/minAvailable").is_some() && pdb.pointer("/spec/maxUnavailable").is_some()
    {
        causes.push((
            "spec".into(),
            "Invalid value: \"object\": minAvailable and maxUnavailable cannot be both set".into(),
        ));
    }
    for key in ["minAvailable", "maxUnavailable"] {
        match pdb.pointer(&format!("/spec/{key}")) {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v < 0) => causes.push((
                format!("spec.{key}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            )),
            Some(Value::String(s)) => {
                let percent = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok());
                if !percent.is_some_and(|p| (0..=100).contains(&p)) {
                    causes.push((
                        format!("spec.{key}"),
                        format!(
                            "Invalid value: {s:?}: must be an integer or percentage (e.g '5%')"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    causes
}

/// `POST pods/<name>/eviction`: checks the pod's budget (429 when the eviction would
/// violate it), records the disruption, marks the pod `DisruptionTarget` and deletes it
/// with `opts`, as kube-apiserver's eviction REST does.
pub fn evict(
    server: &ApiServer,
    ns: &str,
    name: &str,
    uid: Option<&str>,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let pod = server
        .registry
        .get(PODS.resource(), ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    if let Some(uid) = uid {
        if pod["metadata"]["uid"] != uid {
            return Err(ApiError::conflict("", "pods", name));
        }
    }
    // Pods that are done, not yet running, or already going need no budget.
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ignores_budget = matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some();
    if !ignores_budget {
        check_and_record(server, ns, &pod)?;
    }
    let client = server.client();
    let now = now_rfc3339();
    client.update_status(PODS.resource(), ns, name, |pod| {
        crate::conditions::set(
            pod,
            json!({"type": "DisruptionTarget", "status": "True",
                "lastProbeTime": null, "lastTransitionTime": now,
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting"}),
        );
        Ok(())
    })?;
    let mut opts = opts.clone();
    if opts.precondition_uid.is_none() {
        opts.precondition_uid = uid.map(String::from);
    }
    delete_internal(server, &PODS, ns, name, &opts).map(|v| Value::clone(&v))
}

fn check_and_record(server: &ApiServer, ns: &str, pod: &Value) -> Result<(), ApiError> {
    let (budgets, _) = server
        .registry
        .list(POD_DISRUPTION_BUDGETS.resource(), Some(ns));
    let budgets: Vec<_> = budgets.into_iter().filter(|b| matches(b, pod)).collect();
    let budget = match budgets.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let pod_name = object_name(pod).unwrap_or_default().to_string();
    let pods = namespace_pods(server, ns);
    let scale = controllers_scale(server, ns, &budget, &pods);
    let budget_name = object_name(&budget).unwrap_or_default().to_string();
    let now = Utc::now();
    server.client().update_status(
        POD_DISRUPTION_BUDGETS.resource(),
        ns,
        &budget_name,
        |pdb| {
            let status = compute_status_scaled(pdb, &pods, scale, now);
            let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
            let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
            // An unready pod does not count as healthy: evicting it takes nothing from
            // the budget while the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget).
            if !is_ready(pod) && healthy >= desired {
                pdb["status"] = status;
                return Ok(());
            }
            if status["disruptionsAllowed"].as_i64().unwrap_or(0) <= 0 {
                return Err(ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    "DisruptionBudget",
                    &format!(
                        "The disruption budget {budget_name} needs {desired} healthy pods and has {healthy} currently"
                    ),
                ));
            }
            let mut status = status;
            status["disruptedPods"][&pod_name] = json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            status["disruptionsAllowed"] = json!(status["disruptionsAllowed"].as_i64().unwrap_or(1) - 1);
            status["currentHealthy"] = json!(healthy - 1);
            pdb["status"] = status;
            Ok(())
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "web"}},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn budgets_count_ready_matching_pods() {
        let pods = vec![
            pod("a", true),
            pod("b", true),
            pod("c", false),
            json!({"metadata": {"name": "x", "labels": {"app": "db"}}}),
        ];
        let pdb = json!({"metadata": {"generation": 2}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        let status = compute_status(&pdb, &pods, now());
        assert_eq!(
            (
                status["expectedPods"].as_i64(),
                status["currentHealthy"].as_i64(),
                status["desiredHealthy"].as_i64(),
                status["disruptionsAllowed"].as_i64()
            ),
            (Some(3), Some(2), Some(1), Some(1))
        );
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["conditions"][0]["reason"], "SufficientPods");
        let percent =
            json!({"spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}});
        // 50% of 3 rounds up to 2 unavailable: 1 must stay healthy.
        assert_eq!(compute_status(&percent, &pods, now())["desiredHealthy"], 1);
        let strict = json!({"spec": {"minAvailable": "100%", "selector": {}}});
        let status = compute_status(&strict, &pods, now());
        assert_eq!(
            (
                status["expectedPods"].as_i64(),
                status["disruptionsAllowed"].as_i64()
            ),
            (Some(4), Some(0))
        );
        assert_eq!(status["conditions"][0]["status"], "False");
    }

    #[test]
    fn a_recorded_disruption_counts_until_it_times_out() {
        let pods = vec![pod("a", true), pod("b", true)];
        let pdb = json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
                         "status": {"disruptedPods": {"a": "2025-01-01T00:00:30Z"}}});
        assert_eq!(compute_status(&pdb, &pods, now())["disruptionsAllowed"], 0);
        let later = now() + chrono::Duration::minutes(5);
        assert_eq!(compute_status(&pdb, &pods, later)["disruptionsAllowed"], 1);
    }

    #[test]
    fn validation() {
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}});
        assert_eq!(validate(&both).len(), 1);
        let bad = json!({"spec": {"minAvailable": "x%"}});
        assert_eq!(validate(&bad)[0].0, "spec.minAvailable");
    }

    #[test]
    fn percentages_and_max_unavailable_count_the_controllers_scale() {
        let ready = json!({"metadata": {"name": "a", "labels": {"app": "web"}}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let pods = vec![ready.clone(), {
            let mut b = ready.clone();
            b["metadata"]["name"] = json!("b");
            b
        }];
        let max =
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}});
        // Two of three replicas exist: one is already unavailable, so none may go.
        let status = compute_status_scaled(&max, &pods, Some(3), now());
        assert_eq!(status["expectedPods"], 3);
        assert_eq!(status["desiredHealthy"], 2);
        assert_eq!(status["disruptionsAllowed"], 0);
        // An integer minAvailable counts the pods, as kube does.
        let min = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1}});
        assert_eq!(
            compute_status_scaled(&min, &pods, Some(3), now())["expectedPods"],
            2
        );
    }
}
