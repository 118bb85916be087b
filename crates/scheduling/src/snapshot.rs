//! [`Snapshot`]: the scheduler's in-memory picture of the cluster, kept up to date
//! incrementally from watch events, and [`Snapshot::schedule`], one scheduling cycle.
//!
//! Per node it keeps the parsed [`NodeInfo`], the bound pods and their requested total
//! ([`NodeUsage`]), and the pods *nominated* to it (preemptors waiting for their victims
//! to leave). A pod is filtered against a node's usage plus the nominated pods of at least
//! its priority, as kube-scheduler's `RunFilterPluginsWithNominatedPods` does, so the room
//! that preemption freed for a high-priority pod is not taken by a lower-priority one (a
//! replacement executor, say) in the meantime.
//!
//! The static filters' verdict (cordon, taints, selector, affinity) is cached per distinct
//! [`PlacementConstraints`] and dropped whenever a node is added, changed or removed; the
//! pods of one Spark application share their constraints, so scheduling the n-th executor
//! costs one integer comparison per node plus scoring.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::filter::{
    core_misfit, for_each_misfit_reason, for_each_resource_reason, resources_fit, static_filter,
    NodeUsage, Reason,
};
use super::message::{self, Histogram};
use super::node::NodeInfo;
use super::preemption::{
    more_important_first, select_victims_in_order, CandidateKey, NotACandidate,
};
use super::queue::{score_node, NodeScore};
use super::requirements::{PlacementConstraints, PodRequirements, PreemptionPolicy};

/// A pod named in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

impl PodRef {
    fn of(p: &PodRequirements) -> PodRef {
        PodRef {
            uid: p.uid.clone(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
        }
    }
}

/// A pod to evict so that the preemptor fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub pod: PodRef,
    pub priority: i32,
    /// Already being deleted: kube-scheduler sends no second delete (nor event) for it.
    pub already_terminating: bool,
}

/// What preemption decided: evict `victims` from `node`, nominate the preemptor there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreemptionPlan {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Victim>,
    /// Lower-priority pods nominated to the same node: their `nominatedNodeName` is to be
    /// cleared so they look elsewhere.
    pub clear_nominated: Vec<PodRef>,
}

impl PreemptionPlan {
    /// The message of the `Preempted` event on every victim.
    pub fn victim_event_message(&self, preemptor_uid: &str) -> String {
        message::preempted_event_message(preemptor_uid, &self.node)
    }
}

/// What to do with the pod's `status.nominatedNodeName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nomination {
    Keep,
    Clear,
    Set(String),
}

/// The outcome of one scheduling cycle for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Bind the pod to this node (then emit `Scheduled`).
    Bind { node: String },
    /// The pod stays pending: emit `FailedScheduling` with `message`, set
    /// `PodScheduled=False`/`Unschedulable` with it, apply `nomination`, and carry out
    /// `preemption` when there is one.
    Unschedulable {
        message: String,
        nomination: Nomination,
        preemption: Option<PreemptionPlan>,
    },
}

