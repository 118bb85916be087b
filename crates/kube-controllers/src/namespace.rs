//! Namespace deletion: a namespace being deleted (`deletionTimestamp`, phase `Terminating`)
//! has everything in it deleted — pods gracefully — and is removed once it is empty and
//! its `kubernetes` finalizer is dropped. Also publishes `kube-root-ca.crt` into every
//! active namespace (the root-CA publisher), which pods' service-account volumes read.

use std::time::Duration;

use serde_json::{json, Value};

use sparkyard_kube_apiserver::client::{Propagation, Subresource};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::resources;
use sparkyard_kube_apiserver::Client;

const NAMESPACES: Resource = Resource::new("", "namespaces");
const CONFIGMAPS: Resource = Resource::new("", "configmaps");
pub const ROOT_CA: &str = "kube-root-ca.crt";

fn terminating(ns: &Value) -> bool {
    !ns["metadata"]["deletionTimestamp"].is_null() || ns["status"]["phase"] == "Terminating"
}

/// One pass: returns whether any namespace is still terminating.
pub fn reconcile(client: &Client, ca_pem: &str) -> bool {
    let (namespaces, _) = client.list(NAMESPACES, None);
    let mut busy = false;
    for ns in namespaces {
        let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
        if !terminating(&ns) {
            publish_root_ca(client, ca_pem, &name);
            continue;
        }
        busy = true;
        if ns["status"]["phase"] != "Terminating" {
            let _ = client.update_status(NAMESPACES, "", &name, |n| {
                n["status"]["phase"] = json!("Terminating");
                Ok(())
            });
        }
        let mut remaining = 0;
        // `all()`: custom resources too (their objects die with the namespace).
        for info in resources::all()
            .into_iter()
            .filter(|r| r.namespaced && !r.create_only)
        {
            let (items, _) = client.list(info.resource(), Some(&name));
            for item in items {
                remaining += 1;
                if item["metadata"]["deletionTimestamp"].is_null() {
                    let object_name = item["metadata"]["name"].as_str().unwrap_or("");
                    let _ = client.delete(
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
            // The finalize subresource; the update removes the namespace it completes.
            let _ = client.modify(NAMESPACES, "", &name, Subresource::Finalize, |n| {
                if let Some(list) = n["spec"]["finalizers"].as_array_mut() {
                    list.retain(|f| f != "kubernetes");
                }
                Ok(())
            });
        }
    }
    busy
}

fn publish_root_ca(client: &Client, ca_pem: &str, namespace: &str) {
    if ca_pem.is_empty() {
        return;
    }
    match client.get(CONFIGMAPS, namespace, ROOT_CA) {
        Some(cm) if cm["data"]["ca.crt"] == ca_pem => {}
        Some(_) => {
            let _ = client.modify(CONFIGMAPS, namespace, ROOT_CA, Subresource::Main, |cm| {
                cm["data"] = json!({"ca.crt": ca_pem});
                Ok(())
            });
        }
        None => {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                            "data": {"ca.crt": ca_pem}});
            let _ = client.create(CONFIGMAPS, namespace, cm);
        }
    }
}

/// Runs the namespace controller; `ca_pem` is what `kube-root-ca.crt` publishes.
pub async fn run(client: Client, ca_pem: String) {
    let mut last = 0;
    loop {
        let revision = client.revision();
        if revision != last {
            last = revision;
            if reconcile(&client, &ca_pem) {
                // Keep going while something terminates (pods take their grace period).
                last = 0;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
