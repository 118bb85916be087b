//! The security matrix of issue 16: every identity is held to what it was granted.
//!
//! - Kubernetes: a service-account token reaches only what RBAC grants it — namespace `a`'s
//!   token, with full rights on pods (and their log, exec, attach and port-forward
//!   subresources), secrets and config maps in `a`, gets kube-apiserver's 403 `Status` for
//!   every verb on those in `b` and at the cluster scope, while the same requests in `a`
//!   pass authorization; refused writes leave `b` as it was. Given rights on roles and
//!   bindings, it grants nothing it does not hold (RBAC's escalation check). `b`'s token
//!   cannot read `a`, and a token that is only `system:authenticated` gets nothing.
//!   Requests go through kube-rs (raw where the typed API would not send them) and the
//!   real `kubectl`.
//! - AWS: every principal is held to its IAM policies on every service, and presigned S3
//!   URLs expire (`python/iam_matrix.py`, boto3).
//! - Pods: a pod cannot reach sparkyard's data directory (keys, databases, other pods'
//!   files), nor another pod's files through `/proc` or a volume whose name leaves its
//!   directory, and holds no capabilities that would let it take the sandbox apart.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::Path;
use std::time::Duration;

use cluster::{kube_client as client, kubectl, ClusterServer};
use futures::{AsyncBufReadExt, TryStreamExt};
use http::{Method, Request};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, AttachParams, ListParams, LogParams, PostParams, WatchParams};
use kube::Client;
use serde_json::{json, Value};

/// Generous guard against a hang; no outcome depends on it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Sends a raw request through kube-rs's client; returns the status code and the body as
/// JSON (Null if not JSON). A watch that is allowed streams until its timeout: only its
/// status is read.
async fn send(client: &Client, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let content_type = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    let response = tokio::time::timeout(
        HANG_GUARD,
        client.send(request.map(kube::client::Body::from)),
    )
    .await
    .unwrap_or_else(|_| panic!("{path}: no answer"))
    .unwrap();
    let code = response.status().as_u16();
    if code == 200 && path.contains("watch") {
        return (code, Value::Null);
    }
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// One refused request as kube-apiserver words it: `<resource>[ "<name>"] is forbidden:
/// User "<user>" cannot <verb> resource "<resource>[/<subresource>]" in API group "<group>"
/// (in the namespace "<ns>"|at the cluster scope)`, with `details` naming the resource.
struct Forbidden<'a> {
    user: &'a str,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
    namespace: &'a str,
}

impl Forbidden<'_> {
    fn message(&self) -> String {
        let qualified = if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let subject = if self.name.is_empty() {
            qualified
        } else {
            format!("{qualified} \"{}\"", self.name)
        };
        let combined = if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        format!(
            "{subject} is forbidden: User \"{}\" cannot {} resource \"{combined}\" in API group \"{}\" {scope}",
            self.user, self.verb, self.group
        )
    }

    fn assert(&self, what: &str, reply: &(u16, Value)) {
        let (code, body) = reply;
        assert_eq!(*code, 403, "{what}: {body:#}");
        let mut details = json!({"kind": self.resource});
        if !self.name.is_empty() {
            details["name"] = json!(self.name);
        }
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        let expected = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message(), "reason": "Forbidden",
            "details": details, "code": 403});
        assert_eq!(body, &expected, "{what}");
    }
}

/// A request and the refusal it must get: method, path, body, then the refusal's verb, API
/// group, resource, subresource, name and namespace.
type RefusedCell = (
    Method,
    String,
    Option<Value>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// Counts the cells checked, for the printed size of the matrix.
#[derive(Default)]
struct Tally(usize);

/// A pod that stays Pending and unbound: what RBAC is checked against, never run.
fn pending_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"matrix": "target"}},
        "spec": {"nodeSelector": {"sparkyard.test/nowhere": "true"},
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "60"]}]}})
}

fn object(kind: &str, name: &str) -> Value {
    match kind {
        "pods" => pending_pod(name),
        "secrets" => {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": {"matrix": "target"}},
            "data": {"password": "c2VjcmV0"}})
        }
        _ => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"matrix": "target"}},
            "data": {"k": "v"}})
        }
    }
}

async fn token_for(admin: &Client, namespace: &str, audiences: &[&str]) -> String {
    let request = serde_json::from_value(
        json!({"spec": {"audiences": audiences, "expirationSeconds": 3600}}),
    )
    .unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap()
}

