//! The provisioning simulation (Karpenter's `Scheduler.Solve`, reference §3): which
//! pending pods fit existing or in-flight capacity, and which new NodeClaims to create
//! for the rest.
//!
//! Order of business, per pod (pods sorted by CPU desc, memory desc, creation, uid):
//! 1. **state nodes** — existing nodes and in-flight claims, initialized first, then by
//!    name — through the scheduling crate's filter (taints, selector/affinity, resources);
//! 2. **new claims of this pass**, fewest pods first;
//! 3. **a new claim** from the first pool (weight desc, name desc) the pod is compatible
//!    with, its instance types narrowed to those compatible, fitting and offered, within
//!    the pool's limits.
//!
//! A claim keeps every instance type that can still hold all its pods; when the pass ends
//! its options are sorted by price and it gets a launch choice (spot when allowed and
//! offered, then the cheapest type × zone). See [`ScheduleInput::right_size`] for the one
//! departure from Karpenter, which the benchmark motivates.

use std::cmp::Ordering;

use sparkyard_instance_types::NodeResources;
use sparkyard_scheduling::filter::{self, first_untolerated_taint, NodeUsage};
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{NodeInfo, PodRequirements, Resources, Taint};

use super::format::resources_string;
use super::offerings::InstanceOption;
use super::pool::{pool_order, NodePoolSpec};
use super::requirements::{
    Operator, Requirement, Requirements, ValueSet, LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE,
};

/// `MaxInstanceTypes` the AWS provider sends to CreateFleet (v0.36+).
pub const MAX_INSTANCE_TYPES: usize = 60;

/// Taints a node carries only until it is up; ignored on nodes not yet initialized,
/// which will lose them (Karpenter's `KnownEphemeralTaints`).
const EPHEMERAL_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "karpenter.sh/unregistered",
];

/// A node (or an in-flight NodeClaim, described by its pool's shape) pods may go to.
#[derive(Debug, Clone)]
pub struct StateNode {
    /// Name, labels, taints (pool taints, not startup taints, for a claim), allocatable.
    pub info: NodeInfo,
    /// What the node's pods (daemons included) request now.
    pub usage: NodeUsage,
    pub initialized: bool,
    /// Marked for deletion: no pod is placed on it.
    pub deleting: bool,
}

#[derive(Debug, Clone)]
pub struct ScheduleInput<'a> {
    pub pools: &'a [NodePoolSpec],
    pub nodes: &'a [StateNode],
    /// Provisionable pods (see [`crate::is_provisionable`]), in any order.
    pub pods: &'a [PodRequirements],
    /// One pod per DaemonSet (its template): the overhead each new node carries.
    pub daemonsets: &'a [PodRequirements],
    /// The region's instance types with offerings ([`crate::instance_options`]).
    pub instance_types: &'a [InstanceOption],
    /// After the pass, shrink each new claim's options to the cheapest type that holds
    /// its pods and re-pack claims that fit together into one cheaper node. Karpenter
    /// does not do this; `false` gives its first-fit result exactly.
    pub right_size: bool,
}

/// The launch the AWS provider would make for a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    pub price: f64,
}

