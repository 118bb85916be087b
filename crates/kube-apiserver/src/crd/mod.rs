//! Custom resources: `apiextensions.k8s.io/v1` CustomResourceDefinitions and the resources
//! they define.
//!
//! A stored CRD is *installed*: each served version gets an entry in the resource table
//! (`resources::set_custom`, so routing, discovery, OpenAPI, RBAC and the [`Client`]
//! see it) and a [`Served`] record here (schema, printer columns). Installing happens
//! when a CRD is created or updated and, at start, for every stored CRD before a request
//! is served ([`load`]); deleting a CRD first deletes its objects (the
//! `customresourcecleanup` finalizer), then uninstalls it.
//!
//! Objects are stored once, in the storage version; other versions are served with
//! `apiVersion` rewritten (conversion strategy `None`). On create and update an object is
//! pruned, defaulted and validated against its version's schema ([`schema`]); defaults
//! are applied again on read.
//!
//! [`Client`]: crate::Client

pub mod columns;
pub mod definition;
pub mod schema;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};

use crate::deletion::{delete_internal, DeleteOptions};
use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources::{self, ResourceInfo, CUSTOM_RESOURCE_DEFINITIONS};
use crate::ApiServer;

/// What requests need of one served version of a custom resource.
pub struct Served {
    pub schema: Value,
    pub columns: Vec<Value>,
    /// `<group>/<storage version>`: the `apiVersion` objects are stored with.
    pub storage_api_version: String,
}

type Key = (String, String, String);

/// Served versions by (group, version, plural). Process-wide like the resource table it
/// completes.
static SERVED: RwLock<BTreeMap<Key, Arc<Served>>> = RwLock::new(BTreeMap::new());

fn key(info: &ResourceInfo) -> Key {
    (info.group.into(), info.version.into(), info.plural.into())
}

/// The served version `info` names, when it is a custom resource.
pub fn served(info: &ResourceInfo) -> Option<Arc<Served>> {
    if info.group.is_empty() || !info.group.contains('.') {
        return None;
    }
    SERVED.read().unwrap().get(&key(info)).cloned()
}

pub fn is_crd(info: &ResourceInfo) -> bool {
    info.group == CUSTOM_RESOURCE_DEFINITIONS.group
        && info.plural == CUSTOM_RESOURCE_DEFINITIONS.plural
}

fn group_plural(crd: &Value) -> (String, String) {
    let text = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (text("/spec/group"), text("/spec/names/plural"))
}

/// Serves what a stored CRD defines, replacing what it defined before.
pub fn install(crd: &Value) {
    let (group, plural) = group_plural(crd);
    let versions = definition::served_versions(crd);
    let Some(storage) = versions.first().filter(|v| v.storage) else {
        return;
    };
    let storage_api_version = storage.info.api_version();
    let mut served = SERVED.write().unwrap();
    served.retain(|(g, _, p), _| !(*g == group && *p == plural));
    for version in &versions {
        served.insert(
            key(&version.info),
            Arc::new(Served {
                schema: version.schema.clone(),
                columns: version.columns.clone(),
                storage_api_version: storage_api_version.clone(),
            }),
        );
    }
    let infos: Vec<ResourceInfo> = versions.iter().map(|v| v.info).collect();
    resources::set_custom(&group, &plural, &infos);
}

/// Stops serving what a (removed) CRD defined.
pub fn uninstall(crd: &Value) {
    let (group, plural) = group_plural(crd);
    SERVED
        .write()
        .unwrap()
        .retain(|(g, _, p), _| !(*g == group && *p == plural));
    resources::remove_custom(&group, &plural);
}

/// Installs every stored CRD: called before the server answers its first request.
pub fn load(server: &ApiServer) {
    let (crds, _) = server
        .registry
        .list(CUSTOM_RESOURCE_DEFINITIONS.resource(), None);
    for crd in crds {
        install(&crd);
    }
}

/// Create and update of a custom object: status kept out of a create (the status
/// subresource owns it), unknown fields pruned, defaults filled in, the schema checked;
/// a 422 `Invalid` naming every violation.
pub fn admit_object(
    info: &ResourceInfo,
    creating: bool,
    object: &mut Value,
) -> Result<(), ApiError> {
    let Some(served) = served(info) else {
        return Ok(());
    };
    if creating && info.has_status() {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    schema::prune(&served.schema, object);
    schema::default(&served.schema, object);
    let causes = schema::validate(&served.schema, object);
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            info.group,
            info.kind,
            object_name(object).unwrap_or_default(),
            &causes,
        ));
    }
    Ok(())
}

