//! The job run page (facts, pod chain, timeline, Spark UI link), its container log pages,
//! Cancel, and Start job run.
//!
//! Everything is read as the signed-in principal: the run and its virtual cluster through
//! emr-containers, the pods and events with the principal's EKS token (ONE labelled pod
//! list and ONE event list per render), Spark's executor lifecycle from the driver's log
//! (the pod log API while the driver lives, its stored CloudWatch copy after), and the
//! container logs from CloudWatch Logs or the live pod.

mod chain;
mod log_page;
mod logs;
mod observe;
mod page;
mod spark_log;
mod start;
mod timeline;
mod views;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};

use crate::pages::{
    api_failure_page, message, nav, see_other, session_or_redirect, signed_in_post, valid_id,
};
use crate::sessions::Session;
use crate::Console;
use page::run_page;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/virtual-clusters/{vc}/job-runs/{id}", get(job_run))
        .route("/virtual-clusters/{vc}/job-runs/{id}/cancel", post(cancel))
        .route(
            "/virtual-clusters/{vc}/job-runs/{id}/logs/{pod}/{stream}",
            get(log_page::log_page),
        )
        .route(
            "/virtual-clusters/{vc}/start",
            get(start::start_form).post(start::start_run),
        )
}

pub(super) fn not_found(session: &Session, what: &str) -> Response {
    message(StatusCode::NOT_FOUND, nav(session), "Not found", what)
}

/// Pod names reach the API's paths and log stream names only when they are DNS names.
pub(super) fn valid_pod_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('.')
}

pub(super) fn clock(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

async fn job_run(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((vc, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&vc) || !valid_id(&id) {
        return not_found(&session, "No such job run.");
    }
    match console
        .inner
        .api
        .describe_job_run(&session.principal, &vc, &id)
        .await
    {
        Ok(run) => {
            let notice = if query.get("cancel").is_some_and(|v| v == "requested") {
                "Cancellation requested."
            } else if query.contains_key("started") {
                "Job run started."
            } else {
                ""
            };
            run_page(&console, &session, &vc, &run, notice, "", StatusCode::OK).await
        }
        Err(e) => api_failure_page(&session, &e),
    }
}

async fn cancel(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((vc, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_in_post(&console, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !valid_id(&vc) || !valid_id(&id) {
        return not_found(&session, "No such job run.");
    }
    let api = &console.inner.api;
    let p = &session.principal;
    match api.cancel_job_run(p, &vc, &id).await {
        Ok(_) => {
            tracing::info!(principal = %p.arn, job_run = %id, "job run cancelled from the console");
            see_other(&format!(
                "/virtual-clusters/{vc}/job-runs/{id}?cancel=requested"
            ))
        }
        Err(e) => match api.describe_job_run(p, &vc, &id).await {
            Ok(run) => run_page(&console, &session, &vc, &run, "", &e.message, e.status).await,
            Err(_) => api_failure_page(&session, &e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_are_dns_names() {
        assert!(valid_pod_name("spark-000000036abc-driver"));
        assert!(!valid_pod_name("../etc"));
        assert!(!valid_pod_name("A"));
        assert!(!valid_pod_name(""));
    }
}
