//! Which charts a Container Insights view shows, and the one GetMetricData request that
//! reads them all. Pure: the selection and the metric lists in, queries and series out.
//!
//! The charts follow Container Insights' performance dashboards: statistic `Average`
//! everywhere (what its dashboards plot), the metric names and dimension sets the agent
//! publishes (docs/metrics.md, "The catalogue").

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::charts::{Series, Unit};

/// Container Insights' CloudWatch namespace.
pub const NAMESPACE: &str = "ContainerInsights";

/// The statistic every chart uses, as Container Insights' dashboards do.
pub const STAT: &str = "Average";

/// Most lines one chart draws ("All nodes" / "All namespaces"); the rest are named in a note.
pub const MAX_LINES: usize = 20;

/// The dashboard's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Cluster,
    Node,
    Namespace,
}

impl View {
    pub const ALL: [View; 3] = [View::Cluster, View::Node, View::Namespace];

    pub fn key(self) -> &'static str {
        match self {
            View::Cluster => "cluster",
            View::Node => "node",
            View::Namespace => "namespace",
        }
    }

    /// As Container Insights' view selector names them.
    pub fn label(self) -> &'static str {
        match self {
            View::Cluster => "EKS Clusters",
            View::Node => "EKS Nodes",
            View::Namespace => "EKS Namespaces",
        }
    }

    fn parse(s: &str) -> View {
        View::ALL
            .into_iter()
            .find(|v| v.key() == s)
            .unwrap_or(View::Cluster)
    }
}

/// A time range of the selector: its key, how it reads and its length in seconds.
pub const RANGES: [(&str, &str, i64); 7] = [
    ("15m", "15 minutes", 900),
    ("1h", "1 hour", 3600),
    ("3h", "3 hours", 10_800),
    ("12h", "12 hours", 43_200),
    ("1d", "1 day", 86_400),
    ("3d", "3 days", 259_200),
    ("1w", "1 week", 604_800),
];

pub const DEFAULT_RANGE: &str = "1h";

/// The datapoint period for a range: 1 minute up to 3 hours, 5 minutes up to a day,
/// 1 hour beyond (at most a few hundred points per line).
pub fn period_for(range_seconds: i64) -> i64 {
    match range_seconds {
        s if s <= 10_800 => 60,
        s if s <= 86_400 => 300,
        _ => 3600,
    }
}

/// `Average, 1-minute period`.
pub fn describe_period(period: i64) -> String {
    let span = match period {
        p if p % 3600 == 0 => format!("{}-hour", p / 3600),
        p if p % 60 == 0 => format!("{}-minute", p / 60),
        p => format!("{p}-second"),
    };
    format!("{STAT}, {span} period")
}

/// What the page was asked to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub view: View,
    /// Empty: all nodes.
    pub node: String,
    /// Empty: all namespaces.
    pub namespace: String,
    pub range: &'static str,
    pub range_seconds: i64,
}

impl Selection {
    pub fn from_query(query: &HashMap<String, String>) -> Selection {
        let get = |k: &str| {
            query
                .get(k)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let (range, _, range_seconds) = RANGES
            .iter()
            .copied()
            .find(|(key, _, _)| *key == get("range"))
            .or_else(|| RANGES.iter().copied().find(|r| r.0 == DEFAULT_RANGE))
            .unwrap_or(RANGES[1]);
        let view = View::parse(&get("view"));
        Selection {
            view,
            node: if view == View::Node {
                get("node")
            } else {
                String::new()
            },
            namespace: if view == View::Namespace {
                get("namespace")
            } else {
                String::new()
            },
            range,
            range_seconds,
        }
    }

    pub fn period(&self) -> i64 {
        period_for(self.range_seconds)
    }
}

/// A node as ListMetrics names it: Container Insights' node dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeRef {
    pub name: String,
    pub instance_id: String,
}

/// One line of a chart: a metric under one dimension set.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub metric: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
}

/// A chart to draw: its stable element id, what it shows and the lines to read.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChart {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub threshold: Option<f64>,
    pub lines: Vec<Line>,
}

/// The reserved-capacity threshold line (the seed's step 17 alarm).
pub const RESERVED_THRESHOLD: f64 = 90.0;

