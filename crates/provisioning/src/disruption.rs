//! Disruption decisions (reference §4), pure: given the nodes Karpenter manages, their
//! pods, the pools and the time, which nodes to take away and what to launch instead.
//!
//! The live controller runs the methods in Karpenter's order — [`expired`] (forceful,
//! no budget), [`emptiness`], [`drifted`], [`consolidation`] — and executes the first
//! command it gets (taint, pre-spin the replacement, delete).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sparkyard_scheduling::filter::NodeUsage;
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{NodeInfo, PodRequirements};

use super::offerings::InstanceOption;
use super::pods::owned_by;
use super::pool::{pool_hash, ConsolidationPolicy, DisruptionReason, NodePoolSpec, PoolApi};
use super::requirements::{Requirements, ValueSet, LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE};
use super::schedule::{launch_choice, schedule, NewClaim, ScheduleInput, StateNode};

pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// v1alpha5 pod annotation.
pub const DO_NOT_EVICT: &str = "karpenter.sh/do-not-evict";
/// v1alpha5 node annotation.
pub const DO_NOT_CONSOLIDATE: &str = "karpenter.sh/do-not-consolidate";

/// Spot-to-spot single-node replacement needs this many cheaper types (Karpenter's
/// guard against churning onto the one cheapest, most-interrupted pool).
pub const MIN_SPOT_TO_SPOT_TYPES: usize = 15;

/// A pod bound to a managed node.
#[derive(Debug, Clone)]
pub struct PodOnNode {
    pub pod: PodRequirements,
    pub daemon: bool,
    /// Owned by a Node (static/mirror pod).
    pub mirror: bool,
    pub statefulset: bool,
    /// `karpenter.sh/do-not-disrupt: "true"` (or v1alpha5 `do-not-evict`).
    pub do_not_disrupt: bool,
    /// A PodDisruptionBudget forbids evicting it now (the caller evaluates PDBs).
    pub pdb_blocked: bool,
}

impl PodOnNode {
    pub fn from_pod(pod: &Value, pdb_blocked: bool) -> Option<PodOnNode> {
        let annotation = |k: &str| {
            pod.pointer("/metadata/annotations")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                == Some("true")
        };
        Some(PodOnNode {
            pod: PodRequirements::from_pod(pod).ok()?,
            daemon: owned_by(pod, "DaemonSet"),
            mirror: owned_by(pod, "Node"),
            statefulset: owned_by(pod, "StatefulSet"),
            do_not_disrupt: annotation(DO_NOT_DISRUPT) || annotation(DO_NOT_EVICT),
            pdb_blocked,
        })
    }

    /// A pod that would need a new home: active, not a daemon or mirror pod (a
    /// terminating StatefulSet pod still counts: its replacement keeps the name).
    pub fn reschedulable(&self) -> bool {
        !self.daemon
            && !self.mirror
            && !self.pod.terminal
            && (self.pod.deletion_timestamp.is_none() || self.statefulset)
    }

    /// Holds resources on the node (everything not terminal).
    fn active(&self) -> bool {
        !self.pod.terminal
    }
}

/// A node Karpenter launched, with what disruption needs to know of it.
#[derive(Debug, Clone)]
pub struct NodeState {
    pub info: NodeInfo,
    pub nodeclaim: String,
    pub pool: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour of its offering.
    pub price: f64,
    pub pods: Vec<PodOnNode>,
    pub created: DateTime<Utc>,
    /// `Initialized` condition time; `None` while the node is not initialized.
    pub initialized: Option<DateTime<Utc>>,
    /// `status.lastPodEventTime` of the NodeClaim.
    pub last_pod_event: Option<DateTime<Utc>>,
    pub annotations: BTreeMap<String, String>,
    pub deleting: bool,
    pub ready: bool,
    /// Nominated for a pending pod by the last provisioning pass.
    pub nominated: bool,
    /// The NodeClaim's `karpenter.sh/nodepool-hash`.
    pub pool_hash: Option<String>,
}

impl NodeState {
    fn usage(&self) -> NodeUsage {
        NodeUsage::from_pods(self.pods.iter().filter(|p| p.active()).map(|p| &p.pod))
    }

    fn state_node(&self) -> StateNode {
        StateNode {
            info: self.info.clone(),
            usage: self.usage(),
            initialized: self.initialized.is_some(),
            deleting: self.deleting,
        }
    }

