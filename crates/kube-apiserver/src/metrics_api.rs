//! `metrics.k8s.io/v1beta1` — the resource Metrics API that metrics-server serves through
//! API aggregation, here served by the API server itself: NodeMetrics (cluster-scoped) and
//! PodMetrics (namespaced), `get` and `list` with label selectors and the
//! `metadata.name`/`metadata.namespace` field selectors, shaped and formatted exactly as
//! metrics-server writes them (CPU in nanocores with the quantity's canonical suffix,
//! memory in binary-SI bytes, `timestamp`, `window` as a Go duration).
//!
//! The usage comes from a [`MetricsSource`] the embedding code registers at start
//! ([`crate::ApiServer::set_metrics_source`], like [`crate::ApiServer::add_validator`]) —
//! the kubelet's usage store — so this crate does not depend on the kubelet. Without one
//! the group is still discovered and requests answer 503, as an aggregated API whose
//! backend is down does. Objects and their labels are the registry's: a pod or node
//! without a sample yet is left out of lists, and a `get` of it is NotFound, as
//! metrics-server does.
//!
//! The same source answers the kubelet endpoints behind the node proxy
//! (`/api/v1/nodes/<node>/proxy/...`, see `node_proxy`).

use std::time::Duration;

use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, Method};
use serde_json::{json, Map, Value};

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::{error_response, json_response, resources, ApiServer, Query};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// CPU (a rate, in nanocores) and memory (working set, bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nano_cores: u64,
    pub memory_bytes: u64,
}

/// One node's latest usage: the rate over `window`, which ends at `timestamp`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMetric {
    pub name: String,
    pub timestamp: DateTime<Utc>,
    pub window: Duration,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerMetric {
    pub name: String,
    pub usage: Usage,
}

/// One pod's latest usage, per container.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetric {
    pub namespace: String,
    pub name: String,
    /// The pod's uid: a sample of a deleted pod never answers for a new one of that name.
    pub uid: String,
    pub timestamp: DateTime<Utc>,
    pub window: Duration,
    pub containers: Vec<ContainerMetric>,
}

/// What a kubelet endpoint answered (`/metrics/resource`, `/stats/summary`…).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeletReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Where usage comes from (metrics-server's scrape of the kubelets, in process).
pub trait MetricsSource: Send + Sync {
    /// The latest usage of every node that has one.
    fn node_metrics(&self) -> Vec<NodeMetric>;
    /// The latest usage of every pod that has one (of `namespace` only, if given).
    fn pod_metrics(&self, namespace: Option<&str>) -> Vec<PodMetric>;
    /// `GET <path>?<query>` on the kubelet of `node` (`path` without a leading `/`), as
    /// the node proxy forwards it; `None` when no kubelet serves that node.
    fn kubelet_get(&self, node: &str, path: &str, query: &str) -> Option<KubeletReply> {
        let _ = (node, path, query);
        None
    }
}

/// The `APIGroup` entry of `/apis` and `/apis/metrics.k8s.io`.
pub fn api_group() -> Value {
    let version = json!({"groupVersion": API_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [version], "preferredVersion": version})
}

/// The `APIResourceList` of `metrics.k8s.io/v1beta1`, as metrics-server publishes it.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

/// Serves `/apis/metrics.k8s.io/...` and the node proxy; `None` for any other path.
pub(crate) fn serve(
    server: &ApiServer,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    user: &UserInfo,
) -> Option<Response> {
    // Cheap test first: this runs before every resource request.
    let ours = path.starts_with("/apis/metrics.k8s.io")
        || (path.starts_with("/api/v1/nodes/") && path.contains("/proxy"));
    if !ours {
        return None;
    }
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if let ["api", "v1", "nodes", node, "proxy", rest @ ..] = segments.as_slice() {
        let raw_query = query_string(query);
        return Some(crate::node_proxy::serve(
            server,
            method,
            node,
            &rest.join("/"),
            &raw_query,
            user,
        ));
    }
    let rest = match segments.as_slice() {
        ["apis", GROUP] => return Some(discovery_group()),
        ["apis", GROUP, VERSION] => return Some(json_response(200, &resource_list())),
        ["apis", GROUP, VERSION, rest @ ..] => rest,
        ["apis", GROUP, ..] => return Some(error_response(&not_found_path())),
        _ => return None,
    };
    let table = crate::wants_table(
        headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let result = match rest {
        ["nodes"] => Ok(Target::Nodes(None)),
        ["nodes", name] => Ok(Target::Nodes(Some(*name))),
        ["pods"] => Ok(Target::Pods {
            namespace: None,
            name: None,
        }),
        ["namespaces", ns, "pods"] => Ok(Target::Pods {
            namespace: Some(*ns),
            name: None,
        }),
        ["namespaces", ns, "pods", name] => Ok(Target::Pods {
            namespace: Some(*ns),
            name: Some(*name),
        }),
        _ => Err(not_found_path()),
    }
    .and_then(|target| {
        if *method != Method::GET && *method != Method::HEAD {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method} {})",
                target.plural()
            )));
        }
        if query.flag("watch") {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource (watch)",
            ));
        }
        authorize(server, user, &target)?;
        let source = server.metrics_source().ok_or_else(unavailable)?;
        target.respond(server, source.as_ref(), query)
    });
    Some(match result {
        Ok(body) if table => crate::table_response(&to_table(
            &body,
            query.get("includeObject").unwrap_or("Metadata"),
        )),
        Ok(body) => json_response(200, &body),
        Err(err) => error_response(&err),
    })
}

