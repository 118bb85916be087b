//! The agent's loop: every interval, read the cluster (nodes, pods, services, the Metrics
//! API) through kube-rs, compute the records, and write them as EMF events to the
//! performance log group, one stream per node — exactly what the CloudWatch agent's
//! DaemonSet does, from one process. CloudWatch (embedded or real) extracts the metrics.
//!
//! It is a plain Kubernetes and AWS client: the same loop runs against the embedded
//! cluster and sparkyard's endpoint, or against a real cluster (with metrics-server) and
//! real CloudWatch Logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, ListParams};
use serde_json::Value;
use sparkyard_logs::aws::cloudwatch::Logs;
use sparkyard_logs::batch::{batches, Event};

use crate::compute::{compute, Record};
use crate::emf;
use crate::inputs::{metrics_items, NodeInput, NodeMetrics, PodInput, PodMetrics};

/// What the agent needs to run.
pub struct AgentSettings {
    /// The `ClusterName` dimension and the log groups' cluster segment.
    pub cluster_name: String,
    /// How often it collects (Container Insights' default: 60 s).
    pub interval: Duration,
    pub kube: kube::Client,
    /// CloudWatch Logs, with the credentials the agent publishes with.
    pub logs: Logs,
}

/// The latest collection, for the `sparkyard_ci_*` gauges.
#[derive(Clone, Default)]
pub struct Latest {
    records: Arc<Mutex<Vec<Record>>>,
}

impl Latest {
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

/// Starts the agent; returns a view of its latest collection.
pub fn spawn(settings: AgentSettings) -> Latest {
    let latest = Latest::default();
    let out = latest.clone();
    tokio::spawn(async move {
        let mut restarts = HashMap::new();
        let mut streams = std::collections::HashSet::new();
        let mut tick = tokio::time::interval(settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match collect(&settings, &restarts).await {
                Ok(collection) => {
                    restarts = collection.restarts;
                    if let Err(e) = publish(&settings, &collection.records, &mut streams).await {
                        tracing::warn!(error = %e, "Container Insights: cannot publish");
                    }
                    *out.records.lock().unwrap() = collection.records;
                }
                Err(e) => tracing::warn!(error = %e, "Container Insights: cannot collect"),
            }
        }
    });
    latest
}

/// One collection: reads the cluster and computes the records.
pub async fn collect(
    settings: &AgentSettings,
    restarts: &HashMap<String, i64>,
) -> anyhow::Result<crate::compute::Collection> {
    let client = &settings.kube;
    let lp = ListParams::default();
    let nodes = Api::<Node>::all(client.clone()).list(&lp).await?.items;
    let pods = Api::<Pod>::all(client.clone()).list(&lp).await?.items;
    let services = Api::<Service>::all(client.clone()).list(&lp).await?.items;
    let node_metrics: Vec<NodeMetrics> =
        metrics_items(&metrics_list(client, "/apis/metrics.k8s.io/v1beta1/nodes").await);
    let pod_metrics: Vec<PodMetrics> =
        metrics_items(&metrics_list(client, "/apis/metrics.k8s.io/v1beta1/pods").await);
    let node_usage: HashMap<&str, _> = node_metrics
        .iter()
        .map(|m| (m.metadata.name.as_str(), m.usage.usage()))
        .collect();
    let pod_usage: HashMap<(&str, &str), &PodMetrics> = pod_metrics
        .iter()
        .map(|m| {
            (
                (
                    m.metadata.namespace.as_deref().unwrap_or(""),
                    m.metadata.name.as_str(),
                ),
                m,
            )
        })
        .collect();
    let nodes: Vec<NodeInput> = nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.as_deref().unwrap_or("");
            NodeInput::from_node(n, node_usage.get(name).copied())
        })
        .collect();
    let pods: Vec<PodInput> = pods
        .iter()
        .map(|p| {
            let key = (
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or(""),
            );
            PodInput::from_pod(p, &services, pod_usage.get(&key).copied())
        })
        .collect();
    Ok(compute(&settings.cluster_name, &nodes, &pods, restarts))
}

/// A Metrics API list, or nothing when the API is not served (no metrics-server): the
/// request-based metrics still go out.
async fn metrics_list(client: &kube::Client, path: &str) -> Value {
    let request = match http::Request::get(path).body(Vec::new()) {
        Ok(r) => r,
        Err(_) => return Value::Null,
    };
    match client.request::<Value>(request).await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, path, "Metrics API not available");
            Value::Null
        }
    }
}

/// Writes the records as EMF events, one stream per node.
async fn publish(
    settings: &AgentSettings,
    records: &[Record],
    streams: &mut std::collections::HashSet<String>,
) -> anyhow::Result<()> {
    let group = emf::performance_log_group(&settings.cluster_name);
    let now = chrono::Utc::now().timestamp_millis();
    let mut by_stream: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for r in records {
        if r.node.is_empty() {
            continue;
        }
        by_stream.entry(r.node.as_str()).or_default().push(Event {
            timestamp: now,
            message: emf::event(r, now).to_string(),
            end_offset: 0,
        });
    }
    for (stream, events) in by_stream {
        if !streams.contains(stream) {
            settings.logs.ensure_stream(&group, stream).await?;
            streams.insert(stream.to_string());
        }
        for batch in batches(events) {
            settings.logs.put_events(&group, stream, &batch).await?;
        }
    }
    Ok(())
}
