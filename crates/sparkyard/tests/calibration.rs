//! The simulator's calibration (docs/simulator.md): the workload of
//! `examples/simulator/calibration.yaml` run for real — real Spark on the embedded cluster,
//! a managed node group of one m5.xlarge (`serve --cluster-config`), a Karpenter NodePool
//! of on-demand m5.xlarge — and through the simulator's shared policy. They must agree on
//! each job's completion time within 15 % and on the Karpenter nodes over time: as many
//! launched, as many at once at the peak, and their node-seconds within 15 %.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_env::{script, shared_dir, Env};
use serde_json::{json, Value};

const NAMESPACE: &str = "calibration";

/// The node group of the workload's `policies.shared.node_group`.
const GROUP: &str = "  - name: eks-emr-cluster-ng\n    instanceType: m5.xlarge\n    desiredCapacity: 1\n    minSize: 1\n    maxSize: 1\n";

/// The workload's `node_pools[0]`, as the live cluster is given it.
const NODEPOOL: &str = "apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: calibration
spec:
  template:
    spec:
      requirements:
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: calibration}
      expireAfter: Never
  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 10s}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: calibration
spec:
  amiSelectorTerms: [{alias: al2023@latest}]
  instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: eks-emr-cluster}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: eks-emr-cluster}}]
";

/// The workload's jobs: four 30-second tasks each.
const JOB: &str = "import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName('calibration').getOrCreate()
spark.sparkContext.parallelize(range(4), 4).map(lambda x: (time.sleep(30), x)[1]).count()
spark.stop()
";

