//! The Events tab: core/v1 Events, newest first, as `kubectl events` lists them, each
//! linked to the object it is about.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::format::{self, age};
use super::{kube_note, NamespaceQuery, Reader};
use crate::pages::{self, page, session_or_redirect, text};
use crate::views::Nav;
use crate::Console;

pub(super) struct EventRow {
    pub last_seen: String,
    pub last_seen_at: String,
    pub kind: String,
    pub reason: String,
    pub object: String,
    pub object_href: String,
    pub message: String,
    pub count: String,
    pub source: String,
    pub namespace: String,
}

#[derive(Template)]
#[template(path = "eks_events.html")]
struct EventsPage {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    namespace: String,
    rows: Vec<EventRow>,
    error: String,
}

/// When an event was last seen: its series' last observation, `lastTimestamp`,
/// `eventTime`, or its creation (the order `kubectl events` sorts by).
fn last_seen(e: &Value) -> Option<DateTime<Utc>> {
    [
        "/series/lastObservedTime",
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| pages::timestamp(e, p))
}

/// Events as rows, newest first.
pub(super) fn event_rows(events: &[Value], now: DateTime<Utc>) -> Vec<EventRow> {
    let mut sorted: Vec<(Option<DateTime<Utc>>, &Value)> =
        events.iter().map(|e| (last_seen(e), e)).collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.0));
    sorted
        .into_iter()
        .map(|(seen, e)| {
            let o = &e["involvedObject"];
            let kind = text(o, "/kind");
            let name = text(o, "/name");
            let valid = format::valid_dns_subdomain(&name)
                && !kind.is_empty()
                && kind.bytes().all(|b| b.is_ascii_alphanumeric());
            let count = match e.pointer("/series/count").or_else(|| e.get("count")) {
                Some(Value::Number(n)) => n.to_string(),
                _ => "1".into(),
            };
            let source = [text(e, "/reportingComponent"), text(e, "/source/component")]
                .into_iter()
                .find(|s| !s.is_empty())
                .map(|c| {
                    let host = text(e, "/source/host");
                    if host.is_empty() {
                        c
                    } else {
                        format!("{c}, {host}")
                    }
                })
                .unwrap_or_default();
            EventRow {
                last_seen: age(seen, now),
                last_seen_at: pages::shown_time(seen),
                kind: pages::or_dash(text(e, "/type")),
                reason: pages::or_dash(text(e, "/reason")),
                object: format!("{}/{name}", kind.to_ascii_lowercase()),
                object_href: if valid {
                    format::object_href(
                        &text(o, "/apiVersion"),
                        &kind,
                        &text(o, "/namespace"),
                        &name,
                    )
                } else {
                    String::new()
                },
                message: text(e, "/message"),
                count,
                source: pages::or_dash(source),
                namespace: text(e, "/metadata/namespace"),
            }
        })
        .collect()
}

pub(super) async fn page_handler(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(q): Query<NamespaceQuery>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    let (namespace, mut error) = match q.namespace() {
        Ok(ns) => (ns, String::new()),
        Err(e) => (String::new(), e),
    };
    let path = if namespace.is_empty() {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{namespace}/events")
    };
    let rows = match reader.kube_list(&path).await {
        Ok(events) => event_rows(&events, Utc::now()),
        Err(e) => {
            error = if namespace.is_empty() {
                kube_note("list events in all namespaces", &e)
            } else {
                kube_note(&format!("list events in namespace {namespace}"), &e)
            };
            if e.denied() && namespace.is_empty() {
                error.push_str(" Enter a namespace you may read.");
            }
            Vec::new()
        }
    };
    page(
        StatusCode::OK,
        &EventsPage {
            nav: reader.nav(),
            title: "EKS · Events".into(),
            tab: "events",
            cluster_name: reader.cluster_name().to_string(),
            namespace,
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
    fn events_sort_newest_first_and_link_their_objects() {
        let events = vec![
            json!({"metadata": {"namespace": "emr"}, "type": "Normal", "reason": "Scheduled",
                   "lastTimestamp": "2026-01-01T00:00:00Z", "count": 1,
                   "involvedObject": {"kind": "Pod", "name": "driver", "namespace": "emr", "apiVersion": "v1"},
                   "source": {"component": "default-scheduler"}}),
            json!({"metadata": {"namespace": "", "creationTimestamp": "2026-01-01T00:00:05Z"},
                   "type": "Warning", "reason": "NodeNotReady",
                   "eventTime": "2026-01-01T00:00:10Z", "series": {"count": 3, "lastObservedTime": "2026-01-01T00:01:00Z"},
                   "reportingComponent": "karpenter",
                   "involvedObject": {"kind": "NodeClaim", "name": "emr-x", "apiVersion": "karpenter.sh/v1"}}),
        ];
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:02:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let rows = event_rows(&events, now);
        assert_eq!(rows[0].reason, "NodeNotReady");
        assert_eq!(rows[0].count, "3");
        assert_eq!(rows[0].last_seen, "60s");
        assert_eq!(rows[0].source, "karpenter");
        assert_eq!(
            rows[0].object_href,
            "/eks/resources/karpenter.sh/v1/nodeclaims/_/emr-x"
        );
        assert_eq!(rows[1].object, "pod/driver");
        assert_eq!(
            rows[1].object_href,
            "/eks/resources/core/v1/pods/emr/driver"
        );
        assert_eq!(rows[1].source, "default-scheduler");
    }
}
