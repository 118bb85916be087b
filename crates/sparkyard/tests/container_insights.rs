//! Container Insights end to end, with the unchanged AWS CLI and kubectl: the seed's step 16
//! situation (a congested one-node cluster) shows in CloudWatch as
//! `node_cpu_reserved_capacity` ≥ 90 under CI's dimensions, `node_cpu_utilization` follows
//! a CPU-burning pod, `list-metrics` lists the catalogue's dimension sets, an alarm on the
//! reserved CPU goes to ALARM, the performance log group holds the EMF events and the
//! application log group the pod's output in fluent-bit's shape.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cluster_support::kubectl;
use serde_json::Value;
use support::{free_port, Server};

const NODE: &str = "ci-node";
const CLUSTER: &str = "eks-emr-cluster";

fn start() -> (Server, tempfile::TempDir) {
    // Pods cannot see the test's /tmp: keep the config file elsewhere.
    let files = tempfile::Builder::new()
        .prefix("sparkyard-ci-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
    let config = files.path().join("sparkyard.toml");
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
pod-cidr = "127.{}.0.0/16"

[[cluster.nodes]]
name = "{NODE}"
cpu = "2"
memory = "8Gi"
capacity = {{ cpu = "2", memory = "8Gi" }}

[container-insights]
interval = "3s"
log-interval = "1s"

[services]
alarm-evaluation-interval = "2s"
"#,
            40 + n % 200
        ),
    )
    .unwrap();
    let api_port = free_port();
    let service = format!("127.15.{}.{}:443", (n >> 8) % 250 + 1, n % 250 + 1);
    let server = Server::start_with(&[
        "--cluster-listen",
        &format!("127.0.0.1:{api_port}"),
        "--cluster-service-address",
        &service,
        "--config",
        config.to_str().unwrap(),
    ]);
    (server, files)
}

fn kubeconfig(server: &Server) -> PathBuf {
    server.data_dir.path().join("cluster/kubeconfig")
}

fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let out = kubectl(&kubeconfig(server), args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn apply(server: &Server, object: &Value) {
    let path = server
        .data_dir
        .path()
        .join(format!("obj-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, object.to_string()).unwrap();
    kubectl_ok(server, &["apply", "-f", path.to_str().unwrap()]);
}

fn pod(name: &str, cpu: &str, command: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "monthly-batch", "labels": {"app": name}},
        "spec": {"containers": [{
            "name": "main", "image": "busybox:1.36",
            "command": ["/bin/sh", "-c", command],
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}
        }]}
    })
}

/// Polls `check` until it returns `Some`, failing with `what` and the server log after a
/// generous deadline (the agent publishes every 3 s; alarms evaluate every 2 s).
fn eventually<T>(server: &Server, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn window() -> (String, String) {
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (
        fmt(now - chrono::Duration::minutes(10)),
        fmt(now + chrono::Duration::minutes(2)),
    )
}

/// The node's EC2 instance id, from its `spec.providerID` (`aws:///<zone>/<id>`).
fn instance_id(server: &Server) -> String {
    let provider = kubectl_ok(
        server,
        &["get", "node", NODE, "-o", "jsonpath={.spec.providerID}"],
    );
    provider.rsplit('/').next().unwrap().to_string()
}

fn node_statistic(server: &Server, metric: &str, statistic: &str) -> Option<f64> {
    let (start, end) = window();
    let out = server.aws_json(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "ContainerInsights",
        "--metric-name",
        metric,
        "--dimensions",
        &format!("Name=ClusterName,Value={CLUSTER}"),
        &format!("Name=NodeName,Value={NODE}"),
        &format!("Name=InstanceId,Value={}", instance_id(server)),
        "--statistics",
        statistic,
        "--period",
        "60",
        "--start-time",
        &start,
        "--end-time",
        &end,
    ]);
    out["Datapoints"]
        .as_array()?
        .iter()
        .filter_map(|d| d[statistic].as_f64())
        .reduce(f64::max)
}

/// Pods run under shims that outlive the server (as containers outlive containerd): delete
/// them before the server goes, pass or fail, so no busy loop survives the test.
struct DeletePods<'a>(&'a Server);

impl Drop for DeletePods<'_> {
    fn drop(&mut self) {
        let _ = kubectl(
            &kubeconfig(self.0),
            &[
                "delete",
                "pods",
                "--all",
                "-n",
                "monthly-batch",
                "--grace-period=0",
                "--force",
            ],
        );
    }
}

/// Busy for at most five minutes, should the clean-up above not run (a killed test).
const BURNER: &str = "echo ci-burner-started; end=$(( $(date +%s) + 300 )); \
    while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done";

