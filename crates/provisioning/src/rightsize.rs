//! Right-sizing (`ScheduleInput::right_size`; not in Karpenter). The first-fit pass
//! decides *which pods need new nodes* exactly as Karpenter does; this pass then re-packs
//! those pods, pool by pool, when that is cheaper:
//!
//! - pods are grouped by the requirements they add (so the 3 % of pods that demand
//!   on-demand no longer turn whole shared claims on-demand, and zone-pinned pods share
//!   nodes in their zone);
//! - each group is priced with the duals of its fractional relaxation (the 2-resource
//!   linear program "buy enough CPU and memory at the cheapest offerings"): a pod is
//!   worth λ_cpu × cpu + λ_mem × memory;
//! - nodes are opened greedily: for every instance type the group may use, fill it with
//!   the remaining pods in value order (first fit), and keep the type whose packed value
//!   per dollar is highest;
//! - each new claim keeps every type that fits its pods (for the launch's fallbacks),
//!   so its launch is the cheapest type that holds them.
//!
//! The re-pack replaces the pool's first-fit claims only if it is cheaper and stays
//! within the pool's limits.

use sparkyard_scheduling::Resources;

use super::offerings::InstanceOption;
use super::requirements::Requirements;
use super::schedule::{fits, launch_choice, pod_requirement_sets, Claim, ScheduleInput, Template};

/// Duals (USD per millicore, USD per byte) of `min Σ xₜpₜ s.t. Σ xₜcₜ ≥ cpu, Σ xₜmₜ ≥ mem`.
fn duals(shapes: &[(f64, f64, f64)], cpu: f64, mem: f64) -> (f64, f64) {
    let mut best = (f64::MAX, 0.0, 0.0);
    for &(c, m, p) in shapes {
        let cost = (cpu / c).max(mem / m) * p;
        let d = if cpu / c >= mem / m {
            (p / c, 0.0)
        } else {
            (0.0, p / m)
        };
        if cost < best.0 {
            best = (cost, d.0, d.1);
        }
    }
    for (i, &(c1, m1, p1)) in shapes.iter().enumerate() {
        for &(c2, m2, p2) in &shapes[i + 1..] {
            let det = c1 * m2 - c2 * m1;
            if det.abs() < 1e-9 {
                continue;
            }
            let x1 = (cpu * m2 - c2 * mem) / det;
            let x2 = (c1 * mem - cpu * m1) / det;
            if x1 < 0.0 || x2 < 0.0 {
                continue;
            }
            let cost = x1 * p1 + x2 * p2;
            if cost < best.0 {
                // λ·(c, m) = p for both types.
                let lc = (p1 * m2 - p2 * m1) / det;
                let lm = (c1 * p2 - c2 * p1) / det;
                best = (cost, lc.max(0.0), lm.max(0.0));
            }
        }
    }
    // Never value a resource at zero: ties then go to the pod that is bigger overall.
    let floor = 1e-6;
    (best.1.max(best.2 * floor), best.2.max(best.1 * floor))
}

fn price(it: &InstanceOption, reqs: &Requirements) -> Option<f64> {
    launch_choice(std::slice::from_ref(it), &[0], reqs).map(|l| l.price)
}

