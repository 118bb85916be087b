//! `status.conditions` as Kubernetes keeps them (apimachinery's `SetStatusCondition`): one
//! entry per `type`, `lastTransitionTime` kept while the status does not change.

use serde_json::{json, Value};

/// Sets `condition` on `object`'s `status.conditions`, replacing the one of its type.
pub fn set(object: &mut Value, condition: Value) {
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    if !object["status"]["conditions"].is_array() {
        object["status"]["conditions"] = json!([]);
    }
    let list = object["status"]["conditions"].as_array_mut().unwrap();
    match list.iter_mut().find(|c| c["type"] == condition["type"]) {
        Some(existing) => {
            let mut next = condition.clone();
            if existing["status"] == condition["status"]
                && !existing["lastTransitionTime"].is_null()
            {
                next["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = next;
        }
        None => list.push(condition),
    }
}
