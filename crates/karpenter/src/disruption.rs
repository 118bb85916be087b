//! Disruption (Karpenter's `disruption` controller and the v1alpha5 emptiness TTL):
//! which Karpenter nodes to remove, and removing them through the termination flow.
//!
//! - **Emptiness**: a node with no reschedulable pod (active, not a DaemonSet's or mirror
//!   pod, not terminating) for `consolidateAfter` (v1, `WhenEmpty` or
//!   `WhenEmptyOrUnderutilized`) or `ttlSecondsAfterEmpty` (v1alpha5) is deleted. The
//!   moment it emptied is kept in the claim's `status.lastPodEventTime` (and, for
//!   v1alpha5, the node's `karpenter.sh/emptiness-timestamp`), so a restart keeps the
//!   clock. The check runs every `disruption_poll` (250 ms), which bounds the error.
//! - **Consolidation** (`WhenEmptyOrUnderutilized`): every 10 s, a node whose pods fit on
//!   the other nodes is deleted, or replaced by one cheaper node
//!   (`sparkyard_provisioning::disruption`).
//! - **Expiry**: a claim older than `expireAfter` / `ttlSecondsUntilExpired` is deleted
//!   (forceful in v1: no budget, no replacement first).
//! - **Drift**: a claim whose `karpenter.sh/nodepool-hash` no longer matches its pool is
//!   replaced (its pods go pending and the provisioner launches for them).
//!
//! Candidates exclude nodes annotated `karpenter.sh/do-not-disrupt` (or v1alpha5's
//! `karpenter.sh/do-not-consolidate`) and nodes with a pod annotated
//! `karpenter.sh/do-not-disrupt` / `karpenter.sh/do-not-evict`; a blocked candidate gets a
//! `DisruptionBlocked` event. Budgets (`spec.disruption.budgets`) cap how many nodes of a
//! pool are disrupted at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::{conditions, Propagation, Subresource};
use sparkyard_provisioning::{ConsolidationPolicy, NodePoolSpec, PoolApi};

use crate::objects::{condition_true, time};
use crate::termination;
use crate::{pools, Context, NODECLAIMS, NODES, PODS};

const CONTROLLER: &str = "disruption";
const EMPTINESS_ANNOTATION: &str = "karpenter.sh/emptiness-timestamp";

pub async fn run(ctx: Arc<Context>) {
    let mut state = State::default();
    let mut last_consolidation = std::time::Instant::now();
    loop {
        // A fixed period, not every change: under pod churn a wake-up per event would
        // re-read the cluster continuously. The period bounds the emptiness error.
        tokio::time::sleep(ctx.config.disruption_poll).await;
        if ctx.client.list(NODECLAIMS, None).0.is_empty() {
            state = State::default();
            continue;
        }
        let now = Utc::now();
        reconcile(&ctx, &mut state, now);
        if last_consolidation.elapsed() >= Duration::from_secs(10) {
            last_consolidation = std::time::Instant::now();
            crate::consolidation::consolidate(&ctx);
        }
    }
}

#[derive(Default)]
struct State {
    /// When each claim's node was last seen going empty.
    empty_since: HashMap<String, DateTime<Utc>>,
    /// Candidates whose block was already reported.
    blocked: HashSet<String>,
    /// Pods on Karpenter nodes whose startup time was recorded.
    started: HashSet<String>,
}

/// A pod that would have to be rescheduled if its node went: active, not a DaemonSet's,
/// not a mirror pod, not terminating.
pub fn reschedulable(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    phase != "Succeeded"
        && phase != "Failed"
        && pod["metadata"]["deletionTimestamp"].is_null()
        && pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null()
        && !pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["kind"] == "DaemonSet")
}

