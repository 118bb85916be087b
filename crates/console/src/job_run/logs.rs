//! Container logs from their stored copies in CloudWatch Logs, read as the principal
//! (`logs:DescribeLogStreams`, `logs:GetLogEvents`), so a preempted or deleted pod's
//! output still shows. Stream names follow EMR on EKS's layout, as the shipper writes
//! them (`crates/logs/src/layout.rs`):
//! `<prefix>/<vcId>/jobs/<id>/containers/[spark-<id>/]<pod>/<stdout|stderr>`.

use serde_json::{json, Value};
use sparkyard_aws::Principal;

use super::chain::Role;
use crate::api::{Api, ApiError};

/// The page shows at most this much of a stream's end.
pub const TAIL_BYTES: usize = 256 * 1024;

/// Where the run ships its CloudWatch logs (`cloudWatchMonitoringConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatch {
    pub group: String,
    pub prefix: String,
}

pub fn cloudwatch_of(run: &Value) -> Option<CloudWatch> {
    let c = run.pointer(
        "/configurationOverrides/monitoringConfiguration/cloudWatchMonitoringConfiguration",
    )?;
    let group = c["logGroupName"].as_str().filter(|g| !g.is_empty())?;
    Some(CloudWatch {
        group: group.to_string(),
        prefix: c["logStreamNamePrefix"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// `s3MonitoringConfiguration.logUri`, shown when CloudWatch is not configured.
pub fn s3_log_uri(run: &Value) -> Option<String> {
    run.pointer("/configurationOverrides/monitoringConfiguration/s3MonitoringConfiguration/logUri")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The streams' common prefix for the run: `[<prefix>/]<vc>/jobs/<id>/containers/`.
pub fn run_prefix(cw: &CloudWatch, vc: &str, id: &str) -> String {
    let path = format!("{vc}/jobs/{id}/containers/");
    if cw.prefix.is_empty() {
        path
    } else {
        // As the shipper joins them (crates/logs/src/layout.rs): the prefix verbatim.
        format!("{}/{path}", cw.prefix)
    }
}

/// One pod's stream: the job runner directly under `containers/`, Spark pods under
/// `containers/spark-<id>/`.
pub fn stream_name(
    cw: &CloudWatch,
    vc: &str,
    id: &str,
    pod: &str,
    runner: bool,
    stream: &str,
) -> String {
    let base = run_prefix(cw, vc, id);
    if runner {
        format!("{base}{pod}/{stream}")
    } else {
        format!("{base}spark-{id}/{pod}/{stream}")
    }
}

/// The pod a stream name belongs to (the segment before `stdout`/`stderr`).
pub fn pod_of_stream(name: &str) -> Option<&str> {
    let mut parts = name.rsplit('/');
    let stream = parts.next()?;
    matches!(stream, "stdout" | "stderr")
        .then(|| parts.next())
        .flatten()
}

/// Pods that shipped logs (DescribeLogStreams by prefix; a few pages at most).
pub async fn shipped_pods(
    api: &Api,
    p: &Principal,
    cw: &CloudWatch,
    prefix: &str,
) -> Result<Vec<String>, ApiError> {
    let mut pods = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let mut input = json!({"logGroupName": cw.group, "logStreamNamePrefix": prefix});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = api
            .json_op(p, "logs", "Logs_20140328.DescribeLogStreams", &input)
            .await?;
        for s in page["logStreams"].as_array().into_iter().flatten() {
            if let Some(pod) = s["logStreamName"].as_str().and_then(pod_of_stream) {
                if !pods.iter().any(|x| x == pod) {
                    pods.push(pod.to_string());
                }
            }
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(pods)
}

/// The end of a stored stream: ONE `GetLogEvents` from the tail (`startFromHead: false`,
/// the newest 10,000 events), each line with its event time as an RFC 3339 prefix when
/// `stamped` (for [`super::spark_log`]), else as shipped.
pub async fn stored_lines(
    api: &Api,
    p: &Principal,
    cw: &CloudWatch,
    stream: &str,
    stamped: bool,
) -> Result<Vec<String>, ApiError> {
    let input = json!({"logGroupName": cw.group, "logStreamName": stream,
        "startFromHead": false, "limit": 10000});
    let page = api
        .json_op(p, "logs", "Logs_20140328.GetLogEvents", &input)
        .await?;
    Ok(page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let message = e["message"].as_str()?;
            let time = e["timestamp"]
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_millis);
            Some(match time.filter(|_| stamped) {
                Some(t) => format!("{} {message}", t.to_rfc3339()),
                None => message.to_string(),
            })
        })
        .collect())
}

/// The main container of a run's pod, by role: the names EMR's job runner and Spark on
/// Kubernetes give them.
pub fn main_container(role: Role) -> &'static str {
    match role {
        Role::JobRunner => "job-runner",
        Role::Driver => "spark-kubernetes-driver",
        Role::Executor => "spark-kubernetes-executor",
    }
}

/// The Kubernetes log API path of a live container's output: one stream
/// (`stream=Stdout|Stderr`, Kubernetes 1.32's split streams, which sparkyard's cluster
/// serves) or both merged (`None`, what every cluster serves), its newest `limit_bytes`.
pub fn live_log_path(
    namespace: &str,
    pod: &str,
    container: &str,
    stream: Option<&str>,
    timestamps: bool,
    limit_bytes: Option<usize>,
) -> String {
    let mut path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/log?container={container}");
    if let Some(s) = stream {
        path.push_str(if s == "stderr" {
            "&stream=Stderr"
        } else {
            "&stream=Stdout"
        });
    }
    if timestamps {
        path.push_str("&timestamps=true");
    }
    if let Some(n) = limit_bytes {
        path.push_str(&format!("&limitBytes={n}"));
    }
    path
}

/// The last lines that fit in `limit` bytes (all with `None`), newline-joined.
pub fn keep_last(lines: &[String], limit: Option<usize>) -> String {
    let mut kept = 0usize;
    let mut start = lines.len();
    for (i, l) in lines.iter().enumerate().rev() {
        if limit.is_some_and(|max| kept + l.len() + 1 > max) {
            break;
        }
        kept += l.len() + 1;
        start = i;
    }
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cw(prefix: &str) -> CloudWatch {
        CloudWatch {
            group: "/emr-on-eks/c/ns".into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn stream_names_follow_emrs_layout() {
        assert_eq!(
            stream_name(
                &cw("low-p-"),
                "vc1",
                "r1",
                "spark-r1-driver",
                false,
                "stderr"
            ),
            "low-p-/vc1/jobs/r1/containers/spark-r1/spark-r1-driver/stderr"
        );
        assert_eq!(
            stream_name(&cw(""), "vc1", "r1", "r1-abcde", true, "stdout"),
            "vc1/jobs/r1/containers/r1-abcde/stdout"
        );
        assert_eq!(
            run_prefix(&cw("a/"), "vc1", "r1"),
            "a//vc1/jobs/r1/containers/"
        );
        assert_eq!(
            stream_name(&cw(""), "vc1", "r1", "r1-abcde", true, "stdout"),
            "vc1/jobs/r1/containers/r1-abcde/stdout"
        );
        assert_eq!(
            pod_of_stream("p/vc1/jobs/r1/containers/spark-r1/pi-exec-1/stdout"),
            Some("pi-exec-1")
        );
        assert_eq!(pod_of_stream("p/vc1/x/other"), None);
    }

    #[test]
    fn live_logs_name_one_stream() {
        assert_eq!(
            live_log_path("ns", "p-exec-1", main_container(Role::Executor), Some("stderr"), true, None),
            "/api/v1/namespaces/ns/pods/p-exec-1/log?container=spark-kubernetes-executor&stream=Stderr&timestamps=true"
        );
        assert_eq!(
            live_log_path(
                "ns",
                "r-x",
                main_container(Role::JobRunner),
                None,
                false,
                Some(10)
            ),
            "/api/v1/namespaces/ns/pods/r-x/log?container=job-runner&limitBytes=10"
        );
    }

    #[test]
    fn tails_keep_whole_last_lines() {
        let lines: Vec<String> = ["aaaa", "bbbb", "cccc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(keep_last(&lines, Some(10)), "bbbb\ncccc\n");
        assert_eq!(keep_last(&lines, None), "aaaa\nbbbb\ncccc\n");
        assert_eq!(keep_last(&[], Some(10)), "");
    }

    #[test]
    fn monitoring_configuration_is_read() {
        let run = serde_json::json!({"configurationOverrides": {"monitoringConfiguration": {
            "cloudWatchMonitoringConfiguration": {"logGroupName": "g", "logStreamNamePrefix": "p"},
            "s3MonitoringConfiguration": {"logUri": "s3://b/"}}}});
        assert_eq!(
            cloudwatch_of(&run),
            Some(CloudWatch {
                group: "g".into(),
                prefix: "p".into()
            })
        );
        assert_eq!(s3_log_uri(&run).as_deref(), Some("s3://b/"));
    }
}
