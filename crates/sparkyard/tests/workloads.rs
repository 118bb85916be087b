//! `apps/v1` workloads on the embedded cluster through the real `kubectl`: a Deployment
//! rolled out, updated, scaled and rolled back as `kubectl rollout status` expects; a
//! StatefulSet's ordered, stably named pods with their claims; a DaemonSet's one pod per
//! node; the `scale` subresource; and refusals that change nothing.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use cluster::{kubectl, ClusterServer};
use serde_json::Value;

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

fn refused(server: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&server.kubeconfig(), args);
    assert!(!out.status.success(), "kubectl {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn apply(server: &ClusterServer, name: &str, yaml: &str) -> String {
    let path = server.server.data_dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    ok(server, &["apply", "-f", path.to_str().unwrap()])
}

fn json(server: &ClusterServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).unwrap()
}

/// Pods of the deployment's selector that are not being deleted.
fn live_pods(server: &ClusterServer, selector: &str) -> Vec<Value> {
    json(server, &["get", "pods", "-l", selector])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: [sleep, \"3600\"]
";

#[test]
fn a_deployment_rolls_out_updates_scales_and_rolls_back() {
    let server = ClusterServer::start();
    assert!(apply(&server, "d.yml", DEPLOYMENT).contains("deployment.apps/web created"));
    let status = ok(&server, &["rollout", "status", "deployment/web"]);
    assert!(
        status.contains("deployment \"web\" successfully rolled out"),
        "{status}"
    );

    let table = ok(&server, &["get", "deploy", "web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["web", "3/3", "3", "3"], "{table}");
    let first = live_pods(&server, "app=web");
    assert_eq!(first.len(), 3);
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    let rs_name = format!("web-{hash}");
    assert!(first[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{rs_name}-")));
    let rs = json(&server, &["get", "rs", &rs_name]);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");

    // A template change: a second ReplicaSet takes over, the first is scaled to zero.
    ok(
        &server,
        &["set", "image", "deployment/web", "main=busybox:1.37"],
    );
    let status = ok(&server, &["rollout", "status", "deployment/web"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let sets = json(&server, &["get", "rs", "-l", "app=web"]);
    let sets = sets["items"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{sets:?}");
    let old = sets
        .iter()
        .find(|s| s["metadata"]["name"] == rs_name.as_str())
        .unwrap();
    let new = sets
        .iter()
        .find(|s| s["metadata"]["name"] != rs_name.as_str())
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(new["spec"]["replicas"], 3);
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let pods = live_pods(&server, "app=web");
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.37"));
    let deploy = json(&server, &["get", "deploy", "web"]);
    assert_eq!(
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let progressing = deploy["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    // The events kube's deployment controller writes.
    let events = ok(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web",
            "-o",
            "custom-columns=R:.reason,M:.message",
            "--no-headers",
        ],
    );
    assert!(
        events.contains(&format!("Scaled up replica set {rs_name} from 0 to 3")),
        "{events}"
    );
    assert!(
        events.contains(&format!("Scaled down replica set {rs_name} from")),
        "{events}"
    );

    // Scale through the scale subresource (what `kubectl scale` uses).
    ok(&server, &["scale", "deployment/web", "--replicas=1"]);
    ok(&server, &["rollout", "status", "deployment/web"]);
    let scale: Value = serde_json::from_str(&ok(
        &server,
        &[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ],
    ))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");
    assert_eq!(live_pods(&server, "app=web").len(), 1);

    // Roll back to revision 1: the first ReplicaSet's template comes back.
    ok(
        &server,
        &["rollout", "undo", "deployment/web", "--to-revision=1"],
    );
    ok(&server, &["rollout", "status", "deployment/web"]);
    let pods = live_pods(&server, "app=web");
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.36"),
        "{pods:?}"
    );
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str()),
        "a rollback reuses the first set: {pods:?}\ndeployment: {}\nsets: {}",
        json(&server, &["get", "deploy", "web"]),
        json(&server, &["get", "rs"])
    );

    // Refusals change nothing: a selector that does not match the template, and a changed selector.
    let before = json(&server, &["get", "deploy", "web"]);
    let bad = DEPLOYMENT
        .replace("name: web\n  namespace", "name: bad\n  namespace")
        .replace("labels: {app: web}", "labels: {app: other}");
    let path = server.server.data_dir.path().join("bad.yml");
    std::fs::write(&path, bad).unwrap();
    let err = refused(&server, &["apply", "-f", path.to_str().unwrap()]);
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
    assert!(refused(&server, &["get", "deploy", "bad"]).contains("NotFound"));
    let err = refused(
        &server,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"x"}}}}"#,
        ],
    );
    assert!(err.contains("field is immutable"), "{err}");
    let after = json(&server, &["get", "deploy", "web"]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );

    // Deleting the deployment takes its sets and pods with it (garbage collector).
    ok(&server, &["delete", "deployment", "web", "--wait=true"]);
    ok(
        &server,
        &[
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "app=web",
            "--timeout=-1s",
        ],
    );
    assert!(json(&server, &["get", "rs", "-l", "app=web"])["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

const STATEFUL_AND_DAEMON: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: default
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: default
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: [sh, -c, 'echo $(hostname) >> /data/owners; exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: default
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:1.36
        command: [sleep, \"3600\"]
";

#[test]
fn a_statefulset_gets_ordered_pods_with_claims_and_a_daemonset_one_pod_per_node() {
    let server = ClusterServer::start();
    apply(&server, "sd.yml", STATEFUL_AND_DAEMON);
    let status = ok(&server, &["rollout", "status", "statefulset/db"]);
    assert!(
        status.contains("partitioned roll out complete")
            || status.contains("rolling update complete"),
        "{status}"
    );
    let pods = live_pods(&server, "app=db");
    let mut names: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1"]);
    let db0 = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "db-0")
        .unwrap();
    let db1 = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "db-1")
        .unwrap();
    assert_eq!(db0["spec"]["hostname"], "db-0");
    assert_eq!(db0["spec"]["subdomain"], "db");
    assert_eq!(
        db0["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-db-0"
    );
    // OrderedReady: db-1 was created only once db-0 was ready.
    let ready0 = db0["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()["lastTransitionTime"]
        .as_str()
        .unwrap()
        .to_string();
    let created1 = db1["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        created1 >= ready0,
        "db-1 created {created1} before db-0 ready {ready0}"
    );
    let claims = ok(&server, &["get", "pvc", "-o", "name"]);
    assert!(
        claims.contains("persistentvolumeclaim/data-db-0")
            && claims.contains("persistentvolumeclaim/data-db-1"),
        "{claims}"
    );
    // The claims are bound by the local-path provisioner, as `kubectl get pvc` shows.
    let pvc = ok(
        &server,
        &["get", "pvc", "data-db-0", "data-db-1", "--no-headers"],
    );
    assert!(
        pvc.lines()
            .all(|l| l.split_whitespace().nth(1) == Some("Bound")),
        "{pvc}"
    );
    let table = ok(&server, &["get", "sts", "db"]);
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "READY", "AGE"]
    );
    assert!(table.lines().nth(1).unwrap().contains("2/2"), "{table}");

    // Scale down removes the highest ordinal and keeps its claim.
    ok(&server, &["scale", "statefulset/db", "--replicas=1"]);
    ok(
        &server,
        &["wait", "--for=delete", "pod/db-1", "--timeout=-1s"],
    );
    assert_eq!(live_pods(&server, "app=db").len(), 1);
    assert!(ok(&server, &["get", "pvc", "-o", "name"]).contains("data-db-1"));

    // The DaemonSet: one pod on each node there is.
    let status = ok(&server, &["rollout", "status", "daemonset/agent"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let nodes = json(&server, &["get", "nodes"])["items"]
        .as_array()
        .unwrap()
        .len();
    let agents = live_pods(&server, "app=agent");
    assert_eq!(agents.len(), nodes);
    let table = ok(&server, &["get", "ds", "agent"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let n = nodes.to_string();
    assert_eq!(
        row[..6],
        [
            "agent",
            n.as_str(),
            n.as_str(),
            n.as_str(),
            n.as_str(),
            n.as_str()
        ],
        "{table}"
    );
    let mut on: Vec<&str> = agents
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    on.sort();
    on.dedup();
    assert_eq!(on.len(), nodes);

    // Containers outlive sparkyard by design: stop them rather than leave them to the machine.
    ok(
        &server,
        &["delete", "statefulset,daemonset", "--all", "--wait=true"],
    );
    ok(
        &server,
        &["wait", "--for=delete", "pod", "--all", "--timeout=-1s"],
    );
}
