//! Pods: the apiserver's defaulting (`SetDefaults_Pod` and friends), the
//! DefaultTolerationSeconds plugin, the QoS class, spec validation and the rule for what a
//! pod update may change.

use serde_json::{json, Value};

use super::names::{is_dns1123_label, LABEL_MSG};
use super::{set_default, Causes};

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (digests count as tags).
pub fn default_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(container: &mut Value) {
    set_default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set_default(container, "terminationMessagePolicy", json!("File"));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    set_default(
        container,
        "imagePullPolicy",
        json!(default_pull_policy(&image)),
    );
    set_default(container, "resources", json!({}));
    // Limits without requests: requests default to the limits.
    if let Some(limits) = container
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .cloned()
    {
        for (k, v) in limits {
            if container
                .pointer(&format!("/resources/requests/{k}"))
                .is_none()
            {
                if container.pointer("/resources/requests").is_none() {
                    container["resources"]["requests"] = json!({});
                }
                container["resources"]["requests"][k] = v;
            }
        }
    }
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            set_default(port, "protocol", json!("TCP"));
        }
    }
}

/// Pod spec defaults, as the apiserver's defaulting sets them (also pod templates).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in containers {
                default_container(c);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes {
            if let Some(cm) = v.get_mut("configMap") {
                set_default(cm, "defaultMode", json!(420));
            }
            if let Some(secret) = v.get_mut("secret") {
                set_default(secret, "defaultMode", json!(420));
            }
        }
    }
}

/// The DefaultTolerationSeconds plugin: tolerate not-ready/unreachable nodes for 300 s.
pub fn default_tolerations(spec: &mut Value) {
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tolerations.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(key)
                || (t.get("operator").and_then(Value::as_str) == Some("Exists")
                    && t.get("key").is_none())
        });
        if !present {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
}

/// `Guaranteed`, `Burstable` or `BestEffort` from the containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let get =
        |c: &Value, kind: &str, res: &str| c.pointer(&format!("/resources/{kind}/{res}")).cloned();
    let any = containers.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| get(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = get(c, "limits", r);
            limit.is_some() && get(c, "requests", r).is_none_or(|req| Some(req) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn validate_containers(spec: &Value, prefix: &str, causes: &mut Causes) {
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get(key).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            let field = format!("{prefix}.{key}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push((format!("{field}.name"), "Required value".into())),
                Some(n) if !is_dns1123_label(n) => causes.push((
                    format!("{field}.name"),
                    format!("Invalid value: \"{n}\": {LABEL_MSG}"),
                )),
                Some(n) if seen.iter().any(|s| s == n) => {
                    causes.push((format!("{field}.name"), format!("Duplicate value: \"{n}\"")))
                }
                Some(n) => seen.push(n.to_string()),
            }
            if c.get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                causes.push((format!("{field}.image"), "Required value".into()));
            }
            if let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) {
                for (j, m) in mounts.iter().enumerate() {
                    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                    if !volumes.contains(&name) {
                        causes.push((
                            format!("{field}.volumeMounts[{j}].name"),
                            format!("Not found: \"{name}\""),
                        ));
                    }
                }
            }
        }
    }
}

/// Pod spec validation (the common subset clients trip over).
pub fn validate_pod_spec(spec: &Value, prefix: &str, restart_policies: &[&str]) -> Causes {
    let mut causes = Causes::new();
    if spec
        .get("containers")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
    {
        causes.push((format!("{prefix}.containers"), "Required value".into()));
    }
    validate_containers(spec, prefix, &mut causes);
    let policy = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !restart_policies.contains(&policy) {
        let supported: Vec<String> = restart_policies
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        let what = if policy.is_empty() {
            "Required value: valid values: ".to_string()
        } else {
            format!("Unsupported value: \"{policy}\": supported values: ")
        };
        causes.push((
            format!("{prefix}.restartPolicy"),
            format!("{what}{}", supported.join(", ")),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        for (i, v) in volumes.iter().enumerate() {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            // The kubelet makes a directory of that name: a label cannot leave it.
            if name.is_empty() {
                causes.push((
                    format!("{prefix}.volumes[{i}].name"),
                    "Required value".into(),
                ));
            } else if !is_dns1123_label(name) {
                causes.push((
                    format!("{prefix}.volumes[{i}].name"),
                    format!("Invalid value: \"{name}\": {LABEL_MSG}"),
                ));
            } else if names.contains(&name) {
                causes.push((
                    format!("{prefix}.volumes[{i}].name"),
                    format!("Duplicate value: \"{name}\""),
                ));
            }
            names.push(name);
        }
    }
    causes
}

/// The pod spec fields an update may change.
pub(super) const POD_MUTABLE_MESSAGE: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn strip_mutable_pod_fields(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(map) = s.as_object_mut() {
        for key in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            map.remove(key);
        }
        for key in ["containers", "initContainers"] {
            if let Some(containers) = map.get_mut(key).and_then(Value::as_array_mut) {
                for c in containers {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
    }
    s
}

/// Whether `new` changes only what Kubernetes lets a pod update change.
pub fn pod_spec_update_allowed(old: &Value, new: &Value) -> bool {
    strip_mutable_pod_fields(old) == strip_mutable_pod_fields(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_as_the_apiserver_sets_them() {
        let mut spec = json!({"containers": [
            {"name": "a", "image": "apache/spark:4.0.1", "resources": {"limits": {"memory": "1Gi"}}, "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "busybox"}]});
        default_pod_spec(&mut spec);
        default_tolerations(&mut spec);
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(
            spec["containers"][0]["resources"]["requests"]["memory"],
            "1Gi"
        );
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(qos_class(&spec), "Burstable");
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})
            ),
            "Guaranteed"
        );
    }

    #[test]
    fn pull_policy() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/busybox:1"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pod_validation() {
        let causes = validate_pod_spec(
            &json!({"restartPolicy": "Always"}),
            "spec",
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            causes,
            vec![("spec.containers".to_string(), "Required value".to_string())]
        );
        let spec = json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}, {"name": "a"}]});
        let causes = validate_pod_spec(&spec, "spec", &["Always", "OnFailure", "Never"]);
        let fields: Vec<&str> = causes.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.containers[0].volumeMounts[0].name",
                "spec.containers[1].name",
                "spec.containers[1].image",
                "spec.restartPolicy"
            ]
        );
        // Volume names become directory names on the node: labels only.
        let spec = json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}],
            "volumes": [{"name": "../../x", "emptyDir": {}}, {"name": "", "emptyDir": {}}, {"name": "ok", "emptyDir": {}}]});
        let causes = validate_pod_spec(&spec, "spec", &["Never"]);
        assert_eq!(
            causes,
            vec![
                (
                    "spec.volumes[0].name".to_string(),
                    format!("Invalid value: \"../../x\": {LABEL_MSG}")
                ),
                (
                    "spec.volumes[1].name".to_string(),
                    "Required value".to_string()
                )
            ]
        );
    }

    #[test]
    fn pod_updates_change_only_mutable_fields() {
        let old = json!({"containers": [{"name": "a", "image": "x"}], "nodeName": "n"});
        assert!(pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "a", "image": "y"}], "nodeName": "n", "activeDeadlineSeconds": 5})
        ));
        assert!(!pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "b", "image": "x"}], "nodeName": "n"})
        ));
        assert!(!pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "a", "image": "x"}], "nodeName": "m"})
        ));
    }
}
