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
                    .header(
                        "x-sparkyard-served-by",
                        HeaderValue::from_str(leader).unwrap_or(HeaderValue::from_static("leader")),
                    )
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

/// A replica whose endpoint is up and which leads: what `serve` finishes starting.
pub struct Replica {
    pub endpoint: ReplicaEndpoint,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    election: tokio::task::JoinHandle<()>,
}

/// Serves the endpoint (forwarding to the leader meanwhile), campaigns, and returns once
/// this replica leads. Its caller then opens the state and calls
/// [`ReplicaEndpoint::serve_as_leader`].
pub async fn start(
    config: &crate::config::Config,
    args: &crate::cli::LeaderElectionArgs,
    shutdown: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> anyhow::Result<Replica> {
    use anyhow::Context;
    let client = sparkyard_controller::client::connect(config.controller.kubeconfig.as_deref())
        .await
        .context("--leader-elect needs the cluster the Lease lives in")?;
    let advertise = args
        .advertise_address
        .clone()
        .unwrap_or_else(|| config.listen.to_string());
    let name = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "sparkyard".into());
    let election_config = crate::leader::ElectionConfig {
        namespace: args.leader_elect_resource_namespace.clone(),
        name: args.leader_elect_resource_name.clone(),
        identity: format!("{name}_{advertise}"),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
    };
    let (mut election, election_task) = crate::leader::spawn(client, election_config, shutdown());
    let endpoint = ReplicaEndpoint::new(election.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = endpoint.router();
    let stop = shutdown();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    });
    tracing::info!(listen = %config.listen, %advertise, "serving as a replica; waiting to lead");
    election
        .wait_for(|o| o.leading)
        .await
        .context("the leader election stopped")?;
    Ok(Replica {
        endpoint,
        server,
        election: election_task,
    })
}

impl Replica {
    /// Serves until shutdown; the Lease is released before returning.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await??;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.election).await;
        Ok(())
    }
}
