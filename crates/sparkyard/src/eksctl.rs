//! `sparkyard serve --cluster-config FILE`: the seed's eksctl `ClusterConfig`
//! (`eksctl.io/v1alpha5`), read for what an embedded cluster can honour — the cluster's
//! name, region, version and tags, OIDC, and its managed node groups.
//!
//! The file is walked as YAML rather than deserialized into structs so that every refusal
//! names its field (`managedNodeGroups[0].minSize: …`) and every field sparkyard does not
//! use is named in a warning instead of failing the start: eksctl files carry VPC, IAM and
//! add-on settings that mean nothing here.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use serde_yaml::Value as Yaml;

/// What sparkyard takes from a ClusterConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub name: String,
    pub region: Option<String>,
    pub version: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub with_oidc: bool,
    pub node_groups: Vec<ManagedNodeGroup>,
}

/// One `managedNodeGroups[]` entry, eksctl's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNodeGroup {
    pub name: String,
    pub instance_types: Vec<String>,
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    pub labels: BTreeMap<String, String>,
    /// `(key, value, effect)` with the effect in EKS's spelling (`NO_SCHEDULE`).
    pub taints: Vec<(String, String, String)>,
    pub spot: bool,
    pub zones: Vec<String>,
    pub volume_size: u32,
    pub ami_type: String,
    pub tags: BTreeMap<String, String>,
    pub private_networking: bool,
}

/// eksctl's defaults: `m5.large`, an 80 GiB volume, two nodes.
const DEFAULT_INSTANCE_TYPE: &str = "m5.large";
const DEFAULT_VOLUME_SIZE: u32 = 80;
const DEFAULT_DESIRED: u32 = 2;
const MAX_NODES: u64 = sparkyard_services::eks::nodegroups::validate::MAX_NODES as u64;

/// A parsed file and the fields it ignored.
pub struct Loaded {
    pub config: ClusterConfig,
    pub ignored: Vec<String>,
}

type Map = serde_yaml::Mapping;

