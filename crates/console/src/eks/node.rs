//! One node, as `kubectl describe node` tells it: facts, labels, taints, conditions,
//! capacity and allocatable against what its pods request, and its pods.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use super::capacity::{self, holds_resources, pod_requests, restarts, Resources};
use super::format::{self, age, parse_cpu, parse_memory, show_cpu, show_memory};
use super::{kube_note, Reader};
use crate::pages::{self, message, page, session_or_redirect, text};
use crate::views::Nav;
use crate::Console;

struct Condition {
    kind: String,
    status: String,
    reason: String,
    message: String,
    last_transition: String,
}

/// One row of "Capacity / Allocatable / Requests".
struct ResourceRow {
    name: String,
    capacity: String,
    allocatable: String,
    requests: String,
}

struct PodRow {
    namespace: String,
    name: String,
    href: String,
    phase: String,
    cpu: String,
    memory: String,
    restarts: u64,
    age: String,
}

#[derive(Template)]
#[template(path = "eks_node.html")]
struct NodePage {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    name: String,
    status: String,
    ready: bool,
    facts: Vec<(&'static str, String)>,
    labels: Vec<String>,
    taints: Vec<String>,
    conditions: Vec<Condition>,
    resources: Vec<ResourceRow>,
    pods: Vec<PodRow>,
    pods_error: String,
    usage: String,
}

pub(super) async fn page_handler(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    if !format::valid_dns_subdomain(&name) {
        return message(
            StatusCode::NOT_FOUND,
            reader.nav(),
            "Not found",
            "Not a node name.",
        );
    }
    let pods_path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{name}");
    let metrics_path = format!("/apis/metrics.k8s.io/v1beta1/nodes/{name}");
    let node_path = format!("/api/v1/nodes/{name}");
    let (node, pods, metrics) = tokio::join!(
        reader.kube_get(&node_path),
        reader.kube_list(&pods_path),
        reader.kube_get(&metrics_path),
    );
    let node = match node {
        Ok(n) => n,
        Err(e) => {
            let title = if e.denied() {
                "Not authorized"
            } else {
                "Node not available"
            };
            return message(
                e.status,
                reader.nav(),
                title,
                &kube_note("read this node", &e),
            );
        }
    };
    let now = Utc::now();
    let (pods, pods_error) = match pods {
        Ok(p) => (p, String::new()),
        Err(e) => (Vec::new(), kube_note("list this node's pods", &e)),
    };
    // The field selector is the server's business; a server that ignored it must not
    // make other nodes' pods appear here.
    let pods: Vec<Value> = pods
        .into_iter()
        .filter(|p| text(p, "/spec/nodeName") == name)
        .collect();
    let mut requested = Resources::default();
    for p in pods.iter().filter(|p| holds_resources(p)) {
        let r = pod_requests(p);
        requested.cpu += r.cpu;
        requested.memory += r.memory;
    }
    let (pool_kind, pool) = capacity::node_pool(&node);
    let status = capacity::node_status(&node);
    let address = |kind: &str| {
        node.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|a| a["type"] == kind))
            .map(|a| text(a, "/address"))
            .unwrap_or_default()
    };
    let facts = vec![
        (
            "Instance type",
            capacity::label(&node, "node.kubernetes.io/instance-type"),
        ),
        ("Capacity type", capacity::capacity_type(&node)),
        (
            "Zone",
            capacity::label(&node, "topology.kubernetes.io/zone"),
        ),
        (
            if pool_kind.is_empty() {
                "Node group"
            } else {
                pool_kind
            },
            pool,
        ),
        ("Internal IP", address("InternalIP")),
        ("Provider ID", text(&node, "/spec/providerID")),
        (
            "Kubelet version",
            text(&node, "/status/nodeInfo/kubeletVersion"),
        ),
        ("OS image", text(&node, "/status/nodeInfo/osImage")),
        (
            "Container runtime",
            text(&node, "/status/nodeInfo/containerRuntimeVersion"),
        ),
        ("Architecture", text(&node, "/status/nodeInfo/architecture")),
        (
            "Created",
            pages::shown_time(pages::timestamp(&node, "/metadata/creationTimestamp")),
        ),
        (
            "Age",
            age(pages::timestamp(&node, "/metadata/creationTimestamp"), now),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, pages::or_dash(v)))
    .collect();
    let labels = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .map(|t| {
                    let value = text(t, "/value");
                    let key = text(t, "/key");
                    let effect = text(t, "/effect");
                    if value.is_empty() {
                        format!("{key}:{effect}")
                    } else {
                        format!("{key}={value}:{effect}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let conditions = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|c| Condition {
                    kind: text(c, "/type"),
                    status: text(c, "/status"),
                    reason: pages::or_dash(text(c, "/reason")),
                    message: pages::or_dash(text(c, "/message")),
                    last_transition: pages::shown_time(pages::timestamp(c, "/lastTransitionTime")),
                })
                .collect()
        })
        .unwrap_or_default();
    let resources = resource_rows(&node, requested);
    let usage = match metrics {
        Ok(m) => {
            let u = &m["usage"];
            format!(
                "CPU {} · memory {}",
                show_cpu(parse_cpu(&text(u, "/cpu")).unwrap_or(0.0)),
                show_memory(parse_memory(&text(u, "/memory")).unwrap_or(0.0))
            )
        }
        Err(e) => kube_note("read this node's metrics", &e),
    };
    let mut pod_rows: Vec<PodRow> = pods
        .iter()
        .map(|p| {
            let r = pod_requests(p);
            let namespace = text(p, "/metadata/namespace");
            let name = text(p, "/metadata/name");
            PodRow {
                href: format::object_href("v1", "Pod", &namespace, &name),
                phase: pages::or_dash(text(p, "/status/phase")),
                cpu: show_cpu(r.cpu),
                memory: show_memory(r.memory),
                restarts: restarts(p),
                age: age(pages::timestamp(p, "/metadata/creationTimestamp"), now),
                namespace,
                name,
            }
        })
        .collect();
    pod_rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    page(
        StatusCode::OK,
        &NodePage {
            nav: reader.nav(),
            title: format!("Node {name}"),
            tab: "compute",
            cluster_name: reader.cluster_name().to_string(),
            ready: status.starts_with("Ready"),
            status,
            facts,
            labels,
            taints,
            conditions,
            resources,
            pods: pod_rows,
            pods_error,
            usage,
            name,
        },
    )
}

