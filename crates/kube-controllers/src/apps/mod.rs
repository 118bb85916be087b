//! The `apps/v1` workload controllers, as kube-controller-manager runs them: ReplicaSet,
//! Deployment (rolling updates over ReplicaSets), StatefulSet (ordinals, stable names,
//! claims from templates) and DaemonSet (one pod per eligible node, Karpenter's nodes
//! included).
//!
//! Each controller is a pure `decide` (the object, the pods it owns, nodes or other inputs,
//! the time → what to write) and a loop that applies it through the `Client`: one full
//! pass, then wait for a change to the kinds it reads or for its own requeue time, like
//! the Job controller beside it.

pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Map, Value};

use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::selectors::LabelSelector;
use sparkyard_kube_apiserver::Client;

pub const PODS: Resource = Resource::new("", "pods");
pub const NODES: Resource = Resource::new("", "nodes");
pub const PVCS: Resource = Resource::new("", "persistentvolumeclaims");
pub const REPLICA_SETS: Resource = Resource::new("apps", "replicasets");
pub const DEPLOYMENTS: Resource = Resource::new("apps", "deployments");
pub const STATEFUL_SETS: Resource = Resource::new("apps", "statefulsets");
pub const DAEMON_SETS: Resource = Resource::new("apps", "daemonsets");
pub const CONTROLLER_REVISIONS: Resource = Resource::new("apps", "controllerrevisions");

/// Starts the four workload controllers on the current runtime.
pub fn start(client: &Client) {
    tokio::spawn(replicaset::run(client.clone()));
    tokio::spawn(deployment::run(client.clone()));
    tokio::spawn(statefulset::run(client.clone()));
    tokio::spawn(daemonset::run(client.clone()));
}

/// The loop every workload controller runs: a full pass, then wait for a change to any of
/// `kinds` (filtered by `relevant`, so Spark's thousands of pods do not wake a controller
/// that owns none of them) or for the pass's own requeue time.
pub(crate) async fn control_loop(
    client: Client,
    kinds: &[Resource],
    relevant: fn(&Resource, &Value) -> bool,
    pass: impl Fn(&Client) -> Option<Duration>,
) {
    loop {
        let revision = client.revision();
        let next = pass(&client);
        let mut streams = Vec::new();
        for kind in kinds {
            match client.watch(*kind, Some(revision)) {
                Ok(stream) => {
                    let kind = *kind;
                    streams.push(
                        stream
                            .filter(move |e| std::future::ready(relevant(&kind, &e.object)))
                            .boxed(),
                    );
                }
                Err(_) => break,
            }
        }
        if streams.len() != kinds.len() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut merged = futures::stream::select_all(streams);
        let wait = next
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_millis(50));
        let _ = tokio::time::timeout(wait, merged.next()).await;
        // Let a burst of changes (a controller's own writes) land before the next pass.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

pub(crate) fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or("")
}

pub(crate) fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or("")
}

pub(crate) fn deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// Counted by its controller: not being deleted and not finished.
pub fn is_active(pod: &Value) -> bool {
    !deleting(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

pub fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c["status"] == "True")
}

/// Ready for at least `min_ready_seconds` (kube's `IsPodAvailable`).
pub fn is_available(pod: &Value, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    let Some(condition) = ready_condition(pod).filter(|c| c["status"] == "True") else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    time(&condition["lastTransitionTime"])
        .is_some_and(|since| since + chrono::Duration::seconds(min_ready_seconds) <= now)
}

/// When a ready pod becomes available, if it is not yet: the requeue that notices it.
pub fn available_in(pod: &Value, min_ready_seconds: i64, now: DateTime<Utc>) -> Option<Duration> {
    if min_ready_seconds <= 0 || !is_ready(pod) || is_available(pod, min_ready_seconds, now) {
        return None;
    }
    let since = time(&ready_condition(pod)?["lastTransitionTime"])?;
    let at = since + chrono::Duration::seconds(min_ready_seconds);
    (at - now).to_std().ok()
}

