//! Routing on the raw request path.
//!
//! URI labels arrive percent-encoded (an ARN in `/tags/{resourceArn}` is
//! `arn%3Aaws%3A…%3A%2Fvirtualclusters%2F…`). We match on the raw path, where `%2F` is
//! still one segment, and percent-decode each label only after matching. No axum path
//! routing is used, so nothing decodes the path before us.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;

use sparkyard_aws::{Authorize, AwsError};

use crate::authz;
use crate::handlers::{self, Req};
use crate::records::Submitter;
use crate::shapes;
use crate::validate::{serialization, Shape};
use crate::Emr;

/// Largest request body accepted. The largest modeled members (spark parameters) are
/// 100 KiB; a job with many long arguments stays far below this.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateVirtualCluster,
    DescribeVirtualCluster,
    ListVirtualClusters,
    UpdateVirtualCluster,
    DeleteVirtualCluster,
    StartJobRun,
    DescribeJobRun,
    ListJobRuns,
    CancelJobRun,
    CreateJobTemplate,
    DescribeJobTemplate,
    ListJobTemplates,
    DeleteJobTemplate,
    CreateManagedEndpoint,
    DescribeManagedEndpoint,
    ListManagedEndpoints,
    DeleteManagedEndpoint,
    GetManagedEndpointSessionCredentials,
    CreateSecurityConfiguration,
    DescribeSecurityConfiguration,
    ListSecurityConfigurations,
    DeleteSecurityConfiguration,
    TagResource,
    UntagResource,
    ListTagsForResource,
    /// sparkyard's own: a run's cost record (docs/cost.md). Authorized as DescribeJobRun.
    GetJobRunCost,
    /// sparkyard's own: the cost records of a virtual cluster's runs, paged and filtered as
    /// ListJobRuns. Authorized as ListJobRuns.
    ListJobRunCosts,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateVirtualCluster => "CreateVirtualCluster",
            Op::DescribeVirtualCluster => "DescribeVirtualCluster",
            Op::ListVirtualClusters => "ListVirtualClusters",
            Op::UpdateVirtualCluster => "UpdateVirtualCluster",
            Op::DeleteVirtualCluster => "DeleteVirtualCluster",
            Op::StartJobRun => "StartJobRun",
            Op::DescribeJobRun => "DescribeJobRun",
            Op::ListJobRuns => "ListJobRuns",
            Op::CancelJobRun => "CancelJobRun",
            Op::CreateJobTemplate => "CreateJobTemplate",
            Op::DescribeJobTemplate => "DescribeJobTemplate",
            Op::ListJobTemplates => "ListJobTemplates",
            Op::DeleteJobTemplate => "DeleteJobTemplate",
            Op::CreateManagedEndpoint => "CreateManagedEndpoint",
            Op::DescribeManagedEndpoint => "DescribeManagedEndpoint",
            Op::ListManagedEndpoints => "ListManagedEndpoints",
            Op::DeleteManagedEndpoint => "DeleteManagedEndpoint",
            Op::GetManagedEndpointSessionCredentials => "GetManagedEndpointSessionCredentials",
            Op::CreateSecurityConfiguration => "CreateSecurityConfiguration",
            Op::DescribeSecurityConfiguration => "DescribeSecurityConfiguration",
            Op::ListSecurityConfigurations => "ListSecurityConfigurations",
            Op::DeleteSecurityConfiguration => "DeleteSecurityConfiguration",
            Op::TagResource => "TagResource",
            Op::UntagResource => "UntagResource",
            Op::ListTagsForResource => "ListTagsForResource",
            Op::GetJobRunCost => "GetJobRunCost",
            Op::ListJobRunCosts => "ListJobRunCosts",
        }
    }

    fn has_body(self) -> bool {
        matches!(
            self,
            Op::CreateVirtualCluster
                | Op::UpdateVirtualCluster
                | Op::StartJobRun
                | Op::CreateJobTemplate
                | Op::CreateManagedEndpoint
                | Op::GetManagedEndpointSessionCredentials
                | Op::CreateSecurityConfiguration
                | Op::TagResource
        )
    }
}

