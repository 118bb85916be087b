//! Deleting from inside the cluster with exactly the API server's DELETE semantics
//! (`apiserver::deletion`): graceful pods, finalizers, propagation policies. Controllers
//! and the kubelet call these instead of removing objects from the registry themselves.

use serde_json::Value;

use crate::apiserver::deletion::{delete_internal, remove_if_finalized, DeleteOptions};
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::registry::Resource;
use crate::resources;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

fn info(resource: Resource) -> Result<&'static resources::ResourceInfo, ApiError> {
    resources::by_resource(resource)
        .ok_or_else(|| ApiError::internal(format!("unknown resource {}", resource.plural)))
}

/// DELETE of one object (`grace` overrides a pod's `terminationGracePeriodSeconds`).
pub fn delete(
    cluster: &Cluster,
    resource: Resource,
    namespace: &str,
    name: &str,
    propagation: Propagation,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    let policy = match propagation {
        Propagation::Background => "Background",
        Propagation::Foreground => "Foreground",
        Propagation::Orphan => "Orphan",
    };
    let opts = DeleteOptions {
        grace_period_seconds: grace,
        propagation_policy: Some(policy.into()),
        ..Default::default()
    };
    delete_internal(cluster, info(resource)?, namespace, name, &opts)
}

/// The kubelet's last word on a pod it stopped: DELETE with grace 0 for this uid, which
/// removes it unless finalizers still hold it (then whoever drops the last one removes it).
pub fn finish_pod(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<Value, ApiError> {
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        precondition_uid: Some(uid.into()),
        ..Default::default()
    };
    delete_internal(cluster, &resources::PODS, namespace, name, &opts)
}

/// Drops one finalizer, then removes the object if that completed its deletion.
pub fn remove_finalizer(
    cluster: &Cluster,
    resource: Resource,
    namespace: &str,
    name: &str,
    finalizer: &str,
) -> Result<(), ApiError> {
    let info = info(resource)?;
    let updated = cluster
        .registry
        .modify(resource, namespace, name, |object| {
            if let Some(list) = object["metadata"]["finalizers"].as_array_mut() {
                list.retain(|f| f != finalizer);
                if list.is_empty() {
                    object["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("finalizers");
                }
            }
            Ok(())
        })?;
    remove_if_finalized(cluster, info, namespace, &updated)?;
    Ok(())
}

/// Removes an object whose deletion is complete (after an in-process edit).
pub fn remove_if_done(
    cluster: &Cluster,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let info = info(resource)?;
    if let Some(object) = cluster.registry.get(resource, namespace, name) {
        remove_if_finalized(cluster, info, namespace, &object)?;
    }
    Ok(())
}
