use std::time::Duration;

use aws_sigv4::http_request::{PayloadChecksumKind, PercentEncodingMode, SignatureLocation};
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::testing::{emr, s3, sign_with_sdk, How, Signed, SECRET};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

// AWS's worked example from the SigV4 documentation ("Create a canonical request" ...
// "Calculate the signature"): IAM ListUsers signed on 2015-08-30.
#[test]
fn aws_documentation_example_iam_list_users() {
    let h = headers(&[
        ("host", "iam.amazonaws.com"),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("x-amz-date", "20150830T123600Z"),
    ]);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "Action=ListUsers&Version=2010-05-08",
        headers: &h,
        host_fallback: None,
    };
    let canonical = canonical_request(
        &parts,
        "iam",
        "content-type;host;x-amz-date",
        false,
        &sha256_hex(b""),
    );
    assert_eq!(
        canonical,
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(canonical.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    let scope = CredentialScope::new("20150830", "us-east-1", "iam");
    let sts = string_to_sign("20150830T123600Z", &scope, &canonical);
    assert_eq!(
        sts,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
         f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    let key = signing_key(SECRET, &scope);
    assert_eq!(
        hex::encode(&key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
    let sig = signature(&key, &sts);
    assert_eq!(
        sig,
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
    assert!(verify_signature(&key, &sts, &sig));
}

// The "get-vanilla" case of AWS's SigV4 test suite.
#[test]
fn aws_test_suite_get_vanilla() {
    let h = headers(&[
        ("host", "example.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
    ]);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &h,
        host_fallback: None,
    };
    let canonical = canonical_request(
        &parts,
        "service",
        "host;x-amz-date",
        false,
        &sha256_hex(b""),
    );
    let scope = CredentialScope::new("20150830", "us-east-1", "service");
    let sts = string_to_sign("20150830T123600Z", &scope, &canonical);
    assert_eq!(
        signature(&signing_key(SECRET, &scope), &sts),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn canonical_uri_double_encodes_except_for_s3() {
    let raw =
        "/tags/arn%3Aaws%3Aemr-containers%3Aus-east-1%3A123456789012%3A%2Fvirtualclusters%2Fabc";
    assert_eq!(
        canonical_uri(raw, "emr-containers"),
        "/tags/arn%253Aaws%253Aemr-containers%253Aus-east-1%253A123456789012%253A%252Fvirtualclusters%252Fabc"
    );
    assert_eq!(canonical_uri(raw, "s3"), raw);
    assert_eq!(canonical_uri("/a~b/c-d_e.f", "logs"), "/a~b/c-d_e.f");
    assert_eq!(canonical_uri("", "logs"), "/");
    assert_eq!(canonical_uri("", "s3"), "/");
}

#[test]
fn canonical_uri_normalizes_like_the_sdk_signers_except_for_s3() {
    assert_eq!(canonical_uri("/a//b/./c/../d", "emr-containers"), "/a/b/d");
    assert_eq!(canonical_uri("/a/b/", "emr-containers"), "/a/b/");
    assert_eq!(canonical_uri("/../", "emr-containers"), "/");
    assert_eq!(canonical_uri("/a//b/./c/../d", "s3"), "/a//b/./c/../d");
}

#[test]
fn canonical_query_decodes_reencodes_and_sorts() {
    assert_eq!(
        canonical_query(
            "states=RUNNING&createdAfter=2024-01-01T00%3A00%3A00Z&states=PENDING",
            false
        ),
        "createdAfter=2024-01-01T00%3A00%3A00Z&states=PENDING&states=RUNNING"
    );
    // Under-encoded input is re-encoded; `+` is a space; bare keys get an empty value.
    assert_eq!(
        canonical_query("b=x:y&a=1+2&flag&c=%7e", false),
        "a=1%202&b=x%3Ay&c=~&flag="
    );
    assert_eq!(canonical_query("", false), "");
    // Sorting happens on the encoded form, by key, then value.
    assert_eq!(canonical_query("a=b&A=c&a=a", false), "A=c&a=a&a=b");
}

#[test]
fn canonical_query_drops_the_signature_only_when_presigned() {
    let q = "X-Amz-Signature=abc&X-Amz-Date=20261123T000000Z";
    assert_eq!(canonical_query(q, true), "X-Amz-Date=20261123T000000Z");
    assert_eq!(
        canonical_query(q, false),
        "X-Amz-Date=20261123T000000Z&X-Amz-Signature=abc"
    );
}

#[test]
fn canonical_headers_trim_collapse_and_join_repeats() {
    let h = headers(&[
        ("Host", "127.0.0.1:18777"),
        ("x-custom", "  a   b  \t c "),
        ("x-multi", "one"),
        ("x-multi", "two"),
    ]);
    assert_eq!(
        canonical_headers(&h, "host;x-custom;x-multi;x-absent", None),
        "host:127.0.0.1:18777\nx-custom:a b c\nx-multi:one,two\nx-absent:\n"
    );
    let no_host = HeaderMap::new();
    assert_eq!(
        canonical_headers(&no_host, "host", Some("example.com")),
        "host:example.com\n"
    );
}

#[test]
fn signature_comparison_rejects_near_misses() {
    let scope = CredentialScope::new("20261123", "us-east-2", "emr-containers");
    let key = signing_key(SECRET, &scope);
    let good = signature(&key, "sts");
    assert!(verify_signature(&key, "sts", &good));
    let mut flipped = good.clone().into_bytes();
    flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
    assert!(!verify_signature(
        &key,
        "sts",
        std::str::from_utf8(&flipped).unwrap()
    ));
    assert!(!verify_signature(&key, "sts", &good[..62]));
    assert!(!verify_signature(&key, "sts", "not hex"));
    assert!(!verify_signature(&key, "sts", ""));
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

// ---- parsing the claim -------------------------------------------------------------------

fn claim(pairs: &[(&str, &str)], uri: &str) -> Result<SignatureClaim, AuthFailure> {
    SignatureClaim::from_request(&uri.parse().unwrap(), &headers(pairs))
}

const GOOD_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261123/us-east-2/emr-containers/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123";

#[test]
fn parses_the_header_form() {
    let c = claim(
        &[
            ("authorization", GOOD_AUTH),
            ("x-amz-date", "20261123T192640Z"),
        ],
        "/virtualclusters",
    )
    .unwrap();
    assert_eq!(c.access_key_id, "AKIAEXAMPLE");
    assert_eq!(
        c.scope,
        CredentialScope::new("20261123", "us-east-2", "emr-containers")
    );
    assert_eq!(c.signed_headers, "host;x-amz-date");
    assert_eq!(c.signature, "0123");
    assert_eq!(c.location, Location::Header);
    assert_eq!(format_amz_date(c.time), "20261123T192640Z");
    assert_eq!(c.session_token, None);
}

#[test]
fn no_authentication_at_all_is_missing_token() {
    assert_eq!(
        claim(&[("x-amz-date", "20261123T192640Z")], "/x?a=b"),
        Err(AuthFailure::MissingAuthenticationToken)
    );
}

fn incomplete(result: Result<SignatureClaim, AuthFailure>) -> String {
    match result {
        Err(AuthFailure::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn incomplete_headers_name_what_is_missing() {
    let date = ("x-amz-date", "20261123T192640Z");
    let no_sig = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261123/us-east-2/emr-containers/aws4_request, SignedHeaders=host;x-amz-date";
    assert_eq!(
        incomplete(claim(&[("authorization", no_sig), date], "/")),
        format!("Authorization header requires 'Signature' parameter. Authorization={no_sig}")
    );
    let m = incomplete(claim(&[("authorization", GOOD_AUTH)], "/"));
    assert_eq!(
        m,
        format!("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={GOOD_AUTH}")
    );
    let m = incomplete(claim(&[("authorization", "Bearer xyz"), date], "/"));
    assert!(m.starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization="), "{m}");
    let m = incomplete(claim(
        &[("authorization", "AWS4-HMAC-SHA256 Credential"), date],
        "/",
    ));
    assert!(
        m.contains("not a valid key=value pair (missing equal-sign)"),
        "{m}"
    );
}

#[test]
fn bad_scopes_are_incomplete_signatures() {
    let date = ("x-amz-date", "20261123T192640Z");
    for (credential, expect) in [
        (
            "AKIAEXAMPLE/20261123/us-east-2/emr-containers",
            "Credential should be of the form",
        ),
        (
            "AKIAEXAMPLE/20261123/us-east-2/emr-containers/aws5_request",
            "valid terminator: 'aws4_request', not 'aws5_request'",
        ),
        (
            "AKIAEXAMPLE/2026-11-23/us-east-2/emr-containers/aws4_request",
            "valid date",
        ),
        (
            "AKIAEXAMPLE/20261123//emr-containers/aws4_request",
            "valid region",
        ),
        (
            "/20261123/us-east-2/emr-containers/aws4_request",
            "access key id",
        ),
    ] {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=00"
        );
        let m = incomplete(claim(&[("authorization", &auth), date], "/"));
        assert!(m.contains(expect), "{credential}: {m}");
    }
    let no_host = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261123/us-east-2/emr-containers/aws4_request, SignedHeaders=x-amz-date, Signature=00";
    assert_eq!(
        incomplete(claim(&[("authorization", no_host), date], "/")),
        "'Host' must be a 'SignedHeader' in the AWS Authorization."
    );
    assert!(incomplete(claim(
        &[
            ("authorization", GOOD_AUTH),
            ("x-amz-date", "2026-11-23T19:26:40Z")
        ],
        "/"
    ))
    .starts_with("Date must be in ISO-8601 'basic format'"));
}

#[test]
fn scope_date_must_match_request_date() {
    let r = claim(
        &[
            ("authorization", GOOD_AUTH),
            ("x-amz-date", "20261124T000001Z"),
        ],
        "/",
    );
    assert!(
        matches!(r, Err(AuthFailure::InvalidSignature(m)) if m.contains("'20261123' != '20261124'"))
    );
}

#[test]
fn parses_the_presigned_form() {
    let uri = "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T101500Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2Ben&X-Amz-Signature=ff";
    let c = claim(&[], uri).unwrap();
    assert_eq!(c.access_key_id, "AKIAEXAMPLE");
    assert_eq!(c.scope.service, "s3");
    assert_eq!(c.location, Location::Query { expires_secs: 900 });
    assert_eq!(c.session_token.as_deref(), Some("tok+en"));
    assert_eq!(c.signature, "ff");

    let missing = "/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ff";
    assert!(incomplete(claim(&[], missing))
        .starts_with("Query-string authentication version 4 requires"));
    let too_long = uri.replace("X-Amz-Expires=900", "X-Amz-Expires=604801");
    assert!(incomplete(claim(&[], &too_long)).contains("less than a week"));
    assert!(incomplete(claim(&[("authorization", GOOD_AUTH)], uri))
        .starts_with("Only one auth mechanism allowed"));
}

// ---- aws-sigv4 as an independent signer ----------------------------------------------------

/// Our verifier, minus clock and keyring: rebuild, sign with SECRET, compare.
fn verify_pure(signed: &Signed) -> Result<(), AuthFailure> {
    let req = &signed.request;
    let claim = SignatureClaim::from_request(req.uri(), req.headers())?;
    let presigned = matches!(claim.location, Location::Query { .. });
    let payload_hash = match req.headers().get("x-amz-content-sha256") {
        Some(v) => v.to_str().unwrap().to_string(),
        None if presigned && claim.scope.service == "s3" => UNSIGNED_PAYLOAD.to_string(),
        None => sha256_hex(req.body()),
    };
    let parts = RequestParts {
        method: req.method().as_str(),
        raw_path: req.uri().path(),
        raw_query: req.uri().query().unwrap_or(""),
        headers: req.headers(),
        host_fallback: None,
    };
    let canonical = canonical_request(
        &parts,
        &claim.scope.service,
        &claim.signed_headers,
        presigned,
        &payload_hash,
    );
    let sts = string_to_sign(&claim.amz_date, &claim.scope, &canonical);
    if verify_signature(&signing_key(SECRET, &claim.scope), &sts, &claim.signature) {
        Ok(())
    } else {
        Err(AuthFailure::SignatureDoesNotMatch)
    }
}

const BASE: &str = "http://127.0.0.1:18777";
const TAG_PATH: &str =
    "/tags/arn%3Aaws%3Aemr-containers%3Aus-east-1%3A123456789012%3A%2Fvirtualclusters%2Fabc";

/// Method, path and query as sent, extra headers, body.
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a [u8]);

#[test]
fn sdk_signed_requests_verify() {
    let json = [("content-type", "application/json")];
    let body = br#"{"name": "my-vc", "clientToken": "deba4dd8"}"#;
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/virtualclusters".into(), &[], b""),
        (
            "GET",
            "/virtualclusters?states=RUNNING&states=PENDING&createdAfter=2024-01-01T00%3A00%3A00Z"
                .into(),
            &[],
            b"",
        ),
        ("POST", "/virtualclusters".into(), &json, body),
        (
            "DELETE",
            "/virtualclusters/abc/jobruns/00000003".into(),
            &[("content-length", "0")],
            b"",
        ),
        ("GET", TAG_PATH.into(), &[], b""),
        (
            "DELETE",
            format!("{TAG_PATH}?tagKeys=a&tagKeys=c"),
            &[],
            b"",
        ),
        ("POST", TAG_PATH.into(), &json, br#"{"tags": {"a": "b"}}"#),
        (
            "GET",
            "/a//b/./c/../jobruns?name=x%20y&nextToken=a%2Bb%3D".into(),
            &[],
            b"",
        ),
        (
            "PATCH",
            "/virtualclusters/abc".into(),
            &[
                ("content-type", "application/json"),
                ("x-extra", "  spaced   out  "),
            ],
            b"{}",
        ),
    ];
    for (method, path, headers, body) in cases {
        for token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN+/=")] {
            let signed = sign_with_sdk(method, &format!("{BASE}{path}"), headers, body, emr(token));
            assert_eq!(
                verify_pure(&signed),
                Ok(()),
                "{method} {path} token={token:?}: {:?}",
                signed.request.headers()
            );
            assert_eq!(
                signed
                    .request
                    .headers()
                    .get("x-amz-security-token")
                    .map(|v| v.to_str().unwrap()),
                token
            );
        }
    }
}

#[test]
fn sdk_signed_requests_fail_when_tampered() {
    let signed = sign_with_sdk(
        "POST",
        &format!("{BASE}/virtualclusters"),
        &[("content-type", "application/json")],
        b"{\"a\":1}",
        emr(None),
    );
    assert_eq!(verify_pure(&signed), Ok(()));

    let mut body = Signed {
        request: signed.request.clone(),
    };
    *body.request.body_mut() = b"{\"a\":2}".to_vec();
    assert_eq!(verify_pure(&body), Err(AuthFailure::SignatureDoesNotMatch));

    let mut path = Signed {
        request: signed.request.clone(),
    };
    *path.request.uri_mut() = "/virtualclusters/x".parse().unwrap();
    assert_eq!(verify_pure(&path), Err(AuthFailure::SignatureDoesNotMatch));

    let mut host = Signed {
        request: signed.request.clone(),
    };
    host.request
        .headers_mut()
        .insert("host", HeaderValue::from_static("127.0.0.1:1"));
    assert_eq!(verify_pure(&host), Err(AuthFailure::SignatureDoesNotMatch));

    let mut method = Signed {
        request: signed.request.clone(),
    };
    *method.request.method_mut() = http::Method::PUT;
    assert_eq!(
        verify_pure(&method),
        Err(AuthFailure::SignatureDoesNotMatch)
    );

    let mut query = Signed {
        request: signed.request,
    };
    *query.request.uri_mut() = "/virtualclusters?x=1".parse().unwrap();
    assert_eq!(verify_pure(&query), Err(AuthFailure::SignatureDoesNotMatch));
}

#[test]
fn double_encoding_is_what_makes_encoded_paths_verify() {
    let signed = sign_with_sdk("GET", &format!("{BASE}{TAG_PATH}"), &[], b"", emr(None));
    assert_eq!(verify_pure(&signed), Ok(()));
    // The same request signed single-encoded (as S3 would) must not verify as emr-containers.
    let mut single = emr(None);
    single.settings.percent_encoding_mode = PercentEncodingMode::Single;
    let signed = sign_with_sdk("GET", &format!("{BASE}{TAG_PATH}"), &[], b"", single);
    assert_eq!(
        verify_pure(&signed),
        Err(AuthFailure::SignatureDoesNotMatch)
    );
}

#[test]
fn s3_single_encoding_and_content_sha256_verify() {
    for (method, path, body) in [
        ("PUT", "/bucket/logs/a%20b/c%3Ad/..//x.txt", &b"hello"[..]),
        (
            "GET",
            "/bucket/logs/a%20b/c%3Ad/x.txt?versionId=3&list-type=2",
            b"",
        ),
        ("GET", "/bucket?prefix=logs%2F&delimiter=%2F", b""),
    ] {
        for token in [None, Some("session-token")] {
            for unsigned_payload in [false, true] {
                let how = How {
                    unsigned_payload,
                    ..s3(token)
                };
                let signed = sign_with_sdk(method, &format!("{BASE}{path}"), &[], body, how);
                let declared = signed
                    .request
                    .headers()
                    .get("x-amz-content-sha256")
                    .unwrap();
                assert_eq!(declared == UNSIGNED_PAYLOAD, unsigned_payload);
                assert_eq!(verify_pure(&signed), Ok(()), "{method} {path}");
            }
        }
    }
}

#[test]
fn presigned_urls_verify() {
    for (base, path) in [
        (
            s3(None),
            "/bucket/key%20with%20space.txt?response-content-type=text%2Fplain",
        ),
        (
            How {
                service: "sts",
                ..emr(None)
            },
            "/?Action=GetCallerIdentity&Version=2011-06-15",
        ),
    ] {
        for token in [None, Some("session/token+x")] {
            let mut how = How {
                token,
                ..base.clone()
            };
            how.settings.signature_location = SignatureLocation::QueryParams;
            how.settings.expires_in = Some(Duration::from_secs(900));
            how.settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
            // Presigned S3 URLs sign UNSIGNED-PAYLOAD; other services (EKS tokens are presigned
            // STS calls) sign the empty body's hash.
            how.unsigned_payload = how.service == "s3";
            let signed = sign_with_sdk("GET", &format!("{BASE}{path}"), &[], b"", how);
            let query = signed.request.uri().query().unwrap().to_string();
            assert!(query.contains("X-Amz-Signature="), "{query}");
            let c = SignatureClaim::from_request(signed.request.uri(), signed.request.headers())
                .unwrap();
            assert_eq!(c.location, Location::Query { expires_secs: 900 });
            assert_eq!(c.session_token.as_deref(), token);
            assert_eq!(verify_pure(&signed), Ok(()), "{query}");

            let mut tampered = Signed {
                request: signed.request.clone(),
            };
            let changed = format!(
                "{}?{}",
                tampered.request.uri().path(),
                query.replace("X-Amz-Expires=900", "X-Amz-Expires=901")
            );
            *tampered.request.uri_mut() = changed.parse().unwrap();
            assert_eq!(
                verify_pure(&tampered),
                Err(AuthFailure::SignatureDoesNotMatch)
            );
        }
    }
}