#[derive(Debug, Clone)]
pub struct NewClaim {
    pub pool: String,
    /// Indices into [`ScheduleInput::pods`].
    pub pods: Vec<usize>,
    /// Σ pod requests + daemon overhead, and the pod count (daemons included), as
    /// `spec.resources.requests`.
    pub requests: NodeResources,
    pub daemon_overhead: NodeResources,
    /// Pool ∪ pods, plus `node.kubernetes.io/instance-type In [options]`.
    pub requirements: Vec<Requirement>,
    /// Compatible types that fit, cheapest available offering first, at most 60.
    pub instance_types: Vec<String>,
    pub launch: Option<Launch>,
    pub taints: Vec<Taint>,
    pub startup_taints: Vec<Taint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExistingPlacement {
    pub node: String,
    pub pods: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodError {
    pub pod: usize,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct ScheduleResults {
    pub new_claims: Vec<NewClaim>,
    /// State nodes that received pods (by name).
    pub existing: Vec<ExistingPlacement>,
    pub errors: Vec<PodError>,
}

impl ScheduleResults {
    /// Every pod placed somewhere?
    pub fn all_scheduled(&self) -> bool {
        self.errors.is_empty()
    }

    /// Hourly price of the launches chosen.
    pub fn launch_cost(&self) -> f64 {
        self.new_claims
            .iter()
            .filter_map(|c| c.launch.as_ref())
            .map(|l| l.price)
            .sum()
    }
}

/// Karpenter's queue order: CPU request desc, memory desc, creation time, uid.
pub fn pod_order(a: &PodRequirements, b: &PodRequirements) -> Ordering {
    b.requests
        .milli_cpu
        .cmp(&a.requests.milli_cpu)
        .then_with(|| b.requests.memory.cmp(&a.requests.memory))
        .then_with(|| a.creation_timestamp.cmp(&b.creation_timestamp))
        .then_with(|| a.uid.cmp(&b.uid))
}

/// A pool ready to stamp out claims.
pub(crate) struct Template<'a> {
    pub(crate) pool: &'a NodePoolSpec,
    pub(crate) requirements: Requirements,
    pub(crate) overhead: Resources,
    pub(crate) overhead_pods: i64,
    /// Indices into `instance_types` compatible with the pool and offered.
    pub(crate) options: Vec<usize>,
    /// Remaining limits: cpu, memory, nodes (`None` = unlimited).
    pub(crate) remaining: [Option<i64>; 3],
}

/// A new claim while the pass runs.
#[derive(Clone)]
pub(crate) struct Claim {
    pub(crate) template: usize,
    pub(crate) requirements: Requirements,
    /// Indices into `instance_types` that can hold every pod so far.
    pub(crate) options: Vec<usize>,
    /// Daemon overhead + Σ pod requests.
    pub(crate) requests: Resources,
    /// Daemons + pods.
    pub(crate) pod_count: i64,
    pub(crate) pods: Vec<usize>,
}

/// One requirement set per way the pod may be satisfied: its node selector with each of
/// its required node-affinity terms in turn (Karpenter relaxes to the next term when one
/// fails); invalid terms are skipped.
pub(crate) fn pod_requirement_sets(pod: &PodRequirements) -> Vec<Requirements> {
    let p = &pod.placement;
    match &p.required_terms {
        None => vec![Requirements::from_pod(&p.node_selector, None)],
        Some(terms) => terms
            .iter()
            .filter(|t| t.valid && !t.match_expressions.is_empty() && t.match_fields.is_empty())
            .map(|t| Requirements::from_pod(&p.node_selector, Some(t)))
            .collect(),
    }
}

pub(crate) fn untolerated(taints: &[Taint], pod: &PodRequirements) -> Option<String> {
    first_untolerated_taint(taints, &pod.placement.tolerations).map(|t| {
        format!(
            "did not tolerate {}={}:{}",
            t.key,
            t.value,
            t.effect.as_str()
        )
    })
}

fn node_resources(r: &Resources, pods: i64) -> NodeResources {
    NodeResources {
        cpu_millis: r.milli_cpu,
        memory_bytes: r.memory,
        pods: pods.max(0) as u32,
        ephemeral_bytes: r.ephemeral_storage,
    }
}

pub(crate) fn fits(it: &InstanceOption, requests: &Resources, pods: i64) -> bool {
    let a = &it.allocatable;
    requests.milli_cpu <= a.cpu_millis
        && requests.memory <= a.memory_bytes
        && requests.ephemeral_storage <= a.ephemeral_bytes
        && pods <= i64::from(a.pods)
        && requests.scalars.iter().all(|(_, v)| *v <= 0)
}

pub(crate) fn has_offering(it: &InstanceOption, reqs: &Requirements) -> bool {
    it.cheapest(reqs, None).is_some()
}

/// Karpenter's `FailureReason` for a claim left with no instance type.
fn failure_reason(compat: bool, fit: bool, offer: bool, pairs: [bool; 3]) -> &'static str {
    let [req_fit, req_offer, fit_offer] = pairs;
    match (compat, fit, offer) {
        (false, false, false) => "no instance type met the scheduling requirements or had enough resources or had a required offering",
        (false, false, _) => "no instance type met the scheduling requirements or had enough resources",
        (false, _, false) => "no instance type met the scheduling requirements or had a required offering",
        (_, false, false) => "no instance type had enough resources or had a required offering",
        (false, _, _) => "no instance type met all requirements",
        (_, false, _) => "no instance type has enough resources",
        (_, _, false) => "no instance type has the required offering",
        _ if req_fit => "no instance type which met the scheduling requirements and had enough resources, had a required offering",
        _ if fit_offer => "no instance type which had enough resources and the required offering met the scheduling requirements",
        _ if req_offer => "no instance type which met the scheduling requirements and the required offering had the required resources",
        _ => "no instance type met the requirements/resources/offering tuple",
    }
}

pub(crate) struct Solver<'a> {
    input: &'a ScheduleInput<'a>,
    templates: Vec<Template<'a>>,
    nodes: Vec<(usize, NodeInfo, NodeUsage, Vec<usize>)>,
    claims: Vec<Claim>,
}

