//! Karpenter's requirement sets: for each label key, the set of values a node may have.
//!
//! A NodePool's requirements, its labels, a pod's node selector and required node affinity
//! and an instance type's labels all become [`Requirements`], and the provisioner asks
//! two questions of them: are they *compatible* (could one node satisfy both?) and what
//! is their *intersection* (what is left for the node?). A key's set is "these values"
//! (`In`), "anything but these" (`NotIn`, `Exists` = anything but nothing), "no value"
//! (`DoesNotExist`), each optionally bounded by `Gt`/`Lt` on integer values — the same
//! complement-set representation Karpenter's `scheduling.Requirement` uses, so the same
//! pods are accepted and the same error texts come out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;
use sparkyard_scheduling::requirements::{NodeSelectorTerm, SelectorOperator, SelectorRequirement};

pub const LABEL_NODEPOOL: &str = "karpenter.sh/nodepool";
pub const LABEL_PROVISIONER: &str = "karpenter.sh/provisioner-name";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_NODECLASS: &str = "karpenter.k8s.aws/ec2nodeclass";

/// Labels a pod may select on although no NodePool sets them, because the launched
/// instance will carry them (Karpenter's `WellKnownLabels`, core plus the AWS provider's).
/// Any other key a pod requires must be set by the pool (requirement or label).
pub fn is_well_known(key: &str) -> bool {
    matches!(
        key,
        LABEL_NODEPOOL
            | LABEL_PROVISIONER
            | LABEL_ZONE
            | LABEL_REGION
            | LABEL_INSTANCE_TYPE
            | LABEL_ARCH
            | LABEL_OS
            | LABEL_CAPACITY_TYPE
            | "node.kubernetes.io/windows-build"
            | "topology.k8s.aws/zone-id"
    ) || key.starts_with("karpenter.k8s.aws/instance-")
}

