//! The NodeClaim lifecycle (Karpenter's `nodeclaim.lifecycle` controller):
//! **Launched** (an instance is running for it) → **Registered** (its node joined; labels
//! and taints synced, the `karpenter.sh/unregistered` taint removed) → **Initialized** (the
//! node is Ready and no startup taint remains) ⇒ **Ready**. A claim whose launch fails, or
//! whose node does not register within 15 minutes, is deleted; one whose node disappears is
//! deleted too (its pods come back as pending and are provisioned again).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sparkyard_ec2::LaunchRequest;
use sparkyard_instance_types as catalog;
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::registry::now_rfc3339;
use sparkyard_kube_apiserver::{conditions, Propagation};
use sparkyard_scheduling::node::{CapacityType, Taint, TaintEffect};

use crate::changes::Changes;
use crate::objects::{condition_true, pool_name};
use crate::{offerings, termination, Context, NODECLAIMS, NODES};

const REGISTRATION_TTL: Duration = Duration::from_secs(15 * 60);
const CONTROLLER: &str = "nodeclaim.lifecycle";

pub async fn run(ctx: Arc<Context>) {
    let mut changes = Changes::new(&ctx.client, &[NODECLAIMS, NODES]);
    let terminating: Arc<std::sync::Mutex<HashSet<String>>> = Default::default();
    loop {
        let (claims, _) = ctx.client.list(NODECLAIMS, None);
        if claims.is_empty() {
            changes.wait(Duration::from_secs(1)).await;
            continue;
        }
        let (nodes, _) = ctx.client.list(NODES, None);
        for claim in claims {
            let name = claim["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !claim["metadata"]["deletionTimestamp"].is_null() {
                // Termination runs on its own task: a drain can take minutes.
                if terminating.lock().unwrap().insert(name.clone()) {
                    let ctx = ctx.clone();
                    let terminating = terminating.clone();
                    tokio::spawn(async move {
                        termination::terminate(&ctx, &name).await;
                        terminating.lock().unwrap().remove(&name);
                    });
                }
                continue;
            }
            reconcile(&ctx, &claim, &nodes);
        }
        changes.wait(Duration::from_secs(1)).await;
    }
}

fn set_condition(claim: &mut Value, kind: &str, status: bool, reason: &str, message: &str) {
    let now = now_rfc3339();
    conditions::set(
        claim,
        json!({"type": kind, "status": if status {"True"} else {"False"}, "reason": reason,
            "message": message, "lastTransitionTime": now,
            "observedGeneration": claim["metadata"]["generation"]}),
    );
}

fn reconcile(ctx: &Context, claim: &Value, nodes: &[Arc<Value>]) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let provider_id = claim["status"]["providerID"].as_str().unwrap_or_default();
    if provider_id.is_empty() {
        launch(ctx, claim);
        return;
    }
    let node = nodes.iter().find(|n| {
        n["spec"]["providerID"] == provider_id && n["metadata"]["deletionTimestamp"].is_null()
    });
    if !condition_true(claim, "Registered") {
        match node {
            Some(node) => register(ctx, claim, node),
            None => {
                let created = claim["metadata"]["creationTimestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                if created.is_some_and(|c| {
                    Utc::now()
                        .signed_duration_since(c)
                        .to_std()
                        .unwrap_or_default()
                        > REGISTRATION_TTL
                }) {
                    ctx.log.info(
                        CONTROLLER,
                        "deleting nodeclaim, node failed to register",
                        json!({"NodeClaim": {"name": name}, "ttl": "15m0s"}),
                    );
                    let _ = ctx
                        .client
                        .delete(NODECLAIMS, "", name, Propagation::Background, None);
                }
            }
        }
        return;
    }
    let Some(node) = node else {
        // The node went away under the claim (deleted by hand, or its instance ended).
        if crate::instance_for(ctx, provider_id).is_none_or(|i| !i.state.is_live()) {
            ctx.log.info(
                "nodeclaim.garbagecollection",
                "garbage collecting nodeclaim with no cloudprovider representation",
                json!({"NodeClaim": {"name": name}, "provider-id": provider_id}),
            );
        }
        let _ = ctx
            .client
            .delete(NODECLAIMS, "", name, Propagation::Background, None);
        return;
    };
    if !condition_true(claim, "Initialized") {
        initialize(ctx, claim, node);
    }
}

