//! SigV4 authentication of incoming requests, as an axum middleware.
//!
//! Every request must be signed with a key from the [`Keyring`]. A refused request gets AWS's
//! error (HTTP 403 with AWS's code and message) and never reaches the service, so it changes
//! nothing. The error's wire shape follows the protocol of the service named in the
//! credential scope (see [`ErrorProtocol`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};

pub use crate::keyring::{AccessKey, KeyOwner, KeyRecord, Keyring, Session, SessionCredentials};
use crate::sigv4::{self, AuthFailure, Location, RequestParts, SignatureClaim};
use crate::{AwsError, Principal};

/// Largest body the verifier buffers to hash it. Bodies whose hash the client declares as
/// `UNSIGNED-PAYLOAD` or `STREAMING-…` (S3 uploads) are passed through unbuffered instead.
pub const MAX_BUFFERED_BODY: usize = 16 * 1024 * 1024;

/// How far `X-Amz-Date` may be from the server clock, as in AWS.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// axum middleware: verify SigV4, put the [`Principal`] in the request extensions.
pub async fn authenticate(
    State(keyring): State<Arc<Keyring>>,
    request: Request,
    next: Next,
) -> Response {
    match verify(&keyring, request, Utc::now()).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// A refused request: why, and for which service (which decides the error's wire shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub service: Option<String>,
    pub failure: AuthFailure,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        ErrorProtocol::for_service(self.service.as_deref()).render(&self.failure)
    }
}

/// The error shapes of AWS protocols. Chosen from the credential scope's service because the
/// middleware sits in front of every service; requests without a scope (unsigned) get the
/// default, rest-json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorProtocol {
    /// `x-amzn-ErrorType` + `{"__type","message"}`: rest-json and json-1.1 services
    /// (emr-containers, CloudWatch Logs, EKS).
    RestJson,
    /// `<ErrorResponse><Error><Type>Sender</Type><Code>…`: the query protocol of IAM and STS
    /// (added with `sparkyard-services`). S3 never reaches this middleware: `s3s` verifies
    /// S3's signatures and renders S3's own errors.
    Query { xmlns: &'static str },
}

impl ErrorProtocol {
    pub fn for_service(service: Option<&str>) -> Self {
        match service {
            Some("iam") => Self::Query {
                xmlns: "https://iam.amazonaws.com/doc/2010-05-08/",
            },
            Some("sts") => Self::Query {
                xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
            },
            _ => Self::RestJson,
        }
    }

    pub fn render(self, failure: &AuthFailure) -> Response {
        match self {
            Self::RestJson => rest_json_error(failure).into_response(),
            Self::Query { xmlns } => query_error(failure, xmlns),
        }
    }
}

/// The query protocol's rendering: the JSON services' status and message, with the codes
/// IAM and STS use (`InvalidClientTokenId`, `SignatureDoesNotMatch`, …).
pub fn query_error(failure: &AuthFailure, xmlns: &str) -> Response {
    let json = rest_json_error(failure);
    let code = match json.code {
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        other => other.strip_suffix("Exception").unwrap_or(other),
    };
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error></ErrorResponse>\n",
        escape(&json.message)
    );
    (
        json.status,
        [(axum::http::header::CONTENT_TYPE, "text/xml")],
        body,
    )
        .into_response()
}

