//! Custom resources and PodDisruptionBudgets through the real `kubectl` (1.32): a CRD
//! applied and discovered, custom objects created, listed, watched, patched, refused
//! (422 with field paths), their status subresource, printer columns and short names,
//! the CRD's deletion taking its objects; Karpenter's CRDs installed at start (the seed's
//! Provisioner applies); a PDB refusing an eviction; CRDs and objects across a restart.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};

use cluster::{kubectl, kubectl_command, ClusterServer};
use serde_json::Value;

fn run(server: &ClusterServer, args: &[&str]) -> Output {
    kubectl(&server.kubeconfig(), args)
}

fn ok(server: &ClusterServer, args: &[&str]) -> String {
    let out = run(server, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kubectl that must fail; its stderr.
fn fails(server: &ClusterServer, args: &[&str]) -> String {
    let out = run(server, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn json(server: &ClusterServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).unwrap()
}

fn file(server: &ClusterServer, name: &str, text: &str) -> String {
    let path = server.server.data_dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [gadgets]
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 100, description: How big.}
              color: {type: string, enum: [Red, Blue], default: Red}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: small, namespace: default}
spec: {size: 3, shape: round}
";

const BAD_WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: huge, namespace: default}
spec: {size: 200, color: Green}
";

#[test]
fn a_crd_serves_its_resource_to_kubectl_until_deleted() {
    let server = ClusterServer::start();
    let crd = file(&server, "crd.yaml", WIDGET_CRD);
    ok(&server, &["apply", "-f", &crd]);
    let established = json(&server, &["get", "crd", "widgets.example.com"]);
    let conditions = established["status"]["conditions"].as_array().unwrap();
    assert!(conditions
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True"));

    let resources = ok(&server, &["api-resources", "--api-group", "example.com"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("widgets"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields,
        vec!["widgets", "wd", "example.com/v1", "true", "Widget"]
    );

    // A watch started before the object exists sees it added.
    let mut watch = kubectl_command(
        &server.kubeconfig(),
        &[
            "get",
            "widgets",
            "-w",
            "-o",
            "name",
            "--request-timeout",
            "60s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let widget = file(&server, "widget.yaml", WIDGET);
    // kubectl asks for strict field validation: the unknown field is an error…
    let strict = fails(&server, &["apply", "-f", &widget]);
    assert!(strict.contains("Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.shape\""), "{strict}");
    // …and without it, pruned.
    ok(&server, &["apply", "--validate=false", "-f", &widget]);
    let mut line = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    watch.kill().unwrap();
    let _ = watch.wait();
    assert_eq!(line.trim(), "widget.example.com/small");

    // Pruned, defaulted, with the printer columns, by short name and by category.
    let stored = json(&server, &["get", "wd", "small"]);
    assert_eq!(
        stored["spec"],
        serde_json::json!({"size": 3, "color": "Red"})
    );
    let table = ok(&server, &["get", "gadgets"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "SIZE", "COLOR", "READY", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    // No status yet: the READY cell is empty, as kubectl prints a null cell.
    assert_eq!((row.len(), &row[..3]), (4, &["small", "3", "Red"][..]));

    // 422 with field paths; nothing stored.
    let bad = file(&server, "bad.yaml", BAD_WIDGET);
    let err = fails(&server, &["apply", "-f", &bad]);
    // kubectl prints an Invalid Status's causes one per line.
    for expected in [
        "The Widget \"huge\" is invalid",
        "spec.size: Invalid value: 200: spec.size in body should be less than or equal to 100",
        "spec.color: Unsupported value: \"Green\": supported values: \"Red\", \"Blue\"",
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    let after = fails(&server, &["get", "widget", "huge"]);
    assert!(
        after.contains("widgets.example.com \"huge\" not found"),
        "{after}"
    );

    // Patches: merge and JSON; the main resource ignores status, the subresource spec.
    ok(
        &server,
        &[
            "patch",
            "widget",
            "small",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":5},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
    );
    ok(
        &server,
        &[
            "patch",
            "widget",
            "small",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/color","value":"Blue"}]"#,
        ],
    );
    let patched = json(&server, &["get", "widget", "small"]);
    assert_eq!(patched["spec"]["size"], 5);
    assert_eq!(patched["spec"]["color"], "Blue");
    assert!(patched.get("status").is_none(), "{patched}");
    assert_eq!(patched["metadata"]["generation"], 3);
    ok(
        &server,
        &[
            "patch",
            "widget",
            "small",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":9},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
    );
    let status = json(&server, &["get", "widget", "small"]);
    assert_eq!(status["spec"]["size"], 5);
    assert_eq!(status["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        status["metadata"]["generation"], 3,
        "a status write keeps the generation"
    );
    let refused = fails(
        &server,
        &[
            "patch",
            "widget",
            "small",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":0}}"#,
        ],
    );
    assert!(
        refused.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{refused}"
    );
    assert_eq!(
        json(&server, &["get", "widget", "small"])["spec"]["size"],
        5
    );
    let columns = ok(&server, &["get", "widget", "small", "--no-headers"]);
    let cells: Vec<&str> = columns.split_whitespace().collect();
    assert_eq!(&cells[..4], &["small", "5", "Blue", "True"]);

    // Server-side apply (the apply patch) creates and updates.
    let applied = file(&server, "ssa.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: applied, namespace: default}\nspec: {size: 7}\n");
    ok(&server, &["apply", "--server-side", "-f", &applied]);
    assert_eq!(
        json(&server, &["get", "widget", "applied"])["spec"]["color"],
        "Red"
    );

    let explain = ok(&server, &["explain", "widgets.spec.size"]);
    assert!(explain.contains("How big."), "{explain}");

    // Deleting the CRD deletes its objects, then the resource is no longer served.
    ok(
        &server,
        &["delete", "crd", "widgets.example.com", "--wait=true"],
    );
    let gone = fails(&server, &["get", "crd", "widgets.example.com"]);
    assert!(gone.contains("not found"), "{gone}");
    let resources = ok(&server, &["api-resources"]);
    assert!(!resources.contains("example.com"), "{resources}");
    ok(&server, &["apply", "-f", &crd]);
    let none = ok(&server, &["get", "widgets", "-A", "-o", "name"]);
    assert_eq!(none.trim(), "", "the recreated resource starts empty");
}

const SEED_PROVISIONER: &str = "apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata: {name: default}
spec:
  requirements:
    - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
  labels: {intent: emr-job}
  provider:
    subnetSelector: {karpenter.sh/discovery: eks-emr-cluster}
    securityGroupSelector: {karpenter.sh/discovery: eks-emr-cluster}
    instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster
    tags: {accountingEC2Tag: KarpenterDevEnvironmentEC2}
  ttlSecondsAfterEmpty: 30
";

#[test]
fn karpenters_crds_are_installed_at_start_and_survive_a_restart() {
    let mut server = ClusterServer::start();
    for resource in [
        "provisioners",
        "nodepools",
        "nodeclaims",
        "ec2nodeclasses",
        "awsnodetemplates",
    ] {
        let out = ok(&server, &["get", resource]);
        assert_eq!(out, "", "{resource}: {out}");
    }
    let karpenter = ok(
        &server,
        &["api-resources", "--categories", "karpenter", "-o", "name"],
    );
    let mut names: Vec<&str> = karpenter.lines().collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "awsnodetemplates.karpenter.k8s.aws",
            "ec2nodeclasses.karpenter.k8s.aws",
            "nodeclaims.karpenter.sh",
            "nodepools.karpenter.sh",
            "provisioners.karpenter.sh",
        ]
    );

    let seed = file(&server, "provisioner.yaml", SEED_PROVISIONER);
    ok(&server, &["apply", "-f", &seed]);
    let table = ok(&server, &["get", "provisioners"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "TEMPLATE", "WEIGHT", "AGE"]);
    assert!(
        table.lines().nth(1).unwrap().starts_with("default "),
        "{table}"
    );
    let stored = json(&server, &["get", "provisioner", "default"]);
    assert_eq!(
        stored["spec"]["provider"]["instanceProfile"],
        "KarpenterNodeInstanceProfile-eks-emr-cluster"
    );

    let pool = file(
        &server,
        "nodepool.yaml",
        "apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: emr}
spec:
  weight: 200
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [spot]}]
",
    );
    let err = fails(&server, &["apply", "-f", &pool]);
    assert!(err.contains("The NodePool \"emr\" is invalid: spec.weight: Invalid value: 200: spec.weight in body should be less than or equal to 100"), "{err}");
    assert!(fails(&server, &["get", "nodepool", "emr"]).contains("not found"));
    let text = std::fs::read_to_string(&pool)
        .unwrap()
        .replace("weight: 200", "weight: 50");
    std::fs::write(&pool, text).unwrap();
    ok(&server, &["apply", "-f", &pool]);
    let defaulted = json(&server, &["get", "nodepool", "emr"]);
    assert_eq!(
        defaulted["spec"]["disruption"]["consolidationPolicy"],
        "WhenEmptyOrUnderutilized"
    );
    assert_eq!(defaulted["spec"]["template"]["spec"]["expireAfter"], "720h");
    let wide = ok(&server, &["get", "nodepools", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec![
            "NAME",
            "NODECLASS",
            "NODES",
            "READY",
            "AGE",
            "WEIGHT",
            "CPU",
            "MEMORY"
        ]
    );
    let class_columns = ok(&server, &["get", "ec2nc"]);
    assert_eq!(class_columns, "", "short name answers");

    let before = json(&server, &["get", "provisioner", "default"]);
    server.server.restart();
    let after = json(&server, &["get", "provisioner", "default"]);
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    assert_eq!(
        json(&server, &["get", "nodepool", "emr"])["spec"]["weight"],
        50
    );
}

const PODS_AND_BUDGET: &str = "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  nodeSelector: {sparkyard.test/nowhere: \"true\"}
  containers: [{name: main, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: default, labels: {app: web}}
spec:
  nodeSelector: {sparkyard.test/nowhere: \"true\"}
  containers: [{name: main, image: busybox:1.36}]
";

#[test]
fn a_disruption_budget_refuses_an_eviction_with_429() {
    let server = ClusterServer::start();
    let manifest = file(&server, "pdb.yaml", PODS_AND_BUDGET);
    ok(&server, &["apply", "-f", &manifest]);
    // The pods stay unscheduled (no node matches), so no kubelet reports on them: their
    // readiness is what this status patch says.
    for pod in ["web-1", "web-2"] {
        ok(
            &server,
            &[
                "patch",
                "pod",
                pod,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
            ],
        );
    }
    let table = ok(&server, &["get", "pdb"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec![
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], &["web", "1", "N/A", "1"]);

    let eviction = |pod: &str| {
        file(
            &server,
            &format!("evict-{pod}.json"),
            &format!(
                r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
            ),
        )
    };
    let first = eviction("web-1");
    ok(
        &server,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/web-1/eviction",
            "-f",
            &first,
        ],
    );
    let second = eviction("web-2");
    let refused = fails(
        &server,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/web-2/eviction",
            "-f",
            &second,
        ],
    );
    assert!(
        refused.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{refused}"
    );
    let pod = json(&server, &["get", "pod", "web-2"]);
    assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
    let budget = json(&server, &["get", "pdb", "web"]);
    assert_eq!(
        (
            budget["status"]["currentHealthy"].as_i64(),
            budget["status"]["desiredHealthy"].as_i64(),
            budget["status"]["disruptionsAllowed"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{budget}"
    );
}

/// kube-rs, as a controller would use it: custom objects as `DynamicObject`s, and the
/// Status of a refused one as kube-apiserver words it.
#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_reads_and_writes_custom_resources() {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
    let server = ClusterServer::start();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"));
    let pools: Api<DynamicObject> = Api::all_with(client, &resource);
    let pool = |weight: i64| -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "emr"},
            "spec": {"weight": weight, "template": {"spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}}}
        }))
        .unwrap()
    };
    let refused = pools
        .create(&PostParams::default(), &pool(200))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("expected a Status, got {refused:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "NodePool.karpenter.sh \"emr\" is invalid: spec.weight: Invalid value: 200: spec.weight in body should be less than or equal to 100"
    );
    assert!(
        pools.get_opt("emr").await.unwrap().is_none(),
        "nothing stored"
    );
    let created = pools
        .create(&PostParams::default(), &pool(10))
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"]["disruption"]["budgets"],
        serde_json::json!([{"nodes": "10%"}])
    );
    let listed = pools.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}
