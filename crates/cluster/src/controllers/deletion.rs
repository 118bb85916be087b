//! Deleting objects from inside the cluster with the API server's DELETE semantics:
//! finalizers hold an object (with `deletionTimestamp` set) until they are removed;
//! `propagationPolicy` Foreground/Orphan become the `foregroundDeletion`/`orphan`
//! finalizers the garbage collector acts on; a pod bound to a node is deleted gracefully
//! (the kubelet stops it and removes it).

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::{now_rfc3339, Registry, Resource};

pub const PODS: Resource = Resource::new("", "pods");
pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// DELETE of one object. `grace` overrides the pod's `terminationGracePeriodSeconds`.
/// Returns the object as it is afterwards (removed or marked for deletion).
pub fn delete(registry: &Registry, resource: Resource, namespace: &str, name: &str, propagation: Propagation, grace: Option<i64>) -> Result<Value, ApiError> {
    let mut remove_now = false;
    let updated = registry.modify(resource, namespace, name, |object| {
        let already = !object["metadata"]["deletionTimestamp"].is_null();
        let meta = object["metadata"].as_object_mut().unwrap();
        let mut finalizers: Vec<String> = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let wanted = match propagation {
            Propagation::Foreground => Some(FOREGROUND),
            Propagation::Orphan => Some(ORPHAN),
            Propagation::Background => None,
        };
        if let Some(f) = wanted {
            if !already && !finalizers.iter().any(|x| x == f) {
                finalizers.push(f.to_string());
            }
        }
        let graceful_pod = resource == PODS && pod_needs_grace(object);
        let pod_grace = graceful_pod.then(|| grace.unwrap_or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30)).max(0));
        let meta = object["metadata"].as_object_mut().unwrap();
        if finalizers.is_empty() && pod_grace.unwrap_or(0) == 0 {
            remove_now = true;
            return Ok(());
        }
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), json!(finalizers));
        }
        if !already {
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(pod_grace.unwrap_or(0)));
        } else if let Some(g) = pod_grace {
            // A shorter grace period shortens an ongoing deletion.
            let current = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(g);
            meta.insert("deletionGracePeriodSeconds".into(), json!(current.min(g)));
        }
        Ok(())
    })?;
    if remove_now {
        return registry.remove(resource, namespace, name).map(|v| (*v).clone());
    }
    Ok((*updated).clone())
}

/// A pod needs the kubelet to stop it unless it never ran anywhere or already finished.
fn pod_needs_grace(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    !pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() && phase != "Succeeded" && phase != "Failed"
}

/// Removes an object whose deletion is complete: marked, no finalizers left, and for a pod
/// the kubelet is done (`deletionGracePeriodSeconds` 0). Returns whether it was removed.
pub fn finish_if_done(registry: &Registry, resource: Resource, namespace: &str, name: &str) -> bool {
    let Some(object) = registry.get(resource, namespace, name) else { return false };
    if object["metadata"]["deletionTimestamp"].is_null() {
        return false;
    }
    if object["metadata"]["finalizers"].as_array().map(|f| !f.is_empty()).unwrap_or(false) {
        return false;
    }
    if resource == PODS && object["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) > 0 && pod_needs_grace(&object) {
        return false;
    }
    registry.remove(resource, namespace, name).is_ok()
}

/// Drops one finalizer, then removes the object if that completed its deletion.
pub fn remove_finalizer(registry: &Registry, resource: Resource, namespace: &str, name: &str, finalizer: &str) -> Result<(), ApiError> {
    registry.modify(resource, namespace, name, |object| {
        if let Some(list) = object["metadata"]["finalizers"].as_array_mut() {
            list.retain(|f| f != finalizer);
            if list.is_empty() {
                object["metadata"].as_object_mut().unwrap().remove("finalizers");
            }
        }
        Ok(())
    })?;
    finish_if_done(registry, resource, namespace, name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn pods_on_a_node_are_deleted_gracefully_others_at_once() {
        let registry = Registry::new();
        registry.create(PODS, "ns", json!({"metadata": {"name": "bound"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 5}, "status": {"phase": "Running"}})).unwrap();
        registry.create(PODS, "ns", json!({"metadata": {"name": "pending"}, "spec": {}, "status": {"phase": "Pending"}})).unwrap();
        let marked = delete(&registry, PODS, "ns", "bound", Propagation::Background, None).unwrap();
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 5);
        assert!(registry.get(PODS, "ns", "bound").is_some());
        assert!(!finish_if_done(&registry, PODS, "ns", "bound"));
        delete(&registry, PODS, "ns", "pending", Propagation::Background, None).unwrap();
        assert!(registry.get(PODS, "ns", "pending").is_none());
    }

    #[test]
    fn foreground_adds_a_finalizer_that_holds_the_object() {
        let registry = Registry::new();
        let cm = Resource::new("", "configmaps");
        registry.create(cm, "ns", json!({"metadata": {"name": "c"}})).unwrap();
        delete(&registry, cm, "ns", "c", Propagation::Foreground, None).unwrap();
        let held = registry.get(cm, "ns", "c").unwrap();
        assert_eq!(held["metadata"]["finalizers"], json!([FOREGROUND]));
        remove_finalizer(&registry, cm, "ns", "c", FOREGROUND).unwrap();
        assert!(registry.get(cm, "ns", "c").is_none());
    }
}