/// The uid of the object controlling `object`, with its kind.
pub fn controller_of(object: &Value) -> Option<(&str, &str)> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
        .and_then(|o| Some((o["kind"].as_str()?, o["uid"].as_str()?)))
}

pub fn controlled_by(object: &Value, kind: &str) -> bool {
    controller_of(object).is_some_and(|(k, _)| k == kind)
}

/// The controller reference a workload puts on what it creates.
pub fn owner_reference(owner: &Value, kind: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

pub fn selector_matches(owner: &Value, object: &Value) -> bool {
    let selector = &owner["spec"]["selector"];
    // An empty or missing selector matches nothing for workloads (validation forbids it).
    if selector.as_object().is_none_or(|s| s.is_empty()) {
        return false;
    }
    LabelSelector::from_label_selector_object(selector).matches(object)
}

/// The objects of `all` that `owner` controls (by controller uid) in its namespace.
pub fn owned_by(owner: &Value, all: &[Arc<Value>]) -> Vec<Arc<Value>> {
    let (ns, owner_uid) = (namespace(owner), uid(owner));
    all.iter()
        .filter(|o| namespace(o) == ns && controller_of(o).is_some_and(|(_, u)| u == owner_uid))
        .cloned()
        .collect()
}

/// A pod from `template`: its labels and annotations plus `labels`, controlled by `owner`.
/// `name` is the pod's name; `None` gives `<generate_name><5 random>` as the API server would.
pub fn pod_from_template(
    owner: &Value,
    kind: &str,
    template: &Value,
    name: Option<&str>,
    generate_name: &str,
    labels: &[(&str, &str)],
) -> Value {
    let mut meta: Map<String, Value> = template["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    meta.remove("namespace");
    meta.remove("name");
    let mut all_labels = meta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in labels {
        all_labels.insert(k.to_string(), json!(v));
    }
    meta.insert("labels".into(), Value::Object(all_labels));
    let name = match name {
        Some(n) => n.to_string(),
        None => format!(
            "{}{}",
            crate::job::truncate(generate_name, 58),
            crate::job::random_suffix()
        ),
    };
    meta.insert("name".into(), json!(name));
    meta.insert("generateName".into(), json!(generate_name));
    meta.insert(
        "ownerReferences".into(),
        json!([owner_reference(owner, kind)]),
    );
    let mut spec = template["spec"].clone();
    if spec["restartPolicy"].is_null() {
        spec["restartPolicy"] = json!("Always");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// kube's `ComputeHash`: FNV-1a (32 bit) over the template (and the collision count when
/// there is one), written in the alphabet of generated names (`rand.SafeEncodeString`), so
/// names like `web-7d4b9c8f5` look as they do on a real cluster. The template is hashed as
/// canonical JSON (sorted keys) rather than Go's `%#v` dump: the value differs from kube's,
/// the properties (stable for a template, changed by any edit) are the same.
pub fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(canonical(template).as_bytes());
    if collision_count > 0 {
        feed(&(collision_count as u32).to_le_bytes());
    }
    safe_encode(&hash.to_string())
}

fn canonical(value: &Value) -> String {
    // Keys sorted at every level: objects keep insertion order here (`preserve_order`),
    // and the same template may arrive with its keys in another order (a rollback copies
    // it back from a ReplicaSet).
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                // A null field is an absent one (Go hashes the struct, where they are the
                // same): `kubectl rollout undo` sends `creationTimestamp: null`.
                let mut keys: Vec<&String> = map
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, _)| k)
                    .collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

/// `rand.SafeEncodeString`: each character replaced by one of the alphabet's, with no
/// vowels (no words) and no look-alike characters.
fn safe_encode(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// `intstr` as Kubernetes resolves `maxSurge`/`maxUnavailable`: an int, or a percentage of
/// `total` rounded up (surge) or down (unavailable).
pub fn int_or_percent(value: &Value, total: i64, round_up: bool, default: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(default),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => {
                let scaled = p * total;
                if round_up {
                    (scaled + 99) / 100
                } else {
                    scaled / 100
                }
            }
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// Sets (or replaces) the condition `kind` in `conditions`, keeping `lastTransitionTime`
/// when the status does not change.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
    with_update_time: bool,
) {
    let now_text = fmt_time(now);
    let mut condition = json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_text,
    });
    if with_update_time {
        condition["lastUpdateTime"] = json!(now_text);
    }
    if let Some(old) = conditions.iter_mut().find(|c| c["type"] == kind) {
        if old["status"] == status {
            condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
            if old["reason"] == reason && old["message"] == message && with_update_time {
                condition["lastUpdateTime"] = old["lastUpdateTime"].clone();
            }
        }
        *old = condition;
    } else {
        conditions.push(condition);
    }
}

/// Creates a controller's pod and records kube's `SuccessfulCreate` ("Created pod: x") or
/// `FailedCreate` ("Error creating: …") on its owner; the refusal's message on failure.
pub(crate) fn create_pod(
    client: &Client,
    involved: &Value,
    source: &sparkyard_kube_apiserver::events::Source,
    pod: Value,
) -> Result<(), String> {
    use sparkyard_kube_apiserver::events::{record, Kind};
    let pod_name = name(&pod).to_string();
    match client.create(PODS, namespace(involved), pod) {
        Ok(_) => {
            let message = format!("Created pod: {pod_name}");
            record(
                client,
                involved,
                Kind::Normal,
                "SuccessfulCreate",
                &message,
                source,
            );
            Ok(())
        }
        Err(e) => {
            let message = format!("Error creating: {}", e.message);
            record(
                client,
                involved,
                Kind::Warning,
                "FailedCreate",
                &message,
                source,
            );
            Err(e.message)
        }
    }
}

/// Deletes a controller's pod and records `SuccessfulDelete` ("Deleted pod: x").
pub(crate) fn delete_pod(
    client: &Client,
    involved: &Value,
    source: &sparkyard_kube_apiserver::events::Source,
    pod_name: &str,
) {
    use sparkyard_kube_apiserver::events::{record, Kind};
    let deleted = client.delete(
        PODS,
        namespace(involved),
        pod_name,
        sparkyard_kube_apiserver::Propagation::Background,
        None,
    );
    if deleted.is_ok() {
        let message = format!("Deleted pod: {pod_name}");
        record(
            client,
            involved,
            Kind::Normal,
            "SuccessfulDelete",
            &message,
            source,
        );
    }
}

/// Drops the counts that are zero, as kube's `omitempty` status fields do.
pub(crate) fn omit_zeros(status: &mut Value, keys: &[&str]) {
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| !(keys.contains(&k.as_str()) && *v == 0));
    }
}

