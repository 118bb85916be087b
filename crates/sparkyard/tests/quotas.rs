//! ResourceQuota and LimitRange (issue 17) through the real `kubectl` and kube-rs: a quota
//! refuses the pod that would exceed it with kube's 403 and stores nothing, a finished pod
//! frees its share, `kubectl get/describe quota` print kube's columns; a LimitRange's
//! defaults land on the stored pod and its `max` refuses; racing creates never share the
//! last slot. Waits are `kubectl wait` (a watch); their timeouts only guard against a hang.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use cluster::{kubectl, ClusterServer};
use serde_json::Value;

fn run(server: &ClusterServer, args: &[&str]) -> (bool, String, String) {
    let out = kubectl(&server.kubeconfig(), args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(server: &ClusterServer, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(server, args);
    assert!(
        success,
        "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
        server.log()
    );
    stdout
}

fn get(server: &ClusterServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).unwrap()
}

fn write(server: &ClusterServer, name: &str, yaml: &str) -> String {
    let path = server.server.data_dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_string()
}

/// `kubectl create -f` of `yaml`; the stderr when it is refused.
fn create(server: &ClusterServer, name: &str, yaml: &str) -> Result<(), String> {
    let path = write(server, name, yaml);
    match run(server, &["create", "-f", &path]) {
        (true, _, _) => Ok(()),
        (false, _, stderr) => Err(stderr),
    }
}

fn pod(ns: &str, name: &str, command: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, \"{command}\"]\n{resources}"
    )
}

fn cpu_request(cpu: &str) -> String {
    format!("    resources:\n      requests:\n        cpu: {cpu}\n")
}

/// Waits (a watch, through `kubectl wait`) until `jsonpath` of `object` is `value`.
fn wait_for(server: &ClusterServer, ns: &str, object: &str, jsonpath: &str, value: &str) {
    ok(
        server,
        &[
            "wait",
            "-n",
            ns,
            object,
            &format!("--for=jsonpath={{{jsonpath}}}={value}"),
            "--timeout=-1s",
        ],
    );
}

fn assert_absent(server: &ClusterServer, ns: &str, pod: &str) {
    let (found, _, stderr) = run(server, &["get", "pod", pod, "-n", ns]);
    assert!(!found, "refused pod {pod} was stored");
    assert!(stderr.contains("NotFound"), "{stderr}");
}

