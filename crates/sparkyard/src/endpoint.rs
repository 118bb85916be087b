//! The AWS endpoint: one listener for every AWS-shaped service sparkyard serves.
//!
//! Every request is stamped with a request id and authenticated (SigV4) before it reaches a
//! service; the service is chosen from the request's SigV4 credential scope.

use std::sync::Arc;

use axum::Router;

/// The services behind the endpoint.
pub struct Services {
    pub keyring: Arc<sparkyard_aws::auth::Keyring>,
    pub emr: sparkyard_emr::Emr,
}

pub fn router(services: Services) -> Router {
    sparkyard_emr::router(services.emr)
        .layer(axum::middleware::from_fn_with_state(
            services.keyring,
            sparkyard_aws::auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(sparkyard_aws::request_id::stamp))
}