/// Matches `(method, raw path)` to an operation and its still-encoded labels.
pub fn route<'p>(method: &Method, raw_path: &'p str) -> Option<(Op, Vec<&'p str>)> {
    let path = raw_path.strip_prefix('/')?;
    let segs: Vec<&str> = path.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let m = method.as_str();
    let op = match (m, segs.as_slice()) {
        ("POST", ["virtualclusters"]) => Op::CreateVirtualCluster,
        ("GET", ["virtualclusters"]) => Op::ListVirtualClusters,
        ("GET", ["virtualclusters", _]) => Op::DescribeVirtualCluster,
        ("PATCH", ["virtualclusters", _]) => Op::UpdateVirtualCluster,
        ("DELETE", ["virtualclusters", _]) => Op::DeleteVirtualCluster,
        ("POST", ["virtualclusters", _, "jobruns"]) => Op::StartJobRun,
        ("GET", ["virtualclusters", _, "jobruns"]) => Op::ListJobRuns,
        ("GET", ["virtualclusters", _, "jobruns", _]) => Op::DescribeJobRun,
        ("DELETE", ["virtualclusters", _, "jobruns", _]) => Op::CancelJobRun,
        ("GET", ["virtualclusters", _, "jobruns", _, "cost"]) => Op::GetJobRunCost,
        ("GET", ["virtualclusters", _, "jobruncosts"]) => Op::ListJobRunCosts,
        ("POST", ["virtualclusters", _, "endpoints"]) => Op::CreateManagedEndpoint,
        ("GET", ["virtualclusters", _, "endpoints"]) => Op::ListManagedEndpoints,
        ("GET", ["virtualclusters", _, "endpoints", _]) => Op::DescribeManagedEndpoint,
        ("DELETE", ["virtualclusters", _, "endpoints", _]) => Op::DeleteManagedEndpoint,
        ("POST", ["virtualclusters", _, "endpoints", _, "credentials"]) => {
            Op::GetManagedEndpointSessionCredentials
        }
        ("POST", ["jobtemplates"]) => Op::CreateJobTemplate,
        ("GET", ["jobtemplates"]) => Op::ListJobTemplates,
        ("GET", ["jobtemplates", _]) => Op::DescribeJobTemplate,
        ("DELETE", ["jobtemplates", _]) => Op::DeleteJobTemplate,
        ("POST", ["securityconfigurations"]) => Op::CreateSecurityConfiguration,
        ("GET", ["securityconfigurations"]) => Op::ListSecurityConfigurations,
        ("GET", ["securityconfigurations", _]) => Op::DescribeSecurityConfiguration,
        ("DELETE", ["securityconfigurations", _]) => Op::DeleteSecurityConfiguration,
        ("POST", ["tags", _]) => Op::TagResource,
        ("DELETE", ["tags", _]) => Op::UntagResource,
        ("GET", ["tags", _]) => Op::ListTagsForResource,
        _ => return None,
    };
    // In every route, labels sit at the odd positions (`/word/{label}/word/{label}/word`).
    let labels = segs.iter().skip(1).step_by(2).copied().collect();
    Some((op, labels))
}

/// Percent-decodes one label (after matching, never before).
pub fn decode_label(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a raw query string into decoded pairs (repeated keys kept, in order).
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// Turns query pairs into a JSON document shaped by `shape` (lists collect repeated keys,
/// integers and booleans are parsed), so the query is validated like a body.
pub fn query_document(pairs: &[(String, String)], shape: &Shape) -> Result<Value, AwsError> {
    let mut doc = Map::new();
    for m in shapes::members(shape) {
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == m.name)
            .map(|(_, v)| v.as_str())
            .collect();
        let Some(last) = values.last() else { continue };
        let v = match m.shape {
            Shape::List { .. } => Value::Array(
                values
                    .iter()
                    .map(|v| Value::String(v.to_string()))
                    .collect(),
            ),
            Shape::Integer { .. } => match last.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    return Err(serialization(format!(
                        "Value '{last}' at '{}' is not a valid integer.",
                        m.name
                    )));
                }
            },
            Shape::Boolean => match *last {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(serialization(format!(
                        "Value '{last}' at '{}' is not a valid boolean.",
                        m.name
                    )))
                }
            },
            _ => Value::String(last.to_string()),
        };
        doc.insert(m.name.to_string(), v);
    }
    Ok(Value::Object(doc))
}

