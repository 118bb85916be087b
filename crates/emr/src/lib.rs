//! The emr-containers (EMR on EKS) API, 2020-10-01: all 25 operations, wire-compatible
//! with the `aws` CLI and boto3 (see `reference/emr-containers.md`).
//!
//! Layout: `routes` matches raw paths and decodes the wire; `handlers/*` validate
//! (`validate` + `shapes`) and decide changes; `emr` owns state, durability (through
//! `sparkyard-store`) and the controller API; `records` are the durable shapes and their
//! responses; `ids`, `arn`, `pagination`, `templates`, `idempotency`, `time` are pure
//! helpers.
//!
//! Decisions (documented where they live):
//! - pagination: default page 50, `maxResults` capped at 50, opaque never-repeated tokens,
//!   newest first ([`pagination`]);
//! - ids: virtual clusters 25, job runs 19 (time-ordered), endpoints 13, job templates and
//!   security configurations 17 characters ([`ids`]);
//! - idempotency: per operation, fingerprinted requests, stored forever ([`idempotency`]);
//! - virtual cluster deletion: TERMINATING, then TERMINATED by a background step
//!   ([`emr`]); managed endpoints end TERMINATED_WITH_ERRORS (`handlers::endpoints`).

pub mod arn;
mod authz;
pub mod config;
mod emr;
mod handlers;
pub mod idempotency;
pub mod ids;
pub mod pagination;
pub mod records;
pub mod routes;
pub mod shapes;
mod state;
pub mod templates;
pub mod time;
pub mod validate;

pub use config::EmrConfig;
pub use emr::{
    transition_allowed, Emr, JobRunTransition, OpenError, Settings, TransitionError,
    ENDPOINT_UNSUPPORTED_DETAILS,
};
pub use records::{
    EndpointState, FailureReason, JobRunRecord, JobRunState, SchedulerCounts, Submitter,
    VirtualClusterRecord, VirtualClusterState,
};
pub use routes::{router, router_with};

#[cfg(test)]
mod tests;
