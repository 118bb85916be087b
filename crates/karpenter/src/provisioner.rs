//! The provisioner: pods the scheduler marked `PodScheduled=False/Unschedulable` trigger a
//! batch; when it closes, one pass simulates placing every provisionable pod on existing
//! nodes, in-flight NodeClaims and new NodeClaims (`sparkyard_provisioning::schedule`),
//! creates the new NodeClaims and nominates pods to them. The lifecycle controller then
//! launches them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkyard_instance_types as catalog;
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::registry::EventType;
use sparkyard_provisioning::{
    self as provisioning, NodePoolSpec, Requirement, Requirements, ScheduleInput, StateNode,
};
use sparkyard_scheduling::filter::NodeUsage;
use sparkyard_scheduling::{NodeInfo, PodRequirements};

use crate::changes::Changes;
use crate::log::first_five;
use crate::pools;
use crate::{batcher, Context, NODECLAIMS, NODES, PODS};

const CONTROLLER: &str = "provisioner";

pub async fn run(ctx: Arc<Context>) {
    let mut changes = Changes::new(
        &ctx.client,
        &[
            PODS,
            NODES,
            NODECLAIMS,
            crate::NODEPOOLS,
            crate::PROVISIONERS,
        ],
    );
    let mut memory = Memory::default();
    loop {
        // Wait for a trigger: a provisionable pod, or (every 10 s) any that are still
        // waiting — a pool may have appeared, or a limit freed up.
        let events = changes.wait(Duration::from_secs(10)).await;
        // No pool, nothing to provision: stay out of the way of clusters without Karpenter.
        if pools::ready_pools(&ctx).is_empty() {
            continue;
        }
        let triggered = if events.is_empty() {
            any_provisionable(&ctx)
        } else {
            events.iter().any(|e| {
                e.event_type != EventType::Deleted
                    && e.resource == PODS
                    && provisioning::is_provisionable(&e.object)
            }) || (events.iter().any(|e| e.resource != PODS) && any_provisionable(&ctx))
        };
        if !triggered {
            continue;
        }
        // The batch window: 1 s idle, 10 s at most.
        let opened = tokio::time::Instant::now();
        let mut last = opened;
        // A pod extends the window the first time it is seen provisionable in it (pods
        // become provisionable by a status update, not at creation).
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let closes =
                batcher::closes_at(opened, last, ctx.config.batch_idle, ctx.config.batch_max);
            let now = tokio::time::Instant::now();
            if now >= closes {
                break;
            }
            let events = changes.wait(closes - now).await;
            let mut fresh = false;
            for e in &events {
                if e.resource == PODS
                    && e.event_type != EventType::Deleted
                    && provisioning::is_provisionable(&e.object)
                {
                    let uid = e.object["metadata"]["uid"].as_str().unwrap_or_default();
                    fresh |= seen.insert(uid.to_string());
                }
            }
            if fresh {
                last = tokio::time::Instant::now();
            }
        }
        pass(&ctx, &mut memory);
    }
}

fn any_provisionable(ctx: &Context) -> bool {
    let (pods, _) = ctx.client.list(PODS, None);
    pods.iter().any(|p| provisioning::is_provisionable(p))
}

/// What earlier passes decided and told pods: where each pending pod was nominated (it
/// keeps that place while the target is alive, so a later pass does not plan it again)
/// and the scheduling failure it was told (so repeated passes do not repeat events).
#[derive(Default)]
pub struct Memory {
    nominated: HashMap<String, String>,
    failed: HashMap<String, String>,
}

