//! Start job run: `GET /virtual-clusters/<vc>/start` shows the form, `POST` calls
//! StartJobRun as the principal and goes to the new run, or shows the form again with
//! the API's message and what was typed.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::not_found;
use super::views::{self, StartForm};
use crate::pages::{
    nav, or_dash, page, see_other, session_or_redirect, signed_in_post, text, valid_id,
};
use crate::sessions::{self, Session};
use crate::Console;

/// The form as typed, kept for a re-shown form.
pub fn fields(form: &HashMap<String, String>) -> StartForm {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    StartForm {
        name: get("name"),
        role_arn: get("execution_role_arn"),
        release: get("release_label"),
        entry_point: get("entry_point"),
        arguments: get("entry_point_arguments"),
        spark_params: get("spark_submit_parameters"),
        log_uri: get("log_uri"),
        log_group: get("log_group"),
        stream_prefix: get("log_stream_prefix"),
        ..StartForm::default()
    }
}

/// StartJobRun's body (`POST /virtualclusters/<vc>/jobruns`). Empty optional fields are
/// left out, so the API's own validation and defaults apply; `clientToken` makes a double
/// submit idempotent as in the CLI.
pub fn request_body(f: &StartForm, client_token: &str) -> Value {
    let mut driver = Map::new();
    driver.insert("entryPoint".into(), json!(f.entry_point));
    let args: Vec<&str> = f
        .arguments
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if !args.is_empty() {
        driver.insert("entryPointArguments".into(), json!(args));
    }
    if !f.spark_params.is_empty() {
        driver.insert("sparkSubmitParameters".into(), json!(f.spark_params));
    }
    let mut body = json!({
        "clientToken": client_token,
        "executionRoleArn": f.role_arn,
        "releaseLabel": f.release,
        "jobDriver": {"sparkSubmitJobDriver": Value::Object(driver)},
    });
    if !f.name.is_empty() {
        body["name"] = json!(f.name);
    }
    let mut monitoring = Map::new();
    if !f.log_uri.is_empty() {
        monitoring.insert(
            "s3MonitoringConfiguration".into(),
            json!({"logUri": f.log_uri}),
        );
    }
    if !f.log_group.is_empty() {
        let mut cw = json!({"logGroupName": f.log_group});
        if !f.stream_prefix.is_empty() {
            cw["logStreamNamePrefix"] = json!(f.stream_prefix);
        }
        monitoring.insert("cloudWatchMonitoringConfiguration".into(), cw);
    }
    if !monitoring.is_empty() {
        body["configurationOverrides"] =
            json!({"monitoringConfiguration": Value::Object(monitoring)});
    }
    body
}

async fn vc_name(console: &Console, session: &Session, vc: &str) -> String {
    match console
        .inner
        .api
        .describe_virtual_cluster(&session.principal, vc)
        .await
    {
        Ok(v) => or_dash(text(&v, "/name")),
        Err(_) => vc.to_string(),
    }
}

pub(super) async fn start_form(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(vc): Path<String>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&vc) {
        return not_found(&session, "No such virtual cluster.");
    }
    let form = views::StartForm {
        nav: nav(&session),
        title: "Start job run".into(),
        csrf: session.csrf.clone(),
        vc_name: vc_name(&console, &session, &vc).await,
        vc_id: vc,
        release: "emr-6.4.0-latest".into(),
        ..Default::default()
    };
    page(StatusCode::OK, &form)
}

pub(super) async fn start_run(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(vc): Path<String>,
    body: Bytes,
) -> Response {
    let (session, submitted) = match signed_in_post(&console, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !valid_id(&vc) {
        return not_found(&session, "No such virtual cluster.");
    }
    let mut typed = fields(&submitted);
    let request = request_body(&typed, &sessions::random_token());
    let p = &session.principal;
    let answer = console
        .inner
        .api
        .request(
            p,
            "emr-containers",
            Method::POST,
            &format!("/virtualclusters/{vc}/jobruns"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&request).unwrap_or_default(),
        )
        .await;
    match answer {
        Ok(v) => {
            let id = text(&v, "/id");
            tracing::info!(principal = %p.arn, job_run = %id, "job run started from the console");
            see_other(&format!("/virtual-clusters/{vc}/job-runs/{id}?started=1"))
        }
        Err(e) => {
            typed.nav = nav(&session);
            typed.title = "Start job run".into();
            typed.csrf = session.csrf.clone();
            typed.vc_name = vc_name(&console, &session, &vc).await;
            typed.vc_id = vc;
            typed.error = format!("{}: {}", e.code, e.message);
            page(e.status, &typed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_start_job_run_body() {
        let form: HashMap<String, String> = [
            ("name", "pi"),
            ("execution_role_arn", "arn:aws:iam::1:role/r"),
            ("release_label", "emr-6.4.0-latest"),
            ("entry_point", "s3://b/pi.py"),
            ("entry_point_arguments", "10\n\n 20 \n"),
            ("spark_submit_parameters", ""),
            ("log_group", "/emr-on-eks/c/ns"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = request_body(&fields(&form), "tok");
        assert_eq!(
            body["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"],
            json!(["10", "20"])
        );
        assert!(body["jobDriver"]["sparkSubmitJobDriver"]
            .get("sparkSubmitParameters")
            .is_none());
        assert_eq!(
            body["configurationOverrides"]["monitoringConfiguration"],
            json!({"cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/c/ns"}})
        );
        assert_eq!(
            (body["name"].as_str(), body["clientToken"].as_str()),
            (Some("pi"), Some("tok"))
        );
    }
}
