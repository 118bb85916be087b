//! The emr-containers API, called in-process as the signed-in principal.
//!
//! Each call is an HTTP request built here and handed to the emr-containers router the
//! binary gives the console, with the session's [`Principal`] in the request extensions
//! where the SigV4 layer would have put it. So the console sees exactly what the `aws`
//! CLI would see with the same credentials: the same IAM decisions (`AccessDenied…`),
//! the same validation and the same state changes (CancelJobRun).

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

    /// One request to the API as `principal`.
    pub async fn call(
        &self,
        principal: &Principal,
        method: Method,
        path_and_query: &str,
    ) -> Result<Value, ApiError> {
        let mut caller = principal.clone();
        caller.service = "emr-containers".into();
        caller.region = self.region.clone();
        let request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .extension(caller)
            .body(Body::empty())
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
                    .map(str::to_string)
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
        let mut query: Vec<(String, String)> = filter
            .states
            .iter()
            .map(|s| ("states".to_string(), s.clone()))
            .collect();
        if let Some(n) = &filter.name {
            query.push(("name".into(), n.clone()));
        }
        if let Some(t) = &filter.created_after {
            query.push(("createdAfter".into(), t.clone()));
        }
        self.list_all(
            principal,
            &format!("/virtualclusters/{}/jobruns", encode(vc)),
            &query,
            "jobRuns",
        )
        .await
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
