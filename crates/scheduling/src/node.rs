//! Nodes: the `[[cluster.nodes]]` configuration, the Node object built from it, and
//! [`NodeInfo`], the parsed view the scheduler keeps per node.
//!
//! # The default node: the seed's node group, one `m5.2xlarge`
//!
//! Numbers are what an EKS-optimized Amazon Linux node of that shape reports:
//!
//! | | capacity | allocatable | why |
//! |---|---|---|---|
//! | cpu | `8` | `7910m` | kube-reserved CPU on the EKS AMI: 6 % of core 1 + 1 % of core 2 + 0.5 % of cores 3–4 + 0.25 % of the rest = 60 + 10 + 10 + 10 = 90m |
//! | memory | `32499160Ki` | `31482328Ki` | capacity is the kernel's MemTotal of a 32 GiB instance; kube-reserved = 11 MiB × max-pods + 255 MiB = 893Mi, plus the eviction threshold `memory.available<100Mi` (993Mi = 1016832Ki) |
//! | pods | `58` | `58` | EKS max-pods for m5.2xlarge with the VPC CNI: 4 ENIs × (15 IPv4 − 1) + 2 |
//! | ephemeral-storage | `83873772Ki` | `76224326324` | eksctl's default 80 GiB root volume; kube-reserved 1Gi and `nodefs.available<10%` |
//!
//! These match `kubectl get node -o yaml` of a real 8-vCPU/32-GiB EKS node. Labels are
//! those EKS puts on a managed node group's node (`eks.amazonaws.com/capacityType:
//! ON_DEMAND`, `eks.amazonaws.com/nodegroup`, instance type, zone `us-east-2a`, region,
//! hostname, arch/os and their deprecated beta twins).
//!
//! # Labels by kind of node
//!
//! On AWS only managed node group nodes carry `eks.amazonaws.com/capacityType` and
//! `eks.amazonaws.com/nodegroup`; Karpenter's nodes carry `karpenter.sh/capacity-type`
//! (and `karpenter.sh/nodepool`) instead. The seed's driver template selects
//! `eks.amazonaws.com/capacityType: ON_DEMAND`, so the embedded cluster labels each kind
//! the same way: a node with a `nodegroup` gets the two `eks.amazonaws.com/*` labels and
//! no `karpenter.sh/capacity-type`; a node without one gets neither `eks.amazonaws.com/*`
//! label, and whoever launches it (Karpenter) puts its own labels in `labels`.
//!
//! # Configuration
//!
//! ```toml
//! [[cluster.nodes]]
//! name = "spot-1"
//! instance-type = "m5.4xlarge"      # capacity and allocatable of that type (see below)
//! capacity-type = "spot"            # eks.amazonaws.com/capacityType (node group nodes)
//! nodegroup = "spark-spot"          # eks.amazonaws.com/nodegroup; "" = no node group
//! cpu = "15890m"                    # allocatable; `capacity = { cpu = "16", … }` for status.capacity
//! memory = "63Gi"
//! pods = 234
//! labels = { intent = "emr-job" }   # extra labels, and overrides of the derived ones
//! taints = [{ key = "spot", value = "true", effect = "NoSchedule" }]
//! simulated = true                  # pods bound here run no process (see `simulated`)
//! ```
//!
//! Fields left out take the default node's values, so `[[cluster.nodes]] name = "n2"
//! simulated = true` is a second m5.2xlarge. When an entry names its `instance-type`, the
//! shape fields (`cpu`, `memory`, `pods`, `ephemeral-storage`, `capacity`) it leaves out
//! are recorded in
//! [`NodeConfig::from_instance_type`]: the kubelet fills them from the entry's instance
//! type (its "machine"), which this crate cannot see (the catalog depends on it). A
//! `NodeConfig` built in code takes its fields as given. Any capacity field below
//! allocatable is raised to it.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::quantity;
use super::resources::{self, Resources};

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_KARPENTER_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_EKS_CAPACITY_TYPE: &str = "eks.amazonaws.com/capacityType";
pub const LABEL_EKS_NODEGROUP: &str = "eks.amazonaws.com/nodegroup";
/// Annotation on Node objects built from a `simulated = true` entry.
pub const ANNOTATION_SIMULATED: &str = "sparkyard.dev/simulated";
/// The taint `kubectl cordon` implies; a pod tolerating it may land on a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }

    pub fn parse(text: &str) -> Option<TaintEffect> {
        match text {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    /// A taint as the API shows it (`timeAdded` and other fields are ignored); `None`
    /// without a key or with an effect Kubernetes does not define.
    pub fn from_json(t: &Value) -> Option<Taint> {
        Some(Taint {
            key: t.get("key")?.as_str()?.to_string(),
            value: t
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            effect: TaintEffect::parse(t.get("effect")?.as_str()?)?,
        })
    }

    /// A `taints` list (a node's, a NodePool's), skipping entries [`Taint::from_json`]
    /// cannot read.
    pub fn list_from_json(list: &Value) -> Vec<Taint> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Taint::from_json)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    #[default]
    OnDemand,
    Spot,
}

