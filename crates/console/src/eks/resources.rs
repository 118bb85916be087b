//! The Resources tab: every resource type the API server serves, found by discovery
//! (`/api/v1`, `/apis` and each group's preferred version, custom resources included),
//! a list of each (the server's own Table columns, as `kubectl get` shows them) and one
//! object (structured and raw). Path segments are checked before they reach an API path.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use super::format::{self, age};
use super::{kube_note, NamespaceQuery, Reader};
use crate::pages::{self, message, page, session_or_redirect, text};
use crate::views::Nav;
use crate::Console;

/// One listable resource type of a group-version.
pub(super) struct ResourceType {
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
}

/// `/api/v1`'s or `/apis/<g>/<v>`'s resources, subresources and unlistable ones (reviews,
/// bindings) left out.
pub(super) fn listable(resource_list: &Value) -> Vec<ResourceType> {
    let mut out: Vec<ResourceType> = resource_list["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| {
                    let name = r["name"].as_str().unwrap_or_default();
                    !name.contains('/')
                        && r["verbs"]
                            .as_array()
                            .is_some_and(|v| v.iter().any(|v| v == "list"))
                })
                .map(|r| ResourceType {
                    plural: text(r, "/name"),
                    kind: text(r, "/kind"),
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.kind.cmp(&b.kind));
    out
}

/// The API path of a group-version (`core` is the legacy group).
pub(super) fn group_version_path(group: &str, version: &str) -> String {
    if group == "core" {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn valid_group(group: &str) -> bool {
    group == "core" || format::valid_dns_subdomain(group)
}

// ---- index ------------------------------------------------------------------------------

struct Group {
    /// `core` or the group's name.
    name: String,
    version: String,
    resources: Vec<ResourceType>,
}

#[derive(Template)]
#[template(path = "eks_resources.html")]
struct Index {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    groups: Vec<Group>,
    errors: Vec<String>,
}

pub(super) async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let (core, apis) = tokio::join!(reader.kube_get("/api/v1"), reader.kube_get("/apis"));
    match core {
        Ok(v) => groups.push(Group {
            name: "core".into(),
            version: "v1".into(),
            resources: listable(&v),
        }),
        Err(e) => errors.push(kube_note("discover the core API", &e)),
    }
    let preferred: Vec<(String, String)> = match apis {
        Ok(v) => v["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .map(|g| (text(g, "/name"), text(g, "/preferredVersion/version")))
                    .filter(|(g, v)| valid_group(g) && format::valid_token(v))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            errors.push(kube_note("discover the API groups", &e));
            Vec::new()
        }
    };
    for (name, version) in preferred {
        match reader.kube_get(&group_version_path(&name, &version)).await {
            Ok(v) => {
                let resources = listable(&v);
                if !resources.is_empty() {
                    groups.push(Group {
                        name,
                        version,
                        resources,
                    });
                }
            }
            Err(e) => errors.push(kube_note(&format!("discover {name}/{version}"), &e)),
        }
    }
    // Core first (it was discovered first), then the groups by name.
    let first_named = usize::from(groups.first().is_some_and(|g| g.name == "core"));
    groups[first_named..].sort_by(|a, b| a.name.cmp(&b.name));
    page(
        StatusCode::OK,
        &Index {
            nav: reader.nav(),
            title: "EKS · Resources".into(),
            tab: "resources",
            cluster_name: reader.cluster_name().to_string(),
            groups,
            errors,
        },
    )
}

// ---- list -------------------------------------------------------------------------------

struct Row {
    name: String,
    namespace: String,
    href: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "eks_resource_list.html")]
struct List {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
    namespace: String,
    /// Show a Namespace column (a namespaced type listed across namespaces).
    namespace_column: bool,
    columns: Vec<String>,
    rows: Vec<Row>,
    error: String,
}

/// Table rows → the page's rows: the server's priority-0 columns but Name (the link).
fn table_rows(table: &Value, list_href: &str) -> (Vec<String>, Vec<Row>) {
    let defs = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<usize> = defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d["priority"].as_i64().unwrap_or(0) == 0 && d["name"] != "Name")
        .map(|(i, _)| i)
        .collect();
    let columns = shown.iter().map(|&i| text(&defs[i], "/name")).collect();
    let rows = table["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let name = text(r, "/object/metadata/name");
                    let namespace = text(r, "/object/metadata/namespace");
                    let cells = shown
                        .iter()
                        .map(|&i| match r["cells"].get(i) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => String::new(),
                            Some(v) => v.to_string(),
                        })
                        .collect();
                    Row {
                        href: object_href(list_href, &namespace, &name),
                        name,
                        namespace,
                        cells,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (columns, rows)
}