fn pod_key(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The cluster as the simulation sees it: nodes with their pods' usage, and in-flight
/// NodeClaims (launched or not, not yet a registered node) as empty nodes of their shape.
pub fn state_nodes(
    ctx: &Context,
    nodes: &[Arc<Value>],
    claims: &[Arc<Value>],
    pods: &[Arc<Value>],
) -> Vec<StateNode> {
    let mut usage: HashMap<&str, Vec<PodRequirements>> = HashMap::new();
    for pod in pods {
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        if phase == "Succeeded" || phase == "Failed" {
            continue;
        }
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            if let Ok(p) = PodRequirements::from_pod(pod) {
                usage.entry(node).or_default().push(p);
            }
        }
    }
    let deleting_claims: HashSet<&str> = claims
        .iter()
        .filter(|c| !c["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|c| c["status"]["nodeName"].as_str())
        .collect();
    let mut state = Vec::new();
    let mut registered: HashSet<&str> = HashSet::new();
    for node in nodes {
        let Ok(info) = NodeInfo::from_node(node) else {
            continue;
        };
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        registered.insert(node["spec"]["providerID"].as_str().unwrap_or_default());
        let managed = node["metadata"]["labels"][crate::LABEL_REGISTERED] == "true";
        let disrupted = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == crate::DISRUPTED_TAINT);
        state.push(StateNode {
            usage: NodeUsage::from_pods(usage.get(name).into_iter().flatten()),
            initialized: !managed || node["metadata"]["labels"][crate::LABEL_INITIALIZED] == "true",
            deleting: !node["metadata"]["deletionTimestamp"].is_null()
                || disrupted
                || deleting_claims.contains(name),
            info,
        });
    }
    for claim in claims {
        if !claim["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let provider_id = claim["status"]["providerID"].as_str().unwrap_or_default();
        if !provider_id.is_empty() && registered.contains(provider_id) {
            continue;
        }
        if let Some(info) = claim_node(ctx, claim) {
            state.push(StateNode {
                info,
                usage: NodeUsage::default(),
                initialized: false,
                deleting: false,
            });
        }
    }
    state
}

/// An in-flight claim as a node: its labels and taints, and the allocatable of the type
/// it launched as (or of its smallest option, before launch).
fn claim_node(_ctx: &Context, claim: &Value) -> Option<NodeInfo> {
    let name = claim["metadata"]["name"].as_str()?;
    let mut labels = claim["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    let requirements = &claim["spec"]["requirements"];
    for r in requirements.as_array().into_iter().flatten() {
        if r["operator"] == "In" && r["values"].as_array().is_some_and(|v| v.len() == 1) {
            if let Some(k) = r["key"].as_str() {
                labels[k] = r["values"][0].clone();
            }
        }
    }
    let launched = claim["metadata"]["labels"]["node.kubernetes.io/instance-type"]
        .as_str()
        .and_then(catalog::get);
    let it = launched.or_else(|| {
        let options = Requirements::from_list(&Requirement::list_from_json(requirements));
        catalog::catalog()
            .iter()
            .filter(|it| options.allows("node.kubernetes.io/instance-type", &it.name))
            .min_by_key(|it| (it.allocatable().cpu_millis, it.allocatable().memory_bytes))
    })?;
    let a = it.allocatable();
    let node = json!({"metadata": {"name": name, "labels": labels},
        "spec": {"taints": claim["spec"]["taints"]},
        "status": {"allocatable": {"cpu": format!("{}m", a.cpu_millis), "memory": a.memory_bytes.to_string(),
            "pods": a.pods.to_string(), "ephemeral-storage": a.ephemeral_bytes.to_string()}}});
    NodeInfo::from_node(&node).ok()
}

/// A pending pod nominated by an earlier pass to a node or claim that is still there and
/// can still hold it keeps that place: it is counted as the target's usage instead of
/// being planned again (Karpenter's nominated pods). Otherwise pass 2 would re-pack pods
/// that pass 1 right-sized and launch more nodes for them.
fn keeps_nomination(
    ctx: &Context,
    memory: &Memory,
    pod: &Value,
    state: &mut [StateNode],
    claims: &[Arc<Value>],
) -> bool {
    let Some(target) = memory.nominated.get(&pod_key(pod)) else {
        return false;
    };
    // A claim nominated before it registered is its node now.
    let target = claims
        .iter()
        .find(|c| c["metadata"]["name"] == target.as_str())
        .and_then(|c| c["status"]["nodeName"].as_str())
        .filter(|n| state.iter().any(|s| s.info.name == *n))
        .unwrap_or(target);
    let Some(node) = state
        .iter_mut()
        .find(|s| s.info.name == target && !s.deleting)
    else {
        return false;
    };
    let Ok(requirements) = PodRequirements::from_pod(pod) else {
        return false;
    };
    if sparkyard_scheduling::fits(&requirements, &node.info, &node.usage).is_err() {
        return false;
    }
    node.usage.add(&requirements);
    ctx.nominations.touch(target);
    true
}

pub fn pass(ctx: &Context, memory: &mut Memory) {
    let started = Instant::now();
    let (nodes, _) = ctx.client.list(NODES, None);
    let (claims, _) = ctx.client.list(NODECLAIMS, None);
    let (pods, _) = ctx.client.list(PODS, None);
    // Nodes first, then pods: existing capacity is over- rather than under-estimated.
    let mut state = state_nodes(ctx, &nodes, &claims, &pods);
    let mut pending: Vec<&Arc<Value>> = Vec::new();
    for pod in pods.iter().filter(|p| provisioning::is_provisionable(p)) {
        if keeps_nomination(ctx, memory, pod, &mut state, &claims) {
            continue;
        }
        pending.push(pod);
    }
    if pending.is_empty() {
        return;
    }
    let specs: Vec<PodRequirements> = pending
        .iter()
        .filter_map(|p| PodRequirements::from_pod(p).ok())
        .collect();
    let objects: Vec<&Arc<Value>> = pending
        .iter()
        .filter(|p| PodRequirements::from_pod(p).is_ok())
        .copied()
        .collect();
    let pools: Vec<(NodePoolSpec, Arc<Value>)> = pools::ready_pools(ctx);
    if pools.is_empty() {
        return;
    }
    let names: Vec<String> = objects.iter().map(|p| pod_key(p)).collect();
    ctx.log.info(
        CONTROLLER,
        "found provisionable pod(s)",
        json!({"Pods": first_five(&names),
        "duration": format!("{:?}", started.elapsed())}),
    );
    let specs_only: Vec<NodePoolSpec> = pools.iter().map(|(s, _)| s.clone()).collect();
    let instance_types =
        provisioning::instance_options(&ctx.config.region, &ctx.offerings.snapshot());
    let daemonsets = pools::daemonset_pods(ctx);
    let input = ScheduleInput {
        pools: &specs_only,
        nodes: &state,
        pods: &specs,
        daemonsets: &daemonsets,
        instance_types: &instance_types,
        right_size: true,
    };
    let results = provisioning::schedule(&input);
    ctx.metrics
        .scheduling_duration
        .observe(started.elapsed().as_secs_f64());
    let claimed: usize = results.new_claims.iter().map(|c| c.pods.len()).sum();
    if !results.new_claims.is_empty() {
        ctx.log.info(
            CONTROLLER,
            "computed new nodeclaim(s) to fit pod(s)",
            json!({
            "nodeclaims": results.new_claims.len(), "pods": claimed}),
        );
    }
    let unready: Vec<&provisioning::ExistingPlacement> = results
        .existing
        .iter()
        .filter(|e| {
            state
                .iter()
                .any(|s| s.info.name == e.node && !s.initialized)
        })
        .collect();
    if !unready.is_empty() {
        let pods: usize = unready.iter().map(|e| e.pods.len()).sum();
        if unready.iter().any(|e| {
            e.pods.iter().any(|i| {
                memory
                    .nominated
                    .get(&names[*i])
                    .is_none_or(|t| *t != e.node)
            })
        }) {
            ctx.log.info(
                CONTROLLER,
                "computed unready node(s) will fit pod(s)",
                json!({"nodes": unready.len(), "pods": pods}),
            );
        }
    }
    for placement in &results.existing {
        for &i in &placement.pods {
            nominate(ctx, memory, objects[i], &names[i], &placement.node, &claims);
        }
    }
    for claim in &results.new_claims {
        let Some((pool, object)) = pools.iter().find(|(p, _)| p.name == claim.pool) else {
            continue;
        };
        match create_claim(ctx, pool, object, claim) {
            Ok(name) => {
                for &i in &claim.pods {
                    nominate(ctx, memory, objects[i], &names[i], &name, &claims);
                }
            }
            Err(e) => ctx.log.error(
                CONTROLLER,
                "failed to create nodeclaim",
                json!({"NodePool": {"name": pool.name}, "error": e}),
            ),
        }
    }
    for error in &results.errors {
        let pod = objects[error.pod];
        let key = &names[error.pod];
        let message = format!("Failed to schedule pod, {}", error.message);
        if memory.failed.get(key) == Some(&message) {
            continue;
        }
        ctx.log.error(
            CONTROLLER,
            "could not schedule pod",
            json!({"Pod": {"name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"]}, "error": error.message}),
        );
        events::record(
            &ctx.client,
            pod,
            Kind::Warning,
            "FailedScheduling",
            &message,
            &ctx.source(),
        );
        memory.failed.insert(key.clone(), message);
    }
    // Forget pods that are gone.
    let live: HashSet<String> = pods.iter().map(|p| pod_key(p)).collect();
    memory.nominated.retain(|k, _| live.contains(k));
    memory.failed.retain(|k, _| live.contains(k));
}

/// The `Nominated` event, once per pod and target: "nodeclaim/x" for a claim not yet a
/// node, "nodeclaim/x, node/y" for a Karpenter node, "node/y" for any other.
fn nominate(
    ctx: &Context,
    memory: &mut Memory,
    pod: &Value,
    key: &str,
    target: &str,
    claims: &[Arc<Value>],
) {
    ctx.nominations.touch(target);
    if memory.nominated.get(key).is_some_and(|t| t == target) {
        return;
    }
    let on_node = ctx.client.get(NODES, "", target).is_some();
    let message = if !on_node {
        format!("Pod should schedule on: nodeclaim/{target}")
    } else {
        match claims.iter().find(|c| c["status"]["nodeName"] == target) {
            Some(c) => format!(
                "Pod should schedule on: nodeclaim/{}, node/{target}",
                c["metadata"]["name"].as_str().unwrap_or("")
            ),
            None => format!("Pod should schedule on: node/{target}"),
        }
    };
    events::record(
        &ctx.client,
        pod,
        Kind::Normal,
        "Nominated",
        &message,
        &ctx.source(),
    );
    memory.nominated.insert(key.to_string(), target.to_string());
    memory.failed.remove(key);
}

/// Creates the NodeClaim for a planned claim; returns its name.
pub(crate) fn create_claim(
    ctx: &Context,
    pool: &NodePoolSpec,
    object: &Value,
    claim: &provisioning::NewClaim,
) -> Result<String, String> {
    let v1 = pool.api == provisioning::PoolApi::V1;
    let mut labels = serde_json::Map::new();
    for (k, v) in &pool.labels {
        labels.insert(k.clone(), json!(v));
    }
    labels.insert(pool.pool_label().to_string(), json!(pool.name));
    if v1 {
        if let Some(class) = &pool.node_class {
            labels.insert("karpenter.k8s.aws/ec2nodeclass".into(), json!(class));
        }
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "karpenter.sh/nodepool-hash".into(),
        json!(provisioning::pool_hash(pool)),
    );
    annotations.insert("karpenter.sh/nodepool-hash-version".into(), json!("v3"));
    for key in [crate::SIMULATED_ANNOTATION, crate::BOOT_DELAY_ANNOTATION] {
        if let Some(v) = object["metadata"]["annotations"][key].as_str() {
            annotations.insert(key.into(), json!(v));
        }
    }
    // Tags the node class asks for go onto the instance.
    if let Some(tags) = pools::node_class_tags(ctx, pool, object) {
        annotations.insert("sparkyard.dev/tags".into(), tags);
    }
    let (class_kind, class_name) = pools::node_class_ref(pool, object);
    let requirements: Vec<Value> = claim.requirements.iter().map(|r| r.to_json()).collect();
    let requests = provisioning::format::resource_list(&claim.requests);
    let taints = |t: &[sparkyard_scheduling::Taint]| serde_json::to_value(t).unwrap_or(json!([]));
    let mut spec = json!({
        "requirements": requirements,
        "resources": {"requests": requests},
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": class_kind, "name": class_name},
        "expireAfter": pool.expire_after.map(|d| format!("{}s", d.as_secs())).unwrap_or_else(|| "Never".into()),
    });
    if !claim.taints.is_empty() {
        spec["taints"] = taints(&claim.taints);
    }
    if !claim.startup_taints.is_empty() {
        spec["startupTaints"] = taints(&claim.startup_taints);
    }
    let body = json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"generateName": format!("{}-", pool.name), "labels": labels, "annotations": annotations,
            "finalizers": [crate::TERMINATION_FINALIZER],
            "ownerReferences": [{"apiVersion": object["apiVersion"], "kind": object["kind"],
                "name": pool.name, "uid": object["metadata"]["uid"], "blockOwnerDeletion": true}]},
        "spec": spec});
    let created = ctx
        .client
        .create(NODECLAIMS, "", body)
        .map_err(|e| e.message)?;
    let name = created["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pool_key = if v1 { "NodePool" } else { "Provisioner" };
    ctx.log.info(
        CONTROLLER,
        "created nodeclaim",
        json!({
        pool_key: {"name": pool.name}, "NodeClaim": {"name": name},
        "requests": requests, "instance-types": first_five(&claim.instance_types)}),
    );
    Ok(name)
}