/// The labels a launched node carries: the claim's (pool labels, single-valued
/// requirements, the pool's name), the instance type's, zone and capacity type.
pub fn node_labels(
    claim: &Value,
    launch: &offerings::Launch,
    region: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = claim["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    for r in claim["spec"]["requirements"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if r["operator"] == "In" && r["values"].as_array().is_some_and(|v| v.len() == 1) {
            if let (Some(k), Some(v)) = (r["key"].as_str(), r["values"][0].as_str()) {
                labels.insert(k.to_string(), v.to_string());
            }
        }
    }
    if let Some(it) = catalog::get(&launch.instance_type) {
        labels.extend(it.labels());
    }
    labels.insert("topology.kubernetes.io/zone".into(), launch.zone.clone());
    labels.insert("topology.kubernetes.io/region".into(), region.to_string());
    labels.insert("topology.k8s.aws/zone-id".into(), zone_id(&launch.zone));
    labels.insert(
        crate::LABEL_CAPACITY_TYPE.into(),
        launch.capacity_type.karpenter().into(),
    );
    labels.insert(
        "node.kubernetes.io/instance-type".into(),
        launch.instance_type.clone(),
    );
    labels
}

/// `use2-az1` for `us-east-2a`: EKS's zone ids (a fixed letter → number mapping).
pub(crate) fn zone_id(zone: &str) -> String {
    let letter = zone.chars().last().unwrap_or('a');
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    let parts: Vec<&str> = region.split('-').collect();
    let mut short = parts.first().copied().unwrap_or_default().to_string();
    for part in parts.iter().skip(1).take(parts.len().saturating_sub(2)) {
        short.extend(part.chars().next());
    }
    short.push_str(parts.last().copied().unwrap_or_default());
    format!("{short}-az{}", (letter as u8).saturating_sub(b'a') + 1)
}

