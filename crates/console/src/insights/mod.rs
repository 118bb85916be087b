//! Container Insights' performance dashboards (`GET /container-insights`): the cluster,
//! node and namespace views of the `ContainerInsights` metrics, as CloudWatch Container
//! Insights' "Performance monitoring" shows them — CPU and memory utilization, reserved
//! CPU and memory (seed step 17's "Reserved CPU"), node and pod counts.
//!
//! Read as the signed-in principal through the AWS API: at most one ListMetrics walk (the
//! nodes or namespaces to choose from) and exactly one GetMetricData request (every line
//! of every chart, following `NextToken`) per render. Charts are server-rendered SVG
//! ([`crate::charts`]) marked `data-live`, so live.js moves them along.

mod plan;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use sparkyard_aws::Principal;

use crate::api::ApiError;
use crate::charts::{self, ChartSpec, Threshold};
use crate::pages::{nav, page, session_or_redirect};
use crate::views::Nav;
use crate::Console;
use plan::{NodeRef, PlannedChart, Selection, View};

pub(crate) fn routes() -> Router<Console> {
    Router::new().route("/container-insights", get(dashboard))
}

/// Most ListMetrics pages walked for a selector (500 metrics each).
const MAX_LIST_PAGES: usize = 10;
/// Most GetMetricData pages followed.
const MAX_DATA_PAGES: usize = 20;

/// One `<option>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A rendered chart and what it plots.
pub struct ChartView {
    /// Stable element id (`chart-cpu-reserved`), refreshed by live.js.
    pub id: &'static str,
    /// The SVG markup ([`charts::line_chart`]; every text in it escaped).
    pub svg: String,
    /// Namespace, metric and dimensions, under the chart.
    pub caption: String,
}

#[derive(Template)]
#[template(path = "insights.html")]
pub struct Dashboard {
    pub nav: Option<Nav>,
    pub title: String,
    pub cluster: String,
    /// `cluster`, `node` or `namespace`.
    pub view: &'static str,
    pub views: Vec<Choice>,
    pub nodes: Vec<Choice>,
    pub namespaces: Vec<Choice>,
    pub ranges: Vec<Choice>,
    pub charts: Vec<ChartView>,
    /// Why the charts are missing (not authorized, request failed); empty when shown.
    pub error: String,
    /// About the selectors: ListMetrics refused, a node with no metrics, lines left out.
    pub notes: Vec<String>,
    pub period_text: String,
}

/// ListMetrics under `ContainerInsights` for `metric` with these dimension filters (a
/// filter without a value matches any value), following `NextToken`.
async fn list_metrics(
    console: &Console,
    principal: &Principal,
    metric: &str,
    filters: Value,
    recent_only: bool,
) -> Result<Vec<Value>, ApiError> {
    let mut metrics = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let mut input = json!({
            "Namespace": plan::NAMESPACE,
            "MetricName": metric,
            "Dimensions": filters,
        });
        if recent_only {
            input["RecentlyActive"] = json!("PT3H");
        }
        if let Some(t) = &next {
            input["NextToken"] = json!(t);
        }
        let page = console
            .inner
            .api
            .json_op(
                principal,
                "monitoring",
                "GraniteServiceVersion20100801.ListMetrics",
                &input,
            )
            .await?;
        if let Some(list) = page.get("Metrics").and_then(Value::as_array) {
            metrics.extend(list.iter().cloned());
        }
        next = page
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    Ok(metrics)
}

/// The one GetMetricData request of the page, all its pages merged by query id.
async fn metric_data(
    console: &Console,
    principal: &Principal,
    mut input: Value,
) -> Result<HashMap<String, Vec<(i64, f64)>>, ApiError> {
    let mut data = HashMap::new();
    for _ in 0..MAX_DATA_PAGES {
        let page = console
            .inner
            .api
            .json_op(
                principal,
                "monitoring",
                "GraniteServiceVersion20100801.GetMetricData",
                &input,
            )
            .await?;
        plan::collect(&page, &mut data);
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => input["NextToken"] = json!(t),
            None => break,
        }
    }
    Ok(data)
}

