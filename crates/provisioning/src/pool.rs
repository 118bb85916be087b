//! [`NodePoolSpec`]: one normalized pool, whichever API it came from — a v1alpha5
//! `Provisioner` (with the AWS webhook's defaults) or a v1 `NodePool` (with the CRD's
//! defaults) — and [`pool_hash`], the template hash drift compares.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sparkyard_scheduling::quantity;
use sparkyard_scheduling::Taint;

use super::requirements::{
    Operator, Requirement, Requirements, ValueSet, LABEL_ARCH, LABEL_CAPACITY_TYPE,
    LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_OS, LABEL_PROVISIONER,
};

/// Which API the pool came from: it decides the pool label on nodes
/// (`karpenter.sh/provisioner-name` or `karpenter.sh/nodepool`) and the do-not-disrupt keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolApi {
    V1Alpha5,
    #[default]
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsolidationPolicy {
    WhenEmpty,
    #[default]
    WhenEmptyOrUnderutilized,
}

/// Why a node is disrupted (budgets may name the reasons they apply to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisruptionReason {
    Empty,
    Underutilized,
    Drifted,
}

impl DisruptionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisruptionReason::Empty => "Empty",
            DisruptionReason::Underutilized => "Underutilized",
            DisruptionReason::Drifted => "Drifted",
        }
    }

    /// The lower-case word Karpenter logs (`reason: empty`).
    pub fn log_word(self) -> &'static str {
        match self {
            DisruptionReason::Empty => "empty",
            DisruptionReason::Underutilized => "underutilized",
            DisruptionReason::Drifted => "drifted",
        }
    }
}

/// One `spec.disruption.budgets` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// `"10%"` or `"3"`.
    pub nodes: String,
    /// Empty: every reason.
    pub reasons: Vec<DisruptionReason>,
    /// Whether the budget is in force now. Budgets with a cron `schedule` are active only
    /// inside their window, which the caller (holding the clock) evaluates; the parsers
    /// set `true`, the conservative reading.
    pub active: bool,
}

impl Budget {
    pub fn nodes(nodes: &str) -> Budget {
        Budget {
            nodes: nodes.to_string(),
            reasons: Vec::new(),
            active: true,
        }
    }

    /// How many of `total` nodes this budget lets go at once: `ceil(total × pct)` or N.
    pub fn allowed(&self, total: usize) -> usize {
        match self.nodes.strip_suffix('%') {
            Some(pct) => {
                let pct: usize = pct.trim().parse().unwrap_or(0);
                (total * pct).div_ceil(100)
            }
            None => self.nodes.trim().parse().unwrap_or(0),
        }
    }
}

/// `limits` (v1) / `limits.resources` (v1alpha5); `None` fields are unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub cpu_millis: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub nodes: Option<i64>,
}

/// What a pool's nodes hold now (`status.resources`: the sum of their capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub nodes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodePoolSpec {
    pub name: String,
    pub api: PoolApi,
    /// Higher first; equal weights by name descending.
    pub weight: i32,
    pub requirements: Vec<Requirement>,
    /// Template labels (every node gets them).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Put on the node at launch; pods need not tolerate them.
    pub startup_taints: Vec<Taint>,
    /// `nodeClassRef.name` / `providerRef.name` (drift hashes it; nodes get the label).
    pub node_class: Option<String>,
    pub limits: Option<Limits>,
    pub usage: Usage,
    pub consolidation_policy: ConsolidationPolicy,
    /// `None`: `Never` (no consolidation, not even of empty nodes).
    pub consolidate_after: Option<Duration>,
    /// `None`: `Never`.
    pub expire_after: Option<Duration>,
    pub budgets: Vec<Budget>,
}

