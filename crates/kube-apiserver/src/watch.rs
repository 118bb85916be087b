//! Watches: HTTP chunked streams (one JSON event per line) and WebSockets (one event per
//! text message; fabric8 tries these first), with server-side namespace and selector
//! filtering, resourceVersion resume, bookmarks, `sendInitialEvents` and timeouts.

use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::handlers::{selectors, tokio_stream_from};
use super::selectors::Selectors;
use super::{error_response, tables, wants_table, ApiRequest};
use crate::error::ApiError;
use crate::registry::EventType;
use crate::resources::ResourceInfo;
use crate::ApiServer;

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    /// `None`: start from the current state (synthetic ADDED for every match), as for an
    /// absent or `0` resourceVersion. `Some(n)`: events after `n`.
    pub since: Option<u64>,
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial ADDED events with a marked BOOKMARK.
    pub initial_events_bookmark: bool,
    pub timeout: Duration,
    /// `includeObject` when events carry one-row Tables.
    pub table: Option<String>,
    pub bookmark_interval: Duration,
}

impl WatchSpec {
    pub fn from_request(request: &ApiRequest) -> Result<Self, ApiError> {
        let info = request.path.info;
        let query = &request.query;
        let since =
            match query.get("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv}"))
                })?),
            };
        let send_initial = query.flag("sendInitialEvents");
        let timeout = match query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
        {
            Some(t) if t > 0 => Duration::from_secs(t),
            // The apiserver's default: a random 30–60 minutes, so reconnects spread out.
            _ => Duration::from_secs(1800 + rand_below(1800)),
        };
        Ok(Self {
            info,
            namespace: request.path.namespace.clone(),
            selectors: selectors(info, request)?,
            since: if send_initial { None } else { since },
            bookmarks: query.flag("allowWatchBookmarks"),
            initial_events_bookmark: send_initial,
            timeout,
            table: wants_table(request.accept())
                .then(|| query.get("includeObject").unwrap_or("Metadata").to_string()),
            bookmark_interval: Duration::from_secs(60),
        })
    }
}

fn rand_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b) % n.max(1)
}

/// How a registry event shows to a filtered watcher: `None` when it is not seen at all.
pub fn filtered_type(
    event_type: EventType,
    now_matches: bool,
    before_matches: Option<bool>,
) -> Option<&'static str> {
    match event_type {
        EventType::Added => now_matches.then_some("ADDED"),
        EventType::Deleted => now_matches.then_some("DELETED"),
        EventType::Modified => match (before_matches.unwrap_or(now_matches), now_matches) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

/// One watch event as a line of JSON (`{"type":…,"object":…}` and `\n`), serialised straight from the
/// stored object: a busy watcher renders every change of its resource, and a copy of each
/// object per event was the largest cost of a watch.
fn render(spec: &WatchSpec, event_type: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct WatchEvent<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        object: &'a Value,
    }
    let encode = |object: &Value| {
        let mut line = serde_json::to_vec(&WatchEvent { event_type, object }).unwrap_or_default();
        line.push(b'\n');
        line
    };
    let presented;
    let object = if crate::crd::served(spec.info).is_some() {
        let mut copy = object.clone();
        crate::crd::present(spec.info, &mut copy);
        presented = copy;
        &presented
    } else {
        object
    };
    Bytes::from(match &spec.table {
        Some(include) => encode(&tables::table(
            spec.info,
            std::slice::from_ref(object),
            include,
            chrono::Utc::now(),
        )),
        None => encode(object),
    })
}

fn bookmark(spec: &WatchSpec, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let event = json!({"type": "BOOKMARK", "object": {"kind": spec.info.kind, "apiVersion": spec.info.api_version(), "metadata": metadata}});
    let mut line = serde_json::to_vec(&event).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Starts a watch; events arrive on the returned channel until the watch ends (timeout,
/// receiver dropped, or the watcher fell too far behind — clients then resume).
pub fn start(server: &ApiServer, spec: WatchSpec) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let registry = server.registry.clone();
    let resource = spec.info.resource();
    let ns = spec.namespace.clone();
    let list_current = || registry.list(resource, ns.as_deref());
    let (initial, stream, start_rv) = match spec.since {
        Some(n) => match registry.watch(resource, Some(n)) {
            Ok(stream) => (Vec::new(), stream, n),
            // Older than the kept history: replay the current state rather than 410, which
            // Spark's executor watcher never recovers from.
            Err(_) => {
                let (items, rv) = list_current();
                (items, registry.watch(resource, Some(rv))?, rv)
            }
        },
        None => {
            let (items, rv) = list_current();
            (items, registry.watch(resource, Some(rv))?, rv)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        let mut last_rv = start_rv;
        for item in initial
            .iter()
            .filter(|o| spec.selectors.matches(spec.info, o))
        {
            if tx.send(render(&spec, "ADDED", item)).await.is_err() {
                return;
            }
        }
        if spec.initial_events_bookmark && tx.send(bookmark(&spec, last_rv, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(spec.bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                event = stream.next() => {
                    let Some(event) = event else { return };
                    last_rv = event.resource_version;
                    if ns.as_deref().is_some_and(|n| n != event.namespace) {
                        continue;
                    }
                    let now = spec.selectors.matches(spec.info, &event.object);
                    let before = event.previous.as_ref().map(|p| spec.selectors.matches(spec.info, p));
                    if let Some(kind) = filtered_type(event.event_type, now, before) {
                        if tx.send(render(&spec, kind, &event.object)).await.is_err() {
                            return;
                        }
                    }
                }
                _ = ticker.tick(), if spec.bookmarks => {
                    if tx.send(bookmark(&spec, last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(rx)
}

/// `GET …?watch=true` over HTTP: chunked, one event per line.
pub fn http(server: &ApiServer, request: &ApiRequest) -> Result<Response, ApiError> {
    let spec = WatchSpec::from_request(request)?;
    let content_type = if spec.table.is_some() {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    let rx = start(server, spec)?;
    let lines = tokio_stream_from(rx).map(Ok::<Bytes, std::io::Error>);
    Ok(Response::builder()
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(lines))
        .unwrap())
}

/// A rendered event as a WebSocket text message: the line without its newline.
fn text_message(mut line: Bytes) -> axum::extract::ws::Utf8Bytes {
    line.truncate(line.len().saturating_sub(1));
    String::from_utf8_lossy(&line).into_owned().into()
}

/// The same watch over a WebSocket: one event per text message.
pub fn websocket(server: ApiServer, request: ApiRequest, upgrade: WebSocketUpgrade) -> Response {
    let spec = match WatchSpec::from_request(&request) {
        Ok(spec) => spec,
        Err(err) => return error_response(&err),
    };
    let mut rx = match start(&server, spec) {
        Ok(rx) => rx,
        Err(err) => return error_response(&err),
    };
    upgrade.on_upgrade(move |mut socket| async move {
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => {
                        if socket.send(Message::Text(text_message(event))).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                },
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_transitions() {
        assert_eq!(
            filtered_type(EventType::Modified, true, Some(true)),
            Some("MODIFIED")
        );
        assert_eq!(
            filtered_type(EventType::Modified, true, Some(false)),
            Some("ADDED")
        );
        assert_eq!(
            filtered_type(EventType::Modified, false, Some(true)),
            Some("DELETED")
        );
        assert_eq!(filtered_type(EventType::Modified, false, Some(false)), None);
        assert_eq!(filtered_type(EventType::Added, false, None), None);
        assert_eq!(
            filtered_type(EventType::Deleted, true, None),
            Some("DELETED")
        );
    }
}