/// Strategy 1: open nodes greedily, each of the type whose knapsack-filled value per
/// dollar is highest. `None` if some pod fits no type.
fn greedy_mixed(
    input: &ScheduleInput,
    template_index: usize,
    template: &Template,
    reqs: &Requirements,
    pods: Vec<usize>,
) -> Option<Vec<Claim>> {
    let types = input.instance_types;
    let candidates: Vec<(usize, f64)> = template
        .options
        .iter()
        .filter(|&&i| types[i].requirements.intersects(reqs).is_ok())
        .filter_map(|&i| Some((i, price(&types[i], reqs)?)))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let shapes: Vec<(f64, f64, f64)> = candidates
        .iter()
        .map(|&(i, p)| {
            let a = &types[i].allocatable;
            (a.cpu_millis as f64, a.memory_bytes as f64, p)
        })
        .collect();
    let cpu: i64 = pods.iter().map(|&p| input.pods[p].requests.milli_cpu).sum();
    let mem: i64 = pods.iter().map(|&p| input.pods[p].requests.memory).sum();
    let (lc, lm) = duals(&shapes, cpu as f64, mem as f64);
    let value = |p: usize| {
        let r = &input.pods[p].requests;
        lc * r.milli_cpu as f64 + lm * r.memory as f64
    };
    // Per type, the pods in knapsack order: value per unit of the type's room they take
    // (cpu/C + mem/M), so a compute type is filled with CPU-heavy pods and a memory type
    // with memory-heavy ones. The order does not change as pods leave, so it is computed once.
    let orders: Vec<Vec<usize>> = candidates
        .iter()
        .map(|&(i, _)| {
            let a = &types[i].allocatable;
            let (c, m) = (a.cpu_millis.max(1) as f64, a.memory_bytes.max(1) as f64);
            let density = |p: usize| {
                let r = &input.pods[p].requests;
                value(p) / (r.milli_cpu as f64 / c + r.memory as f64 / m + 1e-12)
            };
            let mut order = pods.clone();
            order.sort_by(|&a, &b| density(b).total_cmp(&density(a)).then(a.cmp(&b)));
            order
        })
        .collect();
    let mut left = vec![false; input.pods.len()];
    for &p in &pods {
        left[p] = true;
    }
    let mut remaining = pods.len();
    let mut claims = Vec::new();
    while remaining > 0 {
        // (efficiency, price, packed pods, requests, count)
        let mut best: Option<(f64, f64, Vec<usize>, Resources, i64)> = None;
        for (k, &(i, p)) in candidates.iter().enumerate() {
            let mut requests = template.overhead.clone();
            let mut count = template.overhead_pods;
            let mut packed = Vec::new();
            let mut worth = 0.0;
            for &pod in orders[k].iter().filter(|&&pod| left[pod]) {
                let mut next = requests.clone();
                next.add(&input.pods[pod].requests);
                if fits(&types[i], &next, count + 1) {
                    requests = next;
                    count += 1;
                    packed.push(pod);
                    worth += value(pod);
                }
            }
            if packed.is_empty() {
                continue;
            }
            let eff = worth / p;
            let better = best.as_ref().is_none_or(|b| {
                eff > b.0 * (1.0 + 1e-9) || ((eff - b.0).abs() <= b.0 * 1e-9 && p < b.1)
            });
            if better {
                best = Some((eff, p, packed, requests, count));
            }
        }
        let (_, _, packed, requests, count) = best?;
        for &p in &packed {
            left[p] = false;
        }
        remaining -= packed.len();
        let options = candidates
            .iter()
            .map(|&(i, _)| i)
            .filter(|&i| fits(&types[i], &requests, count))
            .collect();
        let mut requirements = template.requirements.clone();
        requirements.merge(reqs);
        claims.push(Claim {
            template: template_index,
            requirements,
            options,
            requests,
            pod_count: count,
            pods: packed,
        });
    }
    Some(claims)
}

/// Strategy 2: first-fit decreasing (by value) into nodes of one type `bin`; each node
/// then launches as the cheapest type that holds what it got. `None` if a pod does not
/// fit an empty `bin`.
fn single_type(
    input: &ScheduleInput,
    template_index: usize,
    template: &Template,
    reqs: &Requirements,
    candidates: &[usize],
    bin: usize,
    order: &[usize],
) -> Option<Vec<Claim>> {
    let types = input.instance_types;
    let mut bins: Vec<(Resources, i64, Vec<usize>)> = Vec::new();
    for &pod in order {
        let r = &input.pods[pod].requests;
        let slot = bins.iter().position(|(req, n, _)| {
            let mut next = req.clone();
            next.add(r);
            fits(&types[bin], &next, n + 1)
        });
        let slot = match slot {
            Some(s) => s,
            None => {
                let mut first = template.overhead.clone();
                first.add(r);
                if !fits(&types[bin], &first, template.overhead_pods + 1) {
                    return None;
                }
                bins.push((
                    template.overhead.clone(),
                    template.overhead_pods,
                    Vec::new(),
                ));
                bins.len() - 1
            }
        };
        let b = &mut bins[slot];
        b.0.add(r);
        b.1 += 1;
        b.2.push(pod);
    }
    let mut requirements = template.requirements.clone();
    requirements.merge(reqs);
    Some(
        bins.into_iter()
            .map(|(requests, count, pods)| Claim {
                template: template_index,
                requirements: requirements.clone(),
                options: candidates
                    .iter()
                    .copied()
                    .filter(|&i| fits(&types[i], &requests, count))
                    .collect(),
                requests,
                pod_count: count,
                pods,
            })
            .collect(),
    )
}

