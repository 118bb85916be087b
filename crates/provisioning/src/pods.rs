//! Which pods the provisioner acts on.

use serde_json::Value;

/// Karpenter's `IsProvisionable`: kube-scheduler marked the pod `PodScheduled=False`
/// with reason `Unschedulable`, it is not bound (`spec.nodeName`) nor about to be
/// (`status.nominatedNodeName`: it is preempting), and it is not a DaemonSet's or a
/// Node's (mirror) pod, which new nodes would not help.
pub fn is_provisionable(pod: &Value) -> bool {
    let unschedulable = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("PodScheduled")
                && c.get("status").and_then(Value::as_str) == Some("False")
                && c.get("reason").and_then(Value::as_str) == Some("Unschedulable")
        });
    let empty = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    };
    unschedulable
        && empty("/spec/nodeName")
        && empty("/status/nominatedNodeName")
        && !owned_by(pod, "DaemonSet")
        && !owned_by(pod, "Node")
}

/// Whether a controller owner reference of `kind` owns the pod.
pub fn owned_by(pod: &Value, kind: &str) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(extra: Value) -> Value {
        let mut p = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": []},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        });
        json_patch_merge(&mut p, extra);
        p
    }

    fn json_patch_merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    json_patch_merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    #[test]
    fn provisionable_pods() {
        assert!(is_provisionable(&pending(json!({}))));
        assert!(!is_provisionable(&pending(
            json!({"spec": {"nodeName": "n1"}})
        )));
        assert!(!is_provisionable(&pending(
            json!({"status": {"nominatedNodeName": "n1"}})
        )));
        assert!(!is_provisionable(&pending(
            json!({"metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "ds"}]}})
        )));
        assert!(!is_provisionable(&pending(
            json!({"metadata": {"ownerReferences": [{"kind": "Node", "name": "n"}]}})
        )));
        assert!(is_provisionable(&pending(
            json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}]}})
        )));
        assert!(!is_provisionable(&pending(
            json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}})
        )));
        assert!(
            !is_provisionable(&json!({"metadata": {"name": "fresh"}})),
            "not yet tried by kube-scheduler"
        );
    }
}
