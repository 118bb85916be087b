//! `karpenter_*` Prometheus metrics, named and labelled as Karpenter v1 exports them on
//! its `:8080/metrics` (here: served by sparkyard, see `docs/autoscaling.md`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub nodepool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub nodepool: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub nodepool: String,
    pub resource_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub message_type: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub nodeclaims_created: Family<ReasonLabels, Counter>,
    pub nodeclaims_terminated: Family<ReasonLabels, Counter>,
    pub nodes_created: Family<PoolLabels, Counter>,
    pub nodes_terminated: Family<PoolLabels, Counter>,
    pub pods_startup_duration: Histogram,
    pub scheduling_duration: Histogram,
    pub disruption_decisions: Family<DecisionLabels, Counter>,
    pub interruption_messages: Family<MessageLabels, Counter>,
    pub nodepool_usage: Family<UsageLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub nodepool_limit: Family<UsageLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("karpenter");
        let m = Metrics {
            nodeclaims_created: Family::default(),
            nodeclaims_terminated: Family::default(),
            nodes_created: Family::default(),
            nodes_terminated: Family::default(),
            pods_startup_duration: duration_histogram(),
            scheduling_duration: duration_histogram(),
            disruption_decisions: Family::default(),
            interruption_messages: Family::default(),
            nodepool_usage: Family::default(),
            nodepool_limit: Family::default(),
            registry: Registry::default(),
        };
        // Counters get `_total` appended by the encoder.
        registry.register(
            "nodeclaims_created",
            "Number of nodeclaims created in total by Karpenter.",
            m.nodeclaims_created.clone(),
        );
        registry.register(
            "nodeclaims_terminated",
            "Number of nodeclaims terminated in total by Karpenter.",
            m.nodeclaims_terminated.clone(),
        );
        registry.register(
            "nodes_created",
            "Number of nodes created in total by Karpenter.",
            m.nodes_created.clone(),
        );
        registry.register(
            "nodes_terminated",
            "Number of nodes terminated in total by Karpenter.",
            m.nodes_terminated.clone(),
        );
        registry.register(
            "pods_startup_duration_seconds",
            "The time from pod creation until the pod is running.",
            m.pods_startup_duration.clone(),
        );
        registry.register("provisioner_scheduling_duration_seconds", "Duration of scheduling simulations used for deprovisioning and provisioning in seconds.", m.scheduling_duration.clone());
        registry.register(
            "disruption_decisions",
            "Number of disruption decisions performed.",
            m.disruption_decisions.clone(),
        );
        registry.register(
            "interruption_received_messages",
            "Count of messages received from the interruption source.",
            m.interruption_messages.clone(),
        );
        registry.register(
            "nodepools_usage",
            "The amount of resources that have been provisioned for a nodepool.",
            m.nodepool_usage.clone(),
        );
        registry.register(
            "nodepools_limit",
            "Limits specified on the nodepool that restrict the quantity of resources provisioned.",
            m.nodepool_limit.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The text exposition format (`GET /metrics`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub fn pool(name: &str) -> PoolLabels {
    PoolLabels {
        nodepool: name.to_string(),
    }
}

pub fn reason(pool: &str, reason: &str) -> ReasonLabels {
    ReasonLabels {
        nodepool: pool.to_string(),
        reason: reason.to_string(),
    }
}
