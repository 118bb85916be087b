//! The AWS client side of sparkyard's jobs, in EMR on EKS's shapes:
//!
//! - the **log shipper** ([`shipper`]): every container's stdout and stderr, delivered to the
//!   job run's S3 `logUri` and CloudWatch log group in EMR on EKS's layout ([`layout`]),
//!   including pods that were preempted or deleted mid-run;
//! - **`sparkyard fetch`** ([`fetch`]): the init-container download of a run's `s3://` inputs
//!   with the pod's role;
//! - the **persistent app UI** ([`event_log`], [`history`]): Spark event logs per run and
//!   the real Spark History Server over them.
//!
//! Pure, unit-tested parts: [`layout`], [`run_config`], [`batch`], [`lines`], [`rotation`],
//! [`event_log`]. Effects: [`aws`] (credentials, S3 via `object_store`, CloudWatch Logs),
//! [`shipper`], [`fetch`], [`history`]. `fetch` lives here rather than in a crate of its own
//! because it shares the AWS client side (credentials, S3) with the shipper.

pub mod aws;
pub mod batch;
pub mod event_log;
pub mod fetch;
pub mod history;
pub mod layout;
pub mod lines;
pub mod rotation;
pub mod run_config;
pub mod service;
pub mod shipper;

pub use event_log::{event_log_confs, EventLogSettings};
pub use run_config::RunLogConfig;