/// Walks one mapping: known keys are handed out, the rest are recorded as ignored.
struct Fields<'a> {
    path: String,
    map: Option<&'a Map>,
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    fn new(
        path: &str,
        value: Option<&'a Yaml>,
        known: &'static [&'static str],
    ) -> Result<Self, String> {
        let map = match value {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Mapping(m)) => Some(m),
            Some(_) => return Err(format!("{path}: must be a mapping")),
        };
        Ok(Fields {
            path: path.to_string(),
            map,
            known,
        })
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Yaml> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    fn ignored(&self, out: &mut Vec<String>) {
        for key in self.map.into_iter().flat_map(|m| m.keys()) {
            let name = key.as_str().unwrap_or("?");
            if !self.known.contains(&name) {
                out.push(self.at(name));
            }
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            // `version: 1.22` unquoted is a YAML number.
            Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("{}: must be a string", self.at(key))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(false),
            Some(Yaml::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "{}: must be true or false (got {})",
                self.at(key),
                show(other)
            )),
        }
    }

    fn count(&self, key: &str) -> Result<Option<u32>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Number(n)) if n.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {
                Ok(n.as_u64().map(|n| n as u32))
            }
            Some(other) => Err(format!(
                "{}: must be a non-negative integer (got {})",
                self.at(key),
                show(other)
            )),
        }
    }

    fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        match self.get(key) {
            None => {}
            Some(Yaml::Mapping(m)) => {
                for (k, v) in m {
                    let k = scalar(k)
                        .ok_or_else(|| format!("{}: keys must be strings", self.at(key)))?;
                    let v = scalar(v)
                        .ok_or_else(|| format!("{}.{k}: must be a string", self.at(key)))?;
                    out.insert(k, v);
                }
            }
            Some(_) => return Err(format!("{}: must be a mapping of strings", self.at(key))),
        }
        Ok(out)
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    scalar(v).ok_or_else(|| format!("{}[{i}]: must be a string", self.at(key)))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("{}: must be a list of strings", self.at(key))),
        }
    }
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn show(v: &Yaml) -> String {
    serde_yaml::to_string(v)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses and checks a ClusterConfig. Errors name the field.
pub fn parse(text: &str) -> Result<Loaded, String> {
    let doc: Yaml = serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let mut ignored = Vec::new();
    let top = Fields::new(
        "",
        Some(&doc),
        &[
            "apiVersion",
            "kind",
            "metadata",
            "iam",
            "managedNodeGroups",
            "availabilityZones",
        ],
    )?;
    top.ignored(&mut ignored);
    match top.string("apiVersion")?.as_deref() {
        Some("eksctl.io/v1alpha5") => {}
        other => {
            return Err(format!(
                "apiVersion: must be eksctl.io/v1alpha5 (got {other:?})"
            ))
        }
    }
    match top.string("kind")?.as_deref() {
        Some("ClusterConfig") => {}
        other => return Err(format!("kind: must be ClusterConfig (got {other:?})")),
    }
    let meta = Fields::new(
        "metadata",
        top.get("metadata"),
        &["name", "region", "version", "tags"],
    )?;
    meta.ignored(&mut ignored);
    let name = meta.string("name")?.ok_or("metadata.name: required")?;
    if !valid_name(&name, 100) {
        return Err(format!("metadata.name: {name:?} is not a valid EKS cluster name (letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters)"));
    }
    let region = meta.string("region")?;
    if let Some(r) = &region {
        let ok = r.split('-').count() >= 3
            && r.ends_with(|c: char| c.is_ascii_digit())
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "metadata.region: {r:?} is not an AWS region (such as us-east-2)"
            ));
        }
    }
    let version = meta.string("version")?;
    if let Some(v) = &version {
        let ok = v.split_once('.').is_some_and(|(a, b)| {
            a == "1" && !b.is_empty() && b.chars().all(|c| c.is_ascii_digit())
        });
        if !ok {
            return Err(format!(
                "metadata.version: {v:?} is not a Kubernetes version such as \"1.22\""
            ));
        }
    }
    let tags = meta.string_map("tags")?;
    let iam = Fields::new("iam", top.get("iam"), &["withOIDC"])?;
    iam.ignored(&mut ignored);
    let with_oidc = iam.bool("withOIDC")?;
    let default_zones = top.strings("availabilityZones")?;
    let region_for_zones = region.clone();

    let mut node_groups: Vec<ManagedNodeGroup> = Vec::new();
    match top.get("managedNodeGroups") {
        None => {}
        Some(Yaml::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                let ng = node_group(
                    &format!("managedNodeGroups[{i}]"),
                    item,
                    default_zones.as_deref(),
                    region_for_zones.as_deref(),
                    &mut ignored,
                )?;
                if let Some(j) = node_groups.iter().position(|o| o.name == ng.name) {
                    return Err(format!(
                        "managedNodeGroups[{i}].name: {:?} is used by managedNodeGroups[{j}] too",
                        ng.name
                    ));
                }
                node_groups.push(ng);
            }
        }
        Some(_) => return Err("managedNodeGroups: must be a list".into()),
    }
    Ok(Loaded {
        config: ClusterConfig {
            name,
            region,
            version,
            tags,
            with_oidc,
            node_groups,
        },
        ignored,
    })
}

