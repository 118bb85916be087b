//! CloudWatch Logs through boto3 (`python/services_logs.py`) and the AWS CLI.

mod support;

use support::Server;

#[test]
fn boto3_logs_semantics() {
    let s = Server::start();
    assert_eq!(s.python("services_logs.py", &[]).trim(), "ok");
}

#[test]
fn cli_logs_round_trip_survives_restart() {
    let mut s = Server::start();
    s.aws_ok(&["logs", "create-log-group", "--log-group-name", "/g"]);
    s.aws_ok(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/g",
        "--log-stream-name",
        "s",
    ]);
    let now = chrono::Utc::now().timestamp_millis();
    let first = format!("timestamp={now},message=hello");
    let second = format!("timestamp={},message=world", now + 1);
    s.aws_ok(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        "/g",
        "--log-stream-name",
        "s",
        "--log-events",
        &first,
        &second,
    ]);
    s.restart();
    let got = s.aws_json(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/g",
        "--log-stream-name",
        "s",
        "--start-from-head",
    ]);
    let messages: Vec<&str> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["hello", "world"]);
}
