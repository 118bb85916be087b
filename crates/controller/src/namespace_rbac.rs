//! Each virtual cluster's namespace gets the `emr-containers` Role and RoleBinding as soon
//! as both exist — what `eksctl create iamidentitymapping --service-name emr-containers`
//! does in the seed's step 5, before any job — instead of at the first job run.
//!
//! EMR on EKS lets `CreateVirtualCluster` name a namespace that does not exist yet (its
//! jobs fail until it does), so the RBAC follows whichever comes second: the task wakes
//! when a virtual cluster is created and when namespaces change, and applies (server-side,
//! idempotent) to every RUNNING virtual cluster's namespace it has not given them yet. A
//! namespace deleted and created again (new uid) gets them again.

use std::collections::HashSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use sparkyard_emr::Emr;

use crate::apply::apply_namespace_rbac;
use crate::build::virtual_cluster;

/// Starts the task on the current runtime.
pub fn spawn(emr: Emr, client: Client) {
    tokio::spawn(run(emr, client));
}

async fn run(emr: Emr, client: Client) {
    let mut created = emr.virtual_clusters_created();
    let namespaces = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    let mut namespaces = Box::pin(namespaces);
    // (namespace, uid) pairs already given the RBAC by this process.
    let mut done: HashSet<(String, String)> = HashSet::new();
    loop {
        pass(&emr, &client, &mut done).await;
        tokio::select! {
            changed = created.changed() => if changed.is_err() { return },
            event = namespaces.next() => if event.is_none() { return },
        }
    }
}

async fn pass(emr: &Emr, client: &Client, done: &mut HashSet<(String, String)>) {
    let api = Api::<Namespace>::all(client.clone());
    let mut seen = HashSet::new();
    for vc in emr.running_virtual_clusters() {
        let ns = vc.namespace;
        if !seen.insert(ns.clone()) {
            continue;
        }
        let uid = match api.get_opt(&ns).await {
            Ok(Some(n)) if n.metadata.deletion_timestamp.is_none() => {
                n.metadata.uid.unwrap_or_default()
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(namespace = %ns, error = %e, "cannot read namespace; will retry");
                continue;
            }
        };
        if done.contains(&(ns.clone(), uid.clone())) {
            continue;
        }
        match apply_namespace_rbac(client, &virtual_cluster::build(&ns)).await {
            Ok(()) => {
                tracing::info!(namespace = %ns, virtual_cluster = %vc.id, "gave the namespace the emr-containers Role and RoleBinding");
                done.insert((ns, uid));
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, error = %e, "cannot apply the emr-containers RBAC; will retry")
            }
        }
    }
}
