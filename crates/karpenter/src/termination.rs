//! The termination flow a deleted NodeClaim's `karpenter.sh/termination` finalizer runs:
//! taint the node `karpenter.sh/disrupted:NoSchedule`, evict its pods through the Eviction
//! API (so PodDisruptionBudgets hold) — non-critical pods first, then critical ones; pods
//! that tolerate the taint, mirror pods and finished pods are left; a pod annotated
//! `karpenter.sh/do-not-disrupt` (v1) or `karpenter.sh/do-not-evict` (v1alpha5) is waited
//! for, not evicted — then terminate the instance, see the Node go, and drop the finalizer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::Subresource;

use crate::changes::Changes;
use crate::objects::pool_name;
use crate::{Context, NODECLAIMS, NODES, PODS};

const CONTROLLER: &str = "node.termination";

/// Whether a pod still has to leave the node before the instance can go.
pub fn must_leave(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null() {
        return false;
    }
    let tolerates = pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            (t["key"] == crate::DISRUPTED_TAINT
                || (t["key"].is_null() && t["operator"] == "Exists"))
                && (t["effect"].is_null() || t["effect"] == "NoSchedule" || t["effect"] == "")
        });
    !tolerates
}

/// Whether the pod asked not to be disrupted.
pub fn do_not_disrupt(pod: &Value) -> bool {
    let a = &pod["metadata"]["annotations"];
    a[crate::DO_NOT_DISRUPT] == "true" || a[crate::DO_NOT_EVICT] == "true"
}

fn is_critical(pod: &Value) -> bool {
    matches!(
        pod["spec"]["priorityClassName"].as_str(),
        Some("system-cluster-critical" | "system-node-critical")
    )
}

pub fn pods_on(ctx: &Context, node: &str) -> Vec<Arc<Value>> {
    let (pods, _) = ctx.client.list(PODS, None);
    pods.into_iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .collect()
}

pub async fn terminate(ctx: &Context, claim_name: &str) {
    let Some(claim) = ctx.client.get(NODECLAIMS, "", claim_name) else {
        return;
    };
    let node = claim["status"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let provider_id = claim["status"]["providerID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !node.is_empty() && ctx.client.get(NODES, "", &node).is_some() {
        taint(ctx, &node);
        drain(ctx, &node, &disruption_reason(&claim)).await;
    }
    if let Some(instance) = crate::instance_for(ctx, &provider_id) {
        let _ = ctx.ec2.terminate_instance(&instance.instance_id);
        // The instance's end deletes its Node (the cloud's node-lifecycle job).
        let mut changes = Changes::new(&ctx.client, &[NODES]);
        while !node.is_empty() && ctx.client.get(NODES, "", &node).is_some() {
            changes.wait(Duration::from_secs(1)).await;
        }
    }
    let pool = pool_name(&claim);
    if !node.is_empty() {
        ctx.metrics
            .nodes_terminated
            .get_or_create(&crate::metrics::pool(&pool))
            .inc();
        ctx.log
            .info(CONTROLLER, "deleted node", json!({"Node": {"name": node}}));
    }
    if ctx
        .client
        .remove_finalizer(NODECLAIMS, "", claim_name, crate::TERMINATION_FINALIZER)
        .is_ok()
    {
        let reason = claim["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "DisruptionReason")
            .and_then(|c| c["reason"].as_str())
            .unwrap_or("")
            .to_string();
        ctx.metrics
            .nodeclaims_terminated
            .get_or_create(&crate::metrics::reason(&pool, &reason.to_lowercase()))
            .inc();
        ctx.log.info(
            "nodeclaim.termination",
            "deleted nodeclaim",
            json!({"NodeClaim": {"name": claim_name},
            "Node": {"name": node}, "provider-id": provider_id}),
        );
    }
}

/// Why the claim is going (its `DisruptionReason` condition), for events: `Empty`,
/// `Underutilized`, `Drifted`, `Expired`, `Interrupted`; `Deleted` when a user deleted it.
fn disruption_reason(claim: &Value) -> String {
    claim["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "DisruptionReason")
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("Deleted")
        .to_string()
}

/// Puts `karpenter.sh/disrupted:NoSchedule` on the node (once).
pub fn taint(ctx: &Context, node: &str) {
    let mut added = false;
    let _ = ctx.client.modify(NODES, "", node, Subresource::Main, |n| {
        let mut taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        if !taints.iter().any(|t| t["key"] == crate::DISRUPTED_TAINT) {
            taints.push(json!({"key": crate::DISRUPTED_TAINT, "effect": "NoSchedule"}));
            n["spec"]["taints"] = json!(taints);
            added = true;
        }
        Ok(())
    });
    if added {
        ctx.log.info(
            CONTROLLER,
            "tainted node",
            json!({"Node": {"name": node},
            "taint.Key": crate::DISRUPTED_TAINT, "taint.Value": "", "taint.Effect": "NoSchedule"}),
        );
    }
}

/// Removes the disruption taint again (a disruption command that was called off).
pub fn untaint(ctx: &Context, node: &str) {
    let _ = ctx.client.modify(NODES, "", node, Subresource::Main, |n| {
        if let Some(taints) = n["spec"]["taints"].as_array_mut() {
            taints.retain(|t| t["key"] != crate::DISRUPTED_TAINT);
        }
        Ok(())
    });
}

/// Evicts until no pod that must leave is left; waits for do-not-disrupt pods to finish.
async fn drain(ctx: &Context, node: &str, reason: &str) {
    let mut changes = Changes::new(&ctx.client, &[PODS]);
    let mut blocked_logged = false;
    loop {
        let pods: Vec<Arc<Value>> = pods_on(ctx, node)
            .into_iter()
            .filter(|p| must_leave(p))
            .collect();
        if pods.is_empty() {
            return;
        }
        // Non-critical pods go first; critical ones once those are gone.
        let non_critical: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_critical(p)).collect();
        let wave: Vec<&Arc<Value>> = if non_critical.is_empty() {
            pods.iter().collect()
        } else {
            non_critical
        };
        for pod in wave {
            if !pod["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            if do_not_disrupt(pod) {
                if !blocked_logged {
                    ctx.log.info(CONTROLLER, "waiting on do-not-disrupt pod", json!({"Node": {"name": node},
                        "Pod": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]}}));
                    blocked_logged = true;
                }
                continue;
            }
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            match ctx.client.evict(ns, name, pod["metadata"]["uid"].as_str()) {
                Ok(_) => events::record(
                    &ctx.client,
                    pod,
                    Kind::Normal,
                    "Evicted",
                    &format!("Evicted pod: {reason}"),
                    &ctx.source(),
                ),
                Err(e) if e.code == 429 => {
                    events::record(
                        &ctx.client,
                        pod,
                        Kind::Warning,
                        "FailedDraining",
                        &format!("Failed to drain node, {}", e.message),
                        &ctx.source(),
                    );
                }
                Err(e) => tracing::debug!(error = %e, "karpenter: eviction failed"),
            }
        }
        changes.wait(Duration::from_secs(2)).await;
    }
}
