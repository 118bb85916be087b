//! kube-apiserver's request metrics, with its names, labels and buckets:
//! `apiserver_request_total`, `apiserver_request_duration_seconds`,
//! `apiserver_current_inflight_requests`, and `apiserver_storage_objects` computed at
//! scrape time.
//!
//! Only HTTP requests are counted, as kube-apiserver counts only what reaches its HTTP
//! handler chain: in-process [`Client`](crate::Client) calls stand for the loopback
//! client's requests, which sparkyard serves without HTTP. The counters are process-wide
//! (one API server per process).
//!
//! Labels follow `k8s.io/apiserver/pkg/endpoints/metrics`: `verb` is the HTTP method
//! upper-cased, with `GET` of a collection as `LIST`, watches as `WATCH` and a
//! server-side-apply `PATCH` as `APPLY`; `scope` is `resource` (a named object, or a
//! create), `namespace`, `cluster`, or empty for a non-resource path; `component` is
//! `apiserver` for resource requests. A non-resource request (discovery, OpenAPI,
//! `/healthz`, `/version`) has empty group/version/resource and its path as
//! `subresource`, as kube-apiserver reports it; paths below `/openapi/v3/` count as
//! `/openapi/v3`, anything unknown as `other`, so the label set stays bounded.
//!
//! The duration runs from the request's arrival to its response head — for a write that
//! includes waiting for durability; for a watch it is the time to start the stream (the
//! stream's lifetime is not observed). Watches are not in-flight requests (kube-apiserver
//! counts long-running requests separately).

use std::sync::atomic::AtomicI64;
use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::client::Client;
use crate::server::{parse_resource_path, Query};

/// kube-apiserver's `apiserver_request_duration_seconds` buckets.
pub const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub scope: String,
    pub component: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub scope: String,
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InflightLabels {
    pub request_kind: &'static str,
}

type DurationFamily = Family<DurationLabels, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
    inflight: Family<InflightLabels, Gauge<i64, AtomicI64>>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let requests = Family::<RequestLabels, Counter>::default();
    let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
    let inflight = Family::<InflightLabels, Gauge<i64, AtomicI64>>::default();
    for kind in ["readOnly", "mutating"] {
        let _ = inflight.get_or_create(&InflightLabels { request_kind: kind });
    }
    let mut registry = Registry::default();
    // `register` appends the final period; counters get `_total` when encoded.
    registry.register(
        "apiserver_request",
        "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code",
        requests.clone(),
    );
    registry.register(
        "apiserver_request_duration_seconds",
        "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component",
        durations.clone(),
    );
    registry.register(
        "apiserver_current_inflight_requests",
        "Maximal number of currently used inflight request limit of this apiserver per request kind in last second",
        inflight.clone(),
    );
    Metrics {
        registry,
        requests,
        durations,
        inflight,
    }
});

/// What a request is, in the metrics' terms.
struct Described {
    labels: DurationLabels,
    /// `Some(kind)` when it counts as in flight (`readOnly` / `mutating`).
    inflight: Option<&'static str>,
}

fn non_resource_path(path: &str) -> String {
    const FIXED: [&str; 12] = [
        "/api",
        "/apis",
        "/version",
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi/v2",
        "/openapi/v3",
        "/.well-known/openid-configuration",
        "/openid/v1/jwks",
        "/api/v1",
    ];
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    if FIXED.contains(&trimmed) {
        return trimmed.to_string();
    }
    if trimmed.starts_with("/openapi/v3/") {
        return "/openapi/v3".to_string();
    }
    if let Some(rest) = trimmed.strip_prefix("/apis/") {
        // API group discovery: `/apis/<group>` and `/apis/<group>/<version>`.
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() <= 2 && segments.iter().all(|s| is_dns_like(s)) {
            return trimmed.to_string();
        }
    }
    "other".to_string()
}

fn is_dns_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

fn describe(request: &Request) -> Described {
    let method = request.method();
    let uri = request.uri();
    let query = Query::parse(uri.query());
    let method_verb = match *method {
        Method::HEAD => "GET".to_string(),
        ref m => m.as_str().to_ascii_uppercase(),
    };
    let Ok(Some(path)) = parse_resource_path(uri.path()) else {
        let read_only = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        return Described {
            labels: DurationLabels {
                verb: method_verb,
                group: String::new(),
                version: String::new(),
                resource: String::new(),
                subresource: non_resource_path(uri.path()),
                scope: String::new(),
                component: String::new(),
            },
            inflight: Some(if read_only { "readOnly" } else { "mutating" }),
        };
    };
    let watch = path.legacy_watch || query.flag("watch");
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "WATCH".to_string(),
        Method::GET | Method::HEAD if path.name.is_none() => "LIST".to_string(),
        Method::PATCH if content_type.starts_with("application/apply-patch") => "APPLY".to_string(),
        _ => method_verb,
    };
    let scope = if path.name.is_some() || *method == Method::POST {
        "resource"
    } else if path.namespace.is_some() {
        "namespace"
    } else {
        "cluster"
    };
    // Long-running requests (watches, followed logs) are not in flight in kube's sense.
    let long_running = watch
        || (path.subresource.as_deref() == Some("log") && query.flag("follow"))
        || matches!(
            path.subresource.as_deref(),
            Some("exec" | "attach" | "portforward" | "proxy")
        );
    let read_only = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    Described {
        labels: DurationLabels {
            verb,
            group: path.info.group.to_string(),
            version: path.info.version.to_string(),
            resource: path.info.plural.to_string(),
            subresource: path.subresource.clone().unwrap_or_default(),
            scope: scope.to_string(),
            component: "apiserver".to_string(),
        },
        inflight: (!long_running).then_some(if read_only { "readOnly" } else { "mutating" }),
    }
}

