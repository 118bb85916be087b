//! Kubernetes `Status` errors, as the API server returns them.

use serde_json::{json, Value};

/// A failed API call, rendered as a `v1 Status` object with the matching HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub code: u16,
    /// Kubernetes `StatusReason`: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut details = json!({ "name": name, "kind": kind });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        self.details = Some(details);
        self
    }

    /// `pods "x" not found` — `resource` is the plural, optionally `plural.group`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    /// Optimistic-concurrency failure, in the apiserver's words.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    /// 422 Invalid with field causes: `(field, message)`, the message being what
    /// kube-apiserver's `field.Error` prints after the field (`Required value`, `Invalid
    /// value: 200: …`). Worded as `errors.NewInvalid`: `Kind.group "name" is invalid: …`,
    /// several causes in brackets.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[(String, String)]) -> Self {
        let mut summary: Vec<String> = Vec::new();
        for (f, m) in causes {
            let line = format!("{f}: {m}");
            if !summary.contains(&line) {
                summary.push(line);
            }
        }
        let summary = if summary.len() == 1 {
            summary.remove(0)
        } else {
            format!("[{}]", summary.join(", "))
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {summary}",
                qualified_kind(group, kind)
            ),
        )
        .with_details(group, kind, name);
        if let Some(details) = err.details.as_mut() {
            details["causes"] = causes
                .iter()
                .map(|(f, m)| json!({ "reason": cause_reason(m), "message": m, "field": f }))
                .collect();
        }
        err
    }

    /// An admission hook's denial, as kube-apiserver relays a validating webhook's:
    /// `admission webhook "<name>" denied the request: <message>`, 400 unless the hook
    /// gives a code (like a webhook's `status.code`; 422 makes it `Invalid`).
    pub fn webhook_denied(webhook: &str, message: &str, code: Option<u16>) -> Self {
        let code = code.filter(|c| *c >= 400).unwrap_or(400);
        let reason = match code {
            422 => "Invalid",
            403 => "Forbidden",
            // A webhook's Status usually has no reason; kube-apiserver passes it on empty.
            _ => "",
        };
        let message = if message.is_empty() {
            format!("admission webhook \"{webhook}\" denied the request without explanation")
        } else {
            format!("admission webhook \"{webhook}\" denied the request: {message}")
        };
        Self::new(code, reason, message)
    }

    /// 429 TooManyRequests with one cause (`errors.NewTooManyRequestsWithReason`).
    pub fn too_many_requests(message: &str, cause_reason: &str, cause_message: &str) -> Self {
        let mut err = Self::new(429, "TooManyRequests", message);
        err.details = Some(json!({
            "causes": [{ "reason": cause_reason, "message": cause_message }]
        }));
        err
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 413, as kube-apiserver answers a body over its limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 410 Gone for a watch resumed from a resourceVersion older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `v1 Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            status.as_object_mut().unwrap().remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `Kind.group` (`schema.GroupKind.String()`), `Kind` for the core group.
fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// The `StatusCause` reason of a field error, from how its message starts.
fn cause_reason(message: &str) -> &'static str {
    const REASONS: &[(&str, &str)] = &[
        ("Required value", "FieldValueRequired"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Not found", "FieldValueNotFound"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
    ];
    if message.starts_with("Invalid value") && message.contains(" in body must be of type ") {
        return "FieldValueTypeInvalid";
    }
    REASONS
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, reason)| reason)
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_is_worded_as_new_invalid() {
        let one = ApiError::invalid(
            "karpenter.sh",
            "NodePool",
            "emr",
            &[(
                "spec.weight".into(),
                "Invalid value: 200: spec.weight in body should be less than or equal to 100"
                    .into(),
            )],
        );
        assert_eq!(one.message, "NodePool.karpenter.sh \"emr\" is invalid: spec.weight: Invalid value: 200: spec.weight in body should be less than or equal to 100");
        let two = ApiError::invalid(
            "",
            "Pod",
            "p",
            &[
                ("spec.x".into(), "Required value".into()),
                (
                    "spec.y".into(),
                    "Unsupported value: \"Foo\": supported values: \"A\"".into(),
                ),
            ],
        );
        assert_eq!(
            two.message,
            "Pod \"p\" is invalid: [spec.x: Required value, spec.y: Unsupported value: \"Foo\": supported values: \"A\"]"
        );
        let causes = &two.details.unwrap()["causes"];
        assert_eq!(causes[0]["reason"], "FieldValueRequired");
        assert_eq!(causes[1]["reason"], "FieldValueNotSupported");
        assert_eq!(causes[1]["field"], "spec.y");
    }

    #[test]
    fn webhook_denials_and_too_many_requests() {
        let denied = ApiError::webhook_denied("validation.webhook.karpenter.sh", "bad", None);
        assert_eq!(denied.code, 400);
        assert_eq!(
            denied.message,
            "admission webhook \"validation.webhook.karpenter.sh\" denied the request: bad"
        );
        assert!(denied.status().get("reason").is_none());
        assert_eq!(
            ApiError::webhook_denied("w", "m", Some(422)).reason,
            "Invalid"
        );
        let busy = ApiError::too_many_requests("m", "DisruptionBudget", "c");
        assert_eq!(
            busy.status()["details"]["causes"][0]["reason"],
            "DisruptionBudget"
        );
    }
}
