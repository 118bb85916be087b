//! The AWS endpoint: one listener for every AWS-shaped service sparkyard serves.
//!
//! Every request is stamped with a request id. S3 requests go to the S3 service, which
//! verifies S3's SigV4 variants itself (streaming `aws-chunked` bodies, trailers); STS
//! `AssumeRoleWithWebIdentity` is served unsigned, as in AWS; everything else is
//! authenticated (SigV4) and dispatched by the credential scope's service: IAM, STS, Logs
//! and EKS to `sparkyard-services`, the rest to emr-containers. The composition itself lives
//! in [`sparkyard_services::router`] so the services crate's tests exercise the same path.

use std::sync::Arc;

use axum::Router;

/// The services behind the endpoint.
pub struct Services {
    pub keyring: Arc<sparkyard_aws::auth::Keyring>,
    pub emr: sparkyard_emr::Emr,
    pub aws: sparkyard_services::Services,
}

pub fn router(services: Services) -> Router {
    sparkyard_services::router(services.aws, services.keyring, sparkyard_emr::router(services.emr))
}
