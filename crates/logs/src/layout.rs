//! Where EMR on EKS puts a container's logs (reference §8): one S3 object and one
//! CloudWatch stream per pod and stream (`stdout`/`stderr`).
//!
//! ```text
//! <logUri>/<vcId>/jobs/<jobRunId>/containers/<runnerPod>/stdout.gz
//! <logUri>/<vcId>/jobs/<jobRunId>/containers/spark-<jobRunId>/<driver or executor pod>/stdout.gz
//! <prefix>/<vcId>/jobs/<jobRunId>/containers/spark-<jobRunId>/<pod>/stdout      (CloudWatch stream)
//! ```

/// Which pod of a run the logs belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PodKind {
    /// The job runner (job submitter) pod: logged directly under `containers/`.
    JobRunner,
    /// Driver and executor pods: logged under `containers/spark-<jobRunId>/`.
    Spark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The pod-level path shared by S3 and CloudWatch, without the stream name.
fn pod_path(virtual_cluster_id: &str, job_run_id: &str, kind: PodKind, pod_name: &str) -> String {
    match kind {
        PodKind::JobRunner => {
            format!("{virtual_cluster_id}/jobs/{job_run_id}/containers/{pod_name}")
        }
        PodKind::Spark => format!(
            "{virtual_cluster_id}/jobs/{job_run_id}/containers/spark-{job_run_id}/{pod_name}"
        ),
    }
}

/// `(bucket, key)` of the gzip object for one stream of one pod, from `logUri`
/// (`s3://bucket/optional/prefix/`, trailing `/` optional). `None` when logUri is not s3://.
pub fn s3_object(
    log_uri: &str,
    virtual_cluster_id: &str,
    job_run_id: &str,
    kind: PodKind,
    pod_name: &str,
    stream: Stream,
) -> Option<(String, String)> {
    let rest = log_uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    let prefix = prefix.trim_end_matches('/');
    let path = pod_path(virtual_cluster_id, job_run_id, kind, pod_name);
    let key = if prefix.is_empty() {
        format!("{path}/{}.gz", stream.as_str())
    } else {
        format!("{prefix}/{path}/{}.gz", stream.as_str())
    };
    Some((bucket.to_string(), key))
}

/// The CloudWatch Logs stream name; without a `logStreamNamePrefix` it starts at the
/// virtual-cluster id.
pub fn cloudwatch_stream(
    prefix: Option<&str>,
    virtual_cluster_id: &str,
    job_run_id: &str,
    kind: PodKind,
    pod_name: &str,
    stream: Stream,
) -> String {
    let path = pod_path(virtual_cluster_id, job_run_id, kind, pod_name);
    match prefix.filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}/{path}/{}", stream.as_str()),
        None => format!("{path}/{}", stream.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VC: &str = "949wt7zuphox1beiv0i30v65i";
    const RUN: &str = "0000000327fe50tosa4";

    #[test]
    fn driver_stdout_lands_where_the_seed_looks() {
        let (bucket, key) = s3_object(
            "s3://monthly-batch-logs-123456789012-us-east-2/",
            VC,
            RUN,
            PodKind::Spark,
            "spark-0000000327fe50tosa4-driver",
            Stream::Stdout,
        )
        .unwrap();
        assert_eq!(bucket, "monthly-batch-logs-123456789012-us-east-2");
        assert_eq!(key, "949wt7zuphox1beiv0i30v65i/jobs/0000000327fe50tosa4/containers/spark-0000000327fe50tosa4/spark-0000000327fe50tosa4-driver/stdout.gz");
    }

    #[test]
    fn runner_logs_sit_directly_under_containers() {
        let (_, key) = s3_object(
            "s3://b/some/prefix",
            VC,
            RUN,
            PodKind::JobRunner,
            "0000000327fe50tosa4-psstj",
            Stream::Stderr,
        )
        .unwrap();
        assert_eq!(key, "some/prefix/949wt7zuphox1beiv0i30v65i/jobs/0000000327fe50tosa4/containers/0000000327fe50tosa4-psstj/stderr.gz");
    }

    #[test]
    fn non_s3_log_uris_are_refused() {
        assert_eq!(
            s3_object("https://b/x", VC, RUN, PodKind::Spark, "p", Stream::Stdout),
            None
        );
        assert_eq!(
            s3_object("s3:///x", VC, RUN, PodKind::Spark, "p", Stream::Stdout),
            None
        );
    }

    #[test]
    fn cloudwatch_streams_follow_the_prefix() {
        assert_eq!(
            cloudwatch_stream(Some("pi"), VC, RUN, PodKind::Spark, "pythonpi-a8051f83b415c911-exec-1", Stream::Stdout),
            "pi/949wt7zuphox1beiv0i30v65i/jobs/0000000327fe50tosa4/containers/spark-0000000327fe50tosa4/pythonpi-a8051f83b415c911-exec-1/stdout"
        );
        assert!(
            cloudwatch_stream(None, VC, RUN, PodKind::Spark, "p", Stream::Stderr)
                .starts_with("949wt7zuphox1beiv0i30v65i/jobs/")
        );
    }
}
