//! apply: the effects, through the Kubernetes API only (kube-rs). Server-side apply with the
//! field manager `sparkyard` and stable names makes every call idempotent: applying the
//! same objects again changes nothing, so a restarted controller simply applies again.

use std::fmt::Debug;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::build::virtual_cluster::NamespaceRbac;
use crate::build::RunObjects;

/// The field manager of everything the controller applies.
pub const FIELD_MANAGER: &str = "sparkyard";

/// Whether the namespace exists (EMR never creates namespaces).
pub async fn namespace_exists(client: &Client, namespace: &str) -> kube::Result<bool> {
    Ok(Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await?
        .is_some())
}

async fn apply<K>(client: &Client, object: &K) -> kube::Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    // `force`: sparkyard owns these objects; a field someone else changed is taken back.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
}

/// The `emr-containers` Role and RoleBinding of a virtual cluster's namespace.
pub async fn apply_namespace_rbac(client: &Client, rbac: &NamespaceRbac) -> kube::Result<()> {
    apply(client, &rbac.role).await?;
    apply(client, &rbac.role_binding).await?;
    Ok(())
}

/// The role's service accounts and RBAC, the configuration, then the runner Job: the Job
/// comes last so that its pod never starts without what it uses.
pub async fn apply_run(client: &Client, objects: &RunObjects) -> kube::Result<()> {
    apply_namespace_rbac(client, &objects.namespace).await?;
    for sa in &objects.role.service_accounts {
        apply::<ServiceAccount>(client, sa).await?;
    }
    apply::<Role>(client, &objects.role.role).await?;
    apply::<RoleBinding>(client, &objects.role.role_binding).await?;
    apply_config_map(client, &objects.config_map).await?;
    apply::<Job>(client, &objects.runner).await?;
    Ok(())
}

/// The ConfigMap is immutable: once it exists, it is the run's (its content is a pure
/// function of the run record), so an existing one is left as it is.
async fn apply_config_map(client: &Client, config_map: &ConfigMap) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(
        client.clone(),
        config_map.metadata.namespace.as_deref().unwrap_or_default(),
    );
    if api.get_opt(&config_map.name_any()).await?.is_none() {
        apply(client, config_map).await?;
    }
    Ok(())
}

/// Deletes runner Jobs and pods by name; already gone is fine. Jobs go with background
/// propagation (their pods are deleted here too); executors, the driver service and the
/// driver's config maps are owned by the driver pod and go with it.
pub async fn delete_jobs_and_pods(
    client: &Client,
    namespace: &str,
    jobs: &[String],
    pods: &[String],
) -> kube::Result<()> {
    let job_api: Api<Job> = Api::namespaced(client.clone(), namespace);
    for name in jobs {
        ignore_not_found(job_api.delete(name, &DeleteParams::background()).await)?;
    }
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for name in pods {
        ignore_not_found(pod_api.delete(name, &DeleteParams::default()).await)?;
    }
    Ok(())
}

/// Deletes a finished run's roots (crate::collect): its spark-conf ConfigMap, driver pods
/// and runner Jobs (background propagation: the garbage collector takes what they own).
pub async fn delete_finished(
    client: &Client,
    collection: &crate::collect::Collection,
) -> kube::Result<()> {
    delete_config_map(client, &collection.namespace, &collection.job_run_id).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &collection.namespace);
    for name in &collection.pods {
        ignore_not_found(pods.delete(name, &DeleteParams::background()).await)?;
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), &collection.namespace);
    for name in &collection.jobs {
        ignore_not_found(jobs.delete(name, &DeleteParams::background()).await)?;
    }
    Ok(())
}

/// Deletes a run's spark-conf ConfigMap; already gone is fine.
pub async fn delete_config_map(
    client: &Client,
    namespace: &str,
    job_run_id: &str,
) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = crate::build::job_runner::config_map_name(job_run_id);
    ignore_not_found(api.delete(&name, &DeleteParams::default()).await)
}

fn ignore_not_found<T>(result: kube::Result<T>) -> kube::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether an error is the request's fault (it will fail the same way again), as opposed
/// to the cluster being unreachable or busy.
pub fn is_permanent(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 400 | 403 | 404 | 422),
        _ => false,
    }
}
