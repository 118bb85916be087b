//! The four patch types: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic
//! merge patch (lists merged by their Kubernetes merge keys), and server-side apply
//! (approximated as a strategic merge of the applied configuration; field ownership is
//! not tracked).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::resources::ResourceInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
            ))),
        }
    }
}

/// An apply body: YAML or JSON (JSON is YAML), must be an object.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("apply patch body must be an object"));
    }
    Ok(value)
}

/// Applies a patch to `current` and returns the patched object.
pub fn apply(
    kind: PatchType,
    current: &Value,
    body: &[u8],
    info: &ResourceInfo,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &patch)
                .map_err(|e| invalid_patch(info, current, &e.to_string()))?;
        }
        PatchType::Merge => {
            let patch: Value =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            json_patch::merge(&mut doc, &patch);
        }
        PatchType::Strategic => {
            let patch: Value =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be an object",
                ));
            }
            doc = strategic_merge(&doc, &patch, "");
        }
        PatchType::Apply => {
            let applied = parse_apply_body(body)?;
            doc = strategic_merge(&doc, &applied, "");
        }
    }
    Ok(doc)
}

fn invalid_patch(info: &ResourceInfo, current: &Value, message: &str) -> ApiError {
    let name = current
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut err = ApiError::invalid(info.group, info.kind, name, &[]);
    err.message =
        format!("the server rejected our request due to an error in our request: {message}");
    err
}

/// The merge key of a list field (by field name; `ports` depends on what its items are),
/// `Some("")` for lists of scalars merged as sets, `None` for atomic lists.
fn merge_key(field: &str, items: &[&Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        "finalizers" => "",
        _ => return None,
    })
}

/// Strategic merge of `patch` into `original`. `field` is the name of the key the maps sit
/// under (for choosing merge keys of nested lists).
pub fn strategic_merge(original: &Value, patch: &Value, field: &str) -> Value {
    let (Some(orig), Some(p)) = (original.as_object(), patch.as_object()) else {
        return clean(patch);
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = p.clone();
        replaced.remove("$patch");
        return clean(&Value::Object(replaced));
    }
    let _ = field;
    let mut out = orig.clone();
    for (key, value) in p {
        if key.starts_with('$') {
            if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
                if let (Some(Value::Array(current)), Some(remove)) =
                    (out.get_mut(list), value.as_array())
                {
                    current.retain(|v| !remove.contains(v));
                }
            }
            // $setElementOrder, $retainKeys: ordering and pruning hints, ignored.
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.get(key), value) {
            (Some(o @ Value::Object(_)), Value::Object(_)) => strategic_merge(o, value, key),
            (Some(Value::Array(o)), Value::Array(pv)) => merge_list(key, o, pv),
            _ => clean(value),
        };
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

fn merge_list(field: &str, original: &[Value], patch: &[Value]) -> Value {
    let items: Vec<&Value> = original.iter().chain(patch.iter()).collect();
    match merge_key(field, &items) {
        None => Value::Array(patch.iter().map(clean).collect()),
        Some("") => {
            let mut out = original.to_vec();
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::Array(out)
        }
        Some(key) => {
            let mut out: Vec<Value> = original.to_vec();
            if patch
                .iter()
                .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                return Value::Array(
                    patch
                        .iter()
                        .filter(|p| p.get("$patch").is_none())
                        .map(clean)
                        .collect(),
                );
            }
            for item in patch {
                let id = item.get(key);
                let position = id.and_then(|id| out.iter().position(|o| o.get(key) == Some(id)));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => out[i] = strategic_merge(&out[i], item, field),
                    (None, false) => out.push(clean(item)),
                }
            }
            Value::Array(out)
        }
    }
}

/// Drops patch directives and nulls from a value that is inserted as a whole.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::PODS;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}, "resourceVersion": "5", "finalizers": ["x"]},
               "spec": {"containers": [
                   {"name": "c1", "image": "i1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                   {"name": "c2", "image": "i2"}]}})
    }

    #[test]
    fn json_patch_with_resource_version_test_as_spark_sends_it() {
        let body = br#"[{"op":"add","path":"/metadata/labels/spark-exec-inactive","value":"true"},{"op":"add","path":"/metadata/resourceVersion","value":"5"}]"#;
        let out = apply(PatchType::Json, &pod(), body, &PODS).unwrap();
        assert_eq!(out["metadata"]["labels"]["spark-exec-inactive"], "true");
        let bad = br#"[{"op":"remove","path":"/metadata/nope"}]"#;
        assert_eq!(
            apply(PatchType::Json, &pod(), bad, &PODS).unwrap_err().code,
            422
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let out = apply(PatchType::Merge, &pod(), br#"{"metadata":{"labels":{"a":null,"b":"2"}},"spec":{"containers":[{"name":"only"}]}}"#, &PODS).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn strategic_merge_uses_merge_keys() {
        let body = br#"{"spec":{"containers":[{"name":"c1","image":"new","env":[{"name":"B","value":"2"}],"ports":[{"containerPort":81}]},{"name":"c3","image":"i3"}]},"metadata":{"finalizers":["y"]}}"#;
        let out = apply(PatchType::Strategic, &pod(), body, &PODS).unwrap();
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 3);
        assert_eq!(containers[0]["image"], "new");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(containers[0]["ports"].as_array().unwrap().len(), 2);
        assert_eq!(containers[1]["image"], "i2");
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    }

    #[test]
    fn strategic_merge_directives() {
        let body = br#"{"$setElementOrder/containers":[{"name":"c1"}],"spec":{"containers":[{"name":"c2","$patch":"delete"}]},"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}}"#;
        let out = apply(PatchType::Strategic, &pod(), body, &PODS).unwrap();
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        assert!(out.get("$setElementOrder/containers").is_none());
        let replace = br#"{"metadata":{"labels":{"$patch":"replace","z":"9"}}}"#;
        let out = apply(PatchType::Strategic, &pod(), replace, &PODS).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"z": "9"}));
    }

    #[test]
    fn apply_accepts_yaml_and_json() {
        let out = apply(
            PatchType::Apply,
            &pod(),
            b"metadata:\n  labels:\n    c: '3'\n",
            &PODS,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        let out = apply(
            PatchType::Apply,
            &pod(),
            br#"{"metadata":{"labels":{"d":"4"}}}"#,
            &PODS,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"]["d"], "4");
        assert_eq!(
            PatchType::from_content_type("text/plain").unwrap_err().code,
            415
        );
    }
}
