//! The job-run controller: turns an emr-containers job run into Kubernetes objects, as EMR on
//! EKS does, and reads the run's state back from them.
//!
//! Reconcile is a pipeline, one module per stage — [`dereference`] → [`validate`] →
//! [`build`] → [`apply`] → update status ([`update_status`], [`status`]) — driven by
//! [`controller`]. Everything up to and including *build* is pure: the builders take plain
//! data and return the objects to apply, so they are tested without a cluster. The
//! controller talks to the cluster only through the Kubernetes API ([`client`]), and never
//! knows whether it is the embedded cluster or a real one. [`metrics`] keeps the
//! `sparkyard_job_run_*` Prometheus series (counted once per run across restarts).
//! [`collect`] picks finished runs' objects to delete after `ttl-seconds-after-finished`.
//! [`cost`] keeps every pod a run had and writes the run's cost record when it ends.

pub mod apply;
pub mod build;
pub mod classifications;
pub mod client;
pub mod collect;
pub mod config;
pub mod controller;
pub mod cost;
pub mod dereference;
pub mod metrics;
pub mod names;
pub mod namespace_rbac;
pub mod s3a;
pub mod status;
pub mod submit;
pub mod update_status;
pub mod validate;

pub use config::ControllerConfig;
pub use controller::{spawn, Settings};
