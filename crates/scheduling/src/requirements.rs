//! What a pod asks of the scheduler, read once from the pod object: effective requests,
//! placement constraints (node selector, required node affinity, tolerations), priority
//! and preemption policy, and the lifecycle facts preemption needs.
//!
//! Requests are computed as Kubernetes does (`resourcehelper.PodRequests`):
//! - per container, a resource with a limit but no request requests its limit (the API
//!   server's defaulting, done here too because a pod may reach us undefaulted);
//! - regular containers and restartable init containers ("sidecars",
//!   `restartPolicy: Always`) add up;
//! - each ordinary init container needs its own requests plus those of the sidecars
//!   started before it; the pod needs the maximum of that and the sum above;
//! - `spec.overhead` is added last.
//!
//! Placement constraints are shared behind an `Arc` so that the many pods of one Spark
//! application (same template, same constraints) hit one cached per-node verdict in
//! [`super::Snapshot`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::node::TaintEffect;
use super::resources::{Resources, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST};

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PreemptionPolicy {
    #[default]
    PreemptLowerPriority,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SelectorOperator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
}

/// One `nodeSelectorTerms` entry: its expressions (on labels) and fields (on
/// `metadata.name`) are ANDed. `valid == false` (unknown operator, `Gt` without exactly
/// one integer, …) makes the term match nothing, as kube-scheduler's lazy-error selector does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<SelectorRequirement>,
    pub match_fields: Vec<SelectorRequirement>,
    pub valid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TolerationOperator {
    Equal,
    Exists,
    /// An operator or effect the API does not know: tolerates nothing.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Empty with `Exists`: every key.
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    /// `None`: every effect.
    pub effect: Option<TaintEffect>,
}

/// The node-independent half of a pod's placement: what the static filters read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PlacementConstraints {
    /// `spec.nodeSelector`, sorted by key.
    pub node_selector: Vec<(String, String)>,
    /// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`
    /// (ORed); `None` when the pod has no required node affinity.
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    pub tolerations: Vec<Toleration>,
    /// The `spec.nodeAffinity.required.nodeSelectorTerms` of each PersistentVolume bound to
    /// one of the pod's claims (each ORed, all ANDed): not in the pod object — the live
    /// scheduler fills it from the claims ([`super::volumes::volume_binding`]).
    pub volume_node_affinity: Vec<Vec<NodeSelectorTerm>>,
}

/// A pod as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRequirements {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// Effective requests (what the fit filter checks).
    pub requests: Resources,
    /// Requests with 100m / 200Mi assumed for containers that state none (scoring only).
    pub non_zero_milli_cpu: i64,
    pub non_zero_memory: i64,
    pub placement: Arc<PlacementConstraints>,
    /// `spec.priority`; 0 when absent, as `corev1helpers.PodPriority` reads it.
    pub priority: i32,
    pub preemption_policy: PreemptionPolicy,
    pub scheduler_name: String,
    /// `spec.schedulingGates` is not empty: the pod is not to be scheduled yet.
    pub gated: bool,
    pub node_name: Option<String>,
    pub nominated_node_name: Option<String>,
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// `status.startTime`; victims without one count as started "now" (latest).
    pub start_time: Option<DateTime<Utc>>,
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Deleted by a scheduler's preemption (`DisruptionTarget` condition with reason
    /// `PreemptionByScheduler`) and still terminating.
    pub preempted_by_scheduler: bool,
    /// Phase `Succeeded` or `Failed`: holds no resources.
    pub terminal: bool,
    /// The claims of the pod's `persistentVolumeClaim` volumes, in volume order.
    pub claims: Vec<String>,
    /// `VolumeBinding`'s PreFilter rejection (a claim not found, being deleted, unbound
    /// with immediate binding): no node can take the pod. Filled by the live scheduler
    /// ([`super::volumes::VolumeBinding::apply`]); `None` from [`PodRequirements::from_pod`].
    pub volume_rejection: Option<String>,
}

/// A pod that cannot be read (a malformed quantity, a missing name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementsError(pub String);