impl Decision {
    pub fn node(&self) -> Option<&str> {
        match self {
            Decision::Bind { node } => Some(node),
            Decision::Unschedulable { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
struct NodeSlot {
    info: NodeInfo,
    usage: NodeUsage,
    /// Bound pods, most important first (`more_important_first`), so preemption's
    /// reprieve pass needs no sort.
    pods: Vec<Arc<PodRequirements>>,
    nominated: Vec<Arc<PodRequirements>>,
    /// `usage` plus every nominated pod, and the lowest and highest priority among the
    /// nominated: a pod at or below the lowest sees all of them, one above the highest
    /// sees none — the filter pass, which visits every node for every pod, then needs no
    /// walk over the nominated pods (thousands of nodes have some during a preemption wave).
    with_nominated: NodeUsage,
    nominated_priorities: (i32, i32),
    /// The bound pods' requested totals per priority, highest first: what evicting every
    /// pod below a priority frees, without walking (and dereferencing) the pods.
    by_priority: Vec<(i32, NodeUsage)>,
    /// `CandidateKey::bound_of_least` of the last (least important) bound pod.
    least_bound: Option<CandidateKey>,
}

impl NodeSlot {
    fn new(info: NodeInfo) -> NodeSlot {
        NodeSlot {
            info,
            usage: NodeUsage::default(),
            pods: Vec::new(),
            nominated: Vec::new(),
            with_nominated: NodeUsage::default(),
            nominated_priorities: (i32::MAX, i32::MIN),
            by_priority: Vec::new(),
            least_bound: None,
        }
    }

    fn nominate(&mut self, pod: &Arc<PodRequirements>) {
        self.nominated.push(pod.clone());
        self.with_nominated.add(pod);
        let (low, high) = self.nominated_priorities;
        self.nominated_priorities = (low.min(pod.priority), high.max(pod.priority));
    }

    fn unnominate(&mut self, at: usize) {
        let pod = self.nominated.remove(at);
        self.with_nominated.remove(&pod);
        self.nominated_priorities = self
            .nominated
            .iter()
            .fold((i32::MAX, i32::MIN), |(low, high), p| {
                (low.min(p.priority), high.max(p.priority))
            });
    }

    fn bind(&mut self, pod: &Arc<PodRequirements>) {
        self.usage.add(pod);
        self.with_nominated.add(pod);
        let at = self
            .pods
            .partition_point(|p| more_important_first(p, pod).is_lt());
        self.pods.insert(at, pod.clone());
        let g = self.by_priority.partition_point(|(p, _)| *p > pod.priority);
        if self
            .by_priority
            .get(g)
            .is_none_or(|(p, _)| *p != pod.priority)
        {
            self.by_priority
                .insert(g, (pod.priority, NodeUsage::default()));
        }
        self.by_priority[g].1.add(pod);
        self.least_bound = self.pods.last().map(|p| CandidateKey::bound_of_least(p));
    }

    fn unbind(&mut self, at: usize) {
        // remove, not swap_remove: `pods` stays in importance order.
        let pod = self.pods.remove(at);
        self.usage.remove(&pod);
        self.with_nominated.remove(&pod);
        if let Some(g) = self
            .by_priority
            .iter()
            .position(|(p, _)| *p == pod.priority)
        {
            self.by_priority[g].1.remove(&pod);
            if self.by_priority[g].1.pods == 0 {
                self.by_priority.remove(g);
            }
        }
        self.least_bound = self.pods.last().map(|p| CandidateKey::bound_of_least(p));
    }

    /// The lower bound of any candidate here for `pod` (`CandidateKey::lower_bound`).
    fn lower_bound(&self, pod: &PodRequirements) -> Option<CandidateKey> {
        self.least_bound
            .filter(|k| k.highest_priority < pod.priority)
    }

    /// `preemption::is_candidate` from the per-priority totals.
    fn is_candidate(&self, pod: &PodRequirements, usage: &NodeUsage) -> bool {
        if resources_fit(&pod.requests, &self.info, usage) {
            return false;
        }
        let mut remaining = usage.clone();
        let mut any = false;
        for (_, lower) in self
            .by_priority
            .iter()
            .rev()
            .take_while(|(p, _)| *p < pod.priority)
        {
            remaining.remove_all(lower);
            any = true;
        }
        any && resources_fit(&pod.requests, &self.info, &remaining)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Bound(String),
    Nominated(String),
}

/// The static filters' verdict for one constraint set, per node index.
#[derive(Debug)]
struct StaticVerdicts {
    pass: Vec<bool>,
    /// The static rejections counted over the nodes: the start of every diagnosis.
    rejected: Histogram,
}

/// The scheduler's cluster picture. See the module docs.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<NodeSlot>,
    index: HashMap<String, usize>,
    pods: HashMap<String, (Arc<PodRequirements>, Place)>,
    verdicts: HashMap<Arc<PlacementConstraints>, Arc<StaticVerdicts>>,
}

/// The best preemption candidate so far: its key, its node's index and its victims.
type Best = Option<(CandidateKey, usize, Vec<usize>)>;

impl Snapshot {
    /// Whether a candidate keyed `k` on node `i` beats `best`. Among equal keys the smaller
    /// node name wins (kube: the first of a randomly ordered list), so decisions are
    /// reproducible.
    fn beats(&self, k: &CandidateKey, i: usize, best: &Best) -> bool {
        best.as_ref().is_none_or(|(b, j, _)| {
            k < b || (k == b && self.nodes[i].info.name < self.nodes[*j].info.name)
        })
    }

    /// Makes node `i`'s `victims` the best candidate if they beat it; the displaced
    /// candidate's vector is handed back in `victims` for reuse.
    fn offer(&self, best: &mut Best, i: usize, victims: &mut Vec<usize>) {
        let slot = &self.nodes[i];
        let k = CandidateKey::of(victims.iter().map(|&v| slot.pods[v].as_ref()));
        if self.beats(&k, i, best) {
            let kept = best.take().map(|(.., v)| v).unwrap_or_default();
            *best = Some((k, i, std::mem::replace(victims, kept)));
        }
    }

    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    pub fn with_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Snapshot {
        let mut s = Snapshot::new();
        for n in nodes {
            s.upsert_node(n);
        }
        s
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i].info)
    }

    pub fn usage(&self, name: &str) -> Option<&NodeUsage> {
        self.index.get(name).map(|&i| &self.nodes[i].usage)
    }

    /// The pods bound to a node (non-terminal ones; terminating ones included).
    pub fn pods_on(&self, name: &str) -> &[Arc<PodRequirements>] {
        self.index.get(name).map_or(&[], |&i| &self.nodes[i].pods)
    }

    /// Where a tracked pod is: `(node, bound)`; nominated pods give `bound == false`.
    pub fn placement_of(&self, key: &str) -> Option<(&str, bool)> {
        self.pods.get(key).map(|(_, place)| match place {
            Place::Bound(n) => (n.as_str(), true),
            Place::Nominated(n) => (n.as_str(), false),
        })
    }

    /// A tracked (bound or nominated) pod's requirements.
    pub fn tracked(&self, key: &str) -> Option<&PodRequirements> {
        self.pods.get(key).map(|(pod, _)| pod.as_ref())
    }

    /// Checks the per-node caches against the pods they summarise (tests).
    #[cfg(test)]
    pub(crate) fn check_caches(&self) {
        for slot in &self.nodes {
            let name = &slot.info.name;
            let expected = NodeUsage::from_pods(slot.pods.iter().map(|p| p.as_ref()));
            assert_eq!(slot.usage, expected, "usage of {name}");
            let mut groups: Vec<(i32, NodeUsage)> = Vec::new();
            for p in &slot.pods {
                match groups.last_mut() {
                    Some((prio, u)) if *prio == p.priority => u.add(p),
                    _ => groups.push((p.priority, NodeUsage::from_pods([p.as_ref()]))),
                }
            }
            assert_eq!(slot.by_priority, groups, "per-priority totals of {name}");
            let least = slot.pods.last().map(|p| CandidateKey::bound_of_least(p));
            assert_eq!(slot.least_bound, least, "least bound of {name}");
        }
    }

    /// `NodeSlot::is_candidate` for `pod` on the node `name` (tests).
    #[cfg(test)]
    pub(crate) fn is_candidate_on(&self, name: &str, pod: &PodRequirements) -> bool {
        let i = self.index[name];
        let usage = self.usage_for(i, pod, &pod.key(), self.own_nomination(&pod.key()));
        self.nodes[i].is_candidate(pod, &usage)
    }

    /// Adds a node or replaces what is known of it (labels, taints, allocatable).
    pub fn upsert_node(&mut self, info: NodeInfo) {
        self.verdicts.clear();
        if let Some(&i) = self.index.get(&info.name) {
            self.nodes[i].info = info;
            return;
        }
        let name = info.name.clone();
        let i = self.nodes.len();
        self.nodes.push(NodeSlot::new(info));
        self.index.insert(name.clone(), i);
        // Pods seen before their node (watch order is not guaranteed) attach now.
        let waiting: Vec<Arc<PodRequirements>> = self
            .pods
            .values()
            .filter(
                |(_, place)| matches!(place, Place::Bound(n) | Place::Nominated(n) if *n == name),
            )
            .map(|(p, _)| p.clone())
            .collect();
        for p in waiting {
            self.upsert_pod_arc(p);
        }
    }

    /// Forgets a node; its pods stay tracked (and reattach if it comes back).
    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.verdicts.clear();
        self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            self.index.insert(self.nodes[i].info.name.clone(), i);
        }
    }

