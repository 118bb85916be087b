//! Label and field selectors, parsed and matched as the apiserver does.

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// Splits on commas that are not inside parentheses (`a in (x,y),b=c`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_error(term: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: found '{term}', {why}"
    ))
}

fn parse_set(term: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| parse_error(term, "expected a parenthesised set of values"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(|v| !valid_label_value(v)) {
        return Err(parse_error(term, "invalid label value"));
    }
    Ok(values)
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(requirements));
        }
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                return Err(parse_error(term, "expected a requirement"));
            }
            if let Some(key) = term.strip_prefix('!') {
                let key = key.trim();
                if !valid_label_key(key) {
                    return Err(parse_error(term, "invalid label key"));
                }
                requirements.push(Requirement::NotExists(key.to_string()));
                continue;
            }
            let end = term
                .find(|c: char| c.is_whitespace() || matches!(c, '=' | '!' | '('))
                .unwrap_or(term.len());
            let key = &term[..end];
            if !valid_label_key(key) {
                return Err(parse_error(term, "invalid label key"));
            }
            let rest = term[end..].trim_start();
            let requirement = if rest.is_empty() {
                Requirement::Exists(key.into())
            } else if let Some(v) = rest.strip_prefix("!=") {
                Requirement::NotEquals(key.into(), value(term, v)?)
            } else if let Some(v) = rest.strip_prefix("==") {
                Requirement::Equals(key.into(), value(term, v)?)
            } else if let Some(v) = rest.strip_prefix('=') {
                Requirement::Equals(key.into(), value(term, v)?)
            } else if let Some(v) = rest.strip_prefix("notin") {
                Requirement::NotIn(key.into(), parse_set(term, v)?)
            } else if let Some(v) = rest.strip_prefix("in") {
                Requirement::In(key.into(), parse_set(term, v)?)
            } else {
                return Err(parse_error(
                    term,
                    "expected one of ['=', '==', '!=', 'in', 'notin']",
                ));
            };
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A `matchLabels`/`matchExpressions` selector object (Job, Service spec.selector map).
    pub fn from_label_selector_object(selector: &Value) -> Self {
        let mut requirements = Vec::new();
        if let Some(map) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in map {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().into(),
                ));
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str) {
                    Some("In") => requirements.push(Requirement::In(key, values)),
                    Some("NotIn") => requirements.push(Requirement::NotIn(key, values)),
                    Some("Exists") => requirements.push(Requirement::Exists(key)),
                    Some("DoesNotExist") => requirements.push(Requirement::NotExists(key)),
                    _ => {}
                }
            }
        }
        Self(requirements)
    }
}

fn value(term: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if !valid_label_value(v) {
        return Err(parse_error(term, "invalid label value"));
    }
    Ok(v.to_string())
}

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldRequirement>);

/// Splits on unescaped commas, unescaping `\,`, `\=` and `\\` (fields.EscapeValue).
fn split_escaped(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if matches!(next, ',' | '=' | '\\' | '!') {
                        parts.last_mut().unwrap().push('\\');
                    }
                    parts.last_mut().unwrap().push(next);
                }
            }
            ',' => parts.push(String::new()),
            _ => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds the first unescaped occurrence of an operator.
fn split_operator(term: &str) -> Option<(String, &'static str, String)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((term[..i].to_string(), "!=", term[i + 2..].to_string()));
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((term[..i].to_string(), "==", term[i + 2..].to_string()));
            }
            b'=' => return Some((term[..i].to_string(), "=", term[i + 1..].to_string())),
            _ => i += 1,
        }
    }
    None
}