    fn reschedulable_pods(&self) -> impl Iterator<Item = &PodOnNode> {
        self.pods.iter().filter(|p| p.reschedulable())
    }
}

#[derive(Debug, Clone)]
pub struct DisruptionInput<'a> {
    pub nodes: &'a [NodeState],
    pub pools: &'a [NodePoolSpec],
    /// Other nodes pods can move to (node groups, unmanaged nodes).
    pub other_nodes: &'a [StateNode],
    pub pending: &'a [PodRequirements],
    pub daemonsets: &'a [PodRequirements],
    pub instance_types: &'a [InstanceOption],
    pub now: DateTime<Utc>,
    /// The `SpotToSpotConsolidation` feature gate.
    pub spot_to_spot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delete,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub reason: DisruptionReason,
    pub decision: Decision,
    /// Node names.
    pub nodes: Vec<String>,
    pub replacement: Option<NewClaim>,
    /// Reschedulable pods on the candidates.
    pub pod_count: usize,
}

fn pool_of<'a>(input: &'a DisruptionInput, node: &NodeState) -> Option<&'a NodePoolSpec> {
    input.pools.iter().find(|p| p.name == node.pool)
}

/// Why the node may not be disrupted voluntarily now (`None`: it is a candidate),
/// worded like Karpenter's `DisruptionBlocked` events.
pub fn blocked(node: &NodeState, pool: Option<&NodePoolSpec>) -> Option<String> {
    if node.initialized.is_none() {
        return Some("node is not initialized".into());
    }
    if node.deleting {
        return Some("node is deleting or marked for deletion".into());
    }
    if node.nominated {
        return Some("node is nominated for a pending pod".into());
    }
    let Some(pool) = pool else {
        return Some(format!("nodepool {:?} not found", node.pool));
    };
    let node_keys: &[&str] = match pool.api {
        PoolApi::V1 => &[DO_NOT_DISRUPT],
        PoolApi::V1Alpha5 => &[DO_NOT_DISRUPT, DO_NOT_CONSOLIDATE],
    };
    for k in node_keys {
        if node.annotations.get(*k).map(String::as_str) == Some("true") {
            return Some(format!(
                "disruption is blocked through the {k:?} annotation"
            ));
        }
    }
    for p in node.pods.iter().filter(|p| p.active()) {
        let name = format!("{}/{}", p.pod.namespace, p.pod.name);
        if p.do_not_disrupt {
            return Some(format!(
                "pod {name:?} has \"karpenter.sh/do-not-disrupt\" annotation"
            ));
        }
        if p.pdb_blocked {
            return Some(format!("pdb prevents pod evictions (pod {name:?})"));
        }
    }
    None
}

/// How many more of `pool`'s nodes may be disrupted for `reason` now: the minimum over
/// its active budgets that apply to the reason of `ceil(total × pct)` or N, less the
/// nodes already deleting and those NotReady.
pub fn allowed_disruptions(
    pool: &NodePoolSpec,
    nodes: &[NodeState],
    reason: DisruptionReason,
) -> usize {
    let mine: Vec<&NodeState> = nodes.iter().filter(|n| n.pool == pool.name).collect();
    let total = mine.len();
    let busy = mine.iter().filter(|n| n.deleting || !n.ready).count();
    let limit = pool
        .budgets
        .iter()
        .filter(|b| b.active && (b.reasons.is_empty() || b.reasons.contains(&reason)))
        .map(|b| b.allowed(total))
        .min()
        .unwrap_or(total);
    limit.saturating_sub(busy)
}

/// `Consolidatable`: `consolidateAfter` has passed since the last pod event (or since
/// the node initialized, if no pod ever came or went).
pub fn consolidatable(node: &NodeState, pool: &NodePoolSpec, now: DateTime<Utc>) -> bool {
    let Some(after) = pool.consolidate_after else {
        return false;
    };
    let Some(since) = node.last_pod_event.or(node.initialized) else {
        return false;
    };
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(since) >= after
}

/// Candidates for `reason`, per pool capped by its budget, in a stable order.
fn within_budgets<'a>(
    input: &'a DisruptionInput,
    reason: DisruptionReason,
    mut pick: Vec<&'a NodeState>,
) -> Vec<&'a NodeState> {
    pick.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let mut left: BTreeMap<&str, usize> = input
        .pools
        .iter()
        .map(|p| (p.name.as_str(), allowed_disruptions(p, input.nodes, reason)))
        .collect();
    pick.into_iter()
        .filter(|n| match left.get_mut(n.pool.as_str()) {
            Some(k) if *k > 0 => {
                *k -= 1;
                true
            }
            _ => false,
        })
        .collect()
}

