//! Namespace deletion: a namespace being deleted (`deletionTimestamp`, phase `Terminating`)
//! has everything in it deleted — pods gracefully — and is removed once it is empty and
//! its `kubernetes` finalizer is dropped. Also publishes `kube-root-ca.crt` into every
//! active namespace (the root-CA publisher), which pods' service-account volumes read.

use std::time::Duration;

use serde_json::{json, Value};

use super::deletion::{self, Propagation};
use crate::cluster::Cluster;
use crate::registry::Resource;
use crate::resources;

const NAMESPACES: Resource = Resource::new("", "namespaces");
const CONFIGMAPS: Resource = Resource::new("", "configmaps");
pub const ROOT_CA: &str = "kube-root-ca.crt";

fn terminating(ns: &Value) -> bool {
    !ns["metadata"]["deletionTimestamp"].is_null() || ns["status"]["phase"] == "Terminating"
}

/// One pass: returns whether any namespace is still terminating.
pub fn reconcile(cluster: &Cluster) -> bool {
    let (namespaces, _) = cluster.registry.list(NAMESPACES, None);
    let mut busy = false;
    for ns in namespaces {
        let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
        if !terminating(&ns) {
            publish_root_ca(cluster, &name);
            continue;
        }
        busy = true;
        if ns["status"]["phase"] != "Terminating" {
            let _ = cluster.registry.modify(NAMESPACES, "", &name, |n| {
                n["status"]["phase"] = json!("Terminating");
                Ok(())
            });
        }
        let mut remaining = 0;
        for info in resources::RESOURCES
            .iter()
            .filter(|r| r.namespaced && !r.create_only)
        {
            let (items, _) = cluster.registry.list(info.resource(), Some(&name));
            for item in items {
                remaining += 1;
                if item["metadata"]["deletionTimestamp"].is_null() {
                    let object_name = item["metadata"]["name"].as_str().unwrap_or("");
                    let _ = deletion::delete(
                        cluster,
                        info.resource(),
                        &name,
                        object_name,
                        Propagation::Background,
                        None,
                    );
                }
            }
        }
        if remaining == 0 {
            // Empty: drop the `kubernetes` finalizer (spec.finalizers) and remove it.
            let _ = cluster.registry.modify(NAMESPACES, "", &name, |n| {
                if let Some(list) = n["spec"]["finalizers"].as_array_mut() {
                    list.retain(|f| f != "kubernetes");
                }
                Ok(())
            });
            let _ = deletion::remove_if_done(cluster, NAMESPACES, "", &name);
        }
    }
    busy
}

fn publish_root_ca(cluster: &Cluster, namespace: &str) {
    if cluster.ca_pem.is_empty() {
        return;
    }
    match cluster.registry.get(CONFIGMAPS, namespace, ROOT_CA) {
        Some(cm) if cm["data"]["ca.crt"] == cluster.ca_pem.as_str() => {}
        Some(_) => {
            let _ = cluster
                .registry
                .modify(CONFIGMAPS, namespace, ROOT_CA, |cm| {
                    cm["data"] = json!({"ca.crt": cluster.ca_pem});
                    Ok(())
                });
        }
        None => {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                            "data": {"ca.crt": cluster.ca_pem}});
            let _ = cluster.registry.create(CONFIGMAPS, namespace, cm);
        }
    }
}

pub async fn run(cluster: Cluster) {
    let mut last = 0;
    loop {
        let revision = cluster.registry.revision();
        if revision != last {
            last = revision;
            if reconcile(&cluster) {
                // Keep going while something terminates (pods take their grace period).
                last = 0;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