/// The codes and messages AWS's JSON services use for each failure.
pub fn rest_json_error(failure: &AuthFailure) -> AwsError {
    use AuthFailure::*;
    let forbidden = |code, message: &str| AwsError::new(StatusCode::FORBIDDEN, code, message);
    match failure {
        MissingAuthenticationToken => forbidden("MissingAuthenticationTokenException", "Missing Authentication Token"),
        IncompleteSignature(m) => forbidden("IncompleteSignatureException", m),
        InvalidSignature(m) | SignatureExpired(m) | SignatureNotYetCurrent(m) | PresignedExpired(m) => {
            forbidden("InvalidSignatureException", m)
        }
        SignatureDoesNotMatch => forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        UnrecognizedClient | InvalidSecurityToken => {
            forbidden("UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        ExpiredToken => forbidden("ExpiredTokenException", "The security token included in the request is expired"),
        ContentSha256Mismatch => AwsError::new(
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        BodyTooLarge { limit } => AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("Request body is larger than the {limit} bytes a signed request may carry."),
        ),
        BodyUnreadable(m) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("Could not read the request body: {m}"),
        ),
    }
}

/// Verifies `request` at time `now`. On success the request comes back with its body restored
/// and the [`Principal`] in its extensions.
pub async fn verify(
    keyring: &Keyring,
    request: Request,
    now: DateTime<Utc>,
) -> Result<Request, Refusal> {
    let (mut parts, body) = request.into_parts();
    // Behind `Router::nest` the URI has lost its prefix; the client signed the original.
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| o.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let refuse = |service: Option<&str>, failure| Refusal {
        service: service.map(str::to_string),
        failure,
    };

    let claim = SignatureClaim::from_request(&uri, &parts.headers).map_err(|f| refuse(None, f))?;
    let service = claim.scope.service.clone();
    let refuse = |failure| refuse(Some(&service), failure);

    let record = keyring
        .lookup(&claim.access_key_id)
        .ok_or_else(|| refuse(AuthFailure::UnrecognizedClient))?;
    check_session(&record, claim.session_token.as_deref(), now).map_err(refuse)?;
    check_time(&claim, now).map_err(refuse)?;

    let declared = parts
        .headers
        .get("x-amz-content-sha256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    let presigned = matches!(claim.location, Location::Query { .. });
    let (payload_hash, body) = match &declared {
        Some(declared) => (declared.clone(), Payload::Unread(body)),
        // A presigned S3 URL cannot commit to a body it has not seen.
        None if presigned && service == "s3" => {
            (sigv4::UNSIGNED_PAYLOAD.to_string(), Payload::Unread(body))
        }
        None => {
            let bytes = buffer(&parts.headers, body).await.map_err(refuse)?;
            (sigv4::sha256_hex(&bytes), Payload::Buffered(bytes))
        }
    };
    let host_fallback = uri.authority().map(|a| a.as_str().to_string());
    let request_parts = RequestParts {
        method: parts.method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers: &parts.headers,
        host_fallback: host_fallback.as_deref(),
    };
    let canonical = sigv4::canonical_request(
        &request_parts,
        &service,
        &claim.signed_headers,
        presigned,
        &payload_hash,
    );
    let string_to_sign = sigv4::string_to_sign(&claim.amz_date, &claim.scope, &canonical);
    let key = sigv4::signing_key(&record.secret_access_key, &claim.scope);
    if !sigv4::verify_signature(&key, &string_to_sign, &claim.signature) {
        // What we hashed, so a client author can diff it against their own canonical request.
        tracing::debug!(access_key_id = %claim.access_key_id, %canonical, %string_to_sign, "SigV4 signature mismatch");
        return Err(refuse(AuthFailure::SignatureDoesNotMatch));
    }

    // Only a signed request gets to learn that its declared body hash is wrong.
    let body = match (body, declared) {
        (Payload::Buffered(bytes), _) => Body::from(bytes),
        (Payload::Unread(body), Some(d))
            if d != sigv4::UNSIGNED_PAYLOAD && !d.starts_with("STREAMING-") =>
        {
            let bytes = buffer(&parts.headers, body).await.map_err(refuse)?;
            let actual = sigv4::sha256_hex(&bytes);
            if !sigv4::constant_time_eq(actual.as_bytes(), d.to_ascii_lowercase().as_bytes()) {
                return Err(refuse(AuthFailure::ContentSha256Mismatch));
            }
            Body::from(bytes)
        }
        // The body is not part of the signature: leave it streaming for the service.
        (Payload::Unread(body), _) => body,
    };

    parts.extensions.insert(Principal {
        access_key_id: claim.access_key_id,
        account_id: record.owner.account_id,
        arn: record.owner.arn,
        region: claim.scope.region,
        service,
    });
    Ok(Request::from_parts(parts, body))
}

/// The request body, either already read (to hash it) or still streaming.
enum Payload {
    Buffered(bytes::Bytes),
    Unread(Body),
}

/// Permanent keys must come without a token; temporary ones with exactly theirs, unexpired.
fn check_session(
    record: &KeyRecord,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AuthFailure> {
    match (&record.session, token) {
        (None, None) => Ok(()),
        (None, Some(_)) | (Some(_), None) => Err(AuthFailure::InvalidSecurityToken),
        (Some(session), Some(token)) => {
            if !sigv4::constant_time_eq(session.token.as_bytes(), token.as_bytes()) {
                Err(AuthFailure::InvalidSecurityToken)
            } else if session.expiration <= now {
                Err(AuthFailure::ExpiredToken)
            } else {
                Ok(())
            }
        }
    }
}

/// AWS's clock-skew rule, with its messages: a request is valid from `X-Amz-Date - 5 min`
/// until `X-Amz-Date + 5 min` (header form) or `X-Amz-Date + X-Amz-Expires` (presigned form).
fn check_time(claim: &SignatureClaim, now: DateTime<Utc>) -> Result<(), AuthFailure> {
    let fmt = sigv4::format_amz_date;
    let now_str = fmt(now);
    if claim.time > now + MAX_CLOCK_SKEW {
        return Err(AuthFailure::SignatureNotYetCurrent(format!(
            "Signature not yet current: {} is still later than {} ({now_str} + 5 min.)",
            claim.amz_date,
            fmt(now + MAX_CLOCK_SKEW)
        )));
    }
    match claim.location {
        Location::Header if claim.time < now - MAX_CLOCK_SKEW => {
            Err(AuthFailure::SignatureExpired(format!(
                "Signature expired: {} is now earlier than {} ({now_str} - 5 min.)",
                claim.amz_date,
                fmt(now - MAX_CLOCK_SKEW)
            )))
        }
        Location::Query { expires_secs } => {
            let expires_at = claim.time + Duration::seconds(expires_secs as i64);
            if now > expires_at {
                Err(AuthFailure::PresignedExpired(format!(
                    "Request has expired: it was valid until {} ({} + {expires_secs} sec.) and it is now {now_str}.",
                    fmt(expires_at),
                    claim.amz_date
                )))
            } else {
                Ok(())
            }
        }
        Location::Header => Ok(()),
    }
}

/// Reads the whole body, refusing early on a `Content-Length` over the cap.
async fn buffer(headers: &axum::http::HeaderMap, body: Body) -> Result<bytes::Bytes, AuthFailure> {
    let declared_len = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > MAX_BUFFERED_BODY as u64) {
        return Err(AuthFailure::BodyTooLarge {
            limit: MAX_BUFFERED_BODY,
        });
    }
    axum::body::to_bytes(body, MAX_BUFFERED_BODY)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                AuthFailure::BodyTooLarge {
                    limit: MAX_BUFFERED_BODY,
                }
            } else {
                AuthFailure::BodyUnreadable(inner.to_string())
            }
        })
}

#[cfg(test)]
mod tests;