impl std::fmt::Display for RequirementsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequirementsError {}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    str_at(v, pointer)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A container's requests after defaulting from limits; `(requests, has cpu, has memory)`.
fn container_requests(container: &Value) -> Result<(Resources, bool, bool), String> {
    let mut merged = Map::new();
    for part in ["/resources/limits", "/resources/requests"] {
        if let Some(list) = container.pointer(part).and_then(Value::as_object) {
            for (k, v) in list {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let has_cpu = merged.contains_key("cpu");
    let has_memory = merged.contains_key("memory");
    let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
    let r = Resources::from_resource_list(&Value::Object(merged))
        .map_err(|e| format!("container {name}: {e}"))?;
    Ok((r, has_cpu, has_memory))
}

/// The pod's aggregate over containers, sidecars and init containers (see module docs),
/// with `per_container` giving one container's contribution.
fn aggregate(
    spec: &Value,
    per_container: impl Fn(&Value) -> Result<Resources, String>,
) -> Result<Resources, String> {
    let mut total = Resources::default();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total.add(&per_container(c)?);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let own = per_container(c)?;
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            total.add(&own);
            sidecars.add(&own);
            init_peak.max_with(&sidecars);
        } else {
            let mut during = own;
            during.add(&sidecars);
            init_peak.max_with(&during);
        }
    }
    total.max_with(&init_peak);
    if let Some(overhead) = spec.get("overhead") {
        total.add(&Resources::from_resource_list(overhead).map_err(|e| format!("overhead: {e}"))?);
    }
    Ok(total)
}

fn parse_requirement(expr: &Value, field: bool) -> Option<SelectorRequirement> {
    let key = expr.get("key")?.as_str()?.to_string();
    let values = strings(expr.get("values"));
    let op = expr.get("operator")?.as_str()?;
    if field {
        // matchFields selects on one field value: only In/NotIn with exactly one value.
        return match op {
            "In" if values.len() == 1 => Some(SelectorRequirement {
                key,
                operator: SelectorOperator::In(values),
            }),
            "NotIn" if values.len() == 1 => Some(SelectorRequirement {
                key,
                operator: SelectorOperator::NotIn(values),
            }),
            _ => None,
        };
    }
    let operator = match op {
        "In" if !values.is_empty() => SelectorOperator::In(values),
        "NotIn" if !values.is_empty() => SelectorOperator::NotIn(values),
        "Exists" if values.is_empty() => SelectorOperator::Exists,
        "DoesNotExist" if values.is_empty() => SelectorOperator::DoesNotExist,
        "Gt" if values.len() == 1 => SelectorOperator::Gt(values[0].parse().ok()?),
        "Lt" if values.len() == 1 => SelectorOperator::Lt(values[0].parse().ok()?),
        _ => return None,
    };
    Some(SelectorRequirement { key, operator })
}

pub(crate) fn parse_term(term: &Value) -> NodeSelectorTerm {
    let mut valid = true;
    let mut parse_all = |pointer: &str, field: bool| -> Vec<SelectorRequirement> {
        term.get(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let r = parse_requirement(e, field);
                valid &= r.is_some();
                r
            })
            .collect()
    };
    let match_expressions = parse_all("matchExpressions", false);
    let match_fields = parse_all("matchFields", true);
    NodeSelectorTerm {
        match_expressions,
        match_fields,
        valid,
    }
}

fn parse_toleration(t: &Value) -> Toleration {
    let key = t
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let value = t
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut operator = match t.get("operator").and_then(Value::as_str).unwrap_or("") {
        "" | "Equal" => TolerationOperator::Equal,
        "Exists" => TolerationOperator::Exists,
        _ => TolerationOperator::Invalid,
    };
    let effect = match t.get("effect").and_then(Value::as_str).unwrap_or("") {
        "" => None,
        e => {
            let parsed = TaintEffect::parse(e);
            if parsed.is_none() {
                operator = TolerationOperator::Invalid;
            }
            parsed
        }
    };
    Toleration {
        key,
        operator,
        value,
        effect,
    }
}

impl PlacementConstraints {
    pub fn from_pod_spec(spec: &Value) -> PlacementConstraints {
        let node_selector: BTreeMap<String, String> = spec
            .get("nodeSelector")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let required_terms = spec
            .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
            .filter(|v| !v.is_null())
            .map(|r| {
                r.get("nodeSelectorTerms")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(parse_term)
                    .collect()
            });
        let tolerations = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(parse_toleration)
            .collect();
        PlacementConstraints {
            node_selector: node_selector.into_iter().collect(),
            required_terms,
            tolerations,
            volume_node_affinity: Vec::new(),
        }
    }
}

