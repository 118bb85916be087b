//! CloudWatch metrics and alarms (`aws cloudwatch`, boto3) over each wire protocol the
//! clients may speak: smithy-rpc-v2-cbor (botocore's choice), JSON 1.0 and query
//! (`python/services_cloudwatch.py` with the client's model patched to each). The cluster is
//! not started: CloudWatch does not need it. Alarms are evaluated every second here
//! (`[services] alarm-evaluation-interval`).

mod support;

use support::Server;

fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sparkyard.toml");
    std::fs::write(
        &config,
        // Container Insights needs the cluster, which these tests do not start.
        "[services]\nalarm-evaluation-interval = \"1s\"\n\n[container-insights]\nenabled = false\n",
    )
    .unwrap();
    let server = Server::start_with(&["--no-cluster", "--config", config.to_str().unwrap()]);
    (server, dir)
}

#[test]
fn boto3_cloudwatch_over_cbor() {
    let (s, _dir) = server();
    let out = s.python(
        "services_cloudwatch.py",
        &["smithy-rpc-v2-cbor", "Cbor/App"],
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn boto3_cloudwatch_over_json() {
    let (s, _dir) = server();
    let out = s.python("services_cloudwatch.py", &["json", "Json/App"]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn boto3_cloudwatch_over_query() {
    let (s, _dir) = server();
    let out = s.python("services_cloudwatch.py", &["query", "Query/App"]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn cli_metrics_errors_and_restart() {
    let (mut s, _dir) = server();
    let now = chrono::Utc::now();
    let ts = (now - chrono::Duration::minutes(2)).to_rfc3339();
    s.aws_ok(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        "Spark/Jobs",
        "--metric-name",
        "Executors",
        "--dimensions",
        "Cluster=emr,Job=pi",
        "--value",
        "4",
        "--unit",
        "Count",
        "--timestamp",
        &ts,
    ]);
    // The CLI's error line is CloudWatch's query-style code and message.
    let refused = s.aws(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        "AWS/EMR",
        "--metric-name",
        "Executors",
        "--value",
        "1",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("An error occurred (InvalidParameterValue) when calling the PutMetricData operation: The value AWS/EMR for parameter Namespace is invalid."),
        "{stderr}"
    );
    let listed = s.aws_json(&["cloudwatch", "list-metrics"]);
    let names: Vec<&str> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Spark/Jobs"], "the refused put stored something");

    s.restart();
    let start = (now - chrono::Duration::minutes(10)).to_rfc3339();
    let end = (now + chrono::Duration::minutes(1)).to_rfc3339();
    let stats = s.aws_json(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "Spark/Jobs",
        "--metric-name",
        "Executors",
        "--dimensions",
        "Name=Job,Value=pi",
        "Name=Cluster,Value=emr",
        "--start-time",
        &start,
        "--end-time",
        &end,
        "--period",
        "60",
        "--statistics",
        "Maximum",
        "SampleCount",
    ]);
    let points = stats["Datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{stats}");
    assert_eq!(points[0]["Maximum"], 4.0);
    assert_eq!(points[0]["SampleCount"], 1.0);
    assert_eq!(points[0]["Unit"], "Count");

    let bad_period = s.aws(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "Spark/Jobs",
        "--metric-name",
        "Executors",
        "--start-time",
        &start,
        "--end-time",
        &end,
        "--period",
        "61",
        "--statistics",
        "Maximum",
    ]);
    assert!(String::from_utf8_lossy(&bad_period.stderr).contains(
        "(InvalidParameterValue) when calling the GetMetricStatistics operation: The parameter Period must be a multiple of 60."
    ));
}