impl CapacityType {
    /// `karpenter.sh/capacity-type` value.
    pub fn karpenter(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
        }
    }

    /// `eks.amazonaws.com/capacityType` value.
    pub fn eks(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "ON_DEMAND",
            CapacityType::Spot => "SPOT",
        }
    }
}

/// `status.capacity` when it differs from allocatable; absent fields are allocatable's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CapacityConfig {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pods: Option<u32>,
    pub ephemeral_storage: Option<String>,
}

/// The shape fields a `[[cluster.nodes]]` entry left out: the kubelet takes them from the
/// entry's instance type. All `false` (the default) means "as given".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnsetShape {
    pub cpu: bool,
    pub memory: bool,
    pub pods: bool,
    pub ephemeral_storage: bool,
    pub capacity: bool,
}

impl UnsetShape {
    /// Whether anything is left for the instance type to fill.
    pub fn any(&self) -> bool {
        self.cpu || self.memory || self.pods || self.ephemeral_storage || self.capacity
    }
}

/// One `[[cluster.nodes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", from = "NodeEntry")]
pub struct NodeConfig {
    pub name: String,
    pub instance_type: String,
    /// Availability zone; the region label is the zone without its trailing letter.
    pub zone: String,
    pub capacity_type: CapacityType,
    /// `eks.amazonaws.com/nodegroup`; none for nodes that Karpenter would have launched.
    pub nodegroup: Option<String>,
    /// Allocatable CPU (a quantity).
    pub cpu: String,
    /// Allocatable memory (a quantity).
    pub memory: String,
    /// Allocatable pod slots.
    pub pods: u32,
    /// Allocatable ephemeral storage (a quantity).
    pub ephemeral_storage: String,
    pub capacity: Option<CapacityConfig>,
    /// Extended resources (`nvidia.com/gpu = "4"`), capacity and allocatable alike.
    pub extended_resources: BTreeMap<String, String>,
    /// Extra labels; they override the derived ones of the same key.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Pods bound to this node run no process: see [`super::simulated`].
    pub simulated: bool,
    /// `spec.providerID`; by default a stable `aws:///<zone>/i-…` derived from the name.
    /// The embedded EC2 sets its instance's id.
    pub provider_id: Option<String>,
    /// Shape fields the configuration left out (never serialized; see [`UnsetShape`]).
    #[serde(skip)]
    pub from_instance_type: UnsetShape,
}

/// A `[[cluster.nodes]]` entry as written: every field optional, so that the shape fields
/// left out can be told from ones set to the default's values.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct NodeEntry {
    name: Option<String>,
    instance_type: Option<String>,
    zone: Option<String>,
    capacity_type: Option<CapacityType>,
    nodegroup: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    pods: Option<u32>,
    ephemeral_storage: Option<String>,
    capacity: Option<CapacityConfig>,
    extended_resources: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    simulated: bool,
    provider_id: Option<String>,
}

