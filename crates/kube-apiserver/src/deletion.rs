//! Deletion as the apiserver does it: preconditions, graceful pod deletion, finalizers
//! (`foregroundDeletion`, `orphan`, anything else) and namespace termination.
//!
//! Who finishes a deletion: the kubelet removes gracefully deleted pods once their
//! containers are stopped; the garbage collector removes `foregroundDeletion`/`orphan`;
//! the namespace controller empties a Terminating namespace and clears its finalizer.
//! An update that clears the last finalizer of an object being deleted removes it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::Query;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::ApiServer;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From the `DeleteOptions` body (if any) and the query; the query wins.
    pub fn parse(query: &Query, body: &[u8]) -> Result<Self, ApiError> {
        let mut opts = Self::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
            opts.grace_period_seconds = value.get("gracePeriodSeconds").and_then(Value::as_i64);
            opts.propagation_policy = value
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from);
            opts.orphan_dependents = value.get("orphanDependents").and_then(Value::as_bool);
            opts.precondition_uid = value
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            opts.precondition_resource_version = value
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            opts.dry_run = value
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        }
        if let Some(grace) = query.get("gracePeriodSeconds") {
            opts.grace_period_seconds = Some(
                grace
                    .parse()
                    .map_err(|_| ApiError::bad_request("gracePeriodSeconds must be an integer"))?,
            );
        }
        if let Some(policy) = query.get("propagationPolicy") {
            opts.propagation_policy = Some(policy.to_string());
        }
        if let Some(orphan) = query.get("orphanDependents") {
            opts.orphan_dependents = Some(orphan == "true");
        }
        if query.get("dryRun") == Some("All") {
            opts.dry_run = true;
        }
        if let Some(policy) = &opts.propagation_policy {
            if !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan") {
                return Err(ApiError::invalid("", "DeleteOptions", "", &[(
                    "propagationPolicy".into(),
                    format!("Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""),
                )]));
            }
            if opts.orphan_dependents.is_some() {
                return Err(ApiError::invalid(
                    "",
                    "DeleteOptions",
                    "",
                    &[(
                        "propagationPolicy".into(),
                        "Invalid value: orphanDependents and propagationPolicy cannot be both set"
                            .into(),
                    )],
                ));
            }
        }
        Ok(opts)
    }
}

/// What a DELETE does to the stored object.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Remove it now (emits DELETED).
    Remove,
    /// Store this (deletionTimestamp, finalizers, phase…); someone else finishes.
    Update(Value),
    /// Already being deleted and nothing to change.
    Unchanged,
}

