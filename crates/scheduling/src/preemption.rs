//! Preemption as kube-scheduler's `DefaultPreemption` does it, as pure functions.
//!
//! 1. **Eligibility** — a pod with `preemptionPolicy: Never` preempts nothing; a pod
//!    already nominated to a node where a lower-priority pod is still terminating waits
//!    for it instead of preempting more (see [`super::Snapshot::schedule`]).
//! 2. **Candidates** — only nodes the filter rejected for resources (never for a selector,
//!    taint or cordon). On each, *every* pod of strictly lower priority is removed; if the
//!    pod still does not fit, the node is no candidate. Terminating pods still hold their
//!    resources (as on a real node until their containers exit) and may be victims again;
//!    the plan marks them `already_terminating` so they are not deleted twice.
//! 3. **Reprieve** — victims are put back one by one from the most important (highest
//!    priority, then earliest start) down, and each one whose return still lets the pod
//!    fit stays. What is left is minimal: no single victim could be spared.
//! 4. **Choice** — `pickOneNodeForPreemption`'s order: the lowest highest-victim
//!    priority, then the lowest sum of victim priorities, then the fewest victims, then the
//!    latest start among the highest-priority victims, then the first node.
//!
//! The search ([`super::Snapshot::schedule`]) is kube's: nodes are dry-run from an offset
//! until max(10 %, 100) of them are candidates, and the best of those wins. A node whose
//! [`CandidateKey::lower_bound`] cannot beat the best so far is not dry-run, but is still
//! counted when it is a candidate ([`is_candidate`]), so the window stays kube's.
//!
//! Deliberate differences from kube-scheduler:
//! - past the window, the nodes whose least important pod ranks below the window's best
//!   candidate's most important victim are dry-run too (one comparison for every other
//!   node), so the lowest highest-victim priority is cluster-wide — the driver-safety
//!   invariant ("no pod is preempted while a lower-priority victim anywhere would do")
//!   holds by construction and is property-tested, also on clusters larger than the
//!   window; kube, which stops at the window, may evict a driver while an executor
//!   elsewhere would do;
//! - the offset is a hash of the pod's key, not random, so decisions are reproducible;
//! - remaining ties go to the smallest node name, not to a random one;
//! - PodDisruptionBudgets are not consulted (the embedded cluster has no PDB
//!   controller): every candidate counts zero PDB violations;
//! - step 1 waits for any terminating lower-priority pod on the nominated node, where
//!   kube only counts pods carrying the `DisruptionTarget`/`PreemptionByScheduler`
//!   condition: a controller that deletes a victim before patching the condition must
//!   still never preempt twice for one pod.
//!
//! Why this protects Spark drivers: the seed's pod templates give drivers
//! `critical-priority` (400) and low-priority executors `low-priority` (100). A preemptor of
//! priority ≤ 400 can only evict pods below its own priority, so drivers are never victims
//! of a driver; and a higher-priority preemptor takes executors (lowest highest-victim
//! priority) before it would touch any driver.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::filter::{resource_reasons, resources_fit, NodeUsage, Reason};
use super::node::NodeInfo;
use super::requirements::PodRequirements;

/// `util.MoreImportantPod`: higher priority first, then the earlier start (a pod not yet
/// started counts as starting now, i.e. last); uid, namespace and name break remaining
/// ties so the order is total and deterministic.
pub fn more_important_first(a: &PodRequirements, b: &PodRequirements) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_key(a.start_time).cmp(&start_key(b.start_time)))
        .then_with(|| a.uid.cmp(&b.uid))
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
}

fn start_key(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(i64::MAX, |t| t.timestamp_micros())
}

/// Why a node is no preemption candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotACandidate {
    /// No pod on the node has lower priority than the preemptor.
    NoVictims,
    /// Even without every lower-priority pod the preemptor does not fit.
    StillDoesNotFit(Vec<Reason>),
}

/// The reprieve pass over `pods` visited in `order` (most important first); victims are
/// appended to `out` in that order.
fn reprieve(
    preemptor: &PodRequirements,
    node: &NodeInfo,
    usage: &NodeUsage,
    pods: &[Arc<PodRequirements>],
    order: impl Iterator<Item = usize> + Clone,
    out: &mut Vec<usize>,
) -> Result<(), NotACandidate> {
    let lower = |i: &usize| pods[*i].priority < preemptor.priority;
    let mut remaining = usage.clone();
    let mut any = false;
    for i in order.clone().filter(lower) {
        remaining.remove(&pods[i]);
        any = true;
    }
    if !any {
        return Err(NotACandidate::NoVictims);
    }
    if !resources_fit(&preemptor.requests, node, &remaining) {
        return Err(NotACandidate::StillDoesNotFit(resource_reasons(
            &preemptor.requests,
            node,
            &remaining,
        )));
    }
    for i in order.filter(lower) {
        remaining.add(&pods[i]);
        if !resources_fit(&preemptor.requests, node, &remaining) {
            remaining.remove(&pods[i]);
            out.push(i);
        }
    }
    Ok(())
}

