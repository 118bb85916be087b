//! The pure half of SigV4: parse what the client claims to have signed, rebuild the canonical
//! request from the request exactly as it arrived, and compute the signature.
//!
//! Nothing here does I/O or reads the clock; [`crate::auth`] feeds it the request, the secret
//! and the current time. The canonical request is rebuilt from the raw wire form (raw path,
//! raw query, the client's own `SignedHeaders` list) rather than from a normalised request,
//! because a verifier has to reproduce the bytes the *client* hashed.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{KeyInit, Mac};
use http::{HeaderMap, Uri};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const TERMINATOR: &str = "aws4_request";
/// `x-amz-content-sha256` value S3 clients send when they do not hash the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `X-Amz-Date` / credential-scope timestamp format (ISO 8601 basic, UTC).
pub const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Longest validity AWS allows for a presigned request (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX` (upper-case hex).
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` so a path keeps its segments.
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a request could not be authenticated. Protocol-neutral: each AWS protocol renders it
/// with its own codes (see `crate::auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Neither an `Authorization` header nor presigned query parameters.
    MissingAuthenticationToken,
    /// The signature information is malformed or incomplete.
    IncompleteSignature(String),
    /// Well-formed, but the scope or date cannot be accepted (e.g. scope date ≠ request date).
    InvalidSignature(String),
    /// The signature does not match the one we computed.
    SignatureDoesNotMatch,
    /// `X-Amz-Date` is further in the past than the allowed skew.
    SignatureExpired(String),
    /// `X-Amz-Date` is further in the future than the allowed skew.
    SignatureNotYetCurrent(String),
    /// A presigned request used after `X-Amz-Date + X-Amz-Expires`.
    PresignedExpired(String),
    /// The access key id is not in the keyring.
    UnrecognizedClient,
    /// A session token was sent that does not belong to the access key (or none was sent for
    /// temporary credentials).
    InvalidSecurityToken,
    /// Temporary credentials past their expiration.
    ExpiredToken,
    /// The body does not hash to the declared `x-amz-content-sha256`.
    ContentSha256Mismatch,
    /// The body is larger than the verifier buffers.
    BodyTooLarge { limit: usize },
    /// The body could not be read.
    BodyUnreadable(String),
}

/// `<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    pub fn new(
        date: impl Into<String>,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            date: date.into(),
            region: region.into(),
            service: service.into(),
        }
    }

    pub fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// Where the client put its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `Authorization: AWS4-HMAC-SHA256 …`.
    Header,
    /// `?X-Amz-Algorithm=…&X-Amz-Signature=…`, valid for `expires_secs` after `X-Amz-Date`.
    Query { expires_secs: u64 },
}

/// Everything the client claims about its signature, parsed from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureClaim {
    pub access_key_id: String,
    pub scope: CredentialScope,
    /// The client's `SignedHeaders` value, verbatim: it goes into the canonical request as is.
    pub signed_headers: String,
    /// Lower-case hex as sent.
    pub signature: String,
    /// `X-Amz-Date` as sent; it goes into the string to sign verbatim.
    pub amz_date: String,
    pub time: DateTime<Utc>,
    pub location: Location,
    /// `X-Amz-Security-Token`, from the header or the query.
    pub session_token: Option<String>,
}

impl SignatureClaim {
    /// Reads the signature claim from the request head. `Err(MissingAuthenticationToken)` when
    /// the request carries no SigV4 information at all.
    pub fn from_request(uri: &Uri, headers: &HeaderMap) -> Result<Self, AuthFailure> {
        let query = parse_query(uri.query().unwrap_or(""));
        let presigned = query.iter().any(|(k, _)| {
            matches!(
                k.as_str(),
                "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"
            )
        });
        match headers.get(http::header::AUTHORIZATION) {
            Some(_) if presigned => Err(AuthFailure::IncompleteSignature(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified".into(),
            )),
            Some(value) => Self::from_header(&String::from_utf8_lossy(value.as_bytes()), headers),
            None if presigned => Self::from_query(&query),
            None => Err(AuthFailure::MissingAuthenticationToken),
        }
    }