fn node_group(
    path: &str,
    value: &Yaml,
    default_zones: Option<&[String]>,
    region: Option<&str>,
    ignored: &mut Vec<String>,
) -> Result<ManagedNodeGroup, String> {
    let f = Fields::new(
        path,
        Some(value),
        &[
            "name",
            "instanceType",
            "instanceTypes",
            "desiredCapacity",
            "minSize",
            "maxSize",
            "labels",
            "taints",
            "spot",
            "availabilityZones",
            "volumeSize",
            "tags",
            "privateNetworking",
            "amiFamily",
        ],
    )?;
    f.ignored(ignored);
    let name = f
        .string("name")?
        .ok_or_else(|| format!("{path}.name: required"))?;
    if !valid_name(&name, 63) {
        return Err(format!("{path}.name: {name:?} is not a valid node group name (letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters)"));
    }
    let instance_types = match (f.string("instanceType")?, f.strings("instanceTypes")?) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{path}: instanceType and instanceTypes cannot be set together"
            ))
        }
        (Some(t), None) => vec![t],
        (None, Some(ts)) if ts.is_empty() => {
            return Err(format!("{path}.instanceTypes: must not be empty"))
        }
        (None, Some(ts)) => ts,
        (None, None) => vec![DEFAULT_INSTANCE_TYPE.to_string()],
    };
    let given_desired = f.count("desiredCapacity")?;
    let given_min = f.count("minSize")?;
    let given_max = f.count("maxSize")?;
    let desired = given_desired.or(given_min).unwrap_or(DEFAULT_DESIRED);
    let min = given_min.unwrap_or(desired);
    let max = given_max.unwrap_or(desired.max(min));
    if min > desired {
        return Err(format!(
            "{path}.minSize: must be ≤ desiredCapacity (got {min} > {desired})"
        ));
    }
    if max < desired {
        return Err(format!(
            "{path}.maxSize: must be ≥ desiredCapacity (got {max} < {desired})"
        ));
    }
    if max < 1 {
        return Err(format!("{path}.maxSize: must be at least 1"));
    }
    if max as u64 > MAX_NODES {
        return Err(format!("{path}.maxSize: must be ≤ {MAX_NODES} (got {max})"));
    }
    let labels = f.string_map("labels")?;
    let taints = taints(&format!("{path}.taints"), f.get("taints"))?;
    let zones = match f.strings("availabilityZones")? {
        Some(z) => z,
        None => default_zones.map(<[String]>::to_vec).unwrap_or_default(),
    };
    if let Some(region) = region {
        if let Some(bad) = zones.iter().position(|z| !z.starts_with(region)) {
            return Err(format!(
                "{path}.availabilityZones[{bad}]: {:?} is not a zone of region {region}",
                zones[bad]
            ));
        }
    }
    let volume_size = match f.count("volumeSize")? {
        Some(0) => return Err(format!("{path}.volumeSize: must be at least 1")),
        Some(n) => n,
        None => DEFAULT_VOLUME_SIZE,
    };
    let ami_type = match f.string("amiFamily")?.as_deref() {
        None | Some("AmazonLinux2") => "AL2_x86_64",
        Some("AmazonLinux2023") => "AL2023_x86_64_STANDARD",
        Some("Bottlerocket") => "BOTTLEROCKET_x86_64",
        Some(other) => {
            return Err(format!(
                "{path}.amiFamily: {other:?} is not supported (AmazonLinux2, AmazonLinux2023, Bottlerocket)"
            ))
        }
    }
    .to_string();
    Ok(ManagedNodeGroup {
        name,
        instance_types,
        desired,
        min,
        max,
        labels,
        taints,
        spot: f.bool("spot")?,
        zones,
        volume_size,
        ami_type,
        tags: f.string_map("tags")?,
        private_networking: f.bool("privateNetworking")?,
    })
}

