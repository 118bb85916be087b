//! dereference: what a job run refers to, read from its record and its virtual cluster —
//! namespace, execution role, Spark image, driver, classifications, log locations.
//!
//! Pure: the records come from `Emr`, the namespace check is `apply`'s (it is I/O).

use serde_json::Value;
use sparkyard_emr::{FailureReason, JobRunRecord, VirtualClusterRecord, VirtualClusterState};
use sparkyard_logs::layout::{self, PodKind, Stream};

use crate::classifications::Configuration;
use crate::config::ControllerConfig;
use crate::names;
use crate::status::LogLocations;
use crate::submit::JobDriver;

/// Everything a run refers to, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRefs {
    pub job_run_id: String,
    pub virtual_cluster_id: String,
    pub cluster_id: String,
    pub namespace: String,
    pub account_id: String,
    pub role_arn: String,
    pub role_name: String,
    pub image: String,
    pub driver: JobDriver,
    pub configurations: Vec<Configuration>,
    pub monitoring: Monitoring,
    /// `retryPolicyConfiguration.maxAttempts` (1: no retry).
    pub max_attempts: u32,
    /// Whether the run has a retry policy: driver names then carry a per-attempt suffix.
    pub has_retry_policy: bool,
    /// The current attempt (`retryPolicyExecution.currentAttemptCount`).
    pub attempt: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Monitoring {
    pub log_uri: Option<String>,
    pub log_group: Option<String>,
    pub log_stream_prefix: Option<String>,
}

/// Why a run cannot start: it fails with this reason and `stateDetails`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: FailureReason,
    pub details: String,
}

impl Failure {
    pub fn new(reason: FailureReason, details: impl Into<String>) -> Self {
        Self {
            reason,
            details: details.into(),
        }
    }
}

pub fn dereference(
    run: &JobRunRecord,
    vc: Option<&VirtualClusterRecord>,
    config: &ControllerConfig,
) -> Result<RunRefs, Failure> {
    let cluster_unavailable = |d: String| Failure::new(FailureReason::ClusterUnavailable, d);
    match vc {
        None => {
            return Err(cluster_unavailable(format!(
                "Virtual cluster {} does not exist.",
                run.virtual_cluster_id
            )))
        }
        Some(vc) if vc.state != VirtualClusterState::Running => {
            return Err(cluster_unavailable(format!(
                "Virtual cluster {} is {:?}; job runs need a RUNNING virtual cluster.",
                vc.id, vc.state
            )))
        }
        Some(_) => {}
    }
    let validation = |d: String| Failure::new(FailureReason::ValidationError, d);
    let role_name = names::role_name(&run.execution_role_arn)
        .ok_or_else(|| {
            validation(format!(
                "JobRun submission failed. {} is not an IAM role ARN.",
                run.execution_role_arn
            ))
        })?
        .to_string();
    let image = config.image_for(&run.release_label).ok_or_else(|| {
        validation(format!(
            "JobRun submission failed. No Spark image is configured for release {} ([controller] release-images).",
            run.release_label
        ))
    })?;
    let driver = job_driver(&run.job_driver).ok_or_else(|| {
        validation("JobRun submission failed. The jobDriver is not a sparkSubmitJobDriver or sparkSqlJobDriver.".to_string())
    })?;
    let overrides = run.configuration_overrides.as_ref();
    let configurations = match overrides.and_then(|o| o.get("applicationConfiguration")) {
        Some(list) => serde_json::from_value(list.clone()).map_err(|e| {
            validation(format!(
                "JobRun submission failed. applicationConfiguration is invalid: {e}"
            ))
        })?,
        None => Vec::new(),
    };
    let monitoring = overrides
        .and_then(|o| o.get("monitoringConfiguration"))
        .map(monitoring)
        .unwrap_or_default();
    Ok(RunRefs {
        job_run_id: run.id.clone(),
        virtual_cluster_id: run.virtual_cluster_id.clone(),
        cluster_id: run.cluster_id.clone(),
        namespace: run.namespace.clone(),
        account_id: run.submitter.account_id.clone(),
        role_arn: run.execution_role_arn.clone(),
        role_name,
        image,
        driver,
        configurations,
        monitoring,
        max_attempts: run.max_attempts().max(1),
        has_retry_policy: run.retry_policy_configuration.is_some(),
        attempt: run.attempt_count.max(1),
    })
}

fn job_driver(value: &Value) -> Option<JobDriver> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(d) = value.get("sparkSubmitJobDriver") {
        return Some(JobDriver::SparkSubmit {
            entry_point: text(d, "entryPoint")?,
            entry_point_arguments: d
                .get("entryPointArguments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            spark_submit_parameters: text(d, "sparkSubmitParameters"),
        });
    }
    let d = value.get("sparkSqlJobDriver")?;
    Some(JobDriver::SparkSql {
        entry_point: text(d, "entryPoint"),
        spark_sql_parameters: text(d, "sparkSqlParameters"),
    })
}

