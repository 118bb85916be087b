//! Admission: validation, defaulting and the admission plugins this cluster runs —
//! NamespaceLifecycle, Priority, ServiceAccount (token volume injection),
//! DefaultTolerationSeconds — plus the Service IP allocator and the Job selector.
//!
//! Pure functions (`default_*`, `validate_*`) do the work; `admit_create`/`admit_update`
//! add the registry look-ups. Nothing here runs under the registry lock.
//!
//! One file per plugin, as kube-apiserver keeps them: [`names`], [`pods`] (defaults,
//! DefaultTolerationSeconds, validation, update rules), [`service_account`], [`priority`],
//! [`namespaces`] (NamespaceLifecycle), [`services`] (defaults, ClusterIP allocation),
//! [`jobs`], [`storage`] (DefaultStorageClass, StorageObjectInUseProtection,
//! PersistentVolumeClaimResize, PVC/PV/StorageClass validation). This file runs them in
//! the apiserver's order. [`limit_ranger`] is LimitRanger (and LimitRange objects);
//! [`quota`] is ResourceQuota and its evaluators, with [`quantity`] arithmetic — it runs
//! last, from the create handler, which holds its guard until the object is stored.

mod apps;
pub mod hooks;
mod jobs;
mod limit_ranger;
mod names;
mod namespaces;
mod pods;
mod priority;
pub mod quantity;
pub mod quota;
mod service_account;
mod services;
pub mod storage;

pub use hooks::{ObjectValidator, Operation};
pub use jobs::{default_job, validate_job};
pub(crate) use names::random_suffix;
pub use names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, validate_name, DNS1035_MSG,
    SUBDOMAIN_MSG,
};
use namespaces::check_namespace;
use pods::POD_MUTABLE_MESSAGE;
pub use pods::{
    default_pod_spec, default_pull_policy, default_tolerations, pod_spec_update_allowed, qos_class,
    validate_pod_spec,
};
use priority::{admit_pod_priority, admit_priority_class};
use service_account::admit_pod_service_account;
pub use service_account::{inject_service_account_volume, service_account_volume};
pub(crate) use services::out_of_range_repairs;
use services::{admit_service_create, admit_service_update};
pub use services::{
    allocate_cluster_ip, allocate_node_port, default_service, Ipv4Cidr, DEFAULT_SERVICE_CIDR,
    NODE_PORT_RANGE,
};

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

type Causes = Vec<(String, String)>;

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    info.group == group && info.plural == plural
}

fn invalid(info: &ResourceInfo, object: &Value, causes: Causes) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        info.group,
        info.kind,
        object_name(object).unwrap_or_default(),
        &causes,
    ))
}

fn set_default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) {
        object[key] = value;
    }
}

