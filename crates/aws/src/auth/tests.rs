use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use axum::routing::any;
use axum::Router;
use tower::ServiceExt;

use super::*;
use crate::testing::{emr, s3, sign_with_sdk, How, Signed};

const ACCOUNT: &str = "123456789012";

struct Fixture {
    _dir: tempfile::TempDir,
    keyring: Arc<Keyring>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::load_or_bootstrap(dir.path(), ACCOUNT).unwrap());
    Fixture { _dir: dir, keyring }
}

impl Fixture {
    fn key(&self) -> (&str, &str) {
        let k = self.keyring.bootstrap();
        (&k.access_key_id, &k.secret_access_key)
    }

    fn how(&self) -> How<'_> {
        How {
            key: self.key(),
            ..emr(None)
        }
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn to_axum(signed: Signed) -> Request {
    signed.request.map(Body::from)
}

async fn run(
    keyring: &Keyring,
    signed: Signed,
    now: DateTime<Utc>,
) -> Result<Request, AuthFailure> {
    verify(keyring, to_axum(signed), now)
        .await
        .map_err(|r| r.failure)
}

const BASE: &str = "http://127.0.0.1:18777";
const BODY: &[u8] =
    br#"{"name": "my-vc", "containerProvider": {"id": "c", "type": "EKS"}, "clientToken": "t"}"#;
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

#[tokio::test]
async fn accepts_sdk_signed_request_and_hands_on_principal_and_body() {
    let f = fixture();
    let signed = sign_with_sdk(
        "POST",
        &format!("{BASE}/virtualclusters"),
        JSON,
        BODY,
        f.how(),
    );
    let request = run(&f.keyring, signed, Utc::now()).await.unwrap();
    let principal = request.extensions().get::<Principal>().unwrap().clone();
    assert_eq!(
        principal,
        Principal {
            access_key_id: f.keyring.bootstrap().access_key_id.clone(),
            account_id: ACCOUNT.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:root"),
            region: "us-east-1".into(),
            service: "emr-containers".into(),
        }
    );
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], BODY);
}

#[tokio::test]
async fn unsigned_request_is_missing_token() {
    let f = fixture();
    let request = Request::get("/virtualclusters")
        .header("host", "h")
        .body(Body::empty())
        .unwrap();
    let refusal = verify(&f.keyring, request, Utc::now()).await.unwrap_err();
    assert_eq!(
        refusal,
        Refusal {
            service: None,
            failure: AuthFailure::MissingAuthenticationToken
        }
    );
}

#[tokio::test]
async fn wrong_secret_is_signature_mismatch() {
    let f = fixture();
    let how = How {
        key: (&f.keyring.bootstrap().access_key_id, "not-the-secret"),
        ..f.how()
    };
    let signed = sign_with_sdk("GET", &format!("{BASE}/virtualclusters"), &[], b"", how);
    assert_eq!(
        run(&f.keyring, signed, Utc::now()).await.unwrap_err(),
        AuthFailure::SignatureDoesNotMatch
    );
}

#[tokio::test]
async fn changed_body_is_signature_mismatch() {
    let f = fixture();
    let mut signed = sign_with_sdk(
        "POST",
        &format!("{BASE}/virtualclusters"),
        JSON,
        BODY,
        f.how(),
    );
    signed.request.body_mut().push(b' ');
    assert_eq!(
        run(&f.keyring, signed, Utc::now()).await.unwrap_err(),
        AuthFailure::SignatureDoesNotMatch
    );
}

#[tokio::test]
async fn unknown_key_is_unrecognized_client() {
    let f = fixture();
    let how = How {
        key: ("AKIAUNKNOWNUNKNOWN00", "secret"),
        ..f.how()
    };
    let signed = sign_with_sdk("GET", &format!("{BASE}/virtualclusters"), &[], b"", how);
    assert_eq!(
        run(&f.keyring, signed, Utc::now()).await.unwrap_err(),
        AuthFailure::UnrecognizedClient
    );
}