impl Default for NodePoolSpec {
    fn default() -> Self {
        NodePoolSpec {
            name: "default".into(),
            api: PoolApi::V1,
            weight: 0,
            requirements: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: Vec::new(),
            startup_taints: Vec::new(),
            node_class: None,
            limits: None,
            usage: Usage::default(),
            consolidation_policy: ConsolidationPolicy::WhenEmptyOrUnderutilized,
            consolidate_after: Some(Duration::ZERO),
            expire_after: Some(Duration::from_secs(720 * 3600)),
            budgets: vec![Budget::nodes("10%")],
        }
    }
}

/// Go's `time.ParseDuration` subset NodePools use (`30s`, `1h30m`, `720h`); `Never` → `None`.
pub fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t == "Never" {
        return Ok(None);
    }
    let bad = || format!("invalid duration {text:?}");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += value
            * match &rest[..u] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
        rest = &rest[u..];
    }
    Ok(Some(Duration::from_secs_f64(total)))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

fn resource_limits(v: &Value) -> Option<Limits> {
    let m = v.as_object()?;
    let text = |k: &str| m.get(k).and_then(quantity::json_text);
    Some(Limits {
        cpu_millis: text("cpu").and_then(|t| quantity::millis(&t).ok()),
        memory_bytes: text("memory").and_then(|t| quantity::units(&t).ok()),
        nodes: text("nodes").and_then(|t| quantity::units(&t).ok()),
    })
}

fn usage(v: &Value) -> Usage {
    let text = |k: &str| v.get(k).and_then(quantity::json_text);
    Usage {
        cpu_millis: text("cpu")
            .and_then(|t| quantity::millis(&t).ok())
            .unwrap_or(0),
        memory_bytes: text("memory")
            .and_then(|t| quantity::units(&t).ok())
            .unwrap_or(0),
        nodes: text("nodes")
            .and_then(|t| quantity::units(&t).ok())
            .unwrap_or(0),
    }
}

/// The deprecated beta keys Karpenter normalizes to the stable ones.
fn normalize_key(key: &str) -> &str {
    match key {
        "beta.kubernetes.io/arch" => LABEL_ARCH,
        "beta.kubernetes.io/os" => LABEL_OS,
        "beta.kubernetes.io/instance-type" => LABEL_INSTANCE_TYPE,
        "failure-domain.beta.kubernetes.io/zone" => super::requirements::LABEL_ZONE,
        "failure-domain.beta.kubernetes.io/region" => super::requirements::LABEL_REGION,
        k => k,
    }
}

fn requirements(v: &Value) -> Vec<Requirement> {
    Requirement::list_from_json(v)
        .into_iter()
        .map(|mut r| {
            r.key = normalize_key(&r.key).to_string();
            r
        })
        .collect()
}

fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn seconds(v: Option<&Value>) -> Option<Duration> {
    v.and_then(Value::as_u64).map(Duration::from_secs)
}