impl From<NodeEntry> for NodeConfig {
    fn from(e: NodeEntry) -> Self {
        let d = NodeConfig::default();
        // Only an entry that names its instance type takes its shape from it; one that
        // does not keeps the default node's (an EKS m5.2xlarge as `kubectl get node`
        // shows it), as before instance types were known.
        let from_instance_type = match e.instance_type {
            Some(_) => UnsetShape {
                cpu: e.cpu.is_none(),
                memory: e.memory.is_none(),
                pods: e.pods.is_none(),
                ephemeral_storage: e.ephemeral_storage.is_none(),
                capacity: e.capacity.is_none(),
            },
            None => UnsetShape::default(),
        };
        NodeConfig {
            name: e.name.unwrap_or(d.name),
            instance_type: e.instance_type.unwrap_or(d.instance_type),
            zone: e.zone.unwrap_or(d.zone),
            capacity_type: e.capacity_type.unwrap_or(d.capacity_type),
            // TOML has no null: `nodegroup = ""` is how an entry leaves the node group.
            nodegroup: match e.nodegroup {
                Some(ng) if ng.is_empty() => None,
                Some(ng) => Some(ng),
                None => d.nodegroup,
            },
            cpu: e.cpu.unwrap_or(d.cpu),
            memory: e.memory.unwrap_or(d.memory),
            pods: e.pods.unwrap_or(d.pods),
            ephemeral_storage: e.ephemeral_storage.unwrap_or(d.ephemeral_storage),
            capacity: e.capacity.or(d.capacity),
            extended_resources: e.extended_resources,
            labels: e.labels,
            taints: e.taints,
            simulated: e.simulated,
            provider_id: e.provider_id,
            from_instance_type,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "sparkyard-node-1".into(),
            instance_type: "m5.2xlarge".into(),
            zone: "us-east-2a".into(),
            capacity_type: CapacityType::OnDemand,
            nodegroup: Some("eks-emr-cluster-ng".into()),
            cpu: "7910m".into(),
            memory: "31482328Ki".into(),
            pods: 58,
            ephemeral_storage: "76224326324".into(),
            capacity: Some(CapacityConfig {
                cpu: Some("8".into()),
                memory: Some("32499160Ki".into()),
                pods: Some(58),
                ephemeral_storage: Some("83873772Ki".into()),
            }),
            extended_resources: BTreeMap::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            simulated: false,
            provider_id: None,
            from_instance_type: UnsetShape::default(),
        }
    }
}

/// The default `cluster.nodes`: the seed's one-node group.
pub fn default_nodes() -> Vec<NodeConfig> {
    vec![NodeConfig::default()]
}

/// A `ResourceList` object (`status.capacity` / `status.allocatable`).
type ResourceList = Map<String, Value>;

fn region_of(zone: &str) -> &str {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase())
}

