//! Pure builders of the Kubernetes objects of a job run.

pub mod job_runner;
pub mod pod_templates;
pub mod properties;
pub mod service_accounts;
pub mod virtual_cluster;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;

use crate::dereference::RunRefs;
use crate::validate::Validated;

/// Labels EMR on EKS puts on every object of a job run; `kubectl get pods -l
/// emr-containers.amazonaws.com/job.id=<id>` finds them all.
pub const LABEL_JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
pub const LABEL_VIRTUAL_CLUSTER_ID: &str = "emr-containers.amazonaws.com/virtual-cluster-id";
/// The IRSA annotation the pod-identity webhook reads.
pub const ANNOTATION_ROLE_ARN: &str = "eks.amazonaws.com/role-arn";

/// Everything applied for one attempt of a run, in the order it is applied: the namespace's
/// RBAC, the role's service accounts and RBAC, the configuration, then the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct RunObjects {
    pub namespace: virtual_cluster::NamespaceRbac,
    pub role: service_accounts::RoleObjects,
    pub config_map: ConfigMap,
    pub runner: Job,
}

pub fn run_objects(
    refs: &RunRefs,
    validated: &Validated,
    tool_image: &str,
    native_submission: bool,
) -> RunObjects {
    let input = job_runner::RunnerInput {
        job_run_id: &refs.job_run_id,
        virtual_cluster_id: &refs.virtual_cluster_id,
        namespace: &refs.namespace,
        account_id: &refs.account_id,
        role_name: &refs.role_name,
        attempt: refs.attempt,
        submit: &validated.submit,
        resolved: &validated.resolved,
        spark_image: &validated.runner_image,
        tool_image,
        native_submission,
    };
    RunObjects {
        namespace: virtual_cluster::build(&refs.namespace),
        role: service_accounts::build(
            &refs.namespace,
            &refs.account_id,
            &refs.role_arn,
            &refs.role_name,
        ),
        config_map: job_runner::config_map(&input),
        runner: job_runner::job(&input),
    }
}
