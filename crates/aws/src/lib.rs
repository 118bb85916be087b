//! Shared AWS plumbing: who is calling (SigV4), and how errors look on the wire.
//!
//! Every AWS-shaped service sparkyard serves (emr-containers now; S3, Logs, IAM, STS, EKS
//! later) sits behind the same authentication layer and renders errors through [`AwsError`].

pub mod auth;
pub mod authorize;
pub mod error;
pub mod keyring;
pub mod principal;
pub mod profile;
pub mod request_id;
pub mod sigv4;

#[cfg(test)]
mod testing;

pub use authorize::Authorize;
pub use error::AwsError;
pub use principal::Principal;
