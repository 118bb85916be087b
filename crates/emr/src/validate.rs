//! A small, model-driven validator: request JSON is checked against [`Shape`]s transcribed
//! from the botocore model (see `shapes.rs`), producing Coral-style messages.
//!
//! botocore validates only `required` and `min`, so the server must enforce everything
//! else (reference §3.4). Two classes of failure exist, as on AWS:
//! - a value of the wrong JSON type (or malformed JSON) is a `SerializationException`;
//! - a well-typed value that breaks a constraint is a `ValidationException`, and all such
//!   problems are reported together: `N validation errors detected: …; …`.
//!
//! Patterns use Java `matches()` semantics (the whole value must match), which is how the
//! model's patterns behave on AWS (`[0-9a-z]+` rejects `ABC_DEF`).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sparkyard_aws::AwsError;

/// A model pattern: `source` is the model's text (shown in messages), `re` a Rust
/// translation anchored at both ends.
pub struct Pattern {
    pub source: &'static str,
    pub re: LazyLock<Regex>,
}

impl Pattern {
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

/// Declares a [`Pattern`]; the optional second string is a Rust translation when the
/// model's Java regex cannot be compiled as is.
#[macro_export]
macro_rules! pattern {
    ($name:ident, $src:expr) => {
        $crate::pattern!($name, $src, $src);
    };
    ($name:ident, $src:expr, $rust:expr) => {
        pub static $name: $crate::validate::Pattern = $crate::validate::Pattern {
            source: $src,
            re: std::sync::LazyLock::new(|| {
                regex::Regex::new(concat!("^(?s:", $rust, ")$")).expect("valid model pattern")
            }),
        };
    };
}

pub struct Str {
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub pattern: Option<&'static Pattern>,
    pub values: Option<&'static [&'static str]>,
    /// Sensitive values are never echoed in messages (the model's `sensitive` trait).
    pub sensitive: bool,
    /// An extra check for patterns Rust's regex cannot express (look-ahead).
    pub extra: Option<fn(&str) -> bool>,
}

impl Str {
    pub const fn new(min: usize, max: usize, pattern: Option<&'static Pattern>) -> Str {
        Str {
            min: Some(min),
            max: Some(max),
            pattern,
            values: None,
            sensitive: false,
            extra: None,
        }
    }
    pub const fn sensitive(mut self) -> Str {
        self.sensitive = true;
        self
    }
    pub const fn one_of(values: &'static [&'static str]) -> Str {
        Str {
            min: None,
            max: None,
            pattern: None,
            values: Some(values),
            sensitive: false,
            extra: None,
        }
    }
}

pub struct Member {
    pub name: &'static str,
    pub shape: &'static Shape,
    pub required: bool,
}

pub const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        shape,
        required: true,
    }
}
pub const fn opt(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        shape,
        required: false,
    }
}

pub enum Shape {
    String(Str),
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    /// ISO 8601 string or epoch seconds.
    Timestamp,
    Structure(&'static [Member]),
    List {
        member: &'static Shape,
        min: Option<usize>,
        max: Option<usize>,
    },
    Map {
        key: &'static Shape,
        value: &'static Shape,
        max: Option<usize>,
    },
}

/// Everything wrong with one request.
#[derive(Debug, Default)]
pub struct Problems {
    /// The first type error, if any (reported alone, as a SerializationException).
    pub serialization: Option<String>,
    pub errors: Vec<String>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, message: String) {
        self.errors.push(message);
    }

    fn type_error(&mut self, path: &str, expected: &str, found: &Value) {
        if self.serialization.is_none() {
            let found = match found {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            };
            self.serialization = Some(format!(
                "Expected {expected} at '{path}' but found {found}."
            ));
        }
    }

    /// Checks `value` (the member at `path`) against `shape`.
    pub fn check(&mut self, value: &Value, shape: &Shape, path: &str) {
        check_value(self, value, shape, path);
    }

    /// Checks a required member: absent or `null` gives "Member must not be null".
    pub fn check_required(&mut self, value: Option<&Value>, shape: &Shape, path: &str) {
        match value {
            None | Some(Value::Null) => self.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            )),
            Some(v) => self.check(v, shape, path),
        }
    }

    /// `Err` with the AWS error for these problems, or `Ok` when there are none.
    pub fn into_result(self) -> Result<(), AwsError> {
        if let Some(msg) = self.serialization {
            return Err(serialization(msg));
        }
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(AwsError::validation(format!(
                "1 validation error detected: {}",
                self.errors[0]
            ))),
            n => Err(AwsError::validation(format!(
                "{n} validation errors detected: {}",
                self.errors.join("; ")
            ))),
        }
    }
}

/// 400 SerializationException: malformed JSON or a value of the wrong type.
pub fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new(
        http::StatusCode::BAD_REQUEST,
        "SerializationException",
        message,
    )
}

