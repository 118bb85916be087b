//! The AWS client side of sparkyard: credentials (static, or web identity exchanged with STS),
//! S3 through `object_store`, and CloudWatch Logs through a small JSON-1.1 client.
//!
//! Choices, and why:
//! - **S3: `object_store` (AWS feature)**, not `aws-sdk-s3`. It is the lighter general client
//!   (its reqwest 0.13, quick-xml and rustls are already in this workspace; the SDK brings
//!   aws-config, the smithy runtime and hundreds of generated types, minutes of compile on
//!   this machine), it speaks path-style requests to a custom endpoint, and the same code
//!   runs against real S3. One gap: its own web-identity provider refuses plain-HTTP STS
//!   endpoints, and sparkyard's endpoint is `http://127.0.0.1:4750` by default, so the STS
//!   exchange is done here ([`credentials`]) and handed to `object_store` as a credential
//!   provider.
//! - **CloudWatch Logs: a JSON-1.1 client signed with `aws-sigv4`** ([`cloudwatch`]): four
//!   operations, one request shape; `aws-sigv4` is already a workspace dependency, while
//!   `aws-sdk-cloudwatchlogs` would bring the whole SDK runtime for them.
//!
//! Endpoints follow the AWS SDKs' environment: `AWS_ENDPOINT_URL_<SERVICE>`, then
//! `AWS_ENDPOINT_URL`, then AWS's regional endpoint ([`env::AwsEnv`]).

pub mod cloudwatch;
pub mod credentials;
pub mod env;
pub mod s3;

/// Installs ring as rustls's process-wide crypto provider. Both ring and aws-lc-rs are in
/// the dependency graph (kube, object_store), so rustls cannot choose by itself; the first
/// install wins and later calls are harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A request signed with SigV4 for `service` (the payload hash in `x-amz-content-sha256`,
/// which S3 requires and other services accept), ready for reqwest.
pub async fn signed_request(
    credentials: &credentials::CachedCredentials,
    service: &str,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<reqwest::Request> {
    use anyhow::Context;
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    };
    let creds = credentials.get().await?;
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token,
            None,
            "sparkyard",
        )
        .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .context("SigV4 parameters")?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .context("signable request")?;
    let (instructions, _) = sign(signable, &params)
        .context("SigV4 signing")?
        .into_parts();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(body)?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(reqwest::Request::try_from(
        request.map(reqwest::Body::from),
    )?)
}