/// A plain list (a server that answered without a Table): Name, Namespace, Age.
fn plain_rows(list: &Value, list_href: &str) -> (Vec<String>, Vec<Row>) {
    let now = Utc::now();
    let rows = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    let name = text(o, "/metadata/name");
                    let namespace = text(o, "/metadata/namespace");
                    Row {
                        href: object_href(list_href, &namespace, &name),
                        cells: vec![age(pages::timestamp(o, "/metadata/creationTimestamp"), now)],
                        name,
                        namespace,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (vec!["Age".into()], rows)
}

/// The resource type behind a page's path, from its group-version's discovery.
pub(super) async fn resource_type(
    reader: &Reader<'_>,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<ResourceType, (StatusCode, String)> {
    if !valid_group(group) || !format::valid_token(version) || !format::valid_token(plural) {
        return Err((StatusCode::NOT_FOUND, "Not a resource path.".into()));
    }
    let list = reader
        .kube_get(&group_version_path(group, version))
        .await
        .map_err(|e| {
            (
                e.status,
                kube_note(&format!("discover {group}/{version}"), &e),
            )
        })?;
    listable(&list)
        .into_iter()
        .find(|r| r.plural == plural)
        .ok_or((
            StatusCode::NOT_FOUND,
            format!("The API server serves no {plural} in {group}/{version}."),
        ))
}

/// An object's page under its list's (`_` for the namespace of a cluster-scoped one).
fn object_href(list_href: &str, namespace: &str, name: &str) -> String {
    let namespace = if namespace.is_empty() { "_" } else { namespace };
    format!("{list_href}/{namespace}/{name}")
}

pub(super) async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    let resource = match resource_type(&reader, &group, &version, &plural).await {
        Ok(r) => r,
        Err((status, text)) => {
            return message(status, reader.nav(), "Resource type not available", &text)
        }
    };
    let (namespace, mut error) = match q.namespace() {
        Ok(ns) => (ns, String::new()),
        Err(e) => (String::new(), e),
    };
    let namespace = if resource.namespaced {
        namespace
    } else {
        String::new()
    };
    let base = group_version_path(&group, &version);
    let path = if namespace.is_empty() {
        format!("{base}/{plural}")
    } else {
        format!("{base}/namespaces/{namespace}/{plural}")
    };
    let list_href = format!("/eks/resources/{group}/{version}/{plural}");
    let (columns, rows) = match reader.kube_table(&path).await {
        Ok(v) if v["kind"] == "Table" => table_rows(&v, &list_href),
        Ok(v) => plain_rows(&v, &list_href),
        Err(e) => {
            let scope = if namespace.is_empty() && resource.namespaced {
                format!("list {plural} in all namespaces")
            } else if namespace.is_empty() {
                format!("list {plural}")
            } else {
                format!("list {plural} in namespace {namespace}")
            };
            error = kube_note(&scope, &e);
            if e.denied() && namespace.is_empty() && resource.namespaced {
                error.push_str(" Enter a namespace you may read.");
            }
            (Vec::new(), Vec::new())
        }
    };
    page(
        StatusCode::OK,
        &List {
            nav: reader.nav(),
            title: format!("EKS · {}", resource.kind),
            tab: "resources",
            cluster_name: reader.cluster_name().to_string(),
            namespace_column: resource.namespaced && namespace.is_empty(),
            namespaced: resource.namespaced,
            kind: resource.kind,
            group,
            version,
            plural,
            namespace,
            columns,
            rows,
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discovery_keeps_listable_top_level_resources() {
        let list = json!({"resources": [
            {"name": "pods", "kind": "Pod", "namespaced": true, "verbs": ["get", "list"]},
            {"name": "pods/log", "kind": "Pod", "namespaced": true, "verbs": ["get"]},
            {"name": "bindings", "kind": "Binding", "namespaced": true, "verbs": ["create"]},
            {"name": "nodes", "kind": "Node", "namespaced": false, "verbs": ["list"]},
        ]});
        let kept: Vec<(String, bool)> = listable(&list)
            .into_iter()
            .map(|r| (r.plural, r.namespaced))
            .collect();
        assert_eq!(kept, vec![("nodes".into(), false), ("pods".into(), true)]);
        assert_eq!(group_version_path("core", "v1"), "/api/v1");
        assert_eq!(
            group_version_path("karpenter.sh", "v1"),
            "/apis/karpenter.sh/v1"
        );
        assert!(!valid_group("a/b"));
    }

    #[test]
    fn table_columns_follow_the_server_but_name() {
        let table = json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "priority": 0}, {"name": "Ready", "priority": 0},
                {"name": "IP", "priority": 1}, {"name": "Age", "priority": 0}],
            "rows": [{"cells": ["p1", "1/1", "10.0.0.1", "5m"],
                      "object": {"metadata": {"name": "p1", "namespace": "default"}}}],
        });
        let (columns, rows) = table_rows(&table, "/eks/resources/core/v1/pods");
        assert_eq!(columns, vec!["Ready", "Age"]);
        assert_eq!(rows[0].cells, vec!["1/1", "5m"]);
        assert_eq!(rows[0].href, "/eks/resources/core/v1/pods/default/p1");
    }
}
