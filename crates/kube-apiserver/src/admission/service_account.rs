//! The ServiceAccount admission plugin: default the pod's account, require it to exist,
//! and mount its projected token volume (`kube-api-access-<suffix>`).

use serde_json::{json, Value};

use super::names::random_suffix;
use super::{ROOT_CA_CONFIGMAP, SERVICE_ACCOUNT_MOUNT_PATH};
use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources;
use crate::ApiServer;

/// The projected service-account volume the ServiceAccount plugin injects.
pub fn service_account_volume(name: &str) -> Value {
    json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}})
}

/// Adds the token volume and its mount to every container (unless one already mounts the
/// path). `suffix` is the random 5 characters of `kube-api-access-<suffix>`.
pub fn inject_service_account_volume(spec: &mut Value, suffix: &str) {
    let volume_name = format!("kube-api-access-{suffix}");
    let mut injected = false;
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let mounts = c.get("volumeMounts").and_then(Value::as_array);
            if mounts.is_some_and(|ms| {
                ms.iter().any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT_PATH)
                })
            }) {
                continue;
            }
            if c.get("volumeMounts").is_none_or(|m| !m.is_array()) {
                c["volumeMounts"] = json!([]);
            }
            c["volumeMounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": volume_name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}));
            injected = true;
        }
    }
    if injected {
        if spec.get("volumes").is_none_or(|v| !v.is_array()) {
            spec["volumes"] = json!([]);
        }
        spec["volumes"]
            .as_array_mut()
            .unwrap()
            .push(service_account_volume(&volume_name));
    }
}

/// ServiceAccount plugin: default the account, require it to exist, mount its token.
pub(super) fn admit_pod_service_account(
    server: &ApiServer,
    ns: &str,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let name = object_name(pod).unwrap_or_default().to_string();
    let sa_name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            pod.pointer("/spec/serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let sa = server
        .registry
        .get(resources::SERVICE_ACCOUNTS.resource(), ns, &sa_name)
        .ok_or_else(|| {
            ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
            ))
        })?;
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if automount {
        inject_service_account_volume(&mut pod["spec"], &random_suffix());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_volume_is_mounted_everywhere() {
        let mut spec = json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}], "volumes": [{"name": "x", "emptyDir": {}}]});
        inject_service_account_volume(&mut spec, "abcde");
        assert_eq!(spec["volumes"][1]["name"], "kube-api-access-abcde");
        assert_eq!(
            spec["volumes"][1]["projected"]["sources"][1]["configMap"]["name"],
            "kube-root-ca.crt"
        );
        for c in spec["containers"].as_array().unwrap() {
            let mounts = c["volumeMounts"].as_array().unwrap();
            assert!(mounts
                .iter()
                .any(|m| m["mountPath"] == SERVICE_ACCOUNT_MOUNT_PATH && m["readOnly"] == true));
        }
    }
}
