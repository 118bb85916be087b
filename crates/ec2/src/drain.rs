//! Draining a node before its Auto Scaling group terminates the instance, as EKS managed
//! node groups do on scale-in: cordon, evict every pod through the Eviction API (so
//! PodDisruptionBudgets hold; a 429 is retried), then terminate.
//!
//! Not evicted: mirror pods and DaemonSet pods (they go with the node), finished pods,
//! and pods annotated `karpenter.sh/do-not-disrupt: "true"` (or the older
//! `karpenter.sh/do-not-evict`), which are waited for until they finish.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_kube_apiserver::Subresource;

use crate::{Inner, NODES, PODS};

/// How often evictions refused with 429 (a PodDisruptionBudget) are retried.
const EVICTION_RETRY: Duration = Duration::from_secs(5);

pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
pub const DO_NOT_EVICT: &str = "karpenter.sh/do-not-evict";

/// What the drain does with a pod on the node.
#[derive(Debug, PartialEq, Eq)]
pub enum PodFate {
    /// Left alone: goes with the node (mirror, DaemonSet, finished).
    Ignore,
    /// Waited for until it finishes on its own (do-not-disrupt), or until its deletion
    /// completes.
    Wait,
    Evict,
}

pub fn fate(pod: &Value) -> PodFate {
    let annotations = &pod["metadata"]["annotations"];
    if annotations
        .get(sparkyard_kubelet::ANNOTATION_MIRROR)
        .is_some()
    {
        return PodFate::Ignore;
    }
    let owned_by_daemonset = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "DaemonSet"));
    if owned_by_daemonset {
        return PodFate::Ignore;
    }
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return PodFate::Ignore;
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return PodFate::Wait;
    }
    if annotations[DO_NOT_DISRUPT] == "true" || annotations[DO_NOT_EVICT] == "true" {
        return PodFate::Wait;
    }
    PodFate::Evict
}

/// Cordons the instance's node, evicts its pods, and terminates it once none is left.
pub async fn drain_and_terminate(inner: Arc<Inner>, id: String) {
    let Some(node) = inner.instance(&id).map(|i| i.node_name) else {
        return;
    };
    let cordoned = inner
        .client
        .modify(NODES, "", &node, Subresource::Main, |n| {
            n["spec"]["unschedulable"] = json!(true);
            Ok(())
        });
    if let Err(e) = cordoned {
        // A node that never registered has no pods to drain.
        if e.code != 404 {
            tracing::warn!(node = %node, error = %e.message, "cannot cordon node");
        }
    }
    let mut waiting_for: HashSet<String> = HashSet::new();
    loop {
        let revision = inner.client.revision();
        let (pods, _) = inner.client.list(PODS, None);
        let mut left = 0;
        for pod in pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node.as_str())
        {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            let uid = pod["metadata"]["uid"].as_str();
            match fate(pod) {
                PodFate::Ignore => continue,
                PodFate::Wait => {
                    if pod["metadata"]["deletionTimestamp"].is_null()
                        && waiting_for.insert(format!("{ns}/{name}"))
                    {
                        tracing::info!(node = %node, pod = %format!("{ns}/{name}"),
                            "drain: pod is annotated do-not-disrupt; waiting for it to finish");
                    }
                }
                PodFate::Evict => match inner.client.evict(ns, name, uid) {
                    Ok(_) => {
                        tracing::info!(node = %node, pod = %format!("{ns}/{name}"), "drain: evicted")
                    }
                    Err(e) if e.code == 429 => {
                        tracing::info!(node = %node, pod = %format!("{ns}/{name}"), reason = %e.message,
                            "drain: eviction refused for now (disruption budget); will retry")
                    }
                    Err(e) if e.code == 404 || e.code == 409 => {}
                    Err(e) => {
                        tracing::warn!(node = %node, pod = %format!("{ns}/{name}"), error = %e.message, "drain: eviction failed")
                    }
                },
            }
            left += 1;
        }
        if left == 0 {
            break;
        }
        wait_for_pod_change(&inner, &node, revision).await;
        // Terminated meanwhile (a spot interruption, a restart's resume): nothing to do.
        if inner.instance(&id).is_none_or(|i| !i.state.is_live()) {
            return;
        }
    }
    if let Err(e) = inner.terminate_instance(&id) {
        tracing::warn!(instance = %id, error = %e, "cannot terminate drained instance");
    }
}

/// Until a pod on `node` changes after `revision`, or the eviction retry period passes.
async fn wait_for_pod_change(inner: &Inner, node: &str, revision: u64) {
    let Ok(stream) = inner.client.watch(PODS, Some(revision)) else {
        tokio::time::sleep(Duration::from_millis(200)).await;
        return;
    };
    let mut stream = Box::pin(stream);
    let change = async {
        while let Some(event) = stream.next().await {
            if event.object["spec"]["nodeName"] == node {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(EVICTION_RETRY, change).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_skips_what_goes_with_the_node_and_waits_for_protected_pods() {
        let running = |meta: Value| json!({"metadata": meta, "status": {"phase": "Running"}});
        assert_eq!(fate(&running(json!({"name": "a"}))), PodFate::Evict);
        assert_eq!(
            fate(&running(
                json!({"annotations": {"kubernetes.io/config.mirror": "x"}})
            )),
            PodFate::Ignore
        );
        assert_eq!(
            fate(&running(
                json!({"ownerReferences": [{"kind": "DaemonSet", "name": "d"}]})
            )),
            PodFate::Ignore
        );
        assert_eq!(
            fate(&running(
                json!({"annotations": {"karpenter.sh/do-not-disrupt": "true"}})
            )),
            PodFate::Wait
        );
        assert_eq!(
            fate(&running(
                json!({"annotations": {"karpenter.sh/do-not-evict": "true"}})
            )),
            PodFate::Wait
        );
        assert_eq!(
            fate(&running(
                json!({"annotations": {"karpenter.sh/do-not-disrupt": "false"}})
            )),
            PodFate::Evict
        );
        assert_eq!(
            fate(&json!({"metadata": {}, "status": {"phase": "Succeeded"}})),
            PodFate::Ignore
        );
    }
}