    fn from_header(authorization: &str, headers: &HeaderMap) -> Result<Self, AuthFailure> {
        let incomplete = |what: String| AuthFailure::IncompleteSignature(what);
        let rest = authorization.trim();
        let (algorithm, params) = rest.split_once(' ').unwrap_or((rest, ""));
        if algorithm != ALGORITHM {
            // AWS answers an unknown scheme with the same "requires …" list as an empty header.
            let date_missing = amz_date_header(headers).is_none();
            return Err(incomplete(missing_parameters_message(
                true,
                true,
                true,
                date_missing,
                authorization,
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for piece in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = piece.split_once('=') else {
                return Err(incomplete(format!(
                    "'{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
                )));
            };
            match key.trim() {
                "Credential" => credential = Some(value.trim().to_string()),
                "SignedHeaders" => signed_headers = Some(value.trim().to_string()),
                "Signature" => signature = Some(value.trim().to_string()),
                // AWS ignores parameters it does not know.
                _ => {}
            }
        }
        let amz_date = amz_date_header(headers);
        if credential.is_none()
            || signed_headers.is_none()
            || signature.is_none()
            || amz_date.is_none()
        {
            return Err(incomplete(missing_parameters_message(
                credential.is_none(),
                signature.is_none(),
                signed_headers.is_none(),
                amz_date.is_none(),
                authorization,
            )));
        }
        let (credential, signed_headers, signature, amz_date) = (
            credential.unwrap(),
            signed_headers.unwrap(),
            signature.unwrap(),
            amz_date.unwrap(),
        );
        let (access_key_id, scope) = parse_credential(&credential)?;
        check_signed_headers(&signed_headers, false)?;
        let time = parse_amz_date(&amz_date)?;
        check_scope_date(&scope, &amz_date)?;
        let session_token = headers
            .get("x-amz-security-token")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(Self {
            access_key_id,
            scope,
            signed_headers,
            signature,
            amz_date,
            time,
            location: Location::Header,
            session_token,
        })
    }

    fn from_query(query: &[(String, String)]) -> Result<Self, AuthFailure> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (
            Some(algorithm),
            Some(credential),
            Some(signature),
            Some(amz_date),
            Some(signed_headers),
            Some(expires),
        ) = (
            get("X-Amz-Algorithm"),
            get("X-Amz-Credential"),
            get("X-Amz-Signature"),
            get("X-Amz-Date"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Expires"),
        )
        else {
            return Err(AuthFailure::IncompleteSignature(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.".into(),
            ));
        };
        if algorithm != ALGORITHM {
            return Err(AuthFailure::IncompleteSignature(format!(
                "X-Amz-Algorithm only supports \"{ALGORITHM}\", not \"{algorithm}\"."
            )));
        }
        let expires_secs: u64 = expires.parse().map_err(|_| {
            AuthFailure::IncompleteSignature(format!(
                "X-Amz-Expires should be a number, not '{expires}'."
            ))
        })?;
        if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
            return Err(AuthFailure::IncompleteSignature(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECS}"
            )));
        }
        let (access_key_id, scope) = parse_credential(&credential)?;
        check_signed_headers(&signed_headers, true)?;
        let time = parse_amz_date(&amz_date)?;
        check_scope_date(&scope, &amz_date)?;
        Ok(Self {
            access_key_id,
            scope,
            signed_headers,
            signature,
            amz_date,
            time,
            location: Location::Query { expires_secs },
            session_token: get("X-Amz-Security-Token"),
        })
    }
}

fn amz_date_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

/// AWS lists every missing part, then echoes the header.
fn missing_parameters_message(
    credential: bool,
    signature: bool,
    signed_headers: bool,
    date: bool,
    authorization: &str,
) -> String {
    let mut message = String::new();
    for (missing, text) in [
        (
            credential,
            "Authorization header requires 'Credential' parameter. ",
        ),
        (
            signature,
            "Authorization header requires 'Signature' parameter. ",
        ),
        (
            signed_headers,
            "Authorization header requires 'SignedHeaders' parameter. ",
        ),
        (
            date,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        ),
    ] {
        if missing {
            message.push_str(text);
        }
    }
    message.push_str("Authorization=");
    message.push_str(authorization);
    message
}

/// `AKID/20261123/us-east-2/emr-containers/aws4_request` → (AKID, scope).
fn parse_credential(credential: &str) -> Result<(String, CredentialScope), AuthFailure> {
    let parts: Vec<&str> = credential.split('/').collect();
    let incomplete = |m: String| Err(AuthFailure::IncompleteSignature(m));
    if parts.len() != 5 {
        return incomplete(format!(
            "Credential should be of the form '<access key>/<YYYYMMDD>/<region>/<service>/{TERMINATOR}', not '{credential}'."
        ));
    }
    let (key, date, region, service, terminator) =
        (parts[0], parts[1], parts[2], parts[3], parts[4]);
    if key.is_empty() {
        return incomplete(format!(
            "Credential should contain an access key id, not '{credential}'."
        ));
    }
    if terminator != TERMINATOR {
        return incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return incomplete(format!(
            "Credential should be scoped to a valid date (YYYYMMDD), not '{date}'."
        ));
    }
    if region.is_empty() {
        return incomplete(format!(
            "Credential should be scoped to a valid region, not '{region}'."
        ));
    }
    if service.is_empty() {
        return incomplete(format!(
            "Credential should be scoped to a valid service, not '{service}'."
        ));
    }
    Ok((key.to_string(), CredentialScope::new(date, region, service)))
}

