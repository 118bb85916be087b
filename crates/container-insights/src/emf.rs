//! Records as CloudWatch Embedded Metric Format events: the JSON lines the agent writes to
//! `/aws/containerinsights/<cluster>/performance`, from which CloudWatch extracts the
//! `ContainerInsights` metrics (each directive's metrics under each of its dimension sets).

use serde_json::{json, Map, Value};

use crate::catalog::{self, RecordType};
use crate::compute::Record;

/// The namespace Container Insights publishes in.
pub const NAMESPACE: &str = "ContainerInsights";

/// The log group performance events go to.
pub fn performance_log_group(cluster: &str) -> String {
    format!("/aws/containerinsights/{cluster}/performance")
}

/// One record as an EMF event at `timestamp_ms`.
pub fn event(record: &Record, timestamp_ms: i64) -> Value {
    let mut fields = Map::new();
    fields.insert("Type".into(), json!(record.kind.as_str()));
    fields.insert("Version".into(), json!("0"));
    fields.insert("Timestamp".into(), json!(timestamp_ms.to_string()));
    fields.insert("Sources".into(), json!(sources(record.kind)));
    for (k, v) in &record.dimensions {
        fields.insert((*k).into(), json!(v));
    }
    for (k, v) in &record.values {
        fields.insert((*k).into(), json!(v));
    }
    let mut kubernetes = Map::new();
    if let Some(node) = record.dimensions.get("NodeName") {
        kubernetes.insert("host".into(), json!(node));
    }
    if let Some(ns) = record.dimensions.get("Namespace") {
        kubernetes.insert("namespace_name".into(), json!(ns));
    }
    if let Some(pod) = record.dimensions.get("FullPodName") {
        kubernetes.insert("pod_name".into(), json!(pod));
    }
    if let Some(c) = record.dimensions.get("ContainerName") {
        kubernetes.insert("container_name".into(), json!(c));
    }
    if !kubernetes.is_empty() {
        fields.insert("kubernetes".into(), Value::Object(kubernetes));
    }
    let directives: Vec<Value> = catalog::directives(record.kind)
        .iter()
        .filter_map(|d| {
            let sets: Vec<&[&str]> = d
                .dimension_sets
                .iter()
                .copied()
                .filter(|set| set.iter().all(|k| record.dimensions.contains_key(k)))
                .collect();
            let metrics: Vec<Value> = d
                .metrics
                .iter()
                .filter(|m| record.values.contains_key(*m))
                .map(|m| json!({"Name": m, "Unit": catalog::unit(m)}))
                .collect();
            (!sets.is_empty() && !metrics.is_empty())
                .then(|| json!({"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": metrics}))
        })
        .collect();
    if !directives.is_empty() {
        fields.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
    }
    Value::Object(fields)
}

/// Where the agent's figures come from, as its `Sources` field names them.
fn sources(kind: RecordType) -> &'static [&'static str] {
    match kind {
        RecordType::Node => &["cadvisor", "/proc", "pod", "calculated"],
        RecordType::Pod | RecordType::Container => &["cadvisor", "pod", "calculated"],
        _ => &["apiserver"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn drops_dimension_sets_the_record_cannot_fill() {
        let record = Record {
            kind: RecordType::Pod,
            node: "n1".into(),
            dimensions: BTreeMap::from([
                ("ClusterName", "eks-emr-cluster".to_string()),
                ("Namespace", "monthly-batch".to_string()),
                ("PodName", "p".to_string()),
                ("FullPodName", "p".to_string()),
            ]),
            values: BTreeMap::from([("pod_cpu_utilization", 12.5), ("pod_cpu_request", 500.0)]),
        };
        let e = event(&record, 1_700_000_000_000);
        assert_eq!(e["Type"], "Pod");
        assert_eq!(e["pod_cpu_request"], 500.0);
        let directives = e["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(
            directives.len(),
            1,
            "only the utilization directive has a metric"
        );
        let sets = directives[0]["Dimensions"].as_array().unwrap();
        assert!(sets
            .iter()
            .all(|s| !s.as_array().unwrap().contains(&json!("Service"))));
        assert_eq!(sets.len(), 4);
        assert_eq!(
            directives[0]["Metrics"][0],
            json!({"Name": "pod_cpu_utilization", "Unit": "Percent"})
        );
        assert_eq!(e["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
