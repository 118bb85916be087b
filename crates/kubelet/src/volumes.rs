//! Pod volumes as host directories: `emptyDir`, `configMap`, `secret`, `projected`
//! (service-account token, `ca.crt`, namespace), `downwardAPI` and `hostPath`
//! (`persistentVolumeClaim` volumes mount their bound PersistentVolume: `pod::volumes`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::env::{field_ref, string_data, EnvSources};

/// Where kubelet mounts the service-account volume when the pod does not say otherwise.
pub const SERVICE_ACCOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The synthesized volume for pods that did not get one at admission.
pub const AUTO_SA_VOLUME: &str = "kube-api-access-sparkyard";

/// A file to write into a volume directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// What volume content depends on, fetched by the caller.
pub struct VolumeSources<'a> {
    pub env: EnvSources<'a>,
    /// A fresh service-account token: (audience, expirationSeconds) → token.
    pub token: &'a dyn Fn(Option<&str>, i64) -> String,
    pub ca_pem: &'a str,
}

/// Why a volume cannot be set up yet (kubelet retries; the pod stays `ContainerCreating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady(pub String);

/// The files of a `configMap`/`secret`/`downwardAPI`/`projected` volume, or `None` for a
/// volume that is a plain directory (`emptyDir` and friends).
pub fn volume_files(volume: &Value, src: &VolumeSources) -> Result<Option<Vec<File>>, NotReady> {
    let name = volume["name"].as_str().unwrap_or("");
    if let Some(cm) = volume.get("configMap") {
        let mode = default_mode(cm);
        return keyed_files(cm, false, mode, name, src).map(|f| Some(f.unwrap_or_default()));
    }
    if let Some(secret) = volume.get("secret") {
        let mode = default_mode(secret);
        return keyed_files(secret, true, mode, name, src).map(|f| Some(f.unwrap_or_default()));
    }
    if let Some(downward) = volume.get("downwardAPI") {
        return downward_files(downward, default_mode(downward), src).map(Some);
    }
    if let Some(projected) = volume.get("projected") {
        let mode = default_mode(projected);
        let mut files = Vec::new();
        for source in projected["sources"].as_array().into_iter().flatten() {
            if let Some(token) = source.get("serviceAccountToken") {
                let expiration = token["expirationSeconds"].as_i64().unwrap_or(3607);
                let content = (src.token)(token["audience"].as_str(), expiration);
                files.push(File {
                    path: token["path"].as_str().unwrap_or("token").into(),
                    content: content.into_bytes(),
                    mode,
                });
            } else if let Some(cm) = source.get("configMap") {
                // The root CA bundle is published by a controller; fall back to the CA itself
                // so that pods never wait on it.
                let cm_name = cm["name"].as_str().unwrap_or("");
                match keyed_files(cm, false, mode, name, src) {
                    Ok(Some(f)) => files.extend(f),
                    Ok(None) => {}
                    Err(_) if cm_name == "kube-root-ca.crt" => files.push(File {
                        path: "ca.crt".into(),
                        content: src.ca_pem.as_bytes().to_vec(),
                        mode,
                    }),
                    Err(e) => return Err(e),
                }
            } else if let Some(secret) = source.get("secret") {
                if let Some(f) = keyed_files(secret, true, mode, name, src)? {
                    files.extend(f);
                }
            } else if let Some(downward) = source.get("downwardAPI") {
                files.extend(downward_files(downward, mode, src)?);
            }
        }
        return Ok(Some(files));
    }
    Ok(None)
}

fn default_mode(source: &Value) -> u32 {
    source["defaultMode"]
        .as_u64()
        .map(|m| m as u32)
        .unwrap_or(0o644)
}