    fn detach(&mut self, key: &str) -> Option<Arc<PodRequirements>> {
        let (pod, place) = self.pods.remove(key)?;
        let (node, bound) = match &place {
            Place::Bound(n) => (n, true),
            Place::Nominated(n) => (n, false),
        };
        if let Some(&i) = self.index.get(node) {
            let slot = &mut self.nodes[i];
            if bound {
                if let Some(pos) = slot.pods.iter().position(|p| p.has_key(key)) {
                    slot.unbind(pos);
                }
            } else if let Some(pos) = slot.nominated.iter().position(|p| p.has_key(key)) {
                slot.unnominate(pos);
            }
        }
        Some(pod)
    }

    /// Records a pod from a watch event (added or modified). Bound, non-terminal pods
    /// count on their node; unbound pods with a `nominatedNodeName` count as nominated;
    /// anything else is not tracked.
    pub fn upsert_pod(&mut self, pod: PodRequirements) {
        self.upsert_pod_arc(Arc::new(pod));
    }

    fn upsert_pod_arc(&mut self, pod: Arc<PodRequirements>) {
        let key = pod.key();
        self.detach(&key);
        if pod.terminal {
            return;
        }
        let place = match (&pod.node_name, &pod.nominated_node_name) {
            (Some(n), _) => Place::Bound(n.clone()),
            (None, Some(n)) if pod.deletion_timestamp.is_none() => Place::Nominated(n.clone()),
            _ => return,
        };
        if let Some(&i) = self.index.get(match &place {
            Place::Bound(n) | Place::Nominated(n) => n,
        }) {
            let slot = &mut self.nodes[i];
            match place {
                Place::Bound(_) => slot.bind(&pod),
                Place::Nominated(_) => slot.nominate(&pod),
            }
        }
        self.pods.insert(key, (pod, place));
    }

