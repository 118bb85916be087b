//! The filter: can this pod run on this node? The plugins and their order are
//! kube-scheduler's defaults that apply here — `NodeUnschedulable`, `TaintToleration`,
//! `NodeAffinity` (node selector and required node affinity), `VolumeBinding`'s node
//! affinity of bound PersistentVolumes, `NodeResourcesFit` — and,
//! as in kube-scheduler, a node stops at the first plugin that rejects it, so it
//! contributes that plugin's reasons only (`NodeResourcesFit` can give several:
//! `Too many pods`, `Insufficient cpu`, `Insufficient memory`, …).
//!
//! The first three plugins depend only on the pod's [`PlacementConstraints`] and the node's
//! labels and taints ("static"); their verdict is cached per constraint set by
//! [`super::Snapshot`]. Their rejections are *unresolvable*: preemption cannot help.
//! Resource rejections are resolvable by removing pods.

use std::borrow::Cow;
use std::fmt;

use super::node::{NodeInfo, Taint, TaintEffect, TAINT_UNSCHEDULABLE};
use super::requirements::{
    NodeSelectorTerm, PlacementConstraints, PodRequirements, SelectorOperator, SelectorRequirement,
    Toleration, TolerationOperator,
};
use super::resources::Resources;

/// Why a node was rejected, worded as kube-scheduler's plugins word it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// `NodeUnschedulable`: the node is cordoned.
    NodeUnschedulable,
    /// `TaintToleration`: the first `NoSchedule`/`NoExecute` taint the pod does not tolerate.
    UntoleratedTaint { key: String, value: String },
    /// `NodeAffinity`: node selector or required node affinity.
    NodeAffinity,
    /// `VolumeBinding`: a bound PersistentVolume's node affinity excludes the node.
    VolumeNodeAffinityConflict,
    /// `NodeResourcesFit`: the node's pod slots are used up.
    TooManyPods,
    /// `NodeResourcesFit`: requests plus the node's requested total exceed allocatable.
    Insufficient(Cow<'static, str>),
}

impl Reason {
    /// Whether evicting pods could lift this rejection (kube's `Unschedulable` code, as
    /// opposed to `UnschedulableAndUnresolvable`).
    pub fn resolvable(&self) -> bool {
        matches!(self, Reason::TooManyPods | Reason::Insufficient(_))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NodeUnschedulable => f.write_str("node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Reason::VolumeNodeAffinityConflict => {
                f.write_str("node(s) had volume node affinity conflict")
            }
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::Insufficient(resource) => write!(f, "Insufficient {resource}"),
        }
    }
}

/// What is already requested on a node: the sum over its (non-terminal) pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsage {
    pub requested: Resources,
    pub pods: i64,
    /// Scoring totals, with 100m / 200Mi for containers that request nothing.
    pub non_zero_milli_cpu: i64,
    pub non_zero_memory: i64,
}

impl NodeUsage {
    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a PodRequirements>) -> NodeUsage {
        let mut u = NodeUsage::default();
        for p in pods {
            u.add(p);
        }
        u
    }

    pub fn add(&mut self, pod: &PodRequirements) {
        self.requested.add(&pod.requests);
        self.pods += 1;
        self.non_zero_milli_cpu += pod.non_zero_milli_cpu;
        self.non_zero_memory += pod.non_zero_memory;
    }

    pub fn remove(&mut self, pod: &PodRequirements) {
        self.requested.sub(&pod.requests);
        self.pods -= 1;
        self.non_zero_milli_cpu -= pod.non_zero_milli_cpu;
        self.non_zero_memory -= pod.non_zero_memory;
    }

    /// Takes away what another total counts (the pods it sums must be among these).
    pub fn remove_all(&mut self, other: &NodeUsage) {
        self.requested.sub(&other.requested);
        self.pods -= other.pods;
        self.non_zero_milli_cpu -= other.non_zero_milli_cpu;
        self.non_zero_memory -= other.non_zero_memory;
    }
}

