//! SigV4 authentication of incoming requests. (Skeleton: the aws-auth helper fills this in.)

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// An access key pair sparkyard accepts.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The access keys sparkyard accepts, persisted in the data directory.
pub struct Keyring {
    bootstrap: AccessKey,
}

impl Keyring {
    pub fn load_or_bootstrap(_data_dir: &Path, _account_id: &str) -> std::io::Result<Self> {
        unimplemented!("skeleton")
    }

    /// The administrator key created on first start.
    pub fn bootstrap(&self) -> &AccessKey {
        &self.bootstrap
    }
}

/// axum middleware: verify SigV4, put the [`crate::Principal`] in the request extensions.
pub async fn authenticate(State(_keyring): State<Arc<Keyring>>, request: Request, next: Next) -> Response {
    next.run(request).await
}
