//! A CRD's structural `openAPIV3Schema` applied to an object, as kube-apiserver's
//! apiextensions server does on create and update: unknown fields pruned, `default`s
//! filled in, then validation — with kube-openapi's messages as kube-apiserver converts
//! them to field errors (`spec.weight: Invalid value: 200: spec.weight in body should be
//! less than or equal to 100`). Pure functions.
//!
//! Not supported: `x-kubernetes-validations` (CEL), `allOf`/`anyOf`/`oneOf`/`not`,
//! `multipleOf`, `uniqueItems`, list/map types.

use serde_json::{Map, Value};

/// A field error: the field path and what kube-apiserver prints after it.
pub type FieldError = (String, String);

/// Root fields every object keeps whatever its schema says.
const ROOT_META: &[&str] = &["apiVersion", "kind", "metadata"];

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Drops the fields the schema does not specify (kube-apiserver's pruning), except under
/// `x-kubernetes-preserve-unknown-fields`, and nulls a non-nullable field has no use for.
pub fn prune(schema: &Value, object: &mut Value) {
    prune_at(schema, object, true);
}

fn prune_at(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keep_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if (root || embedded) && ROOT_META.contains(&key.as_str()) {
                    continue;
                }
                let sub = properties.and_then(|p| p.get(&key)).or(additional);
                match sub {
                    Some(sub) => {
                        let item = map.get_mut(&key).unwrap();
                        if item.is_null() && !flag(sub, "nullable") && sub.get("default").is_some()
                        {
                            // Defaulting replaces it (kube-apiserver prunes such nulls).
                            map.remove(&key);
                        } else {
                            prune_at(sub, item, false);
                        }
                    }
                    None if keep_unknown => {}
                    None => {
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune_at(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

/// The fields [`prune`] would drop, as paths (`spec.shape`): what `fieldValidation=Strict`
/// refuses.
pub fn unknown_fields(schema: &Value, object: &Value) -> Vec<String> {
    let mut pruned = object.clone();
    prune(schema, &mut pruned);
    let mut found = Vec::new();
    differences(object, &pruned, "", &mut found);
    found
}

fn differences(before: &Value, after: &Value, path: &str, found: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                match a.get(key) {
                    Some(kept) => differences(value, kept, &child(path, key), found),
                    // A null pruned for its default is not an unknown field.
                    None if value.is_null() => {}
                    None => found.push(child(path, key)),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (value, kept)) in b.iter().zip(a).enumerate() {
                differences(value, kept, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Fills in the `default` of every absent property that has one, depth first, as
/// kube-apiserver does on create, update and read.
pub fn default(schema: &Value, object: &mut Value) {
    match object {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in properties {
                    if let Some(default) = sub.get("default") {
                        if !map.contains_key(key) {
                            map.insert(key.clone(), default.clone());
                        }
                    }
                    if let Some(item) = map.get_mut(key) {
                        self::default(sub, item);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let known = schema.get("properties").and_then(Value::as_object);
                for (key, item) in map.iter_mut() {
                    if known.is_none_or(|k| !k.contains_key(key)) {
                        self::default(additional, item);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    self::default(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Validates `object` against the schema: every violation, in document order.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_at(schema, object, "", true, &mut errors);
    errors
}

/// kube-openapi's name of a JSON value's type (integers as `integer`).
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A bad value as `field.Error` prints it: strings quoted, numbers and booleans plain.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(_) => number(value.as_f64().unwrap_or_default()),
        Value::Null => "\"null\"".into(),
        other => other.to_string(),
    }
}

/// A number as Go's `%v` prints a float64 bound: `100`, `1.5`.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> FieldError {
    (
        path.into(),
        format!("Invalid value: {}: {detail}", show(value)),
    )
}

fn type_error(path: &str, expected: &str, value: &Value) -> FieldError {
    let actual = type_name(value);
    (
        path.into(),
        format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
    )
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

fn validate_at(
    schema: &Value,
    value: &Value,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    if value.is_null() {
        let typed = schema.get("type").and_then(Value::as_str);
        if !flag(schema, "nullable") && !flag(schema, "x-kubernetes-preserve-unknown-fields") {
            if let Some(expected) = typed {
                errors.push(type_error(path, expected, value));
            }
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !value.is_string() && type_name(value) != "integer" {
            errors.push(type_error(path, "integer,string", value));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(expected, value) {
            errors.push(type_error(path, expected, value));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let listed: Vec<String> = allowed
                .iter()
                .map(|v| match v {
                    Value::String(s) => format!("{s:?}"),
                    other => other.to_string(),
                })
                .collect();
            errors.push((
                path.into(),
                format!(
                    "Unsupported value: {}: supported values: {}",
                    show(value),
                    listed.join(", ")
                ),
            ));
        }
    }
    match value {
        Value::String(s) => validate_string(schema, s, value, path, errors),
        Value::Number(n) => {
            validate_number(schema, n.as_f64().unwrap_or_default(), value, path, errors)
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if count < min {
                    errors.push(invalid(
                        path,
                        &Value::from(count),
                        format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if count > max {
                    errors.push(too_many(path, count, max));
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_at(item_schema, item, &format!("{path}[{i}]"), false, errors);
                }
            }
        }
        Value::Object(map) => validate_object(schema, map, path, root, errors),
        _ => {}
    }
}

fn too_many(path: &str, count: u64, max: u64) -> FieldError {
    let noun = if max == 1 { "item" } else { "items" };
    (
        path.into(),
        format!("Too many: {count}: must have at most {max} {noun}"),
    )
}

fn validate_string(
    schema: &Value,
    s: &str,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let chars = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if chars < min {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if chars > max {
            let noun = if max == 1 { "byte" } else { "bytes" };
            errors.push((
                path.into(),
                format!("Too long: may not be more than {max} {noun}"),
            ));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        // A pattern that does not compile was refused with its CRD; skip rather than fail.
        if regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should match '{pattern}'"),
            ));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && chrono::DateTime::parse_from_rfc3339(s).is_err()
    {
        errors.push(invalid(
            path,
            value,
            format!("{path} in body must be of type date-time: {s:?}"),
        ));
    }
}

fn validate_number(
    schema: &Value,
    n: f64,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMaximum") && n >= max {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be less than {}", number(max)),
            ));
        } else if n > max {
            errors.push(invalid(
                path,
                value,
                format!(
                    "{path} in body should be less than or equal to {}",
                    number(max)
                ),
            ));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMinimum") && n <= min {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be greater than {}", number(min)),
            ));
        } else if n < min {
            errors.push(invalid(
                path,
                value,
                format!(
                    "{path} in body should be greater than or equal to {}",
                    number(min)
                ),
            ));
        }
    }
    let out_of = |lo: f64, hi: f64| n < lo || n > hi;
    match schema.get("format").and_then(Value::as_str) {
        Some("int32") if out_of(i32::MIN as f64, i32::MAX as f64) => errors.push(invalid(
            path,
            value,
            format!("{path} in body must be of type int32: \"{}\"", number(n)),
        )),
        Some("int64") if out_of(i64::MIN as f64, i64::MAX as f64) => errors.push(invalid(
            path,
            value,
            format!("{path} in body must be of type int64: \"{}\"", number(n)),
        )),
        _ => {}
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    if embedded {
        for key in ["apiVersion", "kind"] {
            if map
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push((child(path, key), "Required value: must not be empty".into()));
            }
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if map.get(key).is_none_or(Value::is_null) {
                errors.push((child(path, key), "Required value".into()));
            }
        }
    }
    let count = map.len() as u64;
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
        if count < min {
            errors.push(invalid(
                path,
                &Value::from(count),
                format!("{path} in body should have at least {min} properties"),
            ));
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
        if count > max {
            errors.push(too_many(path, count, max));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, item) in map {
        if (root || embedded) && ROOT_META.contains(&key.as_str()) {
            continue;
        }
        if let Some(sub) = properties.and_then(|p| p.get(key)).or(additional) {
            validate_at(sub, item, &child(path, key), false, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["x"],
                    "properties": {
                        "x": {"type": "string"},
                        "y": {"type": "string", "enum": ["A", "B"]},
                        "weight": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100},
                        "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1},
                        "name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "items": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}},
                        "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
                        "size": {"x-kubernetes-int-or-string": true},
                        "when": {"type": "string", "format": "date-time"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "maybe": {"type": "string", "nullable": true},
                        "policy": {"type": "string", "default": "WhenEmpty"},
                        "budgets": {"type": "array", "default": [{"nodes": "10%"}],
                                    "items": {"type": "object", "properties": {"nodes": {"type": "string", "default": "10%"}, "reasons": {"type": "array", "items": {"type": "string"}}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object"}}}
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
            }
        })
    }

    fn messages(object: Value) -> Vec<String> {
        validate(&schema(), &object)
            .into_iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect()
    }

    #[test]
    fn bounds_enums_and_types_are_worded_as_kube_apiserver() {
        let errors = messages(json!({"spec": {"x": "ok", "weight": 200, "y": "Foo"}}));
        assert_eq!(
            errors,
            vec![
                "spec.weight: Invalid value: 200: spec.weight in body should be less than or equal to 100",
                "spec.y: Unsupported value: \"Foo\": supported values: \"A\", \"B\"",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {}})),
            vec!["spec.x: Required value"]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "weight": "heavy"}})),
            vec!["spec.weight: Invalid value: \"string\": spec.weight in body must be of type integer: \"string\""]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "weight": 0, "ratio": 1}})),
            vec![
                "spec.weight: Invalid value: 0: spec.weight in body should be greater than or equal to 1",
                "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "weight": 5000000000u64}})),
            vec![
                "spec.weight: Invalid value: 5000000000: spec.weight in body should be less than or equal to 100",
                "spec.weight: Invalid value: 5000000000: spec.weight in body must be of type int32: \"5000000000\"",
            ]
        );
    }

    #[test]
    fn strings_arrays_and_maps() {
        assert_eq!(
            messages(json!({"spec": {"x": "a", "name": "AB"}})),
            vec![
                "spec.name: Invalid value: \"AB\": spec.name in body should be at least 3 chars long",
                "spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "name": "abcdef"}})),
            vec!["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "items": [1, 2, "3"]}})),
            vec![
                "spec.items: Too many: 3: must have at most 2 items",
                "spec.items[2]: Invalid value: \"string\": spec.items[2] in body must be of type integer: \"string\"",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "items": []}})),
            vec!["spec.items: Invalid value: 0: spec.items in body should have at least 1 items"]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "labels": {"a": "1", "b": 2}}})),
            vec![
                "spec.labels: Too many: 2: must have at most 1 item",
                "spec.labels.b: Invalid value: \"integer\": spec.labels.b in body must be of type string: \"integer\"",
            ]
        );
        assert!(messages(json!({"spec": {"x": "a", "size": "10%", "maybe": null, "when": "2024-01-01T00:00:00Z"}})).is_empty());
        assert!(messages(json!({"spec": {"x": "a", "size": 3}})).is_empty());
        assert_eq!(
            messages(json!({"spec": {"x": "a", "size": true, "when": "yesterday"}})),
            vec![
                "spec.size: Invalid value: \"boolean\": spec.size in body must be of type integer,string: \"boolean\"",
                "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"x": "a", "template": {"spec": {}}}})),
            vec![
                "spec.template.apiVersion: Required value: must not be empty",
                "spec.template.kind: Required value: must not be empty",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_unless_preserved() {
        let mut object = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"x": "a", "bogus": 1, "free": {"anything": {"goes": true}},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "extra": 1}},
            "status": {"ready": true, "junk": 2},
            "top": "dropped"
        });
        prune(&schema(), &mut object);
        assert_eq!(
            object,
            json!({
                "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                "spec": {"x": "a", "free": {"anything": {"goes": true}},
                         "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}},
                "status": {"ready": true}
            })
        );
    }

    #[test]
    fn unknown_fields_are_named_for_strict_validation() {
        let object = json!({"metadata": {"name": "n"}, "spec": {"x": "a", "shape": 1, "budgets": [{"nodes": "1", "extra": 2}]}});
        assert_eq!(
            unknown_fields(&schema(), &object),
            vec!["spec.shape", "spec.budgets[0].extra"]
        );
    }

    #[test]
    fn defaults_fill_absent_fields_depth_first() {
        let mut object = json!({"spec": {"x": "a"}});
        default(&schema(), &mut object);
        assert_eq!(object["spec"]["policy"], "WhenEmpty");
        assert_eq!(object["spec"]["budgets"], json!([{"nodes": "10%"}]));
        let mut given =
            json!({"spec": {"x": "a", "policy": "Other", "budgets": [{"reasons": ["Empty"]}]}});
        default(&schema(), &mut given);
        assert_eq!(given["spec"]["policy"], "Other");
        assert_eq!(
            given["spec"]["budgets"],
            json!([{"reasons": ["Empty"], "nodes": "10%"}])
        );
        // A null where a default exists is replaced, as kube-apiserver prunes it first.
        let mut nulled = json!({"spec": {"x": "a", "policy": null}});
        prune(&schema(), &mut nulled);
        default(&schema(), &mut nulled);
        assert_eq!(nulled["spec"]["policy"], "WhenEmpty");
    }
}
