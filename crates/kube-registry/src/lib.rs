//! The object store of the embedded cluster: what etcd plus the apiserver's generic
//! registry are in Kubernetes.
//!
//! **Owns:** the resource table ([`resources`]: every kind served, with the names discovery
//! publishes), the `Status` error ([`ApiError`]), and the [`Registry`]: objects as JSON keyed
//! by resource/namespace/name, `uid`/`resourceVersion`/`generation`, optimistic concurrency,
//! the ordered event log watches resume from, and the SQLite copy that makes an
//! acknowledged write survive `kill -9`.
//!
//! **Must not touch:** HTTP, admission, validation, graceful deletion, garbage collection —
//! and must not be written by anyone but the API server (`sparkyard-kube-apiserver`). Every
//! other component reads and writes through the API server's `Client` there (whose reads
//! come from here, like the apiserver's watch cache).
//!
//! **Entry points:** [`Registry::new`] (in memory), [`Registry::open`] (durable),
//! [`resources::by_resource`], [`resources::all`] (built-in [`resources::RESOURCES`] and
//! the custom resources of served CRDs).

pub mod error;
pub mod registry;
pub mod resources;

pub use error::ApiError;
pub use registry::{now_rfc3339, object_name, Event, EventType, Registry, Resource};
pub use resources::ResourceInfo;
