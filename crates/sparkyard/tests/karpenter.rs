//! Karpenter on the embedded cluster with the unchanged kubectl: the seed's step 18
//! Provisioner applied with `kubectl apply -f`, pods the one-node group cannot hold make
//! Karpenter launch a spot node labelled as the Provisioner says, pods no pool can satisfy
//! get Karpenter's `FailedScheduling`, the node goes `ttlSecondsAfterEmpty` after it
//! empties, and Karpenter's log lines are readable with `kubectl logs`. Also: the v1
//! NodePool + EC2NodeClass, refused Provisioners/NodePools that store nothing, and a spot
//! interruption that drains the node and replaces it.
//!
//! Nodes here are simulated (`sparkyard.dev/simulated: "true"` on the pool): pods bound to
//! them run no process. The real-Spark run of step 21 is in `walkthrough_autoscaling.rs`.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::Path;
use std::time::Instant;

use cluster::kubectl;
use serde_json::Value;
use support::eks::{cluster_config, kubeconfig, start, until};
use support::Server;

/// One m5.xlarge (the seed's 4 vCPUs), simulated.
const ONE_SMALL_NODE: &str = "  - name: eks-emr-cluster-ng\n    instanceType: m5.xlarge\n    desiredCapacity: 1\n    minSize: 1\n    maxSize: 10\n    tags:\n      sparkyard.dev/simulated: \"true\"\n";

/// The seed's step 18 Provisioner, with a short TTL and simulated nodes.
fn provisioner(ttl: u32) -> String {
    format!(
        "apiVersion: karpenter.sh/v1alpha5\nkind: Provisioner\nmetadata:\n  name: default\n  annotations:\n    sparkyard.dev/simulated: \"true\"\nspec:\n  requirements:\n    - key: karpenter.sh/capacity-type\n      operator: In\n      values: [spot, on-demand]\n  labels:\n    intent: emr-job\n  provider:\n    subnetSelector:\n      karpenter.sh/discovery: eks-emr-cluster\n    securityGroupSelector:\n      karpenter.sh/discovery: eks-emr-cluster\n    instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster\n    tags:\n      accountingEC2Tag: KarpenterDevEnvironmentEC2\n  ttlSecondsAfterEmpty: {ttl}\n"
    )
}