/// Empty nodes to delete (both consolidation policies): candidates with no reschedulable
/// pod whose `consolidateAfter` has passed, within the pools' `Empty` budgets.
pub fn emptiness(input: &DisruptionInput) -> Vec<String> {
    let empty: Vec<&NodeState> = input
        .nodes
        .iter()
        .filter(|n| {
            let pool = pool_of(input, n);
            blocked(n, pool).is_none()
                && pool.is_some_and(|p| consolidatable(n, p, input.now))
                && n.reschedulable_pods().next().is_none()
        })
        .collect();
    within_budgets(input, DisruptionReason::Empty, empty)
        .into_iter()
        .map(|n| n.info.name.clone())
        .collect()
}

/// Nodes past `expireAfter`: deleted forcefully, no budget, no candidate rules.
pub fn expired(input: &DisruptionInput) -> Vec<String> {
    input
        .nodes
        .iter()
        .filter(|n| !n.deleting)
        .filter(|n| {
            pool_of(input, n)
                .and_then(|p| p.expire_after)
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .is_some_and(|d| input.now.signed_duration_since(n.created) >= d)
        })
        .map(|n| n.info.name.clone())
        .collect()
}

/// Whether the node drifted from its pool: the template hash differs, or the pool's
/// requirements no longer admit the node's labels.
pub fn is_drifted(node: &NodeState, pool: &NodePoolSpec) -> bool {
    if node
        .pool_hash
        .as_deref()
        .is_some_and(|h| h != pool_hash(pool))
    {
        return true;
    }
    let labels = Requirements::from_labels(
        node.info
            .labels
            .iter()
            .filter(|(k, _)| *k != pool.pool_label()),
    );
    Requirements::from_list(&pool.requirements)
        .compatible(&labels)
        .is_err()
        && Requirements::from_list(&pool.requirements)
            .intersects(&labels)
            .is_err()
}

/// Drifted candidates within the pools' `Drifted` budgets (each is replaced, pre-spun).
pub fn drifted(input: &DisruptionInput) -> Vec<String> {
    let drifted: Vec<&NodeState> = input
        .nodes
        .iter()
        .filter(|n| {
            let pool = pool_of(input, n);
            blocked(n, pool).is_none() && pool.is_some_and(|p| is_drifted(n, p))
        })
        .collect();
    within_budgets(input, DisruptionReason::Drifted, drifted)
        .into_iter()
        .map(|n| n.info.name.clone())
        .collect()
}

/// Single-node consolidation (WhenEmptyOrUnderutilized): for each candidate, fewest
/// pods first, simulate its pods plus the pending ones on the cluster without it. All
/// placed on existing capacity → **delete**; placed with exactly one new claim whose
/// options include types strictly cheaper than the node → **replace** (spot pinned when
/// both capacity types are allowed; spot→spot only with the feature gate and at least 15
/// cheaper types). The first candidate that works is the command.
pub fn consolidation(input: &DisruptionInput) -> Option<Command> {
    let mut candidates: Vec<&NodeState> = input
        .nodes
        .iter()
        .filter(|n| {
            let Some(pool) = pool_of(input, n) else {
                return false;
            };
            pool.consolidation_policy == ConsolidationPolicy::WhenEmptyOrUnderutilized
                && blocked(n, Some(pool)).is_none()
                && consolidatable(n, pool, input.now)
                && n.reschedulable_pods().next().is_some()
                && allowed_disruptions(pool, input.nodes, DisruptionReason::Underutilized) > 0
        })
        .collect();
    // Disruption cost: fewest pods first, then the most expensive node, then name.
    candidates.sort_by(|a, b| {
        a.reschedulable_pods()
            .count()
            .cmp(&b.reschedulable_pods().count())
            .then(b.price.total_cmp(&a.price))
            .then_with(|| a.info.name.cmp(&b.info.name))
    });
    for c in candidates {
        if let Some(cmd) = try_consolidate(input, c) {
            return Some(cmd);
        }
    }
    None
}