pub(crate) fn involved(object: &Value, kind: &str) -> Value {
    let mut o = object.clone();
    o["kind"] = json!(kind);
    o["apiVersion"] = json!("apps/v1");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hash_is_stable_and_changes_with_the_template() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
        let b = json!({"spec": {"containers": [{"image": "nginx:1", "name": "c"}]}, "metadata": {"creationTimestamp": null, "labels": {"app": "web"}}});
        let c = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        assert_eq!(template_hash(&a, 0), template_hash(&b, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&c, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&a, 1));
        assert!(template_hash(&a, 0)
            .chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)));
    }

    #[test]
    fn int_or_percent_rounds_as_kube_does() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true, 0), 1);
        assert_eq!(int_or_percent(&json!("25%"), 3, false, 0), 0);
        assert_eq!(int_or_percent(&json!("25%"), 10, true, 0), 3);
        assert_eq!(int_or_percent(&json!(2), 10, true, 0), 2);
        assert_eq!(int_or_percent(&Value::Null, 10, true, 7), 7);
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Utc::now();
        let pod = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": fmt_time(now - chrono::Duration::seconds(5))}]}});
        assert!(is_available(&pod, 0, now));
        assert!(is_available(&pod, 5, now));
        assert!(!is_available(&pod, 10, now));
        let wait = available_in(&pod, 10, now).unwrap();
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(3));
    }
}
