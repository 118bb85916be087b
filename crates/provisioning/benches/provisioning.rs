//! 1,000 pending pods of mixed shapes onto no capacity, against one NodePool allowing
//! spot and on-demand c/m/r: time of `schedule`, nodes and hourly cost of the launches,
//! and a lower bound on that cost.
//!
//! The bound is the fractional relaxation of the bin packing: buy any non-negative
//! amount of each instance type at its cheapest offering (spot, best zone), covering the
//! pods' total CPU and total memory against *allocatable* — a 2-constraint linear program
//! whose optimum is one type or a pair of types with both constraints tight, found by
//! enumeration. It ignores pod-count limits, selectors (3 % of the pods demand
//! on-demand, a few pin a zone or the r family) and indivisibility, so no real packing
//! can beat it; how far above it a result lies is the packing's waste plus what the
//! selectors cost.
//!
//! `cargo bench -p sparkyard-provisioning --bench provisioning`

use std::time::Instant;

use serde_json::json;
use sparkyard_provisioning::*;
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::PodRequirements;

/// A deterministic generator (SplitMix64), so every run sees the same pods.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn pods(n: usize) -> Vec<PodRequirements> {
    let mut rng = Rng(42);
    let cpus = ["250m", "500m", "1", "2", "4"];
    let mems = ["512Mi", "1Gi", "2Gi", "4Gi", "8Gi", "16Gi"];
    (0..n)
        .map(|i| {
            let mut spec = json!({"containers": [{"name": "c", "resources": {"requests": {
                "cpu": rng.pick(&cpus), "memory": rng.pick(&mems)}}}]});
            match rng.next() % 100 {
                0..=2 => spec["nodeSelector"] = json!({"karpenter.sh/capacity-type": "on-demand"}),
                3..=7 => spec["nodeSelector"] = json!({"topology.kubernetes.io/zone": "us-east-2b"}),
                8..=12 => spec["nodeSelector"] = json!({"karpenter.k8s.aws/instance-category": "r"}),
                13..=22 => spec["tolerations"] = json!([{"key": "spark", "operator": "Exists"}]),
                _ => {}
            }
            PodRequirements::from_pod(&json!({
                "metadata": {"name": format!("exec-{i}"), "namespace": "emr", "uid": format!("uid-{i:05}"),
                             "creationTimestamp": "2025-01-01T00:00:00Z"},
                "spec": spec
            }))
            .unwrap()
        })
        .collect()
}

/// The fractional lower bound described above, at the cheapest offering of capacity
/// type `only` (any when `None`).
fn lower_bound(types: &[InstanceOption], cpu: f64, mem: f64, only: Option<CapacityType>) -> f64 {
    let refs: Vec<&InstanceOption> = types.iter().collect();
    sparkyard_provisioning::cost_lower_bound(&refs, cpu, mem, only)
}

fn main() {
    let pods = pods(1000);
    let pool = NodePoolSpec {
        name: "default".into(),
        requirements: vec![
            Requirement::new(
                "karpenter.sh/capacity-type",
                Operator::In,
                &["spot", "on-demand"],
            ),
            Requirement::new(
                "karpenter.k8s.aws/instance-category",
                Operator::In,
                &["c", "m", "r"],
            ),
            Requirement::new("kubernetes.io/arch", Operator::In, &["amd64"]),
        ],
        ..Default::default()
    };
    let types = instance_options("us-east-2", &[]);
    let cpu: i64 = pods.iter().map(|p| p.requests.milli_cpu).sum();
    let mem: i64 = pods.iter().map(|p| p.requests.memory).sum();
    let bound = lower_bound(&types, cpu as f64, mem as f64, None);
    // An estimate (not a strict bound: see the module docs) that prices the pods which
    // demand on-demand at on-demand prices and the rest at spot.
    let od = |p: &&PodRequirements| {
        p.placement
            .node_selector
            .iter()
            .any(|(k, v)| k == "karpenter.sh/capacity-type" && v == "on-demand")
    };
    let sum = |f: &dyn Fn(&&PodRequirements) -> bool| {
        pods.iter().filter(f).fold((0.0, 0.0), |a, p| {
            (
                a.0 + p.requests.milli_cpu as f64,
                a.1 + p.requests.memory as f64,
            )
        })
    };
    let (od_cpu, od_mem) = sum(&od);
    let (rest_cpu, rest_mem) = sum(&|p| !od(p));
    let estimate = lower_bound(&types, od_cpu, od_mem, Some(CapacityType::OnDemand))
        + lower_bound(&types, rest_cpu, rest_mem, Some(CapacityType::Spot));
    println!(
        "1,000 pods requesting {:.1} vCPU, {:.1} GiB; lower bound ${bound:.3}/h; selector-aware estimate ${estimate:.3}/h",
        cpu as f64 / 1000.0,
        mem as f64 / (1u64 << 30) as f64
    );
    for right_size in [false, true] {
        let input = ScheduleInput {
            pools: std::slice::from_ref(&pool),
            nodes: &[],
            pods: &pods,
            daemonsets: &[],
            instance_types: &types,
            right_size,
        };
        let runs = 5;
        let start = Instant::now();
        let mut result = schedule(&input);
        for _ in 1..runs {
            result = schedule(&input);
        }
        let per_run = start.elapsed() / runs;
        let cost = result.launch_cost();
        let spot = result
            .new_claims
            .iter()
            .filter(|c| {
                c.launch
                    .as_ref()
                    .is_some_and(|l| l.capacity_type == CapacityType::Spot)
            })
            .count();
        let od_cost: f64 = result
            .new_claims
            .iter()
            .filter_map(|c| c.launch.as_ref())
            .filter(|l| l.capacity_type == CapacityType::OnDemand)
            .map(|l| l.price)
            .sum();
        let (alloc_cpu, alloc_mem) = result.new_claims.iter().fold((0i64, 0i64), |acc, c| {
            let t = types
                .iter()
                .find(|t| t.instance_type.name == c.launch.as_ref().unwrap().instance_type)
                .unwrap();
            (
                acc.0 + t.allocatable.cpu_millis,
                acc.1 + t.allocatable.memory_bytes,
            )
        });
        println!(
            "  on-demand launches ${od_cost:.3}/h; requests fill {:.1} % of allocatable CPU, {:.1} % of memory",
            100.0 * cpu as f64 / alloc_cpu as f64,
            100.0 * mem as f64 / alloc_mem as f64
        );
        let mut by_type = std::collections::BTreeMap::new();
        for c in &result.new_claims {
            *by_type
                .entry(c.launch.as_ref().unwrap().instance_type.clone())
                .or_insert(0) += 1;
        }
        println!(
            "{}: schedule {:.1} ms; {} nodes ({} spot), {} unschedulable; ${cost:.3}/h = {:.3} × bound, {:.3} × estimate; {:?}",
            if right_size { "right-sized        " } else { "Karpenter first-fit" },
            per_run.as_secs_f64() * 1000.0,
            result.new_claims.len(),
            spot,
            result.errors.len(),
            cost / bound,
            cost / estimate,
            by_type
        );
    }
}
