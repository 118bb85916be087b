//! `clientToken` idempotency.
//!
//! Scope: one token namespace per operation (`CreateVirtualCluster`, `StartJobRun`, …).
//! A request is identified by a SHA-256 fingerprint of its canonical JSON (keys sorted,
//! `clientToken` removed) together with its URI labels. The same token with the same
//! fingerprint returns the stored original response and creates nothing; the same token
//! with a different fingerprint is a ValidationException (see [`mismatch`]). Tokens are
//! stored in the same transaction as the resource they created and are kept forever.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sparkyard_aws::AwsError;

use crate::time::Timestamp;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub operation: String,
    pub token: String,
    pub fingerprint: String,
    pub response: Value,
    pub created_at: Timestamp,
}

/// The store id of a token record.
pub fn key(operation: &str, token: &str) -> String {
    format!("{operation}/{token}")
}

pub fn fingerprint(labels: &[&str], body: &Value) -> String {
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("clientToken");
    }
    let mut canonical = String::new();
    for l in labels {
        canonical.push_str(l);
        canonical.push('\n');
    }
    write_canonical(&body, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The error for a token reused with a different request.
pub fn mismatch(operation: &str, token: &str) -> AwsError {
    AwsError::validation(format!(
        "The client token {token} was already used for a different {operation} request. \
         Retry with the original request, or use a new client token."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_key_order_and_token() {
        let a = fingerprint(
            &["vc"],
            &json!({"a": 1, "b": {"x": [1, 2], "y": "z"}, "clientToken": "t1"}),
        );
        let b = fingerprint(
            &["vc"],
            &json!({"b": {"y": "z", "x": [1, 2]}, "a": 1, "clientToken": "t2"}),
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint(&["other"], &json!({"a": 1, "b": {"x": [1, 2], "y": "z"}}))
        );
        assert_ne!(
            a,
            fingerprint(&["vc"], &json!({"a": 2, "b": {"x": [1, 2], "y": "z"}}))
        );
    }
}
