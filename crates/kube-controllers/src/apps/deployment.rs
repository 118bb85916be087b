//! The Deployment controller: one ReplicaSet per distinct pod template (named
//! `<deployment>-<pod-template-hash>`), rolled with the `RollingUpdate` strategy (scale the
//! new set up within `maxSurge`, old sets down while `maxUnavailable` allows) or `Recreate`
//! (old pods gone before new ones start); revision annotations, `revisionHistoryLimit`,
//! `paused`, and the status and conditions `kubectl rollout status` reads.
//!
//! Availability is counted from the pods (ready for `minReadySeconds`) rather than from
//! the ReplicaSets' status, which may lag one pass behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::{Client, Propagation, Subresource};

use super::replicaset::write_status;
use super::*;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// One ReplicaSet of a deployment, with what its pods say.
#[derive(Debug, Clone)]
pub struct Set {
    pub name: String,
    pub hash: String,
    pub spec_replicas: i64,
    pub active: i64,
    pub ready: i64,
    pub available: i64,
    pub revision: i64,
    pub created: String,
}

/// A change to one ReplicaSet's `spec.replicas`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub set: String,
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Default)]
pub struct Decision {
    /// Create the new ReplicaSet with this many replicas (it does not exist yet).
    pub create_new: Option<i64>,
    pub scales: Vec<Scale>,
    /// Old, empty sets beyond `revisionHistoryLimit`.
    pub delete: Vec<String>,
}

fn strategy_bounds(deploy: &Value) -> (i64, i64) {
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
    let rolling = &deploy["spec"]["strategy"]["rollingUpdate"];
    let surge = int_or_percent(&rolling["maxSurge"], replicas, true, 1);
    let mut unavailable = int_or_percent(&rolling["maxUnavailable"], replicas, false, 0);
    if surge == 0 && unavailable == 0 {
        // Validation forbids both zero; kube's resolver makes unavailable 1 all the same.
        unavailable = 1;
    }
    (surge, unavailable)
}