/// `SelectVictimsOnNode`: the minimal victims on one node, most important first, as
/// indices into `pods`.
///
/// `usage` is what the node has requested *including* pods nominated to it with priority
/// at least the preemptor's (they are as good as running there). `pods` are the pods bound
/// to the node, in any order; only those of strictly lower priority are eligible.
pub fn select_victims_on_node(
    preemptor: &PodRequirements,
    node: &NodeInfo,
    usage: &NodeUsage,
    pods: &[Arc<PodRequirements>],
) -> Result<Vec<usize>, NotACandidate> {
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| more_important_first(&pods[a], &pods[b]));
    let mut victims = Vec::new();
    reprieve(
        preemptor,
        node,
        usage,
        pods,
        order.into_iter(),
        &mut victims,
    )?;
    Ok(victims)
}

/// [`select_victims_on_node`] for pods already in [`more_important_first`] order (as
/// [`super::Snapshot`] keeps them), reusing `out` to spare an allocation per node.
pub fn select_victims_in_order(
    preemptor: &PodRequirements,
    node: &NodeInfo,
    usage: &NodeUsage,
    ordered_pods: &[Arc<PodRequirements>],
    out: &mut Vec<usize>,
) -> Result<(), NotACandidate> {
    out.clear();
    reprieve(
        preemptor,
        node,
        usage,
        ordered_pods,
        0..ordered_pods.len(),
        out,
    )
}

/// Whether `node` is a preemption candidate — [`select_victims_in_order`] would find a
/// non-empty set of victims — without choosing them: the preemptor does not fit now, but
/// fits once every pod of lower priority is gone (then the reprieve pass cannot put every
/// victim back, or the pod would fit now). `ordered_pods` in [`more_important_first`]
/// order, so the lower-priority pods are its tail. Used to count, as kube-scheduler counts
/// them, the candidates whose dry run is skipped because they cannot beat the best one.
pub fn is_candidate(
    preemptor: &PodRequirements,
    node: &NodeInfo,
    usage: &NodeUsage,
    ordered_pods: &[Arc<PodRequirements>],
) -> bool {
    if resources_fit(&preemptor.requests, node, usage) {
        return false;
    }
    let mut remaining = usage.clone();
    let mut any = false;
    for p in ordered_pods
        .iter()
        .rev()
        .take_while(|p| p.priority < preemptor.priority)
    {
        remaining.remove(p);
        any = true;
    }
    any && resources_fit(&preemptor.requests, node, &remaining)
}

/// `pickOneNodeForPreemption`'s criteria with no PDBs, as one key where smaller is
/// better: the highest victim priority, the sum of victim priorities, the number of
/// victims, then (reversed) the earliest start among the highest-priority victims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CandidateKey {
    pub highest_priority: i32,
    pub priority_sum: i64,
    pub victims: usize,
    pub latest_start: std::cmp::Reverse<i64>,
}

impl CandidateKey {
    /// Victims most important first (the first has the highest priority).
    pub fn of<'a>(victims: impl Iterator<Item = &'a PodRequirements> + Clone) -> CandidateKey {
        let highest = victims
            .clone()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        // Priorities shifted by 2^31 so that many negative-priority victims never beat
        // fewer ones (kube adds MaxInt32+1 for the same reason).
        let mut sum = 0i64;
        let mut count = 0usize;
        let mut earliest = i64::MAX;
        for v in victims {
            sum += i64::from(v.priority) + (1i64 << 31);
            count += 1;
            if v.priority == highest {
                earliest = earliest.min(start_key(v.start_time));
            }
        }
        CandidateKey {
            highest_priority: highest,
            priority_sum: sum,
            victims: count,
            latest_start: std::cmp::Reverse(earliest),
        }
    }
}

impl CandidateKey {
    /// A bound no candidate on this node can beat: `ordered_pods` in
    /// [`more_important_first`] order, so the last is the least important. If any victim
    /// has a priority above the lowest, the key is larger in its first field; otherwise all
    /// victims share the lowest priority, so the sum is at least one of them, the count at
    /// least one, and their earliest start no later than the latest start at that priority,
    /// which is the last pod's. `None` when the node has no pod below the preemptor.
    pub fn lower_bound(
        preemptor: &PodRequirements,
        ordered_pods: &[Arc<PodRequirements>],
    ) -> Option<CandidateKey> {
        let last = ordered_pods
            .last()
            .filter(|p| p.priority < preemptor.priority)?;
        Some(CandidateKey::bound_of_least(last))
    }