/// metrics-server's Table (what `kubectl get podmetrics` prints): Name, CPU, Memory,
/// Window; a pod's CPU and memory are its containers' sums.
fn to_table(body: &Value, include_object: &str) -> Value {
    let objects: Vec<&Value> = match body["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![body],
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let usages: Vec<&Value> = match object["containers"].as_array() {
                Some(containers) => containers.iter().map(|c| &c["usage"]).collect(),
                None => vec![&object["usage"]],
            };
            let text = |u: &Value, key: &str| u[key].as_str().unwrap_or("0").to_string();
            let cpu: u64 = usages
                .iter()
                .map(|u| parse_cpu(&text(u, "cpu")))
                .sum();
            let memory: u64 = usages
                .iter()
                .map(|u| parse_memory(&text(u, "memory")))
                .sum();
            let mut row = json!({"cells": [object["metadata"]["name"], cpu_quantity(cpu),
                                           memory_quantity(memory), object["window"]]});
            match include_object {
                "None" => {}
                "Object" => row["object"] = (*object).clone(),
                _ => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                           "metadata": object["metadata"]})
                }
            }
            row
        })
        .collect();
    let column = |name: &str, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": 0});
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
           "columnDefinitions": [
               column("Name", "name", "Name of the resource"),
               column("CPU", "", "CPU usage"),
               column("Memory", "", "Memory usage"),
               column("Window", "", "Interval from which metrics were collected"),
           ],
           "rows": rows})
}

/// The inverse of [`cpu_quantity`].
fn parse_cpu(text: &str) -> u64 {
    let (number, scale) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let scale = match &text[i..] {
                "n" => 1,
                "u" => 1_000,
                "m" => 1_000_000,
                "k" => 1_000_000_000_000,
                "M" => 1_000_000_000_000_000,
                _ => 0,
            };
            (&text[..i], scale)
        }
        None => (text, 1_000_000_000),
    };
    number.parse::<u64>().unwrap_or(0).saturating_mul(scale)
}

/// The inverse of [`memory_quantity`].
fn parse_memory(text: &str) -> u64 {
    let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    for (power, suffix) in suffixes.iter().enumerate() {
        if let Some(number) = text.strip_suffix(suffix) {
            return number
                .parse::<u64>()
                .unwrap_or(0)
                .saturating_mul(1u64 << (10 * (power as u32 + 1)));
        }
    }
    text.parse().unwrap_or(0)
}