/// The workload's driver (1.5 CPU) and executors (2 × 1 CPU); 512m of heap and Spark's
/// 384 MiB overhead make the workload's 896Mi.
const PARAMS: &str = "--conf spark.executor.instances=2 --conf spark.executor.cores=1 --conf spark.executor.memory=512m --conf spark.driver.cores=1 --conf spark.driver.memory=512m --conf spark.kubernetes.driver.request.cores=1500m --conf spark.kubernetes.executor.request.cores=1";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// `User initiated (2026-12-05 10:00:00 GMT)` → the time.
fn terminated_at(reason: &str) -> Option<DateTime<Utc>> {
    let inner = reason
        .strip_prefix("User initiated (")?
        .strip_suffix(" GMT)")?;
    chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Peak number of intervals open at once.
fn peak(intervals: &[(f64, f64)]) -> usize {
    let mut edges: Vec<(f64, i32)> = intervals
        .iter()
        .flat_map(|&(a, b)| [(a, 1), (b, -1)])
        .collect();
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    most as usize
}

fn within(real: f64, simulated: f64, what: &str) -> String {
    let off = (simulated - real).abs() / real;
    format!(
        "{what}: real {real:.1} s, simulated {simulated:.1} s ({:+.1} %){}",
        (simulated - real) / real * 100.0,
        if off <= 0.15 { "" } else { "  ← beyond 15 %" }
    )
}

#[test]
fn the_simulator_agrees_with_the_embedded_cluster_on_completions_and_nodes() {
    // --- the simulator's prediction ------------------------------------------------------
    let text =
        std::fs::read_to_string(support::repo_root().join("examples/simulator/calibration.yaml"))
            .unwrap();
    let workload = sparkyard_simulator::Workload::parse(&text).unwrap();
    let jobs = sparkyard_simulator::arrivals::jobs(&workload);
    let predicted = sparkyard_simulator::shared::simulate(&workload, &jobs);
    let mut sim_completions: Vec<f64> = predicted
        .jobs
        .iter()
        .map(|j| j.completion().expect("every simulated job completes") as f64 / 1000.0)
        .collect();
    sim_completions.sort_by(f64::total_cmp);
    let sim_nodes: Vec<(f64, f64)> = predicted
        .nodes
        .iter()
        .filter(|n| n.pool.is_some())
        .map(|n| (n.launched as f64 / 1000.0, n.ended as f64 / 1000.0))
        .collect();

    // --- the same workload for real ------------------------------------------------------
    let config_dir = tempfile::tempdir().unwrap();
    let cluster_config = support::eks::cluster_config(config_dir.path(), GROUP);
    let mut env = Env::serve_with(
        "# No Spark History Server: one JVM fewer on two cores.\n[history]\nenabled = false\n",
        &["--cluster-config", cluster_config.to_str().unwrap()],
    );
    env.walkthrough_setup(NAMESPACE, None);
    let dir = shared_dir();
    let nodepool = dir.join("nodepool.yaml");
    std::fs::write(&nodepool, NODEPOOL).unwrap();
    env.kubectl(&["apply", "-f", nodepool.to_str().unwrap()]);
    let entry = script(&dir, "calibration.py", JOB);
    let ids: Vec<String> = ["job-a", "job-b"]
        .iter()
        .map(|name| env.start(&env.request(&env.vc, name, &entry, PARAMS, json!({}))))
        .collect();
    let mut runs = Vec::new();
    for id in &ids {
        let (run, _) = env.follow(&env.vc, id, Duration::from_secs(900), |_| {});
        assert_eq!(run["state"], "COMPLETED", "{run:#}\n{}", env.log());
        runs.push(run);
    }
    let t0 = runs.iter().map(|r| time(&r["createdAt"])).min().unwrap();
    let mut real_completions: Vec<f64> = runs
        .iter()
        .map(|r| seconds(time(&r["createdAt"]), time(&r["finishedAt"])))
        .collect();
    real_completions.sort_by(f64::total_cmp);

    // Karpenter's instances, from launch to termination (EC2's own record of both).
    let real_nodes: Vec<(f64, f64)> = loop {
        let reservations = env.server.aws_json(&["ec2", "describe-instances"]);
        let instances: Vec<Value> = reservations["Reservations"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
            .filter(|i| {
                i["Tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["Key"] == "karpenter.sh/nodepool")
            })
            .collect();
        let ended: Vec<Option<DateTime<Utc>>> = instances
            .iter()
            .map(|i| {
                (i["State"]["Name"] == "terminated")
                    .then(|| terminated_at(i["StateTransitionReason"].as_str()?))
                    .flatten()
            })
            .collect();
        if !instances.is_empty() && ended.iter().all(Option::is_some) {
            break instances
                .iter()
                .zip(ended)
                .map(|(i, end)| {
                    (
                        seconds(t0, time(&i["LaunchTime"])),
                        seconds(t0, end.unwrap()),
                    )
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(500));
    };

    // --- agreement -----------------------------------------------------------------------
    let node_seconds = |nodes: &[(f64, f64)]| nodes.iter().map(|(a, b)| b - a).sum::<f64>();
    let mut lines: Vec<String> = real_completions
        .iter()
        .zip(&sim_completions)
        .enumerate()
        .map(|(i, (r, s))| within(*r, *s, &format!("job {} completion", i + 1)))
        .collect();
    lines.push(within(
        node_seconds(&real_nodes),
        node_seconds(&sim_nodes),
        "Karpenter node-seconds",
    ));
    lines.push(format!(
        "Karpenter nodes: real {real_nodes:?}, simulated {sim_nodes:?} (seconds from the first StartJobRun)"
    ));
    let report = lines.join("\n");
    eprintln!("{report}");
    assert_eq!(real_completions.len(), sim_completions.len());
    for (real, simulated) in real_completions.iter().zip(&sim_completions) {
        assert!(
            (simulated - real).abs() <= 0.15 * real,
            "{report}\n{}",
            env.log()
        );
    }
    assert_eq!(real_nodes.len(), sim_nodes.len(), "{report}");
    assert_eq!(peak(&real_nodes), peak(&sim_nodes), "{report}");
    let (real_ns, sim_ns) = (node_seconds(&real_nodes), node_seconds(&sim_nodes));
    assert!((sim_ns - real_ns).abs() <= 0.15 * real_ns, "{report}");
}
