//! The AWS services the seed's scripts lean on besides emr-containers, served by sparkyard
//! on the same endpoint with the same SigV4 keys: S3, CloudWatch Logs, CloudWatch metrics and
//! alarms, IAM, STS, EKS and EC2 (instances),
//! plus the policy evaluation ([`authz`]) every service — emr-containers included — calls.
//!
//! [`router`] composes the endpoint: S3 goes to `s3s` (which verifies S3's SigV4 variants
//! itself), STS `AssumeRoleWithWebIdentity` is served unsigned as in AWS, and everything
//! else passes the generic SigV4 middleware and is dispatched by the credential scope's
//! service.

pub mod authz;
pub mod cloudwatch;
mod db;
pub mod ec2;
pub mod eks;
pub mod iam;
pub mod logs;
pub mod s3;
pub mod sts;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use sparkyard_aws::keyring::Keyring;
use sparkyard_aws::{AwsError, Principal};
use tower::ServiceExt;

pub use authz::{Authorizer, Denied};
pub use eks::pod_identity;
pub use sts::{WebIdentity, WebIdentityVerifier};

/// `[services]` in sparkyard's configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServicesConfig {
    /// The embedded cluster's name as EKS reports it.
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// The Kubernetes version EKS `DescribeCluster` reports.
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// OIDC issuer reported when no token verifier is wired (the cluster is not running).
    /// When the cluster runs, its service-account issuer is reported instead.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    /// The cluster's tags (an eksctl ClusterConfig's `metadata.tags`); none set: the
    /// seed's `karpenter.sh/discovery: <cluster-name>`. Not a TOML key.
    #[serde(skip)]
    pub cluster_tags: Option<std::collections::BTreeMap<String, String>>,
    /// How often CloudWatch alarms are evaluated (`60s`, `5s`, `500ms`, `1m`).
    #[serde(default = "default_alarm_evaluation_interval")]
    pub alarm_evaluation_interval: String,
}

pub const DEFAULT_CLUSTER_NAME: &str = "eks-emr-cluster";

fn default_cluster_name() -> String {
    DEFAULT_CLUSTER_NAME.into()
}

fn default_kubernetes_version() -> String {
    "1.22".into()
}

fn default_alarm_evaluation_interval() -> String {
    "60s".into()
}

/// `500ms`, `5s`, `1m`, `1h`, or bare seconds.
fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0 && secs.is_finite()).then(|| std::time::Duration::from_secs_f64(secs))
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            cluster_name: default_cluster_name(),
            kubernetes_version: default_kubernetes_version(),
            oidc_issuer: None,
            cluster_tags: None,
            alarm_evaluation_interval: default_alarm_evaluation_interval(),
        }
    }
}

/// What the services need to start.
pub struct Settings {
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub config: ServicesConfig,
    /// The embedded cluster's API server URL and CA certificate (PEM), when it runs.
    pub cluster_endpoint: Option<String>,
    pub cluster_ca_pem: Option<String>,
    /// What provides the machines of EKS managed node groups (the embedded EC2); `None`
    /// makes node groups records only (see [`eks::nodegroups`]).
    pub nodegroup_backend: Option<Arc<dyn eks::nodegroups::NodeGroupBackend>>,
    /// The instances `ec2 DescribeInstances` lists (the embedded EC2); `None`: none.
    pub ec2_backend: Option<Arc<dyn ec2::Ec2Backend>>,
}

/// The services behind the endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    iam: Arc<iam::Iam>,
    logs: logs::Logs,
    cloudwatch: Arc<cloudwatch::CloudWatch>,
    sts: sts::Sts,
    eks: eks::Eks,
    ec2: ec2::Ec2,
    authorizer: Authorizer,
    s3: s3s::service::S3Service,
}

/// Largest signed request body the services read: what the SigV4 middleware buffers (a full
/// PutLogEvents batch is 1 MiB of messages plus JSON framing).
const MAX_BODY: usize = sparkyard_aws::auth::MAX_BUFFERED_BODY;
/// Largest unsigned body looked at for STS `AssumeRoleWithWebIdentity` (a token is a few KiB).
const MAX_UNSIGNED_BODY: usize = 64 * 1024;