fn query_string(query: &Query) -> String {
    query
        .0
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn discovery_group() -> Response {
    let mut doc = api_group();
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    json_response(200, &doc)
}

fn not_found_path() -> ApiError {
    let mut err = ApiError::not_found("", "", "");
    err.message = "the server could not find the requested resource".into();
    err.details = None;
    err
}

/// 503, as kube-apiserver answers for an aggregated API whose service is unavailable.
pub(crate) fn unavailable() -> ApiError {
    ApiError {
        code: 503,
        reason: "ServiceUnavailable",
        message: "the server is currently unable to handle the request (no metrics source)".into(),
        details: None,
    }
}

enum Target<'a> {
    Nodes(Option<&'a str>),
    Pods {
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    },
}

impl Target<'_> {
    fn plural(&self) -> &'static str {
        match self {
            Target::Nodes(_) => "nodes",
            Target::Pods { .. } => "pods",
        }
    }

    fn respond(
        &self,
        server: &ApiServer,
        source: &dyn MetricsSource,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let now = rfc3339(Utc::now());
        match *self {
            Target::Nodes(name) => {
                let metrics: std::collections::HashMap<String, NodeMetric> = source
                    .node_metrics()
                    .into_iter()
                    .map(|m| (m.name.clone(), m))
                    .collect();
                let nodes = server.registry.list(resources::NODES.resource(), None).0;
                if let Some(name) = name {
                    let node = nodes.iter().find(|n| n["metadata"]["name"] == name);
                    return match (node, metrics.get(name)) {
                        (Some(node), Some(metric)) => {
                            let mut object = node_object(node, metric, &now);
                            with_type(&mut object, "NodeMetrics");
                            Ok(object)
                        }
                        _ => Err(ApiError::not_found(GROUP, "nodemetrics", name)),
                    };
                }
                let selectors = parse_selectors(query)?;
                let items: Vec<Value> = nodes
                    .iter()
                    .filter(|n| selectors.matches(n))
                    .filter_map(|n| {
                        let metric = metrics.get(n["metadata"]["name"].as_str()?)?;
                        Some(node_object(n, metric, &now))
                    })
                    .collect();
                Ok(list("NodeMetricsList", items))
            }
            Target::Pods { namespace, name } => {
                let metrics: std::collections::HashMap<(String, String), PodMetric> = source
                    .pod_metrics(namespace)
                    .into_iter()
                    .map(|m| ((m.namespace.clone(), m.name.clone()), m))
                    .collect();
                let lookup = |pod: &Value| -> Option<&PodMetric> {
                    let meta = &pod["metadata"];
                    let key = (
                        meta["namespace"].as_str()?.to_string(),
                        meta["name"].as_str()?.to_string(),
                    );
                    metrics
                        .get(&key)
                        .filter(|m| meta["uid"].as_str() == Some(m.uid.as_str()))
                };
                if let (Some(ns), Some(name)) = (namespace, name) {
                    let pod = server.registry.get(resources::PODS.resource(), ns, name);
                    return match pod.as_deref().and_then(|p| Some((p, lookup(p)?))) {
                        Some((pod, metric)) => {
                            let mut object = pod_object(pod, metric, &now);
                            with_type(&mut object, "PodMetrics");
                            Ok(object)
                        }
                        None => Err(ApiError::not_found(
                            GROUP,
                            "podmetrics",
                            &format!("{ns}/{name}"),
                        )),
                    };
                }
                let selectors = parse_selectors(query)?;
                let pods = server
                    .registry
                    .list(resources::PODS.resource(), namespace)
                    .0;
                let items: Vec<Value> = pods
                    .iter()
                    .filter(|p| selectors.matches(p))
                    .filter_map(|p| Some(pod_object(p, lookup(p)?, &now)))
                    .collect();
                Ok(list("PodMetricsList", items))
            }
        }
    }
}

/// The label selector and the `metadata.name`/`metadata.namespace` field selector
/// metrics-server accepts.
struct MetricsSelectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl MetricsSelectors {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(&resources::PODS, object)
    }
}

fn parse_selectors(query: &Query) -> Result<MetricsSelectors, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").unwrap_or_default(),
        &resources::PODS,
    )?;
    if let Some(other) = fields
        .0
        .iter()
        .find(|r| r.field != "metadata.name" && r.field != "metadata.namespace")
    {
        return Err(ApiError::bad_request(format!(
            "field label not supported: {}",
            other.field
        )));
    }
    Ok(MetricsSelectors { labels, fields })
}

fn authorize(server: &ApiServer, user: &UserInfo, target: &Target<'_>) -> Result<(), ApiError> {
    let (namespace, name) = match *target {
        Target::Nodes(name) => (None, name),
        Target::Pods { namespace, name } => (namespace, name),
    };
    let attributes = crate::auth::rbac::Attributes {
        verb: if name.is_some() { "get" } else { "list" }.into(),
        api_group: GROUP.into(),
        resource: target.plural().into(),
        subresource: String::new(),
        name: name.unwrap_or_default().into(),
        namespace: namespace.unwrap_or_default().into(),
        path: String::new(),
    };
    crate::auth::rbac::authorize(&server.registry, user, &attributes)
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items})
}

