//! The LimitRanger admission plugin and LimitRange objects' defaulting and validation.
//!
//! On a pod create, each LimitRange of the namespace first *defaults* the containers'
//! resources (`default` → limits, `defaultRequest` → requests, for type `Container`,
//! annotating the pod `kubernetes.io/limit-ranger`), then *enforces* `min`, `max` and
//! `maxLimitRequestRatio` per `Container` and per `Pod`; a PVC's `storage` request is held
//! to type `PersistentVolumeClaim`'s `min`/`max`. Refusals are kube's 403s:
//! `pods "x" is forbidden: maximum cpu usage per Container is 2, but limit is 3` (several
//! are joined as `[a, b]`, utilerrors' aggregate). Pod updates are not checked (containers'
//! resources cannot change), as upstream.
//!
//! Go ranges over maps in random order; here resources are checked in name order, so a
//! message with several refusals is stable.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::quantity::{Quantity, QUANTITY_REGEX_MSG};
use super::Causes;
use crate::error::ApiError;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";
const TYPES: [&str; 3] = ["Pod", "Container", "PersistentVolumeClaim"];

type List = BTreeMap<String, Quantity>;

fn list(value: &Value) -> List {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v)?)))
        .collect()
}

fn items(limit_range: &Value) -> impl Iterator<Item = &Value> {
    limit_range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `SetDefaults_LimitRangeItem`: for type Container, `default` falls back to `max`, and
/// `defaultRequest` to `default`, then to `min`.
pub fn default_limit_range(limit_range: &mut Value) {
    let Some(limits) = limit_range
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in limits {
        if item["type"] != "Container" {
            continue;
        }
        for (to, from) in [
            ("default", "max"),
            ("defaultRequest", "default"),
            ("defaultRequest", "min"),
        ] {
            let source = item.get(from).and_then(Value::as_object).cloned();
            for (k, v) in source.into_iter().flatten() {
                if !item.get(to).is_some_and(Value::is_object) {
                    item[to] = json!({});
                }
                if item[to].get(&k).is_none() {
                    item[to][&k] = v;
                }
            }
        }
    }
}

/// `ValidateLimitRange`: known types, quantities, and min ≤ defaultRequest ≤ default ≤ max.
pub fn validate_limit_range(limit_range: &Value) -> Causes {
    let mut causes = Causes::new();
    for (i, item) in items(limit_range).enumerate() {
        let path = format!("spec.limits[{i}]");
        let kind = item["type"].as_str().unwrap_or_default();
        if !TYPES.contains(&kind) {
            let what = if kind.is_empty() {
                "Required value".to_string()
            } else {
                format!("Unsupported value: \"{kind}\": supported values: \"Container\", \"PersistentVolumeClaim\", \"Pod\"")
            };
            causes.push((format!("{path}.type"), what));
        }
        for field in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            for (k, v) in item
                .get(field)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if Quantity::from_json(v).is_none() {
                    causes.push((
                        format!("{path}.{field}[{k}]"),
                        format!("Invalid value: {v}: {QUANTITY_REGEX_MSG}"),
                    ));
                }
            }
        }
        if kind == "Pod" {
            for field in ["default", "defaultRequest"] {
                if item
                    .get(field)
                    .is_some_and(|v| !v.as_object().is_none_or(|m| m.is_empty()))
                {
                    causes.push((
                        format!("{path}.{field}"),
                        "Forbidden: may not be specified when `type` is 'Pod'".into(),
                    ));
                }
            }
        }
        let (min, max) = (list(&item["min"]), list(&item["max"]));
        let (default, request) = (list(&item["default"]), list(&item["defaultRequest"]));
        let ratio = list(&item["maxLimitRequestRatio"]);
        let mut keys: Vec<&String> = min
            .keys()
            .chain(max.keys())
            .chain(default.keys())
            .chain(request.keys())
            .chain(ratio.keys())
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let invalid = |field: &str, value: &Quantity, message: String| {
                (
                    format!("{path}.{field}[{k}]"),
                    format!("Invalid value: \"{value}\": {message}"),
                )
            };
            let (mn, mx, d, dr) = (min.get(k), max.get(k), default.get(k), request.get(k));
            if let (Some(mn), Some(mx)) = (mn, mx) {
                if mn > mx {
                    causes.push(invalid(
                        "min",
                        mn,
                        format!("min value {mn} is greater than max value {mx}"),
                    ));
                }
            }
            if let (Some(dr), Some(mn)) = (dr, mn) {
                if mn > dr {
                    causes.push(invalid(
                        "defaultRequest",
                        dr,
                        format!("min value {mn} is greater than default request value {dr}"),
                    ));
                }
            }
            if let (Some(dr), Some(mx)) = (dr, mx) {
                if dr > mx {
                    causes.push(invalid(
                        "defaultRequest",
                        dr,
                        format!("default request value {dr} is greater than max value {mx}"),
                    ));
                }
            }
            if let (Some(dr), Some(d)) = (dr, d) {
                if dr > d {
                    causes.push(invalid(
                        "defaultRequest",
                        dr,
                        format!(
                            "default request value {dr} is greater than default limit value {d}"
                        ),
                    ));
                }
            }
            if let (Some(d), Some(mn)) = (d, mn) {
                if mn > d {
                    causes.push(invalid(
                        "default",
                        mn,
                        format!("min value {mn} is greater than default value {d}"),
                    ));
                }
            }
            if let (Some(d), Some(mx)) = (d, mx) {
                if d > mx {
                    causes.push(invalid(
                        "default",
                        mx,
                        format!("default value {d} is greater than max value {mx}"),
                    ));
                }
            }
            if let Some(r) = ratio.get(k) {
                if *r < Quantity::count(1) {
                    causes.push(invalid(
                        "maxLimitRequestRatio",
                        r,
                        format!("ratio {r} is less than 1"),
                    ));
                } else if let (Some(mn), Some(mx)) = (mn, mx) {
                    let limit = mx.milli_value() as f64 / mn.milli_value().max(1) as f64;
                    if r.milli_value() as f64 / 1000.0 > limit {
                        causes.push(invalid(
                            "maxLimitRequestRatio",
                            r,
                            format!("ratio {r} is greater than max/min = {limit:.6}"),
                        ));
                    }
                }
            }
        }
    }
    causes
}