fn monitoring(value: &Value) -> Monitoring {
    let text = |v: Option<&Value>, key: &str| {
        v.and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let cw = value.get("cloudWatchMonitoringConfiguration");
    Monitoring {
        log_uri: text(value.get("s3MonitoringConfiguration"), "logUri"),
        log_group: text(cw, "logGroupName"),
        log_stream_prefix: text(cw, "logStreamNamePrefix"),
    }
}

impl RunRefs {
    /// The driver pod of the current attempt.
    pub fn driver_pod_name(&self) -> String {
        names::driver_pod_name(&self.job_run_id, self.driver_attempt())
    }

    /// `Some(attempt)` when driver names carry the attempt (runs with a retry policy).
    pub fn driver_attempt(&self) -> Option<u32> {
        self.has_retry_policy.then_some(self.attempt)
    }

    pub fn runner_job_name(&self) -> String {
        names::runner_job_name(&self.job_run_id, self.attempt)
    }

    /// Where the current driver's logs go, for messages that point at them.
    pub fn log_locations(&self) -> LogLocations {
        let driver = self.driver_pod_name();
        let s3 = self.monitoring.log_uri.as_deref().and_then(|uri| {
            let (bucket, key) = layout::s3_object(
                uri,
                &self.virtual_cluster_id,
                &self.job_run_id,
                PodKind::Spark,
                &driver,
                Stream::Stdout,
            )?;
            let prefix = key.strip_suffix("stdout.gz").unwrap_or(&key);
            Some(format!("s3://{bucket}/{prefix}"))
        });
        let cloudwatch = self.monitoring.log_group.as_deref().map(|group| {
            let stream = layout::cloudwatch_stream(
                self.monitoring.log_stream_prefix.as_deref(),
                &self.virtual_cluster_id,
                &self.job_run_id,
                PodKind::Spark,
                &driver,
                Stream::Stderr,
            );
            format!("{group} stream {stream}")
        });
        LogLocations {
            s3_driver_prefix: s3,
            cloudwatch,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn vc() -> VirtualClusterRecord {
        serde_json::from_value(json!({
            "id": "949wt7zuphox1beiv0i30v65i", "name": "monthly-batch-emr-cluster",
            "arn": "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/949wt7zuphox1beiv0i30v65i",
            "state": "RUNNING", "containerProvider": {}, "clusterId": "eks-emr-cluster",
            "namespace": "monthly-batch", "createdAt": "2026-01-01T00:00:00Z", "createdBy": "x",
        }))
        .unwrap()
    }

    pub fn run(overrides: Value) -> JobRunRecord {
        let mut base = json!({
            "id": "0000000327fe50tosa4", "virtualClusterId": "949wt7zuphox1beiv0i30v65i",
            "name": "pi-4", "arn": "arn", "state": "PENDING", "clientToken": "t",
            "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
            "releaseLabel": "emr-6.3.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
                "sparkSubmitParameters": "--conf spark.executor.instances=2"}},
            "configurationOverrides": {
                "applicationConfiguration": [{"classification": "spark-defaults",
                    "properties": {"spark.dynamicAllocation.enabled": "false"}}],
                "monitoringConfiguration": {
                    "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch", "logStreamNamePrefix": "pi"},
                    "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs/"}}},
            "createdAt": "2026-01-01T00:00:00Z", "createdBy": "x", "attemptCount": 1,
            "clusterId": "eks-emr-cluster", "namespace": "monthly-batch",
            "submitter": {"arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012"},
            "updatedAt": "2026-01-01T00:00:00Z",
        });
        if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_seed_run_is_fully_resolved() {
        let refs = dereference(&run(json!({})), Some(&vc()), &ControllerConfig::default()).unwrap();
        assert_eq!(refs.namespace, "monthly-batch");
        assert_eq!(refs.role_name, "monthly-batch-JobExecutionRole");
        assert_eq!(
            refs.image,
            "public.ecr.aws/emr-on-eks/spark/emr-6.3.0:latest"
        );
        assert_eq!(refs.configurations[0].classification, "spark-defaults");
        assert_eq!(refs.max_attempts, 1);
        assert_eq!(refs.driver_pod_name(), "spark-0000000327fe50tosa4-driver");
        assert_eq!(refs.runner_job_name(), "0000000327fe50tosa4");
        let logs = refs.log_locations();
        assert_eq!(
            logs.s3_driver_prefix.unwrap(),
            "s3://monthly-batch-logs/949wt7zuphox1beiv0i30v65i/jobs/0000000327fe50tosa4/containers/spark-0000000327fe50tosa4/spark-0000000327fe50tosa4-driver/"
        );
        assert!(logs.cloudwatch.unwrap().starts_with(
            "/emr-on-eks/eks-emr-cluster/monthly-batch stream pi/949wt7zuphox1beiv0i30v65i/jobs/"
        ));
    }

    #[test]
    fn retry_runs_name_drivers_per_attempt() {
        let r = run(json!({"retryPolicyConfiguration": {"maxAttempts": 3}, "attemptCount": 2}));
        let refs = dereference(&r, Some(&vc()), &ControllerConfig::default()).unwrap();
        assert_eq!(refs.max_attempts, 3);
        assert_eq!(refs.runner_job_name(), "0000000327fe50tosa4--2");
        assert!(refs
            .driver_pod_name()
            .starts_with("spark-0000000327fe50tosa4-driver-"));
    }

    #[test]
    fn missing_or_terminated_clusters_are_unavailable() {
        let r = run(json!({}));
        let f = dereference(&r, None, &ControllerConfig::default()).unwrap_err();
        assert_eq!(f.reason, FailureReason::ClusterUnavailable);
        let mut terminated = vc();
        terminated.state = VirtualClusterState::Terminated;
        let f = dereference(&r, Some(&terminated), &ControllerConfig::default()).unwrap_err();
        assert_eq!(f.reason, FailureReason::ClusterUnavailable);
    }

    #[test]
    fn unmapped_releases_are_validation_errors() {
        let r = run(json!({"releaseLabel": "notebook-6.2.0"}));
        let f = dereference(&r, Some(&vc()), &ControllerConfig::default()).unwrap_err();
        assert_eq!(f.reason, FailureReason::ValidationError);
    }
}