    /// Forgets a pod (deleted from the API).
    pub fn remove_pod(&mut self, key: &str) {
        self.detach(key);
    }

    fn static_verdicts(&mut self, placement: &Arc<PlacementConstraints>) -> Arc<StaticVerdicts> {
        if let Some(v) = self.verdicts.get(placement) {
            return v.clone();
        }
        let reasons: Vec<Option<Reason>> = self
            .nodes
            .iter()
            .map(|s| static_filter(placement, &s.info))
            .collect();
        let mut rejected = Histogram::default();
        for r in reasons.iter().flatten() {
            rejected.add_reason(r);
        }
        let v = Arc::new(StaticVerdicts {
            pass: reasons.iter().map(Option::is_none).collect(),
            rejected,
        });
        // A long-lived scheduler meets many one-off constraint sets; bound the cache.
        if self.verdicts.len() >= 4096 {
            self.verdicts.clear();
        }
        self.verdicts.insert(placement.clone(), v.clone());
        v
    }

    /// The index of the node where the pod `key` is nominated, if any: the only node
    /// whose nominated pods can include the pod itself.
    fn own_nomination(&self, key: &str) -> Option<usize> {
        match self.pods.get(key) {
            Some((_, Place::Nominated(n))) => self.index.get(n).copied(),
            _ => None,
        }
    }

