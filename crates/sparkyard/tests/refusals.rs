//! Refused Kubernetes writes over HTTP change nothing (issue 16): each bad request gets a
//! `v1 Status` with kube-apiserver's code and reason, and a read-back shows the object (or
//! its absence) exactly as before. Requests go through kube-rs's client (TLS, the admin
//! credentials), raw where the typed API would refuse to send them.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use cluster::ClusterServer;
use http::{Method, Request};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

/// Sends a raw request; returns the status code and the body as JSON (Null if not JSON).
async fn raw(
    client: &Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A PATCH of ConfigMap `kept` with `content_type`.
async fn patch_kept(client: &Client, content_type: &str, body: &str) -> (u16, Value) {
    raw(
        client,
        Method::PATCH,
        &format!("{CMS}/kept"),
        content_type,
        body,
    )
    .await
}

/// A `v1 Status` failure with `code` and `reason`; returns its message.
fn status(reply: &(u16, Value), code: u16, reason: &str) -> String {
    let (got, body) = reply;
    assert_eq!(*got, code, "{body:#}");
    assert_eq!(body["kind"], "Status", "{body:#}");
    assert_eq!(body["status"], "Failure", "{body:#}");
    assert_eq!(body["code"], code, "{body:#}");
    assert_eq!(body["reason"], reason, "{body:#}");
    body["message"].as_str().unwrap_or("").to_string()
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_change_nothing() {
    let server = ClusterServer::start();
    let client = cluster::kube_client(&server.kubeconfig()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let original: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "kept", "labels": {"v": "1"}}, "data": {"k": "v"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &original).await.unwrap();
    let before = serde_json::to_value(cms.get("kept").await.unwrap()).unwrap();
    let unchanged = || async {
        let now = serde_json::to_value(cms.get("kept").await.unwrap()).unwrap();
        assert_eq!(now, before, "a refused write changed the object");
    };
    let absent = |name: &'static str| {
        let cms = cms.clone();
        async move {
            assert!(
                cms.get_opt(name).await.unwrap().is_none(),
                "a refused write created {name}"
            )
        }
    };
    let cm = |name: &str, data: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": data}})
            .to_string()
    };

    // Duplicate create.
    let reply = raw(
        &client,
        Method::POST,
        CMS,
        "application/json",
        &cm("kept", "other"),
    )
    .await;
    let message = status(&reply, 409, "AlreadyExists");
    assert_eq!(message, "configmaps \"kept\" already exists");
    unchanged().await;

    // Stale PUT: an older resourceVersion.
    let mut stale = before.clone();
    stale["data"]["k"] = json!("stale");
    stale["metadata"]["resourceVersion"] = json!("1");
    let reply = raw(
        &client,
        Method::PUT,
        &format!("{CMS}/kept"),
        "application/json",
        &stale.to_string(),
    )
    .await;
    let message = status(&reply, 409, "Conflict");
    assert!(
        message.starts_with("Operation cannot be fulfilled on configmaps \"kept\": the object has been modified; please apply your changes to the latest version and try again"),
        "{message}"
    );
    unchanged().await;

    // URL and body name differ.
    let mut renamed = before.clone();
    renamed["metadata"]["name"] = json!("other");
    renamed["data"]["k"] = json!("renamed");
    let reply = raw(
        &client,
        Method::PUT,
        &format!("{CMS}/kept"),
        "application/json",
        &renamed.to_string(),
    )
    .await;
    let message = status(&reply, 400, "BadRequest");
    assert!(
        message
            .contains("the name of the object (other) does not match the name on the URL (kept)"),
        "{message}"
    );
    unchanged().await;
    absent("other").await;

    // Body namespace differs from the URL's.
    let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "elsewhere", "namespace": "kube-system"}, "data": {"k": "v"}});
    let reply = raw(
        &client,
        Method::POST,
        CMS,
        "application/json",
        &elsewhere.to_string(),
    )
    .await;
    let message = status(&reply, 400, "BadRequest");
    assert!(
        message.contains(
            "the namespace of the provided object does not match the namespace sent on the request"
        ),
        "{message}"
    );
    absent("elsewhere").await;
    assert!(Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get_opt("elsewhere")
        .await
        .unwrap()
        .is_none());

    // Malformed body.
    let reply = raw(
        &client,
        Method::POST,
        CMS,
        "application/json",
        "{\"metadata\": {\"name\": \"broken\"",
    )
    .await;
    status(&reply, 400, "BadRequest");
    absent("broken").await;

    // A body over kube-apiserver's 3 MiB limit: 413, nothing read whole, nothing created.
    // The server answers without reading the rest and closes that connection (as Go's
    // server does), so the request goes on a client of its own, not the shared pool.
    let huge = cm("huge", &"x".repeat(4 * 1024 * 1024));
    let own = cluster::kube_client(&server.kubeconfig()).await;
    let reply = raw(&own, Method::POST, CMS, "application/json", &huge).await;
    let message = status(&reply, 413, "RequestEntityTooLarge");
    assert_eq!(message, "Request entity too large: limit is 3145728");
    absent("huge").await;

    // An invalid name.
    let reply = raw(
        &client,
        Method::POST,
        CMS,
        "application/json",
        &cm("Bad_Name", "v"),
    )
    .await;
    let message = status(&reply, 422, "Invalid");
    assert!(
        message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{message}"
    );

    // A patch type the server does not take, and a JSON patch with an invalid operation.
    let reply = patch_kept(&client, "text/plain", "k=v").await;
    status(&reply, 415, "UnsupportedMediaType");
    unchanged().await;
    let reply = patch_kept(
        &client,
        "application/json-patch+json",
        r#"[{"op": "frobnicate", "path": "/data/k", "value": "x"}]"#,
    )
    .await;
    assert!((400..500).contains(&reply.0), "{reply:?}");
    assert_eq!(reply.1["kind"], "Status", "{reply:?}");
    unchanged().await;
    let reply = patch_kept(
        &client,
        "application/json-patch+json",
        r#"[{"op": "test", "path": "/data/k", "value": "not-v"}, {"op": "replace", "path": "/data/k", "value": "x"}]"#,
    )
    .await;
    assert!(
        (400..500).contains(&reply.0),
        "a failed test op applies nothing: {reply:?}"
    );
    unchanged().await;

    // Delete with a precondition that does not hold.
    let precondition = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}});
    let reply = raw(
        &client,
        Method::DELETE,
        &format!("{CMS}/kept"),
        "application/json",
        &precondition.to_string(),
    )
    .await;
    let message = status(&reply, 409, "Conflict");
    assert!(
        message.contains(
            "Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000"
        ),
        "{message}"
    );
    unchanged().await;

    // A bad continue token, an unknown resource, an unsupported method.
    let reply = raw(
        &client,
        Method::GET,
        &format!("{CMS}?limit=1&continue=not-a-token"),
        "application/json",
        "",
    )
    .await;
    status(&reply, 400, "BadRequest");
    let reply = raw(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/widgets",
        "application/json",
        &cm("w", "v"),
    )
    .await;
    status(&reply, 404, "NotFound");
    let reply = raw(
        &client,
        Method::from_bytes(b"PROPFIND").unwrap(),
        &format!("{CMS}/kept"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(reply.0, 405, "{reply:?}");
    unchanged().await;
}

/// The AWS side (`python/aws_refusals.py`): IAM's NoSuchEntity, EntityAlreadyExists and
/// MalformedPolicyDocument; emr-containers' page-size and token checks over HTTP; S3's
/// invalid bucket names, multipart errors and unsigned requests — each read back unchanged.
#[test]
fn refused_aws_writes_change_nothing() {
    let s = support::Server::start();
    assert_eq!(s.python("aws_refusals.py", &[]).trim(), "ok");
}
