//! The log shipper: every container's stdout and stderr, delivered to the job run's S3
//! `logUri` and CloudWatch log group in EMR on EKS's layout — including pods that were
//! preempted or deleted mid-run.

pub mod layout;