fn default_secret(secret: &mut Value) {
    use base64::Engine;
    set_default(secret, "type", json!("Opaque"));
    if let Some(string_data) = secret.get("stringData").and_then(Value::as_object).cloned() {
        if !secret.get("data").is_some_and(Value::is_object) {
            secret["data"] = json!({});
        }
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            secret["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
        secret.as_object_mut().unwrap().remove("stringData");
    }
}

/// A mutating admission step for pods being created, supplied by the embedding binary
/// (the EKS pod-identity webhook, which lives with IAM in `sparkyard-services`).
pub trait PodMutator: Send + Sync {
    /// Mutates `pod` (JSON, already defaulted) given its service account, when it exists.
    fn mutate(&self, pod: &mut serde_json::Value, service_account: Option<&serde_json::Value>);
}

/// Admission of a create: validation, defaulting and the plugins, in the apiserver's order.
pub fn admit_create(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    let name = object_name(object).unwrap_or_default().to_string();
    if let Some(message) = validate_name(info, &name) {
        return invalid(info, object, vec![("metadata.name".into(), message)]);
    }
    if info.namespaced {
        check_namespace(server, info, ns, object)?;
    }
    crate::crd::check_not_terminating(server, info)?;
    crate::crd::admit_object(info, true, object)?;
    match (info.group, info.plural) {
        ("", "pods") => {
            default_pod_spec(&mut object["spec"]);
            default_tolerations(&mut object["spec"]);
            limit_ranger::default_pod_from_ranges(server, ns, object);
            admit_pod_service_account(server, ns, object)?;
            admit_pod_priority(server, object)?;
            if let Some(mutator) = server.pod_mutator.get() {
                let account = object
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .and_then(|sa| {
                        server
                            .registry
                            .get(resources::SERVICE_ACCOUNTS.resource(), ns, sa)
                    });
                mutator.mutate(object, account.as_deref());
            }
            invalid(
                info,
                object,
                validate_pod_spec(&object["spec"], "spec", &["Always", "OnFailure", "Never"]),
            )?;
            let qos = qos_class(&object["spec"]);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "namespaces") => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            if !object
                .pointer("/metadata/labels")
                .is_some_and(Value::is_object)
            {
                object["metadata"]["labels"] = json!({});
            }
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        ("", "services") => admit_service_create(server, ns, object)?,
        ("", "secrets") => default_secret(object),
        ("", "persistentvolumeclaims") => {
            let (classes, _) = server
                .registry
                .list(resources::STORAGE_CLASSES.resource(), None);
            let default = storage::default_class(classes.iter().map(|c| c.as_ref()));
            storage::default_claim_class(object, default);
            storage::default_claim(object);
            invalid(info, object, storage::validate_claim(object))?;
        }
        ("", "persistentvolumes") => {
            storage::default_volume(object);
            invalid(info, object, storage::validate_volume(object))?;
            object["status"] = json!({"phase": "Pending"});
        }
        ("storage.k8s.io", "storageclasses") => {
            storage::default_class_fields(object);
            invalid(info, object, storage::validate_class(object))?;
        }
        ("apps", plural @ ("deployments" | "replicasets" | "statefulsets" | "daemonsets")) => {
            apps::default_workload(plural, object);
            invalid(info, object, apps::validate_workload(plural, object))?;
            object["status"] = json!({});
        }
        ("batch", "jobs") => {
            let uid = uuid::Uuid::new_v4().to_string();
            object["metadata"]["uid"] = json!(uid);
            default_job(object, &uid);
            invalid(info, object, validate_job(object))?;
            object["status"] = json!({});
        }
        ("", "limitranges") => {
            limit_ranger::default_limit_range(object);
            invalid(info, object, limit_ranger::validate_limit_range(object))?;
        }
        ("", "resourcequotas") => quota::admit_quota(server, ns, object)?,
        ("scheduling.k8s.io", "priorityclasses") => admit_priority_class(server, object, None)?,
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crate::crd::admit_crd(None, object)?
        }
        ("policy", "poddisruptionbudgets") => {
            invalid(info, object, crate::pdb::validate(object))?;
            object["status"] = json!({});
        }
        _ => {}
    }
    // LimitRanger's validating half, after every mutation.
    if info.group.is_empty() && matches!(info.plural, "pods" | "persistentvolumeclaims") {
        limit_ranger::validate_against_ranges(server, info, ns, object)?;
    }
    run_hooks(server, info, Operation::Create, None, object)
}

/// Runs the registered [`ObjectValidator`]s, in registration order.
fn run_hooks(
    server: &ApiServer,
    info: &ResourceInfo,
    operation: Operation,
    old: Option<&Value>,
    object: &mut Value,
) -> Result<(), ApiError> {
    let hooks = server.validators.read().unwrap().clone();
    for hook in hooks {
        hook.admit(info, operation, old, object)?;
    }
    Ok(())
}