fn with_type(object: &mut Value, kind: &str) {
    let mut typed = Map::new();
    typed.insert("kind".into(), json!(kind));
    typed.insert("apiVersion".into(), json!(API_VERSION));
    if let Value::Object(fields) = std::mem::take(object) {
        typed.extend(fields);
    }
    *object = Value::Object(typed);
}

fn metadata(object: &Value, now: &str) -> Value {
    let meta = &object["metadata"];
    let mut out = Map::new();
    out.insert("name".into(), meta["name"].clone());
    if let Some(ns) = meta.get("namespace") {
        out.insert("namespace".into(), ns.clone());
    }
    out.insert("creationTimestamp".into(), json!(now));
    if let Some(labels) = meta.get("labels").filter(|l| l.is_object()) {
        out.insert("labels".into(), labels.clone());
    }
    Value::Object(out)
}

fn usage_json(usage: &Usage) -> Value {
    json!({"cpu": cpu_quantity(usage.cpu_nano_cores), "memory": memory_quantity(usage.memory_bytes)})
}

fn node_object(node: &Value, metric: &NodeMetric, now: &str) -> Value {
    json!({
        "metadata": metadata(node, now),
        "timestamp": rfc3339(metric.timestamp),
        "window": go_duration(metric.window),
        "usage": usage_json(&metric.usage),
    })
}

fn pod_object(pod: &Value, metric: &PodMetric, now: &str) -> Value {
    let containers: Vec<Value> = metric
        .containers
        .iter()
        .map(|c| json!({"name": c.name, "usage": usage_json(&c.usage)}))
        .collect();
    json!({
        "metadata": metadata(pod, now),
        "timestamp": rfc3339(metric.timestamp),
        "window": go_duration(metric.window),
        "containers": containers,
    })
}

/// `metav1.Time` as JSON: RFC 3339, whole seconds, UTC.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A CPU rate as metrics-server writes it: `resource.NewScaledQuantity(nanocores, -9)`
/// in canonical form — `250m`, `1`, `1500m`, `123456n`, `12u`…
pub fn cpu_quantity(nano_cores: u64) -> String {
    if nano_cores == 0 {
        return "0".into();
    }
    let (mut mantissa, mut exponent) = (nano_cores as u128, -9i32);
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    // The exponent must be a multiple of three.
    let r = exponent.rem_euclid(3);
    mantissa *= 10u128.pow(r as u32);
    exponent -= r;
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{mantissa}{suffix}")
}

