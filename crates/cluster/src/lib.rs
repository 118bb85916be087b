//! The embedded single-machine Kubernetes-compatible cluster.
//!
//! `registry` is the storage core (etcd + generic registry); everything else — the API
//! server, admission, scheduler, kubelet and controllers — works through it.
//! [`cluster::start`] brings the whole cluster up.

pub mod apiserver;
pub mod auth;
pub mod cluster;
pub mod controllers;
pub mod error;
pub mod kubelet;
pub mod logs;
pub mod pki;
pub mod registry;
pub mod resources;
pub mod scheduling;

pub use auth::tokens::TokenIssuer;
pub use cluster::{start, Cluster, ClusterConfig, PodMutator};
pub use error::ApiError;
pub use registry::{Event, EventType, Registry, Resource};
