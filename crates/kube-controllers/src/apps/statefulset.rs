//! The StatefulSet controller: pods `<set>-<ordinal>` with stable names (`hostname` and the
//! governing Service as `subdomain`), one PersistentVolumeClaim per `volumeClaimTemplates`
//! entry and ordinal (`<template>-<set>-<ordinal>`, kept when the pod or the set goes, as
//! `persistentVolumeClaimRetentionPolicy: Retain` does), `OrderedReady` (one ordinal at a
//! time, each waiting for the lower ones to be Running and Ready) or `Parallel` pod
//! management, ControllerRevisions per template, and `RollingUpdate` from the highest
//! ordinal down to `partition` (`OnDelete` replaces pods only when deleted).
//!
//! A pod created for an ordinal always takes the update revision's template; ordinals
//! below a `partition` that already run keep theirs (kube recreates them from the current
//! revision instead; the difference shows only if such a pod is deleted mid-rollout).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::{Client, Propagation};

use super::replicaset::write_status;
use super::*;

pub const REVISION_LABEL: &str = "controller-revision-hash";
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

#[derive(Debug, PartialEq)]
pub enum Action {
    Create(i64),
    Delete(String),
}

/// The pod ordinal of `<set>-<n>`, if the pod belongs to `set` by name.
pub fn ordinal(set: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// The next actions for a set whose update revision is `update_revision`, given its pods
/// by ordinal. `OrderedReady` returns at most one action and none while a lower pod is not
/// ready; `Parallel` returns every create and delete at once.
pub fn decide(sts: &Value, pods: &BTreeMap<i64, Arc<Value>>, update_revision: &str) -> Vec<Action> {
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let parallel = sts["spec"]["podManagementPolicy"] == "Parallel";
    let mut actions = Vec::new();
    let healthy = |p: &Value| is_active(p) && p["status"]["phase"] == "Running" && is_ready(p);
    // Failed or succeeded pods are replaced: delete first, create on a later pass.
    for (n, pod) in pods {
        if *n < replicas && !deleting(pod) && !is_active(pod) {
            actions.push(Action::Delete(name(pod).to_string()));
            if !parallel {
                return actions;
            }
        }
    }
    for n in 0..replicas {
        match pods.get(&n) {
            None => {
                actions.push(Action::Create(n));
                if !parallel {
                    return actions;
                }
            }
            Some(pod) if !parallel && !healthy(pod) => return actions,
            Some(_) => {}
        }
    }
    // Scale down from the highest ordinal.
    for (n, pod) in pods.iter().rev() {
        if *n >= replicas && !deleting(pod) {
            if !parallel
                && pods
                    .values()
                    .any(|p| !deleting(p) && ordinal_of(p) < *n && !healthy(p))
            {
                return actions;
            }
            actions.push(Action::Delete(name(pod).to_string()));
            if !parallel {
                return actions;
            }
        }
    }
    if !actions.is_empty() {
        return actions;
    }
    // Rolling update, highest ordinal first, once every pod is healthy.
    if sts["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return actions;
    }
    if pods.values().any(|p| deleting(p) || !healthy(p)) {
        return actions;
    }
    let partition = sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0);
    for (n, pod) in pods.iter().rev() {
        if *n >= partition
            && *n < replicas
            && pod["metadata"]["labels"][REVISION_LABEL] != update_revision
        {
            actions.push(Action::Delete(name(pod).to_string()));
            break;
        }
    }
    actions
}

fn ordinal_of(pod: &Value) -> i64 {
    pod["metadata"]["labels"][POD_INDEX_LABEL]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(i64::MAX)
}

/// The claims an ordinal's pod uses: `(volume name, claim name)` per template.
pub fn claim_names(sts: &Value, n: i64) -> Vec<(String, String)> {
    sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .map(|t| (t.to_string(), format!("{t}-{}-{n}", name(sts))))
        .collect()
}

/// The pod for ordinal `n` at `revision`.
pub fn pod_for(sts: &Value, n: i64, revision: &str) -> Value {
    let pod_name = format!("{}-{n}", name(sts));
    let index = n.to_string();
    let mut pod = pod_from_template(
        sts,
        "StatefulSet",
        &sts["spec"]["template"],
        Some(&pod_name),
        &format!("{}-", name(sts)),
        &[
            (REVISION_LABEL, revision),
            (POD_NAME_LABEL, &pod_name),
            (POD_INDEX_LABEL, &index),
        ],
    );
    if let Some(meta) = pod["metadata"].as_object_mut() {
        meta.remove("generateName");
    }
    pod["spec"]["hostname"] = json!(pod_name);
    if let Some(service) = sts["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        pod["spec"]["subdomain"] = json!(service);
    }
    let claims = claim_names(sts, n);
    if !claims.is_empty() {
        let volumes = pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut volumes: Vec<Value> = volumes
            .into_iter()
            .filter(|v| !claims.iter().any(|(t, _)| v["name"] == t.as_str()))
            .collect();
        for (template, claim) in &claims {
            volumes.push(json!({"name": template, "persistentVolumeClaim": {"claimName": claim}}));
        }
        pod["spec"]["volumes"] = json!(volumes);
    }
    pod
}

