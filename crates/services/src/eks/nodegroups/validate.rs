//! The checks EKS makes of `CreateNodegroup` and `UpdateNodegroupConfig` bodies, with its
//! messages, as pure functions: each returns the new record (or the changes) or the
//! message of an `InvalidParameterException`.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::model::{EksTaint, NodeGroupRecord, Scaling, Status};

/// Largest `maxSize` accepted (EKS's per-group node quota is lower; sparkyard's bound only
/// stops a typo from asking for a million instances).
pub const MAX_NODES: u32 = 1000;
const MAX_TAINTS: usize = 50;
const MAX_TAGS: usize = 50;
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.medium";
const AMI_TYPES: &[&str] = &[
    "AL2_x86_64",
    "AL2023_x86_64_STANDARD",
    "BOTTLEROCKET_x86_64",
];
const TAINT_EFFECTS: &[&str] = &["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"];

/// What the request's cluster contributes to a new group.
pub struct ClusterCtx<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub region: &'a str,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScalingInput {
    min_size: Option<i64>,
    max_size: Option<i64>,
    desired_size: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct TaintInput {
    key: Option<String>,
    value: Option<String>,
    effect: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UpdateConfigInput {
    max_unavailable: Option<i64>,
    max_unavailable_percentage: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    nodegroup_name: Option<String>,
    scaling_config: Option<ScalingInput>,
    disk_size: Option<i64>,
    subnets: Option<Vec<String>>,
    instance_types: Option<Vec<String>>,
    ami_type: Option<String>,
    node_role: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    taints: Option<Vec<TaintInput>>,
    tags: Option<BTreeMap<String, String>>,
    update_config: Option<UpdateConfigInput>,
    capacity_type: Option<String>,
    version: Option<String>,
    release_version: Option<String>,
    /// Not an EKS member: the zones of an eksctl `availabilityZones` (sparkyard has no
    /// subnets to derive them from). Only the ClusterConfig path sets it.
    #[serde(rename = "sparkyardZones")]
    zones: Option<Vec<String>>,
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &Value) -> Result<T, String> {
    if body.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(body.clone()).map_err(|e| format!("Invalid request body: {e}"))
}

/// `CreateNodegroup`: the new record (status CREATING).
pub fn create(body: &Value, cluster: &ClusterCtx<'_>) -> Result<NodeGroupRecord, String> {
    let input: CreateInput = parse(body)?;
    let name = input.nodegroup_name.unwrap_or_default();
    nodegroup_name(&name)?;
    let subnets = input.subnets.unwrap_or_default();
    if subnets.is_empty() {
        return Err("Subnets are required".into());
    }
    let node_role = input.node_role.unwrap_or_default();
    if !is_role_arn(&node_role) {
        return Err(format!("Invalid role arn: {node_role}"));
    }
    let scaling = scaling_for_create(input.scaling_config.unwrap_or_default())?;
    let capacity_type = input.capacity_type.unwrap_or_else(|| "ON_DEMAND".into());
    match capacity_type.as_str() {
        "ON_DEMAND" | "SPOT" => {}
        "CAPACITY_BLOCK" => {
            return Err("Capacity type CAPACITY_BLOCK requires a launch template with a capacity reservation, which sparkyard does not have".into())
        }
        other => return Err(format!("Capacity type {other} is not valid. Valid values: ON_DEMAND, SPOT")),
    }
    let instance_types = input
        .instance_types
        .unwrap_or_else(|| vec![DEFAULT_INSTANCE_TYPE.into()]);
    if instance_types.is_empty() {
        return Err("instanceTypes can't be empty".into());
    }
    if capacity_type == "ON_DEMAND" && instance_types.len() > 20 {
        return Err("Maximum of 20 instance types can be specified".into());
    }
    let ami_type = input.ami_type.unwrap_or_else(|| "AL2_x86_64".into());
    if !AMI_TYPES.contains(&ami_type.as_str()) {
        return Err(format!(
            "AMI type {ami_type} is not supported. Supported values: {}",
            AMI_TYPES.join(", ")
        ));
    }
    let version = input.version.unwrap_or_else(|| cluster.version.to_string());
    if version != cluster.version {
        return Err(format!(
            "Requested Nodegroup version {version} is invalid. Allowed values: {}",
            cluster.version
        ));
    }
    let disk_size = match input.disk_size {
        None => 20,
        Some(d) if (1..=16384).contains(&d) => d as u32,
        Some(d) => return Err(format!("Disk size {d} is not valid")),
    };
    let labels = input.labels.unwrap_or_default();
    check_labels(&labels)?;
    let taints = taints(input.taints.unwrap_or_default())?;
    let tags = input.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(format!("Tags can't contain more than {MAX_TAGS} entries"));
    }
    let max_unavailable = update_config(input.update_config)?.unwrap_or(1);
    let zones = input.zones.unwrap_or_else(|| {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{}{z}", cluster.region))
            .collect()
    });
    let now = Utc::now();
    Ok(NodeGroupRecord {
        cluster: cluster.name.to_string(),
        name,
        uuid: uuid::Uuid::new_v4().to_string(),
        release_version: input
            .release_version
            .unwrap_or_else(|| format!("{version}.0-sparkyard")),
        version,
        created_at: now,
        modified_at: now,
        status: Status::Creating,
        capacity_type,
        scaling,
        instance_types,
        subnets,
        ami_type,
        node_role,
        labels,
        taints,
        disk_size,
        tags,
        zones,
        max_unavailable,
        health: Vec::new(),
        update_id: None,
    })
}

