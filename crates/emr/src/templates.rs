//! Job templates (reference §10): parameter resolution and merging with a StartJobRun.
//! Pure functions; the handler loads the template and validates the result.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};
use sparkyard_aws::AwsError;

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([a-zA-Z]\w*)\}").expect("valid"));

/// Resolves `${Param}` references in every string of `data` (a stored `jobTemplateData`)
/// with `inputs` (the request's `jobTemplateParameters`), following the declared
/// `parameterConfiguration`. Returns the data without `parameterConfiguration`.
///
/// Errors (all ValidationException): a key of `inputs` that the template does not declare;
/// a declared parameter with neither an input nor a default; a NUMBER parameter whose value
/// is not a number; a `${X}` reference to an undeclared parameter.
pub fn resolve(
    template_id: &str,
    data: &Value,
    inputs: Option<&Map<String, Value>>,
) -> Result<Value, AwsError> {
    let empty = Map::new();
    let declared = data
        .get("parameterConfiguration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let inputs = inputs.unwrap_or(&empty);

    let mut undeclared: Vec<&str> = inputs
        .keys()
        .filter(|k| !declared.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !undeclared.is_empty() {
        undeclared.sort();
        return Err(AwsError::validation(format!(
            "Job template parameters [{}] are not defined in job template {template_id}.",
            undeclared.join(", ")
        )));
    }

    let mut values: Map<String, Value> = Map::new();
    for (name, config) in declared {
        let value = inputs
            .get(name)
            .and_then(Value::as_str)
            .or_else(|| config.get("defaultValue").and_then(Value::as_str))
            .ok_or_else(|| {
                AwsError::validation(format!(
                    "Job template parameter {name} has no value: provide it in jobTemplateParameters or declare a defaultValue."
                ))
            })?;
        if config.get("type").and_then(Value::as_str) == Some("NUMBER")
            && value.trim().parse::<f64>().is_err()
        {
            return Err(AwsError::validation(format!(
                "Job template parameter {name} is of type NUMBER but its value '{value}' is not a number."
            )));
        }
        values.insert(name.clone(), Value::String(value.to_string()));
    }

    let mut resolved = data.clone();
    if let Some(obj) = resolved.as_object_mut() {
        obj.remove("parameterConfiguration");
    }
    substitute(&mut resolved, &values)?;
    Ok(resolved)
}

fn substitute(value: &mut Value, values: &Map<String, Value>) -> Result<(), AwsError> {
    match value {
        Value::String(s) => {
            if s.contains("${") {
                let mut missing = None;
                let out = REFERENCE.replace_all(s, |c: &regex::Captures| {
                    match values.get(&c[1]).and_then(Value::as_str) {
                        Some(v) => v.to_string(),
                        None => {
                            missing.get_or_insert_with(|| c[1].to_string());
                            c[0].to_string()
                        }
                    }
                });
                if let Some(name) = missing {
                    return Err(AwsError::validation(format!(
                        "The job template references the parameter ${{{name}}}, which is not declared in its parameterConfiguration."
                    )));
                }
                *s = out.into_owned();
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| substitute(v, values)),
        Value::Object(map) => map.values_mut().try_for_each(|v| substitute(v, values)),
        _ => Ok(()),
    }
}

/// Builds the effective StartJobRun body from resolved template data and the request:
/// request `executionRoleArn`, `releaseLabel` and `jobDriver` replace the template's;
/// request `configurationOverrides` is merged over the template's object by object (lists
/// such as `applicationConfiguration` are replaced whole); request `tags` are merged over
/// the template's `jobTags`. Request-only members (name, clientToken, retry policy) pass
/// through.
pub fn merge(resolved: &Value, request: &Value) -> Value {
    let mut out = Map::new();
    let req = request.as_object().cloned().unwrap_or_default();
    for (k, v) in &req {
        if !matches!(k.as_str(), "jobTemplateId" | "jobTemplateParameters") {
            out.insert(k.clone(), v.clone());
        }
    }
    for key in ["executionRoleArn", "releaseLabel", "jobDriver"] {
        if !out.contains_key(key) {
            if let Some(v) = resolved.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    match (
        resolved.get("configurationOverrides"),
        req.get("configurationOverrides"),
    ) {
        (Some(t), Some(r)) => {
            out.insert("configurationOverrides".into(), deep_merge(t, r));
        }
        (Some(t), None) => {
            out.insert("configurationOverrides".into(), t.clone());
        }
        _ => {}
    }
    let mut tags = resolved
        .get("jobTags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(r) = req.get("tags").and_then(Value::as_object) {
        for (k, v) in r {
            tags.insert(k.clone(), v.clone());
        }
    }
    if !tags.is_empty() || req.contains_key("tags") {
        out.insert("tags".into(), Value::Object(tags));
    }
    Value::Object(out)
}

fn deep_merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut m = b.clone();
            for (k, v) in o {
                let merged = match m.get(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => v.clone(),
                };
                m.insert(k.clone(), merged);
            }
            Value::Object(m)
        }
        (_, o) => o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "executionRoleArn": "${Role}",
            "releaseLabel": "emr-6.15.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "s3://b/${Script}",
                "sparkSubmitParameters": "--conf spark.executor.instances=${Executors} --class ${Main}"}},
            "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs/${Team}"}}},
            "parameterConfiguration": {
                "Role": {"type": "STRING"},
                "Script": {"type": "STRING", "defaultValue": "pi.py"},
                "Executors": {"type": "NUMBER", "defaultValue": "2"},
                "Main": {"type": "STRING", "defaultValue": "Pi"},
                "Team": {"type": "STRING", "defaultValue": "data"}
            },
            "jobTags": {"team": "data", "tier": "gold"}
        })
    }

    fn inputs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn resolves_defaults_and_inputs() {
        let r = resolve(
            "t",
            &data(),
            Some(&inputs(
                json!({"Role": "arn:aws:iam::123456789012:role/r", "Executors": "4"}),
            )),
        )
        .unwrap();
        assert_eq!(r["executionRoleArn"], "arn:aws:iam::123456789012:role/r");
        assert_eq!(
            r["jobDriver"]["sparkSubmitJobDriver"]["entryPoint"],
            "s3://b/pi.py"
        );
        assert_eq!(
            r["jobDriver"]["sparkSubmitJobDriver"]["sparkSubmitParameters"],
            "--conf spark.executor.instances=4 --class Pi"
        );
        assert!(r.get("parameterConfiguration").is_none());
    }

    #[test]
    fn rejects_missing_undeclared_and_bad_numbers() {
        let e = resolve("t", &data(), None).unwrap_err();
        assert!(e.message.contains("Role has no value"), "{}", e.message);
        let e = resolve(
            "t",
            &data(),
            Some(&inputs(json!({"Role": "x", "Nope": "1"}))),
        )
        .unwrap_err();
        assert!(e.message.contains("[Nope]"), "{}", e.message);
        let e = resolve(
            "t",
            &data(),
            Some(&inputs(json!({"Role": "x", "Executors": "many"}))),
        )
        .unwrap_err();
        assert!(e.message.contains("NUMBER"), "{}", e.message);
        let mut d = data();
        d["releaseLabel"] = json!("${Release}");
        let e = resolve("t", &d, Some(&inputs(json!({"Role": "x"})))).unwrap_err();
        assert!(e.message.contains("${Release}"), "{}", e.message);
    }

    #[test]
    fn merge_prefers_request() {
        let resolved = resolve("t", &data(), Some(&inputs(json!({"Role": "r"})))).unwrap();
        let req = json!({
            "name": "n", "clientToken": "c", "jobTemplateId": "t", "jobTemplateParameters": {"Role": "r"},
            "releaseLabel": "emr-7.0.0-latest",
            "configurationOverrides": {"monitoringConfiguration": {"persistentAppUI": "DISABLED"}},
            "tags": {"tier": "silver"}
        });
        let m = merge(&resolved, &req);
        assert_eq!(m["releaseLabel"], "emr-7.0.0-latest");
        assert_eq!(m["executionRoleArn"], "r");
        assert_eq!(
            m["configurationOverrides"]["monitoringConfiguration"]["persistentAppUI"],
            "DISABLED"
        );
        assert_eq!(
            m["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]
                ["logUri"],
            "s3://logs/data"
        );
        assert_eq!(m["tags"], json!({"team": "data", "tier": "silver"}));
        assert!(m.get("jobTemplateId").is_none());
        assert_eq!(m["name"], "n");
    }
}
