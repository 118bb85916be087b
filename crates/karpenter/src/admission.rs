//! Karpenter's admission rules plugged into the API server, as its webhooks (v1alpha5) and
//! CEL rules (v1) are on a real cluster: a refused object is not stored.

use serde_json::Value;
use sparkyard_kube_apiserver::resources::ResourceInfo;
use sparkyard_kube_apiserver::{ApiError, ObjectValidator, Operation};

use crate::validation::{self, Rejection};

/// Checks a Karpenter object by `group` and `plural`; other resources pass.
pub fn check(group: &str, plural: &str, kind: &str, object: &Value) -> Result<(), ApiError> {
    let verdict = match (group, plural) {
        ("karpenter.sh", "provisioners") => validation::provisioner(object),
        ("karpenter.sh", "nodepools") => validation::nodepool(object),
        ("karpenter.k8s.aws", "ec2nodeclasses") => validation::ec2_node_class(object),
        ("karpenter.k8s.aws", "awsnodetemplates") => validation::aws_node_template(object),
        _ => Ok(()),
    };
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    verdict.map_err(|r| match r {
        Rejection::Webhook { webhook, message } => {
            ApiError::webhook_denied(webhook, &message, None)
        }
        Rejection::Invalid(causes) => ApiError::invalid(group, kind, name, &causes),
    })
}

/// The hook the API server calls for every write (see `ApiServer::add_validator`).
pub struct Webhooks;

impl ObjectValidator for Webhooks {
    fn admit(
        &self,
        resource: &ResourceInfo,
        _operation: Operation,
        _old: Option<&Value>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        check(resource.group, resource.plural, resource.kind, object)
    }
}