/// eksctl's two forms: a list of `{key, value, effect}`, or a map `key: "value:Effect"`.
fn taints(path: &str, value: Option<&Yaml>) -> Result<Vec<(String, String, String)>, String> {
    let effect = |at: &str, e: &str| -> Result<String, String> {
        match e {
            "NoSchedule" => Ok("NO_SCHEDULE".into()),
            "NoExecute" => Ok("NO_EXECUTE".into()),
            "PreferNoSchedule" => Ok("PREFER_NO_SCHEDULE".into()),
            other => Err(format!(
                "{at}: must be NoSchedule, NoExecute or PreferNoSchedule (got {other:?})"
            )),
        }
    };
    let mut out = Vec::new();
    match value {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                let t = Fields::new(
                    &format!("{path}[{i}]"),
                    Some(item),
                    &["key", "value", "effect"],
                )?;
                let key = t
                    .string("key")?
                    .ok_or_else(|| format!("{path}[{i}].key: required"))?;
                let value = t.string("value")?.unwrap_or_default();
                let e = t.string("effect")?.unwrap_or_default();
                out.push((key, value, effect(&format!("{path}[{i}].effect"), &e)?));
            }
        }
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let key = scalar(k).unwrap_or_default();
                let text = scalar(v).unwrap_or_default();
                let (value, e) = text.rsplit_once(':').unwrap_or(("", text.as_str()));
                out.push((
                    key.clone(),
                    value.to_string(),
                    effect(&format!("{path}.{key}"), e)?,
                ));
            }
        }
        Some(_) => {
            return Err(format!(
                "{path}: must be a list of {{key, value, effect}} or a mapping"
            ))
        }
    }
    Ok(out)
}

/// A deterministic subnet id per zone: eksctl would create one; sparkyard names it.
fn subnet_id(cluster: &str, zone: &str, private: bool) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{cluster}/{zone}/{private}").bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("subnet-{:017x}", h)
}

impl ManagedNodeGroup {
    /// The `CreateNodegroup` body eksctl would send for this entry (with the labels and
    /// tags eksctl adds), plus sparkyard's `sparkyardZones` for the zones.
    pub fn create_body(&self, cluster: &ClusterConfig, account_id: &str, region: &str) -> Value {
        let zones: Vec<String> = if self.zones.is_empty() {
            ["a", "b", "c"]
                .iter()
                .map(|z| format!("{region}{z}"))
                .collect()
        } else {
            self.zones.clone()
        };
        let subnets: Vec<String> = zones
            .iter()
            .map(|z| subnet_id(&cluster.name, z, self.private_networking))
            .collect();
        let mut labels = self.labels.clone();
        labels.insert("alpha.eksctl.io/cluster-name".into(), cluster.name.clone());
        labels.insert("alpha.eksctl.io/nodegroup-name".into(), self.name.clone());
        let mut tags = cluster.tags.clone();
        tags.extend(self.tags.clone());
        tags.insert("alpha.eksctl.io/nodegroup-name".into(), self.name.clone());
        tags.insert("alpha.eksctl.io/nodegroup-type".into(), "managed".into());
        tags.insert("alpha.eksctl.io/cluster-name".into(), cluster.name.clone());
        let taints: Vec<Value> = self
            .taints
            .iter()
            .map(|(k, v, e)| json!({"key": k, "value": v, "effect": e}))
            .collect();
        json!({
            "nodegroupName": self.name,
            "scalingConfig": {"minSize": self.min, "maxSize": self.max, "desiredSize": self.desired},
            "diskSize": self.volume_size,
            "subnets": subnets,
            "instanceTypes": self.instance_types,
            "amiType": self.ami_type,
            "nodeRole": format!("arn:aws:iam::{account_id}:role/eksctl-{}-nodegroup-{}-NodeInstanceRole", cluster.name, self.name),
            "labels": labels,
            "taints": taints,
            "tags": tags,
            "capacityType": if self.spot { "SPOT" } else { "ON_DEMAND" },
            "sparkyardZones": zones,
        })
    }
}

