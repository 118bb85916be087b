//! Small readers of the objects every controller looks at: conditions, times, and which
//! pool a NodeClaim or node belongs to.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The time in an RFC 3339 field.
pub fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// When the condition `kind` became True, if it is True.
pub fn condition_since(object: &Value, kind: &str) -> Option<DateTime<Utc>> {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .map(|c| time(&c["lastTransitionTime"]).unwrap_or_else(Utc::now))
}

pub fn condition_true(object: &Value, kind: &str) -> bool {
    condition_since(object, kind).is_some()
}

/// The pool named by `karpenter.sh/nodepool` or `karpenter.sh/provisioner-name` ("" if none).
pub fn pool_name(object: &Value) -> String {
    let labels = &object["metadata"]["labels"];
    labels[crate::LABEL_NODEPOOL]
        .as_str()
        .or(labels[crate::LABEL_PROVISIONER].as_str())
        .unwrap_or_default()
        .to_string()
}