fn valid_node_name(name: &str) -> bool {
    // A DNS-1123 subdomain, as the API server requires of Node names.
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

impl NodeConfig {
    /// All labels of the Node: well-known ones derived from the fields, then `labels`.
    pub fn all_labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            l.insert(k.to_string(), v.to_string());
        };
        put("kubernetes.io/arch", "amd64");
        put("kubernetes.io/os", "linux");
        put("beta.kubernetes.io/arch", "amd64");
        put("beta.kubernetes.io/os", "linux");
        put(LABEL_HOSTNAME, &self.name);
        if !self.instance_type.is_empty() {
            put(LABEL_INSTANCE_TYPE, &self.instance_type);
            put("beta.kubernetes.io/instance-type", &self.instance_type);
        }
        if !self.zone.is_empty() {
            put(LABEL_ZONE, &self.zone);
            put(LABEL_REGION, region_of(&self.zone));
            put("failure-domain.beta.kubernetes.io/zone", &self.zone);
            put(
                "failure-domain.beta.kubernetes.io/region",
                region_of(&self.zone),
            );
        }
        // Only managed node group nodes carry EKS's labels (see the module docs); a
        // Karpenter node's `karpenter.sh/capacity-type` comes from its launcher's labels.
        if let Some(ng) = &self.nodegroup {
            put(LABEL_EKS_CAPACITY_TYPE, self.capacity_type.eks());
            put(LABEL_EKS_NODEGROUP, ng);
        }
        for (k, v) in &self.labels {
            l.insert(k.clone(), v.clone());
        }
        l
    }

    /// `status.allocatable` and `status.capacity` as ResourceList objects.
    fn resource_lists(&self) -> Result<(ResourceList, ResourceList), String> {
        let cap = self.capacity.clone().unwrap_or_default();
        let bad = |e: quantity::QuantityError| format!("node {}: {e}", self.name);
        // capacity is never below allocatable: raise it where the config says otherwise.
        let pick = |capacity: Option<&String>,
                    alloc: &String,
                    parse: fn(&str) -> Result<i64, quantity::QuantityError>| {
            let a = parse(alloc).map_err(bad)?;
            match capacity {
                Some(c) if parse(c).map_err(bad)? >= a => Ok::<_, String>(c.trim().to_string()),
                _ => Ok(alloc.trim().to_string()),
            }
        };
        let mut allocatable = Map::new();
        let mut capacity = Map::new();
        allocatable.insert(resources::CPU.into(), json!(self.cpu.trim()));
        capacity.insert(
            resources::CPU.into(),
            json!(pick(cap.cpu.as_ref(), &self.cpu, quantity::millis)?),
        );
        allocatable.insert(
            resources::EPHEMERAL_STORAGE.into(),
            json!(self.ephemeral_storage.trim()),
        );
        capacity.insert(
            resources::EPHEMERAL_STORAGE.into(),
            json!(pick(
                cap.ephemeral_storage.as_ref(),
                &self.ephemeral_storage,
                quantity::units
            )?),
        );
        for hp in ["hugepages-1Gi", "hugepages-2Mi"] {
            allocatable.insert(hp.into(), json!("0"));
            capacity.insert(hp.into(), json!("0"));
        }
        allocatable.insert(resources::MEMORY.into(), json!(self.memory.trim()));
        capacity.insert(
            resources::MEMORY.into(),
            json!(pick(cap.memory.as_ref(), &self.memory, quantity::units)?),
        );
        for (name, value) in &self.extended_resources {
            if !resources::is_scalar_resource(name) {
                return Err(format!(
                    "node {}: {name:?} is not an extended resource name",
                    self.name
                ));
            }
            quantity::units(value).map_err(bad)?;
            allocatable.insert(name.clone(), json!(value.trim()));
            capacity.insert(name.clone(), json!(value.trim()));
        }
        allocatable.insert(resources::PODS.into(), json!(self.pods.to_string()));
        capacity.insert(
            resources::PODS.into(),
            json!(cap.pods.unwrap_or(self.pods).max(self.pods).to_string()),
        );
        Ok((capacity, allocatable))
    }

    /// Checks the entry and returns the scheduler's view of it.
    pub fn node_info(&self) -> Result<NodeInfo, String> {
        if !valid_node_name(&self.name) {
            return Err(format!(
                "node name {:?} is not a valid DNS subdomain",
                self.name
            ));
        }
        let (_, allocatable) = self.resource_lists()?;
        NodeInfo::from_parts(
            &self.name,
            self.all_labels(),
            self.taints.clone(),
            false,
            &Value::Object(allocatable),
            self.simulated,
        )
    }
}

