//! Discovery (`/version`, `/api`, `/apis`, resource lists) and the OpenAPI endpoints.
//! Aggregated discovery is not offered: kubectl gets the legacy documents (plain
//! `application/json`) and falls back to per-group-version discovery. Everything is built
//! from the resource table at each request, so a CRD's resources appear and disappear
//! with it.

use axum::response::Response;
use http::HeaderMap;
use serde_json::{json, Value};

use super::{json_response, Query};
use crate::resources::{self, ResourceInfo};

/// The Kubernetes version this API server reports (kubectl 1.32 clients, no skew warning).
/// The `+sparkyard` build suffix, as k3s reports `+k3s1`, tells clients (the log shipper)
/// which optional behaviour they can count on.
pub const KUBE_VERSION: &str = "v1.32.0+sparkyard";

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": format!("linux/{}", match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

fn subresource_entry(info: &ResourceInfo, sub: &str) -> Value {
    let (kind, verbs, group, version) = match sub {
        "log" => ("Pod", json!(["get"]), "", ""),
        "status" => (info.kind, json!(["get", "patch", "update"]), "", ""),
        "binding" => ("Binding", json!(["create"]), "", ""),
        "token" => (
            "TokenRequest",
            json!(["create"]),
            "authentication.k8s.io",
            "v1",
        ),
        "finalize" => (info.kind, json!(["update"]), "", ""),
        "eviction" => ("Eviction", json!(["create"]), "policy", "v1"),
        _ => (info.kind, json!(["get"]), "", ""),
    };
    let mut entry = json!({"name": format!("{}/{sub}", info.plural), "singularName": "", "namespaced": info.namespaced, "kind": kind, "verbs": verbs});
    if !group.is_empty() {
        entry["group"] = json!(group);
        entry["version"] = json!(version);
    }
    entry
}

/// The `APIResourceList` of one group-version.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for info in resources::in_group_version(group, version) {
        let mut entry = json!({
            "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
            "kind": info.kind, "verbs": info.verbs(),
        });
        if !info.short_names.is_empty() {
            entry["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            entry["categories"] = json!(info.categories);
        }
        entries.push(entry);
        for sub in info.subresources {
            entries.push(subresource_entry(info, sub));
        }
    }
    if entries.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}),
    )
}

/// An `APIGroup`: every served version, the preferred one first.
fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions(group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn group_list() -> Value {
    let mut groups: Vec<Value> = resources::groups()
        .iter()
        .map(|(g, _)| api_group(g))
        .collect();
    // Served in process (metrics-server's aggregated API), not from the resource table.
    groups.push(crate::metrics_api::api_group());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Serves discovery and OpenAPI paths; `None` for anything else (404).
pub fn serve(path: &str, _query: &Query, headers: &HeaderMap) -> Option<Response> {
    let _ = headers;
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let body = match segments.as_slice() {
        ["api"] => json!({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        ["api", version] => resource_list("", version)?,
        ["apis"] => group_list(),
        ["apis", group] => {
            let (g, _) = resources::groups().into_iter().find(|(g, _)| g == group)?;
            let mut doc = api_group(g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        ["apis", group, version] => resource_list(group, version)?,
        ["openapi", "v3"] => super::openapi::v3_index(),
        ["openapi", "v3", rest @ ..] => super::openapi::v3_group_version(&rest.join("/"))?,
        _ => return None,
    };
    Some(json_response(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_short_names_and_subresources() {
        let list = resource_list("", "v1").unwrap();
        let find = |name: &str| {
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("pods")["shortNames"], json!(["po"]));
        assert_eq!(find("pods")["categories"], json!(["all"]));
        assert_eq!(find("pods/log")["verbs"], json!(["get"]));
        assert_eq!(find("namespaces")["namespaced"], false);
        assert_eq!(
            find("serviceaccounts/token")["group"],
            "authentication.k8s.io"
        );
        let pc = resource_list("scheduling.k8s.io", "v1").unwrap();
        assert_eq!(pc["resources"][0]["shortNames"], json!(["pc"]));
        assert!(resource_list("nope", "v1").is_none());
    }

    #[test]
    fn groups_are_listed() {
        let names: Vec<String> = group_list()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect();
        for g in ["batch", "scheduling.k8s.io", "rbac.authorization.k8s.io"] {
            assert!(names.contains(&g.to_string()), "{g}");
        }
    }
}
