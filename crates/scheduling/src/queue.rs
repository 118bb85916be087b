//! Which pending pod goes first, and which feasible node it gets.
//!
//! **Queue order** is kube-scheduler's `PrioritySort`: higher `spec.priority` first, then
//! the earlier pod. kube-scheduler's "earlier" is when the pod entered its queue; ours is
//! `metadata.creationTimestamp` (what the controller has after a restart), then
//! namespace/name so the order is total and deterministic.
//!
//! **Node choice** scores each feasible node with kube-scheduler's default resource
//! scorers, both weight 1, on a 0–100 scale each:
//! - `LeastAllocated` — the mean over cpu and memory of `(allocatable − requested) × 100 /
//!   allocatable`, where requested includes the incoming pod and counts 100m / 200Mi for
//!   containers that request nothing (so request-less pods spread);
//! - `BalancedAllocation` — `(1 − |cpu fraction − memory fraction| / 2) × 100`, the
//!   two-resource standard deviation, on actual requests.
//!
//! Before the score, a node with fewer `PreferNoSchedule` taints the pod does not tolerate
//! always wins (kube weighs `TaintToleration` 3 against 1+1; making it decisive keeps the
//! rule simple and the intent — avoid such nodes — intact). Ties go to the smaller node
//! name instead of kube-scheduler's random pick, so runs are reproducible. Spreading and
//! preferred affinities are not scored.

use std::cmp::Ordering;

use super::filter::{untolerated_prefer_no_schedule, NodeUsage};
use super::node::NodeInfo;
use super::requirements::PodRequirements;

/// `PrioritySort.Less` as an ordering: `Less` means `a` is scheduled before `b`.
pub fn queue_order(a: &PodRequirements, b: &PodRequirements) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (a.creation_timestamp, b.creation_timestamp) {
            (Some(x), Some(y)) => x.cmp(&y),
            // A pod without a timestamp has not been stored yet: it is the newest.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
}

/// Sorts pending pods into scheduling order.
pub fn sort_pending<P: std::borrow::Borrow<PodRequirements>>(pods: &mut [P]) {
    pods.sort_by(|a, b| queue_order(a.borrow(), b.borrow()));
}

/// A feasible node's desirability; larger is better (compare with `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeScore {
    /// `PreferNoSchedule` taints the pod does not tolerate (fewer is better).
    pub untolerated_soft_taints: usize,
    /// LeastAllocated + BalancedAllocation, 0–200.
    pub points: i64,
}

impl Ord for NodeScore {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .untolerated_soft_taints
            .cmp(&self.untolerated_soft_taints)
            .then(self.points.cmp(&other.points))
    }
}

impl PartialOrd for NodeScore {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn least_allocated(requested: i64, allocatable: i64) -> i64 {
    if allocatable <= 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * 100 / allocatable
}

fn fraction(requested: i64, allocatable: i64) -> f64 {
    if allocatable <= 0 {
        return 1.0;
    }
    (requested as f64 / allocatable as f64).min(1.0)
}

/// Scores a node that passed the filter for this pod.
pub fn score_node(pod: &PodRequirements, node: &NodeInfo, usage: &NodeUsage) -> NodeScore {
    let a = &node.allocatable;
    let least = (least_allocated(
        usage.non_zero_milli_cpu + pod.non_zero_milli_cpu,
        a.milli_cpu,
    ) + least_allocated(usage.non_zero_memory + pod.non_zero_memory, a.memory))
        / 2;
    let cpu = fraction(
        usage.requested.milli_cpu + pod.requests.milli_cpu,
        a.milli_cpu,
    );
    let memory = fraction(usage.requested.memory + pod.requests.memory, a.memory);
    let balanced = ((1.0 - (cpu - memory).abs() / 2.0) * 100.0) as i64;
    let untolerated_soft_taints = if node.taints.is_empty() {
        0
    } else {
        untolerated_prefer_no_schedule(&node.taints, &pod.placement.tolerations)
    };
    NodeScore {
        untolerated_soft_taints,
        points: least + balanced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{NodeConfig, Taint, TaintEffect};
    use serde_json::json;

    fn pod(name: &str, priority: i64, created: &str) -> PodRequirements {
        PodRequirements::from_pod(&json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": created},
            "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn priority_then_age_then_name() {
        let mut pods = vec![
            pod("low-old", 100, "2025-01-01T00:00:00Z"),
            pod("high-new", 400, "2025-01-01T00:05:00Z"),
            pod("high-old", 400, "2025-01-01T00:01:00Z"),
            pod("mid", 200, "2025-01-01T00:00:00Z"),
            pod("high-old-b", 400, "2025-01-01T00:01:00Z"),
        ];
        sort_pending(&mut pods);
        let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["high-old", "high-old-b", "high-new", "mid", "low-old"]
        );
    }

    #[test]
    fn emptier_and_balanced_nodes_score_higher() {
        let node = NodeConfig::default().node_info().unwrap();
        let p = pod("p", 0, "2025-01-01T00:00:00Z");
        let empty = score_node(&p, &node, &NodeUsage::default());
        let busy = score_node(&p, &node, &NodeUsage::from_pods([&p, &p, &p]));
        assert!(empty > busy);
        let mut tainted = node.clone();
        tainted.taints.push(Taint {
            key: "soft".into(),
            value: String::new(),
            effect: TaintEffect::PreferNoSchedule,
        });
        assert!(
            busy > score_node(&p, &tainted, &NodeUsage::default()),
            "a soft taint outweighs load"
        );
    }
}