fn reconcile(ctx: &Context, state: &mut State, now: DateTime<Utc>) {
    let pools = pools::ready_pools(ctx);
    let (claims, _) = ctx.client.list(NODECLAIMS, None);
    let (pods, _) = ctx.client.list(PODS, None);
    let mut by_node: HashMap<&str, Vec<&Arc<Value>>> = HashMap::new();
    for pod in &pods {
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            by_node.entry(node).or_default().push(pod);
        }
    }
    let live: HashSet<String> = claims
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(String::from))
        .collect();
    state.empty_since.retain(|k, _| live.contains(k));
    record_startups(ctx, state, &claims, &pods);
    let mut deleting_per_pool: HashMap<String, usize> = HashMap::new();
    let mut total_per_pool: HashMap<String, usize> = HashMap::new();
    for claim in &claims {
        if let Some((pool, _)) = pools::pool_of(&pools, claim) {
            *total_per_pool.entry(pool.name.clone()).or_default() += 1;
            if !claim["metadata"]["deletionTimestamp"].is_null() {
                *deleting_per_pool.entry(pool.name.clone()).or_default() += 1;
            }
        }
    }
    for claim in &claims {
        if !claim["metadata"]["deletionTimestamp"].is_null()
            || !condition_true(claim, "Initialized")
        {
            continue;
        }
        let Some((pool, _)) = pools::pool_of(&pools, claim) else {
            continue;
        };
        let name = claim["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let node = claim["status"]["nodeName"].as_str().unwrap_or_default();
        let node_pods: Vec<&Arc<Value>> = by_node.get(node).cloned().unwrap_or_default();
        let active: Vec<&&Arc<Value>> = node_pods.iter().filter(|p| reschedulable(p)).collect();

        // Expiry first: it ignores budgets and blocks (v1 is forceful).
        if let Some(expire) = pool.expire_after {
            let created = time(&claim["metadata"]["creationTimestamp"]);
            if created.is_some_and(|c| {
                now.signed_duration_since(c).to_std().unwrap_or_default() >= expire
            }) {
                ctx.log.info(
                    "nodeclaim.expiration",
                    "deleting expired nodeclaim",
                    json!({"NodeClaim": {"name": name},
                    "Node": {"name": node}, "ttl": format!("{}s", expire.as_secs())}),
                );
                mark_and_delete(ctx, claim, "Expired");
                continue;
            }
        }

        // Emptiness: remember when the node emptied (a restart keeps the clock).
        if active.is_empty() {
            let since = *state
                .empty_since
                .entry(name.clone())
                .or_insert_with(|| time(&claim["status"]["lastPodEventTime"]).unwrap_or(now));
            if claim["status"]["lastPodEventTime"].is_null() {
                stamp_empty(ctx, claim, pool, node, since);
            }
            let Some(after) = pool.consolidate_after else {
                continue;
            };
            if now
                .signed_duration_since(since)
                .to_std()
                .unwrap_or_default()
                < after
            {
                continue;
            }
            // Pods were just nominated to it: it is waiting for them, not empty.
            let window = (2 * ctx.config.batch_max).max(Duration::from_secs(10));
            if ctx.nominations.recent(&name, window) || ctx.nominations.recent(node, window) {
                continue;
            }
            if let Some(reason) = blocked(ctx, claim, node, &node_pods) {
                if state.blocked.insert(name.clone()) {
                    if let Some(n) = ctx.client.get(NODES, "", node) {
                        events::record(
                            &ctx.client,
                            &n,
                            Kind::Normal,
                            "DisruptionBlocked",
                            &reason,
                            &ctx.source(),
                        );
                    }
                }
                continue;
            }
            let total = total_per_pool.get(&pool.name).copied().unwrap_or(1);
            let deleting = deleting_per_pool.get(&pool.name).copied().unwrap_or(0);
            if allowed(pool, "Empty", total).saturating_sub(deleting) == 0 {
                if state.blocked.insert(name.clone()) {
                    if let Some(n) = ctx.client.get(NODES, "", node) {
                        events::record(&ctx.client, &n, Kind::Normal, "DisruptionBlocked",
                            "No allowed disruptions for disruption reason Empty due to blocking budget", &ctx.source());
                    }
                }
                continue;
            }
            *deleting_per_pool.entry(pool.name.clone()).or_default() += 1;
            disrupt(ctx, claim, pool, "Empty", 0);
            continue;
        }
        if state.empty_since.remove(&name).is_some()
            || !claim["status"]["lastPodEventTime"].is_null()
        {
            clear_empty(ctx, claim, pool, node);
        }
        state.blocked.remove(&name);

        // Drift: the pool's template changed under the claim.
        let hash = claim["metadata"]["annotations"]["karpenter.sh/nodepool-hash"].as_str();
        if hash.is_some_and(|h| h != sparkyard_provisioning::pool_hash(pool)) {
            if blocked(ctx, claim, node, &node_pods).is_some() {
                continue;
            }
            let total = total_per_pool.get(&pool.name).copied().unwrap_or(1);
            let deleting = deleting_per_pool.get(&pool.name).copied().unwrap_or(0);
            if allowed(pool, "Drifted", total).saturating_sub(deleting) == 0 {
                continue;
            }
            *deleting_per_pool.entry(pool.name.clone()).or_default() += 1;
            disrupt(ctx, claim, pool, "Drifted", active.len());
        }
    }
}

