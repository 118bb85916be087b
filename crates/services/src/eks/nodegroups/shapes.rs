//! The response shapes (botocore's `Nodegroup` and `Update`), pure.

use serde_json::{json, Map, Value};

use super::model::{NodeGroupRecord, UpdateRecord};

fn epoch(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

pub fn nodegroup_arn(region: &str, account: &str, r: &NodeGroupRecord) -> String {
    format!(
        "arn:aws:eks:{region}:{account}:nodegroup/{}/{}/{}",
        r.cluster, r.name, r.uuid
    )
}

/// `Nodegroup`.
pub fn nodegroup(region: &str, account: &str, r: &NodeGroupRecord) -> Value {
    let taints: Vec<Value> = r
        .taints
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("key".into(), json!(t.key));
            if let Some(v) = &t.value {
                o.insert("value".into(), json!(v));
            }
            o.insert("effect".into(), json!(t.effect));
            Value::Object(o)
        })
        .collect();
    let issues: Vec<Value> = r
        .health
        .iter()
        .map(|i| json!({"code": i.code, "message": i.message, "resourceIds": i.resource_ids}))
        .collect();
    json!({
        "nodegroupName": r.name,
        "nodegroupArn": nodegroup_arn(region, account, r),
        "clusterName": r.cluster,
        "version": r.version,
        "releaseVersion": r.release_version,
        "createdAt": epoch(r.created_at),
        "modifiedAt": epoch(r.modified_at),
        "status": r.status.as_str(),
        "capacityType": r.capacity_type,
        "scalingConfig": {
            "minSize": r.scaling.min_size,
            "maxSize": r.scaling.max_size,
            "desiredSize": r.scaling.desired_size,
        },
        "instanceTypes": r.instance_types,
        "subnets": r.subnets,
        "amiType": r.ami_type,
        "nodeRole": r.node_role,
        "labels": r.labels,
        "taints": taints,
        "resources": { "autoScalingGroups": [{ "name": r.asg_name() }] },
        "diskSize": r.disk_size,
        "health": { "issues": issues },
        "updateConfig": { "maxUnavailable": r.max_unavailable },
        "tags": r.tags,
    })
}

/// `Update`.
pub fn update(u: &UpdateRecord) -> Value {
    let params: Vec<Value> = u
        .params
        .iter()
        .map(|(t, v)| json!({"type": t, "value": v}))
        .collect();
    let errors: Vec<Value> = u
        .errors
        .iter()
        .map(|m| json!({"errorCode": "Unknown", "errorMessage": m, "resourceIds": [u.nodegroup]}))
        .collect();
    json!({
        "id": u.id,
        "status": u.status,
        "type": u.kind,
        "params": params,
        "createdAt": epoch(u.created_at),
        "errors": errors,
    })
}