fn k(s: &Server, args: &[&str]) -> String {
    let out = kubectl(&kubeconfig(s), args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn k_err(s: &Server, args: &[&str]) -> String {
    let out = kubectl(&kubeconfig(s), args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn k_json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k(s, &all)).unwrap()
}

fn apply(s: &Server, dir: &Path, name: &str, yaml: &str) -> std::process::Output {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    kubectl(&kubeconfig(s), &["apply", "-f", file.to_str().unwrap()])
}

fn pod(name: &str, cpu: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{extra}  containers:\n    - name: main\n      image: busybox\n      resources:\n        requests:\n          cpu: \"{cpu}\"\n          memory: 1Gi\n"
    )
}

fn karpenter_nodes(s: &Server, label: &str) -> Vec<Value> {
    k_json(s, &["get", "nodes", "-l", label])["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn karpenter_log(s: &Server) -> String {
    k(
        s,
        &[
            "logs",
            "-n",
            "karpenter",
            "-l",
            "app.kubernetes.io/name=karpenter",
            "--tail=-1",
        ],
    )
}

fn metrics(s: &Server) -> String {
    let addr = std::fs::read_to_string(s.data_dir.path().join("metrics.addr")).unwrap();
    let mut stream = std::net::TcpStream::connect(addr.trim()).unwrap();
    use std::io::{Read, Write};
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn seed_provisioner_launches_spot_capacity_and_removes_it_when_empty() {
    let work = tempfile::tempdir().unwrap();
    let s = start(&cluster_config(work.path(), ONE_SMALL_NODE));
    let kc = kubeconfig(&s);
    until(&s, "the node group's node", || {
        (karpenter_nodes(&s, "eks.amazonaws.com/nodegroup").len() == 1).then_some(())
    });

    // Step 18: kubectl apply of the seed's Provisioner (TTL 5 s keeps the test short).
    let out = apply(&s, work.path(), "provisioner.yaml", &provisioner(5));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = k(&s, &["get", "provisioners"]);
    assert!(table.contains("default"), "{table}");

    // Refused: ttlSecondsAfterEmpty together with consolidation — nothing stored.
    let bad = provisioner(30)
        .replace("name: default", "name: both")
        .replace(
            "  ttlSecondsAfterEmpty: 30\n",
            "  ttlSecondsAfterEmpty: 30\n  consolidation:\n    enabled: true\n",
        );
    let out = apply(&s, work.path(), "bad.yaml", &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admission webhook \"validation.webhook.karpenter.sh\" denied the request")
            && err.contains("expected exactly one, got both: spec.consolidation.enabled, spec.ttlSecondsAfterEmpty"),
        "{err}"
    );
    assert!(k_err(&s, &["get", "provisioner", "both"]).contains("NotFound"));

    // Three 3-CPU pods: one fits the m5.xlarge (3920m), two need new capacity.
    for i in 1..=3 {
        let out = apply(
            &s,
            work.path(),
            &format!("p{i}.yaml"),
            &pod(&format!("work-{i}"), "3", ""),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A pod only an on-demand managed node group can take (the seed's driver template's
    // selector): Karpenter nodes never carry eks.amazonaws.com/capacityType.
    let selector = "  nodeSelector:\n    eks.amazonaws.com/capacityType: ON_DEMAND\n";
    let out = apply(
        &s,
        work.path(),
        "od.yaml",
        &pod("needs-node-group", "3", selector),
    );
    assert!(out.status.success());

    let all_running = || {
        let pods = k_json(&s, &["get", "pods", "-n", "default", "-l", "!nope"]);
        let items = pods["items"].as_array().unwrap();
        let work: Vec<&Value> = items
            .iter()
            .filter(|p| p["metadata"]["name"].as_str().unwrap().starts_with("work-"))
            .collect();
        (work.len() == 3 && work.iter().all(|p| p["status"]["phase"] == "Running"))
            .then(|| work.iter().map(|p| (*p).clone()).collect::<Vec<_>>())
    };
    let running = until(&s, "the three pods running", all_running);
    let nodes = karpenter_nodes(&s, "karpenter.sh/provisioner-name=default");
    assert!(!nodes.is_empty());
    for node in &nodes {
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["intent"], "emr-job");
        assert_eq!(
            labels["karpenter.sh/capacity-type"], "spot",
            "spot before on-demand"
        );
        assert!(labels["eks.amazonaws.com/capacityType"].is_null());
        assert!(labels["eks.amazonaws.com/nodegroup"].is_null());
        assert_eq!(labels["karpenter.sh/initialized"], "true");
        assert!(node["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("ip-192-168-"));
        let taints = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !taints
                .iter()
                .any(|t| t["key"] == "karpenter.sh/unregistered"),
            "{taints:?}"
        );
    }
    let karpenter_names: Vec<&str> = nodes
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        running
            .iter()
            .filter(|p| karpenter_names.contains(&p["spec"]["nodeName"].as_str().unwrap()))
            .count(),
        2
    );
    let claims = k(&s, &["get", "nodeclaims"]);
    assert!(claims.contains("default-"), "{claims}");

    // The on-demand-only pod gets Karpenter's FailedScheduling and no node.
    let events = until(&s, "karpenter's FailedScheduling event", || {
        let ev = k(
            &s,
            &[
                "get",
                "events",
                "-n",
                "default",
                "--field-selector",
                "involvedObject.name=needs-node-group",
            ],
        );
        ev.contains("incompatible").then_some(ev)
    });
    assert!(
        events.contains("eks.amazonaws.com/capacityType"),
        "{events}"
    );

    // Karpenter's lines, readable with kubectl.
    let log = karpenter_log(&s);
    for line in [
        "found provisionable pod(s)",
        "computed new nodeclaim(s) to fit pod(s)",
        "created nodeclaim",
        "launched nodeclaim",
        "registered nodeclaim",
        "initialized nodeclaim",
        "could not schedule pod",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
    assert!(metrics(&s).contains("karpenter_nodeclaims_created_total"));

    // Empty the Karpenter nodes: they go once the TTL has passed, not before.
    k(&s, &["delete", "pod", "needs-node-group", "--wait=false"]);
    for p in &running {
        if karpenter_names.contains(&p["spec"]["nodeName"].as_str().unwrap()) {
            k(
                &s,
                &["delete", "pod", p["metadata"]["name"].as_str().unwrap()],
            );
        }
    }
    let emptied = Instant::now();
    until(&s, "the karpenter nodes removed", || {
        karpenter_nodes(&s, "karpenter.sh/provisioner-name=default")
            .is_empty()
            .then_some(())
    });
    assert!(
        emptied.elapsed().as_secs_f64() >= 4.0,
        "removed before its TTL: {:?}",
        emptied.elapsed()
    );
    let claims = k_json(&s, &["get", "nodeclaims"]);
    assert_eq!(claims["items"].as_array().unwrap().len(), 0, "{claims}");
    let log = karpenter_log(&s);
    for line in [
        "disrupting nodeclaim(s) via delete",
        "(Empty)",
        "tainted node",
        "deleted node",
        "deleted nodeclaim",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
    let _ = kc;
}

const NODEPOOL: &str = "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata:\n  name: emr\n  annotations:\n    sparkyard.dev/simulated: \"true\"\nspec:\n  template:\n    metadata:\n      labels:\n        intent: emr-job\n    spec:\n      requirements:\n        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}\n        - {key: kubernetes.io/os, operator: In, values: [linux]}\n        - {key: kubernetes.io/arch, operator: In, values: [amd64]}\n        - {key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r]}\n        - {key: karpenter.k8s.aws/instance-generation, operator: Gt, values: [\"2\"]}\n      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: emr}\n      expireAfter: Never\n  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 5s}\n---\napiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata:\n  name: emr\nspec:\n  amiSelectorTerms: [{alias: al2023@latest}]\n  instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster\n  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: eks-emr-cluster}}]\n  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: eks-emr-cluster}}]\n  tags: {app: emr}\n";

#[test]
fn v1_nodepool_provisions_and_a_spot_interruption_replaces_the_node() {
    let work = tempfile::tempdir().unwrap();
    let s = start(&cluster_config(work.path(), ONE_SMALL_NODE));
    let out = apply(&s, work.path(), "nodepool.yaml", NODEPOOL);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    until(&s, "the NodePool Ready", || {
        let np = k_json(&s, &["get", "nodepool", "emr"]);
        np["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
    assert!(k(&s, &["get", "ec2nodeclasses"]).contains("emr"));

    // Refused: a restricted label domain in the template — 422, nothing changed.
    let bad = NODEPOOL
        .split("---")
        .next()
        .unwrap()
        .replace("intent: emr-job", "karpenter.sh/nodepool: x")
        .replace("name: emr\n  annotations", "name: bad\n  annotations");
    let out = apply(&s, work.path(), "bad.yaml", &bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is restricted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(k_err(&s, &["get", "nodepool", "bad"]).contains("NotFound"));

    // A Job whose pod needs new capacity: Karpenter launches for it.
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: big\n  namespace: default\nspec:\n  backoffLimit: 6\n  template:\n    spec:\n      restartPolicy: Never\n      nodeSelector:\n        intent: emr-job\n      containers:\n        - name: main\n          image: busybox\n          resources:\n            requests: {cpu: \"3\", memory: 1Gi}\n";
    assert!(apply(&s, work.path(), "job.yaml", job).status.success());
    let first = until(&s, "a NodePool node with the job's pod", || {
        let nodes = karpenter_nodes(&s, "karpenter.sh/nodepool=emr");
        let pods = k_json(&s, &["get", "pods", "-l", "job-name=big"]);
        let node = nodes.first()?.clone();
        let name = node["metadata"]["name"].as_str()?.to_string();
        pods["items"]
            .as_array()?
            .iter()
            .any(|p| p["spec"]["nodeName"] == name.as_str() && p["status"]["phase"] == "Running")
            .then_some(node)
    });
    assert_eq!(
        first["metadata"]["labels"]["karpenter.k8s.aws/ec2nodeclass"],
        "emr"
    );
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    let claims = k(&s, &["get", "nodeclaims"]);
    assert!(claims.contains("emr-"), "{claims}");

    // The 2-minute warning: Karpenter deletes the claim, drains the node and launches a
    // replacement for the evicted pod's successor.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args([
            "ec2",
            "send-spot-interruption",
            "--node-name",
            &first_name,
            "--data-dir",
        ])
        .arg(s.data_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = until(&s, "a replacement node running the job's new pod", || {
        let nodes = karpenter_nodes(&s, "karpenter.sh/nodepool=emr");
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] != first_name.as_str())?
            .clone();
        let name = node["metadata"]["name"].as_str()?.to_string();
        let pods = k_json(&s, &["get", "pods", "-l", "job-name=big"]);
        pods["items"]
            .as_array()?
            .iter()
            .any(|p| p["spec"]["nodeName"] == name.as_str() && p["status"]["phase"] == "Running")
            .then_some(name)
    });
    until(&s, "the interrupted node gone", || {
        karpenter_nodes(&s, "karpenter.sh/nodepool=emr")
            .iter()
            .all(|n| n["metadata"]["name"] != first_name.as_str())
            .then_some(())
    });
    let log = karpenter_log(&s);
    assert!(
        log.contains("initiating delete from interruption message"),
        "{log}"
    );
    assert_ne!(second, first_name);
}