fn is_pod(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

fn is_namespace(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "namespaces"
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Decides what a DELETE does (pure; `now` is RFC 3339 arithmetic's base).
pub fn plan(
    info: &ResourceInfo,
    current: &Value,
    opts: &DeleteOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Plan {
    let ts = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // `next` is a copy of the whole object, made only where the plan is an update: most
    // deletions of a busy cluster are kubelets' final ones, which remove.
    let mut finals = finalizers(current);
    let orphan = opts.propagation_policy.as_deref() == Some("Orphan")
        || opts.orphan_dependents == Some(true);
    let foreground = opts.propagation_policy.as_deref() == Some("Foreground");
    let background = opts.propagation_policy.as_deref() == Some("Background")
        || opts.orphan_dependents == Some(false);
    if orphan {
        finals.retain(|f| f != "foregroundDeletion");
        if !finals.iter().any(|f| f == "orphan") {
            finals.push("orphan".into());
        }
    } else if foreground {
        finals.retain(|f| f != "orphan");
        if !finals.iter().any(|f| f == "foregroundDeletion") {
            finals.push("foregroundDeletion".into());
        }
    } else if background {
        finals.retain(|f| f != "orphan" && f != "foregroundDeletion");
    }

    if is_namespace(info) {
        let spec_finalizers = current
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !spec_finalizers && finals.is_empty() {
            return Plan::Remove;
        }
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Plan::Unchanged;
        }
        let mut next = current.clone();
        next["metadata"]["deletionTimestamp"] = json!(ts(now));
        next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        next["metadata"]["finalizers"] = json!(finals);
        next["status"]["phase"] = json!("Terminating");
        return Plan::Update(strip_empty_finalizers(next));
    }

    // Grace period: pods that are bound and still running get one; everything else is 0.
    let mut grace = 0i64;
    if is_pod(info) {
        let bound = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = current
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let terminal = matches!(phase, "Succeeded" | "Failed");
        grace = opts
            .grace_period_seconds
            .or_else(|| {
                current
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0);
        if !bound || terminal {
            grace = 0;
        }
    }

    if let Some(existing) = current
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
    {
        // Already being deleted: only a shorter grace period (or new finalizers) changes it.
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            if grace < existing && grace == 0 && finals.is_empty() {
                return Plan::Remove;
            }
            let mut next = current.clone();
            if grace < existing {
                next["metadata"]["deletionTimestamp"] =
                    json!(ts(now + chrono::Duration::seconds(grace)));
                next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            next["metadata"]["finalizers"] = json!(finals);
            let next = strip_empty_finalizers(next);
            return if next == *current {
                Plan::Unchanged
            } else {
                Plan::Update(next)
            };
        }
    } else if current.pointer("/metadata/deletionTimestamp").is_some() {
        let mut next = current.clone();
        next["metadata"]["finalizers"] = json!(finals);
        let next = strip_empty_finalizers(next);
        return if next == *current {
            Plan::Unchanged
        } else {
            Plan::Update(next)
        };
    }

    if grace == 0 && finals.is_empty() {
        return Plan::Remove;
    }
    let mut next = current.clone();
    next["metadata"]["deletionTimestamp"] = json!(ts(now + chrono::Duration::seconds(grace)));
    next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    next["metadata"]["finalizers"] = json!(finals);
    Plan::Update(strip_empty_finalizers(next))
}

fn strip_empty_finalizers(mut object: Value) -> Value {
    if object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.is_empty())
    {
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("finalizers");
    }
    object
}

/// Namespaces the apiserver refuses to delete.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// DELETE of one object; returns the object as it is after the call.
pub fn delete_internal(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Arc<Value>, ApiError> {
    let store_ns = if info.namespaced { ns } else { "" };
    if is_namespace(info) && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    for _ in 0..16 {
        let current = server
            .registry
            .get(info.resource(), store_ns, name)
            .ok_or_else(|| ApiError::not_found(info.group, info.plural, name))?;
        let meta = |f: &str| {
            current
                .pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .map(String::from)
        };
        if let Some(uid) = &opts.precondition_uid {
            if meta("uid").as_ref() != Some(uid) {
                let mut err = ApiError::conflict(info.group, info.plural, name);
                err.message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    info.qualified(),
                    meta("uid").unwrap_or_default()
                );
                return Err(err);
            }
        }
        if let Some(rv) = &opts.precondition_resource_version {
            if meta("resourceVersion").as_ref() != Some(rv) {
                let mut err = ApiError::conflict(info.group, info.plural, name);
                err.message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    info.qualified(),
                    meta("resourceVersion").unwrap_or_default()
                );
                return Err(err);
            }
        }
        let decided = plan(info, &current, opts, chrono::Utc::now());
        if opts.dry_run {
            return Ok(match decided {
                Plan::Update(next) => Arc::new(next),
                _ => current,
            });
        }
        match decided {
            Plan::Remove => {
                let removed = server.registry.remove(info.resource(), store_ns, name)?;
                crate::crd::object_removed(server, info, &removed)?;
                return Ok(removed);
            }
            Plan::Unchanged => {
                if crate::crd::is_crd(info) {
                    crate::crd::cleanup(server, &current)?;
                }
                return Ok(current);
            }
            Plan::Update(mut next) => {
                next["metadata"]["resourceVersion"] =
                    json!(meta("resourceVersion").unwrap_or_default());
                match server
                    .registry
                    .update(info.resource(), store_ns, name, next)
                {
                    Ok(stored) => {
                        if crate::crd::is_crd(info) {
                            // Deleting a CRD deletes its objects first (kube-apiserver's
                            // customresourcecleanup finalizer); the CRD goes after them.
                            crate::crd::cleanup(server, &stored)?;
                            if let Some(now) = server.registry.get(info.resource(), "", name) {
                                return Ok(now);
                            }
                        }
                        return Ok(stored);
                    }
                    Err(e) if e.reason == "Conflict" => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(ApiError::conflict(info.group, info.plural, name))
}

/// After an update: an object being deleted whose finalizers are all gone (and, for pods,
/// whose grace period is over) is removed, as the apiserver does.
pub fn remove_if_finalized(
    server: &ApiServer,
    info: &ResourceInfo,
    store_ns: &str,
    object: &std::sync::Arc<Value>,
) -> Result<std::sync::Arc<Value>, ApiError> {
    let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    let no_finalizers = finalizers(object).is_empty();
    let grace_over = object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0;
    let namespace_done = !is_namespace(info)
        || object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
    if deleting && no_finalizers && grace_over && namespace_done {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match server.registry.remove(info.resource(), store_ns, name) {
            Ok(removed) => {
                crate::crd::object_removed(server, info, &removed)?;
                return Ok(removed);
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(object.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{CONFIGMAPS, NAMESPACES, PODS};

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn pod(node: Option<&str>, phase: &str) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": phase}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    }

    #[test]
    fn bound_running_pods_are_deleted_gracefully() {
        let Plan::Update(next) = plan(
            &PODS,
            &pod(Some("n"), "Running"),
            &DeleteOptions::default(),
            now(),
        ) else {
            panic!()
        };
        assert_eq!(next["metadata"]["deletionGracePeriodSeconds"], 30);
        assert_eq!(
            next["metadata"]["deletionTimestamp"],
            "2025-01-01T00:00:30Z"
        );
        let mut p = pod(Some("n"), "Running");
        p["spec"]["terminationGracePeriodSeconds"] = json!(5);
        let Plan::Update(next) = plan(&PODS, &p, &DeleteOptions::default(), now()) else {
            panic!()
        };
        assert_eq!(next["metadata"]["deletionGracePeriodSeconds"], 5);
        // A shorter grace period on a second delete shortens it; zero removes.
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(plan(&PODS, &next, &opts, now()), Plan::Remove);
        assert_eq!(
            plan(&PODS, &next, &DeleteOptions::default(), now()),
            Plan::Unchanged
        );
    }

    #[test]
    fn unbound_terminal_and_forced_pods_go_at_once() {
        assert_eq!(
            plan(
                &PODS,
                &pod(None, "Pending"),
                &DeleteOptions::default(),
                now()
            ),
            Plan::Remove
        );
        assert_eq!(
            plan(
                &PODS,
                &pod(Some("n"), "Succeeded"),
                &DeleteOptions::default(),
                now()
            ),
            Plan::Remove
        );
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(
            plan(&PODS, &pod(Some("n"), "Running"), &force, now()),
            Plan::Remove
        );
    }

    #[test]
    fn finalizers_and_propagation() {
        let cm = json!({"metadata": {"name": "c", "finalizers": ["x/y"]}});
        let Plan::Update(next) = plan(&CONFIGMAPS, &cm, &DeleteOptions::default(), now()) else {
            panic!()
        };
        assert_eq!(
            next["metadata"]["deletionTimestamp"],
            "2025-01-01T00:00:00Z"
        );
        let plain = json!({"metadata": {"name": "c"}});
        let fg = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            ..Default::default()
        };
        let Plan::Update(next) = plan(&CONFIGMAPS, &plain, &fg, now()) else {
            panic!()
        };
        assert_eq!(
            next["metadata"]["finalizers"],
            json!(["foregroundDeletion"])
        );
        let orphan = DeleteOptions {
            propagation_policy: Some("Orphan".into()),
            ..Default::default()
        };
        let Plan::Update(next) = plan(&CONFIGMAPS, &plain, &orphan, now()) else {
            panic!()
        };
        assert_eq!(next["metadata"]["finalizers"], json!(["orphan"]));
        assert_eq!(
            plan(&CONFIGMAPS, &plain, &DeleteOptions::default(), now()),
            Plan::Remove
        );
    }

    #[test]
    fn namespaces_terminate() {
        let ns = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let Plan::Update(next) = plan(&NAMESPACES, &ns, &DeleteOptions::default(), now()) else {
            panic!()
        };
        assert_eq!(next["status"]["phase"], "Terminating");
        assert_eq!(
            plan(&NAMESPACES, &next, &DeleteOptions::default(), now()),
            Plan::Unchanged
        );
    }

    #[test]
    fn options_from_body_and_query() {
        let q = Query::parse(Some("gracePeriodSeconds=0"));
        let opts = DeleteOptions::parse(
            &q,
            br#"{"kind":"DeleteOptions","propagationPolicy":"Background","gracePeriodSeconds":10}"#,
        )
        .unwrap();
        assert_eq!(opts.grace_period_seconds, Some(0));
        assert_eq!(opts.propagation_policy.as_deref(), Some("Background"));
        assert_eq!(
            DeleteOptions::parse(&Query::default(), br#"{"propagationPolicy":"Sideways"}"#)
                .unwrap_err()
                .code,
            422
        );
    }
}
