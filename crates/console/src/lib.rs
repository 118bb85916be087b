//! sparkyard's web console: server-rendered pages over the emr-containers API, for people.
//!
//! **Owns:** the console's HTTP surface (pages, the small JSON API under `/api/`, the
//! stylesheet), its sign-in (one-time links for the administrator, access-key sign-in),
//! its server-side session table, CSRF tokens and security headers, and the templates
//! (compiled into the binary by askama).
//!
//! **Must not touch:** emr-containers state or IAM decisions. Every read and every change
//! goes through the emr-containers API router the binary hands over ([`Console::new`]),
//! called in-process with the signed-in [`Principal`] in the request extensions — the
//! same routing, validation, authorization (`sparkyard_services::Authorizer`) and cancel
//! path as a SigV4 request from the `aws` CLI. The keyring is only read.
//!
//! **Entry points:** [`Console::new`] and [`Console::router`] (the binary serves it on
//! `[console] listen`, see `crates/sparkyard/src/console.rs`); [`links::issue`], which
//! `sparkyard console` calls to mint a one-time sign-in link; [`ConsoleConfig`], the
//! `[console]` table. Design and security model: `docs/console.md`.

pub mod api;
pub mod links;
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
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub keyring: Arc<Keyring>,
    pub api: api::Api,
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
    /// `emr_api` is the emr-containers router *with* the IAM authorizer
    /// (`sparkyard_emr::router_with(emr, Some(authorizer))`); the console calls it as
    /// the signed-in principal and never reads EMR state any other way.
    pub fn new(
        settings: Settings,
        keyring: Arc<Keyring>,
        emr_api: axum::Router,
    ) -> std::io::Result<Console> {
        links::prepare_dir(&settings.data_dir)?;
        let api = api::Api::new(emr_api, &settings.region);
        let form_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &sessions::random_bytes());
        Ok(Console {
            inner: Arc::new(Inner {
                settings,
                keyring,
                api,
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
