//! sparkyard's web console: server-rendered pages over the emr-containers API, for people.
//!
//! **Owns:** the console's HTTP surface (pages, the small JSON API under `/api/`, the
//! stylesheet), its sign-in (one-time links for the administrator, access-key sign-in),
//! its server-side session table, CSRF tokens and security headers, and the templates
//! (compiled into the binary by askama).
//!
//! **Must not touch:** emr-containers, CloudWatch, EKS or cluster state, IAM or RBAC
//! decisions. Every AWS read and change goes through the AWS router the binary hands over
//! ([`Console::new`]), called in-process with the signed-in [`Principal`] in the request
//! extensions — the same routing, validation, authorization
//! (`sparkyard_services::Authorizer`) and cancel path as a SigV4 request from the `aws`
//! CLI. Every Kubernetes read goes to the API server with the principal's own EKS token
//! ([`kube`]), so RBAC and the `aws-auth` mapping decide what it sees. The keyring is
//! only read.
//!
//! **Entry points:** [`Console::new`] and [`Console::router`] (the binary serves it on
//! `[console] listen`, see `crates/sparkyard/src/console.rs`); [`links::issue`], which
//! `sparkyard console` calls to mint a one-time sign-in link; [`ConsoleConfig`], the
//! `[console]` table. Design and security model: `docs/console.md`.

pub mod api;
pub mod charts;
mod eks;
mod insights;
mod job_run;
pub mod kube;
pub mod links;
mod live;
mod pages;
pub mod sessions;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use sparkyard_aws::keyring::Keyring;
pub use sparkyard_aws::Principal;

/// `[console]`: the web console's listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConsoleConfig {
    /// Serve the console (with `sparkyard serve`, not `--cluster-only`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the console listens. Loopback by default: the console signs the
    /// administrator in. A taken port falls back to a free one on the same IP;
    /// `<data-dir>/console.addr` names the address really bound.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How long a console session lasts (never longer than the temporary credentials
    /// it was signed in with).
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
}

fn yes() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:4752".parse().expect("valid default address")
}

fn default_session_hours() -> u32 {
    12
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            listen: default_listen(),
            session_hours: default_session_hours(),
        }
    }
}

/// What the console needs from the server it runs in.
pub struct Settings {
    /// The server's data directory: one-time sign-in links live in
    /// `<data-dir>/console/signin/`.
    pub data_dir: PathBuf,
    /// The region the console's principals act in (the server's).
    pub region: String,
    pub config: ConsoleConfig,
    /// The embedded cluster's API server (`None` with `serve --no-cluster`).
    pub kube: Option<kube::KubeAccess>,
    /// The EKS cluster's name (`[services] cluster-name`), for the EKS and Container
    /// Insights pages.
    pub cluster_name: String,
    /// The Spark History Server's base URL (`http://127.0.0.1:18080`, `[history]`), or
    /// `None` when the persistent app UI is off: the job-run page links finished runs to
    /// it and reads Spark's executor list from its REST API.
    pub history_url: Option<String>,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub keyring: Arc<Keyring>,
    pub api: api::Api,
    pub kube: kube::Kube,
    pub sessions: sessions::Sessions,
    /// Keys the sign-in form's anti-forgery token (HMAC of the pre-session cookie).
    pub form_key: ring::hmac::Key,
}

/// The console. Cheap to clone.
#[derive(Clone)]
pub struct Console {
    pub(crate) inner: Arc<Inner>,
}

impl Console {
    /// `aws_api` is the AWS endpoint's services behind its SigV4 layer
    /// (`sparkyard_services::principal_router`, with emr-containers under the IAM
    /// authorizer); the console calls it as the signed-in principal and never reads EMR,
    /// CloudWatch or EKS state any other way. Kubernetes objects it reads through
    /// [`Settings::kube`] with the principal's EKS token.
    pub fn new(
        settings: Settings,
        keyring: Arc<Keyring>,
        aws_api: axum::Router,
    ) -> std::io::Result<Console> {
        links::prepare_dir(&settings.data_dir)?;
        let api = api::Api::new(aws_api, &settings.region);
        let kube = kube::Kube::new(settings.kube.clone(), &settings.region);
        let form_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &sessions::random_bytes());
        Ok(Console {
            inner: Arc::new(Inner {
                settings,
                keyring,
                api,
                kube,
                sessions: sessions::Sessions::default(),
                form_key,
            }),
        })
    }

    /// Every page and the JSON API, with the console's security headers.
    pub fn router(&self) -> axum::Router {
        pages::router(self.clone())
    }
}
