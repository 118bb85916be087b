//! Credentials: static keys, or a role assumed with a web-identity token (IRSA: a projected
//! service-account token exchanged with STS `AssumeRoleWithWebIdentity`), cached and
//! refreshed before they expire.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;

use super::env::AwsEnv;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Somewhere credentials come from.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    async fn fetch(&self) -> anyhow::Result<Credentials>;
}

/// A web-identity token (the content of `AWS_WEB_IDENTITY_TOKEN_FILE`, or one minted with
/// the Kubernetes TokenRequest API).
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> anyhow::Result<String>;
}

/// A token file; re-read on every exchange since the kubelet rotates it.
pub struct TokenFile(pub PathBuf);

#[async_trait]
impl TokenSource for TokenFile {
    async fn token(&self) -> anyhow::Result<String> {
        let text = tokio::fs::read_to_string(&self.0)
            .await
            .with_context(|| format!("cannot read the web identity token {}", self.0.display()))?;
        Ok(text.trim().to_string())
    }
}

pub struct StaticCredentials(pub Credentials);

#[async_trait]
impl CredentialSource for StaticCredentials {
    async fn fetch(&self) -> anyhow::Result<Credentials> {
        Ok(self.0.clone())
    }
}

/// `AssumeRoleWithWebIdentity`: unsigned, the token is the credential.
pub struct WebIdentity {
    pub http: reqwest::Client,
    pub sts_url: String,
    pub role_arn: String,
    pub session_name: String,
    pub token: Box<dyn TokenSource>,
}

#[async_trait]
impl CredentialSource for WebIdentity {
    async fn fetch(&self) -> anyhow::Result<Credentials> {
        let token = self.token.token().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &self.role_arn)
            .append_pair("RoleSessionName", &self.session_name)
            .append_pair("WebIdentityToken", &token)
            .finish();
        let response = self
            .http
            .post(&self.sts_url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach STS at {}", self.sts_url))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("cannot read the STS response")?;
        if !status.is_success() {
            return Err(anyhow!(
                "STS AssumeRoleWithWebIdentity for {} failed ({status}): {}",
                self.role_arn,
                sts_error(&text)
            ));
        }
        parse_assume_role_response(&text)
    }
}

/// The first `<tag>…</tag>` of an XML document (STS answers are flat enough for this).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `Code: Message` of an STS error document.
pub fn sts_error(xml: &str) -> String {
    match (xml_text(xml, "Code"), xml_text(xml, "Message")) {
        (Some(code), Some(message)) => format!("{code}: {}", unescape(message)),
        _ => xml.chars().take(300).collect(),
    }
}

/// The `Credentials` of an `AssumeRole*Response`.
pub fn parse_assume_role_response(xml: &str) -> anyhow::Result<Credentials> {
    let creds =
        xml_text(xml, "Credentials").ok_or_else(|| anyhow!("STS response has no Credentials"))?;
    let field = |name: &str| {
        xml_text(creds, name)
            .map(unescape)
            .ok_or_else(|| anyhow!("STS credentials lack {name}"))
    };
    let expires_at = field("Expiration")
        .ok()
        .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
        .map(|e| e.with_timezone(&Utc));
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
        expires_at,
    })
}

/// Credentials from a source, cached until five minutes before they expire.
pub struct CachedCredentials {
    source: Box<dyn CredentialSource>,
    cache: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedCredentials")
    }
}

impl CachedCredentials {
    pub fn new(source: Box<dyn CredentialSource>) -> Arc<Self> {
        Arc::new(Self {
            source,
            cache: Mutex::new(None),
        })
    }

    pub async fn get(&self) -> anyhow::Result<Credentials> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| fresh(c, Utc::now())) {
            return Ok(c.clone());
        }
        let fetched = self.source.fetch().await?;
        *cache = Some(fetched.clone());
        Ok(fetched)
    }
}

fn fresh(c: &Credentials, now: DateTime<Utc>) -> bool {
    c.expires_at.is_none_or(|e| e - now > Duration::minutes(5))
}

/// What the AWS SDKs would use in this process: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`
/// (IRSA) first, else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`[/`AWS_SESSION_TOKEN`].
pub fn from_env(env: &AwsEnv, http: reqwest::Client) -> anyhow::Result<Arc<CachedCredentials>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(role_arn), Some(token_file)) =
        (var("AWS_ROLE_ARN"), var("AWS_WEB_IDENTITY_TOKEN_FILE"))
    {
        let session_name = var("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("sparkyard-{}", Utc::now().timestamp()));
        return Ok(CachedCredentials::new(Box::new(WebIdentity {
            http,
            sts_url: env.sts_url(),
            role_arn,
            session_name,
            token: Box::new(TokenFile(token_file.into())),
        })));
    }
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(CachedCredentials::new(Box::new(StaticCredentials(
            Credentials { access_key_id, secret_access_key, session_token: var("AWS_SESSION_TOKEN"), expires_at: None },
        )))),
        _ => Err(anyhow!(
            "no AWS credentials: set AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>se/cr+et&amp;</SecretAccessKey>
      <SessionToken>tok</SessionToken>
      <Expiration>2026-11-23T22:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn parses_sts_credentials() {
        let c = parse_assume_role_response(RESPONSE).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key, "se/cr+et&");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert_eq!(
            c.expires_at.unwrap().to_rfc3339(),
            "2026-11-23T22:00:00+00:00"
        );
        assert!(
            !format!("{c:?}").contains("se/cr"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn sts_errors_read_well() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>";
        assert_eq!(
            sts_error(xml),
            "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"
        );
    }

    #[test]
    fn refreshes_five_minutes_early() {
        let now = Utc::now();
        let c = |mins| Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
            expires_at: Some(now + Duration::minutes(mins)),
        };
        assert!(fresh(&c(30), now));
        assert!(!fresh(&c(4), now));
    }
}
