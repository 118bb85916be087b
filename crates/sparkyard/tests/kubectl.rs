//! The embedded cluster through the real `kubectl` (1.32): discovery, OpenAPI-backed
//! `apply`, Table output, describe, delete with --wait, and `get -w`.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{kubectl, kubectl_binary, ClusterServer};

fn ok(server: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&server.kubeconfig(), args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

fn apply(server: &ClusterServer, name: &str, yaml: &str) -> String {
    let path = server.server.data_dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    ok(server, &["apply", "-f", path.to_str().unwrap()])
}

/// The seed's four priority classes.
const PRIORITY_CLASSES: &str = "\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: critical-priority
value: 400
globalDefault: true
description: time-critical drivers
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: realtime-priority
value: 300
globalDefault: false
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high-priority
value: 200
globalDefault: false
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: low-priority
value: 100
globalDefault: false
";

/// A pod no node can take: it stays Pending, so the test does not depend on the kubelet.
const PENDING_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: waiting
  namespace: default
  labels: {app: demo}
spec:
  priorityClassName: high-priority
  nodeSelector: {sparkyard.test/nowhere: \"true\"}
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, \"60\"]
";

#[test]
fn apply_priority_classes_and_get_them_with_real_columns() {
    let server = ClusterServer::start();
    let out = apply(&server, "pc.yml", PRIORITY_CLASSES);
    assert!(
        out.contains("priorityclass.scheduling.k8s.io/critical-priority created"),
        "{out}"
    );
    let again = apply(&server, "pc.yml", PRIORITY_CLASSES);
    assert!(
        again.contains("priorityclass.scheduling.k8s.io/low-priority unchanged"),
        "{again}"
    );

    let table = ok(&server, &["get", "priorityclass"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    let row = |name: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{table}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(row("critical-priority")[1..3], ["400", "true"]);
    assert_eq!(row("low-priority")[1..3], ["100", "false"]);
    // Short name from discovery.
    assert!(ok(&server, &["get", "pc", "-o", "name"])
        .contains("priorityclass.scheduling.k8s.io/realtime-priority"));

    // The globalDefault class is applied to a pod that names none.
    let created = apply(
        &server,
        "pod.yml",
        &PENDING_POD.replace("  priorityClassName: high-priority\n", ""),
    );
    assert!(created.contains("pod/waiting created"), "{created}");
    let priority = ok(
        &server,
        &[
            "get",
            "pod",
            "waiting",
            "-o",
            "jsonpath={.spec.priorityClassName}/{.spec.priority}",
        ],
    );
    assert_eq!(priority, "critical-priority/400");
}

#[test]
fn pods_get_wide_describe_and_delete() {
    let server = ClusterServer::start();
    apply(&server, "pc.yml", PRIORITY_CLASSES);
    apply(&server, "pod.yml", PENDING_POD);

    let wide = ok(&server, &["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let row: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["waiting", "0/1", "Pending", "0"]);

    let all = ok(&server, &["get", "pods", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );

    let describe = ok(&server, &["describe", "pod", "waiting"]);
    for expected in [
        "Name:",
        "waiting",
        "Priority:",
        "200",
        "Priority Class Name:",
        "high-priority",
        "Status:",
        "Pending",
        "Events:",
    ] {
        assert!(
            describe.contains(expected),
            "{expected} missing from:\n{describe}"
        );
    }

    // A pod on no node has no kubelet to wait for: kube-apiserver removes it at once, so
    // it is gone the moment the DELETE returns (`--wait=false`: kubectl does not poll).
    let deleted = ok(&server, &["delete", "pod", "waiting", "--wait=false"]);
    assert!(deleted.contains("pod \"waiting\" deleted"), "{deleted}");
    let gone = kubectl(&server.kubeconfig(), &["get", "pod", "waiting"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("pods \"waiting\" not found"));
}

#[test]
fn get_pods_watch_streams_changes() {
    let server = ClusterServer::start();
    apply(&server, "pc.yml", PRIORITY_CLASSES);
    apply(
        &server,
        "first.yml",
        &PENDING_POD.replace("name: waiting", "name: first"),
    );
    let cache = server.kubeconfig().parent().unwrap().join("kube-cache");
    let mut watch = Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods", "-w", "--request-timeout=60s"])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch is established once kubectl has printed the list it starts from (it
    // watches from that list's resourceVersion, so nothing after it is missed).
    let header = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("kubectl get -w prints its header");
    assert!(header.starts_with("NAME "), "{header}");
    let first = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("kubectl get -w prints the existing pod");
    assert!(first.starts_with("first "), "{first}");
    apply(&server, "pod.yml", PENDING_POD);
    ok(&server, &["label", "pod", "waiting", "stage=two"]);
    ok(&server, &["delete", "pod", "waiting"]);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("waiting "))
        .count()
        < 3
        && Instant::now() < deadline
    {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let events: Vec<&String> = lines.iter().filter(|l| l.starts_with("waiting ")).collect();
    assert!(
        events.len() >= 3,
        "kubectl get -w printed:\n{}",
        lines.join("\n")
    );
    assert!(events[0].contains("Pending"), "{}", lines.join("\n"));
}

#[test]
fn namespaces_and_api_resources() {
    let server = ClusterServer::start();
    let ns = ok(&server, &["get", "ns"]);
    let header: Vec<&str> = ns.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            ns.lines()
                .any(|l| l.starts_with(name) && l.contains("Active")),
            "{name} in\n{ns}"
        );
    }
    let resources = ok(&server, &["api-resources"]);
    for (name, short) in [
        ("pods", "po"),
        ("namespaces", "ns"),
        ("configmaps", "cm"),
        ("services", "svc"),
        ("serviceaccounts", "sa"),
        ("priorityclasses", "pc"),
        ("nodes", "no"),
        ("events", "ev"),
        ("persistentvolumeclaims", "pvc"),
    ] {
        assert!(
            resources.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&name) && f.get(1) == Some(&short)
            }),
            "{name} ({short}) in\n{resources}"
        );
    }
    let nodes = ok(&server, &["get", "nodes"]);
    let header: Vec<&str> = nodes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let svc = ok(&server, &["get", "svc", "kubernetes", "-n", "default"]);
    assert!(svc.lines().next().unwrap().starts_with("NAME"), "{svc}");
    assert!(svc.contains("443/TCP"), "{svc}");
}

/// kubectl's typed `create` subcommands send protobuf bodies; the seed's step 5 is
/// `kubectl create namespace`, and step 22 deletes the namespaces again.
#[test]
fn typed_create_subcommands_and_namespace_deletion() {
    let server = ClusterServer::start();
    let ns = "monthly-batch";
    assert_eq!(
        ok(&server, &["create", "namespace", ns]).trim(),
        "namespace/monthly-batch created"
    );
    ok(&server, &["create", "serviceaccount", "spark", "-n", ns]);
    ok(
        &server,
        &[
            "create",
            "role",
            "pod-reader",
            "-n",
            ns,
            "--verb=get,list",
            "--resource=pods",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "spark-reads",
            "-n",
            ns,
            "--role=pod-reader",
            "--serviceaccount=monthly-batch:spark",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            ns,
            "--from-literal=mode=batch",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            ns,
            "--from-literal=key=v",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "priorityclass",
            "batch-low",
            "--value=50",
            "--description=batch",
        ],
    );

    let binding = ok(
        &server,
        &[
            "get",
            "rolebinding",
            "spark-reads",
            "-n",
            ns,
            "-o",
            "jsonpath={.roleRef.name}/{.subjects[0].kind}/{.subjects[0].name}",
        ],
    );
    assert_eq!(binding, "pod-reader/ServiceAccount/spark");
    assert_eq!(
        ok(
            &server,
            &[
                "get",
                "configmap",
                "settings",
                "-n",
                ns,
                "-o",
                "jsonpath={.data.mode}"
            ]
        ),
        "batch"
    );
    assert_eq!(
        ok(
            &server,
            &[
                "get",
                "secret",
                "creds",
                "-n",
                ns,
                "-o",
                "jsonpath={.type}/{.data.key}"
            ]
        ),
        "Opaque/dg=="
    );
    assert_eq!(
        ok(
            &server,
            &["get", "pc", "batch-low", "-o", "jsonpath={.value}"]
        ),
        "50"
    );
    let token = ok(&server, &["create", "token", "spark", "-n", ns]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    ok(&server, &["delete", "namespace", ns]);
    let out = kubectl(&server.kubeconfig(), &["get", "namespace", ns]);
    assert!(
        !out.status.success(),
        "namespace still there after delete returned"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The EKS pod-identity webhook runs in admission: a pod whose service account names a
/// role gets the IRSA environment and projected token, pointed at sparkyard's endpoint.
#[test]
fn pods_of_role_annotated_service_accounts_get_irsa() {
    let server = ClusterServer::start_with_aws();
    let manifest = "\
apiVersion: v1
kind: Namespace
metadata:
  name: nightly-batch
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: etl
  namespace: nightly-batch
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/nightly-batch-JobExecutionRole
---
apiVersion: v1
kind: Pod
metadata:
  name: etl
  namespace: nightly-batch
spec:
  serviceAccountName: etl
  nodeSelector: {never: scheduled}
  containers:
  - name: main
    image: busybox
    command: [sleep, '60']
---
apiVersion: v1
kind: Pod
metadata:
  name: plain
  namespace: nightly-batch
spec:
  nodeSelector: {never: scheduled}
  containers:
  - name: main
    image: busybox
";
    apply(&server, "irsa.yaml", manifest);
    let env = ok(
        &server,
        &[
            "get",
            "pod",
            "etl",
            "-n",
            "nightly-batch",
            "-o",
            "jsonpath={range .spec.containers[0].env[*]}{.name}={.value}{\"\\n\"}{end}",
        ],
    );
    assert!(
        env.contains("AWS_ROLE_ARN=arn:aws:iam::123456789012:role/nightly-batch-JobExecutionRole"),
        "{env}"
    );
    assert!(
        env.contains(
            "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        ),
        "{env}"
    );
    assert!(
        env.contains(&format!("AWS_ENDPOINT_URL={}", server.server.endpoint())),
        "{env}"
    );
    let audience = ok(&server, &["get", "pod", "etl", "-n", "nightly-batch", "-o", "jsonpath={.spec.volumes[?(@.name=='aws-iam-token')].projected.sources[0].serviceAccountToken.audience}"]);
    assert_eq!(audience, "sts.amazonaws.com");
    let plain = ok(
        &server,
        &[
            "get",
            "pod",
            "plain",
            "-n",
            "nightly-batch",
            "-o",
            "jsonpath={.spec.containers[0].env}",
        ],
    );
    assert!(
        !plain.contains("AWS_ROLE_ARN"),
        "the default service account names no role: {plain}"
    );
}
