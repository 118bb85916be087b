//! The job run page: DescribeJobRun's facts, the pod chain, the timeline and the
//! executor chart, assembled from [`super::observe`].

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use super::chain::{self, ChainPod, Role};
use super::observe::{observe, spark_side};
use super::{clock, logs, timeline, views};
use crate::pages::{nav, or_dash, page, run_duration, shown_time, text, timestamp, total_usd, usd};
use crate::sessions::Session;
use crate::Console;

/// The Spark UI: once the run finished, the History Server's page of the application;
/// while it runs, the driver's own UI on port 4040, reached with `kubectl port-forward`.
fn spark_ui(
    state: &str,
    driver: Option<&ChainPod>,
    namespace: &str,
    history_url: Option<&str>,
    app: &str,
) -> (String, String) {
    let finished = matches!(state, "COMPLETED" | "FAILED" | "CANCELLED");
    match (history_url, driver) {
        (Some(base), _) if finished && !app.is_empty() => (
            format!("{}/history/{app}/", base.trim_end_matches('/')),
            "Spark History Server".into(),
        ),
        (_, Some(d)) if !finished && d.phase == "Running" => (
            String::new(),
            format!(
                "The live Spark UI is on the driver's port 4040: kubectl port-forward -n {namespace} pod/{} 4040:4040, then open http://localhost:4040/",
                d.name
            ),
        ),
        (None, _) if finished => (
            String::new(),
            "No Spark History Server on this server ([history] enabled = false).".into(),
        ),
        _ => (String::new(), "Not available yet.".into()),
    }
}

pub(super) async fn run_page(
    console: &Console,
    session: &Session,
    vc: &str,
    run: &Value,
    notice: &str,
    error: &str,
    status: StatusCode,
) -> Response {
    let state = text(run, "/state");
    let id = text(run, "/id");
    let name = text(run, "/name");
    let mut o = observe(console, session, vc, run).await;
    let cw = logs::cloudwatch_of(run);
    let spark = spark_side(
        console,
        session,
        vc,
        &id,
        &o.namespace,
        &o.pods,
        cw.as_ref(),
    )
    .await;
    let driver = o.pods.iter().find(|p| p.role == Role::Driver && p.live);
    let app_id = driver
        .map(|d| d.app_id.clone())
        .filter(|a| !a.is_empty())
        .unwrap_or(spark.app_id);
    let history_url = console.inner.settings.history_url.as_deref();
    let (ui, ui_note) = spark_ui(&state, driver, &o.namespace, history_url, &app_id);
    let executors = spark.executors;
    let spark_note = spark.note;

    // Executors known only from the driver's log join the chain.
    let prefixes = chain::exec_prefixes(o.pods.iter().map(|p| p.name.as_str()));
    if let (Some(prefix), 1) = (prefixes.iter().next(), prefixes.len()) {
        let known: BTreeSet<u32> = o.pods.iter().filter_map(|p| p.exec_id).collect();
        let missing: Vec<String> = executors
            .iter()
            .filter_map(|x| x.id.parse::<u32>().ok())
            .filter(|n| !known.contains(n))
            .map(|n| format!("{prefix}-exec-{n}"))
            .collect();
        if !missing.is_empty() {
            let pods = std::mem::take(&mut o.pods);
            o.pods = chain::assemble(&id, pods, missing, &Default::default());
        }
    }
    let preempted: BTreeSet<String> = o
        .pods
        .iter()
        .filter(|p| p.preempted)
        .filter_map(|p| p.exec_id.map(|n| n.to_string()))
        .collect();
    let start = timestamp(run, "/createdAt").unwrap_or_else(Utc::now);
    let end = timestamp(run, "/finishedAt").unwrap_or_else(Utc::now);
    let finished = timestamp(run, "/finishedAt").is_some();
    let bars = timeline::bars(&executors, &preempted, start, end, finished);
    let chart_height = bars.len() as u32 * timeline::ROW_HEIGHT + 18;
    let entries = timeline::merge(
        std::mem::take(&mut o.timeline),
        timeline::spark_entries(&executors),
    );
    let logs_on = cw.is_some();

    let pods = o
        .pods
        .iter()
        .map(|p| views::PodRow {
            name: p.name.clone(),
            role: p.role.as_str(),
            exec_id: p.exec_id.map(|n| n.to_string()).unwrap_or_default(),
            phase: p.phase.clone(),
            node: p.node.clone(),
            restarts: if p.live {
                p.restarts.to_string()
            } else {
                "—".into()
            },
            started: clock(p.started),
            ended: clock(p.ended),
            preempted: p.preempted,
            source: if p.live {
                ""
            } else if o.shipped.contains(&p.name) {
                "known from its logs"
            } else if o.event_names.contains(&p.name) {
                "known from events"
            } else {
                "known from the driver's log"
            },
            logs: p.live || logs_on,
        })
        .collect();
    let timeline = entries
        .into_iter()
        .map(|e| views::TimelineRow {
            time: e.time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            kind: e.kind.as_str(),
            event_type: e.event_type,
            object: e.object,
            reason: e.reason,
            message: e.message,
        })
        .collect();

    let mut configuration = serde_json::Map::new();
    for key in [
        "jobDriver",
        "configurationOverrides",
        "retryPolicyConfiguration",
        "retryPolicyExecution",
        "tags",
    ] {
        if let Some(v) = run.get(key).filter(|v| !v.is_null()) {
            configuration.insert(key.into(), v.clone());
        }
    }
    let (cost_total, cost_rows) = cost_of(
        console
            .inner
            .api
            .job_run_cost(&session.principal, vc, &id)
            .await
            .ok()
            .as_ref(),
    );
    let shown_name = if name.is_empty() { id.clone() } else { name };
    page(
        status,
        &views::JobRun {
            nav: nav(session),
            title: shown_name.clone(),
            csrf: session.csrf.clone(),
            vc_id: vc.to_string(),
            name: shown_name,
            id,
            cancellable: matches!(state.as_str(), "PENDING" | "SUBMITTED" | "RUNNING"),
            state_details: or_dash(text(run, "/stateDetails")),
            failure_reason: or_dash(text(run, "/failureReason")),
            release: or_dash(text(run, "/releaseLabel")),
            created: shown_time(timestamp(run, "/createdAt")),
            finished: shown_time(timestamp(run, "/finishedAt")),
            duration: run_duration(run),
            created_by: or_dash(text(run, "/createdBy")),
            role: or_dash(text(run, "/executionRoleArn")),
            arn: or_dash(text(run, "/arn")),
            configuration: serde_json::to_string_pretty(&Value::Object(configuration))
                .unwrap_or_default(),
            notice: notice.into(),
            error: error.into(),
            state,
            namespace: o.namespace,
            app_id: or_dash(app_id),
            spark_ui: ui,
            spark_ui_note: ui_note,
            pods,
            pods_error: o.pods_error,
            timeline,
            timeline_error: o.timeline_error,
            spark_note,
            bars,
            chart_height,
            chart_start: start.format("%H:%M:%S").to_string(),
            chart_end: end.format("%H:%M:%S").to_string(),
            logs_note: o.logs_note,
            cost_total,
            cost_rows,
        },
    )
}