impl NodePoolSpec {
    /// A `karpenter.sh/v1alpha5` Provisioner, with the AWS mutating webhook's defaults
    /// (v0.2x–v0.31): `kubernetes.io/arch In [amd64]`, `karpenter.sh/capacity-type In
    /// [on-demand]`, `kubernetes.io/os In [linux]`, each unless a requirement or label
    /// sets the key, and — when no instance type/family/category/generation key is given —
    /// `instance-category In [c m r]` and `instance-generation Gt 2`. Consolidation:
    /// `ttlSecondsAfterEmpty` → WhenEmpty after that TTL, `consolidation.enabled` →
    /// WhenEmptyOrUnderutilized at once, neither → Never. No budgets existed (one of 100 %).
    pub fn from_provisioner(obj: &Value) -> NodePoolSpec {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let labels = string_map(&spec["labels"]);
        let mut reqs = requirements(&spec["requirements"]);
        let defined = |reqs: &[Requirement], key: &str| {
            reqs.iter().any(|r| r.key == key) || labels.contains_key(key)
        };
        for (key, value) in [
            (LABEL_ARCH, "amd64"),
            (LABEL_CAPACITY_TYPE, "on-demand"),
            (LABEL_OS, "linux"),
        ] {
            if !defined(&reqs, key) {
                reqs.push(Requirement::new(key, Operator::In, &[value]));
            }
        }
        let shape_keys = [
            LABEL_INSTANCE_TYPE,
            "karpenter.k8s.aws/instance-family",
            "karpenter.k8s.aws/instance-category",
            "karpenter.k8s.aws/instance-generation",
        ];
        if !shape_keys.iter().any(|k| defined(&reqs, k)) {
            reqs.push(Requirement::new(
                "karpenter.k8s.aws/instance-category",
                Operator::In,
                &["c", "m", "r"],
            ));
            reqs.push(Requirement::new(
                "karpenter.k8s.aws/instance-generation",
                Operator::Gt,
                &["2"],
            ));
        }
        let ttl_empty = seconds(spec.get("ttlSecondsAfterEmpty"));
        let consolidation = spec
            .pointer("/consolidation/enabled")
            .and_then(Value::as_bool)
            == Some(true);
        let (policy, after) = match (ttl_empty, consolidation) {
            (_, true) => (
                ConsolidationPolicy::WhenEmptyOrUnderutilized,
                Some(Duration::ZERO),
            ),
            (Some(ttl), false) => (ConsolidationPolicy::WhenEmpty, Some(ttl)),
            (None, false) => (ConsolidationPolicy::WhenEmpty, None),
        };
        NodePoolSpec {
            name: name_of(obj),
            api: PoolApi::V1Alpha5,
            weight: spec.get("weight").and_then(Value::as_i64).unwrap_or(0) as i32,
            requirements: reqs,
            labels,
            annotations: string_map(&spec["annotations"]),
            taints: Taint::list_from_json(&spec["taints"]),
            startup_taints: Taint::list_from_json(&spec["startupTaints"]),
            node_class: spec
                .pointer("/providerRef/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            limits: resource_limits(&spec["limits"]["resources"]),
            usage: usage(&obj["status"]["resources"]),
            consolidation_policy: policy,
            consolidate_after: after,
            expire_after: seconds(spec.get("ttlSecondsUntilExpired")),
            budgets: vec![Budget::nodes("100%")],
        }
    }

    /// A `karpenter.sh/v1` NodePool, with the CRD's defaults: `expireAfter: 720h`,
    /// `consolidationPolicy: WhenEmptyOrUnderutilized`, `consolidateAfter: 0s`, budgets
    /// `[{nodes: 10%}]`. No requirement defaults (v1 has no webhook).
    pub fn from_nodepool(obj: &Value) -> NodePoolSpec {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let template = &spec["template"];
        let disruption = &spec["disruption"];
        let duration = |v: &Value, default: Option<Duration>| match v.as_str() {
            Some(t) => parse_duration(t).unwrap_or(default),
            None => default,
        };
        let budgets = match disruption["budgets"].as_array() {
            Some(list) => list
                .iter()
                .map(|b| Budget {
                    nodes: b["nodes"].as_str().unwrap_or("10%").to_string(),
                    reasons: b["reasons"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| match r.as_str()? {
                            "Empty" => Some(DisruptionReason::Empty),
                            "Underutilized" => Some(DisruptionReason::Underutilized),
                            "Drifted" => Some(DisruptionReason::Drifted),
                            _ => None,
                        })
                        .collect(),
                    active: true,
                })
                .collect(),
            None => vec![Budget::nodes("10%")],
        };
        NodePoolSpec {
            name: name_of(obj),
            api: PoolApi::V1,
            weight: spec.get("weight").and_then(Value::as_i64).unwrap_or(0) as i32,
            requirements: requirements(&template["spec"]["requirements"]),
            labels: string_map(&template["metadata"]["labels"]),
            annotations: string_map(&template["metadata"]["annotations"]),
            taints: Taint::list_from_json(&template["spec"]["taints"]),
            startup_taints: Taint::list_from_json(&template["spec"]["startupTaints"]),
            node_class: template["spec"]["nodeClassRef"]["name"]
                .as_str()
                .map(str::to_string),
            limits: resource_limits(&spec["limits"]),
            usage: usage(&obj["status"]["resources"]),
            consolidation_policy: match disruption["consolidationPolicy"].as_str() {
                Some("WhenEmpty") => ConsolidationPolicy::WhenEmpty,
                _ => ConsolidationPolicy::WhenEmptyOrUnderutilized,
            },
            consolidate_after: duration(&disruption["consolidateAfter"], Some(Duration::ZERO)),
            expire_after: duration(
                &template["spec"]["expireAfter"],
                Some(Duration::from_secs(720 * 3600)),
            ),
            budgets,
        }
    }

    /// The label naming the pool on its nodes.
    pub fn pool_label(&self) -> &'static str {
        match self.api {
            PoolApi::V1Alpha5 => LABEL_PROVISIONER,
            PoolApi::V1 => LABEL_NODEPOOL,
        }
    }

