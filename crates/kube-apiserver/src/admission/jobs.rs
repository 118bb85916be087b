//! Jobs: defaulting (counts, back-off, completion mode, the `controller-uid` selector and
//! labels) and validation, as the batch API group's strategy does.

use serde_json::{json, Value};

use super::pods::{default_pod_spec, validate_pod_spec};
use super::{set_default, Causes};
use crate::registry::object_name;

/// Job defaults: counts, backoff, completion mode, and the controller-uid selector/labels.
pub fn default_job(job: &mut Value, uid: &str) {
    let name = object_name(job).unwrap_or_default().to_string();
    if !job.get("spec").is_some_and(Value::is_object) {
        job["spec"] = json!({});
    }
    let spec = &mut job["spec"];
    set_default(spec, "parallelism", json!(1));
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism") == Some(&json!(1))
    {
        spec["completions"] = json!(1);
    }
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    let manual = spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        if !spec
            .pointer("/template/metadata")
            .is_some_and(Value::is_object)
        {
            spec["template"]["metadata"] = json!({});
        }
        let meta = &mut spec["template"]["metadata"];
        if !meta.get("labels").is_some_and(Value::is_object) {
            meta["labels"] = json!({});
        }
        let labels = &mut meta["labels"];
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
        labels["batch.kubernetes.io/job-name"] = json!(name);
        labels["controller-uid"] = json!(uid);
        labels["job-name"] = json!(name);
    }
    default_pod_spec(&mut spec["template"]["spec"]);
    let template_labels = spec.pointer("/template/metadata/labels").cloned();
    if job
        .pointer("/metadata/labels")
        .is_none_or(|l| l.as_object().is_none_or(|m| m.is_empty()))
    {
        if let Some(labels) = template_labels {
            job["metadata"]["labels"] = labels;
        }
    }
}

pub fn validate_job(job: &Value) -> Causes {
    let spec = job
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(json!({}));
    validate_pod_spec(&spec, "spec.template.spec", &["OnFailure", "Never"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_defaults_and_validation() {
        let mut job = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        default_job(&mut job, "u1");
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["parallelism"], 1);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["completionMode"], "NonIndexed");
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "j"
        );
        assert_eq!(job["metadata"]["labels"]["controller-uid"], "u1");
        assert!(validate_job(&job).is_empty());
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(validate_job(&job)[0].0, "spec.template.spec.restartPolicy");
    }
}