/// `fieldValidation=Strict` (kubectl's default): a custom object with fields its schema
/// does not know is refused rather than pruned, worded as kube-apiserver's strict decoder.
pub fn check_strict(info: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    let Some(served) = served(info) else {
        return Ok(());
    };
    let unknown = schema::unknown_fields(&served.schema, object);
    if unknown.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    Err(ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
        fields.join(", "),
        kind = info.kind,
        version = info.version,
    )))
}

/// The object as it is stored: in the storage version.
pub fn to_storage(info: &ResourceInfo, object: &mut Value) {
    if let Some(served) = served(info) {
        object["apiVersion"] = json!(served.storage_api_version);
    }
}

/// The object as the version `info` serves it: `apiVersion` rewritten and the schema's
/// defaults applied (fields a newer CRD defaults show on objects stored before).
pub fn present(info: &ResourceInfo, object: &mut Value) {
    if let Some(served) = served(info) {
        object["apiVersion"] = json!(info.api_version());
        schema::default(&served.schema, object);
    }
}

/// Refuses a create while the resource's CRD is being deleted, as kube-apiserver does.
pub fn check_not_terminating(server: &ApiServer, info: &ResourceInfo) -> Result<(), ApiError> {
    if served(info).is_none() {
        return Ok(());
    }
    let name = format!("{}.{}", info.plural, info.group);
    let terminating = server
        .registry
        .get(CUSTOM_RESOURCE_DEFINITIONS.resource(), "", &name)
        .is_some_and(|crd| crd.pointer("/metadata/deletionTimestamp").is_some());
    if terminating {
        return Err(ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        ));
    }
    Ok(())
}

/// A CRD being deleted: deletes its objects and, once none is left, drops the cleanup
/// finalizer so the CRD goes (and [`uninstall`] follows from its removal). Objects held by
/// their own finalizers keep the CRD until they go ([`object_removed`] comes back here).
pub fn cleanup(server: &ApiServer, crd: &Value) -> Result<(), ApiError> {
    if crd.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let (group, plural) = group_plural(crd);
    let Some(info) = resources::all()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
    else {
        return remove_cleanup_finalizer(server, crd);
    };
    let resource = info.resource();
    let (objects, _) = server.registry.list(resource, None);
    for object in &objects {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = object_name(object).unwrap_or_default();
        match delete_internal(server, info, ns, name, &DeleteOptions::default()) {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    if server.registry.list(resource, None).0.is_empty() {
        remove_cleanup_finalizer(server, crd)?;
    }
    Ok(())
}

fn remove_cleanup_finalizer(server: &ApiServer, crd: &Value) -> Result<(), ApiError> {
    let name = object_name(crd).unwrap_or_default().to_string();
    let client = server.client();
    match client.remove_finalizer(
        CUSTOM_RESOURCE_DEFINITIONS.resource(),
        "",
        &name,
        definition::CLEANUP_FINALIZER,
    ) {
        Err(e) if e.code == 404 => Ok(()),
        other => other,
    }
}

/// After an object left the registry: a custom object's going may let its CRD's deletion
/// finish; a CRD's going stops its resource being served.
pub fn object_removed(
    server: &ApiServer,
    info: &ResourceInfo,
    object: &Value,
) -> Result<(), ApiError> {
    if is_crd(info) {
        uninstall(object);
        return Ok(());
    }
    if served(info).is_none() {
        return Ok(());
    }
    let name = format!("{}.{}", info.plural, info.group);
    if let Some(crd) = server
        .registry
        .get(CUSTOM_RESOURCE_DEFINITIONS.resource(), "", &name)
    {
        if crd.pointer("/metadata/deletionTimestamp").is_some()
            && server.registry.list(info.resource(), None).0.is_empty()
        {
            remove_cleanup_finalizer(server, &crd)?;
        }
    }
    Ok(())
}

/// Admission of a CRD write: defaults, validation, the cleanup finalizer, the status.
pub fn admit_crd(old: Option<&Value>, crd: &mut Value) -> Result<(), ApiError> {
    definition::default_crd(crd);
    let causes = definition::validate_crd(crd, old);
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            CUSTOM_RESOURCE_DEFINITIONS.group,
            CUSTOM_RESOURCE_DEFINITIONS.kind,
            object_name(crd).unwrap_or_default(),
            &causes,
        ));
    }
    if crd.pointer("/metadata/deletionTimestamp").is_none() {
        let finalizers = &mut crd["metadata"]["finalizers"];
        if !finalizers.is_array() {
            *finalizers = json!([]);
        }
        let list = finalizers.as_array_mut().unwrap();
        if !list.iter().any(|f| f == definition::CLEANUP_FINALIZER) {
            list.push(json!(definition::CLEANUP_FINALIZER));
        }
    }
    let now = crate::registry::now_rfc3339();
    crd["status"] = definition::status(crd, old.and_then(|o| o.get("status")), &now);
    Ok(())
}

#[cfg(test)]
mod tests;