fn claim_for(sts: &Value, template: &Value, claim: &str) -> Value {
    let mut labels = sts["spec"]["selector"]["matchLabels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    if let Some(own) = template["metadata"]["labels"].as_object() {
        for (k, v) in own {
            labels[k] = v.clone();
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim,
            "labels": labels,
            "annotations": template["metadata"]["annotations"].clone(),
        },
        "spec": template["spec"].clone(),
    })
}

/// A ControllerRevision holding `template` as revision `number` (kube stores the template
/// as a strategic-merge patch of the set with `$patch: replace`).
pub fn controller_revision(sts: &Value, hash: &str, number: i64) -> Value {
    let mut template = sts["spec"]["template"].clone();
    template["$patch"] = json!("replace");
    let mut labels = sts["spec"]["selector"]["matchLabels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["controller.kubernetes.io/hash"] = json!(hash);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", name(sts)),
            "labels": labels,
            "ownerReferences": [owner_reference(sts, "StatefulSet")],
        },
        "data": {"spec": {"template": template}},
        "revision": number,
    })
}

pub fn status(
    sts: &Value,
    pods: &[Arc<Value>],
    current: &str,
    update: &str,
    now: DateTime<Utc>,
) -> Value {
    let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| is_active(p)).collect();
    let at = |rev: &str| {
        active
            .iter()
            .filter(|p| p["metadata"]["labels"][REVISION_LABEL] == rev)
            .count()
    };
    json!({
        "observedGeneration": sts["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": active.len(),
        "readyReplicas": active.iter().filter(|p| is_ready(p)).count(),
        "availableReplicas": active.iter().filter(|p| is_available(p, min_ready, now)).count(),
        "currentReplicas": at(current),
        "updatedReplicas": at(update),
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": sts["status"]["collisionCount"].as_i64().unwrap_or(0),
    })
}

const SOURCE: Source = Source {
    component: "statefulset-controller",
    host: None,
};

fn relevant(kind: &Resource, object: &Value) -> bool {
    *kind != PODS || controlled_by(object, "StatefulSet")
}

pub async fn run(client: Client) {
    control_loop(client, &[STATEFUL_SETS, PODS], relevant, reconcile_all).await
}

pub fn reconcile_all(client: &Client) -> Option<Duration> {
    let (sets, _) = client.list(STATEFUL_SETS, None);
    let now = Utc::now();
    let mut soonest: Option<Duration> = None;
    for sts in sets.iter().filter(|s| !deleting(s)) {
        if let Some(after) = reconcile(client, sts, now) {
            soonest = Some(soonest.map_or(after, |s| s.min(after)));
        }
    }
    soonest
}

