//! SigV4: reading the client's signature claim from a request head and rebuilding the
//! canonical request from it, as `sparkyard_aws::auth` does for every signed request.
//!
//! Input (UTF-8 text):
//! ```text
//! METHOD /raw/path?raw=query          <- request line (method optional)
//! name: value                         <- headers, one per line (Authorization, X-Amz-Date, …)
//! ```
//! Feeds `SignatureClaim::from_request` (the Authorization header or the presigned query
//! parameters), then — as the verifier does for a claim that parses — `canonical_request`,
//! `string_to_sign`, `signing_key`, `signature` and `verify_signature`. The pure helpers
//! (`canonical_uri` for S3 and other services, `canonical_query`, `parse_query`) get the raw
//! path and query too.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use sparkyard_aws::sigv4::{self, Location, RequestParts, SignatureClaim};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let request_line = lines.next().unwrap_or_default().trim_end_matches('\r');
    let (method, target) = match request_line.split_once(' ') {
        Some((m, t)) => (m, t),
        None => ("GET", request_line),
    };
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));

    // The pure canonicalisation helpers take any text, whatever `Uri` would accept.
    let _ = sigv4::canonical_uri(raw_path, "s3");
    let _ = sigv4::canonical_uri(raw_path, "emr-containers");
    let _ = sigv4::canonical_query(raw_query, false);
    let _ = sigv4::canonical_query(raw_query, true);
    let _ = sigv4::parse_query(raw_query);

    let mut headers = HeaderMap::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        // What hyper would have refused never reaches the verifier.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim_start().as_bytes()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };
    let claim = match SignatureClaim::from_request(&uri, &headers) {
        Ok(claim) => claim,
        Err(failure) => {
            let _ = format!("{failure:?}");
            return;
        }
    };
    let presigned = matches!(claim.location, Location::Query { .. });
    let host_fallback = uri.authority().map(|a| a.as_str());
    let parts = RequestParts {
        method,
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers: &headers,
        host_fallback,
    };
    let payload_hash = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(sigv4::UNSIGNED_PAYLOAD)
        .to_string();
    let canonical = sigv4::canonical_request(
        &parts,
        &claim.scope.service,
        &claim.signed_headers,
        presigned,
        &payload_hash,
    );
    let to_sign = sigv4::string_to_sign(&claim.amz_date, &claim.scope, &canonical);
    let key = sigv4::signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &claim.scope);
    let ours = sigv4::signature(&key, &to_sign);
    // Our own signature always verifies; the client's is whatever it is.
    assert!(sigv4::verify_signature(&key, &to_sign, &ours));
    let _ = sigv4::verify_signature(&key, &to_sign, &claim.signature);
    let _ = sigv4::format_amz_date(claim.time);
});