impl Services {
    /// Opens the services' state under `settings.data_dir` (`services.db`, `s3/`).
    pub fn open(
        settings: Settings,
        keyring: Arc<Keyring>,
        verifier: Option<Arc<dyn WebIdentityVerifier>>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let schema = format!(
            "{}{}{}{}",
            iam::store::SCHEMA,
            logs::store::SCHEMA,
            eks::nodegroups::store::SCHEMA,
            cloudwatch::store::SCHEMA
        ) + eks::access_entries::SCHEMA;
        let alarm_interval = parse_interval(&settings.config.alarm_evaluation_interval)
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "[services] alarm-evaluation-interval {:?} is not a duration such as 60s",
                    settings.config.alarm_evaluation_interval
                ))
            })?;
        let db = db::Db::open(&settings.data_dir.join("services.db"), &schema)
            .map_err(std::io::Error::other)?;
        let iam = Arc::new(iam::Iam::open(db.clone(), &settings.account_id));
        let authorizer = Authorizer::new(iam.clone());
        let oidc_issuer = verifier
            .as_ref()
            .map(|v| v.issuer())
            .or_else(|| settings.config.oidc_issuer.clone())
            .unwrap_or_else(|| {
                format!(
                    "https://oidc.eks.{}.amazonaws.com/id/SPARKYARD",
                    settings.region
                )
            });
        let eks = eks::Eks::new(
            &settings.region,
            &settings.account_id,
            eks::ClusterInfo {
                name: settings.config.cluster_name.clone(),
                version: settings.config.kubernetes_version.clone(),
                endpoint: settings.cluster_endpoint.clone(),
                // EKS reports the CA as base64 of its PEM.
                certificate_authority: settings
                    .cluster_ca_pem
                    .as_deref()
                    .map(|pem| s3::blob::b64(pem.as_bytes())),
                oidc_issuer,
                created_at: chrono::Utc::now(),
                tags: settings.config.cluster_tags.clone().unwrap_or_else(|| {
                    [(
                        "karpenter.sh/discovery".to_string(),
                        settings.config.cluster_name.clone(),
                    )]
                    .into()
                }),
            },
            eks::nodegroups::NodeGroups::new(
                db.clone(),
                settings.nodegroup_backend.clone(),
                &settings.region,
                &settings.account_id,
                &settings.config.cluster_name,
                &settings.config.kubernetes_version,
            ),
            eks::access_entries::AccessEntries::new(
                db.clone(),
                &settings.region,
                &settings.account_id,
                &settings.config.cluster_name,
            ),
        );
        eks.nodegroups().resume();
        let s3_store = s3::S3Store::open(&settings.data_dir)?;
        let s3 = s3::service(
            s3_store,
            keyring.clone(),
            authorizer.clone(),
            &settings.region,
        );
        let cloudwatch = Arc::new(cloudwatch::CloudWatch::open(
            db.clone(),
            &settings.region,
            &settings.account_id,
        ));
        cloudwatch.start_background(alarm_interval);
        Ok(Self {
            inner: Arc::new(Inner {
                logs: logs::Logs::open(db, &settings.region, &settings.account_id),
                cloudwatch,
                sts: sts::Sts::new(keyring, iam.clone(), verifier, &settings.account_id),
                iam,
                eks,
                ec2: ec2::Ec2::new(
                    settings.ec2_backend.clone(),
                    &settings.region,
                    &settings.account_id,
                ),
                authorizer,
                s3,
            }),
        })
    }

    /// EKS managed node groups (the start-up path of an eksctl ClusterConfig).
    pub fn nodegroups(&self) -> &eks::nodegroups::NodeGroups {
        self.inner.eks.nodegroups()
    }

    /// STS's answer to a presigned `GetCallerIdentity` URL (an `aws eks get-token` token):
    /// the signature checked against the keyring, the caller returned. The embedded API
    /// server's IAM authentication reaches it through the binary.
    pub async fn verify_presigned_caller_identity(
        &self,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<sts::CallerIdentity, String> {
        self.inner
            .sts
            .verify_presigned_caller_identity(uri, headers)
            .await
    }

    /// The EKS access entry of a principal (canonical ARN), for the API server's mapping.
    pub async fn access_entry(
        &self,
        principal_arn: &str,
    ) -> Option<eks::access_entries::EntryGrant> {
        self.inner.eks.access_entries().lookup(principal_arn).await
    }

    /// The authorizer, for emr-containers and any other service to call.
    pub fn authorizer(&self) -> Authorizer {
        self.inner.authorizer.clone()
    }

    /// Services (credential-scope names) dispatched by [`Services::signed`].
    pub fn serves(service: &str) -> bool {
        matches!(
            service,
            "iam" | "sts" | "logs" | "eks" | "ec2" | "monitoring"
        )
    }

    /// Serves a request the SigV4 middleware has authenticated (a [`Principal`] is in its
    /// extensions) for one of the services [`Services::serves`].
    pub async fn signed(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
            return AwsError::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
            .into_response();
        };
        let request_id = wire::request_id(&parts.extensions);
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return AwsError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    "Request body too large",
                )
                .into_response()
            }
        };
        let inner = &self.inner;
        match principal.service.as_str() {
            "iam" => {
                let params = wire::QueryParams::from_parts(parts.uri.query(), &body);
                inner
                    .iam
                    .handle(&inner.authorizer, &principal, &params, &request_id)
                    .await
            }
            "ec2" => {
                let params = wire::QueryParams::from_parts(parts.uri.query(), &body);
                inner
                    .ec2
                    .handle(&inner.authorizer, &principal, &params, &request_id)
            }
            "sts" => {
                let params = wire::QueryParams::from_parts(parts.uri.query(), &body);
                inner.sts.handle(&principal, &params, &request_id).await
            }
            "logs" => {
                let target = parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                match target.strip_prefix(logs::TARGET_PREFIX) {
                    Some(op) => {
                        let response = inner
                            .logs
                            .handle(&inner.authorizer, &principal, op, &body)
                            .await;
                        // CloudWatch Logs extracts Embedded Metric Format metrics from the
                        // events it accepts (Container Insights' performance log among them).
                        if op == "PutLogEvents" && response.status().is_success() {
                            inner
                                .cloudwatch
                                .ingest_emf(&logs::event_messages(&body))
                                .await;
                        }
                        response
                    }
                    None => AwsError::new(
                        StatusCode::BAD_REQUEST,
                        "UnknownOperationException",
                        format!("Unknown X-Amz-Target {target:?} for CloudWatch Logs."),
                    )
                    .into_response(),
                }
            }
            "monitoring" => {
                let body = match cloudwatch::request_body(&parts.headers, body) {
                    Ok(b) => b,
                    Err(e) => {
                        let (protocol, _) = cloudwatch::classify(&parts.uri, &parts.headers, &[]);
                        return e.render(protocol, &request_id);
                    }
                };
                let (protocol, op) = cloudwatch::classify(&parts.uri, &parts.headers, &body);
                inner
                    .cloudwatch
                    .handle(
                        &inner.authorizer,
                        &principal,
                        protocol,
                        &op,
                        &body,
                        &request_id,
                    )
                    .await
            }
            "eks" => {
                inner
                    .eks
                    .handle(
                        &inner.authorizer,
                        &principal,
                        &parts.method,
                        &parts.uri,
                        &body,
                    )
                    .await
            }
            other => AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownService",
                format!("Service {other} is not served here."),
            )
            .into_response(),
        }
    }

    /// Serves an S3 request (signature checked by `s3s`).
    pub async fn s3(&self, request: Request) -> Response {
        if let Some(refusal) = presigned_lifetime_refusal(request.uri()) {
            return refusal;
        }
        let request = request.map(s3s::Body::http_body_unsync);
        match self.inner.s3.call(request).await {
            Ok(response) => response.map(Body::new),
            Err(e) => {
                tracing::error!(error = ?e, "S3 request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// Serves an unsigned request if it is STS `AssumeRoleWithWebIdentity`; otherwise hands
    /// the request back (body intact) for the signed path, which will refuse it.
    pub async fn unsigned(&self, request: Request) -> Result<Response, Request> {
        let small = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n <= MAX_UNSIGNED_BODY);
        let query_action = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("Action=AssumeRoleWithWebIdentity"));
        if request.uri().path() != "/" || !(small || query_action) {
            return Err(request);
        }
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_UNSIGNED_BODY).await {
            Ok(b) => b,
            Err(_) => return Err(Request::from_parts(parts, Body::empty())),
        };
        let params = wire::QueryParams::from_parts(parts.uri.query(), &bytes);
        if params.action() == Some("AssumeRoleWithWebIdentity") {
            let request_id = wire::request_id(&parts.extensions);
            Ok(self.inner.sts.handle_unsigned(&params, &request_id).await)
        } else {
            Err(Request::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// How a request reached the endpoint is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Signed for S3: `s3s` verifies it.
    S3,
    /// No SigV4 at all (only STS `AssumeRoleWithWebIdentity` is served so).
    Unsigned,
    /// Signed for another service: the generic SigV4 middleware, then by service.
    Signed,
}

/// Classifies a request by its SigV4 credential scope (header or presigned query).
pub fn route(uri: &http::Uri, headers: &http::HeaderMap) -> Route {
    let has_header = headers.contains_key(header::AUTHORIZATION);
    let has_query = uri
        .query()
        .is_some_and(|q| q.contains("X-Amz-Credential=") || q.contains("x-amz-credential="));
    if !has_header && !has_query {
        return Route::Unsigned;
    }
    match sparkyard_aws::sigv4::SignatureClaim::from_request(uri, headers) {
        Ok(claim) if claim.scope.service == "s3" => Route::S3,
        // A malformed S3 signature (a presigned URL valid for more than a week, say) is
        // S3's to refuse, in its XML, not the JSON of the generic middleware.
        Err(_) if claimed_service(uri, headers).as_deref() == Some("s3") => Route::S3,
        _ => Route::Signed,
    }
}

/// The service a request's credential scope names (`X-Amz-Credential`, or `Credential=` in
/// the `Authorization` header), read without checking anything else.
fn claimed_service(uri: &http::Uri, headers: &http::HeaderMap) -> Option<String> {
    let credential = match headers.get(header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()?
            .split([' ', ','])
            .find_map(|piece| piece.trim().strip_prefix("Credential="))
            .map(str::to_string),
        None => sparkyard_aws::sigv4::parse_query(uri.query().unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v),
    }?;
    credential.split('/').nth(3).map(str::to_string)
}

/// S3's refusal of a SigV4 presigned URL meant to live longer than a week, which `s3s`
/// would otherwise honour for as long as it says (up to 136 years).
fn presigned_lifetime_refusal(uri: &http::Uri) -> Option<Response> {
    let max = sparkyard_aws::sigv4::MAX_PRESIGNED_EXPIRES_SECS;
    let query = sparkyard_aws::sigv4::parse_query(uri.query().unwrap_or(""));
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    param("X-Amz-Credential")?;
    let expires = param("X-Amz-Expires")?.clone();
    let message = match expires.parse::<i128>() {
        Ok(secs) if (0..=i128::from(max)).contains(&secs) => return None,
        Ok(secs) if secs < 0 => "X-Amz-Expires must be non-negative".to_string(),
        Ok(_) => format!("X-Amz-Expires must be less than a week (in seconds) that is {max}"),
        Err(_) => format!(
            "X-Amz-Expires should be a number, not '{}'.",
            wire::xml_escape(&expires)
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationQueryParametersError</Code><Message>{message}</Message></Error>"
    );
    Some(
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/xml")],
            body,
        )
            .into_response(),
    )
}

/// First path segments of the REST services behind the SigV4 middleware (emr-containers,
/// EKS). An unsigned request to any other path below `/` is an anonymous S3 request
/// (`/<bucket>/<key>`), which S3 answers in its own XML (`AccessDenied`), as AWS does.
const REST_ROOTS: &[&str] = &[
    "virtualclusters",
    "jobtemplates",
    "securityconfigurations",
    "tags",
    "clusters",
];

fn anonymous_s3(uri: &http::Uri) -> bool {
    let first = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    !first.is_empty() && !REST_ROOTS.contains(&first)
}

#[derive(Clone)]
struct Front {
    services: Services,
    signed: Router,
}

async fn front(State(front): State<Front>, request: Request) -> Response {
    match route(request.uri(), request.headers()) {
        Route::S3 => front.services.s3(request).await,
        Route::Unsigned => match front.services.unsigned(request).await {
            Ok(response) => response,
            Err(request) if anonymous_s3(request.uri()) => front.services.s3(request).await,
            Err(request) => front.signed.oneshot(request).await.into_response(),
        },
        Route::Signed => front.signed.oneshot(request).await.into_response(),
    }
}

#[derive(Clone)]
struct BySevice {
    services: Services,
    other: Router,
}

async fn by_service(State(state): State<BySevice>, request: Request) -> Response {
    let service = request
        .extensions()
        .get::<Principal>()
        .map(|p| p.service.clone())
        .unwrap_or_default();
    if Services::serves(&service) {
        state.services.signed(request).await
    } else {
        state.other.oneshot(request).await.into_response()
    }
}

/// The signed services behind the SigV4 layer, for in-process callers that already know
/// who is calling (the web console): a request must carry its [`Principal`] in its
/// extensions, with `service` naming the service (`monitoring`, `logs`, `eks`, …, or any
/// other for `other`, the emr-containers router). Requests without one are refused as
/// unsigned ones are. Never serve this on a socket: there is no signature check here.
pub fn principal_router(services: Services, other: Router) -> Router {
    Router::new()
        .fallback(by_service)
        .with_state(BySevice { services, other })
        .layer(axum::middleware::from_fn(sparkyard_aws::request_id::stamp))
}

/// The whole AWS endpoint: request ids on everything; S3 through `s3s`; unsigned STS web
/// identity; everything else through SigV4 `authenticate`, then to these services by the
/// credential scope's service, or to `other` (emr-containers) for the rest.
pub fn router(services: Services, keyring: Arc<Keyring>, other: Router) -> Router {
    let signed = Router::new()
        .fallback(by_service)
        .with_state(BySevice {
            services: services.clone(),
            other,
        })
        .layer(axum::middleware::from_fn_with_state(
            keyring,
            sparkyard_aws::auth::authenticate,
        ));
    Router::new()
        .fallback(front)
        .with_state(Front { services, signed })
        .layer(axum::middleware::from_fn(close_after_refused_expect))
        .layer(axum::middleware::from_fn(sparkyard_aws::request_id::stamp))
}

/// A request sent with `Expect: 100-continue` and refused before its body was asked for
/// (S3 checks the signature and the policy first) leaves the connection in doubt: the
/// client, seeing the refusal, sends no body (botocore), but hyper, never having sent
/// `100 Continue`, may still read whatever comes next as that body — the client's next
/// request on the connection, which then fails as a 400. So such a refusal closes the
/// connection.
async fn close_after_refused_expect(request: Request, next: axum::middleware::Next) -> Response {
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut response = next.run(request).await;
    if expects_continue && !response.status().is_success() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h.insert("x-amz-date", "20240101T000000Z".parse().unwrap());
        h
    }

    #[test]
    fn routes_by_credential_scope() {
        let uri: http::Uri = "/bucket/key".parse().unwrap();
        let s3 = headers("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
        assert_eq!(route(&uri, &s3), Route::S3);
        let iam = headers("AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
        assert_eq!(route(&uri, &iam), Route::Signed);
        assert_eq!(route(&uri, &http::HeaderMap::new()), Route::Unsigned);
        assert!(anonymous_s3(&uri));
        for rest in [
            "/virtualclusters/x/jobruns",
            "/clusters/c",
            "/",
            "/tags/arn",
        ] {
            assert!(!anonymous_s3(&rest.parse().unwrap()), "{rest}");
        }
        let presigned: http::Uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00".parse().unwrap();
        assert_eq!(route(&presigned, &http::HeaderMap::new()), Route::S3);
        // Malformed but for S3 (a lifetime over a week): still S3's to answer.
        let week_and_a_second: http::Uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00".parse().unwrap();
        assert_eq!(
            route(&week_and_a_second, &http::HeaderMap::new()),
            Route::S3
        );
        assert!(presigned_lifetime_refusal(&week_and_a_second).is_some());
        assert!(presigned_lifetime_refusal(&presigned).is_none());
        let unsigned: http::Uri = "/b/k?X-Amz-Expires=604801".parse().unwrap();
        assert!(presigned_lifetime_refusal(&unsigned).is_none());
        let iam_week: http::Uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20240101%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00".parse().unwrap();
        assert_eq!(route(&iam_week, &http::HeaderMap::new()), Route::Signed);
    }
}