/// The charts of `selection`'s view. `nodes` and `namespaces` are what ListMetrics listed
/// (sorted), used for "All nodes" / "All namespaces" (one line each, at most
/// [`MAX_LINES`]) and for the selected node's `InstanceId`.
pub fn plan(
    selection: &Selection,
    cluster: &str,
    nodes: &[NodeRef],
    namespaces: &[String],
) -> Vec<PlannedChart> {
    let cluster_dims = || vec![("ClusterName", cluster.to_string())];
    let chart = |id, title, unit, threshold, lines| PlannedChart {
        id,
        title,
        unit,
        threshold,
        lines,
    };
    let reserved = Some(RESERVED_THRESHOLD);
    match selection.view {
        View::Cluster => {
            let one = |label: &str, metric| {
                vec![Line {
                    label: label.to_string(),
                    metric,
                    dimensions: cluster_dims(),
                }]
            };
            vec![
                chart(
                    "chart-cpu-utilization",
                    "CPU utilization",
                    Unit::Percent,
                    None,
                    one(cluster, "node_cpu_utilization"),
                ),
                chart(
                    "chart-memory-utilization",
                    "Memory utilization",
                    Unit::Percent,
                    None,
                    one(cluster, "node_memory_utilization"),
                ),
                chart(
                    "chart-cpu-reserved",
                    "Reserved CPU",
                    Unit::Percent,
                    reserved,
                    one(cluster, "node_cpu_reserved_capacity"),
                ),
                chart(
                    "chart-memory-reserved",
                    "Reserved memory",
                    Unit::Percent,
                    reserved,
                    one(cluster, "node_memory_reserved_capacity"),
                ),
                chart(
                    "chart-node-count",
                    "Number of nodes",
                    Unit::Count,
                    None,
                    [
                        one("Nodes", "cluster_node_count"),
                        one("Failed nodes", "cluster_failed_node_count"),
                    ]
                    .concat(),
                ),
                chart(
                    "chart-pod-count",
                    "Number of running pods",
                    Unit::Count,
                    None,
                    one("Running pods", "cluster_number_of_running_pods"),
                ),
            ]
        }
        View::Node => {
            let chosen: Vec<&NodeRef> = if selection.node.is_empty() {
                nodes.iter().take(MAX_LINES).collect()
            } else {
                nodes.iter().filter(|n| n.name == selection.node).collect()
            };
            let per_node = |metric: &'static str| -> Vec<Line> {
                chosen
                    .iter()
                    .map(|n| Line {
                        label: n.name.clone(),
                        metric,
                        dimensions: vec![
                            ("NodeName", n.name.clone()),
                            ("InstanceId", n.instance_id.clone()),
                            ("ClusterName", cluster.to_string()),
                        ],
                    })
                    .collect()
            };
            vec![
                chart(
                    "chart-cpu-utilization",
                    "CPU utilization",
                    Unit::Percent,
                    None,
                    per_node("node_cpu_utilization"),
                ),
                chart(
                    "chart-memory-utilization",
                    "Memory utilization",
                    Unit::Percent,
                    None,
                    per_node("node_memory_utilization"),
                ),
                chart(
                    "chart-cpu-reserved",
                    "Reserved CPU",
                    Unit::Percent,
                    reserved,
                    per_node("node_cpu_reserved_capacity"),
                ),
                chart(
                    "chart-memory-reserved",
                    "Reserved memory",
                    Unit::Percent,
                    reserved,
                    per_node("node_memory_reserved_capacity"),
                ),
                chart(
                    "chart-pod-count",
                    "Number of running pods",
                    Unit::Count,
                    None,
                    per_node("node_number_of_running_pods"),
                ),
            ]
        }
        View::Namespace => {
            let chosen: Vec<&String> = if selection.namespace.is_empty() {
                namespaces.iter().take(MAX_LINES).collect()
            } else {
                vec![&selection.namespace]
            };
            let per_namespace = |metric: &'static str| -> Vec<Line> {
                chosen
                    .iter()
                    .map(|ns| Line {
                        label: ns.to_string(),
                        metric,
                        dimensions: vec![
                            ("Namespace", ns.to_string()),
                            ("ClusterName", cluster.to_string()),
                        ],
                    })
                    .collect()
            };
            // pod_{cpu,memory}_reserved_capacity are not published per namespace (only per
            // pod and per cluster), so this view has no reserved-capacity charts.
            vec![
                chart(
                    "chart-pod-count",
                    "Number of running pods",
                    Unit::Count,
                    None,
                    per_namespace("namespace_number_of_running_pods"),
                ),
                chart(
                    "chart-cpu-utilization",
                    "Pod CPU utilization",
                    Unit::Percent,
                    None,
                    per_namespace("pod_cpu_utilization"),
                ),
                chart(
                    "chart-memory-utilization",
                    "Pod memory utilization",
                    Unit::Percent,
                    None,
                    per_namespace("pod_memory_utilization"),
                ),
            ]
        }
    }
}

