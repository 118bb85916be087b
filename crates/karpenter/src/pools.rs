//! Pools as the provisioner sees them: every v1alpha5 Provisioner and v1 NodePool that is
//! not being deleted (and, for a NodePool, whose EC2NodeClass exists — a NodePool that is
//! not Ready is skipped, as Karpenter skips it), read into the pure model.

use std::sync::Arc;

use serde_json::{json, Value};
use sparkyard_provisioning::{NodePoolSpec, PoolApi};

use crate::{Context, AWSNODETEMPLATES, EC2NODECLASSES, NODEPOOLS, PROVISIONERS};

pub fn ready_pools(ctx: &Context) -> Vec<(NodePoolSpec, Arc<Value>)> {
    let mut pools = Vec::new();
    let (provisioners, _) = ctx.client.list(PROVISIONERS, None);
    for p in provisioners
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    {
        pools.push((NodePoolSpec::from_provisioner(&p), p));
    }
    let (nodepools, _) = ctx.client.list(NODEPOOLS, None);
    for p in nodepools
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    {
        let class = p["spec"]["template"]["spec"]["nodeClassRef"]["name"]
            .as_str()
            .unwrap_or_default();
        if ctx.client.get(EC2NODECLASSES, "", class).is_none() {
            continue;
        }
        pools.push((NodePoolSpec::from_nodepool(&p), p));
    }
    pools.sort_by(|a, b| sparkyard_provisioning::pool::pool_order(&a.0, &b.0));
    pools
}

/// The pool of a NodeClaim or node (by its `karpenter.sh/nodepool` or
/// `karpenter.sh/provisioner-name` label).
pub fn pool_of<'a>(
    pools: &'a [(NodePoolSpec, Arc<Value>)],
    object: &Value,
) -> Option<&'a (NodePoolSpec, Arc<Value>)> {
    let labels = &object["metadata"]["labels"];
    pools
        .iter()
        .find(|(p, _)| labels[p.pool_label()] == p.name.as_str())
}

/// `nodeClassRef` kind and name: the EC2NodeClass (v1), the AWSNodeTemplate a
/// Provisioner's `providerRef` names, or — for an inline `provider` — the Provisioner's
/// own name under the AWSNodeTemplate kind (the v1 migration turns it into one).
pub fn node_class_ref(pool: &NodePoolSpec, object: &Value) -> (&'static str, String) {
    match pool.api {
        PoolApi::V1 => ("EC2NodeClass", pool.node_class.clone().unwrap_or_default()),
        PoolApi::V1Alpha5 => (
            "AWSNodeTemplate",
            object["spec"]["providerRef"]["name"]
                .as_str()
                .unwrap_or(&pool.name)
                .to_string(),
        ),
    }
}

/// The EC2 tags the pool's node class asks for (`tags`).
pub fn node_class_tags(ctx: &Context, pool: &NodePoolSpec, object: &Value) -> Option<Value> {
    let tags = match pool.api {
        PoolApi::V1 => ctx
            .client
            .get(EC2NODECLASSES, "", pool.node_class.as_deref()?)?["spec"]["tags"]
            .clone(),
        PoolApi::V1Alpha5 => match object["spec"]["providerRef"]["name"].as_str() {
            Some(name) => ctx.client.get(AWSNODETEMPLATES, "", name)?["spec"]["tags"].clone(),
            None => object["spec"]["provider"]["tags"].clone(),
        },
    };
    tags.is_object().then(|| json!(tags))
}

/// One pod per DaemonSet, from its template: the overhead Karpenter reserves on every node
/// it launches (a DaemonSet whose template cannot run on a pool's nodes adds nothing there;
/// `provisioning` decides that).
pub fn daemonset_pods(ctx: &Context) -> Vec<sparkyard_scheduling::PodRequirements> {
    let (sets, _) = ctx.client.list(crate::DAEMON_SETS, None);
    sets.iter()
        .filter(|ds| ds["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|ds| {
            let pod = serde_json::json!({
                "metadata": {
                    "name": ds["metadata"]["name"],
                    "namespace": ds["metadata"]["namespace"],
                    "labels": ds["spec"]["template"]["metadata"]["labels"],
                },
                "spec": ds["spec"]["template"]["spec"],
            });
            sparkyard_scheduling::PodRequirements::from_pod(&pod).ok()
        })
        .collect()
}