/// Bytes as metrics-server writes them (`BinarySI`): the largest power of 1024 that
/// divides the value (`1234Ki`, `2Mi`); below 1024, or not a multiple, plain bytes.
pub fn memory_quantity(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes;
    let mut power = 0;
    while value.is_multiple_of(1024) && power < 6 {
        value /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{value}{suffix}")
}

/// `time.Duration.String()`: `10s`, `10.012s`, `1m0.5s`, `250ms`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1u128)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / scale` with the fraction's trailing zeros cut.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = scale.to_string().len() - 1;
    let text = format!("{fraction:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

/// The OpenAPI v3 document of `metrics.k8s.io/v1beta1` (what `kubectl explain` reads).
pub fn openapi_v3() -> Value {
    let gvk = |kind: &str| json!([{"group": GROUP, "version": VERSION, "kind": kind}]);
    let op = |id: &str, action: &str, kind: &str| {
        json!({"operationId": id, "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": {"group": GROUP, "version": VERSION, "kind": kind},
               "responses": {"200": {"description": "OK"}}})
    };
    let usage = json!({"type": "object", "description": "The memory and CPU usage over the window (quantities).",
        "additionalProperties": {"type": "string"}});
    let meta = json!({"type": "object", "description": "Standard object's metadata."});
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::KUBE_VERSION},
        "paths": {
            "/apis/metrics.k8s.io/v1beta1/nodes": {"get": op("listMetricsV1beta1NodeMetrics", "list", "NodeMetrics")},
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}": {"get": op("readMetricsV1beta1NodeMetrics", "get", "NodeMetrics")},
            "/apis/metrics.k8s.io/v1beta1/pods": {"get": op("listMetricsV1beta1PodMetricsForAllNamespaces", "list", "PodMetrics")},
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods": {"get": op("listMetricsV1beta1NamespacedPodMetrics", "list", "PodMetrics")},
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}": {"get": op("readMetricsV1beta1NamespacedPodMetrics", "get", "PodMetrics")},
        },
        "components": {"schemas": {
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics": {
                "type": "object", "description": "NodeMetrics sets resource usage metrics of a node.",
                "required": ["timestamp", "window", "usage"],
                "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                    "timestamp": {"type": "string", "format": "date-time", "description": "The following fields define time interval from which metrics were collected from the interval [Timestamp-Window, Timestamp]."},
                    "window": {"type": "string"}, "usage": usage},
                "x-kubernetes-group-version-kind": gvk("NodeMetrics"),
            },
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics": {
                "type": "object", "description": "PodMetrics sets resource usage metrics of a pod.",
                "required": ["timestamp", "window", "containers"],
                "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta,
                    "timestamp": {"type": "string", "format": "date-time"}, "window": {"type": "string"},
                    "containers": {"type": "array", "description": "Metrics for all containers are collected within the same time window.",
                        "items": {"type": "object", "required": ["name", "usage"],
                            "properties": {"name": {"type": "string", "description": "Container name corresponding to the one from pod.spec.containers."}, "usage": usage}}}},
                "x-kubernetes-group-version-kind": gvk("PodMetrics"),
            },
        }},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_canonical_as_metrics_server_writes_them() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(1_000_000_000), "1");
        assert_eq!(cpu_quantity(1_500_000_000), "1500m");
        assert_eq!(cpu_quantity(123_456), "123456n");
        assert_eq!(cpu_quantity(12_000), "12u");
        assert_eq!(cpu_quantity(156_525_113), "156525113n");
        assert_eq!(cpu_quantity(120_000_000), "120m");
        assert_eq!(cpu_quantity(2_000_000_000_000), "2k");
        assert_eq!(memory_quantity(0), "0");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(memory_quantity(1234 * 1024), "1234Ki");
        assert_eq!(memory_quantity(2 * 1024 * 1024), "2Mi");
        assert_eq!(memory_quantity(1025), "1025");
        assert_eq!(memory_quantity(3 << 30), "3Gi");
    }

    #[test]
    fn tables_sum_a_pods_containers() {
        let list = json!({"kind": "PodMetricsList", "items": [{
            "metadata": {"name": "p", "namespace": "n"}, "window": "10s",
            "containers": [{"name": "a", "usage": {"cpu": "250m", "memory": "1Mi"}},
                           {"name": "b", "usage": {"cpu": "500000n", "memory": "1024Ki"}}]}]});
        let table = to_table(&list, "Metadata");
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["p", "250500u", "2Mi", "10s"])
        );
        assert_eq!(table["rows"][0]["object"]["metadata"]["namespace"], "n");
        assert_eq!(parse_cpu(&cpu_quantity(1_234_567)), 1_234_567);
        assert_eq!(parse_memory(&memory_quantity(3 << 30)), 3 << 30);
    }

    #[test]
    fn windows_are_go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(10_012)), "10.012s");
        assert_eq!(go_duration(Duration::from_millis(60_500)), "1m0.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn discovery_documents() {
        let list = resource_list();
        assert_eq!(list["groupVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(list["resources"][0]["kind"], "NodeMetrics");
        assert_eq!(list["resources"][1]["namespaced"], true);
        assert_eq!(api_group()["preferredVersion"]["version"], "v1beta1");
        let doc = openapi_v3();
        assert!(doc["paths"]["/apis/metrics.k8s.io/v1beta1/nodes"]["get"].is_object());
    }

    #[test]
    fn objects_carry_metrics_server_fields() {
        let now = "2025-01-01T00:00:10Z";
        let pod =
            json!({"metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {"a": "b"}}});
        let metric = PodMetric {
            namespace: "n".into(),
            name: "p".into(),
            uid: "u".into(),
            timestamp: "2025-01-01T00:00:09Z".parse().unwrap(),
            window: Duration::from_secs(10),
            containers: vec![ContainerMetric {
                name: "main".into(),
                usage: Usage {
                    cpu_nano_cores: 998_000_000,
                    memory_bytes: 1_400 * 1024,
                },
            }],
        };
        let mut object = pod_object(&pod, &metric, now);
        with_type(&mut object, "PodMetrics");
        assert_eq!(
            object,
            json!({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                   "metadata": {"name": "p", "namespace": "n", "creationTimestamp": now, "labels": {"a": "b"}},
                   "timestamp": "2025-01-01T00:00:09Z", "window": "10s",
                   "containers": [{"name": "main", "usage": {"cpu": "998m", "memory": "1400Ki"}}]})
        );
    }
}
