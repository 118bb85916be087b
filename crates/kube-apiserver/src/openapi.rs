//! OpenAPI v3, minimal: one document per group-version whose operations carry the GVK and
//! the `fieldValidation` parameter. That is what kubectl 1.32 reads to decide that the server
//! validates fields (it then sends `fieldValidation=Strict` instead of validating locally).
//! Schemas are left out; `/openapi/v2` is not served (kubectl accepts the 404).

use serde_json::{json, Map, Value};

use super::discovery::KUBE_VERSION;
use crate::resources::{self, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut gvs = vec![("", "v1")];
    gvs.extend(resources::groups());
    gvs
}

/// A hash that changes with the server build, so kubectl's cache refreshes after upgrades.
fn hash(path: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{path}{}", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

pub fn v3_index() -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions() {
        let path = gv_path(g, v);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&path))}),
        );
    }
    json!({"paths": paths})
}

fn operation(info: &ResourceInfo, action: &str) -> Value {
    json!({
        "operationId": format!("{action}{}", info.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ],
        "responses": {"200": {"description": "OK"}},
    })
}

pub fn v3_group_version(path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = Map::new();
    let mut any = false;
    for info in resources::in_group_version(group, version) {
        any = true;
        let base = if info.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                info.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), info.plural)
        };
        paths.insert(
            base.clone(),
            json!({"post": operation(info, "post"), "get": operation(info, "list")}),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"get": operation(info, "get"), "put": operation(info, "put"), "patch": operation(info, "patch"), "delete": operation(info, "delete")}),
        );
    }
    if !any {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_documents() {
        let index = v3_index();
        assert!(
            index["paths"]["apis/scheduling.k8s.io/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/scheduling.k8s.io/v1?hash=")
        );
        let doc = v3_group_version("apis/scheduling.k8s.io/v1").unwrap();
        let patch = &doc["paths"]["/apis/scheduling.k8s.io/v1/priorityclasses/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "PriorityClass"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(v3_group_version("apis/nope/v1").is_none());
    }
}
