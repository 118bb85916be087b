//! IAM authentication as EKS does it (aws-iam-authenticator): a bearer token
//! `k8s-aws-v1.<base64url of a presigned STS GetCallerIdentity URL>` whose signed headers
//! include `x-k8s-aws-id: <cluster name>`.
//!
//! The API server checks the token's shape (presigned `GET` of `Action=GetCallerIdentity&
//! Version=2011-06-15` to an accepted STS host, `x-k8s-aws-id` signed, within the 15-minute
//! window), then asks an [`AwsTokenVerifier`] — sparkyard's own STS, installed by the binary
//! with [`ApiServer::set_aws_token_verifier`](crate::ApiServer::set_aws_token_verifier) so
//! this crate does not depend on the services — to check the signature, as the authenticator
//! sends the URL to STS. The caller's ARN is then mapped to a Kubernetes user, in EKS's
//! order: the cluster creator (`kubernetes-admin`, `system:masters`), an EKS access entry,
//! the `kube-system/aws-auth` ConfigMap (`mapRoles`, `mapUsers`, `mapAccounts`). A valid
//! token that maps to nobody is `401 Unauthorized`, as on EKS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::UserInfo;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::resources::CONFIGMAPS;

/// The token prefix `aws eks get-token` and aws-iam-authenticator write.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long after `X-Amz-Date` a token is accepted (the authenticator's window; the CLI
/// marks its ExecCredential as expiring after 14 minutes).
pub const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);
/// How far in the future `X-Amz-Date` may be.
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);
/// Largest `X-Amz-Expires` accepted (seconds).
pub const MAX_EXPIRES_SECS: u64 = 15 * 60;
/// How long a verified signature is remembered (the mapping is evaluated on every request).
const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 4096;
/// The user name EKS gives the cluster creator.
pub const CLUSTER_CREATOR_USER: &str = "kubernetes-admin";

/// What STS says about the caller of a verified request (GetCallerIdentity's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `arn:aws:iam::<acct>:root`, `…:user/<name>`, `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub arn: String,
    pub account: String,
    pub user_id: String,
}

/// The request the authenticator would send to STS: `GET <path>?<query>` with headers
/// `host` and `x-k8s-aws-id` (set to this cluster's name, so a token minted for another
/// cluster fails the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub scheme: String,
    /// `host[:port]` of the URL.
    pub host: String,
    pub path: String,
    /// The raw query string, as signed.
    pub raw_query: String,
    pub cluster_id: String,
}

/// One access policy associated with an access entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAssociation {
    /// `arn:aws:eks::aws:cluster-access-policy/<Name>`.
    pub policy_arn: String,
    /// Empty: cluster scope; else the namespaces of a `namespace` scope.
    pub namespaces: Vec<String>,
}

/// An EKS access entry, as the authenticator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// May hold `{{SessionName}}`, `{{AccountID}}`… (EKS's default for roles does).
    pub username: String,
    pub groups: Vec<String>,
    pub policies: Vec<PolicyAssociation>,
}

/// The binary's bridge to sparkyard's STS and EKS.
pub trait AwsTokenVerifier: Send + Sync {
    /// The cluster name tokens must be bound to (`x-k8s-aws-id`).
    fn cluster_name(&self) -> String;
    /// `host[:port]` of sparkyard's AWS endpoint (the CLI profile's `endpoint_url`), accepted
    /// as an STS host over `http` too.
    fn endpoint_host(&self) -> Option<String>;
    /// The cluster creator's ARN (sparkyard's bootstrap key: `arn:aws:iam::<acct>:root`).
    fn cluster_creator_arn(&self) -> String;
    /// Verifies the SigV4 signature of the presigned request, as STS would answer it.
    fn verify<'a>(
        &'a self,
        request: &'a PresignedRequest,
    ) -> BoxFuture<'a, Result<CallerIdentity, String>>;
    /// The access entry of `principal_arn` (a role ARN without path, a user ARN), if any.
    fn access_entry<'a>(&'a self, principal_arn: &'a str) -> BoxFuture<'a, Option<AccessEntry>>;
}