/// Checks a whole `cluster.nodes` list: every entry valid, names unique, at least one node.
pub fn validate_nodes(nodes: &[NodeConfig]) -> Result<Vec<NodeInfo>, String> {
    if nodes.is_empty() {
        return Err("cluster.nodes is empty: the cluster needs at least one node".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    nodes
        .iter()
        .map(|n| {
            if !seen.insert(n.name.as_str()) {
                return Err(format!(
                    "node name {:?} appears twice in cluster.nodes",
                    n.name
                ));
            }
            n.node_info()
        })
        .collect()
}

/// Facts about the machine a Node object describes that are not configuration.
#[derive(Debug, Clone)]
pub struct NodeEnvironment {
    /// `InternalIP` address (and `status.hostIP` of its pods).
    pub internal_ip: String,
    /// `nodeInfo.kubeletVersion`, e.g. `v1.32.9-eks-113cf36`.
    pub kubelet_version: String,
    /// Heartbeat and transition time of the conditions.
    pub now: DateTime<Utc>,
}

fn stable_hex(seed: &str, salt: u64, len: usize) -> String {
    // FNV-1a, reseeded per 16 hex digits: deterministic ids (machine, boot, instance) per
    // node name, so a restart reports the same node.
    let mut out = String::with_capacity(len);
    let mut round = 0u64;
    while out.len() < len {
        let mut h: u64 = 0xcbf29ce484222325 ^ salt.wrapping_add(round);
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

/// The Node object for a configured node, as a kubelet registers it and keeps its status:
/// labels, taints, `providerID`, `status.capacity` / `allocatable`, the four conditions,
/// addresses, `daemonEndpoints` and `nodeInfo`. The API server adds uid, resourceVersion
/// and creationTimestamp.
pub fn node_object(config: &NodeConfig, env: &NodeEnvironment) -> Result<Value, String> {
    config.node_info()?;
    let (capacity, allocatable) = config.resource_lists()?;
    let now = env.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut annotations = Map::new();
    annotations.insert("node.alpha.kubernetes.io/ttl".into(), json!("0"));
    annotations.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".into(),
        json!("true"),
    );
    if config.simulated {
        annotations.insert(ANNOTATION_SIMULATED.into(), json!("true"));
    }
    let mut spec = Map::new();
    let provider_id = match &config.provider_id {
        Some(id) => id.clone(),
        None => format!(
            "aws:///{}/i-{}",
            config.zone,
            stable_hex(&config.name, 1, 17)
        ),
    };
    spec.insert("providerID".into(), json!(provider_id));
    if !config.taints.is_empty() {
        let taints: Vec<Value> = config
            .taints
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("key".into(), json!(t.key));
                if !t.value.is_empty() {
                    m.insert("value".into(), json!(t.value));
                }
                m.insert("effect".into(), json!(t.effect.as_str()));
                Value::Object(m)
            })
            .collect();
        spec.insert("taints".into(), Value::Array(taints));
    }
    let uuid = stable_hex(&config.name, 3, 32);
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.name,
            "labels": config.all_labels(),
            "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", &now),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", &now),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", &now),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", &now),
            ],
            "addresses": [
                {"type": "InternalIP", "address": env.internal_ip},
                {"type": "Hostname", "address": config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": stable_hex(&config.name, 2, 32),
                "systemUUID": format!("ec2{}-{}-{}-{}-{}", &uuid[3..8], &uuid[8..12], &uuid[12..16], &uuid[16..20], &uuid[20..32]),
                "bootID": format!("{}-{}-{}-{}-{}", &uuid[0..8], &uuid[8..12], &uuid[12..16], &uuid[16..20], stable_hex(&config.name, 4, 12)),
                "kernelVersion": "5.10.234-225.910.amzn2.x86_64",
                "osImage": "Amazon Linux 2",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": env.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }))
}

/// What the scheduler needs of one node, parsed once: filter and score read only this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub allowed_pods: i64,
    pub simulated: bool,
}

impl NodeInfo {
    fn from_parts(
        name: &str,
        labels: BTreeMap<String, String>,
        taints: Vec<Taint>,
        unschedulable: bool,
        allocatable: &Value,
        simulated: bool,
    ) -> Result<NodeInfo, String> {
        let parsed =
            Resources::from_resource_list(allocatable).map_err(|e| format!("node {name}: {e}"))?;
        let allowed_pods = match allocatable
            .get(resources::PODS)
            .and_then(quantity::json_text)
        {
            Some(t) => quantity::units(&t).map_err(|e| format!("node {name}: {e}"))?,
            None => 0,
        };
        Ok(NodeInfo {
            name: name.to_string(),
            labels,
            taints,
            unschedulable,
            allocatable: parsed,
            allowed_pods,
            simulated,
        })
    }

