//! apply: the effects, through the Kubernetes API only (kube-rs). Server-side apply with the
//! field manager `sparkyard` and stable names makes every call idempotent: applying the
//! same objects again changes nothing, so a restarted controller simply applies again.

use std::fmt::Debug;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::build::virtual_cluster::NamespaceRbac;
use crate::build::RunObjects;

/// The field manager of everything the controller applies.
pub const FIELD_MANAGER: &str = "sparkyard";

/// The namespace's uid, `None` when it does not exist (EMR never creates namespaces).
pub async fn namespace_uid(client: &Client, namespace: &str) -> kube::Result<Option<String>> {
    Ok(Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await?
        .map(|ns| ns.metadata.uid.unwrap_or_default()))
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

/// What this process applied lately of the objects runs share — the namespace's
/// `emr-containers` RBAC, the execution role's service accounts and RBAC — with a hash of
/// the content. Applying them again for every run is a server-side apply that changes
/// nothing; at a thousand runs a minute those no-ops were most of the controller's API
/// calls. An object is applied again when its content changes, when its namespace is a new
/// one (another uid: deleted and created again), or after [`REAPPLY_AFTER`], which also
/// restores one deleted behind the controller's back.
#[derive(Default)]
pub struct RecentlyApplied {
    applied: std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant)>>,
}

/// How long a shared object counts as applied.
pub const REAPPLY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl RecentlyApplied {
    fn key_and_hash<K: Resource<DynamicType = ()> + Serialize>(
        object: &K,
        namespace_uid: &str,
    ) -> (String, u64) {
        use std::hash::{Hash, Hasher};
        let key = format!(
            "{}/{}/{}/{namespace_uid}",
            K::kind(&()),
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(object)
            .unwrap_or_default()
            .hash(&mut hasher);
        (key, hasher.finish())
    }

    /// Applies `object` unless the same content was applied less than
    /// [`REAPPLY_AFTER`] ago.
    async fn apply<K>(&self, client: &Client, object: &K, namespace_uid: &str) -> kube::Result<()>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let (key, hash) = Self::key_and_hash(object, namespace_uid);
        let fresh = self
            .applied
            .lock()
            .unwrap()
            .get(&key)
            .is_some_and(|(h, at)| *h == hash && at.elapsed() < REAPPLY_AFTER);
        if !fresh {
            apply(client, object).await?;
            self.applied
                .lock()
                .unwrap()
                .insert(key, (hash, std::time::Instant::now()));
        }
        Ok(())
    }
}

/// The role's service accounts and RBAC, the configuration, then the runner Job: the Job
/// comes last so that its pod never starts without what it uses. The shared objects go
/// through `recent` (`namespace_uid`: the uid of the namespace they go to).
pub async fn apply_run(
    client: &Client,
    objects: &RunObjects,
    recent: &RecentlyApplied,
    namespace_uid: &str,
) -> kube::Result<()> {
    let uid = namespace_uid;
    recent.apply(client, &objects.namespace.role, uid).await?;
    recent
        .apply(client, &objects.namespace.role_binding, uid)
        .await?;
    for sa in &objects.role.service_accounts {
        recent.apply::<ServiceAccount>(client, sa, uid).await?;
    }
    recent
        .apply::<Role>(client, &objects.role.role, uid)
        .await?;
    recent
        .apply::<RoleBinding>(client, &objects.role.role_binding, uid)
        .await?;
    apply_config_map(client, &objects.config_map).await?;
    apply::<Job>(client, &objects.runner).await?;
    Ok(())
}

/// The ConfigMap is immutable: once it exists, it is the run's (its content is a pure
/// function of the run record), so an existing one is left as it is — created, and
/// AlreadyExists taken as done (one call, where a read then an apply took two).
async fn apply_config_map(client: &Client, config_map: &ConfigMap) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(
        client.clone(),
        config_map.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, config_map).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
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

/// Deletes a finished run's roots (crate::collect): its spark-conf ConfigMap, runner Jobs
/// and driver pods (the garbage collector takes what they own).
pub async fn delete_finished(
    client: &Client,
    collection: &crate::collect::Collection,
) -> kube::Result<()> {
    delete_config_map(client, &collection.namespace, &collection.job_run_id).await?;
    delete_jobs_and_pods(
        client,
        &collection.namespace,
        &collection.jobs,
        &collection.pods,
    )
    .await
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