/// Decrements the in-flight gauge when the request is done (or dropped).
struct InFlight(Option<&'static str>);

impl InFlight {
    fn enter(kind: Option<&'static str>) -> InFlight {
        if let Some(kind) = kind {
            METRICS
                .inflight
                .get_or_create(&InflightLabels { request_kind: kind })
                .inc();
        }
        InFlight(kind)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(kind) = self.0 {
            METRICS
                .inflight
                .get_or_create(&InflightLabels { request_kind: kind })
                .dec();
        }
    }
}

/// The middleware that counts and times every HTTP request (see [`crate::ApiServer::router`]).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let described = describe(&request);
    let _inflight = InFlight::enter(described.inflight);
    let response = next.run(request).await;
    record(&described.labels, response.status().as_u16(), started);
    response
}

fn record(labels: &DurationLabels, code: u16, started: Instant) {
    let l = labels.clone();
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            verb: l.verb,
            group: l.group,
            version: l.version,
            resource: l.resource,
            subresource: l.subresource,
            scope: l.scope,
            component: l.component,
            code: code.to_string(),
        })
        .inc();
    METRICS
        .durations
        .get_or_create(labels)
        .observe(started.elapsed().as_secs_f64());
}

/// `apiserver_storage_objects{resource}`: objects stored per resource, counted at scrape
/// time (`pods`, `nodes`; `<plural>.<group>` outside the core group, as kube reports).
#[derive(Clone)]
pub struct StorageObjects {
    client: Client,
}

impl std::fmt::Debug for StorageObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageObjects").finish()
    }
}

impl StorageObjects {
    pub fn new(client: Client) -> StorageObjects {
        StorageObjects { client }
    }
}

impl Collector for StorageObjects {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut counts: Vec<(String, i64)> = Vec::new();
        for info in crate::resources::all() {
            if info.create_only || !seen.insert((info.group, info.plural)) {
                continue;
            }
            let (items, _) = self.client.list(info.resource(), None);
            let name = if info.group.is_empty() {
                info.plural.to_string()
            } else {
                format!("{}.{}", info.plural, info.group)
            };
            counts.push((name, items.len() as i64));
        }
        counts.sort();
        let gauge = ConstGauge::new(0i64);
        let mut metric = encoder.encode_descriptor(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.",
            None,
            gauge.metric_type(),
        )?;
        for (resource, count) in counts {
            let labels = [("resource", resource)];
            ConstGauge::new(count).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The API server's metrics as OpenMetrics text (no `# EOF`): the request metrics of this
/// process, and `apiserver_storage_objects` when given the cluster's client.
pub fn metrics_text(client: Option<&Client>) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry);
    if let Some(client) = client {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StorageObjects::new(client.clone())));
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(method: Method, uri: &str, content_type: Option<&str>) -> Described {
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        describe(&b.body(axum::body::Body::empty()).unwrap())
    }

    #[test]
    fn verbs_and_scopes_as_kube_apiserver_reports_them() {
        let d = described(Method::GET, "/api/v1/namespaces/ns/pods", None);
        assert_eq!(
            (d.labels.verb.as_str(), d.labels.scope.as_str()),
            ("LIST", "namespace")
        );
        assert_eq!(d.inflight, Some("readOnly"));
        let d = described(Method::GET, "/api/v1/pods?watch=true", None);
        assert_eq!(
            (d.labels.verb.as_str(), d.labels.scope.as_str()),
            ("WATCH", "cluster")
        );
        assert_eq!(d.inflight, None);
        let d = described(Method::POST, "/api/v1/namespaces/ns/pods", None);
        assert_eq!(
            (d.labels.verb.as_str(), d.labels.scope.as_str()),
            ("POST", "resource")
        );
        assert_eq!(d.inflight, Some("mutating"));
        let d = described(
            Method::PATCH,
            "/api/v1/namespaces/ns/configmaps/c",
            Some("application/apply-patch+yaml"),
        );
        assert_eq!(d.labels.verb, "APPLY");
        let d = described(Method::GET, "/api/v1/namespaces/ns/pods/p/log", None);
        assert_eq!(
            (
                d.labels.verb.as_str(),
                d.labels.resource.as_str(),
                d.labels.subresource.as_str()
            ),
            ("GET", "pods", "log")
        );
        assert_eq!(d.labels.component, "apiserver");
        let d = described(Method::GET, "/apis/batch/v1", None);
        assert_eq!(d.labels.subresource, "/apis/batch/v1");
        assert_eq!(d.labels.component, "");
        let d = described(Method::GET, "/openapi/v3/apis/apps/v1?hash=1", None);
        assert_eq!(d.labels.subresource, "/openapi/v3");
        let d = described(Method::GET, "/something/odd/here", None);
        assert_eq!(d.labels.subresource, "other");
    }
}
