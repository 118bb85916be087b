//! The ResourceQuota admission plugin and the quota evaluators (kube's
//! `pkg/quota/v1/evaluator/core` and the generic object counter), shared with the quota
//! controller in `sparkyard-kube-controllers`, which keeps `status.used` from
//! [`compute_used`].
//!
//! **What is measured.** Pods: `pods`, `count/pods`, `cpu`/`requests.cpu`, `limits.cpu`,
//! `memory`/`requests.memory`, `limits.memory`, ephemeral storage, hugepages and extended
//! resources (`requests.<domain>/<name>`); a pod stops counting (but for `count/pods`) once
//! it is `Succeeded`/`Failed` or past its deletion grace period (`QuotaV1Pod`). Services:
//! `services`, `services.nodeports`, `services.loadbalancers`. Claims:
//! `persistentvolumeclaims`, `requests.storage` and their `<class>.storageclass.storage.k8s.io/`
//! forms. Any namespaced resource: `count/<plural>[.<group>]`, and the legacy `configmaps`,
//! `secrets`, `replicationcontrollers`, `resourcequotas`. Scopes (`Terminating`,
//! `NotTerminating`, `BestEffort`, `NotBestEffort`, `PriorityClass` in `scopeSelector`)
//! select pods; a scoped quota matches no other object, as upstream.
//!
//! **Messages** are kube's: `exceeded quota: <name>, requested: …, used: …, limited: …`
//! (resources in name order, quantities canonical) and `failed quota: <name>: must specify
//! …`, as a 403 `Forbidden`.
//!
//! **Serialisation.** kube-apiserver charges `status.used` with a resourceVersion-checked
//! update during admission, so of two creates racing for the last slot one conflicts, re-reads
//! and is refused. Here the same guarantee comes from a per-namespace lock held from the
//! quota check until the object is in the registry (the returned [`QuotaGuard`]), with usage
//! recomputed under it from the stored objects — which, in process, are as cheap to read as
//! the quota. Nothing admitted can then be missing from the next check, and a create that
//! fails after admission charges nothing (kube over-charges until its controller's resync).
//! `status.used` stays the controller's to keep; only creates are checked (updates that
//! grow a claim or turn a Service into a NodePort are not).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::quantity::{Quantity, QUANTITY_REGEX_MSG};
use super::{pods::qos_class, Causes};
use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

pub type ResourceList = BTreeMap<String, Quantity>;

const SCOPES: [&str; 6] = [
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
];

/// The keys whose presence on every container a quota demands (`validationSet`).
const MUST_SPECIFY: [&str; 6] = [
    "cpu",
    "limits.cpu",
    "limits.memory",
    "memory",
    "requests.cpu",
    "requests.memory",
];

const POD_KEYS: [&str; 11] = [
    "count/pods",
    "cpu",
    "ephemeral-storage",
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "memory",
    "pods",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// A `hard`/`used` map as JSON (keys in order, as Go's encoder writes maps).
pub fn list_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), json!(v.canonical())))
            .collect(),
    )
}

pub fn parse_list(value: &Value) -> ResourceList {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v)?)))
        .collect()
}

fn add_to(list: &mut ResourceList, key: &str, q: Quantity) {
    let sum = list.get(key).map(|v| v.add(&q)).unwrap_or(q);
    list.insert(key.to_string(), sum);
}

/// An extended resource's quota name (`requests.example.com/gpu`).
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/")
}

fn is_pod_key(key: &str) -> bool {
    POD_KEYS.contains(&key)
        || key.starts_with("hugepages-")
        || key.starts_with("requests.hugepages-")
        || key
            .strip_prefix("requests.")
            .is_some_and(|r| is_extended(r) && !r.starts_with("storageclass"))
}

/// The resource a `hard` key measures, if this cluster serves it.
pub fn tracked_resource(key: &str) -> Option<&'static ResourceInfo> {
    let core = |plural: &str| {
        resources::all()
            .into_iter()
            .find(|r| r.group.is_empty() && r.plural == plural)
    };
    if is_pod_key(key) {
        return core("pods");
    }
    match key {
        "services" | "services.nodeports" | "services.loadbalancers" => return core("services"),
        "persistentvolumeclaims" | "requests.storage" => return core("persistentvolumeclaims"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => return core(key),
        _ => {}
    }
    if key.contains(".storageclass.storage.k8s.io/") {
        return core("persistentvolumeclaims");
    }
    let counted = key.strip_prefix("count/")?;
    let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
    resources::all()
        .into_iter()
        .find(|r| r.namespaced && r.group == group && r.plural == plural)
}

