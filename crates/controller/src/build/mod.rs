//! Pure builders of the Kubernetes objects of a job run.

pub mod job_runner;
pub mod pod_templates;
pub mod properties;
pub mod service_accounts;

/// Labels EMR on EKS puts on every object of a job run; `kubectl get pods -l
/// emr-containers.amazonaws.com/job.id=<id>` finds them all.
pub const LABEL_JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
pub const LABEL_VIRTUAL_CLUSTER_ID: &str = "emr-containers.amazonaws.com/virtual-cluster-id";
/// The IRSA annotation the pod-identity webhook reads.
pub const ANNOTATION_ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