impl PodRequirements {
    /// Reads a pod object (`serde_json::Value` as the registry stores it).
    pub fn from_pod(pod: &Value) -> Result<PodRequirements, RequirementsError> {
        let name = str_at(pod, "/metadata/name")
            .ok_or_else(|| RequirementsError("pod without metadata.name".into()))?;
        let namespace = str_at(pod, "/metadata/namespace").unwrap_or("default");
        let fail = |e: String| RequirementsError(format!("pod {namespace}/{name}: {e}"));
        let empty = Value::Object(Map::new());
        let spec = pod.get("spec").unwrap_or(&empty);
        let requests =
            aggregate(spec, |c| container_requests(c).map(|(r, _, _)| r)).map_err(fail)?;
        let non_zero = aggregate(spec, |c| {
            let (mut r, has_cpu, has_memory) = container_requests(c)?;
            if !has_cpu {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !has_memory {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
            Ok(r)
        })
        .map_err(fail)?;
        let priority = spec
            .get("priority")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let preemption_policy = match spec.get("preemptionPolicy").and_then(Value::as_str) {
            Some("Never") => PreemptionPolicy::Never,
            _ => PreemptionPolicy::PreemptLowerPriority,
        };
        let preempted_by_scheduler = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionTarget"))
            .is_some_and(|c| {
                c.get("status").and_then(Value::as_str) == Some("True")
                    && c.get("reason").and_then(Value::as_str) == Some("PreemptionByScheduler")
            });
        let non_empty = |p: &str| str_at(pod, p).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(PodRequirements {
            uid: str_at(pod, "/metadata/uid").unwrap_or("").to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            requests,
            non_zero_milli_cpu: non_zero.milli_cpu,
            non_zero_memory: non_zero.memory,
            placement: Arc::new(PlacementConstraints::from_pod_spec(spec)),
            priority,
            preemption_policy,
            scheduler_name: non_empty("/spec/schedulerName")
                .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string()),
            gated: spec
                .get("schedulingGates")
                .and_then(Value::as_array)
                .is_some_and(|g| !g.is_empty()),
            node_name: non_empty("/spec/nodeName"),
            nominated_node_name: non_empty("/status/nominatedNodeName"),
            creation_timestamp: time_at(pod, "/metadata/creationTimestamp"),
            start_time: time_at(pod, "/status/startTime"),
            deletion_timestamp: time_at(pod, "/metadata/deletionTimestamp"),
            preempted_by_scheduler,
            terminal: matches!(str_at(pod, "/status/phase"), Some("Succeeded" | "Failed")),
            claims: super::volumes::claim_names(spec),
            volume_rejection: None,
        })
    }

    /// Whether this scheduler should place the pod now: unbound, not terminal, not being
    /// deleted, not gated, and addressed to the default scheduler.
    pub fn wants_scheduling(&self) -> bool {
        self.node_name.is_none()
            && !self.terminal
            && self.deletion_timestamp.is_none()
            && !self.gated
            && self.scheduler_name == DEFAULT_SCHEDULER_NAME
    }

    /// Deleted by preemption and still holding its node's resources.
    pub fn terminating_by_preemption(&self) -> bool {
        self.deletion_timestamp.is_some() && self.preempted_by_scheduler
    }

    /// Whether [`PodRequirements::key`] equals `key`, without building the key.
    pub fn has_key(&self, key: &str) -> bool {
        if self.uid.is_empty() {
            key.len() == self.namespace.len() + 1 + self.name.len()
                && key.starts_with(self.namespace.as_str())
                && key.ends_with(self.name.as_str())
                && key.as_bytes()[self.namespace.len()] == b'/'
        } else {
            self.uid == key
        }
    }

    /// Key for maps of pods: the uid, or `namespace/name` for objects without one.
    pub fn key(&self) -> String {
        if self.uid.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            self.uid.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> PodRequirements {
        PodRequirements::from_pod(
            &json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn requests_follow_kubernetes_rules() {
        // computePodResourceRequest's documented example: init 2/1G and 2/3G, containers
        // 2/1G and 1/1G → cpu 3, memory 3G.
        let p = pod(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}
            ],
            "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}
            ]
        }));
        assert_eq!(
            (p.requests.milli_cpu, p.requests.memory),
            (3000, 3_000_000_000)
        );
    }

    #[test]
    fn limits_default_requests_and_overhead_adds() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}},
                {"name": "b"}
            ],
            "overhead": {"cpu": "250m", "memory": "120Mi"}
        }));
        assert_eq!(p.requests.milli_cpu, 750);
        assert_eq!(p.requests.memory, (1 << 30) + (120 << 20));
        // Scoring assumes 100m/200Mi for container b, which states nothing.
        assert_eq!(p.non_zero_milli_cpu, 850);
        assert_eq!(p.non_zero_memory, (1 << 30) + (120 << 20) + (200 << 20));
    }

    #[test]
    fn sidecars_add_and_count_during_later_init_containers() {
        let p = pod(json!({
            "initContainers": [
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "setup", "resources": {"requests": {"cpu": "3"}}}
            ],
            "containers": [{"name": "main", "resources": {"requests": {"cpu": "1"}}}]
        }));
        // running: main 1 + sidecar 1 = 2; during setup: 3 + sidecar 1 = 4.
        assert_eq!(p.requests.milli_cpu, 4000);
    }

    #[test]
    fn priority_policy_and_lifecycle() {
        let p = PodRequirements::from_pod(&json!({
            "metadata": {"name": "exec-1", "namespace": "monthly-batch", "uid": "u9",
                         "creationTimestamp": "2025-01-01T00:00:00Z", "deletionTimestamp": "2025-01-01T00:05:00Z"},
            "spec": {"priority": 100, "preemptionPolicy": "Never", "nodeName": "n1", "containers": []},
            "status": {"phase": "Running", "startTime": "2025-01-01T00:00:03Z",
                       "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}
        }))
        .unwrap();
        assert_eq!(p.priority, 100);
        assert_eq!(p.preemption_policy, PreemptionPolicy::Never);
        assert_eq!(p.node_name.as_deref(), Some("n1"));
        assert!(p.terminating_by_preemption());
        assert!(!p.wants_scheduling());
        assert_eq!(
            p.start_time.unwrap().to_rfc3339(),
            "2025-01-01T00:00:03+00:00"
        );

        let q = pod(json!({"containers": []}));
        assert_eq!(
            (q.priority, q.preemption_policy),
            (0, PreemptionPolicy::PreemptLowerPriority)
        );
        assert!(q.wants_scheduling());
        assert!(!pod(json!({"schedulingGates": [{"name": "g"}]})).wants_scheduling());
        assert!(!pod(json!({"schedulerName": "volcano"})).wants_scheduling());
    }

    #[test]
    fn placement_is_parsed() {
        let p = pod(json!({
            "nodeSelector": {"b": "2", "a": "1"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]},
                                      {"key": "n", "operator": "Gt", "values": ["3"]}]},
                {"matchExpressions": [{"key": "k", "operator": "Bogus"}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
            ]}}},
            "tolerations": [{"operator": "Exists"}, {"key": "t", "value": "v", "effect": "NoSchedule"},
                            {"key": "t", "operator": "Exists", "effect": "Sometimes"}]
        }));
        let pl = &p.placement;
        assert_eq!(
            pl.node_selector,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let terms = pl.required_terms.as_ref().unwrap();
        assert_eq!(terms.len(), 3);
        assert!(terms[0].valid && !terms[1].valid && terms[2].valid);
        assert_eq!(
            terms[0].match_expressions[1].operator,
            SelectorOperator::Gt(3)
        );
        assert_eq!(pl.tolerations[0].operator, TolerationOperator::Exists);
        assert_eq!(pl.tolerations[1].operator, TolerationOperator::Equal);
        assert_eq!(pl.tolerations[1].effect, Some(TaintEffect::NoSchedule));
        assert_eq!(pl.tolerations[2].operator, TolerationOperator::Invalid);
    }

    #[test]
    fn malformed_quantities_are_errors() {
        let r =
            PodRequirements::from_pod(&json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"memory": "lots"}}}]}}));
        assert!(r.unwrap_err().0.contains("container c"));
    }
}