fn denied_text(what: &str, e: &ApiError) -> String {
    if e.denied() {
        format!("You are not authorized to {what}. {}", e.message)
    } else {
        format!("Could not {what}: {}", e.message)
    }
}

fn caption(chart: &PlannedChart, selection: &Selection) -> String {
    let Some(first) = chart.lines.first() else {
        return String::new();
    };
    let dims: Vec<String> = match (selection.view, chart.lines.len()) {
        (View::Cluster, _) | (_, 1) => first
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        _ => first
            .dimensions
            .iter()
            .map(|(k, _)| k.to_string())
            .collect(),
    };
    let metrics: Vec<&str> = {
        let mut m: Vec<&str> = chart.lines.iter().map(|l| l.metric).collect();
        m.dedup();
        m
    };
    format!(
        "{} · {} · {{{}}}",
        plan::NAMESPACE,
        metrics.join(", "),
        dims.join(", ")
    )
}

async fn dashboard(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let p = &session.principal;
    let cluster = console.inner.settings.cluster_name.clone();
    let mut selection = Selection::from_query(&query);
    let recent_only = selection.range_seconds <= 10_800;
    let mut notes = Vec::new();

    // The selector's choices (and the selected node's InstanceId) from ListMetrics.
    let (mut nodes, mut namespaces): (Vec<NodeRef>, Vec<String>) = (Vec::new(), Vec::new());
    let cluster_filter = json!({"Name": "ClusterName", "Value": cluster});
    match selection.view {
        View::Cluster => {}
        View::Node => {
            match list_metrics(
                &console,
                p,
                "node_cpu_utilization",
                json!([cluster_filter, {"Name": "NodeName"}, {"Name": "InstanceId"}]),
                recent_only,
            )
            .await
            {
                Ok(m) => nodes = plan::nodes_from(&m),
                Err(e) => notes.push(denied_text("list the nodes (cloudwatch:ListMetrics)", &e)),
            }
        }
        View::Namespace => {
            match list_metrics(
                &console,
                p,
                "namespace_number_of_running_pods",
                json!([cluster_filter, {"Name": "Namespace"}]),
                recent_only,
            )
            .await
            {
                Ok(m) => namespaces = plan::namespaces_from(&m),
                Err(e) => notes.push(denied_text(
                    "list the namespaces (cloudwatch:ListMetrics)",
                    &e,
                )),
            }
        }
    }
    if !selection.node.is_empty() && !nodes.iter().any(|n| n.name == selection.node) {
        notes.push(format!(
            "Node {} has no Container Insights metrics in this period; showing all nodes.",
            selection.node
        ));
        selection.node.clear();
    }
    if !selection.namespace.is_empty() && !namespaces.contains(&selection.namespace) {
        // Still charted (ListMetrics may be refused, or the namespace new); just not listed.
        namespaces.push(selection.namespace.clone());
        namespaces.sort();
    }
    let listed = match selection.view {
        View::Node if selection.node.is_empty() => nodes.len(),
        View::Namespace if selection.namespace.is_empty() => namespaces.len(),
        _ => 0,
    };
    if listed > plan::MAX_LINES {
        notes.push(format!(
            "Showing the first {} of {listed} (by name); choose one to see the others.",
            plan::MAX_LINES
        ));
    }

    // Every chart from one GetMetricData request.
    let period = selection.period();
    let end = Utc::now().timestamp();
    let start = end - selection.range_seconds;
    let first_bucket = (start.div_euclid(period) + 1) * period;
    let planned = plan::plan(&selection, &cluster, &nodes, &namespaces);
    let query_count: usize = planned.iter().map(|c| c.lines.len()).sum();
    let (data, error) = if query_count == 0 {
        (HashMap::new(), String::new())
    } else {
        match metric_data(
            &console,
            p,
            plan::request(&planned, first_bucket, end, period),
        )
        .await
        {
            Ok(d) => (d, String::new()),
            Err(e) => (
                HashMap::new(),
                denied_text(
                    "read Container Insights metrics (cloudwatch:GetMetricData)",
                    &e,
                ),
            ),
        }
    };
    let period_text = plan::describe_period(period);
    let charts = if error.is_empty() {
        let series = plan::series(&planned, &data);
        planned
            .iter()
            .zip(series)
            .map(|(chart, series)| {
                let spec = ChartSpec {
                    id: chart.id.to_string(),
                    title: chart.title.to_string(),
                    subtitle: period_text.clone(),
                    unit: chart.unit,
                    start,
                    end,
                    period,
                    threshold: chart.threshold.map(|value| Threshold {
                        value,
                        label: "threshold".into(),
                    }),
                };
                ChartView {
                    id: chart.id,
                    svg: charts::line_chart(&spec, &series),
                    caption: caption(chart, &selection),
                }
            })
            .collect()
    } else {
        Vec::new()
    };

    let choice = |value: &str, label: &str, selected: bool| Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected,
    };
    let mut node_choices = vec![choice("", "All nodes", selection.node.is_empty())];
    node_choices.extend(
        nodes
            .iter()
            .map(|n| choice(&n.name, &n.name, n.name == selection.node)),
    );
    let mut namespace_choices = vec![choice("", "All namespaces", selection.namespace.is_empty())];
    namespace_choices.extend(
        namespaces
            .iter()
            .map(|n| choice(n, n, *n == selection.namespace)),
    );
    page(
        StatusCode::OK,
        &Dashboard {
            nav: nav(&session),
            title: "Container Insights · Performance monitoring".into(),
            cluster,
            view: selection.view.key(),
            views: View::ALL
                .iter()
                .map(|v| choice(v.key(), v.label(), *v == selection.view))
                .collect(),
            nodes: node_choices,
            namespaces: namespace_choices,
            ranges: plan::RANGES
                .iter()
                .map(|(key, label, _)| choice(key, label, *key == selection.range))
                .collect(),
            charts,
            error,
            notes,
            period_text,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(view: &'static str, error: &str) -> Dashboard {
        let choice = |v: &str| Choice {
            value: v.into(),
            label: format!("<{v}>"),
            selected: true,
        };
        Dashboard {
            nav: None,
            title: "Container Insights".into(),
            cluster: "eks-emr-cluster".into(),
            view,
            views: vec![choice(view)],
            nodes: vec![choice("ins-node-a")],
            namespaces: vec![choice("default")],
            ranges: vec![choice("1h")],
            charts: vec![ChartView {
                id: "chart-cpu-reserved",
                svg: r#"<svg class="chart" data-max="90"></svg>"#.into(),
                caption: "ContainerInsights · node_cpu_reserved_capacity".into(),
            }],
            error: error.into(),
            notes: vec![],
            period_text: plan::describe_period(60),
        }
    }

    #[test]
    fn charts_are_live_and_selectors_have_ids() {
        let html = dashboard("node", "").render().unwrap();
        assert!(html.contains(r#"id="chart-cpu-reserved" data-live"#));
        assert!(
            html.contains(r#"<svg class="chart" data-max="90">"#),
            "SVG inserted as markup"
        );
        for id in [
            "insights-view",
            "insights-cluster",
            "insights-node",
            "insights-range",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(!html.contains(r#"id="insights-namespace""#));
        assert!(!html.contains("<ins-node-a>"), "labels escaped");
        assert!(!html.contains("style="));
    }

    #[test]
    fn a_refusal_replaces_the_charts() {
        let html = dashboard("cluster", "You are not authorized to read metrics.")
            .render()
            .unwrap();
        assert!(html.contains(r#"id="insights-error""#));
        assert!(!html.contains("chart-cpu-reserved"));
    }
}
