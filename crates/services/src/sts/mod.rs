//! STS (query protocol, `Version=2011-06-15`): `GetCallerIdentity`, `AssumeRole` and
//! `AssumeRoleWithWebIdentity`, the exchange at the heart of EKS's IAM roles for service
//! accounts (IRSA). [`Sts::verify_presigned_caller_identity`] answers a presigned
//! `GetCallerIdentity` URL in process — what EKS's authenticator asks STS for an
//! `aws eks get-token` token ([`presigned`]).
//!
//! `AssumeRoleWithWebIdentity` is unsigned in AWS (the token is the credential), so the
//! endpoint routes it here without SigV4. The token is a Kubernetes service-account JWT;
//! checking its signature is the embedded cluster's business, reached through
//! [`WebIdentityVerifier`] so this crate does not depend on the cluster crate.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use sparkyard_aws::keyring::{KeyOwner, Keyring};
use sparkyard_aws::Principal;

use crate::authz::{eval, Caller, Decision, PolicyKind, RequestContext};
use crate::iam::Iam;
use crate::wire::{fragment, iso8601, query_response, QueryError, QueryParams};

pub mod presigned;
pub use presigned::CallerIdentity;

pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The audience EKS's pod-identity webhook requests for projected tokens, and the client id
/// the cluster's OIDC provider is registered with.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// What a verified web-identity token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    /// `iss`, e.g. `https://oidc.eks.us-east-2.amazonaws.com/id/ABC`.
    pub issuer: String,
    /// `sub`, e.g. `system:serviceaccount:<ns>:<sa>`.
    pub subject: String,
    pub audiences: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Past its `exp`.
    Expired,
    /// Malformed, badly signed, or from another issuer; the text says which.
    Invalid(String),
}

/// Verifies web-identity tokens: the embedded cluster's service-account token issuer
/// implements it (wired in the binary); tests may use their own issuer.
pub trait WebIdentityVerifier: Send + Sync {
    /// The OIDC issuer URL (`https://…`) the tokens carry in `iss`; EKS `DescribeCluster`
    /// reports it as `identity.oidc.issuer`.
    fn issuer(&self) -> String;
    /// Checks signature, issuer and expiry (not the audience: STS checks that).
    fn verify(&self, token: &str) -> Result<WebIdentity, VerifyError>;
}

pub struct Sts {
    keyring: Arc<Keyring>,
    iam: Arc<Iam>,
    verifier: Option<Arc<dyn WebIdentityVerifier>>,
    account_id: String,
    /// Identity policies of role sessions (`sts:AssumeRole` is an action they need).
    authorizer: crate::authz::Authorizer,
}

/// `https://host/path` → `host/path`: how IAM names an OIDC provider and its condition keys.
pub fn provider_id(issuer: &str) -> &str {
    issuer
        .strip_prefix("https://")
        .unwrap_or(issuer)
        .trim_end_matches('/')
}

fn not_authorized() -> QueryError {
    QueryError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
}

