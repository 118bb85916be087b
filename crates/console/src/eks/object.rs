//! One Kubernetes object: its metadata (labels, annotations, owners) and its spec and
//! status as an indented tree, or raw as JSON and YAML (`?view=raw`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use super::format::{self, age};
use super::resources::{group_version_path, resource_type};
use super::tree::{self, TreeRow};
use super::{kube_note, Reader};
use crate::pages::{self, message, page, session_or_redirect, text};
use crate::views::Nav;
use crate::Console;

struct Owner {
    kind: String,
    name: String,
    href: String,
    controller: bool,
}

#[derive(Template)]
#[template(path = "eks_object.html")]
struct ObjectPage {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    plural: String,
    kind: String,
    namespace: String,
    name: String,
    raw_view: bool,
    list_href: String,
    facts: Vec<(&'static str, String)>,
    labels: Vec<String>,
    annotations: Vec<(String, String)>,
    owners: Vec<Owner>,
    tree: Vec<TreeRow>,
    json: String,
    yaml: String,
}

#[derive(serde::Deserialize, Default)]
pub(super) struct ViewQuery {
    #[serde(default)]
    view: Option<String>,
}

pub(super) async fn page_handler(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((group, version, plural, namespace, name)): Path<(String, String, String, String, String)>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    let namespace = if namespace == "_" {
        String::new()
    } else {
        namespace
    };
    if !format::valid_dns_subdomain(&name)
        || !(namespace.is_empty() || format::valid_dns_label(&namespace))
    {
        return message(
            StatusCode::NOT_FOUND,
            reader.nav(),
            "Not found",
            "Not an object name.",
        );
    }
    let resource = match resource_type(&reader, &group, &version, &plural).await {
        Ok(r) => r,
        Err((status, text)) => {
            return message(status, reader.nav(), "Resource type not available", &text)
        }
    };
    let base = group_version_path(&group, &version);
    let path = match (resource.namespaced, namespace.is_empty()) {
        (true, false) => format!("{base}/namespaces/{namespace}/{plural}/{name}"),
        (false, _) => format!("{base}/{plural}/{name}"),
        (true, true) => {
            return message(
                StatusCode::NOT_FOUND,
                reader.nav(),
                "Not found",
                "A namespaced object needs its namespace.",
            )
        }
    };
    let object = match reader.kube_get(&path).await {
        Ok(o) => o,
        Err(e) => {
            let title = if e.denied() {
                "Not authorized"
            } else {
                "Object not available"
            };
            return message(
                e.status,
                reader.nav(),
                title,
                &kube_note(&format!("read {plural}/{name}"), &e),
            );
        }
    };
    let now = Utc::now();
    let meta = &object["metadata"];
    let facts = vec![
        ("Kind", text(&object, "/kind")),
        ("API version", text(&object, "/apiVersion")),
        ("Namespace", text(meta, "/namespace")),
        ("UID", text(meta, "/uid")),
        (
            "Created",
            pages::shown_time(pages::timestamp(meta, "/creationTimestamp")),
        ),
        (
            "Age",
            age(pages::timestamp(meta, "/creationTimestamp"), now),
        ),
        ("Resource version", text(meta, "/resourceVersion")),
        ("Generation", text(meta, "/generation")),
    ]
    .into_iter()
    .map(|(k, v)| (k, pages::or_dash(v)))
    .collect();
    let pairs = |key: &str| -> Vec<(String, String)> {
        meta[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels = pairs("labels")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let owners = meta["ownerReferences"]
        .as_array()
        .map(|o| {
            o.iter()
                .map(|o| Owner {
                    kind: text(o, "/kind"),
                    name: text(o, "/name"),
                    href: format::object_href(
                        &text(o, "/apiVersion"),
                        &text(o, "/kind"),
                        &namespace,
                        &text(o, "/name"),
                    ),
                    controller: o["controller"] == Value::Bool(true),
                })
                .collect()
        })
        .unwrap_or_default();
    let body = structured_body(&object);
    let list_href = if resource.namespaced {
        format!("/eks/resources/{group}/{version}/{plural}?namespace={namespace}")
    } else {
        format!("/eks/resources/{group}/{version}/{plural}")
    };
    page(
        StatusCode::OK,
        &ObjectPage {
            nav: reader.nav(),
            title: format!("{} {name}", resource.kind),
            tab: "resources",
            cluster_name: reader.cluster_name().to_string(),
            raw_view: q.view.as_deref() == Some("raw"),
            list_href,
            facts,
            labels,
            annotations: pairs("annotations"),
            owners,
            tree: tree::rows(&body),
            json: serde_json::to_string_pretty(&object).unwrap_or_default(),
            yaml: tree::yaml(&object),
            kind: resource.kind,
            plural,
            namespace,
            name,
        },
    )
}

/// The structured view's body: everything but the metadata shown above, `spec` first
/// and `status` next (as `kubectl describe` reads), then the rest (`data`, `rules`…).
fn structured_body(object: &Value) -> Value {
    let mut body = serde_json::Map::new();
    let Some(members) = object.as_object() else {
        return Value::Object(body);
    };
    for key in ["spec", "status"] {
        if let Some(v) = members.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    for (k, v) in members {
        if !matches!(
            k.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            body.insert(k.clone(), v.clone());
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_structured_view_reads_spec_then_status() {
        let o = json!({"status": {"phase": "Running"}, "apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "p"}, "data": {"a": "b"}, "spec": {"x": 1}});
        let keys: Vec<String> = structured_body(&o)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, vec!["spec", "status", "data"]);
    }
}
