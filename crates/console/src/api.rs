//! The AWS API (emr-containers, CloudWatch, CloudWatch Logs, EKS, EC2), called in-process
//! as the signed-in principal.
//!
//! Each call is an HTTP request built here and handed to the router the binary gives the
//! console (`sparkyard_services::principal_router`: the endpoint's services behind its
//! SigV4 layer), with the session's [`Principal`] in the request extensions where the
//! SigV4 layer would have put it. So the console sees exactly what the `aws` CLI would see
//! with the same credentials: the same IAM decisions (`AccessDenied…`), the same
//! validation and the same state changes (CancelJobRun).

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use sparkyard_aws::Principal;
use tower::ServiceExt;

/// Most items a page lists (following `nextToken`).
pub const MAX_ITEMS: usize = 1000;

/// An emr-containers error as the API answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// `AccessDeniedException`, `ResourceNotFoundException`, `ValidationException`, …
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn denied(&self) -> bool {
        self.status == StatusCode::FORBIDDEN
    }
}

/// Filters of the job-runs page, as ListJobRuns takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub states: Vec<String>,
    /// Exact name, as in ListJobRuns.
    pub name: Option<String>,
    /// ISO 8601 date or time; inclusive.
    pub created_after: Option<String>,
}

impl RunFilter {
    /// ListJobRuns' query parameters.
    fn query(&self) -> Vec<(String, String)> {
        let mut query: Vec<(String, String)> = self
            .states
            .iter()
            .map(|s| ("states".to_string(), s.clone()))
            .collect();
        if let Some(n) = &self.name {
            query.push(("name".into(), n.clone()));
        }
        if let Some(t) = &self.created_after {
            query.push(("createdAfter".into(), t.clone()));
        }
        query
    }
}