#[tokio::test]
async fn clock_skew_beyond_five_minutes_is_refused_with_aws_messages() {
    let f = fixture();
    let signed_at = at("2026-11-23T10:15:00Z");
    let sign = || {
        let how = How {
            time: SystemTime::from(signed_at),
            ..f.how()
        };
        sign_with_sdk("GET", &format!("{BASE}/virtualclusters"), &[], b"", how)
    };
    assert_eq!(
        run(&f.keyring, sign(), at("2026-11-23T10:30:00Z")).await.unwrap_err(),
        AuthFailure::SignatureExpired(
            "Signature expired: 20261123T101500Z is now earlier than 20261123T102500Z (20261123T103000Z - 5 min.)"
                .into()
        )
    );
    assert_eq!(
        run(&f.keyring, sign(), at("2026-11-23T10:00:00Z")).await.unwrap_err(),
        AuthFailure::SignatureNotYetCurrent(
            "Signature not yet current: 20261123T101500Z is still later than 20261123T100500Z (20261123T100000Z + 5 min.)"
                .into()
        )
    );
    for now in [
        "2026-11-23T10:20:00Z",
        "2026-11-23T10:10:00Z",
        "2026-11-23T10:15:00Z",
    ] {
        assert!(run(&f.keyring, sign(), at(now)).await.is_ok(), "{now}");
    }
}

fn session_owner() -> KeyOwner {
    KeyOwner {
        account_id: ACCOUNT.into(),
        arn: format!("arn:aws:sts::{ACCOUNT}:assumed-role/job-role/session"),
    }
}

#[tokio::test]
async fn session_credentials_need_their_own_unexpired_token() {
    let f = fixture();
    let creds = f
        .keyring
        .issue_session(session_owner(), Utc::now() + Duration::hours(1))
        .unwrap();
    let key = (
        creds.key.access_key_id.as_str(),
        creds.key.secret_access_key.as_str(),
    );
    let signed = |token| {
        sign_with_sdk(
            "GET",
            &format!("{BASE}/virtualclusters"),
            &[],
            b"",
            How { key, ..emr(token) },
        )
    };

    let ok = run(&f.keyring, signed(Some(&creds.session_token)), Utc::now())
        .await
        .unwrap();
    let principal = ok.extensions().get::<Principal>().unwrap();
    assert_eq!(principal.arn, session_owner().arn);
    assert_eq!(principal.access_key_id, creds.key.access_key_id);

    assert_eq!(
        run(&f.keyring, signed(Some("forged")), Utc::now())
            .await
            .unwrap_err(),
        AuthFailure::InvalidSecurityToken
    );
    assert_eq!(
        run(&f.keyring, signed(None), Utc::now()).await.unwrap_err(),
        AuthFailure::InvalidSecurityToken
    );
    // Signed a minute before expiry, arriving after it.
    let late = How {
        key,
        time: SystemTime::from(creds.expiration - Duration::minutes(1)),
        ..emr(Some(&creds.session_token))
    };
    let late = sign_with_sdk("GET", &format!("{BASE}/virtualclusters"), &[], b"", late);
    assert_eq!(
        run(&f.keyring, late, creds.expiration + Duration::seconds(1))
            .await
            .unwrap_err(),
        AuthFailure::ExpiredToken
    );
}