/// `Toleration.ToleratesTaint`.
pub fn tolerates(
    t: &Toleration,
    taint_key: &str,
    taint_value: &str,
    taint_effect: TaintEffect,
) -> bool {
    if t.effect.is_some_and(|e| e != taint_effect) {
        return false;
    }
    if !t.key.is_empty() && t.key != taint_key {
        return false;
    }
    match t.operator {
        TolerationOperator::Equal => t.value == taint_value,
        TolerationOperator::Exists => true,
        TolerationOperator::Invalid => false,
    }
}

fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations
        .iter()
        .any(|t| tolerates(t, &taint.key, &taint.value, taint.effect))
}

/// The first taint that repels the pod: `NoSchedule` and `NoExecute` filter,
/// `PreferNoSchedule` only lowers the node's score.
pub fn first_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
) -> Option<&'a Taint> {
    taints
        .iter()
        .find(|t| t.effect != TaintEffect::PreferNoSchedule && !tolerated(tolerations, t))
}

/// How many `PreferNoSchedule` taints the pod does not tolerate (scoring).
pub fn untolerated_prefer_no_schedule(taints: &[Taint], tolerations: &[Toleration]) -> usize {
    taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule && !tolerated(tolerations, t))
        .count()
}

fn requirement_matches(r: &SelectorRequirement, value: Option<&str>) -> bool {
    match &r.operator {
        SelectorOperator::In(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
        SelectorOperator::NotIn(values) => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        SelectorOperator::Exists => value.is_some(),
        SelectorOperator::DoesNotExist => value.is_none(),
        SelectorOperator::Gt(n) => value
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v > *n),
        SelectorOperator::Lt(n) => value
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v < *n),
    }
}

/// One node selector term: an empty or invalid term matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    if !term.valid || (term.match_expressions.is_empty() && term.match_fields.is_empty()) {
        return false;
    }
    term.match_expressions
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| {
            // Only metadata.name is a node field selectors can use; others read as "".
            let value = if r.key == "metadata.name" {
                node.name.as_str()
            } else {
                ""
            };
            requirement_matches(r, Some(value))
        })
}

/// `nodeSelector` (every pair) and required node affinity (any term).
pub fn matches_node_selector_and_affinity(p: &PlacementConstraints, node: &NodeInfo) -> bool {
    p.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && p.required_terms
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)))
}

/// The static plugins, in kube-scheduler's order; `None` when the node passes them.
pub fn static_filter(p: &PlacementConstraints, node: &NodeInfo) -> Option<Reason> {
    if node.unschedulable
        && !p
            .tolerations
            .iter()
            .any(|t| tolerates(t, TAINT_UNSCHEDULABLE, "", TaintEffect::NoSchedule))
    {
        return Some(Reason::NodeUnschedulable);
    }
    if let Some(t) = first_untolerated_taint(&node.taints, &p.tolerations) {
        return Some(Reason::UntoleratedTaint {
            key: t.key.clone(),
            value: t.value.clone(),
        });
    }
    if !matches_node_selector_and_affinity(p, node) {
        return Some(Reason::NodeAffinity);
    }
    // kube-scheduler runs VolumeBinding after NodeResourcesFit; here it is static (a
    // volume's node affinity depends on the node's labels only), so a node failing both
    // reports the volume conflict. Preemption cannot help either way.
    if !p
        .volume_node_affinity
        .iter()
        .all(|terms| terms.iter().any(|t| term_matches(t, node)))
    {
        return Some(Reason::VolumeNodeAffinityConflict);
    }
    None
}

/// `NodeResourcesFit` as a yes/no (the hot path).
pub fn resources_fit(requests: &Resources, node: &NodeInfo, usage: &NodeUsage) -> bool {
    let a = &node.allocatable;
    let u = &usage.requested;
    usage.pods < node.allowed_pods
        && (requests.is_zero()
            || (u.milli_cpu + requests.milli_cpu <= a.milli_cpu
                && u.memory + requests.memory <= a.memory
                && u.ephemeral_storage + requests.ephemeral_storage <= a.ephemeral_storage
                && requests
                    .scalars
                    .iter()
                    .all(|(name, v)| u.scalar(name) + v <= a.scalar(name))))
}

