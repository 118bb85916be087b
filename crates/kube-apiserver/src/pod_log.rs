//! `GET pods/<name>/log`: a container's output from its CRI log file ([`crate::logs::cri`]),
//! with the `PodLogOptions` query parameters — `container`, `follow`, `previous`,
//! `timestamps`, `tailLines`, `limitBytes`, `sinceSeconds`, `sinceTime`, and `stream`
//! (`All`, `Stdout`, `Stderr`; Kubernetes 1.32's `PodLogsQuerySplitStreams`, always on here).
//!
//! Decision: Kubernetes forbids `tailLines` together with a single `stream` (it cannot
//! count lines of one stream cheaply); sparkyard renders the stream first and serves both.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::handlers::{get as get_object, tokio_stream_from};
use super::{ApiRequest, Query};
use crate::error::ApiError;
use crate::logs::cri::{self, Render, Stream};
use crate::registry::object_name;
use crate::resources;
use crate::ApiServer;

/// `PodLogOptions` as the query gives them, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub stream: Option<Stream>,
}

impl LogOptions {
    /// Parses and validates the query as `ValidatePodLogOptions` does. `Err` carries the
    /// field causes of a 422 Invalid, or a 400 for a value that is not even a number.
    pub fn parse(query: &Query, now: DateTime<Utc>) -> Result<LogOptions, OptionsError> {
        let mut causes = Vec::new();
        let number = |key: &str| -> Result<Option<i64>, OptionsError> {
            match query.get(key) {
                None => Ok(None),
                Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
                    OptionsError::BadRequest(format!(
                        "invalid value {text:?} for query parameter {key}: not an integer"
                    ))
                }),
            }
        };
        let tail_lines = number("tailLines")?;
        if let Some(n) = tail_lines.filter(|n| *n < 0) {
            causes.push((
                "tailLines".to_string(),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
        let limit_bytes = number("limitBytes")?;
        if let Some(n) = limit_bytes.filter(|n| *n < 1) {
            causes.push((
                "limitBytes".to_string(),
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
        let since_seconds = number("sinceSeconds")?;
        if let Some(n) = since_seconds.filter(|n| *n < 1) {
            causes.push((
                "sinceSeconds".to_string(),
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
        let since_time = match query.get("sinceTime").filter(|t| !t.is_empty()) {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        OptionsError::BadRequest(format!(
                            "invalid value {text:?} for query parameter sinceTime: {e}"
                        ))
                    })?,
            ),
        };
        if since_seconds.is_some() && since_time.is_some() {
            causes.push((
                String::new(),
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                    .to_string(),
            ));
        }
        let stream = match query.get("stream") {
            None | Some("All") => None,
            Some("Stdout") => Some(Stream::Stdout),
            Some("Stderr") => Some(Stream::Stderr),
            Some(other) => {
                causes.push((
                    "stream".to_string(),
                    format!(
                        "Unsupported value: {other:?}: supported values: \"All\", \"Stderr\", \"Stdout\""
                    ),
                ));
                None
            }
        };
        if !causes.is_empty() {
            return Err(OptionsError::Invalid(causes));
        }
        Ok(LogOptions {
            container: query.get("container").map(String::from),
            follow: query.flag("follow"),
            previous: query.flag("previous"),
            timestamps: query.flag("timestamps"),
            tail_lines: tail_lines.map(|n| n as usize),
            limit_bytes: limit_bytes.map(|n| n as usize),
            since: since_time.or_else(|| since_seconds.map(|s| now - chrono::Duration::seconds(s))),
            stream,
        })
    }

    fn render(&self) -> Render {
        Render::new(self.stream, self.timestamps, self.since)
    }
}

#[derive(Debug, PartialEq)]
pub enum OptionsError {
    Invalid(Vec<(String, String)>),
    BadRequest(String),
}

/// Picks the container for `pods/<name>/log` the way the apiserver does.
pub fn log_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = object_name(pod).unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().chain(init.iter()).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .find_map(|key| {
            pod.pointer(&format!("/status/{key}"))
                .and_then(Value::as_array)
                .and_then(|s| {
                    s.iter()
                        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
                })
        })
}

fn pod_finished(pod: &Value, container: &str) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    matches!(phase, "Succeeded" | "Failed")
        || container_status(pod, container)
            .is_some_and(|s| s.pointer("/state/terminated").is_some())
}

/// What is served at once: the rendered log, cut to `tailLines` and `limitBytes`.
fn first_part(options: &LogOptions, rendered: Vec<u8>) -> Vec<u8> {
    let mut part = match options.tail_lines {
        Some(n) => crate::logs::tail_lines(&rendered, n).to_vec(),
        None => rendered,
    };
    if let Some(limit) = options.limit_bytes {
        part.truncate(limit);
    }
    part
}

/// `GET pods/<name>/log`.
pub async fn get(
    server: &ApiServer,
    ns: &str,
    name: &str,
    request: &ApiRequest,
) -> Result<Response, ApiError> {
    let options = LogOptions::parse(&request.query, Utc::now()).map_err(|e| match e {
        OptionsError::Invalid(causes) => ApiError::invalid("", "PodLogOptions", name, &causes),
        OptionsError::BadRequest(message) => ApiError::bad_request(message),
    })?;
    let pod = get_object(server, &resources::PODS, ns, name)?;
    let container = log_container(&pod, options.container.as_deref())?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let restarts = container_status(&pod, &container)
        .and_then(|s| s.get("restartCount"))
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    if options.previous && restarts == 0 {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let run = if options.previous {
        restarts - 1
    } else {
        restarts
    };
    let path = crate::logs::pod_log_path(&server.pod_logs_root, ns, name, &uid, &container, run);
    let content = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(_) if pod_finished(&pod, &container) => Vec::new(),
        Err(_) => {
            let waiting = container_status(&pod, &container)
                .and_then(|s| s.pointer("/state/waiting/reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {waiting}"
            )));
        }
    };
    let mut render = options.render();
    let response = Response::builder().header(http::header::CONTENT_TYPE, "text/plain");
    if !options.follow {
        let rendered = cri::render_all(&content, &mut render);
        return Ok(response
            .body(Body::from(first_part(&options, rendered)))
            .unwrap());
    }
    // Follow: what is there, then the lines the container adds, until it has finished (or
    // the pod is gone) and nothing new arrived. Only complete lines are rendered; the
    // offset stays at the start of an incomplete one.
    let mut rendered = Vec::new();
    let mut offset = render.render(&content, &mut rendered) as u64;
    let initial = first_part(&options, rendered);
    let follow = Follow {
        registry: server.registry.clone(),
        ns: ns.to_string(),
        name: name.to_string(),
        uid,
        container,
        path,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        if !initial.is_empty() && tx.send(Ok(Bytes::from(initial))).await.is_err() {
            return;
        }
        loop {
            let done = follow.finished();
            let path = follow.path.clone();
            let added = tokio::task::spawn_blocking(move || cri::read_from(&path, offset))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let mut out = Vec::new();
            let used = render.render(&added, &mut out);
            offset += used as u64;
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            if done && used == 0 {
                // A torn last record (its writer was killed) is all that can be left.
                let rest = cri::render_all(&added, &mut render);
                if !rest.is_empty() {
                    let _ = tx.send(Ok(Bytes::from(rest))).await;
                }
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(response
        .body(Body::from_stream(tokio_stream_from(rx)))
        .unwrap())
}

/// The container a follow request watches.
struct Follow {
    registry: std::sync::Arc<crate::registry::Registry>,
    ns: String,
    name: String,
    uid: String,
    container: String,
    path: PathBuf,
}

impl Follow {
    /// The container has exited, or its pod is gone or replaced.
    fn finished(&self) -> bool {
        match self
            .registry
            .get(resources::PODS.resource(), &self.ns, &self.name)
        {
            None => true,
            Some(p) => {
                p.pointer("/metadata/uid").and_then(Value::as_str) != Some(self.uid.as_str())
                    || pod_finished(&p, &self.container)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn log_container_choice() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(log_container(&one, None).unwrap(), "a");
        let two = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            log_container(&two, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(log_container(&two, Some("b")).unwrap(), "b");
        assert_eq!(
            log_container(&two, Some("c")).unwrap_err().message,
            "container c is not valid for pod p"
        );
    }

    fn options(query: &str) -> Result<LogOptions, OptionsError> {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        LogOptions::parse(&Query::parse(Some(query)), now)
    }

    #[test]
    fn options_are_parsed_as_pod_log_options() {
        let o = options("container=c&follow=true&timestamps=true&tailLines=5&limitBytes=10&sinceSeconds=60&stream=Stderr").unwrap();
        assert_eq!(o.container.as_deref(), Some("c"));
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(5), Some(10)));
        assert_eq!(o.since.unwrap().to_rfc3339(), "2026-11-23T09:59:00+00:00");
        assert_eq!(o.stream, Some(Stream::Stderr));
        assert_eq!(options("stream=All").unwrap().stream, None);
        let o = options("sinceTime=2026-11-23T08:00:00Z").unwrap();
        assert_eq!(o.since.unwrap().to_rfc3339(), "2026-11-23T08:00:00+00:00");
    }

    #[test]
    fn bad_options_are_refused_with_the_apiservers_causes() {
        let Err(OptionsError::Invalid(causes)) = options("tailLines=-1&limitBytes=0&stream=Both")
        else {
            panic!("expected Invalid");
        };
        assert_eq!(
            causes,
            vec![
                (
                    "tailLines".to_string(),
                    "Invalid value: -1: must be greater than or equal to 0".to_string()
                ),
                (
                    "limitBytes".to_string(),
                    "Invalid value: 0: must be greater than 0".to_string()
                ),
                (
                    "stream".to_string(),
                    "Unsupported value: \"Both\": supported values: \"All\", \"Stderr\", \"Stdout\""
                        .to_string()
                ),
            ]
        );
        assert!(matches!(
            options("sinceSeconds=5&sinceTime=2026-11-23T08:00:00Z"),
            Err(OptionsError::Invalid(_))
        ));
        assert!(matches!(
            options("tailLines=ten"),
            Err(OptionsError::BadRequest(_))
        ));
    }

    #[test]
    fn tail_and_limit_cut_the_rendered_output() {
        let o = options("tailLines=2&limitBytes=3").unwrap();
        assert_eq!(first_part(&o, b"a\nbb\ncc\n".to_vec()), b"bb\n".to_vec());
    }
}