    /// The scheduler's view of a Node object, so `kubectl label`, `kubectl taint` and
    /// `kubectl cordon` take effect. Taints with an unknown effect are skipped (the API
    /// server would not have stored them).
    pub fn from_node(node: &Value) -> Result<NodeInfo, String> {
        let name = node
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or("node without metadata.name")?;
        let labels = node
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let taints = node
            .pointer("/spec/taints")
            .map(Taint::list_from_json)
            .unwrap_or_default();
        let unschedulable = node
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let simulated = node
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ANNOTATION_SIMULATED))
            .and_then(Value::as_str)
            == Some("true");
        let empty = Value::Object(Map::new());
        let allocatable = node.pointer("/status/allocatable").unwrap_or(&empty);
        NodeInfo::from_parts(name, labels, taints, unschedulable, allocatable, simulated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> NodeEnvironment {
        NodeEnvironment {
            internal_ip: "127.0.0.1".into(),
            kubelet_version: "v1.32.9-eks-113cf36".into(),
            now: "2025-01-02T03:04:05Z".parse().unwrap(),
        }
    }

    #[test]
    fn default_node_is_an_eks_m5_2xlarge() {
        let info = NodeConfig::default().node_info().unwrap();
        assert_eq!(info.allocatable.milli_cpu, 7910);
        assert_eq!(info.allocatable.memory, 31_482_328 * 1024);
        assert_eq!(info.allowed_pods, 58);
        assert_eq!(info.labels[LABEL_EKS_CAPACITY_TYPE], "ON_DEMAND");
        assert!(
            !info.labels.contains_key(LABEL_KARPENTER_CAPACITY_TYPE),
            "a node group node carries EKS's labels, not Karpenter's"
        );
        assert_eq!(info.labels[LABEL_INSTANCE_TYPE], "m5.2xlarge");
        assert_eq!(info.labels[LABEL_ZONE], "us-east-2a");
        assert_eq!(info.labels[LABEL_REGION], "us-east-2");
        assert_eq!(info.labels[LABEL_EKS_NODEGROUP], "eks-emr-cluster-ng");
        assert_eq!(info.labels[LABEL_HOSTNAME], "sparkyard-node-1");
        assert!(!info.simulated);
    }

    #[test]
    fn toml_entries_inherit_the_default_shape() {
        #[derive(Deserialize)]
        struct Cluster {
            nodes: Vec<NodeConfig>,
        }
        let c: Cluster = toml::from_str(
            r#"
            [[nodes]]
            name = "spot-1"
            capacity-type = "spot"
            nodegroup = "spark-spot"
            cpu = "15890m"
            memory = "63Gi"
            pods = 234
            capacity = { cpu = "16" }
            labels = { intent = "emr-job", "kubernetes.io/hostname" = "custom" }
            taints = [{ key = "spot", value = "true", effect = "NoSchedule" }, { key = "x", effect = "PreferNoSchedule" }]
            simulated = true

            [[nodes]]
            name = "n2"
            "#,
        )
        .unwrap();
        let infos = validate_nodes(&c.nodes).unwrap();
        assert_eq!(infos[0].allocatable.milli_cpu, 15890);
        assert_eq!(infos[0].allowed_pods, 234);
        assert_eq!(infos[0].labels[LABEL_EKS_CAPACITY_TYPE], "SPOT");
        assert_eq!(infos[0].labels[LABEL_EKS_NODEGROUP], "spark-spot");
        assert!(!infos[0].labels.contains_key(LABEL_KARPENTER_CAPACITY_TYPE));
        assert_eq!(infos[0].labels["intent"], "emr-job");
        assert_eq!(
            infos[0].labels[LABEL_HOSTNAME], "custom",
            "explicit labels win"
        );
        assert_eq!(infos[0].taints.len(), 2);
        assert!(infos[0].simulated);
        assert_eq!(
            infos[1],
            NodeConfig {
                name: "n2".into(),
                ..NodeConfig::default()
            }
            .node_info()
            .unwrap()
        );

        let node = node_object(&c.nodes[0], &env()).unwrap();
        assert_eq!(node["status"]["capacity"]["cpu"], "16");
        assert_eq!(
            node["status"]["capacity"]["memory"], "63Gi",
            "capacity raised to allocatable"
        );
        assert_eq!(node["status"]["capacity"]["pods"], "234");
        assert_eq!(
            node["spec"]["taints"][1],
            json!({"key": "x", "effect": "PreferNoSchedule"})
        );
        assert_eq!(
            node["metadata"]["annotations"][ANNOTATION_SIMULATED],
            "true"
        );
        assert_eq!(NodeInfo::from_node(&node).unwrap(), infos[0]);
    }

    #[test]
    fn entries_record_which_shape_fields_the_instance_type_fills() {
        let sized: NodeConfig =
            toml::from_str("name = \"a\"\ninstance-type = \"c5.xlarge\"\ncpu = \"2\"\npods = 10")
                .unwrap();
        assert_eq!(
            sized.from_instance_type,
            UnsetShape {
                cpu: false,
                memory: true,
                pods: false,
                ephemeral_storage: true,
                capacity: true
            }
        );
        assert_eq!(sized.cpu, "2");
        assert_eq!(
            sized.memory,
            NodeConfig::default().memory,
            "default kept until filled"
        );
        let typed: NodeConfig =
            toml::from_str("name = \"b\"\ninstance-type = \"c5.xlarge\"").unwrap();
        assert!(typed.from_instance_type.cpu && typed.from_instance_type.capacity);
        let untyped: NodeConfig = toml::from_str("name = \"c\"").unwrap();
        assert!(
            !untyped.from_instance_type.any(),
            "no instance-type: the default node's shape, as before"
        );
        assert!(
            !NodeConfig::default().from_instance_type.any(),
            "a config built in code is taken as given"
        );
    }

    #[test]
    fn only_node_group_nodes_carry_eks_labels() {
        let karpenter: NodeConfig = toml::from_str(
            "name = \"k\"\nnodegroup = \"\"\ncapacity-type = \"spot\"\nlabels = { \"karpenter.sh/capacity-type\" = \"spot\" }",
        )
        .unwrap();
        assert_eq!(karpenter.nodegroup, None);
        let labels = karpenter.all_labels();
        assert!(!labels.contains_key(LABEL_EKS_CAPACITY_TYPE));
        assert!(!labels.contains_key(LABEL_EKS_NODEGROUP));
        assert_eq!(labels[LABEL_KARPENTER_CAPACITY_TYPE], "spot");
        let with_id = NodeConfig {
            provider_id: Some("aws:///us-east-2b/i-0123456789abcdef0".into()),
            ..NodeConfig::default()
        };
        assert_eq!(
            node_object(&with_id, &env()).unwrap()["spec"]["providerID"],
            "aws:///us-east-2b/i-0123456789abcdef0"
        );
    }

    #[test]
    fn bad_entries_are_rejected() {
        let bad = |f: fn(&mut NodeConfig)| {
            let mut c = NodeConfig::default();
            f(&mut c);
            c.node_info().is_err()
        };
        assert!(bad(|c| c.cpu = "eight".into()));
        assert!(bad(|c| c.name = "Node_1".into()));
        assert!(bad(|c| c.memory = "1Q".into()));
        assert!(bad(|c| {
            c.extended_resources.insert("gpu".into(), "1".into());
        }));
        assert!(validate_nodes(&[]).is_err());
        assert!(validate_nodes(&[NodeConfig::default(), NodeConfig::default()]).is_err());
        assert!(
            toml::from_str::<NodeConfig>("nmae = \"x\"").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn node_object_looks_like_a_kubelet_registration() {
        let node = node_object(&NodeConfig::default(), &env()).unwrap();
        let status = &node["status"];
        assert_eq!(
            status["capacity"],
            json!({"cpu": "8", "ephemeral-storage": "83873772Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "32499160Ki", "pods": "58"})
        );
        assert_eq!(
            status["allocatable"],
            json!({"cpu": "7910m", "ephemeral-storage": "76224326324", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "31482328Ki", "pods": "58"})
        );
        let conditions: Vec<(&str, &str)> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            conditions,
            [
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
                ("Ready", "True")
            ]
        );
        assert_eq!(
            status["conditions"][3]["lastHeartbeatTime"],
            "2025-01-02T03:04:05Z"
        );
        assert_eq!(
            status["addresses"][0],
            json!({"type": "InternalIP", "address": "127.0.0.1"})
        );
        assert_eq!(status["nodeInfo"]["kubeletVersion"], "v1.32.9-eks-113cf36");
        assert_eq!(status["nodeInfo"]["architecture"], "amd64");
        assert!(node["spec"]["providerID"]
            .as_str()
            .unwrap()
            .starts_with("aws:///us-east-2a/i-"));
        assert!(node["spec"].get("taints").is_none());
        assert_eq!(
            node_object(&NodeConfig::default(), &env()).unwrap(),
            node,
            "deterministic"
        );
    }
}