/// Validates a whole request body (or query/label document) against a structure shape.
pub fn validate(value: &Value, shape: &Shape) -> Result<(), AwsError> {
    let mut p = Problems::new();
    check_value(&mut p, value, shape, "");
    p.into_result()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Java-`toString`-like rendering used inside messages.
pub fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Constraint failures of one string, without the "Value … at …" prefix.
pub fn string_failures(s: &str, rule: &Str) -> Vec<String> {
    let mut out = Vec::new();
    // Java counts UTF-16 code units; chars are close enough for the ASCII this API uses.
    let len = s.chars().count();
    if let Some(max) = rule.max {
        if len > max {
            out.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
    }
    if let Some(min) = rule.min {
        if len < min {
            out.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
    }
    // An empty value is judged by `min` alone (tag values may be empty although their
    // pattern `.*\S.*` would not match "").
    if !s.is_empty() {
        if let Some(p) = rule.pattern {
            let extra_ok = rule.extra.is_none_or(|f| f(s));
            if !p.is_match(s) || !extra_ok {
                out.push(format!(
                    "Member must satisfy regular expression pattern: {}",
                    p.source
                ));
            }
        }
    }
    if let Some(values) = rule.values {
        if !values.contains(&s) {
            out.push(format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ));
        }
    }
    out
}

fn value_prefix(value: &Value, sensitive: bool, path: &str) -> String {
    if sensitive {
        format!("Value at '{path}'")
    } else {
        format!("Value '{}' at '{path}'", render(value))
    }
}

fn check_value(p: &mut Problems, value: &Value, shape: &Shape, path: &str) {
    if value.is_null() {
        // AWS treats an explicit null like an absent member.
        return;
    }
    match shape {
        Shape::String(rule) => {
            let Some(s) = value.as_str() else {
                return p.type_error(path, "a string", value);
            };
            for f in string_failures(s, rule) {
                p.push(format!(
                    "{} failed to satisfy constraint: {f}",
                    value_prefix(value, rule.sensitive, path)
                ));
            }
        }
        Shape::Integer { min, max } => {
            let Some(n) = value.as_i64().filter(|n| i32::try_from(*n).is_ok()) else {
                return p.type_error(path, "an integer", value);
            };
            if let Some(max) = max {
                if n > *max {
                    p.push(format!(
                        "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
                    ));
                }
            }
            if let Some(min) = min {
                if n < *min {
                    p.push(format!(
                        "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                    ));
                }
            }
        }
        Shape::Boolean => {
            if !value.is_boolean() {
                p.type_error(path, "a boolean", value);
            }
        }
        Shape::Timestamp => {
            if crate::time::parse_timestamp(value).is_none() {
                p.type_error(path, "an ISO 8601 timestamp or epoch seconds", value);
            }
        }
        Shape::Structure(members) => {
            let Some(obj) = value.as_object() else {
                return p.type_error(path, "an object", value);
            };
            for m in members.iter() {
                let child = join(path, m.name);
                match obj.get(m.name) {
                    None | Some(Value::Null) if m.required => p.push(format!(
                        "Value null at '{child}' failed to satisfy constraint: Member must not be null"
                    )),
                    None => {}
                    Some(v) => check_value(p, v, m.shape, &child),
                }
            }
        }
        Shape::List { member, min, max } => {
            let Some(items) = value.as_array() else {
                return p.type_error(path, "a list", value);
            };
            if let Some(max) = max {
                if items.len() > *max {
                    p.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                        render(value)
                    ));
                }
            }
            if let Some(min) = min {
                if items.len() < *min {
                    p.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                        render(value)
                    ));
                }
            }
            for (i, item) in items.iter().enumerate() {
                check_value(p, item, member, &format!("{}.{}.member", path, i + 1));
            }
        }
        Shape::Map {
            key,
            value: vshape,
            max,
        } => {
            let Some(map) = value.as_object() else {
                return p.type_error(path, "an object", value);
            };
            let sensitive = matches!(vshape, Shape::String(r) if r.sensitive);
            let shown = if sensitive {
                format!("Value at '{path}'")
            } else {
                format!("Value '{}' at '{path}'", render(value))
            };
            if let Some(max) = max {
                if map.len() > *max {
                    p.push(format!(
                        "{shown} failed to satisfy constraint: Member must have length less than or equal to {max}"
                    ));
                }
            }
            // String keys/values are summarised the Coral way, once per map:
            // "Map keys must satisfy constraint: [...]".
            let mut key_fails: Vec<String> = Vec::new();
            let mut value_fails: Vec<String> = Vec::new();
            for (k, v) in map {
                if let Shape::String(rule) = key {
                    for f in string_failures(k, rule) {
                        if !key_fails.contains(&f) {
                            key_fails.push(f);
                        }
                    }
                }
                match (vshape, v) {
                    (_, Value::Null) => {}
                    (Shape::String(rule), Value::String(s)) => {
                        for f in string_failures(s, rule) {
                            if !value_fails.contains(&f) {
                                value_fails.push(f);
                            }
                        }
                    }
                    _ => check_value(p, v, vshape, &join(path, k)),
                }
            }
            if !key_fails.is_empty() {
                p.push(format!(
                    "{shown} failed to satisfy constraint: Map keys must satisfy constraint: [{}]",
                    key_fails.join(", ")
                ));
            }
            if !value_fails.is_empty() {
                p.push(format!(
                    "{shown} failed to satisfy constraint: Map value must satisfy constraint: [{}]",
                    value_fails.join(", ")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::*;
    use serde_json::json;

    fn msg(v: Value, shape: &Shape) -> String {
        let e = validate(&v, shape).unwrap_err();
        format!("{}: {}", e.code, e.message)
    }

    #[test]
    fn pattern_message_is_coral_style() {
        let m = msg(
            json!({"name": "my-vc", "clientToken": "t", "containerProvider": {"id": "c", "type": "EKS", "info": {"eksInfo": {"namespace": "Bad_NS"}}}}),
            &CREATE_VIRTUAL_CLUSTER,
        );
        assert_eq!(
            m,
            "ValidationException: 1 validation error detected: Value 'Bad_NS' at 'containerProvider.info.eksInfo.namespace' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9]([-a-z0-9]*[a-z0-9])?"
        );
    }

    #[test]
    fn several_errors_are_counted_and_joined() {
        let long = "a".repeat(65);
        let m = msg(
            json!({"name": long, "clientToken": "t"}),
            &CREATE_VIRTUAL_CLUSTER,
        );
        assert!(
            m.starts_with("ValidationException: 2 validation errors detected: "),
            "{m}"
        );
        assert!(m.contains("Member must have length less than or equal to 64; Value null at 'containerProvider' failed to satisfy constraint: Member must not be null"), "{m}");
    }

    #[test]
    fn enums_and_integers() {
        let m = msg(
            json!({"clientToken": "t", "configurationOverrides": {"monitoringConfiguration": {"persistentAppUI": "MAYBE"}}, "retryPolicyConfiguration": {"maxAttempts": 0}}),
            &START_JOB_RUN,
        );
        assert!(m.contains("Value 'MAYBE' at 'configurationOverrides.monitoringConfiguration.persistentAppUI' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"), "{m}");
    }

    #[test]
    fn wrong_type_is_serialization() {
        let m = msg(
            json!({"clientToken": "t", "retryPolicyConfiguration": {"maxAttempts": "3"}}),
            &START_JOB_RUN,
        );
        assert!(m.starts_with("SerializationException: "), "{m}");
    }

    #[test]
    fn sensitive_values_are_not_echoed() {
        let m = msg(
            json!({"clientToken": "t", "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": " "}}}),
            &START_JOB_RUN,
        );
        assert!(
            m.contains("Value at 'jobDriver.sparkSubmitJobDriver.entryPoint' failed"),
            "{m}"
        );
    }

    #[test]
    fn list_members_and_maps() {
        let mut tags = serde_json::Map::new();
        for i in 0..51 {
            tags.insert(format!("k{i}"), json!("v"));
        }
        let m = msg(json!({"tags": tags}), &TAG_RESOURCE);
        assert!(m.contains("at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"), "{m}");
        let m = msg(json!({"tags": {"": "v"}}), &TAG_RESOURCE);
        assert!(m.contains("Map keys must satisfy constraint: [Member must have length greater than or equal to 1]"), "{m}");
        // Empty tag values are allowed.
        validate(&json!({"tags": {"k": ""}}), &TAG_RESOURCE).unwrap();
        let m = msg(
            json!({"clientToken": "t", "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x", "entryPointArguments": ["a", ""]}}}),
            &START_JOB_RUN,
        );
        assert!(
            m.contains("'jobDriver.sparkSubmitJobDriver.entryPointArguments.2.member'"),
            "{m}"
        );
    }

    #[test]
    fn role_arn_pattern() {
        validate(&json!({"clientToken": "t", "executionRoleArn": "arn:aws:iam::123456789012:role/emr-job"}), &START_JOB_RUN).unwrap();
        validate(&json!({"clientToken": "t", "executionRoleArn": "arn:aws:iam::123456789012:role/path/x/emr-job"}), &START_JOB_RUN).unwrap();
        assert!(validate(
            &json!({"clientToken": "t", "executionRoleArn": "arn:aws:iam::123456789012:user/bob"}),
            &START_JOB_RUN
        )
        .is_err());
    }

    #[test]
    fn ids_must_fully_match() {
        let mut p = Problems::new();
        p.check(&json!("ABC_DEF"), &RESOURCE_ID, "virtualClusterId");
        assert_eq!(p.errors.len(), 1);
        let mut p = Problems::new();
        p.check(&json!("abc123"), &RESOURCE_ID, "virtualClusterId");
        assert!(p.errors.is_empty());
    }

    #[test]
    fn log_context_lookahead() {
        let mut p = Problems::new();
        p.check(&json!("my-bucket"), &LOG_CONTEXT, "logContext");
        p.check(&json!("xn--bucket"), &LOG_CONTEXT, "logContext");
        p.check(&json!("a-s3alias"), &LOG_CONTEXT, "logContext");
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
    }
}