/// Everything in namespace `ns` of the three kinds, as the admin reads it.
async fn snapshot(admin: &Client, ns: &str) -> Value {
    let mut all = json!({});
    for kind in ["pods", "secrets", "configmaps"] {
        let (code, list) = send(
            admin,
            Method::GET,
            &format!("/api/v1/namespaces/{ns}/{kind}"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{list:#}");
        all[kind] = list["items"].clone();
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_held_to_rbac() {
    let server = ClusterServer::start();
    let admin = client(&server.kubeconfig()).await;
    let mut tally = Tally::default();
    for ns in ["a", "b", "c"] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    // Full rights on pods (and their streaming subresources), secrets and config maps in its
    // own namespace, for `a:default` and `b:default` alike; `c:default` gets nothing.
    for ns in ["a", "b"] {
        for kind in ["pods", "secrets", "configmaps"] {
            let (code, body) = send(
                &admin,
                Method::POST,
                &format!("/api/v1/namespaces/{ns}/{kind}"),
                Some(&object(kind, "target")),
            )
            .await;
            assert_eq!(code, 201, "{body:#}");
        }
        let role: Role = serde_json::from_value(json!({"metadata": {"name": "full"},
            "rules": [{"apiGroups": [""], "verbs": ["*"], "resources": ["pods", "pods/log", "pods/exec",
                "pods/attach", "pods/portforward", "secrets", "configmaps"]}]}))
        .unwrap();
        Api::<Role>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &role)
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "full"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "full"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
    let sa_a =
        client(&server.kubeconfig_with_token(&token_for(&admin, "a", &[]).await, "sa-a")).await;
    let sa_b =
        client(&server.kubeconfig_with_token(&token_for(&admin, "b", &[]).await, "sa-b")).await;
    let sa_c =
        client(&server.kubeconfig_with_token(&token_for(&admin, "c", &[]).await, "sa-c")).await;
    let user_a = "system:serviceaccount:a:default";
    // The scheduler marks the pending pod unschedulable once (a write of its own); after
    // that nothing but a client changes namespace b.
    let unschedulable = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    };
    tokio::time::timeout(
        HANG_GUARD,
        kube::runtime::wait::await_condition(
            Api::<Pod>::namespaced(admin.clone(), "b"),
            "target",
            unschedulable,
        ),
    )
    .await
    .expect("the scheduler never reported b/target unschedulable")
    .unwrap();
    let b_before = snapshot(&admin, "b").await;

    // ---- a:default on every verb of every kind, in b (refused) and in a (authorized).
    for kind in ["pods", "secrets", "configmaps"] {
        let current = |ns: &str| {
            let admin = admin.clone();
            let path = format!("/api/v1/namespaces/{ns}/{kind}/target");
            async move { send(&admin, Method::GET, &path, None).await.1 }
        };
        for ns in ["b", "a"] {
            let base = format!("/api/v1/namespaces/{ns}/{kind}");
            let mut updated = current(ns).await;
            updated["metadata"]["labels"]["changed"] = json!("yes");
            let patch = json!({"metadata": {"labels": {"patched": "yes"}}});
            let selector = "labelSelector=matrix%3Dnone";
            let cells: Vec<(&str, &str, Method, String, Option<Value>)> = vec![
                ("get", "target", Method::GET, format!("{base}/target"), None),
                ("list", "", Method::GET, base.clone(), None),
                (
                    "watch",
                    "",
                    Method::GET,
                    format!("{base}?watch=true&timeoutSeconds=1"),
                    None,
                ),
                (
                    "watch",
                    "target",
                    Method::GET,
                    format!("/api/v1/watch/namespaces/{ns}/{kind}/target?timeoutSeconds=1"),
                    None,
                ),
                (
                    "create",
                    "",
                    Method::POST,
                    base.clone(),
                    Some(object(kind, "intruder")),
                ),
                (
                    "update",
                    "target",
                    Method::PUT,
                    format!("{base}/target"),
                    Some(updated),
                ),
                (
                    "patch",
                    "target",
                    Method::PATCH,
                    format!("{base}/target"),
                    Some(patch),
                ),
                (
                    "deletecollection",
                    "",
                    Method::DELETE,
                    format!("{base}?{selector}"),
                    None,
                ),
                (
                    "delete",
                    "target",
                    Method::DELETE,
                    format!("{base}/target"),
                    None,
                ),
            ];
            for (verb, name, method, path, body) in cells {
                let what = format!("{user_a}: {method} {path}");
                let reply = send(&sa_a, method.clone(), &path, body.as_ref()).await;
                if ns == "b" {
                    Forbidden {
                        user: user_a,
                        verb,
                        group: "",
                        resource: kind,
                        subresource: "",
                        name,
                        namespace: "b",
                    }
                    .assert(&what, &reply);
                } else {
                    let want = match verb {
                        "create" => 201,
                        _ => 200,
                    };
                    assert_eq!(reply.0, want, "{what}: {:#}", reply.1);
                }
                tally.0 += 1;
            }
        }
    }

    // ---- The pod subresources: the log, and the streaming ones. In b each is refused with
    // its subresource named; in a, authorization passes and the server answers what it
    // does for them (no log yet for a pod that never ran; exec, attach and port-forward
    // are not served).
    let (code, target) = send(
        &admin,
        Method::GET,
        "/api/v1/namespaces/a/pods/target",
        None,
    )
    .await;
    assert_eq!(code, 404, "a:default deleted its own pod above: {target:#}");
    let (code, body) = send(
        &admin,
        Method::POST,
        "/api/v1/namespaces/a/pods",
        Some(&pending_pod("target")),
    )
    .await;
    assert_eq!(code, 201, "{body:#}");
    let subresources: [(&str, Method, &str); 7] = [
        ("log", Method::GET, "get"),
        ("exec", Method::POST, "create"),
        ("exec", Method::GET, "get"),
        ("attach", Method::POST, "create"),
        ("attach", Method::GET, "get"),
        ("portforward", Method::POST, "create"),
        ("portforward", Method::GET, "get"),
    ];
    let mut answers_in_a = Vec::new();
    for (sub, method, verb) in subresources {
        for ns in ["b", "a"] {
            let query = match sub {
                "exec" => "?command=true&stdout=true",
                "attach" => "?stdout=true",
                "portforward" => "?ports=80",
                _ => "",
            };
            let path = format!("/api/v1/namespaces/{ns}/pods/target/{sub}{query}");
            let what = format!("{user_a}: {method} {path}");
            let reply = send(&sa_a, method.clone(), &path, None).await;
            if ns == "b" {
                Forbidden {
                    user: user_a,
                    verb,
                    group: "",
                    resource: "pods",
                    subresource: sub,
                    name: "target",
                    namespace: "b",
                }
                .assert(&what, &reply);
            } else {
                assert_ne!(reply.0, 403, "{what} is granted: {:#}", reply.1);
                assert_eq!(reply.1["kind"], "Status", "{what}: {:#}", reply.1);
                answers_in_a.push(format!("{method} {sub}: {} {}", reply.0, reply.1["reason"]));
            }
            tally.0 += 1;
        }
    }
    println!("a:default's own pod subresources, after authorization: {answers_in_a:#?}");
    // Eviction deletes a pod: not granted (the role names no pods/eviction), here nor there.
    for ns in ["b", "a"] {
        let path = format!("/api/v1/namespaces/{ns}/pods/target/eviction");
        let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "target", "namespace": ns}});
        let reply = send(&sa_a, Method::POST, &path, Some(&eviction)).await;
        Forbidden {
            user: user_a,
            verb: "create",
            group: "",
            resource: "pods",
            subresource: "eviction",
            name: "target",
            namespace: ns,
        }
        .assert(&path, &reply);
        tally.0 += 1;
    }

    // ---- The same refusals through the typed kube-rs API and its WebSocket exec, attach
    // and port-forward, as a controller in namespace a would make them.
    let secrets_b: Api<Secret> = Api::namespaced(sa_a.clone(), "b");
    let refused = |err: kube::Error| match err {
        kube::Error::Api(status) => (status.code, status.reason, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (code, reason, message) = refused(secrets_b.get("target").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        Forbidden {
            user: user_a,
            verb: "get",
            group: "",
            resource: "secrets",
            subresource: "",
            name: "target",
            namespace: "b"
        }
        .message()
    );
    let (code, _, _) = refused(secrets_b.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, 403);
    let (code, _, _) = refused(
        secrets_b
            .watch(&WatchParams::default(), "0")
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(code, 403);
    tally.0 += 3;
    let pods_b: Api<Pod> = Api::namespaced(sa_a.clone(), "b");
    // kube-rs opens these as WebSocket upgrades (GET), refused before any upgrade.
    let params = AttachParams::default().stdout(true).stderr(false);
    let refusals = [
        ("exec", pods_b.exec("target", ["true"], &params).await.err()),
        ("attach", pods_b.attach("target", &params).await.err()),
        (
            "portforward",
            pods_b.portforward("target", &[80]).await.err(),
        ),
    ];
    for (sub, err) in refusals {
        let (code, _, message) = refused(err.unwrap());
        assert_eq!(code, 403);
        assert_eq!(
            message,
            Forbidden {
                user: user_a,
                verb: "get",
                group: "",
                resource: "pods",
                subresource: sub,
                name: "target",
                namespace: "b"
            }
            .message()
        );
    }
    let (code, _, message) = refused(
        pods_b
            .logs("target", &LogParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("cannot get resource \"pods/log\""),
        "{message}"
    );
    tally.0 += 4;

    // ---- And through kubectl, as a person holding that token would try.
    let kubeconfig_a = server.server.data_dir.path().join("kubeconfig-sa-a");
    for (args, message) in [
        (
            vec!["-n", "b", "get", "secret", "target"],
            r#"secrets "target" is forbidden: User "system:serviceaccount:a:default" cannot get resource "secrets" in API group "" in the namespace "b""#,
        ),
        (
            vec!["-n", "b", "logs", "target"],
            r#"pods "target" is forbidden: User "system:serviceaccount:a:default" cannot get resource "pods" in API group "" in the namespace "b""#,
        ),
        (
            vec!["-n", "b", "exec", "target", "--", "true"],
            r#"pods "target" is forbidden: User "system:serviceaccount:a:default" cannot get resource "pods" in API group "" in the namespace "b""#,
        ),
        (
            vec!["-n", "b", "delete", "configmap", "target"],
            r#"configmaps "target" is forbidden: User "system:serviceaccount:a:default" cannot delete resource "configmaps" in API group "" in the namespace "b""#,
        ),
        (
            vec!["get", "pods", "--all-namespaces"],
            r#"pods is forbidden: User "system:serviceaccount:a:default" cannot list resource "pods" in API group "" at the cluster scope"#,
        ),
    ] {
        let out = kubectl(&kubeconfig_a, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "kubectl {args:?} succeeded");
        assert_eq!(
            stderr.trim(),
            format!("Error from server (Forbidden): {message}"),
            "kubectl {args:?}"
        );
        tally.0 += 1;
    }
    for (ns, verb, resource, answer) in [
        ("a", "get", "secrets", "yes"),
        ("b", "get", "secrets", "no"),
        ("a", "create", "pods/exec", "yes"),
        ("b", "create", "pods/exec", "no"),
        ("a", "create", "rolebindings", "no"),
    ] {
        let out = kubectl(&kubeconfig_a, &["auth", "can-i", verb, resource, "-n", ns]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            answer,
            "can-i {verb} {resource} -n {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tally.0 += 1;
    }

    // ---- Nothing of a's refused writes reached b.
    assert_eq!(
        snapshot(&admin, "b").await,
        b_before,
        "a refused request changed namespace b"
    );

    // ---- Cluster-scoped requests and the ways to widen one's own rights: none granted.
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let binding = |name: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "a"}]})
    };
    let mut cluster_binding = binding("escalate");
    cluster_binding["kind"] = json!("ClusterRoleBinding");
    let cluster_cells: Vec<RefusedCell> = vec![
        (
            Method::GET,
            "/api/v1/pods".into(),
            None,
            "list",
            "",
            "pods",
            "",
            "",
            "",
        ),
        (
            Method::GET,
            "/api/v1/secrets".into(),
            None,
            "list",
            "",
            "secrets",
            "",
            "",
            "",
        ),
        (
            Method::GET,
            "/api/v1/secrets?watch=true".into(),
            None,
            "watch",
            "",
            "secrets",
            "",
            "",
            "",
        ),
        (
            Method::GET,
            "/api/v1/namespaces".into(),
            None,
            "list",
            "",
            "namespaces",
            "",
            "",
            "",
        ),
        // A Namespace object is in itself (kube-apiserver's request info).
        (
            Method::GET,
            "/api/v1/namespaces/b".into(),
            None,
            "get",
            "",
            "namespaces",
            "",
            "b",
            "b",
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/b".into(),
            None,
            "delete",
            "",
            "namespaces",
            "",
            "b",
            "b",
        ),
        (
            Method::GET,
            "/api/v1/namespaces/a".into(),
            None,
            "get",
            "",
            "namespaces",
            "",
            "a",
            "a",
        ),
        (
            Method::GET,
            "/api/v1/nodes".into(),
            None,
            "list",
            "",
            "nodes",
            "",
            "",
            "",
        ),
        (
            Method::GET,
            "/api/v1/nodes/any/proxy/stats/summary".into(),
            None,
            "get",
            "",
            "nodes",
            "proxy",
            "any",
            "",
        ),
        (
            Method::POST,
            format!("{rbac}/clusterrolebindings"),
            Some(cluster_binding),
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
            "",
        ),
        (
            Method::POST,
            format!("{rbac}/namespaces/a/rolebindings"),
            Some(binding("escalate")),
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "",
            "a",
        ),
        (
            Method::PATCH,
            format!("{rbac}/namespaces/a/roles/full"),
            Some(json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})),
            "patch",
            "rbac.authorization.k8s.io",
            "roles",
            "",
            "full",
            "a",
        ),
        (
            Method::POST,
            "/api/v1/namespaces/b/serviceaccounts/default/token".into(),
            Some(
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
            ),
            "create",
            "",
            "serviceaccounts",
            "token",
            "default",
            "b",
        ),
    ];
    for (method, path, body, verb, group, resource, subresource, name, namespace) in cluster_cells {
        let what = format!("{user_a}: {method} {path}");
        let reply = send(&sa_a, method, &path, body.as_ref()).await;
        Forbidden {
            user: user_a,
            verb,
            group,
            resource,
            subresource,
            name,
            namespace,
        }
        .assert(&what, &reply);
        tally.0 += 1;
    }
    // Impersonation headers are not honoured: still a:default, still refused.
    let request = Request::builder()
        .uri("/api/v1/namespaces/b/secrets/target")
        .header("Impersonate-User", "sparkyard-admin")
        .header("Impersonate-Group", "system:masters")
        .body(Vec::new())
        .unwrap();
    let (code, _, message) = refused(sa_a.request::<Secret>(request).await.unwrap_err());
    assert_eq!((code, message.contains(user_a)), (403, true), "{message}");
    tally.0 += 1;
    // A token of a:default minted for another audience (STS, as IRSA's are) is not a
    // Kubernetes credential: 401.
    let sts_token = token_for(&admin, "a", &["sts.amazonaws.com"]).await;
    let sts_client = client(&server.kubeconfig_with_token(&sts_token, "sa-a-sts")).await;
    let reply = send(
        &sts_client,
        Method::GET,
        "/api/v1/namespaces/a/secrets/target",
        None,
    )
    .await;
    assert_eq!(
        (reply.0, &reply.1["reason"]),
        (401, &json!("Unauthorized")),
        "{:#}",
        reply.1
    );
    tally.0 += 1;
    let roles = send(
        &admin,
        Method::GET,
        &format!("{rbac}/namespaces/a/roles/full"),
        None,
    )
    .await
    .1;
    assert_eq!(
        roles["rules"][0]["resources"].as_array().unwrap().len(),
        7,
        "the refused patch changed the role"
    );
    for path in [
        format!("{rbac}/clusterrolebindings/escalate"),
        format!("{rbac}/namespaces/a/rolebindings/escalate"),
    ] {
        assert_eq!(
            send(&admin, Method::GET, &path, None).await.0,
            404,
            "{path} was created"
        );
    }

    // ---- Given rights on roles and role bindings in a (but not `escalate` or `bind`),
    // a:default may pass on what it holds and nothing more, as kube-apiserver's RBAC
    // escalation check has it.
    let binder: Role = serde_json::from_value(json!({"metadata": {"name": "binder"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                   "verbs": ["create", "get", "list", "update", "patch", "delete"]}]}))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &binder)
        .await
        .unwrap();
    let mut binding_binder = binding("binder");
    binding_binder["roleRef"] =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "binder"});
    let (code, body) = send(
        &admin,
        Method::POST,
        &format!("{rbac}/namespaces/a/rolebindings"),
        Some(&binding_binder),
    )
    .await;
    assert_eq!(code, 201, "{body:#}");
    let not_held = |kind: &str, name: &str, missing: &str| {
        format!("{kind}.rbac.authorization.k8s.io \"{name}\" is forbidden: user \"{user_a}\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:a\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{missing}")
    };
    let admin_rules = "{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}";
    let mut widened = send(
        &admin,
        Method::GET,
        &format!("{rbac}/namespaces/a/roles/full"),
        None,
    )
    .await
    .1;
    widened["rules"][0]["resources"]
        .as_array_mut()
        .unwrap()
        .push(json!("services"));
    let escalations: Vec<(Method, String, Value, &str, &str, String)> = vec![
        (Method::POST, format!("{rbac}/namespaces/a/rolebindings"), binding("escalate"), "rolebindings", "escalate",
         not_held("rolebindings", "escalate", admin_rules)),
        (Method::POST, format!("{rbac}/namespaces/a/roles"),
         json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "wider"},
                "rules": [{"apiGroups": [""], "resources": ["secrets", "services"], "verbs": ["get"]}]}),
         "roles", "wider", not_held("roles", "wider", "{APIGroups:[\"\"], Resources:[\"services\"], Verbs:[\"get\"]}")),
        (Method::PUT, format!("{rbac}/namespaces/a/roles/full"), widened, "roles", "full",
         not_held("roles", "full", "{APIGroups:[\"\"], Resources:[\"services\"], Verbs:[\"*\"]}")),
        (Method::PATCH, format!("{rbac}/namespaces/a/roles/binder"),
         json!({"rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["*"]}]}),
         "roles", "binder",
         not_held("roles", "binder", "{APIGroups:[\"rbac.authorization.k8s.io\"], Resources:[\"roles\"], Verbs:[\"*\"]}\n{APIGroups:[\"rbac.authorization.k8s.io\"], Resources:[\"rolebindings\"], Verbs:[\"*\"]}")),
    ];
    for (method, path, body, kind, name, message) in escalations {
        let what = format!("{user_a}: {method} {path}");
        let (code, status) = send(&sa_a, method, &path, Some(&body)).await;
        let expected = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Forbidden", "code": 403,
            "details": {"name": name, "group": "rbac.authorization.k8s.io", "kind": kind}});
        assert_eq!((code, &status), (403, &expected), "{what}");
        tally.0 += 1;
    }
    // What it holds, it may pass on: its own rules to c:default.
    let mut pass_on = binding("pass-on");
    pass_on["roleRef"] =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "full"});
    pass_on["subjects"] = json!([{"kind": "ServiceAccount", "name": "default", "namespace": "c"}]);
    let (code, body) = send(
        &sa_a,
        Method::POST,
        &format!("{rbac}/namespaces/a/rolebindings"),
        Some(&pass_on),
    )
    .await;
    assert_eq!(code, 201, "{body:#}");
    tally.0 += 1;
    for path in [
        format!("{rbac}/namespaces/a/rolebindings/escalate"),
        format!("{rbac}/namespaces/a/roles/wider"),
    ] {
        assert_eq!(
            send(&admin, Method::GET, &path, None).await.0,
            404,
            "{path} was created"
        );
    }
    let roles = send(
        &admin,
        Method::GET,
        &format!("{rbac}/namespaces/a/roles/full"),
        None,
    )
    .await
    .1;
    assert_eq!(
        roles["rules"][0]["resources"].as_array().unwrap().len(),
        7,
        "the refused update changed the role"
    );
    let roles = send(
        &admin,
        Method::GET,
        &format!("{rbac}/namespaces/a/roles/binder"),
        None,
    )
    .await
    .1;
    assert_eq!(
        roles["rules"][0]["verbs"].as_array().unwrap().len(),
        6,
        "the refused patch changed the role"
    );
    let (code, body) = send(
        &admin,
        Method::DELETE,
        &format!("{rbac}/namespaces/a/rolebindings/pass-on"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body:#}");

    // ---- b:default, with the same rights in b, reads nothing of a.
    let user_b = "system:serviceaccount:b:default";
    for (verb, path, name) in [
        ("get", "/api/v1/namespaces/a/secrets/target", "target"),
        ("list", "/api/v1/namespaces/a/secrets", ""),
    ] {
        let reply = send(&sa_b, Method::GET, path, None).await;
        Forbidden {
            user: user_b,
            verb,
            group: "",
            resource: "secrets",
            subresource: "",
            name,
            namespace: "a",
        }
        .assert(path, &reply);
        tally.0 += 1;
    }
    let reply = send(
        &sa_b,
        Method::GET,
        "/api/v1/namespaces/a/pods/target/log",
        None,
    )
    .await;
    Forbidden {
        user: user_b,
        verb: "get",
        group: "",
        resource: "pods",
        subresource: "log",
        name: "target",
        namespace: "a",
    }
    .assert("b:default reads a's pod log", &reply);
    let (code, _) = send(
        &sa_b,
        Method::GET,
        "/api/v1/namespaces/b/secrets/target",
        None,
    )
    .await;
    assert_eq!(code, 200, "b:default reads its own namespace's secret");
    tally.0 += 2;

    // ---- c:default is only system:authenticated (and system:serviceaccounts): discovery
    // and asking what it may do, nothing else — not even in its own namespace.
    let user_c = "system:serviceaccount:c:default";
    for (verb, path, resource, name, namespace) in [
        (
            "list",
            "/api/v1/namespaces".to_string(),
            "namespaces",
            "",
            "",
        ),
        (
            "get",
            "/api/v1/namespaces/c".to_string(),
            "namespaces",
            "c",
            "c",
        ),
        ("list", "/api/v1/pods".to_string(), "pods", "", ""),
        (
            "list",
            "/api/v1/namespaces/c/pods".to_string(),
            "pods",
            "",
            "c",
        ),
        (
            "list",
            "/api/v1/namespaces/c/secrets".to_string(),
            "secrets",
            "",
            "c",
        ),
        (
            "get",
            "/api/v1/namespaces/a/secrets/target".to_string(),
            "secrets",
            "target",
            "a",
        ),
        (
            "get",
            "/api/v1/namespaces/c/configmaps/kube-root-ca.crt".to_string(),
            "configmaps",
            "kube-root-ca.crt",
            "c",
        ),
        ("list", "/api/v1/nodes".to_string(), "nodes", "", ""),
    ] {
        let reply = send(&sa_c, Method::GET, &path, None).await;
        Forbidden {
            user: user_c,
            verb,
            group: "",
            resource,
            subresource: "",
            name,
            namespace,
        }
        .assert(&path, &reply);
        tally.0 += 1;
    }
    let (code, _) = send(&sa_c, Method::GET, "/api/v1", None).await;
    assert_eq!(code, 200, "discovery is for every authenticated user");
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "c", "verb": "list", "resource": "secrets"}}});
    let (code, answer) = send(
        &sa_c,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&review),
    )
    .await;
    assert_eq!(
        (code, &answer["status"]["allowed"]),
        (201, &json!(false)),
        "{answer:#}"
    );
    tally.0 += 2;

    println!("Kubernetes RBAC matrix: {} cells", tally.0);
}