/// [`core_misfit`] bit: no pod slot left (`Too many pods`).
pub const MISFIT_PODS: u8 = 1;
/// [`core_misfit`] bit: `Insufficient cpu`.
pub const MISFIT_CPU: u8 = 2;
/// [`core_misfit`] bit: `Insufficient memory`.
pub const MISFIT_MEMORY: u8 = 4;
/// [`core_misfit`] bit: `Insufficient ephemeral-storage`.
pub const MISFIT_EPHEMERAL_STORAGE: u8 = 8;

/// `NodeResourcesFit` over the pod slots and the three core resources as a bit set of
/// what is short (`MISFIT_*`; 0: they fit). Scalar resources are not looked at: for a
/// pod without scalar requests, `core_misfit(..) == 0` is exactly [`resources_fit`], and
/// [`for_each_misfit_reason`] of the bits gives exactly [`for_each_resource_reason`]'s
/// reasons — so one pass over the nodes both filters and diagnoses them.
pub fn core_misfit(requests: &Resources, node: &NodeInfo, usage: &NodeUsage) -> u8 {
    let a = &node.allocatable;
    let u = &usage.requested;
    let mut misfit = 0;
    if usage.pods >= node.allowed_pods {
        misfit |= MISFIT_PODS;
    }
    if requests.is_zero() {
        return misfit;
    }
    if u.milli_cpu + requests.milli_cpu > a.milli_cpu {
        misfit |= MISFIT_CPU;
    }
    if u.memory + requests.memory > a.memory {
        misfit |= MISFIT_MEMORY;
    }
    if u.ephemeral_storage + requests.ephemeral_storage > a.ephemeral_storage {
        misfit |= MISFIT_EPHEMERAL_STORAGE;
    }
    misfit
}

/// The reasons of a [`core_misfit`] bit set, in `NodeResourcesFit`'s order.
pub fn for_each_misfit_reason(misfit: u8, mut each: impl FnMut(Reason)) {
    if misfit & MISFIT_PODS != 0 {
        each(Reason::TooManyPods);
    }
    for (bit, name) in [
        (MISFIT_CPU, "cpu"),
        (MISFIT_MEMORY, "memory"),
        (MISFIT_EPHEMERAL_STORAGE, "ephemeral-storage"),
    ] {
        if misfit & bit != 0 {
            each(Reason::Insufficient(Cow::Borrowed(name)));
        }
    }
}

/// `NodeResourcesFit`'s reasons, in its order (pods, cpu, memory, ephemeral-storage,
/// scalar resources), handed to `each` without allocating for the core resources. A pod
/// that requests nothing needs only a pod slot, so a node over-committed by pods bound
/// with `spec.nodeName` still takes it, as in Kubernetes.
pub fn for_each_resource_reason(
    requests: &Resources,
    node: &NodeInfo,
    usage: &NodeUsage,
    mut each: impl FnMut(Reason),
) {
    let a = &node.allocatable;
    let u = &usage.requested;
    if usage.pods + 1 > node.allowed_pods {
        each(Reason::TooManyPods);
    }
    if requests.is_zero() {
        return;
    }
    if a.milli_cpu < requests.milli_cpu + u.milli_cpu {
        each(Reason::Insufficient(Cow::Borrowed("cpu")));
    }
    if a.memory < requests.memory + u.memory {
        each(Reason::Insufficient(Cow::Borrowed("memory")));
    }
    if a.ephemeral_storage < requests.ephemeral_storage + u.ephemeral_storage {
        each(Reason::Insufficient(Cow::Borrowed("ephemeral-storage")));
    }
    for (name, v) in &requests.scalars {
        if a.scalar(name) < v + u.scalar(name) {
            each(Reason::Insufficient(Cow::Owned(name.clone())));
        }
    }
}

/// [`for_each_resource_reason`] collected.
pub fn resource_reasons(requests: &Resources, node: &NodeInfo, usage: &NodeUsage) -> Vec<Reason> {
    let mut out = Vec::new();
    for_each_resource_reason(requests, node, usage, |r| out.push(r));
    out
}