/// Re-packs one group: the cheaper of the two strategies (and of every bin type for
/// the second). `None` if neither can place every pod.
fn pack_group(
    input: &ScheduleInput,
    template_index: usize,
    template: &Template,
    reqs: &Requirements,
    pods: Vec<usize>,
) -> Option<Vec<Claim>> {
    let types = input.instance_types;
    let candidates: Vec<usize> = template
        .options
        .iter()
        .copied()
        .filter(|&i| {
            types[i].requirements.intersects(reqs).is_ok() && price(&types[i], reqs).is_some()
        })
        .collect();
    let mut order = pods.clone();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&input.pods[a].requests, &input.pods[b].requests);
        (rb.milli_cpu, rb.memory)
            .cmp(&(ra.milli_cpu, ra.memory))
            .then(a.cmp(&b))
    });
    let mut best = greedy_mixed(input, template_index, template, reqs, pods);
    let mut best_cost = best.as_ref().map_or(f64::MAX, |c| cost(input, c));
    for &bin in &candidates {
        if let Some(c) = single_type(
            input,
            template_index,
            template,
            reqs,
            &candidates,
            bin,
            &order,
        ) {
            let k = cost(input, &c);
            if k < best_cost - 1e-9 {
                best = Some(c);
                best_cost = k;
            }
        }
    }
    best
}

fn cost(input: &ScheduleInput, claims: &[Claim]) -> f64 {
    claims
        .iter()
        .map(|c| {
            launch_choice(input.instance_types, &c.options, &c.requirements)
                .map_or(f64::MAX, |l| l.price)
        })
        .sum()
}

/// Whether the claims' launches stay within the pool's limits (remaining at the start of
/// the pass), counting each claim at its cheapest type's capacity.
fn within_limits(input: &ScheduleInput, template: &Template, claims: &[Claim]) -> bool {
    let Some(limits) = &template.pool.limits else {
        return true;
    };
    let usage = &template.pool.usage;
    let (mut cpu, mut mem) = (0, 0);
    for c in claims {
        let Some(l) = launch_choice(input.instance_types, &c.options, &c.requirements) else {
            return false;
        };
        let it = input
            .instance_types
            .iter()
            .find(|t| t.instance_type.name == l.instance_type);
        let cap = it.map(|t| t.capacity).unwrap_or_default();
        cpu += cap.cpu_millis;
        mem += cap.memory_bytes;
    }
    limits
        .cpu_millis
        .is_none_or(|l| usage.cpu_millis + cpu <= l)
        && limits
            .memory_bytes
            .is_none_or(|l| usage.memory_bytes + mem <= l)
        && limits
            .nodes
            .is_none_or(|l| usage.nodes + claims.len() as i64 <= l)
}

pub(crate) fn improve(input: &ScheduleInput, templates: &[Template], claims: &mut Vec<Claim>) {
    for (t, template) in templates.iter().enumerate() {
        let old: Vec<Claim> = claims.iter().filter(|c| c.template == t).cloned().collect();
        if old.is_empty() {
            continue;
        }
        // Group the pods by the requirements they bring (the first set compatible with
        // the pool, as the first-fit pass chose).
        let mut groups: Vec<(Requirements, Vec<usize>)> = Vec::new();
        for c in &old {
            for &p in &c.pods {
                let reqs = pod_requirement_sets(&input.pods[p])
                    .into_iter()
                    .find(|r| template.requirements.compatible(r).is_ok())
                    .unwrap_or_default();
                match groups.iter_mut().find(|g| g.0 == reqs) {
                    Some(g) => g.1.push(p),
                    None => groups.push((reqs, vec![p])),
                }
            }
        }
        let mut packed = Vec::new();
        for (reqs, pods) in groups {
            match pack_group(input, t, template, &reqs, pods) {
                Some(c) => packed.extend(c),
                None => return,
            }
        }
        if cost(input, &packed) < cost(input, &old) - 1e-9
            && within_limits(input, template, &packed)
        {
            claims.retain(|c| c.template != t);
            claims.extend(packed);
        }
    }
}
