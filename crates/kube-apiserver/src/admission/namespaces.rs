//! The NamespaceLifecycle admission plugin: namespaced objects go only into a namespace
//! that exists and is not terminating.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

/// NamespaceLifecycle: the namespace must exist and not be terminating.
pub(super) fn check_namespace(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &Value,
) -> Result<(), ApiError> {
    let namespace = server
        .registry
        .get(resources::NAMESPACES.resource(), "", ns)
        .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    let terminating = namespace.pointer("/metadata/deletionTimestamp").is_some()
        || namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let name = object_name(object).unwrap_or_default();
        let mut err = ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            info.qualified()
        ));
        err.details = Some(
            json!({"name": name, "kind": info.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
        );
        return Err(err);
    }
    Ok(())
}