/// The whole filter for one pod on one node, given what the node's pods already request.
pub fn fits(pod: &PodRequirements, node: &NodeInfo, usage: &NodeUsage) -> Result<(), Vec<Reason>> {
    if let Some(reason) = static_filter(&pod.placement, node) {
        return Err(vec![reason]);
    }
    if resources_fit(&pod.requests, node, usage) {
        Ok(())
    } else {
        Err(resource_reasons(&pod.requests, node, usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    fn node(labels: &[(&str, &str)], taints: Vec<Taint>) -> NodeInfo {
        let mut n = NodeConfig {
            name: "node-1".into(),
            ..NodeConfig::default()
        }
        .node_info()
        .unwrap();
        n.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        n.taints = taints;
        n
    }

    fn pod(spec: Value) -> PodRequirements {
        PodRequirements::from_pod(&json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec}))
            .unwrap()
    }

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn affinity(terms: Value) -> Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
    }

    #[test]
    fn node_selector_needs_every_pair() {
        let n = node(
            &[
                ("eks.amazonaws.com/capacityType", "ON_DEMAND"),
                ("zone", "a"),
            ],
            vec![],
        );
        let usage = NodeUsage::default();
        assert!(fits(
            &pod(json!({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}})),
            &n,
            &usage
        )
        .is_ok());
        assert_eq!(
            fits(
                &pod(json!({"nodeSelector": {"eks.amazonaws.com/capacityType": "SPOT"}})),
                &n,
                &usage
            ),
            Err(vec![Reason::NodeAffinity])
        );
        assert!(fits(
            &pod(json!({"nodeSelector": {"zone": "a", "missing": "x"}})),
            &n,
            &usage
        )
        .is_err());
    }

    #[test]
    fn affinity_terms_are_ored_and_expressions_anded() {
        let n = node(
            &[("size", "8"), ("zone", "us-east-2a"), ("spot", "no")],
            vec![],
        );
        let check = |terms: Value| {
            fits(
                &pod(json!({"affinity": affinity(terms)})),
                &n,
                &NodeUsage::default(),
            )
            .is_ok()
        };
        assert!(check(
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["us-east-2a", "b"]}]}])
        ));
        assert!(!check(
            json!([{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["us-east-2a"]}]}])
        ));
        assert!(
            check(
                json!([{"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}])
            ),
            "NotIn matches an absent label"
        );
        assert!(check(
            json!([{"matchExpressions": [{"key": "spot", "operator": "Exists"}, {"key": "gpu", "operator": "DoesNotExist"}]}])
        ));
        assert!(!check(
            json!([{"matchExpressions": [{"key": "spot", "operator": "Exists"}, {"key": "zone", "operator": "DoesNotExist"}]}])
        ));
        assert!(check(
            json!([{"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["4"]}, {"key": "size", "operator": "Lt", "values": ["16"]}]}])
        ));
        assert!(!check(
            json!([{"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["8"]}]}])
        ));
        assert!(
            !check(
                json!([{"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}])
            ),
            "non-integer label"
        );
        // ORed terms: the first fails, the second matches.
        assert!(check(json!([
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["eu"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
        ])));
        assert!(!check(
            json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]}]}])
        ));
        assert!(!check(json!([{}])), "an empty term matches nothing");
        assert!(!check(json!([])), "no terms match nothing");
        assert!(!check(
            json!([{"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["x"]}]}])
        ));
        assert!(!check(
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": []}]}])
        ));
        // Node selector and affinity must both hold.
        let both = pod(
            json!({"nodeSelector": {"spot": "yes"}, "affinity": affinity(json!([{"matchExpressions": [{"key": "spot", "operator": "Exists"}]}]))}),
        );
        assert_eq!(
            fits(&both, &n, &NodeUsage::default()),
            Err(vec![Reason::NodeAffinity])
        );
    }

    #[test]
    fn taints_and_tolerations() {
        let n = node(
            &[],
            vec![
                taint("dedicated", "spark", TaintEffect::NoSchedule),
                taint("soft", "", TaintEffect::PreferNoSchedule),
            ],
        );
        let check = |tolerations: Value| {
            fits(
                &pod(json!({"tolerations": tolerations})),
                &n,
                &NodeUsage::default(),
            )
        };
        assert_eq!(
            check(json!([])),
            Err(vec![Reason::UntoleratedTaint {
                key: "dedicated".into(),
                value: "spark".into()
            }])
        );
        assert_eq!(
            check(json!([])).unwrap_err()[0].to_string(),
            "node(s) had untolerated taint {dedicated: spark}"
        );
        assert!(check(json!([{"key": "dedicated", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}])).is_ok());
        assert!(
            check(json!([{"key": "dedicated", "value": "spark"}])).is_ok(),
            "no effect tolerates every effect"
        );
        assert!(check(json!([{"key": "dedicated", "operator": "Exists"}])).is_ok());
        assert!(
            check(json!([{"operator": "Exists"}])).is_ok(),
            "empty key with Exists tolerates everything"
        );
        assert!(check(json!([{"key": "dedicated", "value": "other"}])).is_err());
        assert!(
            check(json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]))
                .is_err(),
            "effect must match"
        );
        // PreferNoSchedule never filters.
        let soft = node(&[], vec![taint("soft", "", TaintEffect::PreferNoSchedule)]);
        assert!(fits(&pod(json!({})), &soft, &NodeUsage::default()).is_ok());
        assert_eq!(untolerated_prefer_no_schedule(&soft.taints, &[]), 1);
        // NoExecute filters too.
        let hard = node(&[], vec![taint("evict", "now", TaintEffect::NoExecute)]);
        assert!(fits(&pod(json!({})), &hard, &NodeUsage::default()).is_err());
    }

    #[test]
    fn cordoned_nodes_take_only_pods_tolerating_it() {
        let mut n = node(&[], vec![]);
        n.unschedulable = true;
        assert_eq!(
            fits(&pod(json!({})), &n, &NodeUsage::default()),
            Err(vec![Reason::NodeUnschedulable])
        );
        let tolerant = pod(
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
        );
        assert!(fits(&tolerant, &n, &NodeUsage::default()).is_ok());
    }

    #[test]
    fn first_failing_plugin_wins() {
        // A tainted node that is also full reports only the taint, as kube-scheduler does.
        let n = node(&[], vec![taint("a", "b", TaintEffect::NoSchedule)]);
        let mut usage = NodeUsage::default();
        usage.requested.milli_cpu = n.allocatable.milli_cpu;
        let p =
            pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}));
        assert_eq!(fits(&p, &n, &usage).unwrap_err().len(), 1);
    }

    #[test]
    fn resources_and_pod_slots() {
        let n = node(&[], vec![]); // 7910m, 31482328Ki, 58 pods
        let exec = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2432Mi"}}}]}),
        );
        let mut usage = NodeUsage::default();
        for _ in 0..7 {
            assert!(fits(&exec, &n, &usage).is_ok());
            usage.add(&exec);
        }
        assert_eq!(
            fits(&exec, &n, &usage),
            Err(vec![Reason::Insufficient(Cow::Borrowed("cpu"))])
        );
        assert_eq!(
            resource_reasons(
                &exec.requests,
                &n,
                &NodeUsage {
                    pods: 58,
                    ..usage.clone()
                }
            )
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>(),
            ["Too many pods", "Insufficient cpu"]
        );
        // A request-less pod ignores full cpu/memory but still needs a pod slot.
        let empty = pod(json!({"containers": [{"name": "c"}]}));
        assert!(fits(&empty, &n, &usage).is_ok());
        let gpu = pod(
            json!({"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}),
        );
        assert_eq!(
            fits(&gpu, &n, &NodeUsage::default()).unwrap_err()[0].to_string(),
            "Insufficient nvidia.com/gpu"
        );
        usage.remove(&exec);
        assert!(fits(&exec, &n, &usage).is_ok());
    }
}