/// A token whose shape passed: what is needed to verify and map it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub request: PresignedRequest,
    pub access_key_id: String,
    pub date: DateTime<Utc>,
}

fn malformed(why: impl Into<String>) -> String {
    format!("input token was not properly formatted: {}", why.into())
}

/// Checks a token's shape as aws-iam-authenticator does, at time `now`.
pub fn parse_token(
    token: &str,
    cluster_name: &str,
    endpoint_host: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ParsedToken, String> {
    let encoded = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| malformed("token is missing expected \"k8s-aws-v1.\" prefix"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| malformed(e.to_string()))?;
    let url = String::from_utf8(bytes).map_err(|e| malformed(e.to_string()))?;
    let uri: http::Uri = url.parse().map_err(|e| malformed(format!("{e}")))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_string();
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| malformed("the URL has no host"))?;
    let ours = endpoint_host.is_some_and(|h| h.eq_ignore_ascii_case(&host));
    let lower = host.to_ascii_lowercase();
    let sts_host = lower == "sts.amazonaws.com"
        || (lower.starts_with("sts.")
            && (lower.ends_with(".amazonaws.com") || lower.ends_with(".amazonaws.com.cn")));
    if !ours && !sts_host {
        return Err(malformed(format!(
            "unexpected hostname {host:?} in pre-signed URL"
        )));
    }
    if scheme != "https" && !(ours && scheme == "http") {
        return Err(malformed(format!(
            "unexpected scheme {scheme:?} in pre-signed URL"
        )));
    }
    if uri.path() != "/" {
        return Err(malformed("unexpected path in pre-signed URL"));
    }
    let raw_query = uri.query().unwrap_or_default().to_string();
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in form_pairs(&raw_query) {
        let key = k.to_ascii_lowercase();
        let allowed = key == "action" || key == "version" || key.starts_with("x-amz-");
        if !allowed {
            return Err(malformed(format!("non-whitelisted query parameter {k:?}")));
        }
        if params.insert(key, v).is_some() {
            return Err(malformed(format!(
                "query parameter {k:?} given more than once"
            )));
        }
    }
    if params.get("action").map(String::as_str) != Some("GetCallerIdentity") {
        return Err(malformed("unexpected action parameter in pre-signed URL"));
    }
    if params.get("version").map(String::as_str) != Some("2011-06-15") {
        return Err(malformed("unexpected version parameter in pre-signed URL"));
    }
    let signed = params.get("x-amz-signedheaders").ok_or_else(|| {
        malformed("client did not sign the x-k8s-aws-id header in the pre-signed URL")
    })?;
    if !signed
        .split(';')
        .any(|h| h.eq_ignore_ascii_case(CLUSTER_ID_HEADER))
    {
        return Err(malformed(
            "client did not sign the x-k8s-aws-id header in the pre-signed URL",
        ));
    }
    let expires: u64 = params
        .get("x-amz-expires")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("X-Amz-Expires parameter is missing or not a number"))?;
    if expires > MAX_EXPIRES_SECS {
        return Err(malformed(
            "X-Amz-Expires parameter must not exceed 15 minutes",
        ));
    }
    let date = params
        .get("x-amz-date")
        .and_then(|d| NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .map(|d| d.and_utc())
        .ok_or_else(|| malformed("error parsing X-Amz-Date parameter"))?;
    if now > date + TOKEN_LIFETIME {
        return Err(malformed(
            "X-Amz-Date parameter is expired (15 minute expiration)",
        ));
    }
    if date > now + MAX_CLOCK_SKEW {
        return Err(malformed("X-Amz-Date parameter is in the future"));
    }
    let access_key_id = params
        .get("x-amz-credential")
        .and_then(|c| c.split('/').next())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("X-Amz-Credential parameter is missing"))?
        .to_string();
    Ok(ParsedToken {
        request: PresignedRequest {
            scheme,
            host,
            path: uri.path().to_string(),
            raw_query,
            cluster_id: cluster_name.to_string(),
        },
        access_key_id,
        date,
    })
}

fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The ARN a mapping is matched against, as the authenticator canonicalises it: an
/// assumed-role session becomes its role (`arn:aws:iam::<acct>:role/<role>`), a role ARN
/// loses its path, and the comparison is case-insensitive.
pub fn canonical_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let canonical = match parts.as_slice() {
        ["arn", partition, "sts", "", account, resource] => {
            match resource
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split_once('/'))
            {
                Some((role, _)) => format!("arn:{partition}:iam::{account}:role/{role}"),
                None => arn.to_string(),
            }
        }
        ["arn", partition, "iam", "", account, resource] => match resource.strip_prefix("role/") {
            Some(path_and_name) => {
                let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
                format!("arn:{partition}:iam::{account}:role/{name}")
            }
            None => arn.to_string(),
        },
        _ => arn.to_string(),
    };
    canonical.to_ascii_lowercase()
}

/// The session name of an assumed-role ARN.
fn session_name(arn: &str) -> Option<&str> {
    arn.splitn(6, ':')
        .nth(5)
        .and_then(|r| r.strip_prefix("assumed-role/"))
        .and_then(|r| r.split_once('/'))
        .map(|(_, s)| s)
}

/// Expands the authenticator's templates in a user or group name.
pub fn expand(
    template: &str,
    caller: &CallerIdentity,
    access_key_id: &str,
) -> Result<String, String> {
    let raw = session_name(&caller.arn).unwrap_or_default();
    let mut out = template
        .replace("{{AccountID}}", &caller.account)
        .replace("{{AccessKeyID}}", access_key_id)
        .replace("{{SessionNameRaw}}", raw)
        .replace("{{SessionName}}", &raw.replace('@', "-"));
    if template.contains("{{Session") && raw.is_empty() {
        return Err(format!("{template}: the caller is not a role session"));
    }
    if out.contains("{{") {
        return Err(format!("{template}: unsupported template"));
    }
    out = out.trim().to_string();
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct RoleMapping {
    rolearn: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct UserMapping {
    userarn: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// The `kube-system/aws-auth` mapping of `caller`: `(username template, groups)`.
pub fn aws_auth_mapping(
    config_map: &Value,
    caller: &CallerIdentity,
) -> Option<(String, Vec<String>)> {
    let key = canonical_arn(&caller.arn);
    let data = |k: &str| {
        config_map
            .pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
    };
    if let Some(text) = data("mapRoles") {
        match serde_yaml::from_str::<Vec<RoleMapping>>(text) {
            Ok(roles) => {
                if let Some(m) = roles.iter().find(|m| canonical_arn(&m.rolearn) == key) {
                    return Some((m.username.clone(), m.groups.clone()));
                }
            }
            Err(e) => tracing::warn!(error = %e, "kube-system/aws-auth mapRoles is not valid YAML"),
        }
    }
    if let Some(text) = data("mapUsers") {
        match serde_yaml::from_str::<Vec<UserMapping>>(text) {
            Ok(users) => {
                if let Some(m) = users.iter().find(|m| canonical_arn(&m.userarn) == key) {
                    return Some((m.username.clone(), m.groups.clone()));
                }
            }
            Err(e) => tracing::warn!(error = %e, "kube-system/aws-auth mapUsers is not valid YAML"),
        }
    }
    if let Some(text) = data("mapAccounts") {
        if let Ok(accounts) = serde_yaml::from_str::<Vec<String>>(text) {
            if accounts.iter().any(|a| a.trim() == caller.account) {
                return Some((caller.arn.clone(), vec![]));
            }
        }
    }
    None
}

/// The rules an EKS access policy grants: the built-in ClusterRole it corresponds to, or
/// (AmazonEMRJobPolicy) the `emr-containers` Role's rules.
pub fn access_policy_rules(policy_arn: &str) -> Option<Vec<Value>> {
    let name = policy_arn.strip_prefix("arn:aws:eks::aws:cluster-access-policy/")?;
    let role = match name {
        "AmazonEKSClusterAdminPolicy" => "cluster-admin",
        "AmazonEKSAdminPolicy" => "admin",
        "AmazonEKSEditPolicy" => "edit",
        "AmazonEKSViewPolicy" => "view",
        "AmazonEMRJobPolicy" => return Some(emr_job_rules()),
        _ => return None,
    };
    super::rbac::default_cluster_roles()
        .into_iter()
        .find(|(n, _)| *n == role)
        .and_then(|(_, rules)| rules.as_array().cloned())
}

/// The `emr-containers` Role (what AmazonEMRJobPolicy grants in its namespaces).
fn emr_job_rules() -> Vec<Value> {
    let all = json!([
        "get",
        "list",
        "watch",
        "describe",
        "create",
        "edit",
        "delete",
        "deletecollection",
        "annotate",
        "patch",
        "label"
    ]);
    let apps = json!([
        "get", "list", "watch", "describe", "create", "edit", "delete", "annotate", "patch",
        "label"
    ]);
    vec![
        json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["serviceaccounts", "services", "configmaps", "events", "pods", "pods/log"], "verbs": all}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch", "delete", "watch"]}),
        json!({"apiGroups": ["apps"], "resources": ["statefulsets", "deployments"], "verbs": apps}),
        json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": apps}),
        json!({"apiGroups": ["extensions", "networking.k8s.io"], "resources": ["ingresses"], "verbs": apps}),
        json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": all}),
        json!({"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "list", "delete", "patch", "deletecollection"]}),
    ]
}

/// Verified identities by token, so a kubectl session does not re-verify every request.
#[derive(Default)]
pub struct IdentityCache {
    entries: Mutex<HashMap<String, (CallerIdentity, Instant)>>,
}

impl IdentityCache {
    fn get(&self, token: &str) -> Option<CallerIdentity> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(id, _)| id.clone())
    }

    fn put(&self, token: &str, identity: CallerIdentity, valid_for: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(
            token.to_string(),
            (identity, now + valid_for.min(CACHE_TTL)),
        );
    }
}

/// Authenticates an IAM token: shape, signature (through `verifier`, cached), mapping.
pub async fn authenticate(
    registry: &Registry,
    verifier: &dyn AwsTokenVerifier,
    cache: &IdentityCache,
    token: &str,
) -> Result<UserInfo, ApiError> {
    let now = Utc::now();
    let endpoint = verifier.endpoint_host();
    let parsed =
        parse_token(token, &verifier.cluster_name(), endpoint.as_deref(), now).map_err(|why| {
            tracing::debug!(%why, "IAM token refused");
            ApiError::unauthorized()
        })?;
    let caller = match cache.get(token) {
        Some(caller) => caller,
        None => {
            let caller = verifier.verify(&parsed.request).await.map_err(|why| {
                tracing::debug!(%why, "IAM token signature refused");
                ApiError::unauthorized()
            })?;
            let left = (parsed.date + TOKEN_LIFETIME - now)
                .to_std()
                .unwrap_or_default();
            cache.put(token, caller.clone(), left);
            caller
        }
    };
    map_identity(registry, verifier, &caller, &parsed.access_key_id)
        .await
        .ok_or_else(|| {
            tracing::debug!(arn = %caller.arn, "IAM identity is not mapped to a Kubernetes user");
            ApiError::unauthorized()
        })
}

/// The Kubernetes user of an IAM caller, or `None` when nothing maps it.
pub async fn map_identity(
    registry: &Registry,
    verifier: &dyn AwsTokenVerifier,
    caller: &CallerIdentity,
    access_key_id: &str,
) -> Option<UserInfo> {
    let key = canonical_arn(&caller.arn);
    if canonical_arn(&verifier.cluster_creator_arn()) == key {
        return Some(UserInfo {
            name: CLUSTER_CREATOR_USER.into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        });
    }
    let (username, groups, policies) = match verifier.access_entry(&key).await {
        Some(entry) => (entry.username, entry.groups, entry.policies),
        None => {
            let config_map = registry.get(CONFIGMAPS.resource(), "kube-system", "aws-auth")?;
            let (username, groups) = aws_auth_mapping(&config_map, caller)?;
            (username, groups, vec![])
        }
    };
    let username = if username.is_empty() {
        caller.arn.clone()
    } else {
        expand(&username, caller, access_key_id).ok()?
    };
    if username.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = groups
        .iter()
        .filter_map(|g| expand(g, caller, access_key_id).ok())
        .filter(|g| !g.is_empty())
        .collect();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Some(UserInfo {
        name: username,
        groups,
        access_policies: policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_for(url: &str) -> String {
        format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        )
    }

    fn url(host: &str, date: &str, signed: &str, expires: u32) -> String {
        format!("http://{host}/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261204%2Fus-east-2%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={signed}&X-Amz-Signature=00")
    }

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
    }

    #[test]
    fn token_shape_is_checked_like_the_authenticator() {
        let ours = Some("127.0.0.1:4566");
        let now = at("20261204T110000Z");
        let good = token_for(&url(
            "127.0.0.1:4566",
            "20261204T105500Z",
            "host%3Bx-k8s-aws-id",
            60,
        ));
        let parsed = parse_token(&good, "eks-emr-cluster", ours, now).unwrap();
        assert_eq!(parsed.access_key_id, "AKIAEXAMPLE");
        assert_eq!(parsed.request.host, "127.0.0.1:4566");
        assert_eq!(parsed.request.cluster_id, "eks-emr-cluster");
        // Not our endpoint, and http: refused; STS's own host needs https.
        let other = token_for(&url(
            "127.0.0.1:9999",
            "20261204T105500Z",
            "host%3Bx-k8s-aws-id",
            60,
        ));
        assert!(parse_token(&other, "c", ours, now).is_err());
        let sts = token_for(
            &url(
                "sts.us-east-2.amazonaws.com",
                "20261204T105500Z",
                "host%3Bx-k8s-aws-id",
                60,
            )
            .replace("http://", "https://"),
        );
        assert!(parse_token(&sts, "c", ours, now).is_ok());
        // The cluster id must be signed.
        let unsigned = token_for(&url("127.0.0.1:4566", "20261204T105500Z", "host", 60));
        assert!(parse_token(&unsigned, "c", ours, now)
            .unwrap_err()
            .contains("x-k8s-aws-id"));
        // 15 minutes after X-Amz-Date it is expired; a minute ahead is tolerated, more is not.
        let old = token_for(&url(
            "127.0.0.1:4566",
            "20261204T104459Z",
            "host%3Bx-k8s-aws-id",
            60,
        ));
        assert!(parse_token(&old, "c", ours, now)
            .unwrap_err()
            .contains("expired"));
        let ahead = token_for(&url(
            "127.0.0.1:4566",
            "20261204T110100Z",
            "host%3Bx-k8s-aws-id",
            60,
        ));
        assert!(parse_token(&ahead, "c", ours, now).is_ok());
        let future = token_for(&url(
            "127.0.0.1:4566",
            "20261204T110200Z",
            "host%3Bx-k8s-aws-id",
            60,
        ));
        assert!(parse_token(&future, "c", ours, now).is_err());
        let long = token_for(&url(
            "127.0.0.1:4566",
            "20261204T105500Z",
            "host%3Bx-k8s-aws-id",
            901,
        ));
        assert!(parse_token(&long, "c", ours, now).is_err());
        // Another action, or a stray parameter.
        let action = token_for(
            &url(
                "127.0.0.1:4566",
                "20261204T105500Z",
                "host%3Bx-k8s-aws-id",
                60,
            )
            .replace("GetCallerIdentity", "AssumeRole"),
        );
        assert!(parse_token(&action, "c", ours, now).is_err());
        let stray = token_for(&format!(
            "{}&RoleArn=x",
            url(
                "127.0.0.1:4566",
                "20261204T105500Z",
                "host%3Bx-k8s-aws-id",
                60
            )
        ));
        assert!(parse_token(&stray, "c", ours, now).is_err());
        assert!(parse_token("k8s-aws-v1.%%%", "c", ours, now).is_err());
        assert!(parse_token("not-an-aws-token", "c", ours, now).is_err());
    }

    #[test]
    fn arns_are_canonicalised_as_eks_does() {
        assert_eq!(
            canonical_arn(
                "arn:aws:sts::123456789012:assumed-role/Console-Viewer/botocore-session-1"
            ),
            "arn:aws:iam::123456789012:role/console-viewer"
        );
        assert_eq!(
            canonical_arn("arn:aws:iam::123456789012:role/teams/data/Console-Viewer"),
            "arn:aws:iam::123456789012:role/console-viewer"
        );
        assert_eq!(
            canonical_arn("arn:aws:iam::123456789012:user/ops/alice"),
            "arn:aws:iam::123456789012:user/ops/alice"
        );
    }

    #[test]
    fn aws_auth_maps_roles_users_and_templates() {
        let cm = json!({"data": {
            "mapRoles": "- rolearn: arn:aws:iam::123456789012:role/team/viewer\n  username: viewer:{{SessionName}}\n  groups:\n  - eks-console-dashboard-full-access-group\n",
            "mapUsers": "- userarn: arn:aws:iam::123456789012:user/alice\n  username: alice\n  groups: [system:masters]\n",
        }});
        let session = CallerIdentity {
            arn: "arn:aws:sts::123456789012:assumed-role/viewer/jane@example.com".into(),
            account: "123456789012".into(),
            user_id: "AROA:jane".into(),
        };
        let (user, groups) = aws_auth_mapping(&cm, &session).unwrap();
        assert_eq!(
            expand(&user, &session, "ASIA1").unwrap(),
            "viewer:jane-example.com"
        );
        assert_eq!(groups, vec!["eks-console-dashboard-full-access-group"]);
        let alice = CallerIdentity {
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            account: "123456789012".into(),
            user_id: "AIDA".into(),
        };
        assert_eq!(aws_auth_mapping(&cm, &alice).unwrap().0, "alice");
        assert!(expand("x-{{SessionName}}", &alice, "AKIA").is_err());
        let stranger = CallerIdentity {
            arn: "arn:aws:sts::123456789012:assumed-role/other/s".into(),
            ..alice.clone()
        };
        assert!(aws_auth_mapping(&cm, &stranger).is_none());
        assert_eq!(
            expand("{{AccountID}}-{{AccessKeyID}}", &stranger, "ASIA2").unwrap(),
            "123456789012-ASIA2"
        );
    }

    #[test]
    fn access_policies_correspond_to_roles() {
        let view =
            access_policy_rules("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
                .unwrap();
        let list_pods = super::super::rbac::Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: "a".into(),
            ..Default::default()
        };
        assert!(view
            .iter()
            .any(|r| super::super::rbac::rule_allows(r, &list_pods)));
        let get_secret = super::super::rbac::Attributes {
            verb: "get".into(),
            resource: "secrets".into(),
            namespace: "a".into(),
            ..Default::default()
        };
        assert!(!view
            .iter()
            .any(|r| super::super::rbac::rule_allows(r, &get_secret)));
        for name in [
            "AmazonEKSClusterAdminPolicy",
            "AmazonEKSAdminPolicy",
            "AmazonEKSEditPolicy",
            "AmazonEMRJobPolicy",
        ] {
            assert!(
                access_policy_rules(&format!("arn:aws:eks::aws:cluster-access-policy/{name}"))
                    .is_some(),
                "{name}"
            );
        }
        assert!(access_policy_rules("arn:aws:eks::aws:cluster-access-policy/Nope").is_none());
    }

    struct Fake {
        entry: Option<AccessEntry>,
    }

    impl AwsTokenVerifier for Fake {
        fn cluster_name(&self) -> String {
            "c".into()
        }
        fn endpoint_host(&self) -> Option<String> {
            None
        }
        fn cluster_creator_arn(&self) -> String {
            "arn:aws:iam::123456789012:root".into()
        }
        fn verify<'a>(
            &'a self,
            _: &'a PresignedRequest,
        ) -> BoxFuture<'a, Result<CallerIdentity, String>> {
            Box::pin(async { Err("not used".to_string()) })
        }
        fn access_entry<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Option<AccessEntry>> {
            let found = (arn == "arn:aws:iam::123456789012:role/entry")
                .then(|| self.entry.clone())
                .flatten();
            Box::pin(async move { found })
        }
    }

    fn caller(arn: &str) -> CallerIdentity {
        CallerIdentity {
            arn: arn.into(),
            account: "123456789012".into(),
            user_id: "x".into(),
        }
    }

    #[tokio::test]
    async fn creator_then_access_entries_then_aws_auth() {
        let registry = Registry::new();
        registry
            .create(
                CONFIGMAPS.resource(),
                "kube-system",
                json!({"metadata": {"name": "aws-auth"}, "data": {"mapRoles":
                    "- rolearn: arn:aws:iam::123456789012:role/entry\n  username: from-configmap\n- rolearn: arn:aws:iam::123456789012:role/mapped\n  username: mapped\n  groups: [g]\n"}}),
            )
            .unwrap();
        let fake = Fake {
            entry: Some(AccessEntry {
                username: "arn:aws:sts::123456789012:assumed-role/entry/{{SessionName}}".into(),
                groups: vec![],
                policies: vec![PolicyAssociation {
                    policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy".into(),
                    namespaces: vec!["a".into()],
                }],
            }),
        };
        let admin = map_identity(
            &registry,
            &fake,
            &caller("arn:aws:iam::123456789012:root"),
            "AKIA",
        )
        .await
        .unwrap();
        assert_eq!(admin.name, CLUSTER_CREATOR_USER);
        assert!(admin.is_master());
        // The access entry wins over aws-auth.
        let entry = map_identity(
            &registry,
            &fake,
            &caller("arn:aws:sts::123456789012:assumed-role/entry/s1"),
            "ASIA",
        )
        .await
        .unwrap();
        assert_eq!(
            entry.name,
            "arn:aws:sts::123456789012:assumed-role/entry/s1"
        );
        assert_eq!(entry.groups, vec!["system:authenticated".to_string()]);
        assert_eq!(entry.access_policies.len(), 1);
        let list_pods = |ns: &str| super::super::rbac::Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: ns.into(),
            ..Default::default()
        };
        assert!(super::super::rbac::allowed(
            &registry,
            &entry,
            &list_pods("a")
        ));
        assert!(!super::super::rbac::allowed(
            &registry,
            &entry,
            &list_pods("b")
        ));
        assert!(!super::super::rbac::allowed(
            &registry,
            &entry,
            &list_pods("")
        ));
        let mapped = map_identity(
            &registry,
            &fake,
            &caller("arn:aws:sts::123456789012:assumed-role/mapped/s"),
            "ASIA",
        )
        .await
        .unwrap();
        assert_eq!(mapped.name, "mapped");
        assert_eq!(
            mapped.groups,
            vec!["g".to_string(), "system:authenticated".into()]
        );
        assert!(map_identity(
            &registry,
            &fake,
            &caller("arn:aws:sts::123456789012:assumed-role/nobody/s"),
            "ASIA"
        )
        .await
        .is_none());
    }
}