/// `count/<plural>` or `count/<plural>.<group>`.
fn count_key(info: &ResourceInfo) -> String {
    format!("count/{}", info.qualified())
}

/// `QuotaV1Pod`: whether a pod's compute resources (and `pods`) still count.
pub fn pod_counts(pod: &Value, now: DateTime<Utc>) -> bool {
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let deletion = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    match (
        deletion,
        pod["metadata"]["deletionGracePeriodSeconds"].as_i64(),
    ) {
        (Some(at), Some(grace)) => now <= at.with_timezone(&Utc) + chrono::Duration::seconds(grace),
        _ => true,
    }
}

/// `podComputeUsageHelper`: the quota keys a set of requests and limits fills.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Quantity::count(1));
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(r) = requests.get(res) {
            out.insert(res.into(), *r);
            out.insert(format!("requests.{res}"), *r);
        }
        if let Some(l) = limits.get(res) {
            out.insert(format!("limits.{res}"), *l);
        }
    }
    for (name, r) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *r);
            out.insert(format!("requests.{name}"), *r);
        } else if is_extended(name) {
            out.insert(format!("requests.{name}"), *r);
        }
    }
    out
}

fn container_list(c: &Value, field: &str) -> ResourceList {
    parse_list(&c["resources"][field])
}

/// A pod's usage: `count/pods` always; the rest while it counts.
pub fn pod_usage(pod: &Value, now: DateTime<Utc>) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), Quantity::count(1));
    if !pod_counts(pod, now) {
        return out;
    }
    let (mut requests, mut limits) = (ResourceList::new(), ResourceList::new());
    let spec = &pod["spec"];
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (k, v) in container_list(c, "requests") {
            add_to(&mut requests, &k, v);
        }
        for (k, v) in container_list(c, "limits") {
            add_to(&mut limits, &k, v);
        }
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        for (list, field) in [(&mut requests, "requests"), (&mut limits, "limits")] {
            for (k, v) in container_list(c, field) {
                if list.get(&k).is_none_or(|t| v > *t) {
                    list.insert(k, v);
                }
            }
        }
    }
    for (k, v) in parse_list(&spec["overhead"]) {
        add_to(&mut requests, &k, v);
        add_to(&mut limits, &k, v);
    }
    out.extend(compute_usage(&requests, &limits));
    out
}

fn service_usage(svc: &Value) -> ResourceList {
    let ports = svc["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0) as i64;
    let mut out = ResourceList::new();
    out.insert("count/services".into(), Quantity::count(1));
    out.insert("services".into(), Quantity::count(1));
    out.insert("services.loadbalancers".into(), Quantity::zero());
    out.insert("services.nodeports".into(), Quantity::zero());
    match svc["spec"]["type"].as_str() {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), Quantity::count(ports));
        }
        Some("LoadBalancer") => {
            let node_ports = if svc["spec"]["allocateLoadBalancerNodePorts"] == false {
                svc["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                    .count() as i64
            } else {
                ports
            };
            out.insert("services.nodeports".into(), Quantity::count(node_ports));
            out.insert("services.loadbalancers".into(), Quantity::count(1));
        }
        _ => {}
    }
    out
}

fn pvc_usage(pvc: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/persistentvolumeclaims".into(), Quantity::count(1));
    out.insert("persistentvolumeclaims".into(), Quantity::count(1));
    let class = pvc["spec"]["storageClassName"].as_str().unwrap_or_default();
    let class_key = |what: &str| format!("{class}.storageclass.storage.k8s.io/{what}");
    if !class.is_empty() {
        out.insert(class_key("persistentvolumeclaims"), Quantity::count(1));
    }
    // The larger of what is asked and what was allocated (a resize in progress).
    let requested = Quantity::from_json(&pvc["spec"]["resources"]["requests"]["storage"]);
    let allocated = Quantity::from_json(&pvc["status"]["allocatedResources"]["storage"]);
    if let Some(storage) = requested.into_iter().chain(allocated).max() {
        out.insert("requests.storage".into(), storage);
        if !class.is_empty() {
            out.insert(class_key("requests.storage"), storage);
        }
    }
    out
}