impl<'a> Solver<'a> {
    fn new(input: &'a ScheduleInput<'a>) -> Solver<'a> {
        let mut pools: Vec<&NodePoolSpec> = input.pools.iter().collect();
        pools.sort_by(|a, b| pool_order(a, b));
        let templates = pools
            .into_iter()
            .filter_map(|pool| {
                let requirements = pool.node_requirements();
                let options: Vec<usize> = input
                    .instance_types
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| {
                        it.requirements.intersects(&requirements).is_ok()
                            && has_offering(it, &requirements)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if options.is_empty() {
                    return None; // "skipping, nodepool requirements filtered out all instance types"
                }
                let mut overhead = Resources::default();
                let mut overhead_pods = 0;
                for d in input.daemonsets {
                    let tolerated = untolerated(&pool.taints, d).is_none();
                    let compatible = pod_requirement_sets(d)
                        .iter()
                        .any(|r| requirements.compatible(r).is_ok());
                    if tolerated && compatible {
                        overhead.add(&d.requests);
                        overhead_pods += 1;
                    }
                }
                let remaining = match &pool.limits {
                    None => [None, None, None],
                    Some(l) => [
                        l.cpu_millis.map(|v| v - pool.usage.cpu_millis),
                        l.memory_bytes.map(|v| v - pool.usage.memory_bytes),
                        l.nodes.map(|v| v - pool.usage.nodes),
                    ],
                };
                Some(Template {
                    pool,
                    requirements,
                    overhead,
                    overhead_pods,
                    options,
                    remaining,
                })
            })
            .collect();
        let mut nodes: Vec<(usize, NodeInfo, NodeUsage, Vec<usize>)> = input
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.deleting)
            .map(|(i, n)| {
                let mut info = n.info.clone();
                if !n.initialized {
                    info.taints
                        .retain(|t| !EPHEMERAL_TAINTS.contains(&t.key.as_str()));
                }
                (i, info, n.usage.clone(), Vec::new())
            })
            .collect();
        nodes.sort_by(|a, b| {
            let (na, nb) = (&input.nodes[a.0], &input.nodes[b.0]);
            nb.initialized
                .cmp(&na.initialized)
                .then_with(|| a.1.name.cmp(&b.1.name))
        });
        Solver {
            input,
            templates,
            nodes,
            claims: Vec::new(),
        }
    }

    /// Adds the pod to the claim if it can take it (Karpenter's `NodeClaim.Add`).
    fn try_add(&self, claim: &Claim, pod_index: usize) -> Result<Claim, String> {
        try_add(
            self.input,
            &self.templates[claim.template],
            claim,
            pod_index,
        )
    }

    fn place(&mut self, pod_index: usize) -> Result<(), String> {
        let pod = &self.input.pods[pod_index];
        for (_, info, usage, placed) in self.nodes.iter_mut() {
            if filter::fits(pod, info, usage).is_ok() {
                usage.add(pod);
                placed.push(pod_index);
                return Ok(());
            }
        }
        // In-flight claims of this pass, fewest pods first (stable, as Go's sort is not
        // guaranteed to be but ties rarely matter).
        let mut order: Vec<usize> = (0..self.claims.len()).collect();
        order.sort_by_key(|&i| self.claims[i].pods.len());
        for i in order {
            if let Ok(updated) = self.try_add(&self.claims[i], pod_index) {
                self.claims[i] = updated;
                return Ok(());
            }
        }
        let mut errs = Vec::new();
        for t in 0..self.templates.len() {
            let template = &self.templates[t];
            let mut options = template.options.clone();
            let [cpu, mem, nodes] = template.remaining;
            if cpu.is_some() || mem.is_some() || nodes.is_some() {
                options.retain(|&i| {
                    let c = &self.input.instance_types[i].capacity;
                    cpu.is_none_or(|r| c.cpu_millis <= r)
                        && mem.is_none_or(|r| c.memory_bytes <= r)
                        && nodes.is_none_or(|r| r >= 1)
                });
                if options.is_empty() {
                    errs.push(format!(
                        "all available instance types exceed limits for nodepool: {:?}",
                        template.pool.name
                    ));
                    continue;
                }
            }
            let empty = Claim {
                template: t,
                requirements: template.requirements.clone(),
                options,
                requests: template.overhead.clone(),
                pod_count: template.overhead_pods,
                pods: Vec::new(),
            };
            match self.try_add(&empty, pod_index) {
                Ok(claim) => {
                    // Pessimistic limits: the largest type this claim might become.
                    let max = |f: fn(&NodeResources) -> i64| {
                        claim
                            .options
                            .iter()
                            .map(|&i| f(&self.input.instance_types[i].capacity))
                            .max()
                            .unwrap_or(0)
                    };
                    let (max_cpu, max_mem) = (max(|c| c.cpu_millis), max(|c| c.memory_bytes));
                    let r = &mut self.templates[t].remaining;
                    r[0] = r[0].map(|v| v - max_cpu);
                    r[1] = r[1].map(|v| v - max_mem);
                    r[2] = r[2].map(|v| v - 1);
                    self.claims.push(claim);
                    return Ok(());
                }
                Err(e) => errs.push(format!(
                    "incompatible with nodepool {:?}, daemonset overhead={}, {e}",
                    template.pool.name,
                    resources_string(&node_resources(&template.overhead, template.overhead_pods))
                )),
            }
        }
        if errs.is_empty() {
            errs.push("no nodepools found".into());
        }
        Err(errs.join("; "))
    }
}