/// EKS's node group names: a letter or digit, then letters, digits, `-` and `_`, at most
/// 63 characters.
pub fn nodegroup_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("Nodegroup name {name} is invalid. Nodegroup names must start with a letter or digit, contain only letters, digits, hyphens and underscores, and have at most 63 characters"))
    }
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty())
}

/// EKS's defaults for a missing `scalingConfig` member: min 1, max 2, desired 2 (each
/// kept within what the request gives).
fn scaling_for_create(s: ScalingInput) -> Result<Scaling, String> {
    let min = s.min_size.unwrap_or(1);
    let max = s.max_size.unwrap_or_else(|| min.max(2));
    let desired = s.desired_size.unwrap_or_else(|| 2.clamp(min, max.max(min)));
    check_scaling(min, max, desired, false)
}

/// The bounds EKS enforces. `update`: `UpdateNodegroupConfig` words its messages
/// differently from `CreateNodegroup`, as EKS does.
fn check_scaling(min: i64, max: i64, desired: i64, update: bool) -> Result<Scaling, String> {
    if min < 0 {
        return Err("minSize can't be negative".into());
    }
    if desired < 0 {
        return Err("desiredSize can't be negative".into());
    }
    if max < 1 {
        return Err("maxSize can't be less than 1".into());
    }
    if max > MAX_NODES as i64 {
        return Err(format!("maxSize can't be greater than {MAX_NODES}"));
    }
    if update {
        if min > max {
            return Err(format!(
                "Minimum capacity {min} can't be greater than max size {max}"
            ));
        }
        if min > desired {
            return Err(format!(
                "Minimum capacity {min} can't be greater than desired size {desired}"
            ));
        }
        if desired > max {
            return Err(format!(
                "Desired capacity {desired} can't be greater than max size {max}"
            ));
        }
    } else {
        if min > max {
            return Err("minSize can't be greater than maxSize".into());
        }
        if min > desired {
            return Err("minSize can't be greater than desiredSize".into());
        }
        if desired > max {
            return Err("desiredSize can't be greater than maxSize".into());
        }
    }
    Ok(Scaling {
        min_size: min as u32,
        max_size: max as u32,
        desired_size: desired as u32,
    })
}

/// Kubernetes label syntax (EKS passes labels to the kubelet, which refuses bad ones).
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, value) in labels {
        if !valid_label_key(key) {
            return Err(format!("Label key {key} is not valid"));
        }
        if value.is_empty() || value.len() > 63 || !valid_label_value(value) {
            return Err(format!("Label value {value} for key {key} is not valid"));
        }
    }
    Ok(())
}

fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && valid_name_part(name)
        }
        None => valid_name_part(key),
    }
}

fn valid_label_value(value: &str) -> bool {
    valid_name_part(value)
}

fn taints(input: Vec<TaintInput>) -> Result<Vec<EksTaint>, String> {
    if input.len() > MAX_TAINTS {
        return Err(format!(
            "Nodegroup can't have more than {MAX_TAINTS} taints"
        ));
    }
    let mut out: Vec<EksTaint> = Vec::new();
    for t in input {
        let taint = taint(t)?;
        if out
            .iter()
            .any(|o| o.key == taint.key && o.effect == taint.effect)
        {
            return Err(format!(
                "Duplicate taint with key {} and effect {}",
                taint.key, taint.effect
            ));
        }
        out.push(taint);
    }
    Ok(out)
}

