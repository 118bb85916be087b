//! Pods of a node that no longer exists: kube-controller-manager's PodGC (`gcOrphaned`),
//! which the embedded cluster's controllers do not run. Once the Node object is gone
//! (a finalizer may hold it for a while), each pod still bound to it is marked
//! `DisruptionTarget` (reason `DeletionByPodGC`), failed if it had not finished, and
//! force-deleted.

use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_kube_apiserver::{ApiError, Client, DeleteOptions};

use crate::{NODES, PODS};

/// Collects the pods of `node` as soon as its Node object is gone (at once if it is).
pub fn collect_when_node_gone(client: Client, node: String) {
    if client.get(NODES, "", &node).is_none() {
        collect(&client, &node);
        return;
    }
    tokio::spawn(async move {
        loop {
            let revision = client.revision();
            if client.get(NODES, "", &node).is_none() {
                collect(&client, &node);
                return;
            }
            let Ok(stream) = client.watch(NODES, Some(revision)) else {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            };
            let mut stream = Box::pin(stream);
            while let Some(event) = stream.next().await {
                if event.object["metadata"]["name"] == node.as_str()
                    && client.get(NODES, "", &node).is_none()
                {
                    collect(&client, &node);
                    return;
                }
            }
        }
    });
}

/// Deletes every pod bound to `node`, as PodGC does for a node that does not exist.
pub fn collect(client: &Client, node: &str) {
    let (pods, _) = client.list(PODS, None);
    for pod in pods.iter().filter(|p| p["spec"]["nodeName"] == node) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let _ = client.update_status(PODS, ns, name, |p| {
            if p["metadata"]["uid"] != uid.as_str() {
                return Err(ApiError::conflict("", "pods", name));
            }
            mark_collected(p);
            Ok(())
        });
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid.clone()),
            ..Default::default()
        };
        match client.delete_with(PODS, ns, name, &opts) {
            Ok(_) => {
                tracing::info!(pod = %format!("{ns}/{name}"), node, "PodGC: node no longer exists; pod deleted")
            }
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e.message, "PodGC: cannot delete pod")
            }
        }
    }
}

/// The status PodGC writes before deleting an orphaned pod.
fn mark_collected(pod: &mut Value) {
    let now = sparkyard_kube_apiserver::registry::now_rfc3339();
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase != "Succeeded" && phase != "Failed" {
        pod["status"]["phase"] = json!("Failed");
    }
    let condition = json!({"type": "DisruptionTarget", "status": "True",
        "lastProbeTime": null, "lastTransitionTime": now,
        "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists"});
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let list = pod["status"]["conditions"].as_array_mut().unwrap();
    list.retain(|c| c["type"] != "DisruptionTarget");
    list.push(condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_orphaned_running_pod_fails_with_deletion_by_pod_gc() {
        let mut pod = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        mark_collected(&mut pod);
        assert_eq!(pod["status"]["phase"], "Failed");
        assert_eq!(pod["status"]["conditions"][1]["reason"], "DeletionByPodGC");
        let mut done = json!({"status": {"phase": "Succeeded"}});
        mark_collected(&mut done);
        assert_eq!(
            done["status"]["phase"], "Succeeded",
            "a finished pod keeps its phase"
        );
    }
}
