//! The Kubernetes API, called in-process as the signed-in principal, the way the EKS
//! console does it: with an EKS token (`k8s-aws-v1.` + a presigned STS
//! `GetCallerIdentity`, what `aws eks get-token` prints) signed with the session's own
//! credentials. The API server verifies it against sparkyard's STS and maps the principal
//! through `aws-auth` and the access entries, so every Kubernetes view shows exactly what
//! the same principal's kubectl would see — RBAC decides, not the console.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::body::Body;
use base64::Engine;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use sparkyard_aws::keyring::Keyring;
use sparkyard_aws::Principal;
use tower::ServiceExt;

/// The token prefix EKS's authenticator expects.
const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// `Accept` for a Table, with plain JSON as the fallback a server without Tables answers.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// A token is minted again after this long (the API server accepts one for 15 minutes,
/// `aws eks get-token` tokens are cached by kubectl for 14).
const TOKEN_REUSE: Duration = Duration::from_secs(10 * 60);

/// What the console needs to reach the embedded cluster's API server.
#[derive(Clone)]
pub struct KubeAccess {
    /// The API server's router (`sparkyard_cluster::Cluster::api_router`).
    pub router: axum::Router,
    /// The EKS cluster name tokens are bound to (`x-k8s-aws-id`).
    pub cluster_name: String,
    /// `host[:port]` of sparkyard's AWS endpoint: the STS host the tokens are presigned for.
    pub sts_host: String,
}

/// A Kubernetes API error, from its `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeError {
    pub status: StatusCode,
    /// `Forbidden`, `NotFound`, `Unauthorized`, …
    pub reason: String,
    pub message: String,
}

impl KubeError {
    pub fn denied(&self) -> bool {
        matches!(
            self.status,
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
        )
    }

    fn new(status: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        KubeError {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

pub struct Kube {
    access: Option<KubeAccess>,
    region: String,
    /// Minted tokens by access key id.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Kube {
    pub fn new(access: Option<KubeAccess>, region: &str) -> Self {
        Kube {
            access,
            region: region.to_string(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Whether there is a cluster to show (not with `serve --no-cluster`).
    pub fn available(&self) -> bool {
        self.access.is_some()
    }

    /// `GET path` (`/api/v1/nodes`, `/apis/karpenter.sh/v1/nodepools?limit=500`).
    pub async fn get(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        path: &str,
    ) -> Result<Value, KubeError> {
        self.request(keyring, principal, Method::GET, path, None)
            .await
    }

    /// The `items` of a list.
    pub async fn list(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        path: &str,
    ) -> Result<Vec<Value>, KubeError> {
        let list = self.get(keyring, principal, path).await?;
        Ok(match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        })
    }

    /// `GET path` as a `meta.k8s.io/v1` Table (what `kubectl get` asks for): the
    /// server's own columns for the resource, custom resources' printer columns included.
    pub async fn get_table(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        path: &str,
    ) -> Result<Value, KubeError> {
        self.send(keyring, principal, Method::GET, path, None, TABLE)
            .await
    }

    /// One request as `principal`; a JSON body is sent as `application/json`
    /// (`application/merge-patch+json` for PATCH).
    pub async fn request(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, KubeError> {
        self.send(keyring, principal, method, path, body, "application/json")
            .await
    }

    /// `GET path` answered as plain text: a container's log
    /// (`/api/v1/namespaces/<ns>/pods/<pod>/log?container=<c>`).
    pub async fn text(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        path: &str,
    ) -> Result<String, KubeError> {
        let bytes = self
            .exchange(keyring, principal, Method::GET, path, None, "*/*")
            .await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn send(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: &str,
    ) -> Result<Value, KubeError> {
        let bytes = self
            .exchange(keyring, principal, method, path, body, accept)
            .await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// One request; the body of a success, the API's Status as a [`KubeError`] otherwise.
    async fn exchange(
        &self,
        keyring: &Keyring,
        principal: &Principal,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: &str,
    ) -> Result<axum::body::Bytes, KubeError> {
        let Some(access) = &self.access else {
            return Err(KubeError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "This sparkyard runs without its embedded cluster.",
            ));
        };
        let token = self.token(keyring, access, principal)?;
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::ACCEPT, accept)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(match body {
                Some(v) => Body::from(serde_json::to_vec(v).unwrap_or_default()),
                None => Body::empty(),
            })
            .map_err(|e| KubeError::new(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()))?;
        let response = match access.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 256 * 1024 * 1024)
            .await
            .map_err(|e| KubeError::new(StatusCode::BAD_GATEWAY, "InternalError", e.to_string()))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            // A token refused once is not reused (the key may have been rotated).
            self.forget(&principal.access_key_id);
        }
        let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
        Err(KubeError {
            status,
            reason: if text("reason").is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("Error")
                    .replace(' ', "")
            } else {
                text("reason").to_string()
            },
            message: if text("message").is_empty() {
                String::from_utf8_lossy(&bytes).trim().to_string()
            } else {
                text("message").to_string()
            },
        })
    }

    fn forget(&self, access_key_id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(access_key_id);
    }

    /// The principal's EKS token, minted from its credentials in the keyring.
    fn token(
        &self,
        keyring: &Keyring,
        access: &KubeAccess,
        principal: &Principal,
    ) -> Result<String, KubeError> {
        let key = &principal.access_key_id;
        if let Some((token, at)) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            if at.elapsed() < TOKEN_REUSE {
                return Ok(token.clone());
            }
        }
        let record = keyring.lookup(key).ok_or_else(|| {
            KubeError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The session's credentials are no longer valid.",
            )
        })?;
        let session_token = record.session.as_ref().map(|s| s.token.clone());
        let token = eks_token(
            key,
            &record.secret_access_key,
            session_token,
            &self.region,
            access,
            SystemTime::now(),
        )
        .map_err(|e| KubeError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e))?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), (token.clone(), Instant::now()));
        Ok(token)
    }
}