#[test]
fn container_insights_sees_the_congested_node() {
    let (server, _files) = start();
    let _cleanup = DeletePods(&server);
    kubectl_ok(&server, &["create", "namespace", "monthly-batch"]);
    // 1000m + 850m of the node's 2000m: 92.5 % reserved, as CI computes it (over capacity).
    apply(&server, &pod("burner", "1", BURNER));
    apply(&server, &pod("holder", "850m", "exec sleep 3600"));
    server.aws_ok(&[
        "cloudwatch",
        "put-metric-alarm",
        "--alarm-name",
        "reserved-cpu",
        "--namespace",
        "ContainerInsights",
        "--metric-name",
        "node_cpu_reserved_capacity",
        "--dimensions",
        &format!("Name=ClusterName,Value={CLUSTER}"),
        &format!("Name=NodeName,Value={NODE}"),
        &format!("Name=InstanceId,Value={}", instance_id(&server)),
        "--statistic",
        "Maximum",
        "--period",
        "60",
        "--evaluation-periods",
        "1",
        "--threshold",
        "90",
        "--comparison-operator",
        "GreaterThanThreshold",
    ]);

    let reserved = eventually(&server, "node_cpu_reserved_capacity ≥ 90", || {
        node_statistic(&server, "node_cpu_reserved_capacity", "Maximum").filter(|v| *v >= 90.0)
    });
    assert!((reserved - 92.5).abs() < 0.01, "reserved {reserved}");

    // The burner keeps about one of the node's two cores busy.
    let utilization = eventually(&server, "node_cpu_utilization showing the burner", || {
        node_statistic(&server, "node_cpu_utilization", "Maximum").filter(|v| *v > 25.0)
    });
    assert!(utilization <= 100.0, "utilization {utilization}");

    // The catalogue's dimension sets.
    let listed = server.aws_json(&[
        "cloudwatch",
        "list-metrics",
        "--namespace",
        "ContainerInsights",
        "--metric-name",
        "node_cpu_reserved_capacity",
    ]);
    let mut sets: Vec<Vec<String>> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut names: Vec<String> = m["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["Name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        })
        .collect();
    sets.sort();
    assert_eq!(
        sets,
        vec![
            vec!["ClusterName".to_string()],
            vec![
                "ClusterName".to_string(),
                "InstanceId".to_string(),
                "NodeName".to_string()
            ],
        ]
    );
    let pods = eventually(&server, "pod_cpu_utilization by PodName", || {
        let listed = server.aws_json(&[
            "cloudwatch",
            "list-metrics",
            "--namespace",
            "ContainerInsights",
            "--metric-name",
            "pod_cpu_utilization",
            "--dimensions",
            "Name=PodName,Value=burner",
        ]);
        let metrics = listed["Metrics"].as_array().cloned().unwrap_or_default();
        (!metrics.is_empty()).then_some(metrics)
    });
    assert!(pods.iter().all(|m| m["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["Name"] == "Namespace" && d["Value"] == "monthly-batch")));

    // The alarm on reserved CPU fires.
    let alarm = eventually(&server, "the alarm in ALARM", || {
        let out = server.aws_json(&[
            "cloudwatch",
            "describe-alarms",
            "--alarm-names",
            "reserved-cpu",
        ]);
        let alarm = out["MetricAlarms"][0].clone();
        (alarm["StateValue"] == "ALARM").then_some(alarm)
    });
    assert!(
        alarm["StateReason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed"),
        "{alarm}"
    );
    let history = server.aws_json(&[
        "cloudwatch",
        "describe-alarm-history",
        "--alarm-name",
        "reserved-cpu",
        "--history-item-type",
        "StateUpdate",
    ]);
    assert!(
        history["AlarmHistoryItems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["HistorySummary"].as_str().unwrap().ends_with("to ALARM")),
        "{history}"
    );

    // The EMF events behind the metrics, one stream per node.
    let performance = format!("/aws/containerinsights/{CLUSTER}/performance");
    let events = server.aws_json(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        &performance,
        "--log-stream-names",
        NODE,
        "--filter-pattern",
        "\"node_cpu_reserved_capacity\"",
    ]);
    let node_event: Value = serde_json::from_str(
        events["events"][0]["message"]
            .as_str()
            .expect("a Node event in the performance log"),
    )
    .unwrap();
    assert_eq!(node_event["Type"], "Node");
    assert_eq!(node_event["NodeName"], NODE);
    assert_eq!(
        node_event["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "ContainerInsights"
    );

    // The burner's output in the application log group, fluent-bit style.
    let application = format!("/aws/containerinsights/{CLUSTER}/application");
    let line = eventually(&server, "the burner's line in the application log", || {
        let out = server.aws(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            &application,
            "--filter-pattern",
            "\"ci-burner-started\"",
            "--output",
            "json",
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["events"].as_array()?.first().cloned()
    });
    assert!(
        line["logStreamName"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{NODE}-application.var.log.containers.burner_monthly-batch_main-"
            )),
        "{line}"
    );
    let record: Value = serde_json::from_str(line["message"].as_str().unwrap()).unwrap();
    assert_eq!(record["log"], "ci-burner-started");
    assert_eq!(record["stream"], "stdout");
    assert_eq!(record["kubernetes"]["namespace_name"], "monthly-batch");
    assert_eq!(record["kubernetes"]["host"], NODE);

    // The same figure as a Prometheus gauge, parsed by the real client library's parser.
    let addr = std::fs::read_to_string(server.data_dir.path().join("metrics.addr")).unwrap();
    let gauge = eventually(&server, "sparkyard_ci_node_cpu_reserved_capacity", || {
        prometheus_value(
            &format!("http://{}/metrics", addr.trim()),
            "sparkyard_ci_node_cpu_reserved_capacity",
            &[("cluster", CLUSTER), ("node", NODE)],
        )
    });
    assert!((gauge - 92.5).abs() < 0.01, "gauge {gauge}");
}

/// One sample's value from a scrape, parsed with `prometheus_client.parser`.
fn prometheus_value(url: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    const SCRIPT: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
url, name, want = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
text = urllib.request.urlopen(url).read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
            print(s.value)
"#;
    let want: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let out = std::process::Command::new(support::venv_tool("python3"))
        .args(["-c", SCRIPT, url, name, &Value::Object(want).to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
