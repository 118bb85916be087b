//! A container's environment, resolved as kubelet does: `envFrom` first, then `env` in order
//! (later wins), with `$(VAR)` expansion against the variables defined so far.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use sparkyard_scheduling::quantity;

/// What `fieldRef`/`resourceFieldRef` and key references read.
pub struct EnvSources<'a> {
    pub pod: &'a Value,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// The node's allocatable, used for limits a container does not set.
    pub node_cpu_millis: i64,
    pub node_memory: i64,
    pub config_map: &'a dyn Fn(&str) -> Option<Value>,
    pub secret: &'a dyn Fn(&str) -> Option<Value>,
}

/// Why a container cannot start yet (kubelet's `CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

pub fn resolve(container: &Value, src: &EnvSources) -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, name: String, value: String| {
        if let Some(slot) = vars.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            vars.push((name, value));
        }
    };
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (data, optional, what, name) = if let Some(cm) = from.get("configMapRef") {
            let name = cm["name"].as_str().unwrap_or("");
            (
                (src.config_map)(name).map(|o| string_data(&o, false)),
                cm["optional"] == true,
                "configmap",
                name,
            )
        } else if let Some(secret) = from.get("secretRef") {
            let name = secret["name"].as_str().unwrap_or("");
            (
                (src.secret)(name).map(|o| string_data(&o, true)),
                secret["optional"] == true,
                "secret",
                name,
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (key, value) in data {
                    set(&mut vars, format!("{prefix}{key}"), value);
                }
            }
            None if optional => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for entry in container["env"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        let value = if let Some(value) = entry.get("value") {
            let defined: BTreeMap<&str, &str> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(value.as_str().unwrap_or(""), &|n| {
                defined.get(n).map(|v| v.to_string())
            })
        } else if let Some(from) = entry.get("valueFrom") {
            match value_from(from, container, src)? {
                Some(value) => value,
                None => continue,
            }
        } else {
            String::new()
        };
        set(&mut vars, name.to_string(), value);
    }
    Ok(vars)
}

/// `Some(value)`, `None` for an optional reference that is absent (the variable is not set).
fn value_from(
    from: &Value,
    container: &Value,
    src: &EnvSources,
) -> Result<Option<String>, ConfigError> {
    if let Some(field) = from.get("fieldRef") {
        let path = field["fieldPath"].as_str().unwrap_or("");
        return field_ref(path, src)
            .map(Some)
            .ok_or_else(|| ConfigError(format!("unsupported fieldPath {path:?}")));
    }
    if let Some(resource) = from.get("resourceFieldRef") {
        return resource_field_ref(resource, container, src).map(Some);
    }
    for (key, lookup, is_secret) in [
        ("configMapKeyRef", src.config_map, false),
        ("secretKeyRef", src.secret, true),
    ] {
        if let Some(reference) = from.get(key) {
            let name = reference["name"].as_str().unwrap_or("");
            let wanted = reference["key"].as_str().unwrap_or("");
            let optional = reference["optional"] == true;
            let what = if is_secret { "secret" } else { "configmap" };
            return match lookup(name) {
                None if optional => Ok(None),
                None => Err(ConfigError(format!("{what} \"{name}\" not found"))),
                Some(object) => match string_data(&object, is_secret).remove(wanted) {
                    Some(value) => Ok(Some(value)),
                    None if optional => Ok(None),
                    None => Err(ConfigError(format!(
                        "couldn't find key {wanted} in {}",
                        if is_secret {
                            format!("Secret {}", name)
                        } else {
                            format!("ConfigMap {}", name)
                        }
                    ))),
                },
            };
        }
    }
    Ok(Some(String::new()))
}

/// The downward API fields kubelet supports for env and volumes.
pub fn field_ref(path: &str, src: &EnvSources) -> Option<String> {
    let pod = src.pod;
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    if let Some(key) = bracket_key(path, "metadata.labels") {
        return Some(text(&pod["metadata"]["labels"][key]));
    }
    if let Some(key) = bracket_key(path, "metadata.annotations") {
        return Some(text(&pod["metadata"]["annotations"][key]));
    }
    Some(match path {
        "metadata.name" => text(&pod["metadata"]["name"]),
        "metadata.namespace" => text(&pod["metadata"]["namespace"]),
        "metadata.uid" => text(&pod["metadata"]["uid"]),
        "metadata.labels" => map_lines(&pod["metadata"]["labels"]),
        "metadata.annotations" => map_lines(&pod["metadata"]["annotations"]),
        "spec.nodeName" => text(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => text(&pod["spec"]["serviceAccountName"]),
        "status.podIP" => src.pod_ip.to_string(),
        "status.podIPs" => src.pod_ip.to_string(),
        "status.hostIP" => src.host_ip.to_string(),
        "status.hostIPs" => src.host_ip.to_string(),
        _ => return None,
    })
}

/// `metadata.labels['app']` → `app`.
fn bracket_key<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?.strip_prefix("['")?;
    rest.strip_suffix("']")
}