#[derive(Clone)]
pub struct Api {
    router: axum::Router,
    region: String,
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Api {
    pub fn new(router: axum::Router, region: &str) -> Self {
        Api {
            router,
            region: region.to_string(),
        }
    }

    /// One emr-containers request as `principal`.
    pub async fn call(
        &self,
        principal: &Principal,
        method: Method,
        path_and_query: &str,
    ) -> Result<Value, ApiError> {
        self.request(
            principal,
            "emr-containers",
            method,
            path_and_query,
            &[],
            Vec::new(),
        )
        .await
    }

    /// A JSON-protocol operation (`X-Amz-Target`) of `service` as `principal`:
    /// CloudWatch (`monitoring`, `GraniteServiceVersion20100801.GetMetricData`) and
    /// CloudWatch Logs (`logs`, `Logs_20140328.GetLogEvents`).
    pub async fn json_op(
        &self,
        principal: &Principal,
        service: &str,
        target: &str,
        input: &Value,
    ) -> Result<Value, ApiError> {
        let content_type = if service == "logs" {
            "application/x-amz-json-1.1"
        } else {
            "application/x-amz-json-1.0"
        };
        self.request(
            principal,
            service,
            Method::POST,
            "/",
            &[("x-amz-target", target), ("content-type", content_type)],
            serde_json::to_vec(input).unwrap_or_default(),
        )
        .await
    }

    /// A REST-JSON request to `service` (`eks`: `/clusters/<name>/node-groups`) as
    /// `principal`.
    pub async fn rest(
        &self,
        principal: &Principal,
        service: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let (headers, body): (&[(&str, &str)], Vec<u8>) = match body {
            Some(v) => (
                &[("content-type", "application/json")],
                serde_json::to_vec(v).unwrap_or_default(),
            ),
            None => (&[], Vec::new()),
        };
        self.request(principal, service, method, path_and_query, headers, body)
            .await
    }

    /// One request to the AWS API as `principal`, for `service` (the credential scope's
    /// service a SigV4 request would name), answered as JSON.
    pub async fn request(
        &self,
        principal: &Principal,
        service: &str,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Value, ApiError> {
        let mut caller = principal.clone();
        caller.service = service.into();
        caller.region = self.region.clone();
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .extension(caller);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::from(body))
            .map_err(|e| internal(e.to_string()))?;
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|e| internal(e.to_string()))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str))
            .unwrap_or("The request failed.")
            .to_string();
        let code = code
            .or_else(|| {
                body.get("__type")
                    .and_then(Value::as_str)
                    .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            })
            .unwrap_or_else(|| "InternalServerException".into());
        Err(ApiError {
            status,
            code,
            message,
        })
    }

    /// Follows `nextToken` until the last page (or [`MAX_ITEMS`]).
    async fn list_all(
        &self,
        principal: &Principal,
        path: &str,
        query: &[(String, String)],
        key: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            q.push("maxResults=50".into());
            if let Some(t) = &next {
                q.push(format!("nextToken={}", encode(t)));
            }
            let page = self
                .call(principal, Method::GET, &format!("{path}?{}", q.join("&")))
                .await?;
            if let Some(list) = page.get(key).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            next = page
                .get("nextToken")
                .and_then(Value::as_str)
                .map(str::to_string);
            if next.is_none() || items.len() >= MAX_ITEMS {
                items.truncate(MAX_ITEMS);
                return Ok(items);
            }
        }
    }

    /// ListVirtualClusters (`emr-containers:ListVirtualClusters` on `*`).
    pub async fn list_virtual_clusters(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Value>, ApiError> {
        self.list_all(principal, "/virtualclusters", &[], "virtualClusters")
            .await
    }

    /// DescribeVirtualCluster.
    pub async fn describe_virtual_cluster(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Value, ApiError> {
        let v = self
            .call(
                principal,
                Method::GET,
                &format!("/virtualclusters/{}", encode(id)),
            )
            .await?;
        Ok(v.get("virtualCluster").cloned().unwrap_or(Value::Null))
    }

    /// ListJobRuns (`emr-containers:ListJobRuns` on the virtual cluster's ARN).
    pub async fn list_job_runs(
        &self,
        principal: &Principal,
        vc: &str,
        filter: &RunFilter,
    ) -> Result<Vec<Value>, ApiError> {
        self.list_all(
            principal,
            &format!("/virtualclusters/{}/jobruns", encode(vc)),
            &filter.query(),
            "jobRuns",
        )
        .await
    }

    /// sparkyard's ListJobRunCosts (`emr-containers:ListJobRuns`): the same runs' cost
    /// records, without their pods (docs/cost.md).
    pub async fn list_job_run_costs(
        &self,
        principal: &Principal,
        vc: &str,
        filter: &RunFilter,
    ) -> Result<Vec<Value>, ApiError> {
        self.list_all(
            principal,
            &format!("/virtualclusters/{}/jobruncosts", encode(vc)),
            &filter.query(),
            "jobRunCosts",
        )
        .await
    }

    /// sparkyard's GetJobRunCost (`emr-containers:DescribeJobRun`): the run's cost record.
    pub async fn job_run_cost(
        &self,
        principal: &Principal,
        vc: &str,
        id: &str,
    ) -> Result<Value, ApiError> {
        let v = self
            .call(
                principal,
                Method::GET,
                &format!(
                    "/virtualclusters/{}/jobruns/{}/cost",
                    encode(vc),
                    encode(id)
                ),
            )
            .await?;
        Ok(v.get("jobRunCost").cloned().unwrap_or(Value::Null))
    }

    /// DescribeJobRun.
    pub async fn describe_job_run(
        &self,
        principal: &Principal,
        vc: &str,
        id: &str,
    ) -> Result<Value, ApiError> {
        let v = self
            .call(
                principal,
                Method::GET,
                &format!("/virtualclusters/{}/jobruns/{}", encode(vc), encode(id)),
            )
            .await?;
        Ok(v.get("jobRun").cloned().unwrap_or(Value::Null))
    }

    /// DeleteVirtualCluster (`emr-containers:DeleteVirtualCluster` on its ARN).
    pub async fn delete_virtual_cluster(
        &self,
        principal: &Principal,
        vc: &str,
    ) -> Result<Value, ApiError> {
        self.call(
            principal,
            Method::DELETE,
            &format!("/virtualclusters/{}", encode(vc)),
        )
        .await
    }

    /// CancelJobRun (`emr-containers:CancelJobRun` on the job run's ARN).
    pub async fn cancel_job_run(
        &self,
        principal: &Principal,
        vc: &str,
        id: &str,
    ) -> Result<Value, ApiError> {
        self.call(
            principal,
            Method::DELETE,
            &format!("/virtualclusters/{}/jobruns/{}", encode(vc), encode(id)),
        )
        .await
    }
}

fn internal(message: String) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "InternalServerException".into(),
        message,
    }
}