/// The query id of chart `c`'s line `l` (CloudWatch ids start with a lower-case letter).
fn query_id(chart: usize, line: usize) -> String {
    format!("c{chart}l{line}")
}

/// One GetMetricData request for every line of every chart, oldest datapoint first.
pub fn request(charts: &[PlannedChart], start: i64, end: i64, period: i64) -> Value {
    let queries: Vec<Value> = charts
        .iter()
        .enumerate()
        .flat_map(|(c, chart)| {
            chart.lines.iter().enumerate().map(move |(l, line)| {
                json!({
                    "Id": query_id(c, l),
                    "Label": line.label,
                    "ReturnData": true,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": line.metric,
                            "Dimensions": line.dimensions.iter()
                                .map(|(name, value)| json!({"Name": name, "Value": value}))
                                .collect::<Vec<_>>(),
                        },
                        "Period": period,
                        "Stat": STAT,
                    },
                })
            })
        })
        .collect();
    json!({
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    })
}

/// Adds one GetMetricData page's `MetricDataResults` to `into` (by query id): a query's
/// datapoints may be spread over several pages.
pub fn collect(page: &Value, into: &mut HashMap<String, Vec<(i64, f64)>>) {
    let Some(results) = page.get("MetricDataResults").and_then(Value::as_array) else {
        return;
    };
    for result in results {
        let Some(id) = result.get("Id").and_then(Value::as_str) else {
            continue;
        };
        let times = result.get("Timestamps").and_then(Value::as_array);
        let values = result.get("Values").and_then(Value::as_array);
        let points = into.entry(id.to_string()).or_default();
        if let (Some(times), Some(values)) = (times, values) {
            points.extend(
                times
                    .iter()
                    .zip(values)
                    .filter_map(|(t, v)| Some((epoch_seconds(t)?, v.as_f64()?))),
            );
        }
    }
}

/// A JSON-protocol timestamp: epoch seconds (a number), or ISO 8601 from other protocols.
fn epoch_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| f.round() as i64),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp()),
        _ => None,
    }
}

/// The series of each chart, from the collected datapoints (sorted by time).
pub fn series(
    charts: &[PlannedChart],
    data: &HashMap<String, Vec<(i64, f64)>>,
) -> Vec<Vec<Series>> {
    charts
        .iter()
        .enumerate()
        .map(|(c, chart)| {
            chart
                .lines
                .iter()
                .enumerate()
                .map(|(l, line)| {
                    let mut points = data.get(&query_id(c, l)).cloned().unwrap_or_default();
                    points.sort_by_key(|p| p.0);
                    Series {
                        label: line.label.clone(),
                        points,
                    }
                })
                .collect()
        })
        .collect()
}