/// `python/iam_matrix.py`: three roles against every service (one allowed operation each
/// for the one that has a policy; AccessDenied in each service's shape for everything
/// else, refused writes read back unchanged; Deny beats Allow), then presigned URLs.
#[test]
fn aws_principals_are_held_to_their_policies_and_presigned_urls_expire() {
    let s = support::Server::start();
    let out = s.python("iam_matrix.py", &["matrix", "presigned"]);
    let cells: usize = out
        .lines()
        .filter_map(|l| l.strip_prefix("cells "))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    println!("{out}IAM and presigned-URL matrix: {cells} cells");
}

/// The host processes of a container: the sandbox's monitor (`bwrap`, recorded by the
/// kubelet) and everything below it.
fn sandbox_processes(pod_dir: &Path) -> Vec<u32> {
    let record: Value = serde_json::from_slice(
        &std::fs::read(pod_dir.join("state/main/0.json")).expect("the kubelet's container record"),
    )
    .unwrap();
    let mut pids = vec![record["sandboxPid"].as_u64().unwrap() as u32];
    let mut i = 0;
    while i < pids.len() {
        let pid = pids[i];
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    pids
}

async fn wait_for_phase(pods: &Api<Pod>, name: &str, phases: &[&str]) -> String {
    let condition = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phases.contains(&phase))
    };
    let pod = tokio::time::timeout(
        HANG_GUARD,
        kube::runtime::wait::await_condition(pods.clone(), name, condition),
    )
    .await
    .unwrap_or_else(|_| panic!("pod {name} never reached {phases:?}"))
    .unwrap()
    .unwrap();
    pod.status.unwrap().phase.unwrap()
}

