//! Consolidation of underutilized nodes (`WhenEmptyOrUnderutilized`, v1alpha5's
//! `consolidation.enabled`): every 10 s the pure single-node consolidation
//! (`sparkyard_provisioning::disruption::consolidation`) looks for a Karpenter node whose
//! pods fit elsewhere (**delete**) or on one strictly cheaper new node (**replace**). A
//! replacement is launched first and the candidate is disrupted once it has initialized,
//! as Karpenter's orchestration queue does; if it never does, the command is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use sparkyard_provisioning::disruption::{self, Decision, DisruptionInput, NodeState, PodOnNode};
use sparkyard_provisioning::{self as provisioning};
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{NodeInfo, PodRequirements};

use crate::changes::Changes;
use crate::objects::{condition_since, time};
use crate::{
    disruption as live, pools, provisioner, termination, Context, NODECLAIMS, NODES, PODS,
};

fn pod_on_node(pod: &Value) -> Option<PodOnNode> {
    let owned = |kind: &str| {
        pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["kind"] == kind)
    };
    Some(PodOnNode {
        pod: PodRequirements::from_pod(pod).ok()?,
        daemon: owned("DaemonSet"),
        mirror: !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null(),
        statefulset: owned("StatefulSet"),
        do_not_disrupt: termination::do_not_disrupt(pod),
        pdb_blocked: false,
    })
}

pub fn consolidate(ctx: &Arc<Context>) {
    let pools = pools::ready_pools(ctx);
    if !pools.iter().any(|(p, _)| live::consolidates(p)) {
        return;
    }
    let (nodes, _) = ctx.client.list(NODES, None);
    let (claims, _) = ctx.client.list(NODECLAIMS, None);
    let (pods, _) = ctx.client.list(PODS, None);
    let mut states = Vec::new();
    for claim in &claims {
        let node_name = claim["status"]["nodeName"].as_str().unwrap_or_default();
        let Some(node) = nodes.iter().find(|n| n["metadata"]["name"] == node_name) else {
            continue;
        };
        let Some((pool, _)) = pools::pool_of(&pools, claim) else {
            continue;
        };
        let Ok(info) = NodeInfo::from_node(node) else {
            continue;
        };
        let labels = &claim["metadata"]["labels"];
        let instance_type = labels["node.kubernetes.io/instance-type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let zone = labels["topology.kubernetes.io/zone"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let capacity_type = if labels[crate::LABEL_CAPACITY_TYPE] == "spot" {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        };
        let price = sparkyard_instance_types::get(&instance_type)
            .map_or(0.0, |it| it.price(&zone, capacity_type));
        let annotations: BTreeMap<String, String> = node["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        states.push(NodeState {
            info,
            nodeclaim: claim["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            pool: pool.name.clone(),
            instance_type,
            zone,
            capacity_type,
            price,
            pods: pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node_name)
                .filter_map(|p| pod_on_node(p))
                .collect(),
            created: time(&claim["metadata"]["creationTimestamp"]).unwrap_or_else(Utc::now),
            initialized: condition_since(claim, "Initialized"),
            last_pod_event: time(&claim["status"]["lastPodEventTime"]),
            annotations,
            deleting: !claim["metadata"]["deletionTimestamp"].is_null(),
            ready: true,
            nominated: false,
            pool_hash: claim["metadata"]["annotations"]["karpenter.sh/nodepool-hash"]
                .as_str()
                .map(String::from),
        });
    }
    if states.is_empty() {
        return;
    }
    let karpenter_nodes: Vec<&str> = states.iter().map(|s| s.info.name.as_str()).collect();
    let others: Vec<_> = provisioner::state_nodes(ctx, &nodes, &claims, &pods)
        .into_iter()
        .filter(|s| !karpenter_nodes.contains(&s.info.name.as_str()))
        .collect();
    let pending: Vec<PodRequirements> = pods
        .iter()
        .filter(|p| provisioning::is_provisionable(p))
        .filter_map(|p| PodRequirements::from_pod(p).ok())
        .collect();
    let specs: Vec<_> = pools.iter().map(|(p, _)| p.clone()).collect();
    let instance_types =
        provisioning::instance_options(&ctx.config.region, &ctx.offerings.snapshot());
    let daemonsets = crate::pools::daemonset_pods(ctx);
    let input = DisruptionInput {
        nodes: &states,
        pools: &specs,
        other_nodes: &others,
        pending: &pending,
        daemonsets: &daemonsets,
        instance_types: &instance_types,
        now: Utc::now(),
        spot_to_spot: false,
    };
    let Some(command) = disruption::consolidation(&input) else {
        return;
    };
    let Some(node) = command.nodes.first() else {
        return;
    };
    let Some(state) = states.iter().find(|s| &s.info.name == node) else {
        return;
    };
    let Some(claim) = claims
        .iter()
        .find(|c| c["metadata"]["name"] == state.nodeclaim.as_str())
        .cloned()
    else {
        return;
    };
    let Some((pool, object)) = pools.iter().find(|(p, _)| p.name == state.pool).cloned() else {
        return;
    };
    match (command.decision, command.replacement) {
        (Decision::Delete, _) => {
            live::disrupt(ctx, &claim, &pool, "Underutilized", command.pod_count)
        }
        (Decision::Replace, Some(replacement)) => {
            let Ok(name) = provisioner::create_claim(ctx, &pool, &object, &replacement) else {
                return;
            };
            ctx.log.info("disruption", &format!(
                "disrupting nodeclaim(s) via replace, terminating 1 nodes ({} pods) {}/{}/{} and replacing with {} nodeclaim from types {}",
                command.pod_count, node, state.instance_type, state.capacity_type.karpenter(),
                replacement.launch.as_ref().map_or("spot", |l| l.capacity_type.karpenter()),
                crate::log::first_five(&replacement.instance_types)),
                json!({"reason": "underutilized", "decision": "replace", "disrupted-node-count": 1,
                    "replacement-node-count": 1, "pod-count": command.pod_count, "NodeClaim": {"name": name}}));
            termination::taint(ctx, node);
            let ctx = ctx.clone();
            let pod_count = command.pod_count;
            tokio::spawn(async move {
                if wait_initialized(&ctx, &name).await {
                    live::disrupt(&ctx, &claim, &pool, "Underutilized", pod_count);
                } else {
                    termination::untaint(
                        &ctx,
                        claim["status"]["nodeName"].as_str().unwrap_or_default(),
                    );
                }
            });
        }
        _ => {}
    }
}

/// Waits (up to 5 minutes) for a replacement claim to initialize.
async fn wait_initialized(ctx: &Context, name: &str) -> bool {
    let mut changes = Changes::new(&ctx.client, &[NODECLAIMS]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while tokio::time::Instant::now() < deadline {
        match ctx.client.get(NODECLAIMS, "", name) {
            None => return false,
            Some(c) if condition_since(&c, "Initialized").is_some() => return true,
            Some(_) => {}
        }
        changes.wait(Duration::from_secs(1)).await;
    }
    false
}
