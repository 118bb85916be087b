//! Kubernetes label and field selectors, as lists, watches and deletecollection parse them
//! from `?labelSelector=` / `?fieldSelector=`.
//!
//! Input (UTF-8 text):
//! ```text
//! app=spark,spark-role in (driver,executor)   <- line 1: labelSelector
//! status.phase=Running,spec.nodeName!=n1      <- line 2: fieldSelector
//! {"metadata": {...}}                         <- the rest: an object to match (optional)
//! ```
//! Feeds `LabelSelector::parse` and `FieldSelector::parse` (for pods, events, secrets,
//! namespaces, nodes, jobs and configmaps — each resource has its own selectable fields),
//! then `matches`/`exact_name`/`field_value` against the object, and
//! `LabelSelector::from_label_selector_object` with the object's `spec.selector`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sparkyard_kube_apiserver::resources::{
    ResourceInfo, CONFIGMAPS, EVENTS, EVENTS_V1, JOBS, NAMESPACES, NODES, PODS, SECRETS,
};
use sparkyard_kube_apiserver::selectors::{self, FieldSelector, LabelSelector, Selectors};

const INFOS: &[ResourceInfo] = &[
    PODS, EVENTS, EVENTS_V1, SECRETS, NAMESPACES, NODES, JOBS, CONFIGMAPS,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let label_text = parts.next().unwrap_or_default();
    let field_text = parts.next().unwrap_or_default();
    let object = parts
        .next()
        .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
        .unwrap_or_else(|| {
            json!({"metadata": {"name": "spark-pi-driver", "namespace": "jobs",
                                "labels": {"spark-role": "driver", "app": "spark-pi"}},
                   "spec": {"nodeName": "node-1", "selector": {"matchLabels": {"app": "spark-pi"}}},
                   "status": {"phase": "Running", "podIP": "10.0.0.7"}})
        });

    let labels = LabelSelector::parse(label_text);
    if let Ok(labels) = &labels {
        let _ = labels.matches(&object);
        let _ = labels.is_empty();
    }
    if let Some(sel) = object.pointer("/spec/selector") {
        let _ = LabelSelector::from_label_selector_object(sel).matches(&object);
    }
    for info in INFOS {
        let Ok(fields) = FieldSelector::parse(field_text, info) else {
            continue;
        };
        let _ = fields.matches(info, &object);
        let _ = fields.exact_name();
        for req in &fields.0 {
            let _ = selectors::field_value(info, &object, &req.field);
        }
        if let Ok(labels) = &labels {
            let both = Selectors {
                labels: labels.clone(),
                fields: fields.clone(),
            };
            let _ = both.matches(info, &object);
        }
    }
});
