//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets: an
//! `autoscaling/v1` `Scale` whose `spec.replicas` is the workload's and whose
//! `status.selector` is its selector as text — what `kubectl scale` and autoscalers use.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::handlers::{get, update_internal, CreateOptions};
use crate::patch;
use crate::resources::ResourceInfo;
use crate::ApiServer;

/// The `Scale` view of a workload.
pub fn scale_of(workload: &Value) -> Value {
    let meta = &workload["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": workload["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": workload["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_text(&workload["spec"]["selector"]),
        },
    })
}

/// A label selector object as the text form (`app=web,tier in (a,b),!legacy`).
pub fn selector_text(selector: &Value) -> String {
    let mut terms: Vec<String> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (k, v) in labels {
            terms.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    terms.join(",")
}

pub fn get_scale(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    Ok(scale_of(&get(server, info, ns, name)?))
}

/// PUT of a `Scale`: its `spec.replicas` becomes the workload's, under its
/// `resourceVersion` precondition when it carries one.
pub fn put_scale(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    scale: Value,
    opts: &CreateOptions,
) -> Result<Value, ApiError> {
    if let Some(body_name) = scale["metadata"]["name"].as_str() {
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request("Scale.spec.replicas must be an integer".to_string())
        })?,
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let mut workload = get(server, info, ns, name)?;
    if let Some(rv) = scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
    {
        workload["metadata"]["resourceVersion"] = json!(rv);
    }
    workload["spec"]["replicas"] = json!(replicas);
    let updated = update_internal(server, info, ns, name, None, workload, opts)?;
    Ok(scale_of(&updated))
}

/// PATCH of the `Scale` (merge, JSON or strategic), applied to the current `Scale`.
pub fn patch_scale(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    opts: &CreateOptions,
) -> Result<Value, ApiError> {
    let kind = patch::PatchType::from_content_type(content_type)?;
    let current = get_scale(server, info, ns, name)?;
    let patched = patch::apply(kind, &current, body, info)?;
    put_scale(server, info, ns, name, patched, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_text_is_kubes_form() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "legacy", "operator": "DoesNotExist"}]});
        assert_eq!(selector_text(&s), "app=web,tier in (a,b),!legacy");
    }

    #[test]
    fn scale_mirrors_the_workload() {
        let d = json!({"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }
}
