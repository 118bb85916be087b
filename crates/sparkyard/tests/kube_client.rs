//! The embedded cluster's API server through kube-rs: CRUD, watches, the four patch types,
//! deletion, Jobs, and RBAC isolation of service-account tokens.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::time::Duration;

use cluster::{kube_client as client, ClusterServer};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Client;
use serde_json::json;

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// A pod no node can take (its node selector matches nothing), so it stays Pending and
/// unbound whatever the scheduler and kubelet do.
fn pending_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "t"}},
        "spec": {"nodeSelector": {"sparkyard.test/nowhere": "true"},
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "60"],
                                  "env": [{"name": "A", "value": "1"}]}]}
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_crud_watch_and_all_patch_types() {
    let server = ClusterServer::start();
    let client = client(&server.kubeconfig()).await;
    namespace(&client, "team-a").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");

    // A watch from "now" (resourceVersion 0: synthetic ADDED for what exists, then changes).
    let watch_params = WatchParams::default().labels("app=t").timeout(30);
    let mut stream = pods.watch(&watch_params, "0").await.unwrap().boxed();

    let created = pods
        .create(&PostParams::default(), &pending_pod("p1"))
        .await
        .unwrap();
    let status = created.status.clone().unwrap();
    assert_eq!(
        status.phase.as_deref(),
        Some("Pending"),
        "phase is set at creation"
    );
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert!(spec
        .volumes
        .unwrap()
        .iter()
        .any(|v| v.name.starts_with("kube-api-access-")));

    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Added(pod) => assert_eq!(pod.metadata.name.as_deref(), Some("p1")),
        other => panic!("expected ADDED, got {other:?}"),
    }

    // Merge patch.
    pods.patch(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"merge": "yes"}}})),
    )
    .await
    .unwrap();
    // Strategic merge: containers merge by name, so only the image changes (a merge patch
    // would replace the list, and a pod's containers are immutable but for the image).
    let smp = json!({"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}});
    let patched = pods
        .patch("p1", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let container = &patched.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("busybox:1.37"));
    assert_eq!(
        container.env.as_ref().unwrap().len(),
        1,
        "strategic merge keeps the env"
    );
    assert_eq!(container.command.as_ref().unwrap()[0], "sleep");
    // Server-side apply.
    let apply = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "labels": {"applied": "yes"}}});
    let applied = pods
        .patch(
            "p1",
            &PatchParams::apply("sparkyard-test").force(),
            &Patch::Apply(apply),
        )
        .await
        .unwrap();
    let labels = applied.metadata.labels.clone().unwrap();
    assert_eq!(
        (labels["merge"].as_str(), labels["applied"].as_str()),
        ("yes", "yes")
    );
    // JSON patch, with a resourceVersion test the way Spark sends it.
    let rv = applied.metadata.resource_version.clone().unwrap();
    let body = json!([{"op": "add", "path": "/metadata/labels/spark-exec-inactive", "value": "true"},
                      {"op": "add", "path": "/metadata/resourceVersion", "value": rv}]);
    let request = http::Request::patch("/api/v1/namespaces/team-a/pods/p1")
        .header("Content-Type", "application/json-patch+json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let json_patched: Pod = client.request(request).await.unwrap();
    assert_eq!(
        json_patched.metadata.labels.unwrap()["spark-exec-inactive"],
        "true"
    );
    // The same patch again carries a stale resourceVersion: 409.
    let request = http::Request::patch("/api/v1/namespaces/team-a/pods/p1")
        .header("Content-Type", "application/json-patch+json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    assert_eq!(
        api_error(client.request::<Pod>(request).await.unwrap_err()).0,
        409
    );
    // Pod spec is immutable beyond what Kubernetes allows.
    let err = pods
        .patch(
            "p1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartPolicy": "Never"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 422);

    // The watch saw the patches as MODIFIED.
    let mut modified = 0;
    while modified < 4 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Modified(_) => modified += 1,
            WatchEvent::Bookmark(_) => {}
            other => panic!("expected MODIFIED, got {other:?}"),
        }
    }

    // Selectors on lists: label (set-based) and field.
    pods.create(&PostParams::default(), &pending_pod("p2"))
        .await
        .unwrap();
    let listed = pods
        .list(&ListParams::default().labels("merge in (yes),applied"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let listed = pods
        .list(&ListParams::default().fields("metadata.name=p2,status.phase=Pending"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let err = pods
        .list(&ListParams::default().fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (400, "field label not supported: spec.bogus".to_string())
    );
    let page = pods.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = pods
        .list(
            &ListParams::default()
                .limit(1)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_ne!(rest.items[0].metadata.name, page.items[0].metadata.name);

    // Delete: an unbound pod goes at once; the watch reports DELETED.
    pods.delete("p1", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(pods.get("p1").await.unwrap_err()).0, 404);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Deleted(pod) => {
                assert_eq!(pod.metadata.name.as_deref(), Some("p1"));
                break;
            }
            WatchEvent::Added(pod) => assert_eq!(pod.metadata.name.as_deref(), Some("p2")),
            WatchEvent::Modified(_) | WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    // Deletecollection by label.
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=t"),
    )
    .await
    .unwrap();
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // Admission errors in the apiserver's words.
    let mut bad = pending_pod("p3");
    bad.spec.as_mut().unwrap().priority_class_name = Some("missing".into());
    let (code, message) = api_error(pods.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"p3\" is forbidden: no PriorityClass with name missing was found"
        )
    );
    let mut bad = pending_pod("p4");
    bad.spec.as_mut().unwrap().service_account_name = Some("ghost".into());
    let (code, message) = api_error(pods.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(code, 403);
    assert!(
        message.ends_with(
            "error looking up service account team-a/ghost: serviceaccount \"ghost\" not found"
        ),
        "{message}"
    );
    let nowhere: Api<Pod> = Api::namespaced(client.clone(), "nowhere");
    let (code, message) = api_error(
        nowhere
            .create(&PostParams::default(), &pending_pod("p5"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let mut bad = pending_pod("Bad_Name");
    bad.metadata.name = Some("Bad_Name".into());
    assert_eq!(
        api_error(pods.create(&PostParams::default(), &bad).await.unwrap_err()).0,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_defaulted_patched_and_deleted() {
    let server = ClusterServer::start();
    let client = client(&server.kubeconfig()).await;
    namespace(&client, "jobs").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "jobs");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"generateName": "runner-"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "nodeSelector": {"sparkyard.test/nowhere": "true"},
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["true"]}]}}}
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("runner-") && name.len() == "runner-".len() + 5,
        "{name}"
    );
    let uid = created.metadata.uid.clone().unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(
        (spec.completions, spec.parallelism, spec.backoff_limit),
        (Some(1), Some(1), Some(6))
    );
    assert_eq!(
        spec.selector.unwrap().match_labels.unwrap()["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        spec.template.metadata.unwrap().labels.unwrap()["job-name"],
        name
    );

    let patched = jobs
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.annotations.unwrap()["a"], "b");
    let applied = jobs
        .patch(
            "applied",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "applied"},
                "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        applied.metadata.name.as_deref(),
        Some("applied"),
        "apply creates when missing"
    );

    let bad: Job = serde_json::from_value(json!({"metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}}))
    .unwrap();
    let (code, message) = api_error(jobs.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.template.spec.restartPolicy"),
        "{message}"
    );

    jobs.delete(&name, &DeleteParams::background())
        .await
        .unwrap();
    // Background deletion of a job without finalizers removes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while jobs.get_opt(&name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "job was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = jobs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_reach_only_what_rbac_grants() {
    let server = ClusterServer::start();
    let admin = client(&server.kubeconfig()).await;
    namespace(&admin, "a").await;
    namespace(&admin, "b").await;

    // A token for system:serviceaccount:a:default through the TokenRequest API.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "a");
    let request =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = sas
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = token.status.unwrap().token.unwrap();
    let sa_client = client(&server.kubeconfig_with_token(&token, "sa-a")).await;

    let in_b: Api<Pod> = Api::namespaced(sa_client.clone(), "b");
    let (code, message) = api_error(in_b.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods is forbidden: User \"system:serviceaccount:a:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"b\""
    );
    let in_a: Api<Pod> = Api::namespaced(sa_client.clone(), "a");
    assert_eq!(
        api_error(in_a.list(&ListParams::default()).await.unwrap_err()).0,
        403,
        "nothing is granted by default"
    );

    let role: Role = serde_json::from_value(json!({"metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "pod-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "a"}]}))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "a")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    assert!(in_a
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        api_error(in_b.list(&ListParams::default()).await.unwrap_err()).0,
        403,
        "still refused in b"
    );
    let (code, _) = api_error(
        in_a.create(&PostParams::default(), &pending_pod("x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403, "the role grants reads only");

    // No token at all: 401.
    let anonymous = server.kubeconfig_with_token("", "anonymous");
    let text = std::fs::read_to_string(&anonymous)
        .unwrap()
        .replace("    token: \n", "    {}\n");
    std::fs::write(&anonymous, text).unwrap();
    let (code, _) = api_error(
        Api::<Pod>::namespaced(client(&anonymous).await, "a")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 401);
}

/// `pods/log` keeps stdout and stderr apart (the `stream` parameter of Kubernetes 1.32),
/// stamps lines on request, and refuses bad options with the apiserver's Status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_logs_keep_stdout_and_stderr_apart() {
    let server = ClusterServer::start();
    let client = client(&server.kubeconfig()).await;
    namespace(&client, "logs").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "logs");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "talker"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c",
                    "echo out-1; echo err-1 >&2; sleep 0.2; echo out-2; printf 'no newline' >&2"]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let phase = pods
            .get("talker")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if phase == "Succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pod did not succeed (phase {phase:?}):\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let raw = |query: &str| {
        let request =
            http::Request::get(format!("/api/v1/namespaces/logs/pods/talker/log?{query}"))
                .body(Vec::new())
                .unwrap();
        let client = client.clone();
        async move { client.request_text(request).await }
    };
    // Both streams, in arrival order. Two pipes drained by two readers give no order
    // between lines written at the same instant (containerd's neither), so only the
    // lines 0.2 s apart have one.
    let all = pods.logs("talker", &Default::default()).await.unwrap();
    let mut lines: Vec<&str> = all.lines().collect();
    let position = |line: &str| lines.iter().position(|l| *l == line);
    assert!(position("err-1") < position("out-2"), "{all}");
    assert!(position("out-1") < position("out-2"), "{all}");
    lines.sort();
    assert_eq!(lines, ["err-1", "no newline", "out-1", "out-2"], "{all}");
    assert_eq!(raw("stream=Stdout").await.unwrap(), "out-1\nout-2\n");
    assert_eq!(raw("stream=Stderr").await.unwrap(), "err-1\nno newline\n");
    assert_eq!(raw("stream=All&tailLines=1").await.unwrap(), "no newline\n");
    let stamped = raw("stream=Stdout&timestamps=true").await.unwrap();
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped}");
    for (line, text) in lines.iter().zip(["out-1", "out-2"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        chrono::DateTime::parse_from_rfc3339(time)
            .unwrap_or_else(|e| panic!("{time:?} is not RFC 3339: {e}"));
    }
    let (code, message) = api_error(raw("stream=Both").await.unwrap_err());
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "PodLogOptions \"talker\" is invalid: stream: Unsupported value: \"Both\": supported values: \"All\", \"Stderr\", \"Stdout\""
    );
    let (code, _) = api_error(raw("tailLines=-1").await.unwrap_err());
    assert_eq!(code, 422);
}
