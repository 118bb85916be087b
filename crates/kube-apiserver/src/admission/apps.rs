//! `apps/v1` workloads (Deployment, ReplicaSet, StatefulSet, DaemonSet): the defaults the
//! apps API group sets and the validation its strategies run (a selector that matches the
//! template's labels, `restartPolicy: Always`, non-negative counts, immutable selectors).

use serde_json::{json, Value};

use super::pods::{default_pod_spec, validate_pod_spec};
use super::{set_default, Causes};
use crate::selectors::LabelSelector;

/// The workload defaults of `plural` (`deployments`, `replicasets`, `statefulsets`, `daemonsets`).
pub fn default_workload(plural: &str, object: &mut Value) {
    if !object.get("spec").is_some_and(Value::is_object) {
        object["spec"] = json!({});
    }
    let spec = &mut object["spec"];
    if plural != "daemonsets" {
        set_default(spec, "replicas", json!(1));
    }
    match plural {
        "deployments" => {
            set_default(spec, "strategy", json!({"type": "RollingUpdate"}));
            if spec["strategy"]["type"] == "RollingUpdate" {
                set_default(&mut spec["strategy"], "rollingUpdate", json!({}));
                set_default(
                    &mut spec["strategy"]["rollingUpdate"],
                    "maxSurge",
                    json!("25%"),
                );
                set_default(
                    &mut spec["strategy"]["rollingUpdate"],
                    "maxUnavailable",
                    json!("25%"),
                );
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
        }
        "statefulsets" => {
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                set_default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                set_default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "partition",
                    json!(0),
                );
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            if let Some(templates) = spec["volumeClaimTemplates"].as_array_mut() {
                for t in templates {
                    set_default(t, "apiVersion", json!("v1"));
                    set_default(t, "kind", json!("PersistentVolumeClaim"));
                    set_default(&mut t["spec"], "volumeMode", json!("Filesystem"));
                }
            }
        }
        "daemonsets" => {
            set_default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                set_default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
                set_default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "maxUnavailable",
                    json!(1),
                );
                set_default(
                    &mut spec["updateStrategy"]["rollingUpdate"],
                    "maxSurge",
                    json!(0),
                );
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
        }
        _ => {}
    }
    if !spec
        .pointer("/template/metadata")
        .is_some_and(Value::is_object)
    {
        spec["template"]["metadata"] = json!({});
    }
    default_pod_spec(&mut spec["template"]["spec"]);
}

/// Go's `%v` of a label map, as kube's messages print `map[string]string{"app":"web"}`.
fn go_map(labels: &Value) -> String {
    let entries: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k:?}:{}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    format!("map[string]string{{{}}}", entries.join(", "))
}

pub fn validate_workload(plural: &str, object: &Value) -> Causes {
    let mut causes = Causes::new();
    let spec = &object["spec"];
    if let Some(n) = spec["replicas"].as_i64().filter(|n| *n < 0) {
        causes.push((
            "spec.replicas".into(),
            format!("Invalid value: {n}: must be greater than or equal to 0"),
        ));
    }
    let selector = &spec["selector"];
    let labels = &spec["template"]["metadata"]["labels"];
    if selector.as_object().is_none_or(|s| s.is_empty()) {
        causes.push(("spec.selector".into(), "Required value".into()));
    } else if !LabelSelector::from_label_selector_object(selector)
        .matches(&json!({"metadata": {"labels": labels}}))
    {
        causes.push((
            "spec.template.metadata.labels".into(),
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                go_map(labels)
            ),
        ));
    }
    if plural == "deployments" {
        let rolling = &spec["strategy"]["rollingUpdate"];
        let zero = |v: &Value| v == &json!(0) || v == &json!("0%");
        if spec["strategy"]["type"] == "RollingUpdate"
            && zero(&rolling["maxSurge"])
            && zero(&rolling["maxUnavailable"])
        {
            causes.push((
                "spec.strategy.rollingUpdate.maxUnavailable".into(),
                "Invalid value: 0: may not be 0 when `maxSurge` is 0".into(),
            ));
        }
    }
    // A StatefulSet's claim templates are volumes of its pods.
    let mut pod_spec = spec["template"]["spec"].clone();
    if let Some(templates) = spec["volumeClaimTemplates"].as_array() {
        let mut volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
        for t in templates {
            if let Some(name) = t["metadata"]["name"].as_str() {
                volumes.push(json!({"name": name, "persistentVolumeClaim": {"claimName": name}}));
            }
        }
        pod_spec["volumes"] = json!(volumes);
    }
    causes.extend(validate_pod_spec(
        &pod_spec,
        "spec.template.spec",
        &["Always"],
    ));
    causes
}

/// The fields of a workload an update may not change.
pub fn immutable_changes(plural: &str, old: &Value, new: &Value) -> Causes {
    let mut causes = Causes::new();
    if old["spec"]["selector"] != new["spec"]["selector"] {
        causes.push((
            "spec.selector".into(),
            format!(
                "Invalid value: {}: field is immutable",
                serde_json::to_string(&new["spec"]["selector"]).unwrap_or_default()
            ),
        ));
    }
    if plural == "statefulsets" {
        // kube allows only these StatefulSet spec fields to change.
        let allowed = [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "revisionHistoryLimit",
        ];
        let strip = |spec: &Value| {
            let mut s = spec.clone();
            if let Some(map) = s.as_object_mut() {
                map.retain(|k, _| !allowed.contains(&k.as_str()));
            }
            s
        };
        if strip(&old["spec"]) != strip(&new["spec"]) {
            causes.push(("spec".into(), "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into()));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_defaults() {
        let mut d = deploy();
        default_workload("deployments", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert!(validate_workload("deployments", &d).is_empty());
    }

    #[test]
    fn selector_must_match_the_template() {
        let mut d = deploy();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        default_workload("deployments", &mut d);
        let causes = validate_workload("deployments", &d);
        assert_eq!(causes[0].0, "spec.template.metadata.labels");
        assert_eq!(
            causes[0].1,
            "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn selector_is_immutable_and_restart_policy_always() {
        let old = deploy();
        let mut new = deploy();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        assert_eq!(
            immutable_changes("deployments", &old, &new)[0].0,
            "spec.selector"
        );
        let mut d = deploy();
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        default_workload("deployments", &mut d);
        assert!(validate_workload("deployments", &d)
            .iter()
            .any(|(f, m)| f == "spec.template.spec.restartPolicy" && m.contains("\"Always\"")));
    }
}