fn launch(ctx: &Context, claim: &Value) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let pool = pool_name(claim);
    let requirements = &claim["spec"]["requirements"];
    let Some(choice) = offerings::choose(requirements, &ctx.config.region, &ctx.offerings) else {
        ctx.log.error(CONTROLLER, "failed launching nodeclaim", json!({"NodeClaim": {"name": name},
            "error": "creating instance, insufficient capacity, all requested instance types were unavailable during launch"}));
        events::record(&ctx.client, claim, Kind::Warning, "InsufficientCapacityError",
            "NodeClaim failed to launch: all requested instance types were unavailable during launch", &ctx.source());
        let _ = ctx
            .client
            .delete(NODECLAIMS, "", name, Propagation::Background, None);
        return;
    };
    let labels = node_labels(claim, &choice, &ctx.config.region);
    let mut taints = Taint::list_from_json(&claim["spec"]["taints"]);
    taints.extend(Taint::list_from_json(&claim["spec"]["startupTaints"]));
    taints.push(Taint {
        key: crate::UNREGISTERED_TAINT.into(),
        value: String::new(),
        effect: TaintEffect::NoExecute,
    });
    let annotations = &claim["metadata"]["annotations"];
    let simulated = annotations[crate::SIMULATED_ANNOTATION] == "true";
    let boot_delay = annotations[crate::BOOT_DELAY_ANNOTATION]
        .as_str()
        .and_then(parse_duration);
    let mut tags = BTreeMap::new();
    tags.insert(
        format!("kubernetes.io/cluster/{}", ctx.config.cluster_name),
        "owned".to_string(),
    );
    tags.insert(
        "eks:eks-cluster-name".into(),
        ctx.config.cluster_name.clone(),
    );
    tags.insert("karpenter.sh/nodeclaim".into(), name.to_string());
    if !pool.is_empty() {
        let key = if claim["metadata"]["labels"][crate::LABEL_PROVISIONER].is_string() {
            crate::LABEL_PROVISIONER
        } else {
            crate::LABEL_NODEPOOL
        };
        tags.insert(key.into(), pool.clone());
    }
    for (k, v) in annotations["sparkyard.dev/tags"]
        .as_object()
        .into_iter()
        .flatten()
    {
        tags.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
    }
    let request = LaunchRequest {
        instance_type: choice.instance_type.clone(),
        zone: choice.zone.clone(),
        capacity_type: choice.capacity_type,
        labels: labels.clone(),
        taints,
        simulated,
        tags,
    };
    // A pool's `sparkyard.dev/boot-delay` (EC2's real 45–65 s for simulations).
    let launched = match boot_delay {
        Some(delay) => ctx.ec2.run_instance_booting_in(request, delay),
        None => ctx.ec2.run_instance(request),
    };
    let instance = match launched {
        Ok(i) => i,
        Err(e) => {
            ctx.offerings
                .mark(&choice.instance_type, &choice.zone, choice.capacity_type);
            ctx.log.error(
                CONTROLLER,
                "failed launching nodeclaim",
                json!({"NodeClaim": {"name": name}, "error": e.to_string()}),
            );
            events::record(
                &ctx.client,
                claim,
                Kind::Warning,
                "InsufficientCapacityError",
                &format!("NodeClaim {name} event: creating instance, {e}"),
                &ctx.source(),
            );
            let _ = ctx
                .client
                .delete(NODECLAIMS, "", name, Propagation::Background, None);
            return;
        }
    };
    let it = catalog::get(&choice.instance_type);
    let (capacity, allocatable) = it.map(resource_lists).unwrap_or_default();
    let provider_id = instance.provider_id.clone();
    let result = ctx.client.modify(
        NODECLAIMS,
        "",
        name,
        sparkyard_kube_apiserver::Subresource::Main,
        |c| {
            for (k, v) in [
                (
                    "node.kubernetes.io/instance-type",
                    choice.instance_type.as_str(),
                ),
                ("topology.kubernetes.io/zone", choice.zone.as_str()),
                (crate::LABEL_CAPACITY_TYPE, choice.capacity_type.karpenter()),
            ] {
                c["metadata"]["labels"][k] = json!(v);
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        tracing::debug!(error = %e, "karpenter: cannot label nodeclaim");
    }
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        c["status"]["providerID"] = json!(provider_id);
        c["status"]["imageID"] = json!("ami-0sparkyard0al2023");
        c["status"]["capacity"] = capacity.clone();
        c["status"]["allocatable"] = allocatable.clone();
        set_condition(c, "Launched", true, "Launched", "");
        set_condition(
            c,
            "Registered",
            false,
            "NotRegistered",
            "Node not registered with cluster",
        );
        set_condition(
            c,
            "Initialized",
            false,
            "NotInitialized",
            "Node not initialized",
        );
        set_condition(
            c,
            "Ready",
            false,
            "NotReady",
            "Node not registered with cluster",
        );
        Ok(())
    });
    ctx.metrics
        .nodeclaims_created
        .get_or_create(&crate::metrics::reason(&pool, "provisioning"))
        .inc();
    ctx.log.info(CONTROLLER, "launched nodeclaim", json!({"NodeClaim": {"name": name}, "provider-id": provider_id,
        "instance-type": choice.instance_type, "zone": choice.zone, "capacity-type": choice.capacity_type.karpenter(),
        "allocatable": allocatable}));
    events::record(
        &ctx.client,
        claim,
        Kind::Normal,
        "Launched",
        "Status condition transitioned, Type: Launched, Status: Unknown -> True, Reason: Launched",
        &ctx.source(),
    );
}

/// `"45s"`, `"2m"`, `"1m30s"`, `"500ms"` → a duration (Go's `time.ParseDuration` subset
/// NodePools use); `None` for `Never` or anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    sparkyard_provisioning::pool::parse_duration(text)
        .ok()
        .flatten()
}

/// `status.capacity` and `status.allocatable` of a NodeClaim for an instance type.
fn resource_lists(it: &catalog::InstanceType) -> (Value, Value) {
    let list = |r: catalog::NodeResources| {
        json!({"cpu": format!("{}m", r.cpu_millis), "memory": format!("{}Ki", r.memory_bytes / 1024),
            "pods": r.pods.to_string(), "ephemeral-storage": format!("{}Ki", r.ephemeral_bytes / 1024)})
    };
    (list(it.capacity()), list(it.allocatable()))
}

