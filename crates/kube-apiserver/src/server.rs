//! The HTTPS API server: TLS, authentication, routing of Kubernetes REST paths to the
//! handlers, and the response encodings (JSON, Table, Status).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;
use crate::{discovery, handlers, watch};

/// rustls server configuration from PEM, with the ring provider. Only HTTP/1.1 is offered:
/// fabric8 and kubectl upgrade watches to WebSockets on HTTP/1.1.
pub fn tls_config(cert_pem: &str, key_pem: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TLS connections forever and serves `router` on each (with upgrades, for
/// WebSocket watches).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(tls_stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(
                        hyper_util::rt::TokioIo::new(tls_stream),
                        service,
                    )
                    .await;
        });
    }
}

pub fn router(server: ApiServer) -> Router {
    Router::new()
        .fallback(acknowledged)
        .with_state(server)
        .layer(axum::middleware::from_fn(crate::metrics::track))
}

/// Serves a request; a write is acknowledged only once the registry has it on disk
/// (`[cluster] persistence`), so a client never sees a change that a crash could undo.
async fn acknowledged(State(server): State<ApiServer>, request: Request) -> Response {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if writes && stores_something(request.uri().path()) {
        if let Some(cause) = server.registry.persistence_failure() {
            return error_response(&ApiError::internal(format!(
                "the cluster's store cannot persist changes ({cause}): writes are refused until it can, and this one changed nothing"
            )));
        }
    }
    let response = dispatch(State(server.clone()), request).await;
    if writes {
        // Everything committed in memory so far, this request's changes included.
        let revision = server.registry.revision();
        if let Err(err) = server.registry.wait_durable(revision).await {
            return error_response(&err);
        }
    }
    response
}

/// Whether a non-GET request to `path` stores something. Reviews (token, access) and
/// streams into containers change no object, so they go on while the store cannot write.
fn stores_something(path: &str) -> bool {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    !(last.ends_with("reviews") || matches!(last, "exec" | "attach" | "portforward" | "proxy"))
}

/// Query parameters, percent-decoded, in order.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Self(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(pair), String::new()),
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `true`/`1` (and a bare `?watch`) count as set.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }
}

/// A parsed resource path: `/api/v1/namespaces/ns/pods/name/log` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The deprecated `/api/v1/watch/...` form.
    pub legacy_watch: bool,
}

fn not_found_path() -> ApiError {
    let mut err = ApiError::not_found("", "", "");
    err.message = "the server could not find the requested resource".into();
    err.details = None;
    err
}

/// Parses the path of a resource request; `Ok(None)` when it is not one (discovery etc.).
pub fn parse_resource_path(path: &str) -> Result<Option<ResourcePath>, ApiError> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Ok(None),
    };
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let lookup = |plural: &str| resources::find(group, version, plural).ok_or_else(not_found_path);
    // `namespaces/<ns>/<plural>...` is a namespaced request when <plural> is namespaced;
    // otherwise `namespaces/<name>[/<sub>]` addresses a Namespace object.
    if let ["namespaces", ns, plural, tail @ ..] = rest {
        if let Some(info) = resources::find(group, version, plural).filter(|i| i.namespaced) {
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(name.to_string()), None),
                [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
                _ => return Err(not_found_path()),
            };
            return Ok(Some(ResourcePath {
                info,
                namespace: Some(ns.to_string()),
                name,
                subresource: sub,
                legacy_watch,
            }));
        }
    }
    let (info, name, sub) = match rest {
        [plural] => (lookup(plural)?, None, None),
        [plural, name] => (lookup(plural)?, Some(name.to_string()), None),
        [plural, name, sub] => (
            lookup(plural)?,
            Some(name.to_string()),
            Some(sub.to_string()),
        ),
        _ => return Err(not_found_path()),
    };
    if info.namespaced && name.is_some() {
        // A namespaced resource addressed without a namespace: only collection paths exist.
        return Err(not_found_path());
    }
    if let Some(sub) = &sub {
        if !info.subresources.contains(&sub.as_str()) {
            return Err(not_found_path());
        }
    }
    Ok(Some(ResourcePath {
        info,
        namespace: None,
        name,
        subresource: sub,
        legacy_watch,
    }))
}

/// What a request asked for, with who asked.
pub struct ApiRequest {
    pub method: Method,
    pub path: ResourcePath,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub user: UserInfo,
}

impl ApiRequest {
    pub fn is_watch(&self) -> bool {
        self.path.legacy_watch || self.query.flag("watch")
    }

