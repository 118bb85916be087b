//! Pool and node-class status: what `kubectl get nodepools` / `provisioners` /
//! `ec2nodeclasses` show. Pools report the resources of their nodes (`status.resources`,
//! what `limits` are checked against) and their node count; node classes report the
//! subnets, security groups and AMIs they resolved (the embedded VPC's) and `Ready`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sparkyard_instance_types as catalog;
use sparkyard_kube_apiserver::conditions;
use sparkyard_kube_apiserver::registry::{now_rfc3339, Resource};
use sparkyard_scheduling::quantity;

use crate::changes::Changes;
use crate::{
    Context, AWSNODETEMPLATES, EC2NODECLASSES, NODECLAIMS, NODEPOOLS, NODES, PROVISIONERS,
};

pub async fn run(ctx: Arc<Context>) {
    let mut changes = Changes::new(
        &ctx.client,
        &[
            NODES,
            NODECLAIMS,
            NODEPOOLS,
            PROVISIONERS,
            EC2NODECLASSES,
            AWSNODETEMPLATES,
        ],
    );
    loop {
        pools(&ctx);
        node_classes(&ctx);
        changes.wait(Duration::from_secs(10)).await;
    }
}

/// Σ capacity of the pool's claims (cpu, memory, pods, ephemeral-storage) and `nodes`.
pub fn usage(ctx: &Context, label: &str, pool: &str) -> BTreeMap<String, i64> {
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    let (claims, _) = ctx.client.list(NODECLAIMS, None);
    for claim in claims
        .iter()
        .filter(|c| c["metadata"]["labels"][label] == pool)
    {
        *total.entry("nodes".into()).or_default() += 1;
        let capacity = &claim["status"]["capacity"];
        let capacity = if capacity.is_object() {
            capacity.clone()
        } else {
            // Not launched yet: count the largest of its options, as limits do.
            json!({})
        };
        for (k, v) in capacity.as_object().into_iter().flatten() {
            let parsed = match k.as_str() {
                "cpu" => quantity::millis(v.as_str().unwrap_or("0")).ok(),
                _ => quantity::units(v.as_str().unwrap_or("0")).ok(),
            };
            *total.entry(k.clone()).or_default() += parsed.unwrap_or(0);
        }
    }
    total
}

fn render(total: &BTreeMap<String, i64>) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in total {
        let text = match k.as_str() {
            "cpu" if v % 1000 == 0 => (v / 1000).to_string(),
            "cpu" => format!("{v}m"),
            "memory" | "ephemeral-storage" => format!("{}Ki", v / 1024),
            _ => v.to_string(),
        };
        out.insert(k.clone(), json!(text));
    }
    Value::Object(out)
}

fn set_status(ctx: &Context, resource: Resource, name: &str, change: impl Fn(&mut Value)) {
    let _ = ctx.client.update_status(resource, "", name, |o| {
        change(o);
        Ok(())
    });
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, generation: &Value) -> Value {
    json!({"type": kind, "status": if ok {"True"} else {"False"}, "reason": reason, "message": message,
        "lastTransitionTime": now_rfc3339(), "observedGeneration": generation})
}

/// Sets `condition` only when its status or reason changes (so `lastTransitionTime`
/// means what it says and unchanged pools are not rewritten).
fn put_condition(object: &mut Value, c: Value) {
    let same = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|old| {
            old["type"] == c["type"]
                && old["status"] == c["status"]
                && old["reason"] == c["reason"]
                && old["observedGeneration"] == c["observedGeneration"]
        });
    if !same {
        conditions::set(object, c);
    }
}