fn try_consolidate(input: &DisruptionInput, candidate: &NodeState) -> Option<Command> {
    let mut nodes: Vec<StateNode> = input
        .nodes
        .iter()
        .filter(|n| n.info.name != candidate.info.name && !n.deleting)
        .map(NodeState::state_node)
        .collect();
    nodes.extend(input.other_nodes.iter().cloned());
    let moving: Vec<PodRequirements> = candidate
        .reschedulable_pods()
        .map(|p| p.pod.clone())
        .collect();
    let count = moving.len();
    let mut pods = moving;
    pods.extend(input.pending.iter().cloned());
    let result = schedule(&ScheduleInput {
        pools: input.pools,
        nodes: &nodes,
        pods: &pods,
        daemonsets: input.daemonsets,
        instance_types: input.instance_types,
        right_size: false,
    });
    if result.errors.iter().any(|e| e.pod < count) {
        return None;
    }
    // Only claims that hold the candidate's pods matter; pending pods' own claims are
    // the provisioner's business.
    let needed: Vec<&NewClaim> = result
        .new_claims
        .iter()
        .filter(|c| c.pods.iter().any(|&p| p < count))
        .collect();
    let command = |decision, replacement| Command {
        reason: DisruptionReason::Underutilized,
        decision,
        nodes: vec![candidate.info.name.clone()],
        replacement,
        pod_count: count,
    };
    match needed.as_slice() {
        [] => Some(command(Decision::Delete, None)),
        [claim] => cheaper_replacement(input, candidate, claim)
            .map(|r| command(Decision::Replace, Some(r))),
        _ => None,
    }
}