/// Side effects of a create: a new namespace gets its `default` service account and the
/// `kube-root-ca.crt` ConfigMap (the controllers of a real cluster do this at once).
pub fn after_create(
    server: &ApiServer,
    info: &'static ResourceInfo,
    created: &Value,
) -> Result<(), ApiError> {
    use super::handlers::{create_internal, CreateOptions};
    if crate::crd::is_crd(info) {
        crate::crd::install(created);
    }
    if is(info, "", "namespaces") {
        let ns = object_name(created).unwrap_or_default();
        for (res, object) in [
            (
                &resources::SERVICE_ACCOUNTS,
                json!({"metadata": {"name": "default"}}),
            ),
            (
                &resources::CONFIGMAPS,
                json!({"metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}}, "data": {"ca.crt": server.ca_pem.to_string()}}),
            ),
        ] {
            match create_internal(server, res, ns, object, &CreateOptions::default()) {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Admission of an update: defaulting of the new object and the immutability rules.
pub fn admit_update(
    server: &ApiServer,
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    match (info.group, info.plural) {
        ("", "pods") => {
            default_pod_spec(&mut new["spec"]);
            if !pod_spec_update_allowed(&old["spec"], &new["spec"]) {
                return invalid(info, new, vec![("spec".into(), POD_MUTABLE_MESSAGE.into())]);
            }
        }
        ("", "services") => {
            for key in ["clusterIP", "clusterIPs"] {
                let given = new
                    .pointer(&format!("/spec/{key}"))
                    .filter(|v| !v.is_null() && *v != "");
                if given.is_none() {
                    if let Some(old_value) = old.pointer(&format!("/spec/{key}")) {
                        new["spec"][key] = old_value.clone();
                    }
                }
            }
            if new.pointer("/spec/clusterIP") != old.pointer("/spec/clusterIP") {
                let ip = new
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                return invalid(
                    info,
                    new,
                    vec![(
                        "spec.clusterIP".into(),
                        format!("Invalid value: \"{ip}\": field is immutable"),
                    )],
                );
            }
            default_service(new);
            admit_service_update(server, old, new)?;
        }
        ("", "configmaps") | ("", "secrets") => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                let changed = old.get("data") != new.get("data")
                    || old.get("binaryData") != new.get("binaryData");
                if changed || new.get("immutable").and_then(Value::as_bool) != Some(true) {
                    return invalid(
                        info,
                        new,
                        vec![(
                            "data".into(),
                            "Forbidden: field is immutable when `immutable` is set".into(),
                        )],
                    );
                }
            }
            if info.plural == "secrets" {
                default_secret(new);
            }
        }
        ("", "persistentvolumeclaims") => {
            set_default(&mut new["spec"], "volumeMode", json!("Filesystem"));
            let mut causes = storage::claim_update_causes(old, new);
            causes.extend(storage::validate_claim(new));
            invalid(info, new, causes)?;
            let class = new
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .and_then(|c| {
                    server
                        .registry
                        .get(resources::STORAGE_CLASSES.resource(), "", c)
                });
            if let Some(why) = storage::resize_refusal(old, new, class.as_deref()) {
                return Err(ApiError::forbidden(format!(
                    "persistentvolumeclaims \"{}\" is forbidden: {why}",
                    object_name(new).unwrap_or_default()
                )));
            }
        }
        ("", "persistentvolumes") => {
            set_default(
                &mut new["spec"],
                "persistentVolumeReclaimPolicy",
                json!("Retain"),
            );
            set_default(&mut new["spec"], "volumeMode", json!("Filesystem"));
            invalid(info, new, storage::validate_volume(new))?;
        }
        ("storage.k8s.io", "storageclasses") => {
            storage::default_class_fields(new);
            let mut causes = storage::class_update_causes(old, new);
            causes.extend(storage::validate_class(new));
            invalid(info, new, causes)?;
        }
        ("apps", plural @ ("deployments" | "replicasets" | "statefulsets" | "daemonsets")) => {
            apps::default_workload(plural, new);
            let mut causes = apps::immutable_changes(plural, old, new);
            causes.extend(apps::validate_workload(plural, new));
            invalid(info, new, causes)?;
        }
        ("batch", "jobs") => {
            let uid = old
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            default_job(new, &uid);
            if old.pointer("/spec/selector") != new.pointer("/spec/selector") {
                return invalid(
                    info,
                    new,
                    vec![(
                        "spec.selector".into(),
                        "Invalid value: field is immutable".into(),
                    )],
                );
            }
            invalid(info, new, validate_job(new))?;
        }
        ("", "limitranges") => {
            limit_ranger::default_limit_range(new);
            invalid(info, new, limit_ranger::validate_limit_range(new))?;
        }
        ("", "resourcequotas") => {
            let ns = old["metadata"]["namespace"].as_str().unwrap_or_default();
            quota::admit_quota(server, ns, new)?
        }
        ("scheduling.k8s.io", "priorityclasses") => admit_priority_class(server, new, Some(old))?,
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crate::crd::admit_crd(Some(old), new)?
        }
        ("policy", "poddisruptionbudgets") => invalid(info, new, crate::pdb::validate(new))?,
        _ => {}
    }
    crate::crd::admit_object(info, false, new)?;
    run_hooks(server, info, Operation::Update, Some(old), new)
}
