//! A lower bound on what any set of nodes holding a workload costs per hour: the
//! fractional relaxation — buy any non-negative amount of each instance type at its
//! cheapest offering, enough to cover total CPU and total memory against allocatable.
//! The optimum of that two-constraint LP is one type, or a pair with both constraints
//! tight, so enumerating singles and pairs solves it exactly. The benchmarks and the cost
//! simulator measure plans against it.

use sparkyard_scheduling::node::CapacityType;

use crate::offerings::InstanceOption;
use crate::requirements::Requirements;

/// USD per hour, for `cpu_millis` and `memory_bytes` in total, at the cheapest offering of
/// capacity type `only` (any when `None`).
pub fn cost_lower_bound(
    types: &[&InstanceOption],
    cpu_millis: f64,
    memory_bytes: f64,
    only: Option<CapacityType>,
) -> f64 {
    let any = Requirements::new();
    let shape: Vec<(f64, f64, f64)> = types
        .iter()
        .filter_map(|t| {
            let price = t.cheapest(&any, only)?.price;
            Some((
                t.allocatable.cpu_millis as f64,
                t.allocatable.memory_bytes as f64,
                price,
            ))
        })
        .collect();
    let (cpu, mem) = (cpu_millis, memory_bytes);
    let mut best = f64::MAX;
    for &(c, m, p) in &shape {
        best = best.min((cpu / c).max(mem / m) * p);
    }
    for (i, &(c1, m1, p1)) in shape.iter().enumerate() {
        for &(c2, m2, p2) in &shape[i + 1..] {
            let det = c1 * m2 - c2 * m1;
            if det.abs() < 1e-9 {
                continue;
            }
            let x1 = (cpu * m2 - c2 * mem) / det;
            let x2 = (c1 * mem - cpu * m1) / det;
            if x1 >= 0.0 && x2 >= 0.0 {
                best = best.min(x1 * p1 + x2 * p2);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offerings::instance_options;

    #[test]
    fn the_bound_is_below_any_single_type_that_holds_the_work() {
        let options = instance_options("us-east-2", &[]);
        let refs: Vec<&InstanceOption> = options.iter().collect();
        let m5 = options
            .iter()
            .find(|o| o.instance_type.name == "m5.xlarge")
            .unwrap();
        let (cpu, mem) = (
            m5.allocatable.cpu_millis as f64,
            m5.allocatable.memory_bytes as f64,
        );
        let bound = cost_lower_bound(&refs, cpu, mem, Some(CapacityType::OnDemand));
        assert!(bound > 0.0 && bound <= 0.192 + 1e-9, "{bound}");
    }
}
