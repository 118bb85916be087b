//! In-process admission hooks: what a validating (or mutating) admission webhook is to
//! kube-apiserver, for components linked into the binary (Karpenter's webhooks).
//!
//! A hook registered with [`crate::ApiServer::add_validator`] sees every create and
//! update of the main resource (not of `status`) — over HTTP and through the
//! [`crate::Client`] alike — after the built-in admission and, for custom resources, after
//! schema pruning, defaulting and validation; the object is in the version the request
//! used. It may change the object (defaulting) or refuse the write, typically with
//! [`ApiError::webhook_denied`] (`admission webhook "<name>" denied the request: …`).

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// The operation being admitted (an admission review's `operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// An in-process admission hook.
pub trait ObjectValidator: Send + Sync {
    /// Admits `object` (of `resource`, in the request's version), `old` being the stored
    /// object on update. Return an error to refuse the write; changes to `object` are kept.
    fn admit(
        &self,
        resource: &ResourceInfo,
        operation: Operation,
        old: Option<&Value>,
        object: &mut Value,
    ) -> Result<(), ApiError>;
}
