//! `additionalPrinterColumns`: the Table columns of a custom resource, with the cells
//! kube-apiserver's CRD table convertor fills from each column's `jsonPath` (the subset of
//! kubectl JSONPath CRDs use: fields, `\.` in keys, `[n]`, `[*]`, `[?(@.k=="v")]`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::tables::human_duration;

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The printer columns to show: the CRD's, or `Age` when it gives none (kube-apiserver's
/// default), always after `Name`.
fn effective(columns: &[Value]) -> Vec<Value> {
    if columns.is_empty() {
        vec![
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": AGE_DESCRIPTION}),
        ]
    } else {
        columns.to_vec()
    }
}

/// The Table's `columnDefinitions`.
pub fn definitions(columns: &[Value]) -> Vec<Value> {
    let mut out = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
    ];
    for column in effective(columns) {
        out.push(json!({
            "name": column.get("name").cloned().unwrap_or(json!("")),
            "type": column.get("type").cloned().unwrap_or(json!("string")),
            "format": column.get("format").cloned().unwrap_or(json!("")),
            "description": column.get("description").cloned().unwrap_or(json!("")),
            "priority": column.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    out
}

/// One row's cells.
pub fn cells(columns: &[Value], object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut out = vec![object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(json!(""))];
    for column in effective(columns) {
        let path = column
            .get("jsonPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let found = evaluate(path, object);
        let Some(first) = found.first() else {
            out.push(Value::Null);
            continue;
        };
        let cell = match column
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string")
        {
            "date" => match first
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            {
                Some(t) => json!(human_duration((now - t.with_timezone(&Utc)).num_seconds())),
                None => json!("<unknown>"),
            },
            "integer" | "number" | "boolean" if !first.is_string() => (*first).clone(),
            _ => json!(found
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")),
        };
        out.push(cell);
    }
    out
}

/// The path's steps: keys (with `\.` unescaped), indexes, `*`, and `?(@.k=="v")` filters.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    All,
    Filter(String, String),
}

fn parse(path: &str) -> Vec<Step> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    let flush = |key: &mut String, steps: &mut Vec<Step>| {
        if !key.is_empty() {
            steps.push(Step::Key(std::mem::take(key)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    key.push(next);
                }
            }
            '.' => flush(&mut key, &mut steps),
            '[' => {
                flush(&mut key, &mut steps);
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Ok(i) = inner.parse() {
                    steps.push(Step::Index(i));
                } else if let Some(filter) =
                    inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
                {
                    if let Some((k, v)) = filter.split_once("==") {
                        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
                        steps.push(Step::Filter(k.trim().to_string(), v.to_string()));
                    }
                } else {
                    let quoted = inner.trim_matches(|c| c == '"' || c == '\'');
                    steps.push(Step::Key(quoted.to_string()));
                }
            }
            c => key.push(c),
        }
    }
    flush(&mut key, &mut steps);
    steps
}

/// Every value `path` selects in `object`.
pub fn evaluate<'a>(path: &str, object: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![object];
    for step in parse(path) {
        let mut next = Vec::new();
        for value in current {
            match (&step, value) {
                (Step::Key(k), Value::Object(map)) => next.extend(map.get(k)),
                (Step::Index(i), Value::Array(items)) => next.extend(items.get(*i)),
                (Step::All, Value::Array(items)) => next.extend(items.iter()),
                (Step::All, Value::Object(map)) => next.extend(map.values()),
                (Step::Filter(k, v), Value::Array(items)) => {
                    next.extend(items.iter().filter(|item| match item.get(k) {
                        Some(Value::String(s)) => s == v,
                        // `@.ready==true`: a non-string compares by its JSON text.
                        Some(other) => serde_json::to_string(other).is_ok_and(|t| t == *v),
                        None => false,
                    }))
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let object = json!({
            "metadata": {"name": "n", "labels": {"karpenter.sh/nodepool": "default"}},
            "status": {"conditions": [{"type": "Launched", "status": "True"}, {"type": "Ready", "status": "False"}],
                       "resources": {"cpu": "4"}},
            "spec": {"weight": 10, "requirements": [{"key": "a"}, {"key": "b"}]}
        });
        let one = |p: &str| evaluate(p, &object).first().map(|v| (*v).clone());
        assert_eq!(
            one(".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("False"))
        );
        assert_eq!(
            one(".metadata.labels.karpenter\\.sh/nodepool"),
            Some(json!("default"))
        );
        assert_eq!(one(".spec.weight"), Some(json!(10)));
        assert_eq!(one(".spec.requirements[1].key"), Some(json!("b")));
        assert_eq!(evaluate(".spec.requirements[*].key", &object).len(), 2);
        assert_eq!(one(".status.missing"), None);
    }

    #[test]
    fn rows_have_name_then_the_columns() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let object = json!({"metadata": {"name": "n", "creationTimestamp": "2025-01-01T00:00:00Z"}, "spec": {"weight": 10}});
        assert_eq!(cells(&[], &object, now), vec![json!("n"), json!("60m")]);
        let columns = vec![
            json!({"name": "Weight", "type": "integer", "jsonPath": ".spec.weight", "priority": 1}),
            json!({"name": "Template", "type": "string", "jsonPath": ".spec.providerRef.name"}),
        ];
        assert_eq!(
            cells(&columns, &object, now),
            vec![json!("n"), json!(10), Value::Null]
        );
        let defs = definitions(&columns);
        assert_eq!(defs[1]["name"], "Weight");
        assert_eq!(defs[1]["priority"], 1);
    }
}
