//! The embedded single-machine Kubernetes-compatible cluster.
//!
//! `registry` is the storage core (etcd + generic registry); everything else — the API
//! server, admission, scheduler, kubelet and controllers — works through it.

pub mod cluster;
pub mod controllers;
pub mod error;
pub mod kubelet;
pub mod registry;
pub mod scheduling;

pub use cluster::{Cluster, ClusterConfig};
pub use error::ApiError;
pub use registry::{Event, EventType, Registry, Resource};