fn reconcile(client: &Client, sts: &Value, now: DateTime<Utc>) -> Option<Duration> {
    let ns = namespace(sts);
    let set_name = name(sts);
    let involved = involved(sts, "StatefulSet");
    let hash = template_hash(
        &sts["spec"]["template"],
        sts["status"]["collisionCount"].as_i64().unwrap_or(0),
    );
    let update_revision = format!("{set_name}-{hash}");
    // The revision object for the current template.
    let (revisions, _) = client.list(CONTROLLER_REVISIONS, Some(ns));
    let revisions = owned_by(sts, &revisions);
    if !revisions.iter().any(|r| name(r) == update_revision) {
        let number = revisions
            .iter()
            .filter_map(|r| r["revision"].as_i64())
            .max()
            .unwrap_or(0)
            + 1;
        let _ = client.create(
            CONTROLLER_REVISIONS,
            ns,
            controller_revision(sts, &hash, number),
        );
    }
    let (pods, _) = client.list(PODS, Some(ns));
    let owned = owned_by(sts, &pods);
    let by_ordinal: BTreeMap<i64, Arc<Value>> = owned
        .iter()
        .filter_map(|p| Some((ordinal(set_name, name(p))?, p.clone())))
        .collect();
    let mut retry = None;
    for action in decide(sts, &by_ordinal, &update_revision) {
        match action {
            Action::Create(n) => {
                let pod = pod_for(sts, n, &update_revision);
                let pod_name = name(&pod).to_string();
                // Claims first: a pod never starts without its volumes.
                for (template_name, claim) in claim_names(sts, n) {
                    if client.get(PVCS, ns, &claim).is_some() {
                        continue;
                    }
                    let template = sts["spec"]["volumeClaimTemplates"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|t| t["metadata"]["name"] == template_name.as_str())
                        .cloned()
                        .unwrap_or_default();
                    match client.create(PVCS, ns, claim_for(sts, &template, &claim)) {
                        Ok(_) => events::record(client, &involved, Kind::Normal, "SuccessfulCreate", &format!("create Claim {claim} Pod {pod_name} in StatefulSet {set_name} success"), &SOURCE),
                        Err(e) => events::record(client, &involved, Kind::Warning, "FailedCreate", &format!("create Claim {claim} for Pod {pod_name} in StatefulSet {set_name} failed error: {}", e.message), &SOURCE),
                    }
                }
                match client.create(PODS, ns, pod) {
                    Ok(_) => events::record(
                        client,
                        &involved,
                        Kind::Normal,
                        "SuccessfulCreate",
                        &format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                        &SOURCE,
                    ),
                    Err(e) => {
                        events::record(
                            client,
                            &involved,
                            Kind::Warning,
                            "FailedCreate",
                            &format!(
                                "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                                e.message
                            ),
                            &SOURCE,
                        );
                        retry = Some(Duration::from_secs(5));
                    }
                }
            }
            Action::Delete(pod_name) => {
                if client
                    .delete(PODS, ns, &pod_name, Propagation::Background, None)
                    .is_ok()
                {
                    events::record(
                        client,
                        &involved,
                        Kind::Normal,
                        "SuccessfulDelete",
                        &format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
                        &SOURCE,
                    );
                }
            }
        }
    }
    let (pods, _) = client.list(PODS, Some(ns));
    let owned = owned_by(sts, &pods);
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let current_before = sts["status"]["currentRevision"]
        .as_str()
        .unwrap_or(&update_revision)
        .to_string();
    let all_updated = owned.iter().filter(|p| is_active(p)).count() == replicas
        && owned
            .iter()
            .filter(|p| is_active(p))
            .all(|p| p["metadata"]["labels"][REVISION_LABEL] == update_revision.as_str());
    let current = if all_updated {
        update_revision.clone()
    } else {
        current_before
    };
    write_status(
        client,
        STATEFUL_SETS,
        sts,
        status(sts, &owned, &current, &update_revision, now),
    );
    let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let soon = owned
        .iter()
        .filter_map(|p| available_in(p, min_ready, now))
        .min();
    [retry, soon].into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(replicas: i64, policy: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "u"}, "spec": {"replicas": replicas, "podManagementPolicy": policy, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}, "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}})
    }

    fn pod(n: i64, ready: bool, revision: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": format!("web-{n}"), "labels": {REVISION_LABEL: revision, POD_INDEX_LABEL: n.to_string()}}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}),
        )
    }

    fn pods(list: Vec<Arc<Value>>) -> BTreeMap<i64, Arc<Value>> {
        list.into_iter()
            .map(|p| (ordinal("web", name(&p)).unwrap(), p))
            .collect()
    }

    #[test]
    fn ordered_ready_creates_one_ordinal_after_the_previous_is_ready() {
        let s = sts(3, "OrderedReady");
        assert_eq!(decide(&s, &pods(vec![]), "r1"), vec![Action::Create(0)]);
        assert_eq!(decide(&s, &pods(vec![pod(0, false, "r1")]), "r1"), vec![]);
        assert_eq!(
            decide(&s, &pods(vec![pod(0, true, "r1")]), "r1"),
            vec![Action::Create(1)]
        );
    }

    #[test]
    fn parallel_creates_all_and_scale_down_starts_at_the_top() {
        assert_eq!(
            decide(&sts(3, "Parallel"), &pods(vec![]), "r1"),
            vec![Action::Create(0), Action::Create(1), Action::Create(2)]
        );
        let three = pods(vec![
            pod(0, true, "r1"),
            pod(1, true, "r1"),
            pod(2, true, "r1"),
        ]);
        assert_eq!(
            decide(&sts(1, "OrderedReady"), &three, "r1"),
            vec![Action::Delete("web-2".into())]
        );
    }

    #[test]
    fn rolling_update_replaces_the_highest_outdated_ordinal() {
        let s = sts(2, "OrderedReady");
        let old = pods(vec![pod(0, true, "r1"), pod(1, true, "r1")]);
        assert_eq!(decide(&s, &old, "r2"), vec![Action::Delete("web-1".into())]);
        let half = pods(vec![pod(0, true, "r1"), pod(1, true, "r2")]);
        assert_eq!(
            decide(&s, &half, "r2"),
            vec![Action::Delete("web-0".into())]
        );
    }

    #[test]
    fn pods_get_stable_names_and_their_claims() {
        let p = pod_for(&sts(1, "OrderedReady"), 0, "web-abc");
        assert_eq!(p["metadata"]["name"], "web-0");
        assert_eq!(p["spec"]["hostname"], "web-0");
        assert_eq!(p["spec"]["subdomain"], "web");
        assert_eq!(p["metadata"]["labels"][POD_NAME_LABEL], "web-0");
        assert_eq!(
            p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "data-web-0"
        );
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "webx-1"), None);
    }
}
