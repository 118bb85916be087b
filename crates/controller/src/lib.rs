//! The job-run controller: turns an emr-containers job run into Kubernetes objects, as EMR on
//! EKS does, and reads the run's state back from them.
//!
//! Reconcile is a pipeline — dereference → validate → build → apply → update status — and
//! everything up to and including *build* is pure: this crate's builders take plain data
//! and return the objects to apply, so they are tested without a cluster.

pub mod build;
pub mod classifications;
pub mod names;
pub mod status;
pub mod submit;