fn register(ctx: &Context, claim: &Value, node: &Value) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let node_name = node["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sync_taints = node["metadata"]["labels"]["karpenter.sh/do-not-sync-taints"] != "true";
    let claim_labels = claim["metadata"]["labels"].clone();
    let claim_taints = claim["spec"]["taints"].clone();
    let claim_name = name.to_string();
    let claim_uid = claim["metadata"]["uid"].clone();
    let synced = ctx.client.modify(NODES, "", &node_name, sparkyard_kube_apiserver::Subresource::Main, |n| {
        for (k, v) in claim_labels.as_object().into_iter().flatten() {
            n["metadata"]["labels"][k] = v.clone();
        }
        n["metadata"]["labels"][crate::LABEL_REGISTERED] = json!("true");
        // The node is owned by its claim, so deleting the claim's owner chain reaches it.
        n["metadata"]["ownerReferences"] = json!([{"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "name": claim_name, "uid": claim_uid, "blockOwnerDeletion": true}]);
        let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        let mut kept: Vec<Value> = taints.into_iter().filter(|t| t["key"] != crate::UNREGISTERED_TAINT).collect();
        if sync_taints {
            for t in claim_taints.as_array().into_iter().flatten() {
                if !kept.iter().any(|k| k["key"] == t["key"] && k["effect"] == t["effect"]) {
                    kept.push(t.clone());
                }
            }
        }
        if kept.is_empty() {
            if let Some(spec) = n["spec"].as_object_mut() {
                spec.remove("taints");
            }
        } else {
            n["spec"]["taints"] = json!(kept);
        }
        Ok(())
    });
    if let Err(e) = synced {
        tracing::debug!(error = %e, "karpenter: cannot sync node");
        return;
    }
    let provider_id = claim["status"]["providerID"].clone();
    let node_for_status = node_name.clone();
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        c["status"]["nodeName"] = json!(node_for_status);
        set_condition(c, "Registered", true, "Registered", "");
        Ok(())
    });
    let pool = pool_name(claim);
    ctx.metrics
        .nodes_created
        .get_or_create(&crate::metrics::pool(&pool))
        .inc();
    ctx.log.info(CONTROLLER, "registered nodeclaim", json!({"NodeClaim": {"name": name}, "provider-id": provider_id, "Node": {"name": node_name}}));
}

fn initialize(ctx: &Context, claim: &Value, node: &Value) {
    let name = claim["metadata"]["name"].as_str().unwrap_or_default();
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let startup: Vec<Taint> = Taint::list_from_json(&claim["spec"]["startupTaints"]);
    let node_taints = Taint::list_from_json(&node["spec"]["taints"]);
    let startup_left = startup.iter().any(|s| {
        node_taints
            .iter()
            .any(|t| t.key == s.key && t.effect == s.effect)
    });
    if !ready || startup_left {
        return;
    }
    let node_name = node["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let _ = ctx.client.modify(
        NODES,
        "",
        &node_name,
        sparkyard_kube_apiserver::Subresource::Main,
        |n| {
            n["metadata"]["labels"][crate::LABEL_INITIALIZED] = json!("true");
            Ok(())
        },
    );
    let _ = ctx.client.update_status(NODECLAIMS, "", name, |c| {
        set_condition(c, "Initialized", true, "Initialized", "");
        set_condition(c, "Ready", true, "Ready", "");
        Ok(())
    });
    ctx.log.info(CONTROLLER, "initialized nodeclaim", json!({"NodeClaim": {"name": name},
        "provider-id": claim["status"]["providerID"], "Node": {"name": node_name}, "allocatable": node["status"]["allocatable"]}));
}

/// The capacity type a claim launched with (from its label).
pub fn capacity_type(claim: &Value) -> CapacityType {
    if claim["metadata"]["labels"][crate::LABEL_CAPACITY_TYPE] == "spot" {
        CapacityType::Spot
    } else {
        CapacityType::OnDemand
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("720h"),
            Some(Duration::from_secs(720 * 3600))
        );
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("Never"), None);
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn zone_ids() {
        assert_eq!(zone_id("us-east-2a"), "use2-az1");
        assert_eq!(zone_id("us-east-2c"), "use2-az3");
    }
}