    /// The RBAC verb of the request.
    pub fn verb(&self) -> &'static str {
        match (&self.method, self.path.name.is_some()) {
            (&Method::GET | &Method::HEAD, _) if self.is_watch() => "watch",
            (&Method::GET | &Method::HEAD, true) => "get",
            (&Method::GET | &Method::HEAD, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "unknown",
        }
    }

    pub fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or_default()
    }

    pub fn accept(&self) -> &str {
        self.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }
}

/// `Accept` asks for a `meta.k8s.io` Table (kubectl get).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let part = part.replace(' ', "");
        part.contains("as=Table")
            && part.contains("g=meta.k8s.io")
            && part.starts_with("application/json")
    })
}

pub fn json_response(code: u16, value: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .unwrap()
}

pub fn table_response(value: &Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(
            http::header::CONTENT_TYPE,
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .unwrap()
}

pub fn error_response(err: &ApiError) -> Response {
    json_response(err.code, &err.status())
}

/// Who is calling: the admin token, a service-account JWT, or nobody (401).
pub fn authenticate(server: &ApiServer, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    authenticate_token(server, token)
}

/// [`authenticate`], with EKS-style IAM tokens (`k8s-aws-v1.…`) verified and mapped
/// through the installed [`AwsTokenVerifier`](crate::auth::aws_iam::AwsTokenVerifier).
pub async fn authenticate_request(
    server: &ApiServer,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    if let Some(token) = token.filter(|t| t.starts_with(crate::auth::aws_iam::TOKEN_PREFIX)) {
        let verifier = server
            .aws_token_verifier()
            .ok_or_else(ApiError::unauthorized)?;
        return crate::auth::aws_iam::authenticate(
            &server.registry,
            verifier.as_ref(),
            &server.aws_identities,
            token,
        )
        .await;
    }
    authenticate(server, headers)
}

/// Resolves a bearer token to its user (also the TokenReview API).
pub fn authenticate_token(server: &ApiServer, token: &str) -> Result<UserInfo, ApiError> {
    if constant_time_eq(token.as_bytes(), server.admin_token.as_bytes()) {
        return Ok(UserInfo::admin());
    }
    let claims = server
        .tokens
        .verify(token, Some(server.tokens.issuer()))
        .map_err(|_| ApiError::unauthorized())?;
    // Like the apiserver, a token stops working when its service account or bound pod goes.
    let sa = server
        .registry
        .get(
            resources::SERVICE_ACCOUNTS.resource(),
            &claims.namespace,
            &claims.service_account,
        )
        .ok_or_else(ApiError::unauthorized)?;
    if let Some(uid) = &claims.service_account_uid {
        if sa.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str()) {
            return Err(ApiError::unauthorized());
        }
    }
    if let Some((pod, uid)) = &claims.pod {
        let live = server
            .registry
            .get(resources::PODS.resource(), &claims.namespace, pod);
        if live
            .and_then(|p| {
                p.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .as_deref()
            != Some(uid.as_str())
        {
            return Err(ApiError::unauthorized());
        }
    }
    Ok(UserInfo::service_account(
        &claims.namespace,
        &claims.service_account,
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// kube-apiserver's `--max-request-body-bytes` default (3 MiB): a larger body is refused
/// with 413 before it is read whole.
const MAX_BODY: usize = 3 * 1024 * 1024;

async fn dispatch(State(server): State<ApiServer>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    tracing::debug!(method = %parts.method, %path, query = ?parts.uri.query(), "api request");

    // Unauthenticated endpoints, as `system:public-info-viewer` allows them.
    match path.as_str() {
        "/version" | "/version/" => return json_response(200, &discovery::version()),
        "/healthz" | "/livez" | "/readyz" => {
            return Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from("ok"))
                .unwrap()
        }
        "/.well-known/openid-configuration" => {
            return json_response(200, &server.tokens.openid_configuration())
        }
        "/openid/v1/jwks" => return json_response(200, &server.tokens.jwks()),
        _ => {}
    }
    let user = match authenticate_request(&server, &parts.headers).await {
        Ok(user) => user,
        Err(err) => return error_response(&err),
    };

    // metrics.k8s.io and the node proxy (served in process, not from the registry).
    if let Some(response) =
        crate::metrics_api::serve(&server, &parts.method, &path, &query, &parts.headers, &user)
    {
        return response;
    }

    let resource_path = match parse_resource_path(&path) {
        Ok(Some(p)) => p,
        Ok(None) => {
            // Discovery and OpenAPI: every authenticated user may read them (system:discovery).
            return match discovery::serve(&path, &query, &parts.headers) {
                Some(response) => response,
                None => error_response(&not_found_path()),
            };
        }
        Err(err) => return error_response(&err),
    };

    // WebSocket watches (fabric8 tries these first) are upgraded before the body is read.
    let is_upgrade = parts
        .headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));

    let body = if is_upgrade {
        Bytes::new()
    } else {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                return error_response(&if too_large {
                    ApiError::too_large(MAX_BODY)
                } else {
                    ApiError::bad_request(format!("the request body could not be read: {e}"))
                });
            }
        }
    };
    let request = ApiRequest {
        method: parts.method.clone(),
        path: resource_path,
        query,
        headers: parts.headers.clone(),
        body,
        user,
    };
    if let Err(err) = authorize(&server, &request) {
        return error_response(&err);
    }
    if is_upgrade && request.is_watch() {
        use axum::extract::FromRequestParts;
        return match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await
        {
            Ok(upgrade) => watch::websocket(server, request, upgrade),
            Err(rejection) => axum::response::IntoResponse::into_response(rejection),
        };
    }
    handlers::handle(server, request).await
}