/// The fields a resource can be selected by, as the real apiserver registers them.
pub fn supported_fields(info: &ResourceInfo) -> &'static [&'static str] {
    match (info.group, info.plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

/// The value of a selectable field of an object, rendered as the apiserver does.
pub fn field_value(info: &ResourceInfo, object: &Value, field: &str) -> String {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match field {
        "metadata.name" => text("/metadata/name"),
        "metadata.namespace" => text("/metadata/namespace"),
        "spec.hostNetwork" => object
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "spec.unschedulable" => object
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "status.successful" => object
            .pointer("/status/succeeded")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        "status.podIPs" => text("/status/podIP"),
        "source" => text("/source/component"),
        "type" if info.plural == "secrets" => text("/type"),
        other => text(&format!("/{}", other.replace('.', "/"))),
    }
}

impl FieldSelector {
    /// Parses and checks the fields against those `info` supports (400 otherwise).
    pub fn parse(text: &str, info: &ResourceInfo) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(requirements));
        }
        for term in split_escaped(text) {
            let (field, op, value) = split_operator(&term).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ))
            })?;
            let field = field.trim().to_string();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !supported_fields(info).contains(&field.as_str())
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push(FieldRequirement {
                field,
                value: unescape(&value),
                negate: op == "!=",
            });
        }
        Ok(Self(requirements))
    }

    pub fn matches(&self, info: &ResourceInfo, object: &Value) -> bool {
        self.0
            .iter()
            .all(|req| (field_value(info, object, &req.field) == req.value) != req.negate)
    }

    /// The name asked for with `metadata.name=x`, if any (lets lists skip a scan).
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negate)
            .map(|r| r.value.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Label plus field selector, as lists, watches and deletecollection take them.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, info: &ResourceInfo, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(info, object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CONFIGMAPS, EVENTS, PODS};
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_operators() {
        let p = pod(json!({"spark-role": "executor", "spark-exec-id": "2", "app": "x"}));
        let yes = [
            "spark-role=executor",
            "spark-role==executor",
            "spark-role!=driver",
            "spark-exec-id in (1,2)",
            "spark-exec-id in(1, 2)",
            "spark-exec-id notin (3)",
            "app",
            "!missing",
            "spark-exec-inactive!=true",
            "spark-role=executor,spark-exec-id in (1,2),app",
            "",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&p), "{s}");
        }
        let no = [
            "spark-role=driver",
            "spark-exec-id in (3)",
            "spark-exec-id notin (2,3)",
            "!app",
            "missing",
            "app,missing",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&p), "{s}");
        }
    }

    #[test]
    fn bad_label_selectors_are_400() {
        for s in ["a in 1", "a=b=c", "a b", "=x", "a,", "a in (x"] {
            let err = LabelSelector::parse(s).unwrap_err();
            assert_eq!(err.code, 400, "{s}");
        }
    }

    #[test]
    fn field_selectors() {
        let p = pod(json!({}));
        let sel = FieldSelector::parse(
            "metadata.name=p,status.phase=Running,spec.nodeName!=n2",
            &PODS,
        )
        .unwrap();
        assert!(sel.matches(&PODS, &p));
        assert_eq!(sel.exact_name(), Some("p"));
        assert!(!FieldSelector::parse("status.phase=Pending", &PODS)
            .unwrap()
            .matches(&PODS, &p));
        assert!(FieldSelector::parse("metadata.namespace==ns", &CONFIGMAPS)
            .unwrap()
            .matches(&CONFIGMAPS, &p));
        let err = FieldSelector::parse("status.phase=Running", &CONFIGMAPS).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "field label not supported: status.phase")
        );
    }

    #[test]
    fn event_field_selectors_as_describe_sends_them() {
        let event = json!({"metadata": {"name": "e", "namespace": "t"}, "involvedObject": {"name": "x", "namespace": "t", "uid": "u1", "kind": "Pod"}, "source": {"component": "kubelet"}, "type": "Normal"});
        let sel = FieldSelector::parse(
            "involvedObject.namespace=t,involvedObject.uid=u1,involvedObject.name=x,source=kubelet,type=Normal",
            &EVENTS,
        )
        .unwrap();
        assert!(sel.matches(&EVENTS, &event));
    }

    #[test]
    fn escaped_values() {
        let sel = FieldSelector::parse(r"metadata.name=a\,b", &PODS).unwrap();
        assert_eq!(sel.0[0].value, "a,b");
    }
}
