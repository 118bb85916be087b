//! Whole-simulation tests: determinism, the seed's preemption walkthrough, Karpenter's
//! launches and scale-down, spot interruptions.

use crate::units::{Millis, MINUTE, SECOND};
use crate::{arrivals, report, shared, simulate, Workload};

/// A day of one hourly job that fits the node group: the base most tests vary.
pub(crate) const SMALL: &str = r#"
seed: 7
duration: 1d
policies:
  shared:
    node_group: {instance_type: m5.2xlarge, count: 1}
    node_pools:
      - name: spot
        template:
          spec:
            requirements:
              - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
        disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 30s}
categories:
  - name: batch
    arrivals: {every: 1h}
    driver: {cpu: 1, memory: 2Gi}
    executors: {count: 2, cpu: 2, memory: 4Gi}
    work: {executor_seconds: 600}
"#;

fn run_shared(text: &str) -> (Workload, Vec<arrivals::Job>, crate::metrics::PolicyRun) {
    let w = Workload::parse(text).unwrap();
    let jobs = arrivals::jobs(&w);
    let run = shared::simulate(&w, &jobs);
    (w, jobs, run)
}

#[test]
fn same_seed_same_json_and_another_seed_differs() {
    let w = Workload::parse(SMALL).unwrap();
    let a = report::json(&simulate(&w));
    let b = report::json(&simulate(&w));
    assert_eq!(a, b);
    let other = Workload::parse(&SMALL.replace("seed: 7", "seed: 8")).unwrap();
    assert_ne!(a, report::json(&simulate(&other)));
    // Every rendering is deterministic too.
    let r = simulate(&w);
    assert_eq!(report::html(&r), report::html(&simulate(&w)));
    assert_eq!(report::markdown(&r), report::markdown(&simulate(&w)));
}

#[test]
fn jobs_that_fit_the_node_group_wait_only_for_submission() {
    let (w, _, run) = run_shared(SMALL);
    assert_eq!(run.unfinished, 0);
    for j in &run.jobs {
        // spark-submit, then the container start: the node group has the image.
        assert_eq!(j.wait(), Some(w.timing.submit + w.timing.container_start));
        assert!(!j.failed);
    }
    assert_eq!(run.node_launches, 1, "no Karpenter node was needed");
    assert!(run.emr_usd > 0.0 && run.ec2_usd > 0.0);
}

/// The seed's steps 16–17: a low-priority monthly job fills the one node; a
/// high-priority intra-day job a minute later preempts one of its executors, runs, and the
/// monthly job's executor comes back afterwards.
#[test]
fn a_high_priority_job_preempts_low_priority_executors() {
    let text = r#"
duration: 1h
policies:
  shared:
    node_group: {instance_type: m5.xlarge, count: 1}
    daemonset: {cpu: 100m, memory: 128Mi}
priority_classes: {low-priority: 100, high-priority: 300, critical-priority: 400}
categories:
  - name: monthly
    arrivals: {trace: [0s]}
    driver: {cpu: 500m, memory: 1Gi, priority: critical-priority}
    executors: {count: 2, cpu: 1500m, memory: 2Gi, priority: low-priority}
    work: {executor_seconds: 720}
  - name: intra-day
    arrivals: {trace: [1m]}
    driver: {cpu: 500m, memory: 1Gi, priority: critical-priority}
    executors: {count: 1, cpu: 1000m, memory: 2Gi, priority: high-priority}
    work: {executor_seconds: 120}
"#;
    let (w, _, run) = run_shared(text);
    let (monthly, intraday) = (&run.jobs[0], &run.jobs[1]);
    // One executor's room (1.5 CPU) holds the intra-day driver and executor (1.5 CPU).
    assert_eq!(run.categories[0].preempted_pods, 1);
    assert_eq!(run.categories[1].preempted_pods, 0);
    assert!(!monthly.failed && !intraday.failed);
    assert!(intraday.finished < monthly.finished);
    // The intra-day driver waited only for a victim to exit.
    let wait = intraday.wait().unwrap();
    assert!(
        wait <= w.timing.submit + w.timing.pod_exit + w.timing.container_start,
        "{wait}"
    );
    // The monthly job lost time to the preemption: 720 s over 2 executors is 6 minutes.
    let done = monthly.finished.unwrap() - monthly.driver_running.unwrap();
    assert!(done > 6 * MINUTE + 2 * MINUTE, "{done}");
    assert_eq!(run.node_launches, 1, "no pools: the node group only");
}