/// What AssumeRole and AssumeRoleWithWebIdentity both refuse: a session name outside
/// STS's pattern, and session policies (not supported here).
fn check_session_request(session_name: &str, p: &QueryParams) -> Result<(), QueryError> {
    if !session_name_ok(session_name) {
        return Err(QueryError::validation(format!(
        "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    if p.get("Policy").is_some() || p.get("PolicyArns.member.1.arn").is_some() {
        return Err(QueryError::validation(
            "Session policies are not supported by sparkyard's STS.",
        ));
    }
    Ok(())
}

fn session_name_ok(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

impl Sts {
    pub fn new(
        keyring: Arc<Keyring>,
        iam: Arc<Iam>,
        verifier: Option<Arc<dyn WebIdentityVerifier>>,
        account_id: &str,
    ) -> Self {
        Self {
            authorizer: crate::authz::Authorizer::new(iam.clone()),
            keyring,
            iam,
            verifier,
            account_id: account_id.to_string(),
        }
    }

    /// Serves a signed request.
    pub async fn handle(
        &self,
        principal: &Principal,
        params: &QueryParams,
        request_id: &str,
    ) -> Response {
        let action = params.action().unwrap_or("");
        let result = match action {
            // Always allowed in AWS, even with every permission denied.
            "GetCallerIdentity" => Ok(self.get_caller_identity(principal).await),
            "AssumeRoleWithWebIdentity" => self.assume_role_with_web_identity(params).await,
            "AssumeRole" => self.assume_role(principal, params).await,
            "" => Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "MissingAction",
                "Missing Action",
            )),
            other => Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {other} for version 2011-06-15"),
            )),
        };
        match result {
            Ok(xml) => query_response(action, XMLNS, Some(&xml), request_id),
            Err(e) => e.into_response(XMLNS, request_id),
        }
    }

    /// Serves the unsigned `AssumeRoleWithWebIdentity`.
    pub async fn handle_unsigned(&self, params: &QueryParams, request_id: &str) -> Response {
        match self.assume_role_with_web_identity(params).await {
            Ok(xml) => query_response("AssumeRoleWithWebIdentity", XMLNS, Some(&xml), request_id),
            Err(e) => e.into_response(XMLNS, request_id),
        }
    }

    async fn get_caller_identity(&self, principal: &Principal) -> String {
        let user_id = self.user_id(&principal.arn, &principal.account_id).await;
        fragment(|x| {
            x.text("Arn", &principal.arn)
                .text("UserId", &user_id)
                .text("Account", &principal.account_id);
        })
    }

    /// GetCallerIdentity's `UserId`: `<role id>:<session>` for role sessions, else the
    /// account id (the root user's id).
    async fn user_id(&self, arn: &str, account_id: &str) -> String {
        match Caller::from_arn(arn) {
            Caller::AssumedRole {
                role_name,
                session_name,
                ..
            } => {
                let role_id = self
                    .iam
                    .get_role(&role_name)
                    .await
                    .map(|r| r.role_id)
                    .unwrap_or_else(|| "AROA".into());
                format!("{role_id}:{session_name}")
            }
            // The root user's id is the account id.
            _ => account_id.to_string(),
        }
    }

    /// Answers a presigned `GetCallerIdentity` URL (`aws eks get-token`'s token) as STS
    /// would: its SigV4 query signature checked against the keyring, the caller returned.
    /// The validity window is the EKS authenticator's, checked by the caller.
    pub async fn verify_presigned_caller_identity(
        &self,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<CallerIdentity, String> {
        let owner = presigned::verify(&self.keyring, uri, headers, Utc::now())?;
        let user_id = self.user_id(&owner.arn, &owner.account_id).await;
        Ok(CallerIdentity {
            arn: owner.arn,
            account: owner.account_id,
            user_id,
        })
    }

    /// `AssumeRole`: a signed caller becomes a session of a role whose trust policy names
    /// it (its ARN, its role for a role session, or its account) and whose identity policy
    /// allows `sts:AssumeRole` on the role.
    /// The role `arn:aws:iam::<account>:role/<path><name>` names, if it exists in this
    /// account (a malformed ARN is a validation error; an absent role is the caller's
    /// refusal to word).
    async fn role_in_account(
        &self,
        role_arn: &str,
    ) -> Result<Option<crate::iam::Role>, QueryError> {
        let (account, resource) = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(":role/"))
            .ok_or_else(|| QueryError::validation(format!("{role_arn} is invalid")))?;
        let name = resource.rsplit('/').next().unwrap_or(resource);
        Ok(self
            .iam
            .get_role(name)
            .await
            .filter(|r| r.arn == role_arn && account == self.account_id))
    }

    async fn assume_role(
        &self,
        principal: &Principal,
        p: &QueryParams,
    ) -> Result<String, QueryError> {
        let role_arn = p.required("RoleArn")?;
        let session_name = p.required("RoleSessionName")?;
        check_session_request(session_name, p)?;
        let denied = || {
            QueryError::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                principal.arn
            ))
        };
        self.authorizer
            .authorize(principal, "sts:AssumeRole", role_arn)
            .map_err(|_| denied())?;
        let role = self.role_in_account(role_arn).await?.ok_or_else(denied)?;
        let trust = crate::authz::policy::parse(&role.trust_policy, PolicyKind::Trust)
            .map_err(|_| denied())?;
        let ctx = RequestContext::new("sts:AssumeRole", &role.arn)
            .with_key("aws:PrincipalArn", &principal.arn)
            .with_key("aws:PrincipalAccount", &principal.account_id);
        // The names a trust policy may use for this caller.
        let mut names = vec![
            principal.arn.clone(),
            format!("arn:aws:iam::{}:root", principal.account_id),
            principal.account_id.clone(),
        ];
        if let Caller::AssumedRole { role_name, .. } = Caller::from_arn(&principal.arn) {
            if let Some(r) = self.iam.get_role(&role_name).await {
                names.push(r.arn);
            }
        }
        let decisions: Vec<Decision> = names
            .iter()
            .map(|n| eval::trust_allows(&trust, "AWS", n, &ctx))
            .collect();
        if decisions.contains(&Decision::ExplicitDeny) || !decisions.contains(&Decision::Allow) {
            return Err(denied());
        }
        let duration = session_duration(p.get("DurationSeconds"), role.max_session_duration)?;
        let assumed_arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            self.account_id, role.name
        );
        let credentials = self
            .keyring
            .issue_session(
                KeyOwner {
                    account_id: self.account_id.clone(),
                    arn: assumed_arn.clone(),
                },
                Utc::now() + Duration::seconds(duration),
            )
            .map_err(|e| {
                tracing::error!(error = %e, "cannot persist session credentials");
                QueryError::internal("An internal error occurred.")
            })?;
        Ok(fragment(|x| {
            x.open("AssumedRoleUser")
                .text("Arn", &assumed_arn)
                .text("AssumedRoleId", &format!("{}:{session_name}", role.role_id))
                .close("AssumedRoleUser")
                .open("Credentials")
                .text("AccessKeyId", &credentials.key.access_key_id)
                .text("SecretAccessKey", &credentials.key.secret_access_key)
                .text("SessionToken", &credentials.session_token)
                .text("Expiration", &iso8601(credentials.expiration))
                .close("Credentials");
        }))
    }

    async fn assume_role_with_web_identity(&self, p: &QueryParams) -> Result<String, QueryError> {
        let role_arn = p.required("RoleArn")?;
        let session_name = p.required("RoleSessionName")?;
        let token = p.required("WebIdentityToken")?;
        check_session_request(session_name, p)?;
        let verifier = self.verifier.as_ref().ok_or_else(|| {
            QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for this token: the embedded cluster's token issuer is not running.",
            )
        })?;
        let identity = verifier.verify(token).map_err(|e| match e {
            VerifyError::Expired => QueryError::new(
                StatusCode::BAD_REQUEST,
                "ExpiredTokenException",
                "Token expired: current date/time must be before the expiration date/time.",
            ),
            VerifyError::Invalid(why) => {
                QueryError::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", why)
            }
        })?;
        if !identity.audiences.iter().any(|a| a == STS_AUDIENCE) {
            return Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidIdentityToken",
                "Incorrect token audience",
            ));
        }

        // The role: `arn:aws:iam::<account>:role/<path><name>`, in this account, existing.
        let role = self
            .role_in_account(role_arn)
            .await?
            .ok_or_else(not_authorized)?;

        // The trust policy must admit this provider and this subject.
        let trust = crate::authz::policy::parse(&role.trust_policy, PolicyKind::Trust)
            .map_err(|_| not_authorized())?;
        let provider = provider_id(&identity.issuer);
        let provider_arn = format!("arn:aws:iam::{}:oidc-provider/{provider}", self.account_id);
        let ctx = RequestContext::new("sts:AssumeRoleWithWebIdentity", &role.arn)
            .with_key(&format!("{provider}:sub"), &identity.subject)
            .with_key(&format!("{provider}:aud"), STS_AUDIENCE);
        if eval::trust_allows(&trust, "Federated", &provider_arn, &ctx) != Decision::Allow {
            return Err(not_authorized());
        }

        let duration = session_duration(p.get("DurationSeconds"), role.max_session_duration)?;
        let assumed_arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            self.account_id, role.name
        );
        let owner = KeyOwner {
            account_id: self.account_id.clone(),
            arn: assumed_arn.clone(),
        };
        let credentials = self
            .keyring
            .issue_session(owner, Utc::now() + Duration::seconds(duration))
            .map_err(|e| {
                tracing::error!(error = %e, "cannot persist session credentials");
                QueryError::internal("An internal error occurred.")
            })?;
        Ok(fragment(|x| {
            x.text("SubjectFromWebIdentityToken", &identity.subject)
                .text("Audience", STS_AUDIENCE)
                .open("AssumedRoleUser")
                .text("Arn", &assumed_arn)
                .text("AssumedRoleId", &format!("{}:{session_name}", role.role_id))
                .close("AssumedRoleUser")
                .open("Credentials")
                .text("AccessKeyId", &credentials.key.access_key_id)
                .text("SecretAccessKey", &credentials.key.secret_access_key)
                .text("SessionToken", &credentials.session_token)
                .text("Expiration", &iso8601(credentials.expiration))
                .close("Credentials")
                .text("Provider", provider);
        }))
    }
}

/// `DurationSeconds` of an AssumeRole call: 1 h (or the role's maximum, if lower) when
/// absent; 900 s up to the role's `MaxSessionDuration`, with STS's messages otherwise.
fn session_duration(requested: Option<&str>, max: i64) -> Result<i64, QueryError> {
    match requested {
        None => Ok(3600.min(max)),
        Some(v) => match v.parse::<i64>() {
            Ok(d) if (900..=max).contains(&d) => Ok(d),
            Ok(d) if d > max => Err(QueryError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )),
            _ => Err(QueryError::validation(format!(
                "1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        assert_eq!(
            provider_id("https://oidc.eks.us-east-2.amazonaws.com/id/AB"),
            "oidc.eks.us-east-2.amazonaws.com/id/AB"
        );
        assert_eq!(provider_id("https://127.0.0.1:6443/"), "127.0.0.1:6443");
    }

    #[test]
    fn session_names() {
        assert!(session_name_ok("botocore-session-1700000000"));
        assert!(!session_name_ok("x"));
        assert!(!session_name_ok("a b"));
    }
}