/// Pod 1 keeps a secret in its `/tmp` and in an emptyDir volume; pod 2, in another
/// namespace, tries every way to it and to sparkyard's own data directory — by path, by
/// the host view the sandbox keeps for spliced directories, through `/proc`, and by
/// unmounting what hides them — and fails each time, while it can use its own files.
///
/// The data directory is below the target directory, as the default one is below the
/// home directory: a host path pods see (read-only) unless it is hidden from them. One in
/// `/tmp` would prove nothing: pods get a `/tmp` of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_cannot_reach_the_data_directory_or_each_other() {
    let server = ClusterServer::start_with_aws_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let data = server.server.data_dir.path().canonicalize().unwrap();
    let admin = client(&server.kubeconfig()).await;
    for ns in ["victim", "prober"] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }

    // Pod 1's claim: the default class provisions it on pod 1's node.
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(admin.clone(), "victim");
    let claim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}}))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    // Pod 1 makes its secret from the kernel's randomness: it crosses no API.
    let victims: Api<Pod> = Api::namespaced(admin.clone(), "victim");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "holder"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "volumes": [{"name": "vol", "emptyDir": {}},
                        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "main", "image": "busybox:1.36",
                "volumeMounts": [{"name": "vol", "mountPath": "/vol"}, {"name": "claim", "mountPath": "/claim"}],
                "command": ["sh", "-c",
                    "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /tmp/secret && cp /tmp/secret /vol/secret && cp /tmp/secret /claim/secret && echo ready && exec sleep 600"]}]}}))
    .unwrap();
    let holder = victims.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        wait_for_phase(&victims, "holder", &["Running", "Succeeded", "Failed"]).await,
        "Running"
    );
    let mut lines = victims
        .log_stream(
            "holder",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap()
        .lines();
    let first = tokio::time::timeout(HANG_GUARD, lines.try_next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("ready"), "{}", server.log());

    let pod_dir_name = format!("victim_holder_{}", holder.metadata.uid.unwrap());
    // Where pod 1's claim lives on the host: its bound volume's directory.
    let volume = claims
        .get("data")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_name
        .unwrap();
    let volumes: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(admin.clone());
    let claim_dir = std::path::PathBuf::from(
        volumes
            .get(&volume)
            .await
            .unwrap()
            .spec
            .unwrap()
            .host_path
            .unwrap()
            .path,
    );
    assert!(claim_dir.starts_with(&data), "{claim_dir:?}");
    let pod_dir = data.join("cluster/pods").join(&pod_dir_name);
    let secret = std::fs::read_to_string(pod_dir.join("tmp/secret")).unwrap();
    assert_eq!(secret.len(), 32, "{secret:?}");
    // The host sees pod 1's files through /proc/<pid>/root: the pids are the right ones.
    let pids = sandbox_processes(&pod_dir);
    assert!(
        pids.iter().any(
            |p| std::fs::read_to_string(format!("/proc/{p}/root/tmp/secret"))
                .ok()
                .as_deref()
                == Some(secret.as_str())
        ),
        "no process of pod 1 among {pids:?} has its /tmp"
    );
    // What must never show in pod 2's output.
    let keys = std::fs::read_to_string(data.join("keys.json")).unwrap();
    let keys: Value = serde_json::from_str(&keys).unwrap();
    let bootstrap_secret = keys["keys"][0]["secretAccessKey"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_token = server.admin_token();
    let sa_key = std::fs::read_to_string(data.join("cluster/pki/sa.key")).unwrap();
    let sa_key_line = sa_key.lines().nth(1).unwrap().to_string();

    // Pod 2 mounts a volume below /etc, which makes the sandbox splice /etc and so bind the
    // host's root at its host view (/.sparkyard/host): that path is probed too.
    let script = r#"
probe() { name=$1; shift; out=$("$@" 2>&1); rc=$?; printf 'PROBE %s rc=%s out=%s\n' "$name" "$rc" "$(printf %s "$out" | tr '\n' '|' | head -c 4000)"; }
probe own-files sh -c 'echo mine > /tmp/mine && cat /tmp/mine'
probe data-dir-parent ls -a "$(dirname "$DATA")"
probe data-dir ls -A "$DATA"
probe keys cat "$DATA/keys.json"
probe credentials cat "$DATA/aws/credentials"
probe services-db head -c 64 "$DATA/services.db"
probe admin-token cat "$DATA/cluster/pki/admin.token"
probe sa-key cat "$DATA/cluster/pki/sa.key"
probe pods-dir ls -A "$DATA/cluster/pods"
probe victim-tmp cat "$DATA/cluster/pods/$VICTIM/tmp/secret"
probe victim-volume cat "$DATA/cluster/pods/$VICTIM/volumes/vol/secret"
probe victim-claim cat "$CLAIM_DIR/secret"
probe host-view ls -d /.sparkyard/host/usr
probe host-view-keys cat "/.sparkyard/host$DATA/keys.json"
probe host-view-victim cat "/.sparkyard/host$DATA/cluster/pods/$VICTIM/tmp/secret"
for pid in $PIDS; do
  probe proc-$pid-tmp cat /proc/$pid/root/tmp/secret
  probe proc-$pid-volume cat /proc/$pid/root/vol/secret
  probe proc-$pid-claim cat /proc/$pid/root/claim/secret
done
probe proc-pids sh -c 'ls /proc | grep -E "^[0-9]+$"'
probe unmask sh -c "umount '$DATA' && cat '$DATA/keys.json'"
probe unmask-view sh -c "umount '/.sparkyard/host$DATA' && cat '/.sparkyard/host$DATA/keys.json'"
probe capabilities grep CapEff /proc/self/status
"#;
    let probers: Api<Pod> = Api::namespaced(admin.clone(), "prober");
    let pids_text = pids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "prober"},
        "spec": {"restartPolicy": "Never",
            "volumes": [{"name": "splice", "emptyDir": {}}],
            "containers": [{"name": "main", "image": "busybox:1.36",
                "volumeMounts": [{"name": "splice", "mountPath": "/etc/sparkyard-probe"}],
                "env": [{"name": "DATA", "value": data.to_str().unwrap()},
                        {"name": "VICTIM", "value": pod_dir_name},
                        {"name": "CLAIM_DIR", "value": claim_dir.to_str().unwrap()},
                        {"name": "PIDS", "value": pids_text}],
                "command": ["sh", "-c", script]}]}}))
    .unwrap();
    probers.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        wait_for_phase(&probers, "prober", &["Succeeded", "Failed"]).await,
        "Succeeded"
    );
    let log = probers.logs("prober", &LogParams::default()).await.unwrap();

    for (what, value) in [
        ("pod 1's secret", secret.as_str()),
        ("the bootstrap secret key", &bootstrap_secret),
        ("the cluster admin token", admin_token.as_str()),
        ("the service-account signing key", &sa_key_line),
    ] {
        assert!(!log.contains(value), "pod 2 read {what}:\n{log}");
    }
    let probes: Vec<(String, i32, String)> = log
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .map(|l| {
            let (name, rest) = l.split_once(" rc=").unwrap();
            let (rc, out) = rest.split_once(" out=").unwrap();
            (name.to_string(), rc.parse().unwrap(), out.to_string())
        })
        .collect();
    let probe = |name: &str| {
        probes
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no probe {name} in\n{log}"))
            .clone()
    };
    // Controls: the pod works, the data directory's path is one it can name, and the host
    // view exists — so the refusals below are the sandbox's doing.
    assert_eq!(
        probe("own-files"),
        ("own-files".into(), 0, "mine".into()),
        "{log}"
    );
    let (_, rc, parent) = probe("data-dir-parent");
    let base = data.file_name().unwrap().to_str().unwrap();
    assert!(
        rc == 0 && parent.split('|').any(|e| e == base),
        "the data directory's parent is not visible, so nothing is probed:\n{log}"
    );
    assert_eq!(probe("host-view").1, 0, "no host view to probe:\n{log}");
    // The data directory is an empty directory to the pod.
    assert_eq!(
        probe("data-dir"),
        ("data-dir".into(), 0, String::new()),
        "{log}"
    );
    let mut refused = 0;
    for (name, rc, out) in &probes {
        if [
            "own-files",
            "data-dir-parent",
            "host-view",
            "data-dir",
            "proc-pids",
            "capabilities",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        assert_ne!(*rc, 0, "probe {name} succeeded: {out}\n{log}");
        refused += 1;
    }
    // Pod 2 sees only its own processes (a pid namespace of its own), and holds no
    // capability (so it cannot unmount what hides the data directory, nor mount or make
    // devices).
    let (_, _, listed) = probe("proc-pids");
    let visible: Vec<u32> = listed.split('|').filter_map(|e| e.parse().ok()).collect();
    assert!(visible.contains(&1), "{log}");
    assert!(
        !pids.iter().any(|p| visible.contains(p)),
        "pod 2 sees pod 1's processes {pids:?}: {visible:?}"
    );
    assert_eq!(
        probe("capabilities").2,
        "CapEff:\t0000000000000000",
        "{log}"
    );

    // Nor through a volume whose name leaves the directory it names: an emptyDir named
    // after pod 1's directory is invalid at the API, and a claim named after pod 1's
    // namespace's claim is not found by the scheduler (the pod is never scheduled; the
    // kubelet would not find it either).
    let mut sneaky: Value = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sneaky"},
        "spec": {"restartPolicy": "Never",
            "volumes": [{"name": format!("../{pod_dir_name}"), "emptyDir": {}}],
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["cat", "/v/tmp/secret"],
                "volumeMounts": [{"name": format!("../{pod_dir_name}"), "mountPath": "/v"}]}]}});
    let (code, status) = send(
        &admin,
        Method::POST,
        "/api/v1/namespaces/prober/pods",
        Some(&sneaky),
    )
    .await;
    assert_eq!(
        (code, &status["reason"]),
        (422, &json!("Invalid")),
        "{status:#}"
    );
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("Pod \"sneaky\" is invalid: spec.volumes[0].name: Invalid value: \"../{pod_dir_name}\": a lowercase RFC 1123 label")),
        "{message}"
    );
    refused += 1;
    sneaky["spec"]["volumes"] =
        json!([{"name": "claim", "persistentVolumeClaim": {"claimName": "../victim/data"}}]);
    sneaky["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "claim", "mountPath": "/v"}]);
    sneaky["spec"]["containers"][0]["command"] = json!(["cat", "/v/secret"]);
    let (code, status) = send(
        &admin,
        Method::POST,
        "/api/v1/namespaces/prober/pods",
        Some(&sneaky),
    )
    .await;
    assert_eq!(code, 201, "{status:#}");
    let config = kube::runtime::watcher::Config::default().fields("involvedObject.name=sneaky");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(admin.clone(), "prober");
    let mut stream = std::pin::pin!(kube::runtime::watcher(events, config));
    let failed = tokio::time::timeout(HANG_GUARD, async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let kube::runtime::watcher::Event::Apply(e)
            | kube::runtime::watcher::Event::InitApply(e) = event
            {
                if e.reason.as_deref() == Some("FailedScheduling") {
                    return e.message.unwrap_or_default();
                }
            }
        }
        panic!("the event watch ended");
    })
    .await
    .expect("no FailedScheduling event for the claim named ../victim/data");
    assert!(
        failed.contains("nodes are available: persistentvolumeclaim \"../victim/data\" not found."),
        "{failed}"
    );
    let sneaky = probers.get("sneaky").await.unwrap();
    let status = sneaky.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(status
        .container_statuses
        .unwrap_or_default()
        .iter()
        .all(
            |c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_none()
                && c.state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .is_none()
        ));
    refused += 1;
    assert_eq!(
        std::fs::read_to_string(claim_dir.join("secret")).unwrap(),
        secret
    );
    // Containers outlive sparkyard (their shims do): pod 1 goes before the server does.
    victims
        .delete("holder", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let holder_uid = pod_dir_name.rsplit('_').next().unwrap().to_string();
    tokio::time::timeout(
        HANG_GUARD,
        kube::runtime::wait::await_condition(
            victims.clone(),
            "holder",
            kube::runtime::conditions::is_deleted(&holder_uid),
        ),
    )
    .await
    .expect("pod 1 was not deleted")
    .unwrap();
    println!(
        "pod isolation: {} probes, {refused} refused",
        probes.len() + 2
    );
}
