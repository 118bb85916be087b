//! The embedded single-machine Kubernetes-compatible cluster, wired from its parts.
//!
//! **Owns:** the `[cluster]` configuration, the data directory layout, binding the API
//! addresses, the kubeconfig, the built-in objects (created through the API server like
//! any other), and starting each part in order: registry → API server → scheduler →
//! controllers → kube-proxy → kubelet.
//!
//! **Must not touch:** any part's internals. The parts are crates of their own, each
//! stating its boundary in its `lib.rs`:
//!
//! | crate | part |
//! |---|---|
//! | `sparkyard-kube-registry` | objects, revisions, watch history, durability (etcd's role) |
//! | `sparkyard-kube-apiserver` | HTTP, admission, auth/RBAC, discovery, OpenAPI, tables, patches — and the [`Client`] every in-process component uses |
//! | `sparkyard-scheduling` | pure scheduling core (no I/O, no async) |
//! | `sparkyard-kube-scheduler` | the live scheduler loop |
//! | `sparkyard-kube-controllers` | Job, workloads, garbage collector, namespace lifecycle, EndpointSlices, PersistentVolume binding and the local-path provisioner |
//! | `sparkyard-kube-proxy` | Services' cluster IPs and node ports, proxied to ready endpoints |
//! | `sparkyard-kubelet` | pods as sandboxed processes, shims, images, volumes, status |
//! | `sparkyard-container-logs` | the CRI log files shared by kubelet, `pods/log` and the log shipper |
//!
//! See `docs/architecture.md` for the picture.
//!
//! **Entry point:** [`start`].

pub mod cluster;

pub use cluster::{start, Cluster, ClusterConfig};
pub use registry::{Event, EventType, Resource};
pub use sparkyard_kube_apiserver::{
    auth, error, registry, resources, ApiError, Client, PodMutator, Propagation, Subresource,
    TokenIssuer, ADMIN_USER,
};
pub use sparkyard_kube_apiserver::{ApiServer, DeleteOptions};
pub use sparkyard_kubelet as kubelet;
pub use sparkyard_kubelet::logs;
pub use sparkyard_kubelet::KubeletHandle;
pub use sparkyard_scheduling as scheduling;
