//! validate: the run's classifications and spark-submit parameters, checked before anything
//! is created. A run that fails here fails with `VALIDATION_ERROR` and changes nothing.

use sparkyard_emr::FailureReason;

use crate::classifications::{self, ResolvedConfiguration};
use crate::dereference::{Failure, RunRefs};
use crate::submit::{self, SubmitCommand, SubmitInput};

/// Where the runner's `spark-defaults.conf` is mounted.
pub const PROPERTIES_FILE: &str = "/etc/spark/conf/spark-defaults.conf";

/// A run ready to build.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub resolved: ResolvedConfiguration,
    pub submit: SubmitCommand,
    /// The runner's image: `jobsubmitter.container.image`, else the release's Spark image.
    pub runner_image: String,
}

/// Cluster-side settings the spark-submit command needs.
#[derive(Debug, Clone)]
pub struct SubmitSettings<'a> {
    pub master: &'a str,
    pub spark_home: &'a str,
    /// The cluster's Spark has sparkyard's spark-runtime jar (crate::submit::APP_ID_STEP,
    /// crate::submit::SQL_RUNNER).
    pub spark_runtime: bool,
}

pub fn validate(refs: &RunRefs, settings: &SubmitSettings<'_>) -> Result<Validated, Failure> {
    let fail = |d: String| Failure::new(FailureReason::ValidationError, d);
    let mut resolved = classifications::resolve(&refs.configurations)
        .map_err(|e| fail(format!("JobRun submission failed. {e}")))?;
    if settings.spark_runtime {
        let steps = resolved
            .spark_defaults
            .get(submit::DRIVER_FEATURE_STEPS)
            .map(String::as_str);
        let steps = submit::with_feature_step(steps, submit::APP_ID_STEP);
        resolved
            .spark_defaults
            .insert(submit::DRIVER_FEATURE_STEPS.to_string(), steps);
    }
    let submit = submit::build(&SubmitInput {
        job_run_id: &refs.job_run_id,
        virtual_cluster_id: &refs.virtual_cluster_id,
        namespace: &refs.namespace,
        account_id: &refs.account_id,
        role_name: &refs.role_name,
        image: &refs.image,
        spark_home: settings.spark_home,
        master: settings.master,
        properties_file: PROPERTIES_FILE,
        attempt: refs.driver_attempt(),
        driver: &refs.driver,
        spark_runtime: settings.spark_runtime,
    })
    .map_err(|e| fail(format!("JobRun submission failed. {e}")))?;
    let runner_image = resolved
        .submitter
        .container_image
        .clone()
        .unwrap_or_else(|| refs.image.clone());
    Ok(Validated {
        resolved,
        submit,
        runner_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControllerConfig;
    use crate::dereference::{dereference, tests as d};
    use serde_json::json;

    const SETTINGS: SubmitSettings<'static> = SubmitSettings {
        master: "https://kubernetes.default.svc:443",
        spark_home: "/usr/lib/spark",
        spark_runtime: true,
    };

    #[test]
    fn unsupported_classifications_fail_with_emrs_message() {
        let run = d::run(
            json!({"configurationOverrides": {"applicationConfiguration": [
            {"classification": "hdfs-site", "properties": {"a": "b"}}]}}),
        );
        let refs = dereference(&run, Some(&d::vc()), &ControllerConfig::default()).unwrap();
        let failure = validate(&refs, &SETTINGS).unwrap_err();
        assert_eq!(failure.reason, FailureReason::ValidationError);
        assert_eq!(
            failure.details,
            "JobRun submission failed. Classification hdfs-site not supported."
        );
    }

    #[test]
    fn the_seed_run_validates() {
        let run = d::run(json!({}));
        let refs = dereference(&run, Some(&d::vc()), &ControllerConfig::default()).unwrap();
        let v = validate(&refs, &SETTINGS).unwrap();
        assert_eq!(v.runner_image, refs.image);
        assert_eq!(
            v.resolved.spark_defaults["spark.dynamicAllocation.enabled"],
            "false"
        );
        assert!(v.submit.argv.contains(
            &"spark.kubernetes.driver.master=https://kubernetes.default.svc:443".to_string()
        ));
    }
}
