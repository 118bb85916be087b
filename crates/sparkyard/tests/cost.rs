//! What each job run costs (docs/cost.md), end to end with real Spark: the controller's cost
//! record against the pods' own timestamps and requests, `sparkyard runs cost`, the
//! `sparkyard_job_run_*_cost` counters, and the daily Cost and Usage Report export read back
//! with boto3 and pyarrow.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_env::{Env, NS, PI};
use serde_json::{json, Value};

/// Small requests so two runs fit the node side by side; executors kept after the run
/// (`deleteOnTermination=false`) so the test can read their final status.
const SMALL: &str = "--conf spark.executor.memory=512m --conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.driver.memory=512m --conf spark.kubernetes.executor.request.cores=250m --conf spark.kubernetes.driver.request.cores=250m --conf spark.kubernetes.executor.deleteOnTermination=false";

const SECOND_NS: &str = "intra-day";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

fn cpu(quantity: &str) -> f64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().unwrap() / 1000.0,
        None => quantity.parse().unwrap(),
    }
}

/// The pod's effective vCPU request (no init containers here: the sum of its containers').
fn requested_cpu(pod: &Value) -> f64 {
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["resources"]["requests"]["cpu"].as_str())
        .map(cpu)
        .sum()
}

/// A plain HTTP/1.0 GET of the metrics listener; the body.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[test]
fn runs_get_cost_records_counters_and_a_cur_export_that_adds_up() {
    let mut env = Env::serve(
        "[cost]\nexport = \"s3://finops/cur\"\nexport-name = \"sparkyard-cur\"\nexport-interval-seconds = 1\n",
    );
    env.walkthrough_setup(NS, None);
    let (second_vc, _) = env.add_namespace(SECOND_NS, None);
    env.server
        .aws_ok(&["s3api", "create-bucket", "--bucket", "finops"]);

    // pi-4 in the seed's monthly-batch cluster, a one-executor pi in intra-day, each tagged.
    let pi4 = env.request(
        &env.vc,
        "pi-4",
        PI,
        &format!("--conf spark.executor.instances=2 {SMALL}"),
        json!({"tags": {"team": "finance", "cost-center": "cc-42"}}),
    );
    let first = env.start(&pi4);
    let other = env.request(
        &second_vc,
        "pi-1",
        PI,
        &format!("--conf spark.executor.instances=1 {SMALL}"),
        json!({"tags": {"team": "risk"}}),
    );
    let second = env.start(&other);
    for (vc, id) in [(&env.vc, &first), (&second_vc, &second)] {
        let (run, _) = env.follow(vc, id, Duration::from_secs(600), |_| {});
        assert_eq!(run["state"], "COMPLETED", "{run:#}\n{}", env.log());
    }

    // The record is written once every pod of the run has ended.
    let sparkyard = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .args(args)
            .args(["--data-dir", env.server.data_dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sparkyard {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let record_of = |id: &str| -> Value {
        for _ in 0..1200 {
            let record: Value =
                serde_json::from_str(&sparkyard(&["runs", "cost", id, "--output", "json"]))
                    .unwrap();
            if !record["cost"].is_null() {
                return record;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("no cost record for {id}\n{}", env.log());
    };
    let record = record_of(&first);
    let cost = &record["cost"];
    assert_eq!(record["virtualClusterId"], json!(env.vc));
    assert_eq!(cost["region"], "us-east-1");
    assert_eq!(cost["ratesSource"], "published");

    // Checked against the pods' own status: every pod of the run is in the record, billed
    // from its startTime to its containers' end, on what it requested, on the node it ran on.
    let pods: Value = serde_json::from_str(&env.kubectl(&[
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        &format!("emr-containers.amazonaws.com/job.id={first}"),
        "-o",
        "json",
    ]))
    .unwrap();
    let pods = pods["items"].as_array().unwrap();
    let recorded: BTreeMap<&str, &Value> = cost["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p))
        .collect();
    assert_eq!(pods.len(), 4, "runner, driver, two executors: {pods:#?}");
    assert_eq!(recorded.len(), 4, "{cost:#}");
    let mut vcpu_hours = 0.0;
    let mut roles = Vec::new();
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let line = recorded
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {cost:#}"));
        let start = time(&pod["status"]["startTime"]);
        let end = pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| time(&c["state"]["terminated"]["finishedAt"]))
            .max()
            .unwrap();
        assert_eq!(time(&line["start"]), start, "{name}: {line:#}");
        assert_eq!(time(&line["end"]), end, "{name}: {line:#}");
        let seconds = (end - start).num_milliseconds().div_euclid(1000)
            + i64::from((end - start).num_milliseconds() % 1000 != 0);
        assert_eq!(line["seconds"], json!(seconds), "{name}");
        let vcpu = requested_cpu(pod);
        assert_eq!(line["vcpu"].as_f64().unwrap(), vcpu, "{name}");
        assert_eq!(
            line["node"]["name"].as_str(),
            pod["spec"]["nodeName"].as_str()
        );
        assert_eq!(line["node"]["instanceType"], "m5.2xlarge");
        assert_eq!(line["node"]["capacityType"], "on-demand");
        vcpu_hours += vcpu * seconds as f64 / 3600.0;
        roles.push(line["role"].as_str().unwrap().to_string());
    }
    roles.sort();
    assert_eq!(roles, ["driver", "executor", "executor", "job-runner"]);
    let recorded_vcpu_hours = cost["vcpuHours"].as_f64().unwrap();
    assert!(
        (recorded_vcpu_hours - vcpu_hours).abs() < 1e-9,
        "record {recorded_vcpu_hours} vs pods {vcpu_hours}"
    );
    // EMR's charge at its published rates; the EC2 share of an on-demand m5.2xlarge.
    let emr = recorded_vcpu_hours * 0.01012 + cost["gbHours"].as_f64().unwrap() * 0.00111125;
    assert!((cost["emrUsd"].as_f64().unwrap() - emr).abs() < 1e-9);
    assert!(cost["ec2Usd"].as_f64().unwrap() > 0.0);

    // The table a person reads.
    let table = sparkyard(&["runs", "cost", &first]);
    for needed in [
        format!("job run {first} (pi-4)"),
        format!("spark-{first}-driver"),
        "m5.2xlarge".into(),
        "vCPU-hours".into(),
    ] {
        assert!(table.contains(&needed), "{needed} missing from:\n{table}");
    }
    let second_record = record_of(&second);
    let totals = sparkyard(&["runs", "cost", "--since", "1h"]);
    let sum = |field: &str| {
        record["cost"][field].as_f64().unwrap() + second_record["cost"][field].as_f64().unwrap()
    };
    assert!(
        totals.contains("2 runs since")
            && totals.contains(&format!("EC2 ${:.6}", sum("ec2Usd")))
            && totals.contains(&format!("EMR on EKS ${:.6}", sum("emrUsd"))),
        "{totals}"
    );

    // Prometheus: the counters by virtual cluster.
    let metrics = http_get(
        std::fs::read_to_string(env.server.data_dir.path().join("metrics.addr"))
            .unwrap()
            .trim(),
        "/metrics",
    );
    let emr_counter = metrics
        .lines()
        .find(|l| {
            l.starts_with("sparkyard_job_run_emr_cost_usd_total{")
                && l.contains(&format!("virtual_cluster_id=\"{}\"", env.vc))
        })
        .unwrap_or_else(|| panic!("no EMR cost counter for {} in\n{metrics}", env.vc));
    let counted: f64 = emr_counter.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (counted - cost["emrUsd"].as_f64().unwrap()).abs() < 1e-9,
        "{emr_counter}"
    );

    // The day's Cost and Usage Report: one line item set per run, summing to the records.
    let day = time(&record["finishedAt"]).format("%Y-%m-%d").to_string();
    let export: Value = serde_json::from_str(&env.server.python(
        "cur_export.py",
        &["finops", "cur", "sparkyard-cur", &day, &first, &second],
    ))
    .unwrap();
    for (id, record, vc, ns) in [
        (&first, &record, &env.vc, NS),
        (&second, &second_record, &second_vc, SECOND_NS),
    ] {
        let cost = &record["cost"];
        let items = &export["runs"][id.as_str()];
        let pods = cost["pods"].as_array().unwrap().len() as u64;
        assert_eq!(items["rows"], json!(2 + 2 * pods), "{id}: {items:#}");
        assert_eq!(items["emr_rows"], 2);
        assert_eq!(export["csv_rows"][id.as_str()], json!(2 + 2 * pods));
        assert!(
            (items["emr_usd"].as_f64().unwrap() - cost["emrUsd"].as_f64().unwrap()).abs() < 1e-9
        );
        assert!(
            (items["ec2_usd"].as_f64().unwrap() - cost["ec2Usd"].as_f64().unwrap()).abs() < 1e-9
        );
        assert!(
            (export["csv_emr_usd"][id.as_str()].as_f64().unwrap()
                - cost["emrUsd"].as_f64().unwrap())
            .abs()
                < 1e-9
        );
        assert_eq!(items["virtual_cluster_id"], json!(vc));
        assert_eq!(items["namespace"], ns);
    }
    assert_eq!(
        export["runs"][first.as_str()]["tags"],
        json!({"resource_tags_user_team": "finance", "resource_tags_user_cost_center": "cc-42"})
    );
    assert_eq!(
        export["runs"][second.as_str()]["tags"],
        json!({"resource_tags_user_team": "risk"})
    );
}