/// Keys left out of printed requirements and node labels (they name a node or its
/// pool, not a property of the instance).
fn is_restricted(key: &str) -> bool {
    matches!(key, LABEL_HOSTNAME | LABEL_NODEPOOL | LABEL_PROVISIONER)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Operator {
    pub fn parse(text: &str) -> Option<Operator> {
        Some(match text {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::Gt,
            "Lt" => Operator::Lt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::Gt => "Gt",
            Operator::Lt => "Lt",
        }
    }
}

/// One `NodeSelectorRequirement` as written in a NodePool, Provisioner or NodeClaim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// `{key, operator, values}`; `None` for an unknown operator or a missing key.
    pub fn from_json(v: &Value) -> Option<Requirement> {
        Some(Requirement {
            key: v.get("key")?.as_str()?.to_string(),
            operator: Operator::parse(v.get("operator")?.as_str()?)?,
            values: v
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// A requirement list (`spec.requirements`), skipping entries that do not parse.
    pub fn list_from_json(v: &Value) -> Vec<Requirement> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Requirement::from_json)
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("key".into(), Value::from(self.key.clone()));
        m.insert("operator".into(), Value::from(self.operator.as_str()));
        if !self.values.is_empty() {
            m.insert("values".into(), Value::from(self.values.clone()));
        }
        Value::Object(m)
    }
}

/// The values one key may take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueSet {
    /// `true`: every value except `values`; `false`: exactly `values`.
    complement: bool,
    values: BTreeSet<String>,
    /// Exclusive integer bounds from `Gt` / `Lt`.
    gt: Option<i64>,
    lt: Option<i64>,
}

impl ValueSet {
    pub fn any() -> ValueSet {
        ValueSet {
            complement: true,
            values: BTreeSet::new(),
            gt: None,
            lt: None,
        }
    }

    pub fn none() -> ValueSet {
        ValueSet {
            complement: false,
            values: BTreeSet::new(),
            gt: None,
            lt: None,
        }
    }

    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> ValueSet {
        ValueSet {
            complement: false,
            values: values.into_iter().map(Into::into).collect(),
            gt: None,
            lt: None,
        }
    }

    pub fn from_requirement(r: &Requirement) -> ValueSet {
        let bound = || r.values.first().and_then(|v| v.parse::<i64>().ok());
        let mut set = match r.operator {
            Operator::In => ValueSet::only(r.values.iter().cloned()),
            Operator::NotIn => ValueSet {
                values: r.values.iter().cloned().collect(),
                ..ValueSet::any()
            },
            Operator::Exists => ValueSet::any(),
            Operator::DoesNotExist => ValueSet::none(),
            // An unparsable bound admits nothing, as a lazy-error selector does.
            Operator::Gt => match bound() {
                Some(n) => ValueSet {
                    gt: Some(n),
                    ..ValueSet::any()
                },
                None => ValueSet::none(),
            },
            Operator::Lt => match bound() {
                Some(n) => ValueSet {
                    lt: Some(n),
                    ..ValueSet::any()
                },
                None => ValueSet::none(),
            },
        };
        set.normalize();
        set
    }

    fn from_selector(op: &SelectorOperator) -> ValueSet {
        match op {
            SelectorOperator::In(v) => ValueSet::only(v.iter().cloned()),
            SelectorOperator::NotIn(v) => ValueSet {
                values: v.iter().cloned().collect(),
                ..ValueSet::any()
            },
            SelectorOperator::Exists => ValueSet::any(),
            SelectorOperator::DoesNotExist => ValueSet::none(),
            SelectorOperator::Gt(n) => ValueSet {
                gt: Some(*n),
                ..ValueSet::any()
            },
            SelectorOperator::Lt(n) => ValueSet {
                lt: Some(*n),
                ..ValueSet::any()
            },
        }
    }

    fn within_bounds(&self, value: &str) -> bool {
        if self.gt.is_none() && self.lt.is_none() {
            return true;
        }
        let Ok(n) = value.parse::<i64>() else {
            return false;
        };
        self.gt.is_none_or(|g| n > g) && self.lt.is_none_or(|l| n < l)
    }

    /// Drops listed values the bounds exclude; an empty integer range admits nothing.
    fn normalize(&mut self) {
        if let (Some(g), Some(l)) = (self.gt, self.lt) {
            if l.saturating_sub(g) <= 1 {
                *self = ValueSet::none();
                return;
            }
        }
        if !self.complement && (self.gt.is_some() || self.lt.is_some()) {
            let (gt, lt) = (self.gt, self.lt);
            let probe = ValueSet {
                gt,
                lt,
                ..ValueSet::any()
            };
            self.values.retain(|v| probe.within_bounds(v));
            self.gt = None;
            self.lt = None;
        }
    }

    pub fn has(&self, value: &str) -> bool {
        self.within_bounds(value) && (self.values.contains(value) != self.complement)
    }

    /// Whether no value (not even absence… see [`Operator::DoesNotExist`]) is allowed.
    pub fn is_empty(&self) -> bool {
        !self.complement && self.values.is_empty()
    }

    /// The operator this set reads as (Karpenter's `Requirement.Operator()`).
    pub fn operator(&self) -> Operator {
        match (self.complement, self.values.is_empty()) {
            (true, false) => Operator::NotIn,
            (true, true) => Operator::Exists,
            (false, false) => Operator::In,
            (false, true) => Operator::DoesNotExist,
        }
    }

    /// The single value of an `In` set of one (what becomes a node label).
    pub fn single(&self) -> Option<&str> {
        if !self.complement && self.values.len() == 1 {
            self.values.iter().next().map(String::as_str)
        } else {
            None
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    pub fn intersection(&self, other: &ValueSet) -> ValueSet {
        let gt = match (self.gt, other.gt) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let lt = match (self.lt, other.lt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (complement, values) = match (self.complement, other.complement) {
            (true, true) => (true, self.values.union(&other.values).cloned().collect()),
            (true, false) => (
                false,
                other.values.difference(&self.values).cloned().collect(),
            ),
            (false, true) => (
                false,
                self.values.difference(&other.values).cloned().collect(),
            ),
            (false, false) => (
                false,
                self.values.intersection(&other.values).cloned().collect(),
            ),
        };
        let mut out = ValueSet {
            complement,
            values,
            gt,
            lt,
        };
        out.normalize();
        out
    }

    /// Back to requirements as a NodeClaim spells them.
    fn to_requirements(&self, key: &str) -> Vec<Requirement> {
        let values: Vec<String> = self.values.iter().cloned().collect();
        let mut out = vec![Requirement {
            key: key.to_string(),
            operator: self.operator(),
            values,
        }];
        if self.complement && self.values.is_empty() && (self.gt.is_some() || self.lt.is_some()) {
            out.clear();
        }
        if let Some(g) = self.gt {
            out.push(Requirement {
                key: key.to_string(),
                operator: Operator::Gt,
                values: vec![g.to_string()],
            });
        }
        if let Some(l) = self.lt {
            out.push(Requirement {
                key: key.to_string(),
                operator: Operator::Lt,
                values: vec![l.to_string()],
            });
        }
        out
    }

    /// `key In [a b]`, `key Exists >2`, as Karpenter prints a requirement.
    fn describe(&self, key: &str) -> String {
        let op = self.operator();
        let mut s = match op {
            Operator::Exists | Operator::DoesNotExist => format!("{key} {}", op.as_str()),
            _ => {
                let mut vals: Vec<String> = self.values.iter().cloned().collect();
                if vals.len() > 5 {
                    let more = vals.len() - 5;
                    vals.truncate(5);
                    vals.push(format!("and {more} others"));
                }
                format!("{key} {} [{}]", op.as_str(), vals.join(" "))
            }
        };
        if let Some(g) = self.gt {
            s.push_str(&format!(" >{g}"));
        }
        if let Some(l) = self.lt {
            s.push_str(&format!(" <{l}"));
        }
        s
    }
}

/// Requirements by key; adding a key again intersects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Requirements(BTreeMap<String, ValueSet>);

impl Requirements {
    pub fn new() -> Requirements {
        Requirements::default()
    }

    pub fn from_list(list: &[Requirement]) -> Requirements {
        let mut r = Requirements::new();
        for req in list {
            r.add(&req.key, ValueSet::from_requirement(req));
        }
        r
    }

    pub fn from_labels<'a>(
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Requirements {
        let mut r = Requirements::new();
        for (k, v) in labels {
            r.add(k, ValueSet::only([v.clone()]));
        }
        r
    }

    /// A pod's node selector plus one term of its required node affinity (Karpenter
    /// tries the terms in order, moving on when one cannot be satisfied).
    pub fn from_pod(
        node_selector: &[(String, String)],
        term: Option<&NodeSelectorTerm>,
    ) -> Requirements {
        let mut r = Requirements::new();
        for (k, v) in node_selector {
            r.add(k, ValueSet::only([v.clone()]));
        }
        for SelectorRequirement { key, operator } in term
            .map(|t| t.match_expressions.as_slice())
            .unwrap_or_default()
        {
            r.add(key, ValueSet::from_selector(operator));
        }
        r
    }

    pub fn add(&mut self, key: &str, set: ValueSet) {
        match self.0.get_mut(key) {
            Some(existing) => *existing = existing.intersection(&set),
            None => {
                self.0.insert(key.to_string(), set);
            }
        }
    }

    /// Adds every key of `other` (intersecting shared keys).
    pub fn merge(&mut self, other: &Requirements) {
        for (k, v) in &other.0 {
            self.add(k, v.clone());
        }
    }

    pub fn get(&self, key: &str) -> Option<&ValueSet> {
        self.0.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether `value` is allowed for `key` (an absent key allows anything).
    pub fn allows(&self, key: &str, value: &str) -> bool {
        self.0.get(key).is_none_or(|s| s.has(value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Can a node satisfy both `self` (a pool or claim) and `incoming` (a pod)? A key
    /// the pod requires must be defined by `self` unless it is well known or the pod
    /// only excludes values; shared keys must intersect. Karpenter's wording.
    pub fn compatible(&self, incoming: &Requirements) -> Result<(), String> {
        let mut errs = Vec::new();
        for (key, set) in &incoming.0 {
            if is_well_known(key) || self.has(key) {
                continue;
            }
            if matches!(set.operator(), Operator::NotIn | Operator::DoesNotExist) {
                continue;
            }
            errs.push(format!("label {key:?} does not have known values"));
        }
        if let Err(e) = self.intersects(incoming) {
            errs.push(e);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// Shared keys must have a common value — except that two exclusions
    /// (`NotIn`/`DoesNotExist`) never conflict. Keys only one side has are fine.
    pub fn intersects(&self, incoming: &Requirements) -> Result<(), String> {
        let mut errs = Vec::new();
        for (key, theirs) in &incoming.0 {
            let Some(ours) = self.0.get(key) else {
                continue;
            };
            if !ours.intersection(theirs).is_empty() {
                continue;
            }
            let excl = |o: Operator| matches!(o, Operator::NotIn | Operator::DoesNotExist);
            if excl(theirs.operator()) && excl(ours.operator()) {
                continue;
            }
            errs.push(format!(
                "key {key}, {} not in {}",
                theirs.describe(key),
                ours.describe(key)
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// The single-valued keys as labels (restricted keys left out).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| !is_restricted(k))
            .filter_map(|(k, s)| Some((k.clone(), s.single()?.to_string())))
            .collect()
    }

    pub fn to_list(&self) -> Vec<Requirement> {
        self.0
            .iter()
            .flat_map(|(k, s)| s.to_requirements(k))
            .collect()
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| !is_restricted(k))
            .map(|(k, s)| s.describe(k))
            .collect();
        parts.sort();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(list: &[(&str, Operator, &[&str])]) -> Requirements {
        Requirements::from_list(
            &list
                .iter()
                .map(|(k, o, v)| Requirement::new(k, *o, v))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn sets_intersect_like_karpenters() {
        use Operator::*;
        let pool = reqs(&[
            (LABEL_CAPACITY_TYPE, In, &["spot", "on-demand"]),
            ("karpenter.k8s.aws/instance-generation", Gt, &["2"]),
            ("team", Exists, &[]),
        ]);
        let gen = pool.get("karpenter.k8s.aws/instance-generation").unwrap();
        assert!(gen.has("5") && !gen.has("2") && !gen.has("x"));
        assert!(pool
            .compatible(&reqs(&[(LABEL_CAPACITY_TYPE, In, &["spot"])]))
            .is_ok());
        assert_eq!(
            pool.compatible(&reqs(&[(LABEL_CAPACITY_TYPE, In, &["reserved"])])),
            Err("key karpenter.sh/capacity-type, karpenter.sh/capacity-type In [reserved] not in karpenter.sh/capacity-type In [on-demand spot]".into())
        );
        assert!(pool.compatible(&reqs(&[("team", In, &["a"])])).is_ok());
        assert_eq!(
            pool.compatible(&reqs(&[(
                "eks.amazonaws.com/capacityType",
                In,
                &["ON_DEMAND"]
            )])),
            Err("label \"eks.amazonaws.com/capacityType\" does not have known values".into())
        );
        assert!(
            pool.compatible(&reqs(&[("gpu", NotIn, &["true"])])).is_ok(),
            "excluding an undefined label is fine"
        );
        assert!(
            pool.compatible(&reqs(&[(LABEL_ZONE, In, &["us-east-2a"])]))
                .is_ok(),
            "well-known labels may be undefined"
        );
        let both = pool
            .get("karpenter.k8s.aws/instance-generation")
            .unwrap()
            .intersection(&ValueSet::from_requirement(&Requirement::new(
                "g",
                Lt,
                &["6"],
            )));
        assert!(both.has("5") && !both.has("6") && !both.has("2"));
        let empty = both.intersection(&ValueSet::from_requirement(&Requirement::new(
            "g",
            Gt,
            &["5"],
        )));
        assert!(empty.is_empty());
        // Two exclusions never conflict.
        let a = reqs(&[("k", NotIn, &["x"])]);
        assert!(a.intersects(&reqs(&[("k", DoesNotExist, &[])])).is_ok());
    }

    #[test]
    fn labels_printing_and_round_trip() {
        use Operator::*;
        let mut r = reqs(&[
            (LABEL_CAPACITY_TYPE, In, &["spot"]),
            ("karpenter.k8s.aws/instance-category", In, &["c", "m", "r"]),
            ("karpenter.k8s.aws/instance-generation", Gt, &["2"]),
            (LABEL_NODEPOOL, In, &["default"]),
        ]);
        r.add("intent", ValueSet::only(["emr"]));
        assert_eq!(
            r.labels().into_iter().collect::<Vec<_>>(),
            [
                ("intent".to_string(), "emr".to_string()),
                (LABEL_CAPACITY_TYPE.to_string(), "spot".to_string())
            ]
        );
        assert_eq!(
            r.to_string(),
            "intent In [emr], karpenter.k8s.aws/instance-category In [c m r], karpenter.k8s.aws/instance-generation Exists >2, karpenter.sh/capacity-type In [spot]"
        );
        assert_eq!(Requirements::from_list(&r.to_list()), r);
        let j = Requirement::new("a", In, &["b"]).to_json();
        assert_eq!(
            Requirement::from_json(&j),
            Some(Requirement::new("a", In, &["b"]))
        );
    }
}