fn pools(ctx: &Context) {
    let (classes, _) = ctx.client.list(EC2NODECLASSES, None);
    let (nodepools, _) = ctx.client.list(NODEPOOLS, None);
    for pool in nodepools {
        let name = pool["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let generation = pool["metadata"]["generation"].clone();
        let total = usage(ctx, crate::LABEL_NODEPOOL, &name);
        let class = pool["spec"]["template"]["spec"]["nodeClassRef"]["name"]
            .as_str()
            .unwrap_or_default();
        let class_ready = classes.iter().any(|c| c["metadata"]["name"] == class);
        set_status(ctx, NODEPOOLS, &name, |p| {
            p["status"]["resources"] = render(&total);
            p["status"]["nodes"] = json!(total.get("nodes").copied().unwrap_or(0));
            put_condition(
                p,
                condition(
                    "ValidationSucceeded",
                    true,
                    "ValidationSucceeded",
                    "",
                    &generation,
                ),
            );
            put_condition(
                p,
                if class_ready {
                    condition("NodeClassReady", true, "NodeClassReady", "", &generation)
                } else {
                    condition(
                        "NodeClassReady",
                        false,
                        "NodeClassNotFound",
                        &format!("EC2NodeClass {class:?} not found"),
                        &generation,
                    )
                },
            );
            put_condition(
                p,
                if class_ready {
                    condition("Ready", true, "Ready", "", &generation)
                } else {
                    condition(
                        "Ready",
                        false,
                        "NodeClassNotReady",
                        "NodeClassReady=False",
                        &generation,
                    )
                },
            );
        });
        record_usage(ctx, &name, &total, &pool["spec"]["limits"]);
    }
    let (provisioners, _) = ctx.client.list(PROVISIONERS, None);
    for p in provisioners {
        let name = p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let generation = p["metadata"]["generation"].clone();
        let total = usage(ctx, crate::LABEL_PROVISIONER, &name);
        set_status(ctx, PROVISIONERS, &name, |o| {
            let mut resources = total.clone();
            resources.remove("nodes");
            o["status"]["resources"] = render(&resources);
            put_condition(o, condition("Active", true, "Active", "", &generation));
        });
        record_usage(ctx, &name, &total, &p["spec"]["limits"]["resources"]);
    }
}

fn record_usage(ctx: &Context, pool: &str, total: &BTreeMap<String, i64>, limits: &Value) {
    for (k, v) in total {
        let value = if k == "cpu" {
            *v as f64 / 1000.0
        } else {
            *v as f64
        };
        ctx.metrics
            .nodepool_usage
            .get_or_create(&crate::metrics::UsageLabels {
                nodepool: pool.into(),
                resource_type: k.clone(),
            })
            .set(value);
    }
    for (k, v) in limits.as_object().into_iter().flatten() {
        let text = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        let value = if k == "cpu" {
            quantity::millis(&text).map(|m| m as f64 / 1000.0)
        } else {
            quantity::units(&text).map(|u| u as f64)
        };
        if let Ok(value) = value {
            ctx.metrics
                .nodepool_limit
                .get_or_create(&crate::metrics::UsageLabels {
                    nodepool: pool.into(),
                    resource_type: k.clone(),
                })
                .set(value);
        }
    }
}

/// The embedded VPC: one subnet and one security group per zone of the region.
fn node_classes(ctx: &Context) {
    let zones = catalog::zones(&ctx.config.region);
    let subnets: Vec<Value> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| json!({"id": format!("subnet-0sparkyard{i:07x}"), "zone": z, "zoneID": crate::lifecycle::zone_id(z)}))
        .collect();
    let groups = json!([{"id": "sg-0sparkyard0000001", "name": format!("eks-cluster-sg-{}", ctx.config.cluster_name)}]);
    let amis = json!([{"id": "ami-0sparkyard0al2023", "name": "amazon-eks-node-al2023-x86_64-standard",
        "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]);
    let (classes, _) = ctx.client.list(EC2NODECLASSES, None);
    for class in classes {
        let name = class["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let generation = class["metadata"]["generation"].clone();
        let profile = class["spec"]["instanceProfile"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| {
                format!(
                    "{}_{}",
                    ctx.config.cluster_name,
                    class["spec"]["role"].as_str().unwrap_or("")
                )
            });
        set_status(ctx, EC2NODECLASSES, &name, |c| {
            c["status"]["subnets"] = json!(subnets);
            c["status"]["securityGroups"] = groups.clone();
            c["status"]["amis"] = amis.clone();
            c["status"]["instanceProfile"] = json!(profile);
            for kind in [
                "SubnetsReady",
                "SecurityGroupsReady",
                "AMIsReady",
                "InstanceProfileReady",
                "ValidationSucceeded",
                "Ready",
            ] {
                put_condition(c, condition(kind, true, kind, "", &generation));
            }
        });
    }
    let (templates, _) = ctx.client.list(AWSNODETEMPLATES, None);
    for t in templates {
        let name = t["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        set_status(ctx, AWSNODETEMPLATES, &name, |c| {
            c["status"]["subnets"] = json!(subnets);
            c["status"]["securityGroups"] = groups.clone();
            c["status"]["amis"] = amis.clone();
        });
    }
}
