//! SigV4 authentication end to end: the real AWS CLI and boto3 through the profile sparkyard
//! writes, and raw HTTP requests no SDK would send (unsigned, forged, stale, unknown key),
//! which must be refused with AWS's 403 errors and change nothing.

mod support;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::{json, Value};
use support::Server;

const REGION: &str = "us-east-1";

/// The key pair from the credentials file the server wrote.
fn profile_key(s: &Server) -> (String, String) {
    let text = std::fs::read_to_string(s.data_dir.path().join("aws/credentials")).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_prefix('=')
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in credentials file:\n{text}"))
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// A request signed by aws-sigv4 (an independent signer), as botocore would sign it.
struct Signing<'a> {
    key: (&'a str, &'a str),
    token: Option<&'a str>,
    time: SystemTime,
}

fn signed(
    s: &Server,
    how: &Signing<'_>,
    method: &str,
    path: &str,
    body: &[u8],
) -> http::Request<Vec<u8>> {
    let url = format!("{}{path}", s.endpoint());
    let host = url
        .parse::<http::Uri>()
        .unwrap()
        .authority()
        .unwrap()
        .to_string();
    let mut request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("host", host);
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let mut request = request.body(body.to_vec()).unwrap();
    let identity: Identity = Credentials::new(
        how.key.0,
        how.key.1,
        how.token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("emr-containers")
        .time(how.time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    request
}

struct Reply {
    status: u16,
    error_type: Option<String>,
    request_id: Option<String>,
    body: Value,
}

async fn send(request: http::Request<Vec<u8>>) -> Reply {
    let request = reqwest::Request::try_from(request).unwrap();
    let response = reqwest::Client::new().execute(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, error_type, request_id) = (
        response.status().as_u16(),
        header("x-amzn-ErrorType"),
        header("x-amzn-RequestId"),
    );
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        error_type,
        request_id,
        body,
    }
}

/// Asserts AWS's refusal shape: 403, `x-amzn-ErrorType`, `{"__type","message"}`, request id.
fn assert_refused(reply: &Reply, code: &str) -> String {
    assert_eq!(reply.status, 403, "{code}: {:?}", reply.body);
    assert_eq!(reply.error_type.as_deref(), Some(code), "{:?}", reply.body);
    assert_eq!(reply.body["__type"], code);
    let id = reply
        .request_id
        .as_deref()
        .expect("x-amzn-RequestId on a refusal");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    reply.body["message"]
        .as_str()
        .expect("a message")
        .to_string()
}

fn list_virtual_clusters(s: &Server) -> Value {
    s.aws_json(&["emr-containers", "list-virtual-clusters"])
}

const CREATE_BODY: &str = r#"{"name": "sneaky", "containerProvider": {"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}}, "clientToken": "c0ffee00-0000-4000-8000-000000000000"}"#;

#[test]
fn cli_uses_the_written_profile() {
    let s = Server::start();
    let config = std::fs::read_to_string(s.data_dir.path().join("aws/config")).unwrap();
    assert!(config.contains("[profile sparkyard]"), "{config}");
    assert!(
        config.contains(&format!("endpoint_url = {}", s.endpoint())),
        "{config}"
    );
    assert!(config.contains("output = json"), "{config}");
    let (key_id, secret) = profile_key(&s);
    assert!(key_id.starts_with("AKIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(secret.len(), 40);
    assert!(s
        .log()
        .contains("aws --profile sparkyard emr-containers list-virtual-clusters"));

    let listed = list_virtual_clusters(&s);
    assert!(listed["virtualClusters"].is_array(), "{listed}");

    // The tag ARN travels percent-encoded in the path, so this only verifies with the
    // canonical URI double-encoded, exactly as the CLI signed it.
    let provider = json!({"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}});
    let created = s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "auth-vc",
        "--container-provider",
        &provider.to_string(),
        "--tags",
        "team=data",
    ]);
    let arn = created["arn"].as_str().unwrap();
    let tags = s.aws_json(&[
        "emr-containers",
        "list-tags-for-resource",
        "--resource-arn",
        arn,
    ]);
    assert_eq!(tags["tags"], json!({"team": "data"}));
}

#[tokio::test]
async fn raw_requests_are_verified() {
    let s = Server::start();
    let (key_id, secret) = profile_key(&s);
    let now = SystemTime::now();
    let good = Signing {
        key: (&key_id, &secret),
        token: None,
        time: now,
    };

    // Control: the same signer with the right key is accepted, so the refusals below are
    // about what they change and nothing else.
    let ok = send(signed(
        &s,
        &good,
        "GET",
        "/virtualclusters?states=RUNNING&states=TERMINATED&containerProviderType=EKS",
        b"",
    ))
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert!(ok.request_id.is_some());

    let unsigned = http::Request::get(format!("{}/virtualclusters", s.endpoint()))
        .body(Vec::new())
        .unwrap();
    let message = assert_refused(&send(unsigned).await, "MissingAuthenticationTokenException");
    assert_eq!(message, "Missing Authentication Token");

    let wrong_secret = Signing {
        key: (&key_id, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ..good
    };
    let message = assert_refused(
        &send(signed(&s, &wrong_secret, "GET", "/virtualclusters", b"")).await,
        "InvalidSignatureException",
    );
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );

    let stale = Signing {
        time: now - Duration::from_secs(600),
        ..good
    };
    let message = assert_refused(
        &send(signed(&s, &stale, "GET", "/virtualclusters", b"")).await,
        "InvalidSignatureException",
    );
    assert!(
        message.starts_with("Signature expired: ") && message.ends_with(" - 5 min.)"),
        "{message}"
    );

    let future = Signing {
        time: now + Duration::from_secs(600),
        ..good
    };
    let message = assert_refused(
        &send(signed(&s, &future, "GET", "/virtualclusters", b"")).await,
        "InvalidSignatureException",
    );
    assert!(
        message.starts_with("Signature not yet current: "),
        "{message}"
    );

    let unknown = Signing {
        key: ("AKIAIOSFODNN7EXAMPLE", &secret),
        ..good
    };
    let message = assert_refused(
        &send(signed(&s, &unknown, "GET", "/virtualclusters", b"")).await,
        "UnrecognizedClientException",
    );
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );

    let with_token = Signing {
        token: Some("not-a-session-of-this-key"),
        ..good
    };
    assert_refused(
        &send(signed(&s, &with_token, "GET", "/virtualclusters", b"")).await,
        "UnrecognizedClientException",
    );

    let mut no_signature = signed(&s, &good, "GET", "/virtualclusters", b"");
    let auth = no_signature.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let truncated = auth[..auth.find(", Signature=").unwrap()].to_string();
    no_signature
        .headers_mut()
        .insert("authorization", truncated.parse().unwrap());
    let message = assert_refused(&send(no_signature).await, "IncompleteSignatureException");
    assert_eq!(
        message,
        format!("Authorization header requires 'Signature' parameter. Authorization={truncated}")
    );
}

#[tokio::test]
async fn refused_create_virtual_cluster_creates_nothing() {
    let s = Server::start();
    let before = list_virtual_clusters(&s);
    let (key_id, secret) = profile_key(&s);
    let now = SystemTime::now();
    let good = Signing {
        key: (&key_id, &secret),
        token: None,
        time: now,
    };
    let body = CREATE_BODY.as_bytes();

    let unsigned = http::Request::post(format!("{}/virtualclusters", s.endpoint()))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    assert_refused(&send(unsigned).await, "MissingAuthenticationTokenException");
    let forged = Signing {
        key: (&key_id, "x"),
        ..good
    };
    assert_refused(
        &send(signed(&s, &forged, "POST", "/virtualclusters", body)).await,
        "InvalidSignatureException",
    );
    let stale = Signing {
        time: now - Duration::from_secs(3600),
        ..good
    };
    assert_refused(
        &send(signed(&s, &stale, "POST", "/virtualclusters", body)).await,
        "InvalidSignatureException",
    );
    let unknown = Signing {
        key: ("AKIAIOSFODNN7EXAMPLE", &secret),
        ..good
    };
    assert_refused(
        &send(signed(&s, &unknown, "POST", "/virtualclusters", body)).await,
        "UnrecognizedClientException",
    );
    // A correctly signed request whose body was swapped in transit.
    let mut tampered = signed(&s, &good, "POST", "/virtualclusters", body);
    *tampered.body_mut() = CREATE_BODY.replace("sneaky", "sneakier").into_bytes();
    assert_refused(&send(tampered).await, "InvalidSignatureException");

    assert_eq!(list_virtual_clusters(&s), before);
    assert!(
        !s.log().contains("sneaky"),
        "nothing about the refused requests reached the service"
    );

    // Control: the identical request signed correctly does create the cluster.
    let created = send(signed(&s, &good, "POST", "/virtualclusters", body)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["name"], "sneaky");
    assert_ne!(list_virtual_clusters(&s), before);
}

#[test]
fn keys_survive_a_restart() {
    let mut s = Server::start();
    let key = profile_key(&s);
    let keys_file = std::fs::read(s.data_dir.path().join("keys.json")).unwrap();
    s.restart();
    assert_eq!(profile_key(&s), key);
    assert_eq!(
        std::fs::read(s.data_dir.path().join("keys.json")).unwrap(),
        keys_file
    );
    list_virtual_clusters(&s);
}

#[test]
fn boto3_sees_aws_error_codes() {
    let s = Server::start();
    let out = s.python("auth_errors.py", &[]);
    assert!(out.contains("ok"), "{out}");
}
