//! Serving as one of several replicas (`serve --leader-elect`): every replica answers the
//! AWS endpoint, the elected leader does the work. A follower passes each request to the
//! leader unchanged — method, path, headers (so a SigV4 signature, which covers `Host`,
//! still verifies there) and body — and returns the leader's answer, as Vault's standby
//! nodes forward to the active one. Until a leader is known, requests get a 503
//! `ServiceUnavailableException` the AWS SDKs retry.
//!
//! Only the leader opens the emr-containers state and runs the job-run controller: with
//! one writer, the store needs no cross-replica locking, and a new leader starts from
//! what the store has acknowledged.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::leader::Observed;

/// The largest request body a follower passes on (emr-containers bodies are small; S3
/// is not served in this mode).
const MAX_FORWARDED_BODY: usize = 16 * 1024 * 1024;

/// The endpoint of a replica: the leader's own router once it leads, else forwarding.
#[derive(Clone)]
pub struct ReplicaEndpoint {
    election: watch::Receiver<Observed>,
    leader_app: Arc<OnceLock<axum::Router>>,
    http: reqwest::Client,
}

impl ReplicaEndpoint {
    pub fn new(election: watch::Receiver<Observed>) -> Self {
        Self {
            election,
            leader_app: Arc::new(OnceLock::new()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Called once this replica leads and has loaded the state: from then on it answers.
    pub fn serve_as_leader(&self, app: axum::Router) {
        let _ = self.leader_app.set(app);
    }

    /// The router to serve on the AWS endpoint's listener.
    pub fn router(&self) -> axum::Router {
        let this = self.clone();
        axum::Router::new().fallback(move |request: Request| {
            let this = this.clone();
            async move { this.handle(request).await }
        })
    }

    async fn handle(&self, request: Request) -> Response {
        let observed = self.election.borrow().clone();
        if observed.leading {
            if let Some(app) = self.leader_app.get() {
                return match app.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
            }
            return unavailable("this replica was just elected and is loading its state");
        }
        match observed.leader_address() {
            Some(address) => self.forward(address, request).await,
            None => unavailable("no sparkyard replica leads yet; retry shortly"),
        }
    }

    async fn forward(&self, leader: &str, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await else {
            return unavailable("the request body could not be read");
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("http://{leader}{path}");
        let mut forwarded = self.http.request(parts.method, &url).body(body);
        for (name, value) in parts.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
            forwarded = forwarded.header(name, value);
        }
        match forwarded.send().await {
            Ok(answer) => {
                let mut response = Response::builder().status(answer.status());
                for (name, value) in answer.headers().iter().filter(|(n, _)| !hop_by_hop(n)) {
                    response = response.header(name, value);
                }
                let bytes = answer.bytes().await.unwrap_or_default();
                response
                    .header("x-sparkyard-served-by", HeaderValue::from_str(leader).unwrap_or(HeaderValue::from_static("leader")))
                    .body(Body::from(bytes))
                    .unwrap_or_else(|_| unavailable("the leader's answer could not be relayed"))
            }
            Err(e) => {
                tracing::warn!(leader, error = %e, "cannot reach the leader");
                unavailable("the leading replica cannot be reached; retry shortly")
            }
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1); the body is
/// relayed whole, so its framing is the relaying connection's own.
fn hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// The AWS JSON error the SDKs treat as retryable.
fn unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", "ServiceUnavailableException"),
        ],
        serde_json::json!({"message": message}).to_string(),
    )
        .into_response()
}