/// `mergePodResourceRequirements` for one LimitRange: fills in unset container requests and
/// limits from the `Container` item's `defaultRequest` and `default`.
pub fn default_pod(limit_range: &Value, pod: &mut Value) {
    let (mut requests, mut limits) = (serde_json::Map::new(), serde_json::Map::new());
    for item in items(limit_range).filter(|i| i["type"] == "Container") {
        for (k, v) in item["defaultRequest"].as_object().into_iter().flatten() {
            requests.insert(k.clone(), v.clone());
        }
        for (k, v) in item["default"].as_object().into_iter().flatten() {
            limits.insert(k.clone(), v.clone());
        }
    }
    let mut notes: Vec<String> = Vec::new();
    for (key, what) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{key}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let mut set = |field: &str, defaults: &serde_json::Map<String, Value>| {
                let mut names: Vec<String> = Vec::new();
                for (k, v) in defaults {
                    if c.pointer(&format!("/resources/{field}/{k}")).is_none() {
                        if !c.get("resources").is_some_and(Value::is_object) {
                            c["resources"] = json!({});
                        }
                        if !c["resources"].get(field).is_some_and(Value::is_object) {
                            c["resources"][field] = json!({});
                        }
                        c["resources"][field][k] = v.clone();
                        names.push(k.clone());
                    }
                }
                names.sort();
                names
            };
            let set_requests = set("requests", &requests);
            let set_limits = set("limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {what} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    if !notes.is_empty() {
        if !pod
            .pointer("/metadata/annotations")
            .is_some_and(Value::is_object)
        {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"][ANNOTATION] =
            json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let Some(r) = req.get(res) else {
        return Some(format!(
            "minimum {res} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if r.milli_value() < enforced.milli_value() {
        return Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but request is {r}"
        ));
    }
    match lim.get(res) {
        Some(l) if l.milli_value() < enforced.milli_value() => Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but limit is {l}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let Some(l) = lim.get(res) else {
        return Some(format!(
            "maximum {res} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if l.milli_value() > enforced.milli_value() {
        return Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but limit is {l}"
        ));
    }
    match req.get(res) {
        Some(r) if r.milli_value() > enforced.milli_value() => Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but request is {r}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let r = req.get(res).map(Quantity::milli_value).unwrap_or(0);
    let l = lim.get(res).map(Quantity::milli_value).unwrap_or(0);
    if r == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"));
    }
    if l == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"));
    }
    let observed = l as f64 / r as f64;
    if observed * 1000.0 > enforced.milli_value() as f64 {
        return Some(format!("{res} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}"));
    }
    None
}

fn check(kind: &str, item: &Value, req: &List, lim: &List, errors: &mut Vec<String>) {
    for (field, constraint) in [
        (
            "min",
            min_constraint as fn(&str, &str, &Quantity, &List, &List) -> Option<String>,
        ),
        ("max", max_constraint),
        ("maxLimitRequestRatio", ratio_constraint),
    ] {
        for (res, enforced) in list(&item[field]) {
            errors.extend(constraint(kind, &res, &enforced, req, lim));
        }
    }
}

fn container_lists(c: &Value) -> (List, List) {
    (
        list(&c["resources"]["requests"]),
        list(&c["resources"]["limits"]),
    )
}

/// A pod's requests or limits: the containers' sum, or the largest init container's
/// when that is larger (init containers run one at a time, before the others).
fn pod_total(spec: &Value, field: &str) -> List {
    let mut total = List::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (k, v) in list(&c["resources"][field]) {
            let sum = total.get(&k).map(|t| t.add(&v)).unwrap_or(v);
            total.insert(k, sum);
        }
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        for (k, v) in list(&c["resources"][field]) {
            if total.get(&k).is_none_or(|t| v > *t) {
                total.insert(k, v);
            }
        }
    }
    total
}

/// `PodValidateLimitFunc` for one LimitRange: the refusals, in order.
pub fn validate_pod(limit_range: &Value, pod: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = &pod["spec"];
    for item in items(limit_range) {
        match item["type"].as_str() {
            Some("Container") => {
                for key in ["containers", "initContainers"] {
                    for c in spec[key].as_array().into_iter().flatten() {
                        let (req, lim) = container_lists(c);
                        check("Container", item, &req, &lim, &mut errors);
                    }
                }
            }
            Some("Pod") => {
                let (req, lim) = (pod_total(spec, "requests"), pod_total(spec, "limits"));
                check("Pod", item, &req, &lim, &mut errors);
            }
            _ => {}
        }
    }
    errors
}

/// `PersistentVolumeClaimValidateLimitFunc`: the claim's requests against min and max.
pub fn validate_pvc(limit_range: &Value, pvc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let req = list(&pvc["spec"]["resources"]["requests"]);
    let kind = "PersistentVolumeClaim";
    for item in items(limit_range).filter(|i| i["type"] == kind) {
        for (res, enforced) in list(&item["min"]) {
            errors.extend(min_constraint(kind, &res, &enforced, &req, &List::new()));
        }
        for (res, enforced) in list(&item["max"]) {
            match req.get(&res) {
                None => errors.push(format!(
                    "maximum {res} usage per {kind} is {enforced}.  No request is specified"
                )),
                Some(r) if r.milli_value() > enforced.milli_value() => errors.push(format!(
                    "maximum {res} usage per {kind} is {enforced}, but request is {r}"
                )),
                Some(_) => {}
            }
        }
    }
    errors
}

/// utilerrors' aggregate: one message as is, several as `[a, b]` (duplicates dropped).
pub fn aggregate(mut errors: Vec<String>) -> Option<String> {
    let mut seen = Vec::new();
    errors.retain(|e| {
        let new = !seen.contains(e);
        seen.push(e.clone());
        new
    });
    match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(format!("[{}]", errors.join(", "))),
    }
}

