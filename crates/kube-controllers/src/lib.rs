//! The embedded cluster's built-in controllers, as kube-controller-manager runs them: Job,
//! the `apps/v1` workloads (ReplicaSet, Deployment, StatefulSet, DaemonSet), garbage
//! collection (owner references, propagation policies), namespace lifecycle with the
//! root-CA publisher, and the EndpointSlice and endpoints controllers (a Service's ready
//! pods, which kube-proxy routes to), storage (the PersistentVolume binder, pvc/pv
//! protection and the `rancher.io/local-path` provisioner, [`storage::start`]), the
//! resource quota controller (`status.hard`/`status.used`, [`resourcequota`]); and
//! kube-apiserver's Event expiry (`--event-ttl`).
//!
//! **Owns:** each controller's reconcile (pure planning where it can be — `job::decide`,
//! `gc::plan` — and the loop that applies it).
//!
//! The one part that touches the host: the local-path provisioner removes the directory of
//! a volume it made when the volume is deleted (its root is given at start).
//!
//! **Must not touch:** the registry or the API server's internals. Controllers read, watch
//! and write through the API server's `Client` only, with exactly the semantics of the
//! HTTP verbs (admission on create, `status` updates, `DELETE` with propagation), so they
//! could drive a real API server the same way. The controllers this wave adds
//! (Karpenter's, workload controllers) belong here or in a crate beside this one, on the
//! same rule.
//!
//! **Entry points:** [`start`]; [`storage::start`] (started by the cluster with the
//! local-path root).

pub mod apps;
pub mod endpointslice;
pub mod event_ttl;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod resourcequota;
pub mod storage;

use sparkyard_kube_apiserver::Client;

/// Starts the Job, workload, garbage-collector, namespace and Event-expiry controllers on the current
/// runtime; `ca_pem` is the cluster CA the root-CA publisher puts in every namespace,
/// `event_ttl` how long an Event lives after its last write.
pub fn start(client: &Client, ca_pem: &str, event_ttl: std::time::Duration) {
    tokio::spawn(job::run(client.clone()));
    apps::start(client);
    tokio::spawn(endpointslice::run(client.clone()));
    tokio::spawn(event_ttl::run(client.clone(), event_ttl));
    tokio::spawn(gc::run(client.clone()));
    tokio::spawn(namespace::run(client.clone(), ca_pem.to_string()));
    tokio::spawn(resourcequota::run(client.clone()));
}