/// What to do this pass. `new` is the set whose template is the deployment's, if any;
/// `old` the others.
pub fn decide(deploy: &Value, new: Option<&Set>, old: &[Set]) -> Decision {
    let mut decision = Decision::default();
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    if deploy["spec"]["paused"] == true {
        return decision;
    }
    let recreate = deploy["spec"]["strategy"]["type"] == "Recreate";
    let old_active: i64 = old.iter().map(|s| s.active.max(s.spec_replicas)).sum();
    if recreate {
        for s in old.iter().filter(|s| s.spec_replicas > 0) {
            decision.scales.push(Scale {
                set: s.name.clone(),
                from: s.spec_replicas,
                to: 0,
            });
        }
        if old_active > 0 {
            // New pods wait until every old pod is gone.
            if new.is_none() {
                decision.create_new = Some(0);
            }
        } else {
            match new {
                None => decision.create_new = Some(replicas),
                Some(n) if n.spec_replicas != replicas => decision.scales.push(Scale {
                    set: n.name.clone(),
                    from: n.spec_replicas,
                    to: replicas,
                }),
                Some(_) => {}
            }
        }
    } else {
        let (surge, max_unavailable) = strategy_bounds(deploy);
        let total: i64 =
            old.iter().map(|s| s.spec_replicas).sum::<i64>() + new.map_or(0, |n| n.spec_replicas);
        let new_replicas = new.map_or(0, |n| n.spec_replicas);
        // Scale the new set up (or down to size).
        // Down to size if over, all at once when no old pods remain, else within the surge.
        let new_target = if new_replicas > replicas || old.iter().all(|s| s.spec_replicas == 0) {
            replicas
        } else {
            let room = (replicas + surge - total).max(0);
            new_replicas + room.min(replicas - new_replicas)
        };
        match new {
            None => decision.create_new = Some(new_target),
            Some(n) if new_target != n.spec_replicas => decision.scales.push(Scale {
                set: n.name.clone(),
                from: n.spec_replicas,
                to: new_target,
            }),
            Some(_) => {}
        }
        // Scale old sets down as far as availability allows.
        let min_available = replicas - max_unavailable;
        let new_unavailable = new.map_or(0, |n| (n.spec_replicas - n.available).max(0));
        let all_pods = total;
        let mut budget = all_pods - min_available - new_unavailable;
        let mut olds: Vec<&Set> = old.iter().filter(|s| s.spec_replicas > 0).collect();
        olds.sort_by(|a, b| a.created.cmp(&b.created));
        let mut targets: HashMap<String, i64> = olds
            .iter()
            .map(|s| (s.name.clone(), s.spec_replicas))
            .collect();
        // First the old pods that are not available anyway.
        for s in &olds {
            if budget <= 0 {
                break;
            }
            let unhealthy = (s.spec_replicas - s.available).max(0).min(budget);
            if unhealthy > 0 {
                *targets.get_mut(&s.name).unwrap() -= unhealthy;
                budget -= unhealthy;
            }
        }
        // Then available ones, keeping `min_available` available in all.
        let available: i64 =
            old.iter().map(|s| s.available).sum::<i64>() + new.map_or(0, |n| n.available);
        let mut healthy_budget = (available - min_available).max(0);
        for s in &olds {
            let current = targets[&s.name];
            let cut = current.min(healthy_budget);
            if cut > 0 {
                *targets.get_mut(&s.name).unwrap() -= cut;
                healthy_budget -= cut;
            }
        }
        for s in &olds {
            if targets[&s.name] != s.spec_replicas {
                decision.scales.push(Scale {
                    set: s.name.clone(),
                    from: s.spec_replicas,
                    to: targets[&s.name],
                });
            }
        }
    }
    // History: empty old sets beyond the limit, oldest revision first.
    let limit = deploy["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let mut empty: Vec<&Set> = old
        .iter()
        .filter(|s| s.spec_replicas == 0 && s.active == 0)
        .filter(|s| !decision.scales.iter().any(|c| c.set == s.name && c.to > 0))
        .collect();
    if empty.len() > limit {
        empty.sort_by_key(|s| s.revision);
        decision.delete = empty[..empty.len() - limit]
            .iter()
            .map(|s| s.name.clone())
            .collect();
    }
    decision
}

/// The deployment's `status` from its sets (as they are after this pass).
pub fn status(deploy: &Value, new: Option<&Set>, old: &[Set], now: DateTime<Utc>) -> Value {
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let all = old.iter().chain(new);
    let (mut active, mut ready, mut available) = (0, 0, 0);
    for s in all {
        active += s.active;
        ready += s.ready;
        available += s.available;
    }
    let updated = new.map_or(0, |n| n.active);
    let (_, max_unavailable) = strategy_bounds(deploy);
    let min_available = if deploy["spec"]["strategy"]["type"] == "Recreate" {
        replicas
    } else {
        replicas - max_unavailable
    };
    let mut conditions: Vec<Value> = deploy["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if available >= min_available {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
            true,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
            true,
        );
    }
    let new_name = new.map(|n| n.name.as_str()).unwrap_or("");
    let complete = new.is_some()
        && updated == replicas
        && available >= replicas
        && active == updated
        && new.is_some_and(|n| n.spec_replicas == replicas);
    let previous = &deploy["status"];
    let progressed = previous["updatedReplicas"].as_i64().unwrap_or(0) != updated
        || previous["availableReplicas"].as_i64().unwrap_or(0) != available
        || previous["readyReplicas"].as_i64().unwrap_or(0) != ready
        || previous["replicas"].as_i64().unwrap_or(0) != active;
    let deadline = deploy["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .unwrap_or(600);
    let progressing = conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned();
    if deploy["spec"]["paused"] == true {
        set_condition(
            &mut conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            now,
            true,
        );
    } else if complete {
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            now,
            true,
        );
    } else if progressed || progressing.is_none() {
        let was_new = progressing.as_ref().is_some_and(|c| {
            c["reason"] == "NewReplicaSetCreated"
                && c["message"].as_str().is_some_and(|m| m.contains(new_name))
        });
        let (reason, message) = if was_new && !progressed {
            (
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new_name}\""),
            )
        } else {
            (
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        };
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            reason,
            &message,
            now,
            true,
        );
        if let Some(c) = conditions.iter_mut().find(|c| c["type"] == "Progressing") {
            c["lastUpdateTime"] = json!(fmt_time(now));
        }
    } else if let Some(last) = progressing
        .as_ref()
        .filter(|c| c["status"] == "True")
        .and_then(|c| time(&c["lastUpdateTime"]))
    {
        if last + chrono::Duration::seconds(deadline) < now {
            set_condition(
                &mut conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                now,
                true,
            );
        }
    }
    let mut status = json!({
        "observedGeneration": deploy["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": active,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (replicas - available).max(0),
        "conditions": conditions,
    });
    if let Some(c) = deploy["status"]["collisionCount"].as_i64() {
        status["collisionCount"] = json!(c);
    }
    omit_zeros(
        &mut status,
        &[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
    );
    status
}

const SOURCE: Source = Source {
    component: "deployment-controller",
    host: None,
};

fn relevant(kind: &Resource, object: &Value) -> bool {
    match kind.plural {
        "replicasets" => controlled_by(object, "Deployment"),
        "pods" => controlled_by(object, "ReplicaSet"),
        _ => true,
    }
}

pub async fn run(client: Client) {
    control_loop(
        client,
        &[DEPLOYMENTS, REPLICA_SETS, PODS],
        relevant,
        reconcile_all,
    )
    .await
}

fn revision_of(object: &Value) -> i64 {
    object["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn summarize(rs: &Value, pods: &[Arc<Value>], min_ready: i64, now: DateTime<Utc>) -> Set {
    let owned = owned_by(rs, pods);
    let active: Vec<_> = owned.iter().filter(|p| is_active(p)).collect();
    Set {
        name: name(rs).to_string(),
        hash: rs["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        spec_replicas: rs["spec"]["replicas"].as_i64().unwrap_or(1),
        active: active.len() as i64,
        ready: active.iter().filter(|p| is_ready(p)).count() as i64,
        available: active
            .iter()
            .filter(|p| is_available(p, min_ready, now))
            .count() as i64,
        revision: revision_of(rs),
        created: rs["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    }
}

/// The ReplicaSet a deployment creates for its current template.
fn new_replica_set(deploy: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let mut template = deploy["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deploy["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let max = replicas_plus_surge(deploy);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", name(deploy)),
            "labels": template["metadata"]["labels"].clone(),
            "annotations": {
                REVISION: revision.to_string(),
                DESIRED: deploy["spec"]["replicas"].as_i64().unwrap_or(1).to_string(),
                MAX_REPLICAS: max.to_string(),
            },
            "ownerReferences": [owner_reference(deploy, "Deployment")],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": deploy["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    })
}

fn replicas_plus_surge(deploy: &Value) -> i64 {
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
    if deploy["spec"]["strategy"]["type"] == "Recreate" {
        replicas
    } else {
        replicas + strategy_bounds(deploy).0
    }
}

pub fn reconcile_all(client: &Client) -> Option<Duration> {
    let (deployments, _) = client.list(DEPLOYMENTS, None);
    if deployments.is_empty() {
        return None;
    }
    let now = Utc::now();
    let mut soonest: Option<Duration> = None;
    for deploy in deployments.iter().filter(|d| !deleting(d)) {
        if let Some(after) = reconcile(client, deploy, now) {
            soonest = Some(soonest.map_or(after, |s| s.min(after)));
        }
    }
    soonest
}

fn reconcile(client: &Client, deploy: &Value, now: DateTime<Utc>) -> Option<Duration> {
    let ns = namespace(deploy);
    let min_ready = deploy["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let (sets, _) = client.list(REPLICA_SETS, Some(ns));
    let owned = owned_by(deploy, &sets);
    let (pods, _) = client.list(PODS, Some(ns));
    let collision = deploy["status"]["collisionCount"].as_i64().unwrap_or(0);
    let hash = template_hash(&deploy["spec"]["template"], collision);
    let involved = involved(deploy, "Deployment");
    let summaries: Vec<(Arc<Value>, Set)> = owned
        .iter()
        .map(|rs| (rs.clone(), summarize(rs, &pods, min_ready, now)))
        .collect();
    let new = summaries
        .iter()
        .find(|(_, s)| s.hash == hash)
        .map(|(_, s)| s.clone());
    let old: Vec<Set> = summaries
        .iter()
        .filter(|(_, s)| s.hash != hash)
        .map(|(_, s)| s.clone())
        .collect();
    let decision = decide(deploy, new.as_ref(), &old);
    let max_revision = summaries.iter().map(|(_, s)| s.revision).max().unwrap_or(0);
    let mut new_revision = new.as_ref().map_or(max_revision + 1, |n| n.revision);
    // A template that comes back (a rollback) makes its old set the newest revision again.
    if let Some(n) = new.as_ref().filter(|n| n.revision < max_revision) {
        let revision = (max_revision + 1).to_string();
        if client
            .modify(REPLICA_SETS, ns, &n.name, Subresource::Main, |rs| {
                rs["metadata"]["annotations"][REVISION] = json!(revision.clone());
                Ok(())
            })
            .is_ok()
        {
            new_revision = max_revision + 1;
        }
    }

    if let Some(replicas) = decision.create_new {
        let rs = new_replica_set(deploy, &hash, replicas, max_revision + 1);
        match client.create(REPLICA_SETS, ns, rs) {
            Ok(_) => {
                let rs_name = format!("{}-{hash}", name(deploy));
                new_revision = max_revision + 1;
                if replicas > 0 {
                    events::record(
                        client,
                        &involved,
                        Kind::Normal,
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {rs_name} from 0 to {replicas}"),
                        &SOURCE,
                    );
                }
            }
            Err(e) if e.code == 409 => {
                // A set of that name with another template: kube's hash collision. Count it
                // so the next pass hashes differently.
                let (d_name, c) = (name(deploy).to_string(), collision + 1);
                let _ = client.update_status(DEPLOYMENTS, ns, &d_name, |d| {
                    d["status"]["collisionCount"] = json!(c);
                    Ok(())
                });
                return Some(Duration::from_millis(100));
            }
            Err(e) => {
                events::record(
                    client,
                    &involved,
                    Kind::Warning,
                    "FailedCreate",
                    &format!(
                        "Failed to create new replica set \"{}-{hash}\": {}",
                        name(deploy),
                        e.message
                    ),
                    &SOURCE,
                );
                return Some(Duration::from_secs(5));
            }
        }
    }
    for scale in &decision.scales {
        let is_new = new.as_ref().is_some_and(|n| n.name == scale.set);
        let desired = deploy["spec"]["replicas"].as_i64().unwrap_or(1).to_string();
        let max = replicas_plus_surge(deploy).to_string();
        let to = scale.to;
        let revision = new_revision.to_string();
        let written = client.modify(REPLICA_SETS, ns, &scale.set, Subresource::Main, |rs| {
            rs["spec"]["replicas"] = json!(to);
            rs["metadata"]["annotations"][DESIRED] = json!(desired.clone());
            rs["metadata"]["annotations"][MAX_REPLICAS] = json!(max.clone());
            if is_new {
                rs["metadata"]["annotations"][REVISION] = json!(revision.clone());
            }
            Ok(())
        });
        if written.is_ok() {
            let verb = if scale.to > scale.from { "up" } else { "down" };
            events::record(
                client,
                &involved,
                Kind::Normal,
                "ScalingReplicaSet",
                &format!(
                    "Scaled {verb} replica set {} from {} to {}",
                    scale.set, scale.from, scale.to
                ),
                &SOURCE,
            );
        }
    }
    for set in &decision.delete {
        let _ = client.delete(REPLICA_SETS, ns, set, Propagation::Background, None);
    }
    // The deployment's revision annotation follows its newest set.
    if revision_of(deploy) != new_revision && deploy["spec"]["paused"] != true {
        let revision = new_revision.to_string();
        let _ = client.modify(DEPLOYMENTS, ns, name(deploy), Subresource::Main, |d| {
            d["metadata"]["annotations"][REVISION] = json!(revision.clone());
            Ok(())
        });
    }
    // Status from the sets as they now are.
    let (sets, _) = client.list(REPLICA_SETS, Some(ns));
    let owned = owned_by(deploy, &sets);
    let (pods, _) = client.list(PODS, Some(ns));
    let summaries: Vec<Set> = owned
        .iter()
        .map(|rs| summarize(rs, &pods, min_ready, now))
        .collect();
    let new = summaries.iter().find(|s| s.hash == hash);
    let old: Vec<Set> = summaries
        .iter()
        .filter(|s| s.hash != hash)
        .cloned()
        .collect();
    let fresh = client
        .get(DEPLOYMENTS, ns, name(deploy))
        .unwrap_or_else(|| deploy.clone().into());
    let new_status = status(&fresh, new, &old, now);
    let stalled_check = (new_status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "Progressing"
                && c["status"] == "True"
                && c["reason"] != "NewReplicaSetAvailable"
        }))
    .then(|| {
        Duration::from_secs(
            deploy["spec"]["progressDeadlineSeconds"]
                .as_i64()
                .unwrap_or(600)
                .max(1) as u64,
        )
    });
    write_status(client, DEPLOYMENTS, &fresh, new_status);
    let available_soon = owned
        .iter()
        .flat_map(|rs| owned_by(rs, &pods))
        .filter_map(|p| available_in(&p, min_ready, now))
        .min();
    [stalled_check, available_soon].into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, strategy: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": replicas, "strategy": strategy, "template": {}}})
    }

    fn set(name: &str, spec: i64, available: i64, created: &str) -> Set {
        Set {
            name: name.into(),
            hash: name.into(),
            spec_replicas: spec,
            active: spec,
            ready: available,
            available,
            revision: 1,
            created: created.into(),
        }
    }

    #[test]
    fn a_first_rollout_creates_the_set_at_full_size() {
        let d = decide(&deploy(3, json!({"type": "RollingUpdate"})), None, &[]);
        assert_eq!(d.create_new, Some(3));
    }

    #[test]
    fn rolling_update_surges_then_scales_old_down_as_new_become_available() {
        let spec =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
        let d = deploy(3, spec);
        // New template: a new set with 1 (the surge), old keeps all 3 (nothing may go unavailable).
        let old = [set("old", 3, 3, "1")];
        let first = decide(&d, None, &old);
        assert_eq!(first.create_new, Some(1));
        assert!(first.scales.is_empty(), "{:?}", first.scales);
        // The new pod is available: one old pod may go, and then one more new may come.
        let new = set("new", 1, 1, "2");
        let second = decide(&d, Some(&new), &old);
        assert_eq!(
            second.scales,
            vec![Scale {
                set: "old".into(),
                from: 3,
                to: 2
            }]
        );
        let old2 = [set("old", 2, 2, "1")];
        let third = decide(&d, Some(&new), &old2);
        assert_eq!(
            third.scales,
            vec![Scale {
                set: "new".into(),
                from: 1,
                to: 2
            }]
        );
    }

    #[test]
    fn unavailable_new_pods_hold_old_ones() {
        let spec =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
        let new = Set {
            available: 0,
            ..set("new", 1, 0, "2")
        };
        let d = decide(&deploy(3, spec), Some(&new), &[set("old", 3, 3, "1")]);
        assert!(d.scales.is_empty(), "{:?}", d.scales);
    }

    #[test]
    fn recreate_waits_for_old_pods_to_go() {
        let d = deploy(2, json!({"type": "Recreate"}));
        let old = [set("old", 2, 2, "1")];
        let first = decide(&d, None, &old);
        assert_eq!(
            first.scales,
            vec![Scale {
                set: "old".into(),
                from: 2,
                to: 0
            }]
        );
        assert_eq!(first.create_new, Some(0));
        let gone = [Set {
            active: 0,
            ..set("old", 0, 0, "1")
        }];
        let new = set("new", 0, 0, "2");
        let second = decide(&d, Some(&new), &gone);
        assert_eq!(
            second.scales,
            vec![Scale {
                set: "new".into(),
                from: 0,
                to: 2
            }]
        );
    }

    #[test]
    fn history_beyond_the_limit_is_deleted_oldest_first() {
        let mut d = deploy(1, json!({"type": "RollingUpdate"}));
        d["spec"]["revisionHistoryLimit"] = json!(1);
        let mut a = set("a", 0, 0, "1");
        a.active = 0;
        a.revision = 1;
        let mut b = a.clone();
        b.name = "b".into();
        b.revision = 2;
        let new = set("c", 1, 1, "3");
        let out = decide(&d, Some(&new), &[b, a]);
        assert_eq!(out.delete, vec!["a".to_string()]);
    }

    #[test]
    fn status_reports_a_finished_rollout() {
        let d = deploy(2, json!({"type": "RollingUpdate"}));
        let new = set("web-x", 2, 2, "1");
        let s = status(&d, Some(&new), &[], Utc::now());
        assert_eq!(s["updatedReplicas"], 2);
        assert_eq!(s["availableReplicas"], 2);
        assert_eq!(s["observedGeneration"], 2);
        let progressing = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Progressing")
            .unwrap();
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert_eq!(
            progressing["message"],
            "ReplicaSet \"web-x\" has successfully progressed."
        );
    }
}