fn ranges(server: &ApiServer, ns: &str) -> Vec<Arc<Value>> {
    server
        .registry
        .list(resources::LIMIT_RANGES.resource(), Some(ns))
        .0
}

/// The mutating half on a pod create: defaults from every LimitRange of `ns`, in order.
pub(super) fn default_pod_from_ranges(server: &ApiServer, ns: &str, pod: &mut Value) {
    for range in ranges(server, ns) {
        default_pod(&range, pod);
    }
}

fn forbid(info: &ResourceInfo, object: &Value, errors: Vec<String>) -> Result<(), ApiError> {
    match aggregate(errors) {
        None => Ok(()),
        Some(message) => Err(super::quota::forbidden(info, object, &message)),
    }
}

/// The validating half on a pod or claim create: the first LimitRange refusing it wins.
pub(super) fn validate_against_ranges(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &Value,
) -> Result<(), ApiError> {
    for range in ranges(server, ns) {
        let errors = match info.plural {
            "pods" => validate_pod(&range, object),
            _ => validate_pvc(&range, object),
        };
        forbid(info, object, errors)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Value {
        let mut lr = json!({"metadata": {"name": "limits"}, "spec": {"limits": limits}});
        default_limit_range(&mut lr);
        lr
    }

    #[test]
    fn defaults_fill_unset_requests_and_limits_and_annotate() {
        let lr = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "1Gi"}, "defaultRequest": {"cpu": "250m"}}]),
        );
        // defaultRequest memory falls back to default (SetDefaults_LimitRangeItem).
        assert_eq!(lr["spec"]["limits"][0]["defaultRequest"]["memory"], "1Gi");
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "x"},
            {"name": "b", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]}});
        default_pod(&lr, &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "250m"
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "1Gi"
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["limits"]["cpu"],
            "1"
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b"
        );
    }

    #[test]
    fn min_max_and_ratio_messages_are_kubes() {
        let lr =
            range(json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Gi"}}]));
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "3", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "512Mi"}}}]}});
        assert_eq!(
            validate_pod(&lr, &pod),
            [
                "minimum memory usage per Container is 1Gi, but request is 512Mi",
                "maximum cpu usage per Container is 2, but limit is 3"
            ]
        );
        let lr = range(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]));
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "3"}, "requests": {"cpu": "1"}}}]}});
        assert_eq!(
            validate_pod(&lr, &pod),
            ["cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"]
        );
        let lr = range(json!([{"type": "Pod", "max": {"cpu": "1"}}]));
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "600m"}}},
            {"name": "b", "resources": {"limits": {"cpu": "600m"}}}]}});
        assert_eq!(
            validate_pod(&lr, &pod),
            ["maximum cpu usage per Pod is 1, but limit is 1200m"]
        );
        let lr = range(
            json!([{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}]),
        );
        let pvc = json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}});
        assert_eq!(
            validate_pvc(&lr, &pvc),
            ["maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"]
        );
        assert_eq!(
            aggregate(vec!["a".into(), "b".into(), "a".into()]).unwrap(),
            "[a, b]"
        );
    }

    #[test]
    fn limit_ranges_are_validated() {
        let lr =
            range(json!([{"type": "Container", "max": {"cpu": "1"}, "default": {"cpu": "2"}}]));
        let causes = validate_limit_range(&lr);
        assert_eq!(
            causes[0],
            (
                "spec.limits[0].defaultRequest[cpu]".to_string(),
                "Invalid value: \"2\": default request value 2 is greater than max value 1"
                    .to_string()
            )
        );
        assert!(causes
            .iter()
            .any(|(f, m)| f == "spec.limits[0].default[cpu]"
                && m.ends_with("default value 2 is greater than max value 1")));
        let causes = validate_limit_range(&range(json!([{"type": "Node"}])));
        assert_eq!(causes[0].0, "spec.limits[0].type");
    }
}