/// `configMap`/`secret` sources: all keys, or the listed `items` (key → path, mode).
/// `Ok(None)` for a missing optional source.
fn keyed_files(
    source: &Value,
    is_secret: bool,
    mode: u32,
    volume: &str,
    src: &VolumeSources,
) -> Result<Option<Vec<File>>, NotReady> {
    let object_name = if is_secret {
        source["secretName"].as_str().or(source["name"].as_str())
    } else {
        source["name"].as_str()
    }
    .unwrap_or("");
    let optional = source["optional"] == true;
    let object = if is_secret {
        (src.env.secret)(object_name)
    } else {
        (src.env.config_map)(object_name)
    };
    let what = if is_secret { "secret" } else { "configmap" };
    let Some(object) = object else {
        if optional {
            return Ok(None);
        }
        return Err(NotReady(format!(
            "MountVolume.SetUp failed for volume \"{volume}\" : {what} \"{object_name}\" not found"
        )));
    };
    let mut data: BTreeMap<String, Vec<u8>> = string_data(&object, is_secret)
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    if !is_secret {
        use base64::Engine;
        for (k, v) in object["binaryData"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .unwrap_or_default();
            data.insert(k.clone(), bytes);
        }
    }
    let files = match source["items"].as_array().filter(|i| !i.is_empty()) {
        Some(items) => {
            let mut files = Vec::new();
            for item in items {
                let key = item["key"].as_str().unwrap_or("");
                let Some(content) = data.get(key) else {
                    if optional {
                        continue;
                    }
                    return Err(NotReady(format!("MountVolume.SetUp failed for volume \"{volume}\" : configmap references non-existent config key: {key}")));
                };
                files.push(File {
                    path: item["path"].as_str().unwrap_or(key).into(),
                    content: content.clone(),
                    mode: item["mode"].as_u64().map(|m| m as u32).unwrap_or(mode),
                });
            }
            files
        }
        None => data
            .into_iter()
            .map(|(key, content)| File {
                path: key,
                content,
                mode,
            })
            .collect(),
    };
    Ok(Some(files))
}

fn downward_files(source: &Value, mode: u32, src: &VolumeSources) -> Result<Vec<File>, NotReady> {
    let mut files = Vec::new();
    for item in source["items"].as_array().into_iter().flatten() {
        let content = if let Some(field) = item.get("fieldRef") {
            field_ref(field["fieldPath"].as_str().unwrap_or(""), &src.env).unwrap_or_default()
        } else if let Some(resource) = item.get("resourceFieldRef") {
            let env = json!([{"name": "X", "valueFrom": {"resourceFieldRef": resource}}]);
            let container = json!({"env": env});
            super::env::resolve(&container, &src.env)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|(_, v)| v)
                .unwrap_or_default()
        } else {
            continue;
        };
        files.push(File {
            path: item["path"].as_str().unwrap_or("").into(),
            content: content.into_bytes(),
            mode: item["mode"].as_u64().map(|m| m as u32).unwrap_or(mode),
        });
    }
    Ok(files)
}

/// The projected volume kubelet adds when admission did not (token, CA, namespace).
pub fn auto_service_account_volume() -> Value {
    json!({"name": AUTO_SA_VOLUME, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
}

/// Whether the pod wants a service-account token it did not get a volume for.
pub fn wants_auto_service_account(pod: &Value, service_account: Option<&Value>) -> bool {
    if pod["spec"]["automountServiceAccountToken"] == false {
        return false;
    }
    if pod["spec"]["automountServiceAccountToken"].is_null()
        && service_account
            .map(|sa| sa["automountServiceAccountToken"] == false)
            .unwrap_or(false)
    {
        return false;
    }
    let mounted = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .any(|c| {
            c["volumeMounts"].as_array().into_iter().flatten().any(|m| {
                m["mountPath"].as_str().map(|p| p.trim_end_matches('/'))
                    == Some(SERVICE_ACCOUNT_PATH)
            })
        });
    !mounted
}

/// Writes `files` under `dir` (replacing what was there), with their modes.
pub fn write_files(dir: &Path, files: &[File]) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for file in files {
        let relative = file.path.trim_start_matches('/');
        if relative.split('/').any(|c| c == "..") {
            continue;
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.content)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o7777))?;
    }
    Ok(())
}

