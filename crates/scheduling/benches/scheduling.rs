//! Scheduling throughput of the pure core, in memory: 50,000 pods onto 5,000 simulated
//! m5.2xlarge nodes (kube-scheduler's `SchedulingBasic` 5,000 nodes / 50,000 pods shape),
//! then 50,000 higher-priority pods onto the now busy cluster, half of which must preempt.
//!
//! `cargo bench -p sparkyard-cluster --bench scheduling` (plain `main`, no harness).
//! Arguments: `[nodes] [pods]` to run a smaller shape.

use std::time::Instant;

use chrono::{Duration, Utc};
use serde_json::json;
use sparkyard_scheduling::{Decision, NodeConfig, PodRequirements, Snapshot};

fn pod_json(i: usize, priority: i64, app: usize) -> serde_json::Value {
    // Spark-executor-like pods; one app in five selects on-demand nodes (like the seed's
    // driver template), one in ten also tolerates a taint.
    let mut spec = json!({
        "priority": priority,
        "containers": [{"name": "spark-kubernetes-executor", "image": "spark:4.0.1",
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]
    });
    if app.is_multiple_of(5) {
        spec["nodeSelector"] = json!({"eks.amazonaws.com/capacityType": "ON_DEMAND"});
    }
    if app.is_multiple_of(10) {
        spec["tolerations"] =
            json!([{"key": "spark", "operator": "Exists", "effect": "NoSchedule"}]);
    }
    json!({
        "metadata": {"name": format!("app-{app}-exec-{i}"), "namespace": "bench", "uid": format!("uid-{priority}-{i}"),
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec
    })
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(5_000);
    let pods = args.get(1).copied().unwrap_or(50_000);

    let infos: Vec<_> = (0..nodes)
        .map(|i| {
            NodeConfig {
                name: format!("sim-{i:05}"),
                simulated: true,
                ..NodeConfig::default()
            }
            .node_info()
            .unwrap()
        })
        .collect();
    let mut snapshot = Snapshot::with_nodes(infos);

    let started = Instant::now();
    let low: Vec<PodRequirements> = (0..pods)
        .map(|i| PodRequirements::from_pod(&pod_json(i, 100, i / 50)).unwrap())
        .collect();
    let high: Vec<PodRequirements> = (0..pods)
        .map(|i| PodRequirements::from_pod(&pod_json(i, 400, i / 50)).unwrap())
        .collect();
    let parse = started.elapsed();
    println!(
        "parse: {} pod objects in {:.3} s = {:.0} pods/s",
        2 * pods,
        parse.as_secs_f64(),
        (2 * pods) as f64 / parse.as_secs_f64()
    );

    let now = Utc::now();
    let started = Instant::now();
    let mut bound = 0;
    for p in &low {
        let d = snapshot.schedule(p);
        if matches!(d, Decision::Bind { .. }) {
            bound += 1;
        }
        snapshot.assume(p, &d, now);
    }
    let basic = started.elapsed();
    println!(
        "without preemption: {pods} pods onto {nodes} nodes in {:.3} s = {:.0} pods/s ({bound} bound)",
        basic.as_secs_f64(),
        pods as f64 / basic.as_secs_f64()
    );

    // Each node holds 15 such pods (7910m / 500m); the low pods filled two thirds of
    // them, so about half of the high pods preempt one low pod each.
    let started = Instant::now();
    let (mut bound, mut preemptions, mut victims, mut failed) = (0, 0, 0, 0);
    for p in &high {
        let d = snapshot.schedule(p);
        snapshot.assume(p, &d, now);
        match d {
            Decision::Bind { .. } => bound += 1,
            Decision::Unschedulable {
                preemption: Some(plan),
                ..
            } => {
                preemptions += 1;
                victims += plan.victims.len();
                // Simulated nodes finish a deletion at once: the victims go, and the
                // preemptor binds to its nominated node in its next cycle.
                for v in &plan.victims {
                    snapshot.remove_pod(&v.pod.uid);
                }
                let mut nominated = p.clone();
                nominated.nominated_node_name = Some(plan.node.clone());
                let d = snapshot.schedule(&nominated);
                snapshot.assume(&nominated, &d, now + Duration::seconds(1));
                if matches!(d, Decision::Bind { .. }) {
                    bound += 1;
                } else {
                    failed += 1;
                }
            }
            Decision::Unschedulable { .. } => failed += 1,
        }
    }
    let with_preemption = started.elapsed();
    println!(
        "with preemption: {pods} pods onto {nodes} busy nodes in {:.3} s = {:.0} pods/s \
         ({bound} bound, {preemptions} preemptions, {victims} victims, {failed} unschedulable)",
        with_preemption.as_secs_f64(),
        pods as f64 / with_preemption.as_secs_f64()
    );
    if preemptions > 0 {
        // The preemption cycles alone: total time less the binding-only pods at the
        // first phase's rate.
        let bind_only = (pods - preemptions) as f64 / (pods as f64 / basic.as_secs_f64());
        let per = (with_preemption.as_secs_f64() - bind_only).max(0.0) / preemptions as f64;
        println!(
            "  ≈ {:.2} ms per preempting pod (dry run over all {nodes} nodes + rebind)",
            per * 1e3
        );
    }
}