    /// Requirements ∪ labels ∪ the pool's own label: what every node of the pool satisfies.
    pub fn node_requirements(&self) -> Requirements {
        let mut r = Requirements::from_list(&self.requirements);
        r.merge(&Requirements::from_labels(&self.labels));
        r.add(self.pool_label(), ValueSet::only([self.name.clone()]));
        r
    }
}

/// Karpenter's pool order: weight descending, then name descending.
pub fn pool_order(a: &NodePoolSpec, b: &NodePoolSpec) -> std::cmp::Ordering {
    b.weight.cmp(&a.weight).then_with(|| b.name.cmp(&a.name))
}

pub fn sort_pools(pools: &mut [NodePoolSpec]) {
    pools.sort_by(pool_order);
}

/// The NodePool hash (`karpenter.sh/nodepool-hash`): FNV-64 over the template fields that
/// make a node what it is — labels, annotations, taints, startup taints, expireAfter and
/// the node class. Weight, limits and disruption settings are behaviour, not shape, and
/// are left out, as are requirements (a requirement change is drift only when it no
/// longer admits the node's labels, which `disruption` checks separately).
pub fn pool_hash(pool: &NodePoolSpec) -> String {
    let mut text = String::new();
    for (k, v) in &pool.labels {
        text.push_str(&format!("l:{k}={v}\n"));
    }
    for (k, v) in &pool.annotations {
        text.push_str(&format!("a:{k}={v}\n"));
    }
    let mut tainted: Vec<String> = pool
        .taints
        .iter()
        .map(|t| format!("t:{}={}:{}", t.key, t.value, t.effect.as_str()))
        .chain(
            pool.startup_taints
                .iter()
                .map(|t| format!("s:{}={}:{}", t.key, t.value, t.effect.as_str())),
        )
        .collect();
    tainted.sort();
    text.push_str(&tainted.join("\n"));
    text.push_str(&format!(
        "\ne:{:?}\nc:{}",
        pool.expire_after.map(|d| d.as_secs_f64()),
        pool.node_class.as_deref().unwrap_or("")
    ));
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provisioner_gets_the_webhook_defaults_only_where_unset() {
        let p = NodePoolSpec::from_provisioner(&json!({
            "metadata": {"name": "emr"},
            "spec": {
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}],
                "labels": {"intent": "emr-job", "kubernetes.io/arch": "amd64"},
                "ttlSecondsAfterEmpty": 30,
                "limits": {"resources": {"cpu": "1000", "memory": "1000Gi"}},
                "taints": [{"key": "spark", "value": "true", "effect": "NoSchedule"}]
            },
            "status": {"resources": {"cpu": "16", "memory": "64Gi"}}
        }));
        assert_eq!(p.api, PoolApi::V1Alpha5);
        let keys: Vec<_> = p.requirements.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                LABEL_CAPACITY_TYPE,
                LABEL_OS,
                "karpenter.k8s.aws/instance-category",
                "karpenter.k8s.aws/instance-generation"
            ],
            "arch comes from a label; capacity type was given"
        );
        assert_eq!(p.consolidation_policy, ConsolidationPolicy::WhenEmpty);
        assert_eq!(p.consolidate_after, Some(Duration::from_secs(30)));
        assert_eq!(p.expire_after, None);
        assert_eq!(p.limits.unwrap().cpu_millis, Some(1_000_000));
        assert_eq!(p.usage.memory_bytes, 64 << 30);
        assert_eq!(p.taints.len(), 1);
        assert_eq!(p.pool_label(), LABEL_PROVISIONER);

        let typed = NodePoolSpec::from_provisioner(&json!({"metadata": {"name": "x"}, "spec": {
            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]}],
            "consolidation": {"enabled": true}}}));
        assert!(!typed
            .requirements
            .iter()
            .any(|r| r.key == "karpenter.k8s.aws/instance-category"));
        assert_eq!(
            typed.consolidation_policy,
            ConsolidationPolicy::WhenEmptyOrUnderutilized
        );
        assert_eq!(typed.consolidate_after, Some(Duration::ZERO));
        let neither =
            NodePoolSpec::from_provisioner(&json!({"metadata": {"name": "y"}, "spec": {}}));
        assert_eq!(neither.consolidate_after, None, "neither set: Never");
    }

    #[test]
    fn nodepool_defaults_and_fields() {
        let p = NodePoolSpec::from_nodepool(&json!({
            "metadata": {"name": "emr"},
            "spec": {
                "weight": 10,
                "template": {"metadata": {"labels": {"intent": "emr-job"}},
                             "spec": {"requirements": [{"key": "beta.kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
                                      "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "emr"},
                                      "expireAfter": "Never"}},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m30s",
                               "budgets": [{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "20%"}]},
                "limits": {"cpu": "100", "nodes": "5"}
            }
        }));
        assert_eq!(p.weight, 10);
        assert_eq!(p.requirements[0].key, LABEL_ARCH, "beta key normalized");
        assert_eq!(p.expire_after, None);
        assert_eq!(p.consolidate_after, Some(Duration::from_secs(90)));
        assert_eq!(p.budgets[0].reasons, [DisruptionReason::Drifted]);
        assert_eq!(p.limits.unwrap().nodes, Some(5));
        assert_eq!(p.node_class.as_deref(), Some("emr"));
        let d = NodePoolSpec::from_nodepool(
            &json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {}}}}),
        );
        assert_eq!(d.expire_after, Some(Duration::from_secs(720 * 3600)));
        assert_eq!(d.consolidate_after, Some(Duration::ZERO));
        assert_eq!(d.budgets, [Budget::nodes("10%")]);
    }

    #[test]
    fn budgets_round_up_and_pools_sort() {
        assert_eq!(Budget::nodes("10%").allowed(5), 1);
        assert_eq!(Budget::nodes("10%").allowed(0), 0);
        assert_eq!(Budget::nodes("50%").allowed(3), 2);
        assert_eq!(Budget::nodes("3").allowed(100), 3);
        let mut pools: Vec<NodePoolSpec> = [("a", 0), ("b", 0), ("c", 5)]
            .iter()
            .map(|(n, w)| NodePoolSpec {
                name: n.to_string(),
                weight: *w,
                ..Default::default()
            })
            .collect();
        sort_pools(&mut pools);
        let names: Vec<_> = pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
    }

    #[test]
    fn hash_covers_the_template_only() {
        let a = NodePoolSpec::default();
        let heavier = NodePoolSpec {
            weight: 50,
            limits: Some(Limits::default()),
            ..a.clone()
        };
        assert_eq!(pool_hash(&a), pool_hash(&heavier));
        let mut labelled = a.clone();
        labelled.labels.insert("team".into(), "x".into());
        assert_ne!(pool_hash(&a), pool_hash(&labelled));
        assert_eq!(
            parse_duration("720h").unwrap(),
            Some(Duration::from_secs(720 * 3600))
        );
        assert!(parse_duration("5 minutes").is_err());
    }
}
