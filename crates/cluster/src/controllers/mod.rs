//! Controllers: the scheduler, Job, garbage collection and namespace deletion. They
//! work on the registry in process, with the API server's semantics for deletion
//! (`deletion`) and events (`events`).

pub mod deletion;
pub mod events;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod scheduler;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::ApiError;

pub fn start(cluster: &Cluster) -> anyhow::Result<()> {
    scheduler::start(cluster)?;
    tokio::spawn(job::run(cluster.clone()));
    tokio::spawn(gc::run(cluster.clone()));
    tokio::spawn(namespace::run(cluster.clone()));
    Ok(())
}

/// Creates a pod from inside the cluster through the API server's create path (identity,
/// admission: defaults, priority, service account).
pub fn create_pod(cluster: &Cluster, namespace: &str, pod: Value) -> Result<Value, ApiError> {
    use crate::apiserver::handlers::{create_internal, CreateOptions};
    create_internal(
        cluster,
        &crate::resources::PODS,
        namespace,
        pod,
        &CreateOptions::default(),
    )
}