fn check_signed_headers(signed_headers: &str, presigned: bool) -> Result<(), AuthFailure> {
    let names: Vec<&str> = signed_headers.split(';').collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(AuthFailure::IncompleteSignature(format!(
            "SignedHeaders should be a ';'-separated list of header names, not '{signed_headers}'."
        )));
    }
    // Without Host in the signature a request could be replayed against another endpoint.
    if !names.iter().any(|n| n.eq_ignore_ascii_case("host")) {
        let place = if presigned {
            "X-Amz-SignedHeaders"
        } else {
            "AWS Authorization"
        };
        return Err(AuthFailure::IncompleteSignature(format!(
            "'Host' must be a 'SignedHeader' in the {place}."
        )));
    }
    Ok(())
}

fn parse_amz_date(amz_date: &str) -> Result<DateTime<Utc>, AuthFailure> {
    NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| {
            AuthFailure::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })
}

fn check_scope_date(scope: &CredentialScope, amz_date: &str) -> Result<(), AuthFailure> {
    if !amz_date.starts_with(&scope.date) {
        return Err(AuthFailure::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            scope.date,
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    Ok(())
}

/// Decodes a raw query string into pairs, form-style (`+` is a space), as AWS services and
/// the SDK signers read it.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let replaced = s.replace('+', " ");
    percent_decode(replaced.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, URI_ENCODE).to_string()
}

/// The canonical URI. S3 signs the path exactly as sent. Every other service signs the path
/// with dot segments and empty segments removed (as botocore and the Rust SDK do before
/// signing) and then percent-encoded a second time, so `%3A` becomes `%253A`.
pub fn canonical_uri(raw_path: &str, service: &str) -> String {
    if service == "s3" {
        return if raw_path.is_empty() {
            "/".into()
        } else {
            raw_path.into()
        };
    }
    utf8_percent_encode(&normalize_path(raw_path), PATH_ENCODE).to_string()
}

/// RFC 3986 §5.2.4 dot-segment removal plus collapsing of repeated slashes, the way botocore
/// does it: a trailing slash survives only if the path ended in one.
fn normalize_path(path: &str) -> String {
    if !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..")
        && path.starts_with('/')
    {
        return path.to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query string: each pair decoded then re-encoded RFC 3986 style, sorted by
/// encoded key then encoded value. In the presigned form the signature itself is left out.
pub fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims and collapses runs of spaces and tabs, as botocore does (`' '.join(value.split())`).
fn canonical_header_value(value: &str) -> String {
    value
        .split([' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The canonical headers block (each line ends in `\n`) for the client's `SignedHeaders`.
/// `host_fallback` stands in for `Host` when the request carries it only in the URI authority
/// (HTTP/2). A signed header that is absent contributes an empty value, which then simply
/// fails to match.
pub fn canonical_headers(
    headers: &HeaderMap,
    signed_headers: &str,
    host_fallback: Option<&str>,
) -> String {
    let mut out = String::new();
    for name in signed_headers.split(';') {
        let name = name.to_ascii_lowercase();
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| canonical_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let value = if values.is_empty() && name == "host" {
            host_fallback.unwrap_or_default().to_string()
        } else {
            values.join(",")
        };
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

/// The parts of a request that go into its canonical form.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    /// Host to use when there is no `Host` header (HTTP/2 `:authority`).
    pub host_fallback: Option<&'a str>,
}

/// The canonical request, as specified by SigV4.
pub fn canonical_request(
    request: &RequestParts<'_>,
    service: &str,
    signed_headers: &str,
    presigned: bool,
    payload_hash: &str,
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.raw_path, service),
        canonical_query(request.raw_query, presigned),
        canonical_headers(request.headers, signed_headers, request.host_fallback),
        signed_headers,
        payload_hash,
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_scope_string(),
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret_access_key: &str, scope: &CredentialScope) -> Vec<u8> {
    let mut key = format!("AWS4{secret_access_key}").into_bytes();
    for part in [
        scope.date.as_str(),
        scope.region.as_str(),
        scope.service.as_str(),
        TERMINATOR,
    ] {
        key = hmac(&key, part.as_bytes()).finalize().into_bytes().to_vec();
    }
    key
}

/// Hex signature of `string_to_sign`.
pub fn signature(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(
        hmac(signing_key, string_to_sign.as_bytes())
            .finalize()
            .into_bytes(),
    )
}

/// Whether `provided_hex` is the signature of `string_to_sign`, compared in constant time so
/// the response time does not reveal how many leading bytes were right.
pub fn verify_signature(signing_key: &[u8], string_to_sign: &str, provided_hex: &str) -> bool {
    let Ok(provided) = hex::decode(provided_hex) else {
        return false;
    };
    hmac(signing_key, string_to_sign.as_bytes())
        .verify_slice(&provided)
        .is_ok()
}

/// Constant-time equality for secrets other than signatures (session tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Formats a time the way `X-Amz-Date` and AWS's error messages do.
pub fn format_amz_date(time: DateTime<Utc>) -> String {
    time.format(AMZ_DATE_FORMAT).to_string()
}

#[cfg(test)]
mod tests;
