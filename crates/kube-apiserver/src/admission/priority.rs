//! The Priority admission plugin: `priorityClassName` (or the global default class)
//! resolved to `spec.priority` and `preemptionPolicy`, and the PriorityClass rules
//! (one global default, immutable value).

use serde_json::{json, Value};

use super::{invalid, set_default, Causes};
use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources;
use crate::ApiServer;

/// Priority plugin: resolve `priorityClassName` (or the global default) to `spec.priority`.
pub(super) fn admit_pod_priority(server: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    let name = object_name(pod).unwrap_or_default().to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let class = if class_name.is_empty() {
        let (classes, _) = server
            .registry
            .list(resources::PRIORITY_CLASSES.resource(), None);
        classes
            .into_iter()
            .find(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
    } else {
        Some(
            server
                .registry
                .get(resources::PRIORITY_CLASSES.resource(), "", &class_name)
                .ok_or_else(|| ApiError::forbidden(format!("pods \"{name}\" is forbidden: no PriorityClass with name {class_name} was found")))?,
        )
    };
    let (priority, policy) = match &class {
        Some(c) => (
            c.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string()),
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            )));
        }
    }
    if let Some(c) = &class {
        pod["spec"]["priorityClassName"] = json!(object_name(c).unwrap_or_default());
    }
    pod["spec"]["priority"] = json!(priority);
    pod["spec"]["preemptionPolicy"] = json!(policy);
    Ok(())
}

/// `system-node-critical` (2000001000) and `system-cluster-critical` (2000000000).
fn known_system_class(class: &Value, value: i64) -> bool {
    matches!(
        (class["metadata"]["name"].as_str(), value),
        (Some("system-node-critical"), 2_000_001_000)
            | (Some("system-cluster-critical"), 2_000_000_000)
    )
}

pub(super) fn admit_priority_class(
    server: &ApiServer,
    class: &mut Value,
    updating: Option<&Value>,
) -> Result<(), ApiError> {
    set_default(class, "preemptionPolicy", json!("PreemptLowerPriority"));
    let mut causes = Causes::new();
    match class.get("value").and_then(Value::as_i64) {
        None => causes.push(("value".into(), "Required value".into())),
        // The two built-in system classes are the only ones above the user maximum
        // (kube-apiserver's `IsKnownSystemPriorityClass`).
        Some(v) if v > 1_000_000_000 && !known_system_class(class, v) => causes.push(("value".into(), format!("Invalid value: {v}: maximum allowed value of a user defined priority is 1000000000"))),
        Some(_) => {}
    }
    if let Some(old) = updating {
        if old.get("value") != class.get("value") {
            causes.push((
                "value".into(),
                "Forbidden: may not be changed in an update.".into(),
            ));
        }
    }
    if class.get("globalDefault").and_then(Value::as_bool) == Some(true) {
        let me = object_name(class).unwrap_or_default().to_string();
        let (classes, _) = server
            .registry
            .list(resources::PRIORITY_CLASSES.resource(), None);
        if let Some(other) = classes.iter().find(|c| {
            c.get("globalDefault").and_then(Value::as_bool) == Some(true)
                && object_name(c) != Some(me.as_str())
        }) {
            causes.push((
                "globalDefault".into(),
                format!("Invalid value: true: PriorityClass {} is already marked as default. Only one default can exist", object_name(other).unwrap_or_default()),
            ));
        }
    }
    invalid(&resources::PRIORITY_CLASSES, class, causes)
}