/// RBAC check of a resource request (403 with the apiserver's wording).
fn authorize(server: &ApiServer, request: &ApiRequest) -> Result<(), ApiError> {
    let attributes = crate::auth::rbac::Attributes {
        verb: request.verb().to_string(),
        api_group: request.path.info.group.to_string(),
        resource: request.path.info.plural.to_string(),
        subresource: request.path.subresource.clone().unwrap_or_default(),
        name: request.path.name.clone().unwrap_or_default(),
        // A Namespace is in itself, as kube-apiserver's request info has it: a RoleBinding
        // in `x` may grant reading namespace `x`, and a refusal says "in the namespace".
        namespace: match (
            &request.path.name,
            request.path.info.group,
            request.path.info.plural,
        ) {
            (Some(name), "", "namespaces") => name.clone(),
            _ => request.namespace().to_string(),
        },
        path: String::new(),
    };
    let attributes = crate::auth::rbac::Attributes {
        // The pod log and subresource GETs are "get" even for collections.
        verb: if attributes.subresource.is_empty() {
            attributes.verb
        } else {
            sub_verb(request)
        },
        ..attributes
    };
    crate::auth::rbac::authorize(&server.registry, &request.user, &attributes)
}

fn sub_verb(request: &ApiRequest) -> String {
    match request.method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let p = parse_resource_path("/api/v1/namespaces/test/pods/x/log")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                p.info.plural,
                p.namespace.as_deref(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("pods", Some("test"), Some("x"), Some("log"))
        );
        let p = parse_resource_path("/api/v1/namespaces/test")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.info.plural, p.name.as_deref()),
            ("namespaces", Some("test"))
        );
        let p = parse_resource_path("/api/v1/namespaces/test/finalize")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.info.plural, p.name.as_deref(), p.subresource.as_deref()),
            ("namespaces", Some("test"), Some("finalize"))
        );
        let p = parse_resource_path("/api/v1/pods").unwrap().unwrap();
        assert_eq!((p.info.plural, p.namespace), ("pods", None));
        let p = parse_resource_path("/apis/scheduling.k8s.io/v1/priorityclasses/high")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.info.plural, p.name.as_deref()),
            ("priorityclasses", Some("high"))
        );
        let p = parse_resource_path("/api/v1/watch/namespaces/a/pods")
            .unwrap()
            .unwrap();
        assert!(p.legacy_watch);
        assert!(parse_resource_path("/api/v1").unwrap().is_none());
        assert!(parse_resource_path("/apis/batch/v1").unwrap().is_none());
        assert_eq!(
            parse_resource_path("/api/v1/widgets").unwrap_err().code,
            404
        );
        assert_eq!(parse_resource_path("/api/v1/pods/x").unwrap_err().code, 404);
        assert_eq!(
            parse_resource_path("/api/v1/nodes/x/bogus")
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn query_and_accept() {
        let q = Query::parse(Some(
            "labelSelector=spark-exec-id+in+%281%2C2%29&watch=true&x",
        ));
        assert_eq!(q.get("labelSelector"), Some("spark-exec-id in (1,2)"));
        assert!(q.flag("watch") && q.flag("x") && !q.flag("y"));
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
    }
}