/// Nodes from ListMetrics' `Metrics` (those with `NodeName` and `InstanceId`), sorted,
/// each once.
pub fn nodes_from(metrics: &[Value]) -> Vec<NodeRef> {
    let mut nodes: Vec<NodeRef> = metrics
        .iter()
        .filter_map(|m| {
            Some(NodeRef {
                name: dimension(m, "NodeName")?,
                instance_id: dimension(m, "InstanceId")?,
            })
        })
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Namespaces from ListMetrics' `Metrics`, sorted, each once.
pub fn namespaces_from(metrics: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = metrics
        .iter()
        .filter_map(|m| dimension(m, "Namespace"))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn dimension(metric: &Value, name: &str) -> Option<String> {
    metric
        .get("Dimensions")?
        .as_array()?
        .iter()
        .find(|d| d.get("Name").and_then(Value::as_str) == Some(name))?
        .get("Value")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selections_default_and_ignore_unknown_values() {
        let s = Selection::from_query(&query(&[]));
        assert_eq!((s.view, s.range, s.period()), (View::Cluster, "1h", 60));
        let s = Selection::from_query(&query(&[
            ("view", "node"),
            ("node", "n1"),
            ("range", "1d"),
            ("namespace", "x"),
        ]));
        assert_eq!(
            (s.view, s.node.as_str(), s.namespace.as_str()),
            (View::Node, "n1", "")
        );
        assert_eq!(s.period(), 300);
        let s = Selection::from_query(&query(&[("view", "bogus"), ("range", "2y")]));
        assert_eq!((s.view, s.range), (View::Cluster, "1h"));
    }

    #[test]
    fn periods_follow_the_range() {
        assert_eq!(period_for(900), 60);
        assert_eq!(period_for(10_800), 60);
        assert_eq!(period_for(43_200), 300);
        assert_eq!(period_for(86_400), 300);
        assert_eq!(period_for(259_200), 3600);
        assert_eq!(describe_period(60), "Average, 1-minute period");
        assert_eq!(describe_period(300), "Average, 5-minute period");
        assert_eq!(describe_period(3600), "Average, 1-hour period");
    }

    #[test]
    fn one_request_reads_every_chart() {
        let s = Selection::from_query(&query(&[]));
        let charts = plan(&s, "eks-emr-cluster", &[], &[]);
        let ids: Vec<&str> = charts.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "chart-cpu-utilization",
                "chart-memory-utilization",
                "chart-cpu-reserved",
                "chart-memory-reserved",
                "chart-node-count",
                "chart-pod-count"
            ]
        );
        let body = request(&charts, 100, 3700, 60);
        let queries = body["MetricDataQueries"].as_array().unwrap();
        assert_eq!(queries.len(), 7, "node count has failed nodes too");
        assert_eq!(
            queries[2]["MetricStat"]["Metric"]["MetricName"],
            "node_cpu_reserved_capacity"
        );
        assert_eq!(queries[2]["MetricStat"]["Stat"], "Average");
        assert_eq!(
            queries[2]["MetricStat"]["Metric"]["Dimensions"],
            json!([{"Name": "ClusterName", "Value": "eks-emr-cluster"}])
        );
        assert_eq!(body["StartTime"], 100);
    }

    #[test]
    fn node_view_uses_the_node_dimension_set() {
        let nodes = vec![
            NodeRef {
                name: "a".into(),
                instance_id: "i-1".into(),
            },
            NodeRef {
                name: "b".into(),
                instance_id: "i-2".into(),
            },
        ];
        let all = Selection::from_query(&query(&[("view", "node")]));
        let charts = plan(&all, "c", &nodes, &[]);
        assert_eq!(charts.len(), 5);
        assert!(charts.iter().all(|c| c.lines.len() == 2));
        let one = Selection::from_query(&query(&[("view", "node"), ("node", "b")]));
        let charts = plan(&one, "c", &nodes, &[]);
        assert_eq!(
            charts[2].lines[0].dimensions,
            vec![
                ("NodeName", "b".to_string()),
                ("InstanceId", "i-2".to_string()),
                ("ClusterName", "c".to_string())
            ]
        );
        assert_eq!(charts[2].threshold, Some(90.0));
    }

    #[test]
    fn results_merge_across_pages_and_sort() {
        let s = Selection::from_query(&query(&[("view", "namespace"), ("namespace", "default")]));
        let charts = plan(&s, "c", &[], &[]);
        let mut data = HashMap::new();
        collect(
            &json!({"MetricDataResults": [{"Id": "c0l0", "Timestamps": [180, 120], "Values": [3.0, 2.0]}]}),
            &mut data,
        );
        collect(
            &json!({"MetricDataResults": [{"Id": "c0l0", "Timestamps": ["1970-01-01T00:01:00Z"], "Values": [1.0]}]}),
            &mut data,
        );
        let series = series(&charts, &data);
        assert_eq!(series[0][0].points, vec![(60, 1.0), (120, 2.0), (180, 3.0)]);
        assert_eq!(series[0][0].label, "default");
        assert!(series[1][0].points.is_empty());
    }

    #[test]
    fn list_metrics_answers_become_nodes_and_namespaces() {
        let metrics = vec![
            json!({"Dimensions": [{"Name": "ClusterName", "Value": "c"}, {"Name": "InstanceId", "Value": "i-2"}, {"Name": "NodeName", "Value": "b"}]}),
            json!({"Dimensions": [{"Name": "ClusterName", "Value": "c"}, {"Name": "InstanceId", "Value": "i-1"}, {"Name": "NodeName", "Value": "a"}]}),
            json!({"Dimensions": [{"Name": "ClusterName", "Value": "c"}]}),
            json!({"Dimensions": [{"Name": "Namespace", "Value": "z"}, {"Name": "ClusterName", "Value": "c"}]}),
        ];
        let nodes = nodes_from(&metrics);
        assert_eq!(
            nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(namespaces_from(&metrics), ["z"]);
    }
}