/// GetJobRunCost's record as the page shows it: a totals line and a row per pod.
fn cost_of(record: Option<&Value>) -> (String, Vec<views::CostRow>) {
    let Some(cost) = record.map(|r| &r["cost"]).filter(|c| !c.is_null()) else {
        return (
            "Written when the run and its pods have ended.".into(),
            Vec::new(),
        );
    };
    let f = |v: &Value, key: &str| v[key].as_f64().unwrap_or_default();
    let total = format!(
        "{} — EC2 {}, EMR on EKS {}; {:.4} vCPU-hours, {:.4} GB-hours ({} rates in {})",
        usd(total_usd(cost)),
        usd(f(cost, "ec2Usd")),
        usd(f(cost, "emrUsd")),
        f(cost, "vcpuHours"),
        f(cost, "gbHours"),
        text(cost, "/ratesSource"),
        text(cost, "/region"),
    );
    let rows = cost["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| views::CostRow {
            pod: text(p, "/name"),
            role: text(p, "/role"),
            instance: match (text(p, "/node/instanceType"), text(p, "/node/capacityType")) {
                (t, _) if t.is_empty() => "—".into(),
                (t, c) => format!("{t} ({c})"),
            },
            seconds: p["seconds"].as_u64().unwrap_or_default(),
            vcpu_hours: format!("{:.4}", f(p, "vcpuHours")),
            gb_hours: format!("{:.4}", f(p, "gbHours")),
            ec2: usd(f(p, "ec2Usd")),
            emr: usd(f(p, "emrUsd")),
            total: usd(total_usd(p)),
        })
        .collect();
    (total, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spark_ui_is_port_forwarded_while_running_then_the_history_server() {
        let mut d = chain::remembered("r", "spark-r-driver");
        d.live = true;
        d.phase = "Running".into();
        let h = Some("http://127.0.0.1:18080");
        let (link, note) = spark_ui("RUNNING", Some(&d), "ns", h, "spark-abc");
        assert_eq!(link, "");
        assert!(note.contains("kubectl port-forward -n ns pod/spark-r-driver 4040:4040"));
        assert_eq!(
            spark_ui("COMPLETED", Some(&d), "ns", h, "spark-abc").0,
            "http://127.0.0.1:18080/history/spark-abc/"
        );
        assert_eq!(spark_ui("COMPLETED", None, "ns", None, "spark-abc").0, "");
    }
}