/// `karpenter_pods_startup_duration_seconds`: creation → Running of each pod on a
/// Karpenter node, once.
fn record_startups(ctx: &Context, state: &mut State, claims: &[Arc<Value>], pods: &[Arc<Value>]) {
    let nodes: HashSet<&str> = claims
        .iter()
        .filter_map(|c| c["status"]["nodeName"].as_str())
        .collect();
    for pod in pods {
        let Some(uid) = pod["metadata"]["uid"].as_str() else {
            continue;
        };
        if pod["status"]["phase"] != "Running"
            || !pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| nodes.contains(n))
            || state.started.contains(uid)
        {
            continue;
        }
        if let (Some(created), Some(started)) = (
            time(&pod["metadata"]["creationTimestamp"]),
            pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready" && c["status"] == "True")
                .and_then(|c| time(&c["lastTransitionTime"]))
                .or_else(|| time(&pod["status"]["startTime"])),
        ) {
            let seconds = started
                .signed_duration_since(created)
                .num_milliseconds()
                .max(0) as f64
                / 1000.0;
            ctx.metrics.pods_startup_duration.observe(seconds);
        }
        state.started.insert(uid.to_string());
    }
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str())
        .collect();
    state.started.retain(|u| live.contains(u.as_str()));
}

/// How many of a pool's `total` nodes may be disrupted for `reason` now.
pub fn allowed(pool: &NodePoolSpec, reason: &str, total: usize) -> usize {
    pool.budgets
        .iter()
        .filter(|b| {
            b.active && (b.reasons.is_empty() || b.reasons.iter().any(|r| r.as_str() == reason))
        })
        .map(|b| b.allowed(total))
        .min()
        .unwrap_or(total)
}

/// Why a candidate may not be disrupted, if it may not.
fn blocked(ctx: &Context, claim: &Value, node: &str, pods: &[&Arc<Value>]) -> Option<String> {
    if let Some(n) = ctx.client.get(NODES, "", node) {
        let a = &n["metadata"]["annotations"];
        if a[crate::DO_NOT_DISRUPT] == "true" || a[crate::DO_NOT_CONSOLIDATE] == "true" {
            return Some(format!(
                "Node is annotated with \"{}\"",
                crate::DO_NOT_DISRUPT
            ));
        }
    }
    let _ = claim;
    pods.iter()
        .filter(|p| termination::must_leave(p) && termination::do_not_disrupt(p))
        .map(|p| {
            format!(
                "Pod \"{}/{}\" has \"{}\" annotation",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or(""),
                crate::DO_NOT_DISRUPT
            )
        })
        .next()
}

fn stamp_empty(
    ctx: &Context,
    claim: &Value,
    pool: &NodePoolSpec,
    node: &str,
    since: DateTime<Utc>,
) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let stamp = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        c["status"]["lastPodEventTime"] = json!(stamp);
        Ok(())
    });
    if pool.api == PoolApi::V1Alpha5 {
        let _ = ctx.client.modify(NODES, "", node, Subresource::Main, |n| {
            n["metadata"]["annotations"][EMPTINESS_ANNOTATION] = json!(stamp);
            Ok(())
        });
        if let Some(ttl) = pool.consolidate_after {
            ctx.log.info(
                "node.emptiness",
                "added TTL to empty node",
                json!({"Node": {"name": node},
                "Provisioner": {"name": pool.name}, "ttl": format!("{}s", ttl.as_secs())}),
            );
        }
    }
}