#[test]
fn a_quota_refuses_what_exceeds_it_and_a_finished_pod_frees_its_share() {
    let server = ClusterServer::start();
    ok(&server, &["create", "namespace", "team"]);
    create(
        &server,
        "quota.yaml",
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\n  namespace: team\nspec:\n  hard:\n    requests.cpu: \"2\"\n    pods: \"3\"\n    count/configmaps: \"5\"\n",
    )
    .unwrap();
    // In force from its first write: hard and used are there at once.
    let quota = get(&server, &["get", "quota", "compute", "-n", "team"]);
    assert_eq!(quota["status"]["hard"]["requests.cpu"], "2", "{quota:#}");
    assert_eq!(quota["status"]["used"]["requests.cpu"], "0", "{quota:#}");
    // kube-root-ca.crt is the namespace's one ConfigMap.
    assert_eq!(
        quota["status"]["used"]["count/configmaps"], "1",
        "{quota:#}"
    );

    let short = "echo done";
    // `first` runs until the test lets it finish (a file it waits for; pods see the host's
    // /var read-only): were it to end by itself, it could free its share before `second`.
    let gate_dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let gate = gate_dir.path().join("finish");
    let gated = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; echo done",
        gate.display()
    );
    create(
        &server,
        "first.yaml",
        &pod("team", "first", &gated, &cpu_request("1500m")),
    )
    .unwrap();
    let refused = create(
        &server,
        "second.yaml",
        &pod("team", "second", "sleep 3600", &cpu_request("1")),
    )
    .unwrap_err();
    assert!(
        refused.contains("Error from server (Forbidden)")
            && refused.contains("pods \"second\" is forbidden: exceeded quota: compute, requested: requests.cpu=1, used: requests.cpu=1500m, limited: requests.cpu=2"),
        "{refused}"
    );
    assert_absent(&server, "team", "second");
    // A container that names no cpu request is refused by name.
    let refused = create(&server, "bare.yaml", &pod("team", "bare", short, "")).unwrap_err();
    assert!(
        refused.contains("pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: main"),
        "{refused}"
    );
    assert_absent(&server, "team", "bare");

    // `first` finishes: Succeeded pods do not count, and the controller says so.
    std::fs::write(&gate, "").unwrap();
    wait_for(&server, "team", "pod/first", ".status.phase", "Succeeded");
    wait_for(
        &server,
        "team",
        "quota/compute",
        ".status.used.requests\\.cpu",
        "0",
    );
    create(
        &server,
        "second.yaml",
        &pod("team", "second", "sleep 3600", &cpu_request("1")),
    )
    .unwrap();
    wait_for(&server, "team", "quota/compute", ".status.used.pods", "1");

    let table = ok(&server, &["get", "quota", "-n", "team"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE", "REQUEST", "LIMIT"], "{table}");
    assert!(
        table.contains("count/configmaps: 1/5, pods: 1/3, requests.cpu: 1/2"),
        "{table}"
    );
    let described = ok(&server, &["describe", "quota", "compute", "-n", "team"]);
    let row = |name: &str| {
        described
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(
        row("requests.cpu"),
        Some(vec!["requests.cpu", "1", "2"]),
        "{described}"
    );
    assert_eq!(row("pods"), Some(vec!["pods", "1", "3"]), "{described}");

    // Object counts: ConfigMaps up to five.
    for i in 0..4 {
        ok(
            &server,
            &["create", "configmap", &format!("cm-{i}"), "-n", "team"],
        );
    }
    let (created, _, stderr) = run(&server, &["create", "configmap", "cm-4", "-n", "team"]);
    assert!(!created);
    assert!(
        stderr.contains("configmaps \"cm-4\" is forbidden: exceeded quota: compute, requested: count/configmaps=1, used: count/configmaps=5, limited: count/configmaps=5"),
        "{stderr}"
    );
    let (found, _, _) = run(&server, &["get", "configmap", "cm-4", "-n", "team"]);
    assert!(!found);
}

const LIMITS: &str = "\
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
  namespace: bounded
spec:
  limits:
  - type: Container
    max: {cpu: \"2\"}
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 250m}
";

#[test]
fn a_limit_range_defaults_containers_and_refuses_past_its_max() {
    let server = ClusterServer::start();
    ok(&server, &["create", "namespace", "bounded"]);
    create(&server, "limits.yaml", LIMITS).unwrap();
    // SetDefaults_LimitRangeItem: defaultRequest memory from default.
    let stored = get(&server, &["get", "limits", "limits", "-n", "bounded"]);
    assert_eq!(
        stored["spec"]["limits"][0]["defaultRequest"]["memory"], "256Mi",
        "{stored:#}"
    );
    let table = ok(&server, &["get", "limitranges", "-n", "bounded"]);
    assert!(
        table.starts_with("NAME") && table.contains("CREATED AT"),
        "{table}"
    );

    create(
        &server,
        "plain.yaml",
        &pod("bounded", "plain", "sleep 3600", ""),
    )
    .unwrap();
    let plain = get(&server, &["get", "pod", "plain", "-n", "bounded"]);
    let resources = &plain["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["cpu"], "500m", "{plain:#}");
    assert_eq!(resources["limits"]["memory"], "256Mi", "{plain:#}");
    assert_eq!(resources["requests"]["cpu"], "250m", "{plain:#}");
    assert_eq!(resources["requests"]["memory"], "256Mi", "{plain:#}");
    assert_eq!(
        plain["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main"
    );
    assert_eq!(plain["status"]["qosClass"], "Burstable");

    let greedy = "    resources:\n      limits:\n        cpu: \"3\"\n";
    let refused = create(
        &server,
        "greedy.yaml",
        &pod("bounded", "greedy", "sleep 1", greedy),
    )
    .unwrap_err();
    assert!(
        refused.contains(
            "pods \"greedy\" is forbidden: maximum cpu usage per Container is 2, but limit is 3"
        ),
        "{refused}"
    );
    assert_absent(&server, "bounded", "greedy");

    // A LimitRange whose default is above its max is invalid, and not stored.
    let bad = LIMITS
        .replace("name: limits", "name: inverted")
        .replace("cpu: 500m", "cpu: \"3\"");
    let refused = create(&server, "inverted.yaml", &bad).unwrap_err();
    assert!(
        refused.contains("LimitRange \"inverted\" is invalid")
            && refused.contains("spec.limits[0].default[cpu]")
            && refused.contains("default value 3 is greater than max value 2"),
        "{refused}"
    );
    let (found, _, _) = run(&server, &["get", "limits", "inverted", "-n", "bounded"]);
    assert!(!found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_never_share_the_last_slot() {
    use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
    use kube::api::{Api, PostParams};

    let server = ClusterServer::start();
    ok(&server, &["create", "namespace", "race"]);
    let client = cluster::kube_client(&server.kubeconfig()).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "race");
    let quota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slots"}, "spec": {"hard": {"pods": "3"}}}))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "race");
    let creates = (0..12).map(|i| {
        let pods = pods.clone();
        async move {
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("p{i}")},
                "spec": {"restartPolicy": "Never", "containers": [
                    {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await
        }
    });
    let results = futures::future::join_all(creates).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted, 3, "{results:#?}");
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        let kube::Error::Api(status) = result else {
            panic!("{result:?}")
        };
        assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
        let details = status.details.as_ref().expect("details");
        assert_eq!(details.kind, "pods");
        assert!(details.name.starts_with('p'), "{details:?}");
        assert!(
            status.message.contains("is forbidden: exceeded quota: slots, requested: pods=1, used: pods=3, limited: pods=3"),
            "{}",
            status.message
        );
    }
    let stored = get(&server, &["get", "pods", "-n", "race"]);
    assert_eq!(stored["items"].as_array().unwrap().len(), 3, "{stored:#}");
}