#[test]
fn karpenter_launches_for_pending_pods_and_removes_empty_nodes() {
    let text = SMALL
        .replace("{every: 1h}", "{trace: [0s]}")
        .replace("count: 2, cpu: 2", "count: 6, cpu: 2")
        .replace("executor_seconds: 600", "executor_seconds: 1800");
    let (w, _, run) = run_shared(&text);
    let job = &run.jobs[0];
    assert!(!job.failed && job.finished.is_some());
    let karpenter: Vec<_> = run.nodes.iter().filter(|n| n.pool.is_some()).collect();
    assert!(
        !karpenter.is_empty(),
        "executors that did not fit got a node"
    );
    for n in &karpenter {
        assert!(n.spot, "the pool allows spot only");
        assert!(n.launched >= job.driver_running.unwrap());
        // Empty once the job ended; removed consolidateAfter later, at the next
        // 10 s round of the disruption loop.
        let after_end = n.ended - job.finished.unwrap();
        assert!(
            (30 * SECOND..=41 * SECOND).contains(&after_end),
            "{}: {after_end}",
            n.name
        );
    }
    // The first launch waited for Karpenter's batch (1 s idle) after the executors were
    // created with the driver's start.
    let first = karpenter.iter().map(|n| n.launched).min().unwrap();
    assert_eq!(first, job.driver_running.unwrap() + SECOND);
    let _ = w;
}

/// WhenEmptyOrUnderutilized: once the node group has room again, the Karpenter node
/// holding a long job's executors is consolidated away and they move there.
#[test]
fn consolidation_moves_executors_off_an_underused_node() {
    let text = r#"
duration: 2h
policies:
  shared:
    node_group: {instance_type: m5.2xlarge, count: 1}
    node_pools:
      - name: spot
        template:
          spec:
            requirements:
              - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
        disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 30s}
categories:
  - name: short
    arrivals: {trace: [0s]}
    driver: {cpu: 1, memory: 2Gi}
    executors: {count: 2, cpu: 2, memory: 4Gi}
    work: {executor_seconds: 600}
  - name: long
    arrivals: {trace: [1m]}
    driver: {cpu: 1, memory: 2Gi, do_not_disrupt: true}
    executors: {count: 2, cpu: 2, memory: 4Gi}
    work: {executor_seconds: 3600}
"#;
    let (_, _, run) = run_shared(text);
    let (short, long) = (&run.jobs[0], &run.jobs[1]);
    assert!(!long.failed && long.finished.is_some());
    let karpenter: Vec<_> = run.nodes.iter().filter(|n| n.pool.is_some()).collect();
    assert!(
        !karpenter.is_empty(),
        "the long job's executors needed a node"
    );
    for n in &karpenter {
        // Gone once the short job freed the node group: 30 s after its last pod event
        // at the latest a 10 s round later, long before the long job ends.
        assert!(n.ended > short.finished.unwrap(), "{}", n.name);
        assert!(n.ended <= short.finished.unwrap() + MINUTE, "{}", n.name);
        assert!(n.ended < long.finished.unwrap());
    }
    assert_eq!(run.categories[1].disrupted_pods, 2, "both executors moved");
    assert_eq!(run.categories[0].disrupted_pods, 0);
}

#[test]
fn spot_interruptions_cost_executors_not_jobs() {
    let text = SMALL
        .replace("instance_type: m5.2xlarge", "instance_type: m5.large")
        .replace("{every: 1h}", "{every: 4h}")
        .replace("policies:", "policies:\n  transient: {}")
        .replace(
            "node_group: {instance_type: m5.large, count: 1}",
            "node_group: {instance_type: m5.large, count: 1}\n    spot_interruptions_per_node_hour: 6",
        );
    let (_, _, run) = run_shared(&text);
    assert!(run.spot_interruptions > 0);
    assert!(run.categories[0].interrupted_pods > 0);
    assert_eq!(run.unfinished, 0);
    assert!(
        run.jobs.iter().all(|j| !j.failed),
        "drivers run on the on-demand node group"
    );
}

#[test]
fn the_shared_cluster_beats_transient_clusters_on_waits() {
    let r = simulate(&Workload::parse(SMALL).unwrap());
    let (t, s) = (&r.policies[0].totals, &r.policies[1].totals);
    let wait = |v: Option<f64>| (v.unwrap() * 1000.0) as Millis;
    assert!(wait(t.wait_seconds.p50) >= 5 * MINUTE);
    assert!(wait(s.wait_seconds.p50) < MINUTE);
    assert_eq!(t.completed, 24);
    assert_eq!(s.completed, 24);
}

const SEED_SCENARIO: &str = include_str!("../../../examples/simulator/seed-scenario.yaml");

#[test]
fn the_seed_scenario_is_a_month_of_tens_of_thousands_of_jobs() {
    let w = Workload::parse(SEED_SCENARIO).unwrap();
    let names: Vec<&str> = w.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["realtime", "intra-day", "nightly", "monthly", "adhoc-ml"]
    );
    assert_eq!(w.duration, 30 * crate::units::DAY);
    assert!(arrivals::jobs(&w).len() > 20_000);
    // Its first six hours (the nightly and monthly batches) run to the end on both.
    let r = simulate(&w.with_duration("6h").unwrap());
    for p in &r.policies {
        assert_eq!(p.totals.completed, p.totals.jobs, "{}", p.policy);
    }
}