/// The emr-containers API, allowing every authenticated caller.
pub fn router(emr: Emr) -> axum::Router {
    router_with(emr, None)
}

/// The API with each request checked against `authorizer` (IAM policies of role sessions).
pub fn router_with(emr: Emr, authorizer: Option<Arc<dyn Authorize>>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(Api { emr, authorizer })
}

#[derive(Clone)]
struct Api {
    emr: Emr,
    authorizer: Option<Arc<dyn Authorize>>,
}

async fn handle(State(api): State<Api>, request: Request) -> Response {
    match serve(api, request).await {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn unknown_operation(method: &Method, path: &str) -> AwsError {
    AwsError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("No emr-containers operation matches {method} {path}."),
    )
}

async fn serve(api: Api, request: Request) -> Result<Value, AwsError> {
    let Api { emr, authorizer } = api;
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let Some((op, raw_labels)) = route(&parts.method, path) else {
        return Err(unknown_operation(&parts.method, path));
    };
    let labels: Vec<String> = raw_labels.into_iter().map(decode_label).collect();
    if let (Some(authorizer), Some(principal)) = (
        &authorizer,
        parts.extensions.get::<sparkyard_aws::Principal>(),
    ) {
        let resource = authz::resource_arn(&emr.inner.arns, op, &labels);
        authorizer
            .authorize(principal, &authz::action(op), &resource)
            .map_err(|message| {
                AwsError::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
            })?;
    }
    let query = parse_query(parts.uri.query());
    let body = if op.has_body() {
        read_body(body).await?
    } else {
        Value::Object(Map::new())
    };
    let caller = match parts.extensions.get::<sparkyard_aws::Principal>() {
        Some(p) => Submitter {
            arn: p.arn.clone(),
            account_id: p.account_id.clone(),
            access_key_id: Some(p.access_key_id.clone()),
        },
        None => {
            // Unauthenticated only in unit tests (the SigV4 layer always inserts one).
            let account = emr.settings().account_id.clone();
            Submitter {
                arn: format!("arn:aws:iam::{account}:root"),
                account_id: account,
                access_key_id: None,
            }
        }
    };
    let req = Req {
        op,
        labels,
        query,
        body,
        caller,
    };
    handlers::dispatch(&emr, &req).await
}

async fn read_body(body: Body) -> Result<Value, AwsError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        AwsError::validation(format!("The request body is larger than {MAX_BODY} bytes."))
    })?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(serialization("The request body must be a JSON object.")),
        Err(e) => Err(serialization(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_every_operation() {
        let cases = [
            ("POST", "/virtualclusters", Op::CreateVirtualCluster, vec![]),
            ("GET", "/virtualclusters", Op::ListVirtualClusters, vec![]),
            (
                "GET",
                "/virtualclusters/v1",
                Op::DescribeVirtualCluster,
                vec!["v1"],
            ),
            (
                "PATCH",
                "/virtualclusters/v1",
                Op::UpdateVirtualCluster,
                vec!["v1"],
            ),
            (
                "DELETE",
                "/virtualclusters/v1",
                Op::DeleteVirtualCluster,
                vec!["v1"],
            ),
            (
                "POST",
                "/virtualclusters/v1/jobruns",
                Op::StartJobRun,
                vec!["v1"],
            ),
            (
                "GET",
                "/virtualclusters/v1/jobruns",
                Op::ListJobRuns,
                vec!["v1"],
            ),
            (
                "GET",
                "/virtualclusters/v1/jobruns/j1",
                Op::DescribeJobRun,
                vec!["v1", "j1"],
            ),
            (
                "DELETE",
                "/virtualclusters/v1/jobruns/j1",
                Op::CancelJobRun,
                vec!["v1", "j1"],
            ),
            (
                "POST",
                "/virtualclusters/v1/endpoints",
                Op::CreateManagedEndpoint,
                vec!["v1"],
            ),
            (
                "GET",
                "/virtualclusters/v1/endpoints",
                Op::ListManagedEndpoints,
                vec!["v1"],
            ),
            (
                "GET",
                "/virtualclusters/v1/endpoints/e1",
                Op::DescribeManagedEndpoint,
                vec!["v1", "e1"],
            ),
            (
                "DELETE",
                "/virtualclusters/v1/endpoints/e1",
                Op::DeleteManagedEndpoint,
                vec!["v1", "e1"],
            ),
            (
                "POST",
                "/virtualclusters/v1/endpoints/e1/credentials",
                Op::GetManagedEndpointSessionCredentials,
                vec!["v1", "e1"],
            ),
            ("POST", "/jobtemplates", Op::CreateJobTemplate, vec![]),
            ("GET", "/jobtemplates", Op::ListJobTemplates, vec![]),
            (
                "GET",
                "/jobtemplates/t1",
                Op::DescribeJobTemplate,
                vec!["t1"],
            ),
            (
                "DELETE",
                "/jobtemplates/t1",
                Op::DeleteJobTemplate,
                vec!["t1"],
            ),
            (
                "POST",
                "/securityconfigurations",
                Op::CreateSecurityConfiguration,
                vec![],
            ),
            (
                "GET",
                "/securityconfigurations",
                Op::ListSecurityConfigurations,
                vec![],
            ),
            (
                "GET",
                "/securityconfigurations/s1",
                Op::DescribeSecurityConfiguration,
                vec!["s1"],
            ),
            (
                "DELETE",
                "/securityconfigurations/s1",
                Op::DeleteSecurityConfiguration,
                vec!["s1"],
            ),
            ("POST", "/tags/a", Op::TagResource, vec!["a"]),
            ("DELETE", "/tags/a", Op::UntagResource, vec!["a"]),
            ("GET", "/tags/a", Op::ListTagsForResource, vec!["a"]),
            (
                "GET",
                "/virtualclusters/v1/jobruns/j1/cost",
                Op::GetJobRunCost,
                vec!["v1", "j1"],
            ),
            (
                "GET",
                "/virtualclusters/v1/jobruncosts",
                Op::ListJobRunCosts,
                vec!["v1"],
            ),
        ];
        for (m, p, op, labels) in cases {
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(route(&method, p), Some((op, labels)), "{m} {p}");
        }
        // A label literally named like a keyword is still a label.
        assert_eq!(
            route(&Method::GET, "/virtualclusters/jobruns/jobruns/tags"),
            Some((Op::DescribeJobRun, vec!["jobruns", "tags"]))
        );
    }

    #[test]
    fn encoded_slash_does_not_split() {
        let raw = "/tags/arn%3Aaws%3Aemr-containers%3Aus-east-2%3A123456789012%3A%2Fvirtualclusters%2Fahg18jv46xeqp3jbe83pj39m1";
        let (op, labels) = route(&Method::GET, raw).unwrap();
        assert_eq!(op, Op::ListTagsForResource);
        assert_eq!(
            decode_label(labels[0]),
            "arn:aws:emr-containers:us-east-2:123456789012:/virtualclusters/ahg18jv46xeqp3jbe83pj39m1"
        );
    }

    #[test]
    fn unknown_routes() {
        assert!(route(&Method::GET, "/").is_none());
        assert!(route(&Method::PUT, "/virtualclusters").is_none());
        assert!(route(&Method::GET, "/virtualclusters/").is_none());
        assert!(route(&Method::GET, "/virtualclusters//jobruns").is_none());
        assert!(route(&Method::GET, "/nope").is_none());
        assert!(route(&Method::GET, "/virtualclusters/v/jobruns/j/x").is_none());
    }

    #[test]
    fn query_parsing() {
        let q = parse_query(Some("createdAfter=2024-01-01T00%3A00%3A00Z&name=abc&states=RUNNING&states=PENDING&maxResults=7"));
        let doc = query_document(&q, &shapes::LIST_JOB_RUNS).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"createdAfter": "2024-01-01T00:00:00Z", "name": "abc", "states": ["RUNNING", "PENDING"], "maxResults": 7})
        );
        assert!(
            query_document(&parse_query(Some("maxResults=x")), &shapes::LIST_JOB_RUNS).is_err()
        );
        let doc = query_document(
            &parse_query(Some("eksAccessEntryIntegrated=true")),
            &shapes::LIST_VIRTUAL_CLUSTERS,
        )
        .unwrap();
        assert_eq!(doc["eksAccessEntryIntegrated"], true);
    }
}