/// What one object of `info` uses.
pub fn object_usage(info: &ResourceInfo, object: &Value, now: DateTime<Utc>) -> ResourceList {
    match (info.group, info.plural) {
        ("", "pods") => pod_usage(object, now),
        ("", "services") => service_usage(object),
        ("", "persistentvolumeclaims") => pvc_usage(object),
        _ => {
            let mut out = ResourceList::new();
            out.insert(count_key(info), Quantity::count(1));
            if info.group.is_empty()
                && matches!(
                    info.plural,
                    "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas"
                )
            {
                out.insert(info.plural.to_string(), Quantity::count(1));
            }
            out
        }
    }
}

/// A quota's scope selectors: `spec.scopes` (as `Exists`) and `spec.scopeSelector`.
fn scope_selectors(quota: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| json!({"scopeName": s, "operator": "Exists"}))
        .collect();
    out.extend(
        quota["spec"]["scopeSelector"]["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned(),
    );
    out
}

/// `podMatchesScopeFunc` for one selector.
fn pod_matches_scope(selector: &Value, pod: &Value) -> bool {
    let spec = &pod["spec"];
    let terminating = spec["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0);
    let best_effort = qos_class(spec) == "BestEffort";
    match selector["scopeName"].as_str() {
        Some("Terminating") => terminating,
        Some("NotTerminating") => !terminating,
        Some("BestEffort") => best_effort,
        Some("NotBestEffort") => !best_effort,
        Some("PriorityClass") => {
            let class = spec["priorityClassName"].as_str().unwrap_or_default();
            let values: Vec<&str> = selector["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // Upstream matches a label set `{PriorityClass: <name>}`: the key is always
            // there, so `DoesNotExist` never matches and `Exists` asks for a name.
            match selector["operator"].as_str() {
                Some("In") => values.contains(&class),
                Some("NotIn") => !values.contains(&class),
                Some("Exists") => !class.is_empty(),
                _ => false,
            }
        }
        Some("CrossNamespacePodAffinity") => ["podAffinity", "podAntiAffinity"].iter().any(|a| {
            [
                "requiredDuringSchedulingIgnoredDuringExecution",
                "preferredDuringSchedulingIgnoredDuringExecution",
            ]
            .iter()
            .flat_map(|w| spec["affinity"][a][w].as_array().into_iter().flatten())
            .any(|t| {
                let t = if t["podAffinityTerm"].is_object() {
                    &t["podAffinityTerm"]
                } else {
                    t
                };
                t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
                    || !t["namespaceSelector"].is_null()
            })
        }),
        _ => false,
    }
}

/// Whether `quota`'s scopes select `object` (of `info`): pods by scope, other objects only
/// by an unscoped quota.
pub fn scopes_match(quota: &Value, info: &ResourceInfo, object: &Value) -> bool {
    let selectors = scope_selectors(quota);
    if info.group.is_empty() && info.plural == "pods" {
        selectors.iter().all(|s| pod_matches_scope(s, object))
    } else {
        selectors.is_empty()
    }
}

/// The quota's enforced limits: `status.hard` once set, else `spec.hard`.
pub fn hard_of(quota: &Value) -> ResourceList {
    if quota["status"]["hard"].is_object() {
        parse_list(&quota["status"]["hard"])
    } else {
        parse_list(&quota["spec"]["hard"])
    }
}

/// The quota's usage from the objects of its namespace: every `spec.hard` key, zero when
/// nothing uses it. `objects` lists one resource's objects in the quota's namespace; when
/// `only` is given, keys of other resources are left out.
pub fn compute_used(
    quota: &Value,
    hard: &ResourceList,
    only: Option<&ResourceInfo>,
    mut objects: impl FnMut(&'static ResourceInfo) -> Vec<Arc<Value>>,
    now: DateTime<Utc>,
) -> ResourceList {
    let mut used = ResourceList::new();
    let mut by_resource: BTreeMap<(&str, &str), (&'static ResourceInfo, Vec<&String>)> =
        BTreeMap::new();
    for key in hard.keys() {
        let Some(info) = tracked_resource(key) else {
            continue;
        };
        if only.is_some_and(|o| o.group != info.group || o.plural != info.plural) {
            continue;
        }
        used.insert(key.clone(), Quantity::zero());
        by_resource
            .entry((info.group, info.plural))
            .or_insert((info, Vec::new()))
            .1
            .push(key);
    }
    for (info, keys) in by_resource.into_values() {
        for object in objects(info) {
            if !scopes_match(quota, info, &object) {
                continue;
            }
            let usage = object_usage(info, &object, now);
            for key in &keys {
                if let Some(q) = usage.get(key.as_str()) {
                    add_to(&mut used, key, *q);
                }
            }
        }
    }
    used
}

fn pretty(list: &ResourceList, keys: &[String]) -> String {
    keys.iter()
        .filter_map(|k| list.get(k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// `podEvaluator.Constraints`: each container must name what the quota limits among
/// cpu and memory requests and limits.
fn pod_constraints(hard: &ResourceList, pod: &Value) -> Option<String> {
    let required: Vec<&str> = MUST_SPECIFY
        .iter()
        .copied()
        .filter(|k| hard.contains_key(*k))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for key in ["containers", "initContainers"] {
        for c in pod["spec"][key].as_array().into_iter().flatten() {
            let has = compute_usage(&container_list(c, "requests"), &container_list(c, "limits"));
            for r in &required {
                if !has.contains_key(*r) {
                    missing
                        .entry(*r)
                        .or_default()
                        .push(c["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(r, mut names)| {
            names.sort();
            names.dedup();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// One quota of the namespace with its current usage.
pub struct QuotaState<'a> {
    pub quota: &'a Value,
    pub hard: ResourceList,
    pub used: ResourceList,
}

/// `CheckRequest` for a create: the refusal's message (without the `… is forbidden: `
/// prefix), or `None` when `object` fits every quota that selects it.
pub fn check_create(
    quotas: &[QuotaState],
    info: &ResourceInfo,
    object: &Value,
    now: DateTime<Utc>,
) -> Option<String> {
    let is_pod = info.group.is_empty() && info.plural == "pods";
    let mut interesting = Vec::new();
    for state in quotas {
        let matching: ResourceList = state
            .hard
            .iter()
            .filter(|(k, _)| {
                tracked_resource(k)
                    .is_some_and(|r| r.group == info.group && r.plural == info.plural)
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if matching.is_empty() || !scopes_match(state.quota, info, object) {
            continue;
        }
        if is_pod {
            if let Some(message) = pod_constraints(&matching, object) {
                let name = object_name(state.quota).unwrap_or_default();
                return Some(format!("failed quota: {name}: {message}"));
            }
        }
        interesting.push(state);
    }
    if interesting.is_empty() {
        return None;
    }
    let usage = object_usage(info, object, now);
    let negative: Vec<&str> = usage
        .iter()
        .filter(|(_, v)| v.is_negative())
        .map(|(k, _)| k.as_str())
        .collect();
    if !negative.is_empty() {
        return Some(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        ));
    }
    for state in interesting {
        let requested: ResourceList = usage
            .iter()
            .filter(|(k, v)| state.hard.contains_key(*k) && !v.is_zero())
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let exceeded: Vec<String> = requested
            .iter()
            .filter(|(k, v)| {
                let used = state.used.get(*k).copied().unwrap_or_default();
                used.add(v) > state.hard[*k]
            })
            .map(|(k, _)| k.clone())
            .collect();
        if !exceeded.is_empty() {
            return Some(format!(
                "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                object_name(state.quota).unwrap_or_default(),
                pretty(&requested, &exceeded),
                pretty(&state.used, &exceeded),
                pretty(&state.hard, &exceeded)
            ));
        }
    }
    None
}

/// Admission's `NewForbidden`: `<resource> "<name>" is forbidden: <message>`, with the
/// Status `details` naming the object.
pub(super) fn forbidden(info: &ResourceInfo, object: &Value, message: &str) -> ApiError {
    let name = object_name(object).unwrap_or_default();
    let mut error = ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {message}",
        info.qualified()
    ));
    let mut details = json!({"name": name, "kind": info.plural});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    error.details = Some(details);
    error
}

/// Held from the quota check until the admitted object is stored (see the module header).
pub(crate) struct QuotaGuard(#[allow(dead_code)] Option<MutexGuard<'static, ()>>);

/// One lock per namespace that has ever had a quota checked; a few bytes each, kept for
/// the life of the process so that guards can be `'static`.
fn namespace_lock(ns: &str) -> &'static Mutex<()> {
    static LOCKS: LazyLock<Mutex<HashMap<String, &'static Mutex<()>>>> =
        LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks
        .entry(ns.to_string())
        .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
}

/// The plugin on a create of `object` into `ns`: refuses what exceeds a quota, and returns
/// the guard the caller keeps until the object is stored.
pub(crate) fn admit_create(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &Value,
) -> Result<QuotaGuard, ApiError> {
    if !info.namespaced || ns.is_empty() || info.create_only {
        return Ok(QuotaGuard(None));
    }
    let quota_resource = resources::RESOURCE_QUOTAS.resource();
    if server.registry.list(quota_resource, Some(ns)).0.is_empty() {
        return Ok(QuotaGuard(None));
    }
    let guard = namespace_lock(ns).lock().unwrap_or_else(|e| e.into_inner());
    let (quotas, _) = server.registry.list(quota_resource, Some(ns));
    let now = Utc::now();
    let mut listed: HashMap<(&str, &str), Vec<Arc<Value>>> = HashMap::new();
    let states: Vec<QuotaState> = quotas
        .iter()
        .map(|quota| {
            let hard = hard_of(quota);
            let used = compute_used(
                quota,
                &hard,
                Some(info),
                |r| {
                    listed
                        .entry((r.group, r.plural))
                        .or_insert_with(|| server.registry.list(r.resource(), Some(ns)).0)
                        .clone()
                },
                now,
            );
            QuotaState { quota, hard, used }
        })
        .collect();
    if let Some(message) = check_create(&states, info, object, now) {
        return Err(forbidden(info, object, &message));
    }
    Ok(QuotaGuard(Some(guard)))
}

/// A ResourceQuota being created or updated: validation, then `status.hard` and
/// `status.used` filled at once (upstream leaves them to the controller, and refuses
/// creates with `status unknown for quota` until it has run; here the quota is in force
/// from its first write).
pub(crate) fn admit_quota(server: &ApiServer, ns: &str, quota: &mut Value) -> Result<(), ApiError> {
    super::invalid(&resources::RESOURCE_QUOTAS, quota, validate_quota(quota))?;
    let hard = parse_list(&quota["spec"]["hard"]);
    let used = compute_used(
        quota,
        &hard,
        None,
        |r| server.registry.list(r.resource(), Some(ns)).0,
        Utc::now(),
    );
    quota["status"] = json!({"hard": list_json(&hard), "used": list_json(&used)});
    Ok(())
}

/// `ValidateResourceQuota`: quantities, non-negative, known scopes.
pub fn validate_quota(quota: &Value) -> Causes {
    let mut causes = Causes::new();
    for (k, v) in quota["spec"]["hard"].as_object().into_iter().flatten() {
        let field = format!("spec.hard[{k}]");
        match Quantity::from_json(v) {
            None => causes.push((field, format!("Invalid value: {v}: {QUANTITY_REGEX_MSG}"))),
            Some(q) if q.is_negative() => causes.push((
                field,
                format!("Invalid value: \"{q}\": must be greater than or equal to 0"),
            )),
            Some(_) => {}
        }
    }
    let supported = SCOPES
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for (i, s) in quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = s.as_str().unwrap_or_default();
        if !SCOPES.contains(&name) {
            causes.push((
                format!("spec.scopes[{i}]"),
                format!("Unsupported value: \"{name}\": supported values: {supported}"),
            ));
        }
    }
    for (i, e) in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = e["scopeName"].as_str().unwrap_or_default();
        if !SCOPES.contains(&name) {
            causes.push((
                format!("spec.scopeSelector.matchExpressions[{i}].scopeName"),
                format!("Unsupported value: \"{name}\": supported values: {supported}"),
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn pod(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "512Mi"}}}]}, "status": {"phase": "Running"}})
    }

    fn quota(hard: Value) -> Value {
        json!({"metadata": {"name": "compute"}, "spec": {"hard": hard}})
    }

    fn used_of(q: &Value, pods: &[Value]) -> ResourceList {
        let pods: Vec<Arc<Value>> = pods.iter().cloned().map(Arc::new).collect();
        compute_used(
            q,
            &hard_of(q),
            None,
            |r| {
                if r.plural == "pods" {
                    pods.clone()
                } else {
                    vec![]
                }
            },
            now(),
        )
    }

    #[test]
    fn usage_sums_non_terminal_pods() {
        let q = quota(
            json!({"requests.cpu": "4", "requests.memory": "8Gi", "pods": "10", "count/pods": "10", "count/configmaps": "2"}),
        );
        let mut done = pod("done", "1");
        done["status"]["phase"] = json!("Succeeded");
        let used = used_of(&q, &[pod("a", "1"), pod("b", "500m"), done]);
        assert_eq!(
            list_json(&used),
            json!({"count/configmaps": "0", "count/pods": "3", "pods": "2", "requests.cpu": "1500m", "requests.memory": "1Gi"})
        );
    }

    #[test]
    fn exceeded_message_is_kubes() {
        let q = quota(json!({"requests.cpu": "4", "pods": "10"}));
        let used = used_of(&q, &[pod("a", "3")]);
        let states = [QuotaState {
            quota: &q,
            hard: hard_of(&q),
            used,
        }];
        assert_eq!(
            check_create(&states, &resources::PODS, &pod("x", "2"), now()).unwrap(),
            "exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=3, limited: requests.cpu=4"
        );
        assert_eq!(
            check_create(&states, &resources::PODS, &pod("x", "1"), now()),
            None
        );
    }

    #[test]
    fn missing_requests_and_limits_are_named_per_container() {
        let q = quota(json!({"requests.cpu": "4", "limits.cpu": "4"}));
        let p = json!({"metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "spark-kubernetes-executor", "resources": {"requests": {"cpu": "1"}}},
            {"name": "sidecar"}]}});
        let states = [QuotaState {
            quota: &q,
            hard: hard_of(&q),
            used: ResourceList::new(),
        }];
        assert_eq!(
            check_create(&states, &resources::PODS, &p, now()).unwrap(),
            "failed quota: compute: must specify limits.cpu for: sidecar,spark-kubernetes-executor; requests.cpu for: sidecar"
        );
    }

    #[test]
    fn scopes_select_pods() {
        let best_effort = json!({"spec": {"containers": [{"name": "c"}]}});
        let burstable = pod("b", "1");
        let mut terminating = pod("t", "1");
        terminating["spec"]["activeDeadlineSeconds"] = json!(60);
        let scoped = |scopes: Value| json!({"spec": {"scopes": scopes}});
        let p = &resources::PODS;
        assert!(scopes_match(
            &scoped(json!(["BestEffort"])),
            p,
            &best_effort
        ));
        assert!(!scopes_match(&scoped(json!(["BestEffort"])), p, &burstable));
        assert!(scopes_match(
            &scoped(json!(["NotBestEffort", "NotTerminating"])),
            p,
            &burstable
        ));
        assert!(scopes_match(
            &scoped(json!(["Terminating"])),
            p,
            &terminating
        ));
        assert!(!scopes_match(
            &scoped(json!(["Terminating"])),
            &resources::CONFIGMAPS,
            &json!({})
        ));
        let by_class = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high-priority"]}]}}});
        let mut high = pod("h", "1");
        high["spec"]["priorityClassName"] = json!("high-priority");
        assert!(scopes_match(&by_class, p, &high));
        assert!(!scopes_match(&by_class, p, &burstable));
    }

    #[test]
    fn object_counts_and_services() {
        assert_eq!(
            tracked_resource("count/deployments.apps").unwrap().kind,
            "Deployment"
        );
        assert_eq!(tracked_resource("count/jobs.batch").unwrap().kind, "Job");
        assert_eq!(
            tracked_resource("requests.storage").unwrap().plural,
            "persistentvolumeclaims"
        );
        assert_eq!(tracked_resource("requests.cpu").unwrap().plural, "pods");
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            object_usage(&resources::SERVICES, &svc, now())["services.nodeports"],
            Quantity::count(2)
        );
        let q = quota(json!({"services.nodeports": "1"}));
        let states = [QuotaState {
            quota: &q,
            hard: hard_of(&q),
            used: used_of(&q, &[]),
        }];
        assert_eq!(
            check_create(&states, &resources::SERVICES, &svc, now()).unwrap(),
            "exceeded quota: compute, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
        );
        let causes = validate_quota(
            &json!({"spec": {"hard": {"cpu": "x", "pods": "-1"}, "scopes": ["Sometimes"]}}),
        );
        assert_eq!(causes.len(), 3);
        assert_eq!(
            causes[1].1,
            "Invalid value: \"-1\": must be greater than or equal to 0"
        );
    }
}