fn clear_empty(ctx: &Context, claim: &Value, pool: &NodePoolSpec, node: &str) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        if let Some(status) = c["status"].as_object_mut() {
            status.remove("lastPodEventTime");
        }
        Ok(())
    });
    if pool.api == PoolApi::V1Alpha5 {
        let mut removed = false;
        let _ = ctx.client.modify(NODES, "", node, Subresource::Main, |n| {
            if let Some(a) = n["metadata"]["annotations"].as_object_mut() {
                removed = a.remove(EMPTINESS_ANNOTATION).is_some();
            }
            Ok(())
        });
        if removed {
            ctx.log.info(
                "node.emptiness",
                "removed emptiness TTL from node",
                json!({"Node": {"name": node}}),
            );
        }
    }
}

/// Sets the claim's `DisruptionReason` and deletes it (termination does the rest).
pub fn mark_and_delete(ctx: &Context, claim: &Value, reason: &str) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        conditions::set(c, json!({"type": "DisruptionReason", "status": "True", "reason": reason,
            "message": "", "lastTransitionTime": sparkyard_kube_apiserver::registry::now_rfc3339()}));
        Ok(())
    });
    let _ = ctx
        .client
        .delete(NODECLAIMS, "", name, Propagation::Background, None);
}

/// One disruption command of a single candidate by delete, logged and evented as
/// Karpenter does, then the claim's deletion.
pub fn disrupt(ctx: &Context, claim: &Value, pool: &NodePoolSpec, reason: &str, pod_count: usize) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let node = claim["status"]["nodeName"].as_str().unwrap_or_default();
    let labels = &claim["metadata"]["labels"];
    let instance_type = labels["node.kubernetes.io/instance-type"]
        .as_str()
        .unwrap_or("");
    let capacity = labels[crate::LABEL_CAPACITY_TYPE].as_str().unwrap_or("");
    let command = format!("{:08x}-{:04x}", rand_id(), rand_id() & 0xffff);
    let described = format!("{node}/{instance_type}/{capacity}");
    ctx.log.info(CONTROLLER, &format!(
        "disrupting nodeclaim(s) via delete, terminating 1 nodes ({pod_count} pods) {described} ({reason})"),
        json!({"command-id": command, "reason": reason.to_lowercase(), "decision": "delete",
            "disrupted-node-count": 1, "replacement-node-count": 0, "pod-count": pod_count,
            "disrupted-nodes": [{"Node": {"name": node}, "NodeClaim": {"name": name},
                "instance-type": instance_type, "capacity-type": capacity}],
            "NodePool": {"name": pool.name}}));
    ctx.metrics
        .disruption_decisions
        .get_or_create(&crate::metrics::DecisionLabels {
            decision: "delete".into(),
            reason: reason.to_lowercase(),
        })
        .inc();
    if let Some(n) = ctx.client.get(NODES, "", node) {
        events::record(
            &ctx.client,
            &n,
            Kind::Normal,
            "DisruptionTerminating",
            &format!("Disrupting Node: {reason}"),
            &ctx.source(),
        );
    }
    events::record(
        &ctx.client,
        claim,
        Kind::Normal,
        "DisruptionTerminating",
        &format!("Disrupting NodeClaim: {reason}"),
        &ctx.source(),
    );
    // Taint before deleting, so nothing new lands on it while the command runs.
    termination::taint(ctx, node);
    mark_and_delete(ctx, claim, reason);
}

fn rand_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64);
    h.finish() as u32
}

/// Pools whose policy allows consolidating underutilized nodes.
pub fn consolidates(pool: &NodePoolSpec) -> bool {
    pool.consolidation_policy == ConsolidationPolicy::WhenEmptyOrUnderutilized
        && pool.consolidate_after.is_some()
}