/// Why a volume cannot be set up: its name, or its claim's, is not one path component, so
/// the directory it names would be outside the one it belongs in — `../<pod dir>` another
/// pod's files, `../<namespace>/<claim>` another namespace's claim. The API server refuses
/// such volume names; claim names it does not check (Kubernetes' kubelet looks the claim
/// up, and finds none by such a name).
pub fn unsafe_name(volume: &Value) -> Option<String> {
    let one_component =
        |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']);
    let name = volume["name"].as_str().unwrap_or("");
    if !one_component(name) {
        return Some(format!("invalid volume name {name:?}"));
    }
    let claim = volume.get("persistentVolumeClaim")?;
    let claim = claim["claimName"].as_str().unwrap_or(name);
    (!one_component(claim)).then(|| format!("persistentvolumeclaim \"{claim}\" not found"))
}

/// Host directory of a volume that is just a directory, or `None` for volume types that
/// carry files (the caller writes those).
/// (`persistentVolumeClaim` volumes are the directory of the claim's bound volume: the pod
/// worker looks them up through the API.)
pub fn plain_dir(volume: &Value, pod_dir: &Path) -> Option<PathBuf> {
    let name = volume["name"].as_str().unwrap_or("");
    if volume.get("emptyDir").is_some() {
        return Some(pod_dir.join("volumes").join(name));
    }
    if let Some(host) = volume.get("hostPath") {
        return host["path"].as_str().map(PathBuf::from);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_their_directory_are_refused() {
        assert_eq!(unsafe_name(&json!({"name": "data", "emptyDir": {}})), None);
        assert_eq!(
            unsafe_name(&json!({"name": "c", "persistentVolumeClaim": {"claimName": "data"}})),
            None
        );
        for name in ["", ".", "..", "../../x", "a/b"] {
            assert!(
                unsafe_name(&json!({"name": name, "emptyDir": {}})).is_some(),
                "{name:?}"
            );
        }
        assert_eq!(
            unsafe_name(&json!({"name": "c", "persistentVolumeClaim": {"claimName": "../b/data"}}))
                .as_deref(),
            Some("persistentvolumeclaim \"../b/data\" not found")
        );
    }

    #[test]
    fn config_map_items_modes_and_missing_sources() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}});
        let cm = |n: &str| {
            (n == "conf").then(|| json!({"data": {"spark.properties": "a=b", "other": "x"}}))
        };
        let secret = |n: &str| (n == "creds").then(|| json!({"data": {"key": "dmFsdWU="}}));
        let token = |_: Option<&str>, _: i64| "tok".to_string();
        let src = VolumeSources {
            env: EnvSources {
                pod: &pod,
                pod_ip: "127.1.0.2",
                host_ip: "127.0.0.1",
                node_cpu_millis: 1000,
                node_memory: 1,
                config_map: &cm,
                secret: &secret,
            },
            token: &token,
            ca_pem: "CA",
        };
        let v = json!({"name": "c", "configMap": {"name": "conf", "items": [{"key": "spark.properties", "path": "spark.properties", "mode": 420}]}});
        let files = volume_files(&v, &src).unwrap().unwrap();
        assert_eq!(
            files,
            vec![File {
                path: "spark.properties".into(),
                content: b"a=b".to_vec(),
                mode: 0o644
            }]
        );
        let v = json!({"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}});
        let files = volume_files(&v, &src).unwrap().unwrap();
        assert_eq!(files[0].content, b"value");
        assert_eq!(files[0].mode, 0o400);
        let v = json!({"name": "m", "configMap": {"name": "later"}});
        assert!(volume_files(&v, &src)
            .unwrap_err()
            .0
            .contains("configmap \"later\" not found"));
        let v = json!({"name": "m", "configMap": {"name": "later", "optional": true}});
        assert_eq!(volume_files(&v, &src).unwrap(), Some(vec![]));
        let files = volume_files(&auto_service_account_volume(), &src)
            .unwrap()
            .unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["token", "ca.crt", "namespace"]);
        assert_eq!(files[2].content, b"ns");
        assert!(volume_files(&json!({"name": "e", "emptyDir": {}}), &src)
            .unwrap()
            .is_none());
    }
}