/// The node the control plane's own pods show on when node groups provide all the
/// capacity (a ClusterConfig without `[[cluster.nodes]]`): in-process components such as
/// Karpenter's controller appear as mirror pods bound to it. It is simulated (runs
/// nothing), small, belongs to no node group and carries the control-plane taint, so no
/// workload is ever scheduled there; the cluster needs at least one node, and this one
/// never goes away when a node group scales to zero.
pub fn control_plane_node(region: &str) -> sparkyard_cluster::scheduling::NodeConfig {
    use sparkyard_cluster::scheduling::node::{CapacityConfig, NodeConfig, Taint, TaintEffect};
    const ROLE: &str = "node-role.kubernetes.io/control-plane";
    NodeConfig {
        name: "sparkyard-control-plane".into(),
        instance_type: "m5.large".into(),
        zone: format!("{region}a"),
        nodegroup: None,
        cpu: "1930m".into(),
        memory: "7220184Ki".into(),
        pods: 29,
        capacity: Some(CapacityConfig {
            cpu: Some("2".into()),
            memory: Some("7910360Ki".into()),
            pods: Some(29),
            ephemeral_storage: Some("83873772Ki".into()),
        }),
        labels: [(ROLE.to_string(), String::new())].into(),
        taints: vec![Taint {
            key: ROLE.into(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        }],
        simulated: true,
        ..NodeConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../docs/examples/eks-emr-cluster.yaml");

    #[test]
    fn the_example_is_the_seeds_cluster() {
        let loaded = parse(SEED).unwrap();
        let c = &loaded.config;
        assert_eq!(c.name, "eks-emr-cluster");
        assert_eq!(c.region.as_deref(), Some("us-east-2"));
        assert!(c.with_oidc);
        assert_eq!(c.tags["karpenter.sh/discovery"], "eks-emr-cluster");
        let ng = &c.node_groups[0];
        assert_eq!(ng.instance_types, ["m5.2xlarge"]);
        assert_eq!((ng.min, ng.desired, ng.max), (1, 1, 10));
        assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
        let body = ng.create_body(c, "123456789012", "us-east-2");
        assert_eq!(
            body["labels"]["alpha.eksctl.io/nodegroup-name"],
            ng.name.as_str()
        );
        assert_eq!(body["capacityType"], "ON_DEMAND");
        assert_eq!(body["subnets"].as_array().unwrap().len(), 3);
    }

    fn with_group(group: &str) -> String {
        format!("apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  name: c\n  region: us-east-2\nmanagedNodeGroups:\n{group}")
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |g: &str| parse(&with_group(g)).err().unwrap();
        assert_eq!(
            err("- name: ng\n  desiredCapacity: 1\n  minSize: 3\n  maxSize: 5\n"),
            "managedNodeGroups[0].minSize: must be ≤ desiredCapacity (got 3 > 1)"
        );
        assert_eq!(
            err("- name: ng\n  taints:\n  - {key: a, value: b, effect: NoWay}\n"),
            "managedNodeGroups[0].taints[0].effect: must be NoSchedule, NoExecute or PreferNoSchedule (got \"NoWay\")"
        );
        assert!(err("- name: ng\n  instanceType: a\n  instanceTypes: [b]\n")
            .contains("cannot be set together"));
        assert!(err("- name: ng\n  minSize: -1\n")
            .starts_with("managedNodeGroups[0].minSize: must be a non-negative integer"));
        assert!(err("- name: ng\n- name: ng\n").contains("managedNodeGroups[1].name"));
        assert!(parse("apiVersion: v1\nkind: ClusterConfig\n")
            .err()
            .unwrap()
            .starts_with("apiVersion:"));
    }

    #[test]
    fn defaults_map_form_taints_and_ignored_fields() {
        let text = with_group("- name: ng\n  spot: true\n  instanceTypes: [m5.xlarge, m5a.xlarge]\n  taints:\n    dedicated: \"spark:NoSchedule\"\n  ssh: {allow: true}\n")
            + "vpc:\n  cidr: 10.0.0.0/16\n";
        let loaded = parse(&text).unwrap();
        let ng = &loaded.config.node_groups[0];
        assert_eq!((ng.min, ng.desired, ng.max), (2, 2, 2));
        assert_eq!(
            ng.taints,
            [("dedicated".into(), "spark".into(), "NO_SCHEDULE".into())]
        );
        assert!(ng.spot);
        assert_eq!(loaded.ignored, ["vpc", "managedNodeGroups[0].ssh"]);
    }
}
