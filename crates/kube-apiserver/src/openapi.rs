//! OpenAPI v3, minimal: one document per group-version whose operations carry the GVK and
//! the `fieldValidation` parameter. That is what kubectl 1.32 reads to decide that the server
//! validates fields (it then sends `fieldValidation=Strict` instead of validating locally).
//! Built-in kinds' schemas are left out; a custom resource's document carries its CRD's
//! schema under `components.schemas` (named `<reversed group>.<version>.<Kind>`, with
//! `x-kubernetes-group-version-kind`), which is what `kubectl explain` reads.
//! `/openapi/v2` is not served (kubectl accepts the 404).

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
    for (group, _) in resources::groups() {
        gvs.extend(
            resources::group_versions(group)
                .into_iter()
                .map(|v| (group, v)),
        );
    }
    gvs
}

/// A hash that changes with the server build and with the schemas of the group-version's
/// custom resources, so kubectl's cache refreshes after upgrades and CRD changes.
fn hash(path: &str) -> String {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => (String::new(), String::new()),
    };
    let schemas: String = resources::in_group_version(&group, &version)
        .into_iter()
        .filter_map(crate::crd::served)
        .map(|s| format!("{}{:?}", s.schema, s.columns))
        .collect();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{path}{}{schemas}", env!("CARGO_PKG_VERSION")).as_bytes(),
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
    let metrics = format!("apis/{}", crate::metrics_api::API_VERSION);
    paths.insert(
        metrics.clone(),
        json!({"serverRelativeURL": format!("/openapi/v3/{metrics}?hash={}", hash(&metrics))}),
    );
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
        ["apis", crate::metrics_api::GROUP, crate::metrics_api::VERSION] => {
            return Some(crate::metrics_api::openapi_v3())
        }
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut any = false;
    for info in resources::in_group_version(group, version) {
        any = true;
        if let Some(served) = crate::crd::served(info) {
            schemas.insert(schema_name(info), custom_schema(info, &served.schema));
        }
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
        "components": {"schemas": schemas},
    }))
}

/// `sh.karpenter.v1.NodePool` for `karpenter.sh/v1` NodePool, as kube-apiserver names a
/// custom resource's schema.
fn schema_name(info: &ResourceInfo) -> String {
    let reversed: Vec<&str> = info.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), info.version, info.kind)
}

/// The CRD's schema as a published definition: `apiVersion`, `kind` and `metadata`
/// described, the group-version-kind attached.
fn custom_schema(info: &ResourceInfo, schema: &Value) -> Value {
    let mut schema = schema.clone();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    let properties = &mut schema["properties"];
    if !properties.is_object() {
        *properties = json!({});
    }
    properties["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
    properties["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
    properties["metadata"] = json!({"type": "object", "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"});
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": info.group, "version": info.version, "kind": info.kind}]);
    schema
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