/// Adds the pod to a claim of `template` if it can take it (Karpenter's `NodeClaim.Add`):
/// taints, requirement compatibility, then the instance types that stay compatible, fit
/// and offered. Returns the grown claim, or Karpenter's reason.
pub(crate) fn try_add(
    input: &ScheduleInput,
    template: &Template,
    claim: &Claim,
    pod_index: usize,
) -> Result<Claim, String> {
    let pod = &input.pods[pod_index];
    if let Some(e) = untolerated(&template.pool.taints, pod) {
        return Err(e);
    }
    let mut requests = claim.requests.clone();
    requests.add(&pod.requests);
    let pod_count = claim.pod_count + 1;
    let sets = pod_requirement_sets(pod);
    if sets.is_empty() {
        return Err("incompatible requirements, no satisfiable node affinity term".into());
    }
    let mut last_err = String::new();
    for pod_reqs in &sets {
        if let Err(e) = claim.requirements.compatible(pod_reqs) {
            last_err = format!("incompatible requirements, {e}");
            continue;
        }
        let mut merged = claim.requirements.clone();
        merged.merge(pod_reqs);
        // Fast path: the pod narrows nothing, so only the resource fit can change.
        let narrowed = merged != claim.requirements;
        let mut flags = (false, false, false, [false; 3]);
        let mut options = Vec::with_capacity(claim.options.len());
        for &i in &claim.options {
            let it = &input.instance_types[i];
            let fit = fits(it, &requests, pod_count);
            let (compat, offer) = if narrowed {
                (
                    it.requirements.intersects(&merged).is_ok(),
                    has_offering(it, &merged),
                )
            } else {
                (true, true)
            };
            if compat && fit && offer {
                options.push(i);
            }
            flags.0 |= compat;
            flags.1 |= fit;
            flags.2 |= offer;
            flags.3[0] |= compat && fit && !offer;
            flags.3[1] |= compat && offer && !fit;
            flags.3[2] |= fit && offer && !compat;
        }
        if options.is_empty() {
            let mut cumulative = template.overhead.clone();
            cumulative.add(&pod.requests);
            let shown = node_resources(&cumulative, template.overhead_pods + 1);
            last_err = format!(
                "no instance type satisfied resources {} and requirements {} ({})",
                resources_string(&shown),
                merged,
                failure_reason(flags.0, flags.1, flags.2, flags.3)
            );
            continue;
        }
        let mut pods = claim.pods.clone();
        pods.push(pod_index);
        return Ok(Claim {
            template: claim.template,
            requirements: merged,
            options,
            requests,
            pod_count,
            pods,
        });
    }
    Err(last_err)
}

