//! Embedded Metric Format: the metrics CloudWatch Logs extracts from structured log events,
//! as AWS does for any log group (Container Insights' `…/performance` among them).
//!
//! An event is a JSON object whose `_aws` member holds `Timestamp` (epoch milliseconds) and
//! `CloudWatchMetrics`, a list of directives `{Namespace, Dimensions: [[key…]…], Metrics:
//! [{Name, Unit?, StorageResolution?}…]}`. Each metric's value is the root member of its name
//! (a number, or an array of up to 100 numbers); each dimension's value is the root member
//! of its key (a string). Every metric is published once per dimension set. What the EMF
//! specification calls invalid is skipped, as CloudWatch skips it: a dimension set naming an
//! absent or non-string member, a metric whose member is absent or not numeric, more than 30
//! dimensions in a set, more than 100 metrics in a directive. The points then take the same
//! path as `PutMetricData`, so the namespace rules and limits are CloudWatch's.

use std::collections::BTreeMap;

use serde_json::Value;

use super::codec::Timestamp;
use super::model::{Dimension, MetricDatum, PutMetricDataInput};

const MAX_DIMENSIONS: usize = 30;
const MAX_METRICS: usize = 100;
const MAX_VALUES: usize = 100;

/// The metric data of one log event's message, per namespace (empty when the message is not
/// an EMF event).
pub fn extract(message: &str) -> Vec<PutMetricDataInput> {
    if !message.contains("\"_aws\"") {
        return Vec::new(); // most log lines: skip the JSON parse
    }
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(message) else {
        return Vec::new();
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return Vec::new();
    };
    let Some(timestamp_ms) = aws.get("Timestamp").and_then(Value::as_f64) else {
        return Vec::new();
    };
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut by_namespace: BTreeMap<String, Vec<MetricDatum>> = BTreeMap::new();
    for d in directives {
        let Some(namespace) = d.get("Namespace").and_then(Value::as_str) else {
            continue;
        };
        let metrics = d.get("Metrics").and_then(Value::as_array);
        let Some(metrics) = metrics.filter(|m| m.len() <= MAX_METRICS) else {
            continue;
        };
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // A directive with no dimension set publishes its metrics without dimensions.
        let sets: Vec<Vec<Dimension>> = if sets.is_empty() {
            vec![Vec::new()]
        } else {
            sets.iter()
                .filter_map(|set| dimensions(set, &root))
                .collect()
        };
        for m in metrics {
            let Some(name) = m.get("Name").and_then(Value::as_str) else {
                continue;
            };
            let Some(values) = values(root.get(name)) else {
                continue;
            };
            for dims in &sets {
                by_namespace
                    .entry(namespace.to_string())
                    .or_default()
                    .push(MetricDatum {
                        metric_name: Some(name.to_string()),
                        dimensions: Some(dims.clone()),
                        timestamp: Some(Timestamp(timestamp_ms / 1000.0)),
                        values: Some(values.clone()),
                        unit: m.get("Unit").and_then(Value::as_str).map(str::to_string),
                        storage_resolution: m.get("StorageResolution").and_then(Value::as_i64),
                        ..Default::default()
                    });
            }
        }
    }
    by_namespace
        .into_iter()
        .map(|(namespace, data)| PutMetricDataInput {
            namespace: Some(namespace),
            metric_data: Some(data),
        })
        .collect()
}

fn dimensions(set: &Value, root: &serde_json::Map<String, Value>) -> Option<Vec<Dimension>> {
    let keys = set.as_array()?;
    if keys.len() > MAX_DIMENSIONS {
        return None;
    }
    keys.iter()
        .map(|k| {
            let key = k.as_str()?;
            let value = root.get(key)?.as_str()?;
            Some(Dimension {
                name: key.to_string(),
                value: value.to_string(),
            })
        })
        .collect()
}

fn values(member: Option<&Value>) -> Option<Vec<f64>> {
    match member? {
        Value::Number(n) => Some(vec![n.as_f64()?]),
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES => {
            items.iter().map(Value::as_f64).collect()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_insights_node_event() {
        let message = r#"{"Type":"Node","ClusterName":"eks-emr-cluster","NodeName":"n1","InstanceId":"i-1",
            "node_cpu_reserved_capacity":92.5,"node_cpu_request":3700,
            "_aws":{"Timestamp":1796378400123,"CloudWatchMetrics":[{"Namespace":"ContainerInsights",
              "Dimensions":[["NodeName","InstanceId","ClusterName"],["ClusterName"]],
              "Metrics":[{"Name":"node_cpu_reserved_capacity","Unit":"Percent"}]}]}}"#;
        let inputs = extract(message);
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].namespace.as_deref(), Some("ContainerInsights"));
        let data = inputs[0].metric_data.as_ref().unwrap();
        assert_eq!(data.len(), 2, "one datum per dimension set");
        assert_eq!(data[0].values, Some(vec![92.5]));
        assert_eq!(data[0].dimensions.as_ref().unwrap().len(), 3);
        assert_eq!(data[1].dimensions.as_ref().unwrap()[0].name, "ClusterName");
        assert_eq!(data[0].timestamp.as_ref().unwrap().0, 1_796_378_400.123);
        assert_eq!(data[0].unit.as_deref(), Some("Percent"));
    }

    #[test]
    fn invalid_parts_are_skipped() {
        // A set naming an absent member, a metric with no value, a non-EMF line.
        let message = r#"{"A":"x","m":1,"_aws":{"Timestamp":1000,"CloudWatchMetrics":[{"Namespace":"N",
            "Dimensions":[["A"],["Missing"]],"Metrics":[{"Name":"m"},{"Name":"absent"}]}]}}"#;
        let data = extract(message)[0].metric_data.clone().unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].metric_name.as_deref(), Some("m"));
        assert!(extract("plain text line").is_empty());
        assert!(extract(r#"{"_aws": 1}"#).is_empty());
    }
}