/// `key="value"` lines, sorted, as the downward API writes whole label maps.
fn map_lines(map: &Value) -> String {
    let Some(map) = map.as_object() else {
        return String::new();
    };
    let mut lines: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                serde_json::to_string(v.as_str().unwrap_or("")).unwrap()
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn resource_field_ref(
    reference: &Value,
    container: &Value,
    src: &EnvSources,
) -> Result<String, ConfigError> {
    // For volumes the container is named; for env it is the current one.
    let container = match reference["containerName"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        Some(name) => src.pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .unwrap_or(container),
        None => container,
    };
    let resource = reference["resource"].as_str().unwrap_or("");
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported resource {resource:?}")))?;
    let declared = |section: &str| {
        container["resources"][section][name]
            .clone()
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                quantity::json_text(&container["resources"][section][name]).map(|t| t.into_owned())
            })
    };
    // Unset limits are the node's allocatable; unset requests are the limit or zero.
    let text = match kind {
        "limits" => declared("limits"),
        "requests" => declared("requests").or_else(|| declared("limits")),
        _ => return Err(ConfigError(format!("unsupported resource {resource:?}"))),
    };
    let divisor = reference
        .get("divisor")
        .and_then(quantity::json_text)
        .map(|t| t.into_owned())
        .unwrap_or_else(|| "1".into());
    let divisor_milli = quantity::millis(&divisor)
        .ok()
        .map(i128::from)
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    let value_milli: i128 = match (name, text) {
        (_, Some(t)) => quantity::millis(&t).map(i128::from).unwrap_or(0),
        ("cpu", None) if kind == "limits" => src.node_cpu_millis as i128,
        ("memory", None) if kind == "limits" => src.node_memory as i128 * 1000,
        _ => 0,
    };
    // Rounded up, and at least 1 for a non-zero CPU (as kubelet does for `requests.cpu`).
    let mut value = (value_milli + divisor_milli - 1) / divisor_milli;
    if name == "cpu" && value == 0 && value_milli > 0 {
        value = 1;
    }
    Ok(value.to_string())
}

/// `data` (and for secrets the base64 `data` decoded, for config maps `binaryData`) as text.
pub fn string_data(object: &Value, is_secret: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let engine = base64::engine::general_purpose::STANDARD;
    if is_secret {
        for (k, v) in object["stringData"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            let bytes = engine.decode(v.as_str().unwrap_or("")).unwrap_or_default();
            out.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    } else {
        for (k, v) in object["data"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or("").to_string());
        }
    }
    out
}

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes the value when defined and stays as
/// written otherwise; `$$` is an escaped `$`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == '$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                '$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                '(' => {
                    if let Some(close) = bytes[i + 2..].iter().position(|c| *c == ')') {
                        let name: String = bytes[i + 2..i + 2 + close].iter().collect();
                        match lookup(&name) {
                            Some(value) => out.push_str(&value),
                            None => out.push_str(&format!("$({name})")),
                        }
                        i += close + 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"},
                            "annotations": {"note": "hi"}},
               "spec": {"nodeName": "n1", "serviceAccountName": "spark",
                        "containers": [{"name": "c", "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "250m"}}}]}})
    }

    fn with_sources<T>(f: impl FnOnce(&EnvSources) -> T) -> T {
        let pod = pod();
        let cm = |name: &str| (name == "cfg").then(|| json!({"data": {"A": "from-cm", "B": "b"}}));
        let secret =
            |name: &str| (name == "sec").then(|| json!({"data": {"PASSWORD": "czNjcjN0"}}));
        let src = EnvSources {
            pod: &pod,
            pod_ip: "127.1.0.5",
            host_ip: "127.0.0.1",
            node_cpu_millis: 8000,
            node_memory: 32 << 30,
            config_map: &cm,
            secret: &secret,
        };
        f(&src)
    }

    #[test]
    fn resolves_every_kind_of_reference_and_expands() {
        let container = json!({"name": "c",
        "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "250m"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}, {"secretRef": {"name": "nope", "optional": true}}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "CPU_LIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "A"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
            {"name": "MISSING", "valueFrom": {"secretKeyRef": {"name": "other", "key": "x", "optional": true}}},
            {"name": "URL", "value": "http://$(IP):80/$(POD)/$(UNDEFINED)/$$(IP)"}
        ]});
        let vars: BTreeMap<String, String> = with_sources(|src| resolve(&container, src))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(vars["CM_A"], "from-cm");
        assert_eq!(vars["POD"], "p");
        assert_eq!(vars["NS"], "ns");
        assert_eq!(vars["UID"], "u-1");
        assert_eq!(vars["APP"], "web");
        assert_eq!(vars["NOTE"], "hi");
        assert_eq!(vars["IP"], "127.1.0.5");
        assert_eq!(vars["HOST"], "127.0.0.1");
        assert_eq!(vars["NODE"], "n1");
        assert_eq!(vars["SA"], "spark");
        assert_eq!(vars["MEM"], "1024");
        assert_eq!(vars["CPU_REQ"], "250");
        assert_eq!(vars["CPU_LIM"], "8");
        assert_eq!(vars["A"], "from-cm");
        assert_eq!(vars["PW"], "s3cr3t");
        assert!(!vars.contains_key("MISSING"));
        assert_eq!(vars["URL"], "http://127.1.0.5:80/p/$(UNDEFINED)/$(IP)");
    }

    #[test]
    fn missing_required_references_are_config_errors() {
        let container = json!({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]});
        let err = with_sources(|src| resolve(&container, src)).unwrap_err();
        assert_eq!(err.0, "configmap \"absent\" not found");
        let container = json!({"envFrom": [{"secretRef": {"name": "absent"}}]});
        assert!(with_sources(|src| resolve(&container, src)).is_err());
    }
}