    /// The node's usage as `pod` must see it: plus the pods nominated there with at least
    /// its priority (other than itself; `own` is [`Snapshot::own_nomination`] of `key`).
    fn usage_for(
        &self,
        i: usize,
        pod: &PodRequirements,
        key: &str,
        own: Option<usize>,
    ) -> Cow<'_, NodeUsage> {
        let slot = &self.nodes[i];
        let maybe_self = own == Some(i);
        let (low, high) = slot.nominated_priorities;
        if slot.nominated.is_empty() || pod.priority > high {
            return Cow::Borrowed(&slot.usage);
        }
        if pod.priority <= low && !maybe_self {
            return Cow::Borrowed(&slot.with_nominated);
        }
        let mut usage = Cow::Borrowed(&slot.usage);
        for n in &slot.nominated {
            if n.priority >= pod.priority && !(maybe_self && n.has_key(key)) {
                usage.to_mut().add(n);
            }
        }
        usage
    }

    /// One scheduling cycle for `pod` (which should [`PodRequirements::wants_scheduling`]).
    /// Pure with respect to the cluster: nothing changes until [`Snapshot::assume`].
    pub fn schedule(&mut self, pod: &PodRequirements) -> Decision {
        if self.nodes.is_empty() {
            return Decision::Unschedulable {
                message: message::NO_NODES_AVAILABLE.to_string(),
                nomination: Nomination::Keep,
                preemption: None,
            };
        }
        if let Some(rejection) = &pod.volume_rejection {
            return self.prefilter_rejection(pod, rejection);
        }
        let key = pod.key();
        let own = self.own_nomination(&key);
        let verdicts = self.static_verdicts(&pod.placement);
        // A nominated pod tries its node first (kube's evaluateNominatedNode).
        if let Some(&i) = pod
            .nominated_node_name
            .as_ref()
            .and_then(|n| self.index.get(n))
        {
            if verdicts.pass[i]
                && resources_fit(
                    &pod.requests,
                    &self.nodes[i].info,
                    &self.usage_for(i, pod, &key, own),
                )
            {
                return Decision::Bind {
                    node: self.nodes[i].info.name.clone(),
                };
            }
        }
        // Filter and diagnose in one pass, as kube-scheduler's findNodesThatFitPod does:
        // each rejected node's core-resource reasons are counted by their bit set.
        let scalars = !pod.requests.scalars.is_empty();
        let mut misfits = [0usize; 16];
        let mut best: Option<(usize, NodeScore)> = None;
        for (i, slot) in self.nodes.iter().enumerate() {
            if !verdicts.pass[i] {
                continue;
            }
            let usage = self.usage_for(i, pod, &key, own);
            let misfit = core_misfit(&pod.requests, &slot.info, &usage);
            if misfit != 0 {
                misfits[usize::from(misfit)] += 1;
                continue;
            }
            if scalars && !resources_fit(&pod.requests, &slot.info, &usage) {
                continue;
            }
            let score = score_node(pod, &slot.info, &usage);
            let better = match &best {
                None => true,
                Some((j, s)) => {
                    score > *s || (score == *s && slot.info.name < self.nodes[*j].info.name)
                }
            };
            if better {
                best = Some((i, score));
            }
        }
        if let Some((i, _)) = best {
            return Decision::Bind {
                node: self.nodes[i].info.name.clone(),
            };
        }
        // Nothing fits: the diagnosis, then preemption (the PostFilter).
        let mut diagnosis = verdicts.rejected.clone();
        if scalars {
            // Scalar resources have no bit: diagnose those pods node by node.
            for (i, slot) in self.nodes.iter().enumerate() {
                if verdicts.pass[i] {
                    for_each_resource_reason(
                        &pod.requests,
                        &slot.info,
                        &self.usage_for(i, pod, &key, own),
                        |r| diagnosis.add_reason(&r),
                    );
                }
            }
        } else {
            for (misfit, &n) in misfits.iter().enumerate() {
                if n > 0 {
                    for_each_misfit_reason(misfit as u8, |r| diagnosis.add_reason_n(&r, n));
                }
            }
        }
        let (post, nomination, preemption) = self.preempt(pod, &key, own, &verdicts);
        Decision::Unschedulable {
            message: message::fit_error_message(self.nodes.len(), &diagnosis, post.as_deref()),
            nomination,
            preemption,
        }
    }

    /// A PreFilter said no for every node (`VolumeBinding`: a claim not found…): kube's
    /// `FitError` puts its message where the histogram goes, and preemption finds every
    /// node unresolvable.
    fn prefilter_rejection(&self, pod: &PodRequirements, rejection: &str) -> Decision {
        let n = self.nodes.len();
        let post = if pod.preemption_policy == PreemptionPolicy::Never {
            format!(
                "{}{}",
                message::PREEMPTION_PREFIX,
                message::NOT_ELIGIBLE_NEVER
            )
        } else {
            let mut statuses = Histogram::default();
            statuses.add_text(message::PREEMPTION_NOT_HELPFUL, n);
            format!(
                "{}{}",
                message::PREEMPTION_PREFIX,
                message::fit_error_message(n, &statuses, None)
            )
        };
        Decision::Unschedulable {
            message: format!(
                "{} {rejection}. {post}",
                message::fit_error_message(n, &Histogram::default(), None)
            ),
            nomination: Nomination::Keep,
            preemption: None,
        }
    }

    fn preempt(
        &self,
        pod: &PodRequirements,
        key: &str,
        own: Option<usize>,
        verdicts: &StaticVerdicts,
    ) -> (Option<String>, Nomination, Option<PreemptionPlan>) {
        let not_eligible = |why: &str| {
            (
                Some(format!("{}{why}", message::PREEMPTION_PREFIX)),
                Nomination::Keep,
                None,
            )
        };
        if pod.preemption_policy == PreemptionPolicy::Never {
            return not_eligible(message::NOT_ELIGIBLE_NEVER);
        }
        // Already nominated and lower-priority pods there still terminating: wait for them
        // rather than preempting more — unless the nominated node can no longer take the
        // pod at all. kube-scheduler counts only pods deleted *by preemption* (the
        // DisruptionTarget condition); any deletion counts here, so a controller that
        // deletes victims before (or without) patching the condition never preempts twice.
        if let Some(&i) = pod
            .nominated_node_name
            .as_ref()
            .and_then(|n| self.index.get(n))
        {
            if verdicts.pass[i]
                && self.nodes[i]
                    .pods
                    .iter()
                    .any(|p| p.priority < pod.priority && p.deletion_timestamp.is_some())
            {
                return not_eligible(message::NOT_ELIGIBLE_TERMINATING);
            }
        }
        let mut statuses = Histogram::default();
        // Nodes are dry-run from an offset, as kube-scheduler's DefaultPreemption does,
        // until enough candidates are found; only the best so far keeps its victims. The
        // offset is the pod's own (a hash of its key) rather than random, so that a
        // decision can be reproduced while different pods still start at different nodes.
        let n = self.nodes.len();
        let wanted = candidates_wanted(n);
        let offset = start_offset(key, n);
        let mut found = 0;
        let mut best: Best = None;
        let mut victims = Vec::new();
        let mut tried = 0;
        let mut step = 0;
        while step < n && found < wanted {
            let i = (offset + step) % n;
            step += 1;
            let slot = &self.nodes[i];
            if !verdicts.pass[i] {
                continue; // unresolvable: counted below as "not helpful"
            }
            tried += 1;
            let Some(lb) = slot.lower_bound(pod) else {
                // No pod of lower priority (what the dry run would find first).
                statuses.add_text(message::NO_PREEMPTION_VICTIMS, 1);
                continue;
            };
            let usage = self.usage_for(i, pod, key, own);
            // Skip the dry run where even the best conceivable victims could not beat the
            // best candidate so far (statuses only matter when no candidate is found) —
            // but count the node if it is a candidate, as kube-scheduler, which dry-runs
            // it, does: the search window stays kube's.
            if best.is_some() && !self.beats(&lb, i, &best) {
                if slot.is_candidate(pod, &usage) {
                    found += 1;
                }
                continue;
            }
            match select_victims_in_order(pod, &slot.info, &usage, &slot.pods, &mut victims) {
                Ok(()) if !victims.is_empty() => {
                    found += 1;
                    self.offer(&mut best, i, &mut victims);
                }
                // The pod fits without evicting anyone: only nominated pods of its priority
                // stood in the way. kube reports this as an error status; a later cycle
                // (after the nominated pods bind) will place it.
                Ok(()) => statuses.add_text(message::NO_PREEMPTION_VICTIMS, 1),
                Err(NotACandidate::NoVictims) => {
                    statuses.add_text(message::NO_PREEMPTION_VICTIMS, 1)
                }
                Err(NotACandidate::StillDoesNotFit(reasons)) => {
                    for r in &reasons {
                        statuses.add_reason(r);
                    }
                }
            }
        }
        // Past the window (a deliberate difference from kube-scheduler, which stops there):
        // a node whose least important pod ranks below the window's best candidate's most
        // important victim may offer a way out that evicts nothing of that priority —
        // executors instead of a Spark driver. Only those nodes are dry-run (one comparison
        // for the rest), and the best of them wins, so the lowest highest-victim priority is
        // cluster-wide, as in a full search. In the common case (the window found victims
        // of the lowest priority anywhere) this costs one comparison per remaining node.
        let limit = best.as_ref().map(|(b, ..)| b.highest_priority);
        while let (Some(limit), true) = (limit, step < n) {
            let i = (offset + step) % n;
            step += 1;
            let slot = &self.nodes[i];
            if !verdicts.pass[i] {
                continue;
            }
            let Some(lb) = slot.lower_bound(pod) else {
                continue;
            };
            if lb.highest_priority >= limit {
                continue;
            }
            if best.is_some() && !self.beats(&lb, i, &best) {
                continue;
            }
            let usage = self.usage_for(i, pod, key, own);
            if select_victims_in_order(pod, &slot.info, &usage, &slot.pods, &mut victims).is_ok()
                && !victims.is_empty()
            {
                self.offer(&mut best, i, &mut victims);
            }
        }
        let Some((_, chosen, victims)) = best else {
            statuses.add_text(message::PREEMPTION_NOT_HELPFUL, self.nodes.len() - tried);
            let inner = message::fit_error_message(self.nodes.len(), &statuses, None);
            return (
                Some(format!("{}{inner}", message::PREEMPTION_PREFIX)),
                Nomination::Clear,
                None,
            );
        };
        let slot = &self.nodes[chosen];
        let plan = PreemptionPlan {
            node: slot.info.name.clone(),
            victims: victims
                .iter()
                .map(|&v| {
                    let v = &slot.pods[v];
                    Victim {
                        pod: PodRef::of(v),
                        priority: v.priority,
                        already_terminating: v.deletion_timestamp.is_some(),
                    }
                })
                .collect(),
            clear_nominated: slot
                .nominated
                .iter()
                .filter(|n| n.priority < pod.priority && !n.has_key(key))
                .map(|n| PodRef::of(n))
                .collect(),
        };
        (None, Nomination::Set(plan.node.clone()), Some(plan))
    }

    /// Applies a decision to the picture at once, before the API calls land (kube's
    /// "assume"): a bound pod counts on its node; a preemption marks its victims as
    /// terminating by preemption, nominates the preemptor, and clears the nominations it
    /// displaced. Watch events that follow overwrite these entries with the real objects.
    pub fn assume(&mut self, pod: &PodRequirements, decision: &Decision, now: DateTime<Utc>) {
        match decision {
            Decision::Bind { node } => {
                let mut bound = pod.clone();
                bound.node_name = Some(node.clone());
                bound.nominated_node_name = None;
                self.upsert_pod(bound);
            }
            Decision::Unschedulable {
                nomination,
                preemption,
                ..
            } => {
                if let Some(plan) = preemption {
                    for v in &plan.victims {
                        let key = if v.pod.uid.is_empty() {
                            format!("{}/{}", v.pod.namespace, v.pod.name)
                        } else {
                            v.pod.uid.clone()
                        };
                        if let Some((p, _)) = self.pods.get(&key) {
                            let mut p = (**p).clone();
                            p.deletion_timestamp.get_or_insert(now);
                            p.preempted_by_scheduler = true;
                            self.upsert_pod(p);
                        }
                    }
                    for r in &plan.clear_nominated {
                        let key = if r.uid.is_empty() {
                            format!("{}/{}", r.namespace, r.name)
                        } else {
                            r.uid.clone()
                        };
                        self.remove_pod(&key);
                    }
                }
                let mut pending = pod.clone();
                match nomination {
                    Nomination::Keep => return,
                    Nomination::Clear => pending.nominated_node_name = None,
                    Nomination::Set(n) => pending.nominated_node_name = Some(n.clone()),
                }
                self.upsert_pod(pending);
            }
        }
    }
}

/// How many candidates preemption looks for before it stops dry-running nodes:
/// kube-scheduler's `minCandidateNodesPercentage` (10 %) of the nodes, at least
/// `minCandidateNodesAbsolute` (100). Clusters of up to 100 nodes are searched whole.
pub fn candidates_wanted(nodes: usize) -> usize {
    (nodes / 10).max(100)
}

/// Where a pod's preemption search starts among `nodes` nodes (FNV-1a of its key).
pub fn start_offset(key: &str, nodes: usize) -> usize {
    if nodes == 0 {
        return 0;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % nodes as u64) as usize
}
