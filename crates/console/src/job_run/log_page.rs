//! `GET /virtual-clusters/<vc>/job-runs/<id>/logs/<pod>/<stdout|stderr>`: a container's
//! output, newest 256 KiB (`?raw=1`: as text/plain). Sources, in order: the stored
//! CloudWatch Logs copy (which outlives preempted and deleted pods), the live pod through
//! the Kubernetes log API, else a note that there is no stored copy.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::chain::{self, Role};
use super::{logs, not_found, valid_pod_name, views};
use crate::pages::{api_failure_page, nav, or_dash, page, session_or_redirect, text, valid_id};
use crate::sessions::Session;
use crate::Console;

/// Whether `pod` can be one of run `id`'s pods: the job runner (`<id>-…`,
/// `<id>--<attempt>-…`), the driver (`spark-<id>-…`) or an executor (`<prefix>-exec-<n>`,
/// whose prefix Spark derives from the app name; the live pod's label and the stored
/// stream's run path confirm it is this run's).
pub(super) fn may_be_runs_pod(id: &str, pod: &str) -> bool {
    valid_pod_name(pod)
        && (pod.starts_with(&format!("{id}-"))
            || pod.starts_with(&format!("spark-{id}-"))
            || chain::exec_id_of_name(pod).is_some())
}

/// What the page shows.
struct Shown {
    text: String,
    truncated: bool,
    source: String,
    error: String,
}

pub(super) async fn log_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((vc, id, pod, stream)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&vc)
        || !valid_id(&id)
        || !may_be_runs_pod(&id, &pod)
        || !matches!(stream.as_str(), "stdout" | "stderr")
    {
        return not_found(&session, "No such log.");
    }
    let run = match console
        .inner
        .api
        .describe_job_run(&session.principal, &vc, &id)
        .await
    {
        Ok(run) => run,
        Err(e) => return api_failure_page(&session, &e),
    };
    let raw = query.get("raw").is_some_and(|v| v == "1");
    let limit = (!raw).then_some(logs::TAIL_BYTES);
    let shown = read(&console, &session, &run, &vc, &pod, &stream, limit).await;
    if raw {
        let status = if shown.error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let body = if shown.error.is_empty() {
            shown.text
        } else {
            shown.error
        };
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    page(
        StatusCode::OK,
        &views::LogPage {
            nav: nav(&session),
            title: format!("{pod} · {stream}"),
            run_name: or_dash(text(&run, "/name")),
            vc_id: vc,
            id,
            other_stream: if stream == "stdout" {
                "stderr"
            } else {
                "stdout"
            }
            .into(),
            pod,
            stream,
            shown_kib: shown.text.len().div_ceil(1024),
            text: shown.text,
            truncated: shown.truncated,
            source: shown.source,
            error: shown.error,
        },
    )
}

async fn read(
    console: &Console,
    session: &Session,
    run: &Value,
    vc: &str,
    pod: &str,
    stream: &str,
    limit: Option<usize>,
) -> Shown {
    let api = &console.inner.api;
    let p = &session.principal;
    let id = text(run, "/id");
    let runner = chain::role_of_name(&id, pod) == Role::JobRunner;
    let mut stored_error = String::new();
    if let Some(cw) = logs::cloudwatch_of(run) {
        let name = logs::stream_name(&cw, vc, &id, pod, runner, stream);
        match logs::stored_lines(api, p, &cw, &name, false).await {
            Ok(lines) => {
                let all = lines.iter().map(|l| l.len() + 1).sum::<usize>();
                let text = logs::keep_last(&lines, limit);
                return Shown {
                    truncated: text.len() < all,
                    text,
                    source: format!(
                        "Stored copy in CloudWatch Logs: log group {}, log stream {name} (its newest 10,000 events).",
                        cw.group
                    ),
                    error: String::new(),
                };
            }
            Err(e) if e.denied() => {
                stored_error = format!(
                    "You are not authorized to read the stored copy. {}",
                    e.message
                )
            }
            // Not shipped yet (the shipper delivers when the container exits), or
            // nothing to ship (no stream is created for an empty output).
            Err(e) if e.code == "ResourceNotFoundException" => {
                stored_error = format!("No stored copy of this log in {} (the container wrote nothing to {stream}, or it has not exited yet).", cw.group)
            }
            Err(e) => stored_error = format!("CloudWatch Logs: {}", e.message),
        }
    }
    match live(console, session, vc, &id, pod, stream, limit).await {
        Ok(shown) => shown,
        Err(live_error) => Shown {
            text: String::new(),
            truncated: false,
            source: if stored_error.is_empty() {
                "No stored copy: this run ships no CloudWatch logs.".into()
            } else {
                String::new()
            },
            error: [stored_error, live_error]
                .into_iter()
                .filter(|e| !e.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        },
    }
}

/// The live pod's output, if the pod is still there and is this run's.
async fn live(
    console: &Console,
    session: &Session,
    vc: &str,
    id: &str,
    pod: &str,
    stream: &str,
    limit: Option<usize>,
) -> Result<Shown, String> {
    let inner = &console.inner;
    let p = &session.principal;
    let no_copy = "The pod is gone, so there is no live log either.".to_string();
    let namespace = match inner.api.describe_virtual_cluster(p, vc).await {
        Ok(v) => text(&v, "/containerProvider/info/eksInfo/namespace"),
        Err(e) => return Err(format!("{no_copy} {}", e.message)),
    };
    let pod_path = format!("/api/v1/namespaces/{namespace}/pods/{pod}");
    let object = match inner.kube.get(&inner.keyring, p, &pod_path).await {
        Ok(v) => v,
        Err(e) if e.denied() => {
            return Err(format!(
                "You are not authorized to read pods in {namespace}. {}",
                e.message
            ))
        }
        Err(_) => return Err(no_copy),
    };
    if object["metadata"]["labels"]["emr-containers.amazonaws.com/job.id"] != id {
        return Err(no_copy);
    }
    let container = object["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let path = logs::live_log_path(&namespace, pod, &container, Some(stream), false, limit);
    let (answer, merged) = match inner.kube.text(&inner.keyring, p, &path).await {
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let merged = logs::live_log_path(&namespace, pod, &container, None, false, limit);
            (inner.kube.text(&inner.keyring, p, &merged).await, true)
        }
        other => (other, false),
    };
    let body = answer.map_err(|e| {
        if e.denied() {
            format!(
                "You are not authorized to read pod logs in {namespace}. {}",
                e.message
            )
        } else {
            format!("The live pod's log: {}", e.message)
        }
    })?;
    let truncated = limit.is_some_and(|l| body.len() >= l);
    Ok(Shown {
        text: body,
        truncated,
        source: if merged {
            format!("Live from pod {pod}, container {container} (Kubernetes API): stdout and stderr merged — this cluster serves no single stream. No stored copy yet.")
        } else {
            format!("Live from pod {pod}, container {container} (Kubernetes API, {stream} only). No stored copy yet.")
        },
        error: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_runs_pods_are_read() {
        let id = "0000000eb77k82subwj";
        assert!(may_be_runs_pod(id, "spark-0000000eb77k82subwj-driver"));
        assert!(may_be_runs_pod(id, "0000000eb77k82subwj-s7d4m"));
        assert!(may_be_runs_pod(id, "pythonpi-0c481ea24154f0ba-exec-3"));
        assert!(!may_be_runs_pod(id, "spark-0000000eb77lpr50g11-driver"));
        assert!(!may_be_runs_pod(id, "karpenter-7034517a03-70345"));
        assert!(!may_be_runs_pod(id, "../0000000eb77k82subwj-x"));
    }
}