fn taint(t: TaintInput) -> Result<EksTaint, String> {
    let key = t.key.unwrap_or_default();
    if key.is_empty() || key.len() > 63 || !valid_label_key(&key) {
        return Err(format!("Taint key {key} is not valid"));
    }
    let value = t.value.filter(|v| !v.is_empty());
    if let Some(v) = &value {
        if v.len() > 63 || !valid_label_value(v) {
            return Err(format!("Taint value {v} for key {key} is not valid"));
        }
    }
    let effect = t.effect.unwrap_or_default();
    if !TAINT_EFFECTS.contains(&effect.as_str()) {
        return Err(format!(
            "Taint effect {effect} is not valid. Valid values: {}",
            TAINT_EFFECTS.join(", ")
        ));
    }
    Ok(EksTaint { key, value, effect })
}

fn update_config(u: Option<UpdateConfigInput>) -> Result<Option<u32>, String> {
    let Some(u) = u else { return Ok(None) };
    match (u.max_unavailable, u.max_unavailable_percentage) {
        (Some(_), Some(_)) => {
            Err("Only one of maxUnavailable and maxUnavailablePercentage can be specified".into())
        }
        (Some(n), None) if (1..=100).contains(&n) => Ok(Some(n as u32)),
        (Some(n), None) => Err(format!(
            "maxUnavailable {n} is not valid; it must be between 1 and 100"
        )),
        (None, Some(_)) => {
            Err("maxUnavailablePercentage is not supported by sparkyard; use maxUnavailable".into())
        }
        (None, None) => Ok(None),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LabelsPayload {
    add_or_update_labels: Option<BTreeMap<String, String>>,
    remove_labels: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TaintsPayload {
    add_or_update_taints: Option<Vec<TaintInput>>,
    remove_taints: Option<Vec<TaintInput>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    labels: Option<LabelsPayload>,
    taints: Option<TaintsPayload>,
    scaling_config: Option<ScalingInput>,
    update_config: Option<UpdateConfigInput>,
}

/// `UpdateNodegroupConfig`: the record with the changes applied and the update's `params`.
pub fn update(
    current: &NodeGroupRecord,
    body: &Value,
) -> Result<(NodeGroupRecord, Vec<(String, String)>), String> {
    let input: UpdateInput = parse(body)?;
    if input.labels.is_none()
        && input.taints.is_none()
        && input.scaling_config.is_none()
        && input.update_config.is_none()
    {
        return Err("No changes needed".into());
    }
    let mut next = current.clone();
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(s) = input.scaling_config {
        let c = current.scaling;
        let scaling = check_scaling(
            s.min_size.unwrap_or(c.min_size as i64),
            s.max_size.unwrap_or(c.max_size as i64),
            s.desired_size.unwrap_or(c.desired_size as i64),
            true,
        )?;
        for (kind, given, value) in [
            ("MinSize", s.min_size, scaling.min_size),
            ("MaxSize", s.max_size, scaling.max_size),
            ("DesiredSize", s.desired_size, scaling.desired_size),
        ] {
            if given.is_some() {
                params.push((kind.into(), value.to_string()));
            }
        }
        next.scaling = scaling;
    }
    if let Some(l) = input.labels {
        let add = l.add_or_update_labels.unwrap_or_default();
        let remove = l.remove_labels.unwrap_or_default();
        check_labels(&add)?;
        if let Some(both) = remove.iter().find(|k| add.contains_key(*k)) {
            return Err(format!(
                "The label key {both} can't be both added and removed in one update"
            ));
        }
        for key in &remove {
            next.labels.remove(key);
        }
        next.labels.extend(add.clone());
        if !add.is_empty() {
            params.push(("LabelsToAdd".into(), json_string(&add)));
        }
        if !remove.is_empty() {
            params.push(("LabelsToRemove".into(), json_string(&remove)));
        }
    }
    if let Some(t) = input.taints {
        let add = taints(t.add_or_update_taints.unwrap_or_default())?;
        let remove = t
            .remove_taints
            .unwrap_or_default()
            .into_iter()
            .map(taint)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(both) = remove
            .iter()
            .find(|r| add.iter().any(|a| a.key == r.key && a.effect == r.effect))
        {
            return Err(format!(
                "The taint with key {} and effect {} can't be both added and removed in one update",
                both.key, both.effect
            ));
        }
        next.taints.retain(|t| {
            !remove
                .iter()
                .any(|r| r.key == t.key && r.effect == t.effect)
        });
        for a in &add {
            match next
                .taints
                .iter_mut()
                .find(|t| t.key == a.key && t.effect == a.effect)
            {
                Some(existing) => *existing = a.clone(),
                None => next.taints.push(a.clone()),
            }
        }
        if next.taints.len() > MAX_TAINTS {
            return Err(format!(
                "Nodegroup can't have more than {MAX_TAINTS} taints"
            ));
        }
        if !add.is_empty() {
            params.push(("TaintsToAdd".into(), json_string(&add)));
        }
        if !remove.is_empty() {
            params.push(("TaintsToRemove".into(), json_string(&remove)));
        }
    }
    if let Some(n) = update_config(input.update_config)? {
        next.max_unavailable = n;
        params.push(("MaxUnavailable".into(), n.to_string()));
    }
    Ok((next, params))
}

fn json_string<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLUSTER: ClusterCtx<'static> = ClusterCtx {
        name: "eks-emr-cluster",
        version: "1.22",
        region: "us-east-2",
    };

    fn body(extra: Value) -> Value {
        let mut b = json!({"nodegroupName": "ng-1", "subnets": ["subnet-1"],
            "nodeRole": "arn:aws:iam::123456789012:role/NodeRole"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    #[test]
    fn create_fills_eks_defaults() {
        let r = create(&body(json!({})), &CLUSTER).unwrap();
        assert_eq!(
            (
                r.scaling.min_size,
                r.scaling.max_size,
                r.scaling.desired_size
            ),
            (1, 2, 2)
        );
        assert_eq!(r.instance_types, ["t3.medium"]);
        assert_eq!(r.capacity_type, "ON_DEMAND");
        assert_eq!(r.ami_type, "AL2_x86_64");
        assert_eq!(r.disk_size, 20);
        assert_eq!(r.zones, ["us-east-2a", "us-east-2b", "us-east-2c"]);
        assert_eq!(r.status, Status::Creating);
    }

    #[test]
    fn create_refuses_what_eks_refuses() {
        let err = |extra: Value| create(&body(extra), &CLUSTER).unwrap_err();
        assert_eq!(
            err(json!({"scalingConfig": {"minSize": 3, "maxSize": 10, "desiredSize": 1}})),
            "minSize can't be greater than desiredSize"
        );
        assert_eq!(
            err(json!({"scalingConfig": {"minSize": 1, "maxSize": 2, "desiredSize": 3}})),
            "desiredSize can't be greater than maxSize"
        );
        assert!(err(json!({"capacityType": "RESERVED"})).contains("ON_DEMAND, SPOT"));
        assert!(
            err(json!({"taints": [{"key": "a", "effect": "NoSchedule"}]}))
                .starts_with("Taint effect NoSchedule is not valid")
        );
        assert!(err(json!({"nodegroupName": "-bad"})).contains("is invalid"));
        assert!(err(json!({"version": "1.30"})).contains("Allowed values: 1.22"));
        assert_eq!(err(json!({"subnets": []})), "Subnets are required");
    }

    #[test]
    fn update_merges_partial_scaling_labels_and_taints() {
        let mut r = create(
            &body(json!({"labels": {"a": "1", "b": "2"},
                "taints": [{"key": "t", "value": "v", "effect": "NO_SCHEDULE"}]})),
            &CLUSTER,
        )
        .unwrap();
        r.scaling = Scaling {
            min_size: 1,
            max_size: 10,
            desired_size: 1,
        };
        let (next, params) = update(
            &r,
            &json!({"scalingConfig": {"desiredSize": 2},
                "labels": {"addOrUpdateLabels": {"c": "3"}, "removeLabels": ["a"]},
                "taints": {"removeTaints": [{"key": "t", "effect": "NO_SCHEDULE"}],
                           "addOrUpdateTaints": [{"key": "u", "effect": "NO_EXECUTE"}]}}),
        )
        .unwrap();
        assert_eq!(next.scaling.desired_size, 2);
        assert_eq!(next.scaling.max_size, 10);
        assert_eq!(
            next.labels,
            BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
        assert_eq!(next.taints.len(), 1);
        assert_eq!(next.taints[0].key, "u");
        assert_eq!(params[0], ("DesiredSize".into(), "2".into()));
        assert!(params
            .iter()
            .any(|(k, v)| k == "LabelsToRemove" && v == "[\"a\"]"));
        assert_eq!(
            update(&r, &json!({"scalingConfig": {"minSize": 2}})).unwrap_err(),
            "Minimum capacity 2 can't be greater than desired size 1"
        );
        assert_eq!(update(&r, &json!({})).unwrap_err(), "No changes needed");
    }
}