/// What `aws eks get-token --cluster-name <name>` prints, signed with aws-sigv4 (the AWS
/// SDKs' signer): a presigned `GET http://<sts host>/?Action=GetCallerIdentity&…` whose
/// signed headers bind the cluster name, base64url-encoded behind `k8s-aws-v1.`.
pub fn eks_token(
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<String>,
    region: &str,
    access: &KubeAccess,
    now: SystemTime,
) -> Result<String, String> {
    let url = format!(
        "http://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        access.sts_host
    );
    let identity: Identity = Credentials::new(
        access_key_id,
        secret_access_key,
        session_token,
        None,
        "sparkyard-console",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = [
        ("host", access.sts_host.as_str()),
        ("x-k8s-aws-id", access.cluster_name.as_str()),
    ];
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut request = Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| e.to_string())?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(request.uri().to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token passes the API server's shape check and STS's signature check — for
    /// permanent and for temporary (session-token) credentials — and is bound to the
    /// cluster name.
    #[test]
    fn minted_tokens_verify_like_aws_eks_get_token() {
        use sparkyard_kube_apiserver::auth::aws_iam::parse_token;
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let key = keyring.bootstrap().clone();
        let access = KubeAccess {
            router: axum::Router::new(),
            cluster_name: "eks-emr-cluster".into(),
            sts_host: "127.0.0.1:4566".into(),
        };
        let token = eks_token(
            &key.access_key_id,
            &key.secret_access_key,
            None,
            "us-east-2",
            &access,
            SystemTime::now(),
        )
        .unwrap();
        let now = chrono::Utc::now();
        let parsed = parse_token(&token, "eks-emr-cluster", Some("127.0.0.1:4566"), now).unwrap();
        assert_eq!(parsed.access_key_id, key.access_key_id);
        let verify = |cluster: &str| {
            let uri: http::Uri = format!(
                "{}://{}{}?{}",
                parsed.request.scheme,
                parsed.request.host,
                parsed.request.path,
                parsed.request.raw_query
            )
            .parse()
            .unwrap();
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::HOST, parsed.request.host.parse().unwrap());
            headers.insert("x-k8s-aws-id", cluster.parse().unwrap());
            sparkyard_services::sts::presigned::verify(&keyring, &uri, &headers, now)
        };
        let owner = verify("eks-emr-cluster").expect("the signature verifies");
        assert_eq!(owner.arn, "arn:aws:iam::123456789012:root");
        assert!(
            verify("another-cluster").is_err(),
            "bound to the cluster name"
        );
        assert!(
            parse_token(&token, "another-cluster", Some("127.0.0.1:4566"), now).is_ok(),
            "the shape check alone does not know the cluster; the signature does"
        );
        // Another STS host is refused by the API server.
        assert!(parse_token(&token, "eks-emr-cluster", Some("127.0.0.1:9"), now).is_err());
    }
}
