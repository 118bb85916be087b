//! `sparkyard simulate`: the built binary on a day of a small workload prints both
//! policies' totals and writes report.md, report.html and report.json; the same file and
//! seed give the same JSON; a bad file is one error line naming the field.

use std::path::Path;
use std::process::{Command, Output};

/// A day: hourly jobs, one high-priority category every 20 minutes, a one-node group and
/// a spot NodePool.
const WORKLOAD: &str = r#"
seed: 11
duration: 1d
priority_classes: {low: 100, high: 300, critical: 400}
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
  - name: hourly
    arrivals: {cron: "0 * * * *"}
    driver: {cpu: 1, memory: 2Gi, priority: critical}
    executors: {count: 4, cpu: 2, memory: 4Gi, priority: low}
    work: {executor_seconds: {min: 600, max: 1200}}
  - name: urgent
    arrivals: {every: 20m}
    driver: {cpu: 1, memory: 2Gi, priority: critical}
    executors: {count: 2, cpu: 2, memory: 4Gi, priority: high}
    work: {tasks: 40, task_seconds: {min: 5, max: 20}}
"#;

fn simulate(workload: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .arg("simulate")
        .arg("--workload")
        .arg(workload)
        .arg("--out")
        .arg(out)
        .output()
        .expect("the sparkyard binary runs")
}

fn money(text: &str) -> f64 {
    text.replace(',', "").parse().expect("a USD amount")
}

#[test]
fn prints_both_policies_totals_and_writes_the_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workload.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = dir.path().join("reports");
    let run = simulate(&file, &out);
    let stdout = String::from_utf8(run.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");

    // 24 hourly jobs and 72 urgent ones.
    assert!(
        stdout.starts_with("96 jobs over 1d (seed 11, us-east-2)"),
        "{stdout}"
    );
    let row = |policy: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(policy))
            .unwrap_or_else(|| panic!("no {policy} row in\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let (transient, shared) = (row("transient"), row("shared"));
    assert_eq!(money(&transient[4]), 0.0, "no EKS cluster");
    // A day of the EKS control plane at $0.10 an hour.
    assert_eq!(money(&shared[4]), 2.4);
    for r in [&transient, &shared] {
        let (cost, ec2, emr, eks) = (money(&r[1]), money(&r[2]), money(&r[3]), money(&r[4]));
        assert!(cost > 0.0 && (cost - ec2 - emr - eks).abs() < 0.02, "{r:?}");
        assert_eq!(r[5], "96", "every job completed: {r:?}");
    }
    assert!(stdout.contains("shared costs"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["workload"]["jobs"], 96);
    assert_eq!(json["policies"][0]["policy"], "transient");
    assert_eq!(json["policies"][1]["policy"], "shared");
    let printed = money(&shared[1]);
    let total = json["policies"][1]["totals"]["cost_usd"].as_f64().unwrap();
    assert!((printed - total).abs() < 0.006, "{printed} vs {total}");
    assert_eq!(json["policies"][1]["categories"][1]["name"], "urgent");
    assert_eq!(
        json["policies"][1]["hourly"].as_array().unwrap().len(),
        24,
        "one point per hour"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 4, "four plots");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("### Totals") && markdown.contains("| urgent |"));

    // Same file, same seed: the same JSON, byte for byte.
    let again = dir.path().join("again");
    assert!(simulate(&file, &again).status.success());
    assert_eq!(
        std::fs::read(out.join("report.json")).unwrap(),
        std::fs::read(again.join("report.json")).unwrap()
    );
}

#[test]
fn a_bad_workload_is_one_error_line_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workload.yaml");
    std::fs::write(
        &file,
        WORKLOAD.replace("count: 2, cpu: 2", "count: 0, cpu: 2"),
    )
    .unwrap();
    let run = simulate(&file, &dir.path().join("out"));
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(run.stderr).unwrap(),
        format!(
            "error: {}: categories[1].executors.count: must be at least 1\n",
            file.display()
        )
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}