fn cheaper_replacement(
    input: &DisruptionInput,
    candidate: &NodeState,
    claim: &NewClaim,
) -> Option<NewClaim> {
    let types = input.instance_types;
    let mut reqs = Requirements::from_list(&claim.requirements);
    let spot_ok = reqs.allows(LABEL_CAPACITY_TYPE, "spot");
    if spot_ok && reqs.allows(LABEL_CAPACITY_TYPE, "on-demand") {
        reqs.add(LABEL_CAPACITY_TYPE, ValueSet::only(["spot"]));
    }
    let options: Vec<usize> = claim
        .instance_types
        .iter()
        .filter_map(|name| types.iter().position(|t| &t.instance_type.name == name))
        .filter(|&i| {
            types[i]
                .cheapest(&reqs, None)
                .is_some_and(|o| o.price < candidate.price)
        })
        .collect();
    let launch = launch_choice(types, &options, &reqs)?;
    let spot_to_spot =
        candidate.capacity_type == CapacityType::Spot && launch.capacity_type == CapacityType::Spot;
    if spot_to_spot && (!input.spot_to_spot || options.len() < MIN_SPOT_TO_SPOT_TYPES) {
        return None;
    }
    let names: Vec<String> = options
        .iter()
        .map(|&i| types[i].instance_type.name.clone())
        .collect();
    reqs.add(LABEL_INSTANCE_TYPE, ValueSet::only(names.iter().cloned()));
    Some(NewClaim {
        requirements: reqs.to_list(),
        instance_types: names,
        launch: Some(launch),
        ..claim.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Budget;
    use crate::{instance_options, Operator, Requirement};
    use serde_json::json;
    use sparkyard_scheduling::NodeConfig;
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pod(name: &str, cpu: &str, extra: Value) -> PodOnNode {
        let mut p = json!({"metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p["metadata"][k] = v;
            }
        }
        PodOnNode::from_pod(&p, false).unwrap()
    }

    fn node(name: &str, it: &str, ct: CapacityType, pods: Vec<PodOnNode>) -> NodeState {
        let mut cfg = NodeConfig {
            name: name.into(),
            nodegroup: None,
            ..NodeConfig::default()
        };
        let t_ = sparkyard_instance_types::get(it).unwrap();
        t_.apply_to(&mut cfg);
        let mut info = cfg.node_info().unwrap();
        info.labels
            .insert("karpenter.sh/nodepool".into(), "default".into());
        info.labels
            .insert("karpenter.sh/capacity-type".into(), ct.karpenter().into());
        NodeState {
            info,
            nodeclaim: format!("{name}-claim"),
            pool: "default".into(),
            instance_type: it.into(),
            zone: "us-east-2a".into(),
            capacity_type: ct,
            price: t_.price("us-east-2a", ct),
            pods,
            created: t("2025-01-01T00:00:00Z"),
            initialized: Some(t("2025-01-01T00:01:00Z")),
            last_pod_event: Some(t("2025-01-01T00:02:00Z")),
            annotations: BTreeMap::new(),
            deleting: false,
            ready: true,
            nominated: false,
            pool_hash: None,
        }
    }

    fn pool() -> NodePoolSpec {
        NodePoolSpec {
            requirements: vec![Requirement::new(
                LABEL_CAPACITY_TYPE,
                Operator::In,
                &["spot", "on-demand"],
            )],
            consolidate_after: Some(Duration::from_secs(30)),
            budgets: vec![Budget::nodes("100%")],
            ..Default::default()
        }
    }

    fn input<'a>(
        nodes: &'a [NodeState],
        pools: &'a [NodePoolSpec],
        types: &'a [InstanceOption],
        now: &str,
    ) -> DisruptionInput<'a> {
        DisruptionInput {
            nodes,
            pools,
            other_nodes: &[],
            pending: &[],
            daemonsets: &[],
            instance_types: types,
            now: t(now),
            spot_to_spot: false,
        }
    }

    #[test]
    fn emptiness_waits_for_consolidate_after_and_ignores_daemons() {
        let daemon = pod(
            "ds",
            "100m",
            json!({"ownerReferences": [{"kind": "DaemonSet", "name": "d"}]}),
        );
        let nodes = [
            node("empty", "m5.large", CapacityType::Spot, vec![daemon]),
            node(
                "busy",
                "m5.large",
                CapacityType::Spot,
                vec![pod("p", "1", json!({}))],
            ),
        ];
        let pools = [pool()];
        let types = instance_options("us-east-2", &[]);
        assert!(emptiness(&input(&nodes, &pools, &types, "2025-01-01T00:02:29Z")).is_empty());
        assert_eq!(
            emptiness(&input(&nodes, &pools, &types, "2025-01-01T00:02:30Z")),
            ["empty"]
        );
        let mut never = pool();
        never.consolidate_after = None;
        assert!(emptiness(&input(&nodes, &[never], &types, "2030-01-01T00:00:00Z")).is_empty());
        // No pod event ever: timed from initialization.
        let mut fresh = nodes.clone();
        fresh[0].last_pod_event = None;
        assert_eq!(
            emptiness(&input(&fresh, &pools, &types, "2025-01-01T00:01:30Z")),
            ["empty"]
        );
    }

    #[test]
    fn budgets_cap_disruptions() {
        let nodes: Vec<NodeState> = (0..10)
            .map(|i| node(&format!("n{i}"), "m5.large", CapacityType::Spot, vec![]))
            .collect();
        let types = instance_options("us-east-2", &[]);
        let mut p = pool();
        p.budgets = vec![Budget::nodes("10%")];
        assert_eq!(
            emptiness(&input(
                &nodes,
                std::slice::from_ref(&p),
                &types,
                "2026-01-01T00:00:00Z"
            ))
            .len(),
            1
        );
        p.budgets = vec![
            Budget::nodes("30%"),
            Budget {
                reasons: vec![DisruptionReason::Empty],
                ..Budget::nodes("2")
            },
        ];
        assert_eq!(allowed_disruptions(&p, &nodes, DisruptionReason::Empty), 2);
        assert_eq!(
            allowed_disruptions(&p, &nodes, DisruptionReason::Drifted),
            3
        );
        let mut busy = nodes.clone();
        busy[0].deleting = true;
        busy[1].ready = false;
        assert_eq!(allowed_disruptions(&p, &busy, DisruptionReason::Drifted), 1);
        p.budgets = vec![Budget::nodes("0")];
        assert!(emptiness(&input(&nodes, &[p], &types, "2026-01-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn do_not_disrupt_blocks_candidates() {
        let pools = [pool()];
        let types = instance_options("us-east-2", &[]);
        let guarded = pod(
            "g",
            "1",
            json!({"annotations": {"karpenter.sh/do-not-disrupt": "true"}}),
        );
        let mut a = node("a", "m5.large", CapacityType::Spot, vec![guarded]);
        assert_eq!(
            blocked(&a, Some(&pools[0])).unwrap(),
            "pod \"ns/g\" has \"karpenter.sh/do-not-disrupt\" annotation"
        );
        a.pods.clear();
        a.annotations.insert(DO_NOT_DISRUPT.into(), "true".into());
        assert!(emptiness(&input(
            std::slice::from_ref(&a),
            &pools,
            &types,
            "2026-01-01T00:00:00Z"
        ))
        .is_empty());
        let evict = pod(
            "e",
            "1",
            json!({"annotations": {"karpenter.sh/do-not-evict": "true"}}),
        );
        assert!(evict.do_not_disrupt, "v1alpha5 do-not-evict counts");
        let mut b = node("b", "m5.large", CapacityType::Spot, vec![]);
        b.pods.push(PodOnNode {
            pdb_blocked: true,
            ..pod("x", "1", json!({}))
        });
        assert!(blocked(&b, Some(&pools[0])).unwrap().starts_with("pdb"));
        b.pods.clear();
        b.initialized = None;
        assert_eq!(
            blocked(&b, Some(&pools[0])).unwrap(),
            "node is not initialized"
        );
    }

    #[test]
    fn consolidation_deletes_when_pods_fit_elsewhere() {
        let nodes = [
            node(
                "big",
                "m5.2xlarge",
                CapacityType::OnDemand,
                vec![pod("a", "500m", json!({}))],
            ),
            node(
                "small",
                "m5.large",
                CapacityType::OnDemand,
                vec![pod("b", "500m", json!({}))],
            ),
        ];
        let pools = [pool()];
        let types = instance_options("us-east-2", &[]);
        let cmd = consolidation(&input(&nodes, &pools, &types, "2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(cmd.decision, Decision::Delete);
        assert_eq!(
            cmd.nodes,
            ["big"],
            "equal pod counts: the pricier node first"
        );
        assert!(cmd.replacement.is_none());
    }

    #[test]
    fn consolidation_replaces_with_a_cheaper_spot_node() {
        let nodes = [node(
            "lonely",
            "m5.4xlarge",
            CapacityType::OnDemand,
            vec![pod("a", "3", json!({}))],
        )];
        let pools = [pool()];
        let types = instance_options("us-east-2", &[]);
        let cmd = consolidation(&input(&nodes, &pools, &types, "2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(cmd.decision, Decision::Replace);
        let r = cmd.replacement.unwrap();
        let l = r.launch.unwrap();
        assert_eq!(l.capacity_type, CapacityType::Spot, "pinned to spot");
        assert!(l.price < nodes[0].price);
        assert!(r
            .requirements
            .iter()
            .any(|q| q.key == LABEL_CAPACITY_TYPE && q.values == ["spot"]));
        // A spot node is not replaced by spot without the gate.
        let spot = [node(
            "lonely",
            "m5.4xlarge",
            CapacityType::Spot,
            vec![pod("a", "3", json!({}))],
        )];
        assert!(consolidation(&input(&spot, &pools, &types, "2026-01-01T00:00:00Z")).is_none());
        // Nor is anything when consolidateAfter has not passed.
        assert!(consolidation(&input(&nodes, &pools, &types, "2025-01-01T00:02:10Z")).is_none());
        // WhenEmpty pools only lose empty nodes.
        let when_empty = [NodePoolSpec {
            consolidation_policy: ConsolidationPolicy::WhenEmpty,
            ..pool()
        }];
        assert!(
            consolidation(&input(&nodes, &when_empty, &types, "2026-01-01T00:00:00Z")).is_none()
        );
    }

    #[test]
    fn expiry_and_drift() {
        let pools = [pool()];
        let types = instance_options("us-east-2", &[]);
        let mut n = node("n", "m5.large", CapacityType::Spot, vec![]);
        assert!(expired(&input(
            std::slice::from_ref(&n),
            &pools,
            &types,
            "2025-01-30T23:59:00Z"
        ))
        .is_empty());
        assert_eq!(
            expired(&input(
                std::slice::from_ref(&n),
                &pools,
                &types,
                "2025-01-31T00:00:00Z"
            )),
            ["n"],
            "720h"
        );
        n.pool_hash = Some(pool_hash(&pools[0]));
        assert!(drifted(&input(
            std::slice::from_ref(&n),
            &pools,
            &types,
            "2025-01-02T00:00:00Z"
        ))
        .is_empty());
        let mut relabelled = pool();
        relabelled.labels.insert("team".into(), "b".into());
        assert_eq!(
            drifted(&input(
                std::slice::from_ref(&n),
                &[relabelled],
                &types,
                "2025-01-02T00:00:00Z"
            )),
            ["n"]
        );
        let mut od_only = pool();
        od_only.requirements = vec![Requirement::new(
            LABEL_CAPACITY_TYPE,
            Operator::In,
            &["on-demand"],
        )];
        n.pool_hash = Some(pool_hash(&od_only));
        assert!(
            is_drifted(&n, &od_only),
            "requirements no longer admit a spot node"
        );
    }
}