#[tokio::test]
async fn permanent_key_with_a_session_token_is_refused() {
    let f = fixture();
    let how = How {
        token: Some("made-up"),
        ..f.how()
    };
    let signed = sign_with_sdk("GET", &format!("{BASE}/virtualclusters"), &[], b"", how);
    assert_eq!(
        run(&f.keyring, signed, Utc::now()).await.unwrap_err(),
        AuthFailure::InvalidSecurityToken
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_and_while_reading() {
    let f = fixture();
    let big = vec![b'x'; MAX_BUFFERED_BODY + 1];
    let signed = sign_with_sdk(
        "POST",
        &format!("{BASE}/virtualclusters"),
        JSON,
        &big,
        f.how(),
    );
    // With Content-Length.
    let mut request = to_axum(Signed {
        request: signed.request.clone(),
    });
    request
        .headers_mut()
        .insert("content-length", big.len().into());
    let refusal = verify(&f.keyring, request, Utc::now()).await.unwrap_err();
    assert_eq!(
        refusal.failure,
        AuthFailure::BodyTooLarge {
            limit: MAX_BUFFERED_BODY
        }
    );
    // Without (chunked): caught while reading.
    let refusal = verify(&f.keyring, to_axum(signed), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        refusal.failure,
        AuthFailure::BodyTooLarge {
            limit: MAX_BUFFERED_BODY
        }
    );
    let response = refusal.into_response();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn s3_declared_hashes_are_checked_and_unsigned_payloads_pass_through() {
    let f = fixture();
    let url = format!("{BASE}/bucket/logs/a%20b.txt");
    let signed = sign_with_sdk(
        "PUT",
        &url,
        &[],
        b"hello",
        How {
            key: f.key(),
            ..s3(None)
        },
    );
    let ok = run(&f.keyring, signed, Utc::now()).await.unwrap();
    assert_eq!(ok.extensions().get::<Principal>().unwrap().service, "s3");
    assert_eq!(
        &axum::body::to_bytes(ok.into_body(), 100).await.unwrap()[..],
        b"hello"
    );

    let mut lying = sign_with_sdk(
        "PUT",
        &url,
        &[],
        b"hello",
        How {
            key: f.key(),
            ..s3(None)
        },
    );
    *lying.request.body_mut() = b"HELLO".to_vec();
    assert_eq!(
        run(&f.keyring, lying, Utc::now()).await.unwrap_err(),
        AuthFailure::ContentSha256Mismatch
    );

    // Without a valid signature, the body hash is nobody's business.
    let forged = How {
        key: (f.key().0, "wrong"),
        ..s3(None)
    };
    let mut forged = sign_with_sdk("PUT", &url, &[], b"hello", forged);
    *forged.request.body_mut() = b"HELLO".to_vec();
    assert_eq!(
        run(&f.keyring, forged, Utc::now()).await.unwrap_err(),
        AuthFailure::SignatureDoesNotMatch
    );

    let unsigned = How {
        key: f.key(),
        unsigned_payload: true,
        ..s3(None)
    };
    let signed = sign_with_sdk("PUT", &url, &[], b"anything", unsigned);
    let ok = run(&f.keyring, signed, Utc::now()).await.unwrap();
    assert_eq!(
        &axum::body::to_bytes(ok.into_body(), 100).await.unwrap()[..],
        b"anything"
    );
}

#[tokio::test]
async fn presigned_urls_are_valid_until_they_expire() {
    let f = fixture();
    let signed_at = at("2026-11-23T10:15:00Z");
    let mut how = How {
        key: f.key(),
        unsigned_payload: true,
        time: SystemTime::from(signed_at),
        ..s3(None)
    };
    how.settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    how.settings.expires_in = Some(std::time::Duration::from_secs(3600));
    how.settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::NoHeader;
    let sign = || {
        sign_with_sdk(
            "GET",
            &format!("{BASE}/bucket/key.txt"),
            &[],
            b"",
            how.clone(),
        )
    };
    assert!(run(&f.keyring, sign(), at("2026-11-23T11:14:59Z"))
        .await
        .is_ok());
    let err = run(&f.keyring, sign(), at("2026-11-23T11:15:01Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AuthFailure::PresignedExpired(m) if m.contains("20261123T111500Z")),
        "{err:?}"
    );
    assert!(matches!(
        run(&f.keyring, sign(), at("2026-11-23T10:05:00Z"))
            .await
            .unwrap_err(),
        AuthFailure::SignatureNotYetCurrent(_)
    ));
}

#[test]
fn rest_json_codes_and_messages() {
    use AuthFailure::*;
    let cases = [
        (MissingAuthenticationToken, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        (IncompleteSignature("m".into()), "IncompleteSignatureException", "m"),
        (
            SignatureDoesNotMatch,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        (SignatureExpired("e".into()), "InvalidSignatureException", "e"),
        (UnrecognizedClient, "UnrecognizedClientException", "The security token included in the request is invalid."),
        (InvalidSecurityToken, "UnrecognizedClientException", "The security token included in the request is invalid."),
        (ExpiredToken, "ExpiredTokenException", "The security token included in the request is expired"),
    ];
    for (failure, code, message) in cases {
        let error = rest_json_error(&failure);
        assert_eq!(
            (error.status, error.code, error.message.as_str()),
            (StatusCode::FORBIDDEN, code, message)
        );
    }
}

// ---- the middleware in a router -------------------------------------------------------------

fn app(keyring: Arc<Keyring>, hits: Arc<AtomicUsize>) -> Router {
    let inner = Router::new()
        .route(
            "/{*rest}",
            any(
                move |principal: Option<axum::Extension<Principal>>, body: bytes::Bytes| {
                    let hits = hits.clone();
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "{} {}",
                            principal.map(|p| p.0.arn).unwrap_or_default(),
                            body.len()
                        )
                    }
                },
            ),
        )
        .layer(axum::middleware::from_fn_with_state(keyring, authenticate));
    // Nesting strips `/api` from the URI the middleware sees: the signature covers the original.
    Router::new()
        .nest("/api", inner)
        .layer(axum::middleware::from_fn(crate::request_id::stamp))
}

#[tokio::test]
async fn refused_requests_never_reach_the_service_and_get_aws_error_shape() {
    let f = fixture();
    let hits = Arc::new(AtomicUsize::new(0));
    let app = app(f.keyring.clone(), hits.clone());

    let unsigned = Request::post("/api/virtualclusters")
        .header("host", "h")
        .body(Body::from(BODY))
        .unwrap();
    let wrong = {
        let how = How {
            key: (&f.keyring.bootstrap().access_key_id, "wrong"),
            ..f.how()
        };
        to_axum(sign_with_sdk(
            "POST",
            &format!("{BASE}/api/virtualclusters"),
            JSON,
            BODY,
            how,
        ))
    };
    let stale = {
        let how = How {
            time: SystemTime::now() - std::time::Duration::from_secs(600),
            ..f.how()
        };
        to_axum(sign_with_sdk(
            "POST",
            &format!("{BASE}/api/virtualclusters"),
            JSON,
            BODY,
            how,
        ))
    };
    let unknown = {
        let how = How {
            key: ("AKIAUNKNOWNUNKNOWN00", "x"),
            ..f.how()
        };
        to_axum(sign_with_sdk(
            "POST",
            &format!("{BASE}/api/virtualclusters"),
            JSON,
            BODY,
            how,
        ))
    };
    for (request, code) in [
        (unsigned, "MissingAuthenticationTokenException"),
        (wrong, "InvalidSignatureException"),
        (stale, "InvalidSignatureException"),
        (unknown, "UnrecognizedClientException"),
    ] {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{code}");
        assert_eq!(response.headers().get("x-amzn-ErrorType").unwrap(), code);
        assert!(response.headers().contains_key("x-amzn-RequestId"));
        let body: serde_json::Value = serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["__type"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let good = to_axum(sign_with_sdk(
        "POST",
        &format!("{BASE}/api/virtualclusters"),
        JSON,
        BODY,
        f.how(),
    ));
    let response = app.oneshot(good).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-amzn-RequestId"));
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        format!("arn:aws:iam::{ACCOUNT}:root {}", BODY.len())
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