    /// [`CandidateKey::lower_bound`] for a preemptor of higher priority than `least`, the
    /// node's least important pod (so that a node can keep it at hand).
    pub fn bound_of_least(least: &PodRequirements) -> CandidateKey {
        CandidateKey {
            highest_priority: least.priority,
            priority_sum: i64::from(least.priority) + (1i64 << 31),
            victims: 1,
            latest_start: std::cmp::Reverse(start_key(least.start_time)),
        }
    }
}

/// A node where preemption would work, with its victims (most important first).
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub node: usize,
    pub victims: Vec<&'a PodRequirements>,
}

/// `pickOneNodeForPreemption` with no PDBs: index into `candidates` of the chosen one;
/// among equal keys the first wins ("then the first node").
pub fn pick_one_node(candidates: &[Candidate<'_>]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| CandidateKey::of(c.victims.iter().copied()))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use serde_json::json;

    fn pod(name: &str, priority: i32, cpu: &str, started: Option<&str>) -> Arc<PodRequirements> {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {}
        });
        if let Some(s) = started {
            v["status"]["startTime"] = json!(s);
        }
        Arc::new(PodRequirements::from_pod(&v).unwrap())
    }

    fn node(cpu: &str) -> NodeInfo {
        NodeConfig {
            cpu: cpu.into(),
            capacity: None,
            ..NodeConfig::default()
        }
        .node_info()
        .unwrap()
    }

    #[test]
    fn reprieves_from_the_most_important_down() {
        let n = node("4");
        let pods = vec![
            pod("a100", 100, "1", Some("2025-01-01T00:00:00Z")),
            pod("b200", 200, "1", None),
            pod("c100", 100, "1", Some("2025-01-01T00:01:00Z")),
            pod("d500", 500, "1", None),
        ];
        let usage = NodeUsage::from_pods(pods.iter().map(|p| p.as_ref()));
        let preemptor = pod("p", 300, "2", None);
        // The node is full; the preemptor needs 2 cores. All three lower pods go, then come
        // back in importance order: b200 (free 2: fits, stays), a100 (older than c100; free
        // 1: no), c100 (no). Victims: a100 and c100.
        let v = select_victims_on_node(&preemptor, &n, &usage, &pods).unwrap();
        let names: Vec<&str> = v.iter().map(|&i| pods[i].name.as_str()).collect();
        assert_eq!(names, ["a100", "c100"]);
        // Needing one core spares the older 100.
        let small = pod("s", 300, "1", None);
        let v = select_victims_on_node(&small, &n, &usage, &pods).unwrap();
        assert_eq!(
            v.iter().map(|&i| pods[i].name.as_str()).collect::<Vec<_>>(),
            ["c100"]
        );
    }

    #[test]
    fn not_a_candidate() {
        let n = node("2");
        let pods = vec![pod("hi", 500, "1", None), pod("lo", 100, "1", None)];
        let usage = NodeUsage::from_pods(pods.iter().map(|p| p.as_ref()));
        assert_eq!(
            select_victims_on_node(&pod("p", 50, "1", None), &n, &usage, &pods),
            Err(NotACandidate::NoVictims)
        );
        assert!(matches!(
            select_victims_on_node(&pod("p", 300, "2", None), &n, &usage, &pods),
            Err(NotACandidate::StillDoesNotFit(r)) if r[0].to_string() == "Insufficient cpu"
        ));
    }

    #[test]
    fn picks_like_pick_one_node_for_preemption() {
        let p = |name, prio, start| pod(name, prio, "1", start);
        let (a, b, c, d) = (
            p("a", 200, None),
            p("b", 100, None),
            p("c", 100, None),
            p("d", 100, None),
        );
        let e = p("e", 100, Some("2025-01-01T00:00:00Z"));
        let f = p("f", 100, Some("2025-01-01T00:09:00Z"));
        fn cand<'a>(node: usize, v: Vec<&'a Arc<PodRequirements>>) -> Candidate<'a> {
            Candidate {
                node,
                victims: v.into_iter().map(|x| x.as_ref()).collect(),
            }
        }
        // Lowest highest priority wins over fewer victims.
        assert_eq!(
            pick_one_node(&[cand(0, vec![&a]), cand(1, vec![&b, &c])]),
            Some(1)
        );
        // Then the smaller sum, then fewer victims.
        assert_eq!(
            pick_one_node(&[cand(0, vec![&b, &c, &d]), cand(1, vec![&b, &c])]),
            Some(1)
        );
        // Then the latest start among the highest-priority victims.
        assert_eq!(
            pick_one_node(&[cand(0, vec![&e]), cand(1, vec![&f])]),
            Some(1)
        );
        // Then the first.
        assert_eq!(
            pick_one_node(&[cand(0, vec![&b]), cand(1, vec![&c])]),
            Some(0)
        );
        assert_eq!(pick_one_node(&[]), None);
    }
}