/// Runs the simulation. Deterministic: same input, same result.
pub fn schedule(input: &ScheduleInput) -> ScheduleResults {
    let mut solver = Solver::new(input);
    let mut queue: Vec<usize> = (0..input.pods.len()).collect();
    queue.sort_by(|&a, &b| pod_order(&input.pods[a], &input.pods[b]));
    let mut errors = Vec::new();
    for p in queue {
        if let Err(message) = solver.place(p) {
            errors.push(PodError { pod: p, message });
        }
    }
    if input.right_size {
        super::rightsize::improve(input, &solver.templates, &mut solver.claims);
    }
    let existing = solver
        .nodes
        .iter()
        .filter(|n| !n.3.is_empty())
        .map(|n| ExistingPlacement {
            node: n.1.name.clone(),
            pods: n.3.clone(),
        })
        .collect();
    let new_claims = solver
        .claims
        .iter()
        .map(|c| finish(input, &solver.templates[c.template], c))
        .collect();
    errors.sort_by_key(|e| e.pod);
    ScheduleResults {
        new_claims,
        existing,
        errors,
    }
}

/// The price a claim would launch at with `options` under `reqs`: spot if allowed and
/// offered by any option, else on-demand; the cheapest (type, zone) of that capacity type.
/// The launch the AWS provider makes for an existing NodeClaim: among the instance types
/// its requirements allow, the same choice as for a claim planned in this pass.
pub fn launch_for(types: &[InstanceOption], reqs: &Requirements) -> Option<Launch> {
    let options: Vec<usize> = (0..types.len())
        .filter(|&i| reqs.allows(LABEL_INSTANCE_TYPE, &types[i].instance_type.name))
        .collect();
    launch_choice(types, &options, reqs)
}

pub(crate) fn launch_choice(
    types: &[InstanceOption],
    options: &[usize],
    reqs: &Requirements,
) -> Option<Launch> {
    for ct in [CapacityType::Spot, CapacityType::OnDemand] {
        if !reqs.allows(LABEL_CAPACITY_TYPE, ct.karpenter()) {
            continue;
        }
        let best = options
            .iter()
            .filter_map(|&i| Some((i, types[i].cheapest(reqs, Some(ct))?)))
            .min_by(|a, b| {
                a.1.price.total_cmp(&b.1.price).then_with(|| {
                    types[a.0]
                        .instance_type
                        .name
                        .cmp(&types[b.0].instance_type.name)
                })
            });
        if let Some((i, o)) = best {
            return Some(Launch {
                instance_type: types[i].instance_type.name.clone(),
                zone: o.zone.clone(),
                capacity_type: ct,
                price: o.price,
            });
        }
    }
    None
}

fn finish(input: &ScheduleInput, template: &Template, c: &Claim) -> NewClaim {
    let types = input.instance_types;
    let mut options: Vec<(f64, &str, usize)> = c
        .options
        .iter()
        .filter_map(|&i| {
            let o = types[i].cheapest(&c.requirements, None)?;
            Some((o.price, types[i].instance_type.name.as_str(), i))
        })
        .collect();
    options.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    options.truncate(MAX_INSTANCE_TYPES);
    let chosen: Vec<usize> = options.iter().map(|o| o.2).collect();
    let launch = launch_choice(types, &chosen, &c.requirements);
    let names: Vec<String> = options.iter().map(|o| o.1.to_string()).collect();
    let mut reqs = c.requirements.clone();
    reqs.add(LABEL_INSTANCE_TYPE, ValueSet::only(names.iter().cloned()));
    let mut requirements = reqs.to_list();
    requirements.retain(|r| r.key != super::requirements::LABEL_HOSTNAME);
    debug_assert!(requirements
        .iter()
        .all(|r| r.operator != Operator::In || !r.values.is_empty()));
    NewClaim {
        pool: template.pool.name.clone(),
        pods: c.pods.clone(),
        requests: node_resources(&c.requests, c.pod_count),
        daemon_overhead: node_resources(&template.overhead, template.overhead_pods),
        requirements,
        instance_types: names,
        launch,
        taints: template.pool.taints.clone(),
        startup_taints: template.pool.startup_taints.clone(),
    }
}
