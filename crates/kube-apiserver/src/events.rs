//! Events (`v1 Event`) as components record them through the [`Client`] (client-go's
//! event recorder): what `kubectl describe` shows.

use serde_json::{json, Value};

use crate::client::Client;
use crate::registry::{now_rfc3339, Resource};

pub const EVENTS: Resource = Resource::new("", "events");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// Who records: `default-scheduler`, `kubelet` (with the node as host), `job-controller`…
#[derive(Debug, Clone)]
pub struct Source {
    pub component: &'static str,
    pub host: Option<String>,
}

/// The Event object for `involved` (pure; the name gets a random suffix like client-go's).
pub fn build(
    involved: &Value,
    kind: Kind,
    reason: &str,
    message: &str,
    source: &Source,
    field_path: Option<&str>,
) -> Value {
    let meta = &involved["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let now = now_rfc3339();
    let suffix = format!("{:016x}", rand::random::<u64>());
    let mut involved_object = json!({
        "apiVersion": involved["apiVersion"].as_str().unwrap_or("v1"),
        "kind": involved["kind"].as_str().unwrap_or(""),
        "name": name,
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(ns) = meta["namespace"].as_str() {
        involved_object["namespace"] = json!(ns);
    }
    if let Some(path) = field_path {
        involved_object["fieldPath"] = json!(path);
    }
    let mut source_json = json!({"component": source.component});
    if let Some(host) = &source.host {
        source_json["host"] = json!(host);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{suffix}")},
        "involvedObject": involved_object,
        "reason": reason,
        "message": message,
        "source": source_json,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": match kind { Kind::Normal => "Normal", Kind::Warning => "Warning" },
        "eventTime": null,
        "reportingComponent": source.component,
        "reportingInstance": source.host.clone().unwrap_or_default(),
    })
}

/// Records an event; failures are logged, never fatal (events are best effort).
pub fn record(
    client: &Client,
    involved: &Value,
    kind: Kind,
    reason: &str,
    message: &str,
    source: &Source,
) {
    record_for_field(client, involved, kind, reason, message, source, None)
}

pub fn record_for_field(
    client: &Client,
    involved: &Value,
    kind: Kind,
    reason: &str,
    message: &str,
    source: &Source,
    field_path: Option<&str>,
) {
    let event = build(involved, kind, reason, message, source, field_path);
    let namespace = involved["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    if let Err(e) = client.create(EVENTS, namespace, event) {
        tracing::debug!(error = %e, reason, "cannot record event");
    }
}