/// Every resource the node reports capacity for, with requests for CPU and memory.
fn resource_rows(node: &Value, requested: Resources) -> Vec<ResourceRow> {
    let Some(capacity) = node.pointer("/status/capacity").and_then(Value::as_object) else {
        return Vec::new();
    };
    let allocatable = node.pointer("/status/allocatable");
    capacity
        .iter()
        .map(|(name, cap)| {
            let cap = cap.as_str().unwrap_or_default();
            let alloc = allocatable
                .and_then(|a| a.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let bytes = |q: &str| show_memory(parse_memory(q).unwrap_or(0.0));
            let (capacity, allocatable, requests) = match name.as_str() {
                "cpu" => {
                    let whole = parse_cpu(alloc).unwrap_or(0.0);
                    (
                        show_cpu(parse_cpu(cap).unwrap_or(0.0)),
                        show_cpu(whole),
                        format!(
                            "{} ({}%)",
                            show_cpu(requested.cpu),
                            format::percent(requested.cpu, whole)
                        ),
                    )
                }
                "memory" => {
                    let whole = parse_memory(alloc).unwrap_or(0.0);
                    (
                        bytes(cap),
                        bytes(alloc),
                        format!(
                            "{} ({}%)",
                            show_memory(requested.memory),
                            format::percent(requested.memory, whole)
                        ),
                    )
                }
                // Byte quantities read as memory does.
                n if n == "ephemeral-storage" || n.starts_with("hugepages-") => {
                    (bytes(cap), bytes(alloc), "—".into())
                }
                _ => (
                    cap.to_string(),
                    pages::or_dash(alloc.to_string()),
                    "—".into(),
                ),
            };
            ResourceRow {
                name: name.clone(),
                capacity,
                allocatable,
                requests,
            }
        })
        .collect()
}
