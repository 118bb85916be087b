//! The node proxy, `/api/v1/nodes/<node>/proxy/<path>`: how `kubectl get --raw` and
//! Prometheus' standard `kubernetes-nodes` scrape configuration reach a kubelet's
//! endpoints through the API server (`/metrics/resource`, `/metrics/cadvisor`,
//! `/stats/summary`…). kube-apiserver dials the kubelet's port; here the kubelet is in
//! process, so the request goes to the registered [`MetricsSource`]
//! ([`crate::ApiServer::set_metrics_source`]).
//!
//! RBAC as upstream: verb from the method (`get` for GET), resource `nodes`, subresource
//! `proxy`, the node's name. The node name may carry a scheme and port
//! (`https:ip-10-0-0-1:10250`), as kube-apiserver accepts; both are ignored.
//!
//! [`MetricsSource`]: crate::metrics_api::MetricsSource

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::{error_response, resources, ApiServer};

pub(crate) fn serve(
    server: &ApiServer,
    method: &Method,
    node: &str,
    path: &str,
    query: &str,
    user: &UserInfo,
) -> Response {
    match reply(server, method, node, path, query, user) {
        Ok(response) => response,
        Err(err) => error_response(&err),
    }
}

/// `https:name:10250` → `name`.
fn node_name(raw: &str) -> &str {
    let raw = raw
        .strip_prefix("https:")
        .or_else(|| raw.strip_prefix("http:"))
        .unwrap_or(raw);
    match raw.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => raw,
    }
}

fn reply(
    server: &ApiServer,
    method: &Method,
    raw_node: &str,
    path: &str,
    query: &str,
    user: &UserInfo,
) -> Result<Response, ApiError> {
    let node = node_name(raw_node);
    let verb = match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    let attributes = crate::auth::rbac::Attributes {
        verb: verb.into(),
        api_group: String::new(),
        resource: "nodes".into(),
        subresource: "proxy".into(),
        name: node.into(),
        namespace: String::new(),
        path: String::new(),
    };
    crate::auth::rbac::authorize(&server.registry, user, &attributes)?;
    if server
        .registry
        .get(resources::NODES.resource(), "", node)
        .is_none()
    {
        return Err(ApiError::not_found("", "nodes", node));
    }
    if verb != "get" {
        return Err(ApiError::method_not_allowed(format!(
            "the kubelet of node {node:?} serves only GET here"
        )));
    }
    let source = server
        .metrics_source()
        .ok_or_else(crate::metrics_api::unavailable)?;
    let reply = source
        .kubelet_get(node, path.trim_start_matches('/'), query)
        .ok_or_else(|| ApiError {
            code: 503,
            reason: "ServiceUnavailable",
            message: format!("error trying to reach service: no kubelet serves node {node:?}"),
            details: None,
        })?;
    Ok(Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK))
        .header(http::header::CONTENT_TYPE, reply.content_type)
        .body(if *method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(reply.body)
        })
        .unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_lose_scheme_and_port() {
        assert_eq!(node_name("a"), "a");
        assert_eq!(node_name("a:10250"), "a");
        assert_eq!(
            node_name("https:ip-10-0-0-1.ec2.internal:10250"),
            "ip-10-0-0-1.ec2.internal"
        );
    }
}
