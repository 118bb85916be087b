//! charts/sparkyard through the real `helm` (v4, built from its Go module by
//! scripts/setup.sh into `.sparkyard/tools/bin`): lint, renders with default and
//! production values, the refused SQLite-with-replicas render, the rendered configuration
//! accepted by the binary, the manifests accepted by the embedded API server's
//! server-side dry run (real `kubectl apply --dry-run=server`), which must create nothing,
//! and the chart's RBAC, applied, enough for what the controller creates and no more.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cluster::{kubectl, ClusterServer};
use serde::Deserialize;
use serde_yaml::Value;

const RELEASE: &str = "sy";
const NAMESPACE: &str = "sparkyard";

fn chart() -> PathBuf {
    support::repo_root().join("charts/sparkyard")
}

/// The helm setup.sh builds, else one on `PATH`.
fn helm_binary() -> PathBuf {
    let built = support::repo_root().join(".sparkyard/tools/bin/helm");
    if built.exists() {
        return built;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("helm"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "no helm: run scripts/setup.sh (it builds helm into {})",
                built.display()
            )
        })
}

/// helm with its caches and configuration in a throw-away directory, so no user's
/// repositories or plugins take part.
fn helm(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(helm_binary())
        .args(args)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG")
        .env_remove("HELM_NAMESPACE")
        .output()
        .expect("run helm")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    assert!(
        out.status.success(),
        "helm {args:?} failed:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `helm template sy charts/sparkyard -n sparkyard <extra>`.
fn template(extra: &[&str]) -> Output {
    let chart = chart();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

fn template_ok(extra: &[&str]) -> String {
    let out = template(extra);
    assert!(
        out.status.success(),
        "helm template {extra:?} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn production_values() -> PathBuf {
    chart().join("ci/nodeport-irsa-postgres-values.yaml")
}

/// The rendered documents, empty ones dropped.
fn documents(rendered: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                docs.iter()
                    .map(|d| format!("{:?}/{:?}", d["kind"], d["metadata"]["name"]))
                    .collect::<Vec<_>>()
            )
        })
}

fn kinds(docs: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn env_of<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_sequence()
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no env {name} in {:?}", container["env"]))
}

#[test]
fn the_chart_lints_clean_and_strict() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let values = production_values();
    for args in [
        vec!["lint", chart],
        vec!["lint", "--strict", chart],
        vec!["lint", "--strict", chart, "-f", values.to_str().unwrap()],
    ] {
        let out = helm_ok(&args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm {args:?}:\n{out}"
        );
        assert!(!out.contains("[WARNING]"), "helm {args:?}:\n{out}");
        assert!(!out.contains("[ERROR]"), "helm {args:?}:\n{out}");
    }
}

#[test]
fn the_charts_app_version_is_the_workspace_version() {
    let manifest: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(manifest["apiVersion"], "v2");
    assert_eq!(
        manifest["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must follow [workspace.package] version"
    );
    let shown = helm_ok(&["show", "chart", chart().to_str().unwrap()]);
    assert!(
        shown.contains(&format!("appVersion: {}", env!("CARGO_PKG_VERSION"))),
        "{shown}"
    );
}

#[test]
fn default_values_render_the_deployment_the_binary_contract_names() {
    let docs = documents(&template_ok(&[]));
    assert_eq!(
        kinds(&docs),
        [
            ("ClusterRole", "", "sy-sparkyard"),
            ("ClusterRole", "", "sy-sparkyard-jobs"),
            ("ClusterRoleBinding", "", "sy-sparkyard"),
            ("ClusterRoleBinding", "", "sy-sparkyard-jobs"),
            ("ConfigMap", NAMESPACE, "sy-sparkyard"),
            ("Deployment", NAMESPACE, "sy-sparkyard"),
            ("PodDisruptionBudget", NAMESPACE, "sy-sparkyard"),
            ("Role", NAMESPACE, "sy-sparkyard-leader-election"),
            ("RoleBinding", NAMESPACE, "sy-sparkyard-leader-election"),
            ("Secret", NAMESPACE, "sy-sparkyard"),
            ("Service", NAMESPACE, "sy-sparkyard"),
            ("ServiceAccount", NAMESPACE, "sy-sparkyard"),
        ]
        .map(|(k, n, m)| (k.to_string(), n.to_string(), m.to_string()))
    );

    let deployment = find(&docs, "Deployment", "sy-sparkyard");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "sparkyard");
    assert_eq!(labels["app.kubernetes.io/instance"], RELEASE);
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "4751");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["image"].as_str(),
        Some(format!("sparkyard/sparkyard:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        strings(&container["args"]),
        [
            "serve",
            "--no-cluster",
            "--config",
            "/etc/sparkyard/config.toml",
            "--listen",
            "$(POD_IP):4750",
            "--store-url",
            "$(STORE_URL)",
            "--leader-elect",
            "--leader-elect-resource-namespace",
            "$(POD_NAMESPACE)",
            "--leader-elect-resource-name",
            "sy-sparkyard-controller",
            "--leader-elect-lease-duration",
            "15s",
            "--leader-elect-renew-deadline",
            "10s",
            "--leader-elect-retry-period",
            "2s",
        ]
    );
    assert_eq!(
        env_of(container, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env_of(container, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    let store = &env_of(container, "STORE_URL")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (store["name"].as_str(), store["key"].as_str()),
        (Some("sy-sparkyard"), Some("store-url"))
    );
    assert_eq!(
        env_of(container, "POD_IP")["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    // Probes: serve has no HTTP health route, so they open the API port.
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], "api");
    assert_eq!(container["livenessProbe"]["tcpSocket"]["port"], "api");
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 65532);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532);
    let anti = &pod["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        anti["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        RELEASE
    );
    let spread = &pod["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "sparkyard"
    );

    let pdb = find(&docs, "PodDisruptionBudget", "sy-sparkyard");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    let service = find(&docs, "Service", "sy-sparkyard");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["ports"][0]["port"], 4750);

    // The Lease: create by any name (it has none yet), the rest only on the one Lease.
    let lease_role = find(&docs, "Role", "sy-sparkyard-leader-election");
    let rules = lease_role["rules"].as_sequence().unwrap();
    assert!(rules.iter().any(|r| strings(&r["resources"]) == ["leases"]
        && strings(&r["verbs"]) == ["create"]
        && r["resourceNames"].is_null()));
    assert!(rules.iter().any(|r| strings(&r["resources"]) == ["leases"]
        && strings(&r["resourceNames"]) == ["sy-sparkyard-controller"]
        && strings(&r["verbs"]).contains(&"update".to_string())));

    // The generated bootstrap key has AWS's shape.
    let secret = find(&docs, "Secret", "sy-sparkyard");
    let id = decode(secret["data"]["access-key-id"].as_str().unwrap());
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(
        decode(secret["data"]["secret-access-key"].as_str().unwrap()).len(),
        40
    );
    assert_eq!(
        decode(secret["data"]["store-url"].as_str().unwrap()),
        "postgres://sparkyard@postgresql:5432/sparkyard"
    );
}

/// Base64 (standard alphabet, padded), as Secrets hold it.
fn decode(b64: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b64.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn sqlite_with_two_replicas_is_refused_with_the_reason() {
    let out = template(&[
        "--set",
        "store.url=sqlite:///var/lib/sparkyard/sparkyard.db",
    ]);
    assert!(!out.status.success(), "rendered:\n{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "store.url is SQLite, which only one process may write: it needs replicas: 1 (got 2)"
        ),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty(), "nothing is rendered");

    // One replica with a volume is the valid SQLite install: no PDB, a claim, Recreate.
    let docs = documents(&template_ok(&[
        "--set",
        "store.url=sqlite:///var/lib/sparkyard/sparkyard.db",
        "--set",
        "replicas=1",
        "--set",
        "persistence.enabled=true",
    ]));
    assert!(docs.iter().all(|d| d["kind"] != "PodDisruptionBudget"));
    find(&docs, "PersistentVolumeClaim", "sy-sparkyard-data");
    let deployment = find(&docs, "Deployment", "sy-sparkyard");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
}

#[test]
fn production_values_render_nodeport_irsa_and_an_existing_postgres_secret() {
    let values = production_values();
    let docs = documents(&template_ok(&["-f", values.to_str().unwrap()]));

    let service = find(&docs, "Service", "sy-sparkyard");
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30750);

    let sa = find(&docs, "ServiceAccount", "sy-sparkyard");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/sparkyard"
    );

    let deployment = find(&docs, "Deployment", "sy-sparkyard");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(
        pod["nodeSelector"]["karpenter.sh/capacity-type"],
        "on-demand"
    );
    let container = &pod["containers"][0];
    let store = &env_of(container, "STORE_URL")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (store["name"].as_str(), store["key"].as_str()),
        (Some("sparkyard-store"), Some("url"))
    );
    assert_eq!(
        env_of(container, "AWS_ENDPOINT_URL_S3")["value"],
        "http://minio.storage.svc:9000"
    );
    assert_eq!(env_of(container, "AWS_REGION")["value"], "us-west-2");
    assert!(
        container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "AWS_ENDPOINT_URL"),
        "empty aws.endpointUrl means real AWS: no override"
    );

    // With an existing store Secret, the chart's Secret carries only the given key.
    let secret = find(&docs, "Secret", "sy-sparkyard");
    assert!(secret["data"]["store-url"].is_null());
    assert_eq!(
        decode(secret["data"]["access-key-id"].as_str().unwrap()),
        "AKIAEXAMPLEEXAMPLE01"
    );

    // The virtual clusters' namespaces get the emr-containers rules; nothing cluster-wide.
    for ns in ["monthly-batch", "adhoc"] {
        let role = docs
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no Role in {ns}"));
        let rules = role["rules"].as_sequence().unwrap();
        assert!(rules.iter().any(|r| strings(&r["apiGroups"]) == ["batch"]
            && strings(&r["verbs"]).contains(&"create".to_string())));
        assert!(rules
            .iter()
            .any(|r| strings(&r["resources"]) == ["roles", "rolebindings"]));
        assert!(docs
            .iter()
            .any(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == ns));
    }
    assert!(docs
        .iter()
        .all(|d| d["metadata"]["name"] != "sy-sparkyard-jobs"
            || d["kind"] == "Role"
            || d["kind"] == "RoleBinding"));

    let config = config_toml(&docs);
    let parsed: toml::Table = toml::from_str(&config).unwrap();
    assert_eq!(parsed["region"].as_str(), Some("us-west-2"));
    assert_eq!(
        parsed["services"]["cluster-name"].as_str(),
        Some("analytics")
    );
    assert_eq!(
        parsed["controller"]["release-images"]["emr-7.*"].as_str(),
        Some("111122223333.dkr.ecr.us-west-2.amazonaws.com/spark/emr-7.2.0:latest")
    );
    assert_eq!(
        parsed["controller"]["tool-image"].as_str(),
        Some(
            format!(
                "111122223333.dkr.ecr.us-west-2.amazonaws.com/sparkyard/tools:{}",
                env!("CARGO_PKG_VERSION")
            )
            .as_str()
        )
    );
    assert_eq!(
        parsed["history"]["event-log-dir"].as_str(),
        Some("s3://analytics-spark-logs/spark-events")
    );
    assert_eq!(
        parsed["emr"]["extra-release-labels"][0].as_str(),
        Some("^emr-8\\.0\\.0-latest$")
    );
}

fn config_toml(docs: &[Value]) -> String {
    find(docs, "ConfigMap", "sy-sparkyard")["data"]["config.toml"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Unknown keys stop the binary at start, so the configuration both renders produce is
/// run: `sparkyard serve --no-cluster --config <rendered>` must come up and serve.
#[test]
fn the_rendered_configuration_is_one_the_binary_accepts() {
    let values = production_values();
    for extra in [vec![], vec!["-f", values.to_str().unwrap()]] {
        let config = config_toml(&documents(&template_ok(&extra)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &config).unwrap();
        let server = support::Server::start_with(&[
            "--no-cluster",
            "--no-controller",
            "--config",
            path.to_str().unwrap(),
        ]);
        let identity = server.aws_json(&["sts", "get-caller-identity"]);
        let account: toml::Table = toml::from_str(&config).unwrap();
        assert_eq!(
            identity["Account"].as_str(),
            account["account-id"].as_str(),
            "the rendered account-id is the one served; config:\n{config}"
        );
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn kubectl_ok(server: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&server.kubeconfig(), args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        server.log()
    );
    text(&out.stdout)
}

/// Every object of both renders goes through the embedded API server's admission and
/// validation with `--dry-run=server`, and none of them is stored.
#[test]
fn rendered_manifests_pass_a_server_side_dry_run_and_create_nothing() {
    let server = ClusterServer::start();
    let dir = server.server.data_dir.path();
    for ns in [NAMESPACE, "monthly-batch", "adhoc"] {
        kubectl_ok(&server, &["create", "namespace", ns]);
    }
    let values = production_values();
    for (name, extra) in [
        ("default.yaml", vec![]),
        ("production.yaml", vec!["-f", values.to_str().unwrap()]),
    ] {
        let rendered = template_ok(&extra);
        let expected = documents(&rendered).len();
        let file = write(dir, name, &rendered);
        let out = kubectl_ok(
            &server,
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
        );
        let accepted = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, expected, "{name}: every object accepted:\n{out}");
        assert!(
            out.contains("deployment.apps/sy-sparkyard created (server dry run)"),
            "{out}"
        );
        assert!(
            out.contains(
                "clusterrole.rbac.authorization.k8s.io/sy-sparkyard created (server dry run)"
            ),
            "{out}"
        );
    }

    // Nothing was stored: not in the namespaces, not cluster-wide.
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    for ns in [NAMESPACE, "monthly-batch", "adhoc"] {
        let left = kubectl_ok(
            &server,
            &[
                "get",
                "deployments,services,serviceaccounts,configmaps,secrets,poddisruptionbudgets,roles,rolebindings",
                "-n",
                ns,
                "-l",
                &selector,
                "-o",
                "name",
            ],
        );
        assert_eq!(left.trim(), "", "{ns}: dry run stored objects");
    }
    let left = kubectl_ok(
        &server,
        &[
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            &selector,
            "-o",
            "name",
        ],
    );
    assert_eq!(left.trim(), "", "dry run stored cluster objects");
}

/// Every value is in the chart README's table: a key is listed itself, or (a group such
/// as `store`) every key under it is.
#[test]
fn every_value_is_documented_in_the_charts_readme() {
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let listed = |key: &str| readme.contains(&format!("| `{key}` |"));
    let mut missing = Vec::new();
    for (key, value) in values.as_mapping().unwrap() {
        let key = key.as_str().unwrap();
        if listed(key) {
            continue;
        }
        match value.as_mapping() {
            Some(children) if !children.is_empty() => {
                for (child, grandchildren) in children {
                    let child = format!("{key}.{}", child.as_str().unwrap());
                    let documented = listed(&child)
                        || grandchildren.as_mapping().is_some_and(|g| {
                            g.keys()
                                .all(|k| listed(&format!("{child}.{}", k.as_str().unwrap())))
                        });
                    if !documented {
                        missing.push(child);
                    }
                }
            }
            _ => missing.push(key.to_string()),
        }
    }
    assert!(
        missing.is_empty(),
        "values not in charts/sparkyard/README.md: {missing:?}"
    );
}

/// The chart's RBAC, applied for real, lets sparkyard's service account do what the
/// controller does in a listed namespace — create the `emr-containers` Role and a run's
/// service accounts, Role and RoleBinding, which Kubernetes allows only to a holder of
/// every permission they grant — and nothing in a namespace the values do not list.
#[test]
fn the_charts_rbac_grants_what_the_controller_creates_and_no_more() {
    let server = ClusterServer::start();
    let dir = server.server.data_dir.path();
    for ns in [NAMESPACE, "monthly-batch", "elsewhere"] {
        kubectl_ok(&server, &["create", "namespace", ns]);
    }
    // Only the identity and its RBAC: the Deployment would start sparkyard pods.
    let rendered = template_ok(&["--set", "rbac.namespaces={monthly-batch}"]);
    let rbac: Vec<Value> = documents(&rendered)
        .into_iter()
        .filter(|d| {
            let kind = d["kind"].as_str().unwrap_or_default();
            kind == "ServiceAccount" || kind.contains("Role")
        })
        .collect();
    assert_eq!(
        rbac.len(),
        7,
        "the ServiceAccount, the ClusterRole, the jobs and Lease Roles and their bindings: {:?}",
        kinds(&rbac)
    );
    let file = write(dir, "rbac.yaml", &multi_doc(rbac));
    kubectl_ok(&server, &["apply", "-f", file.to_str().unwrap()]);

    let token = kubectl_ok(
        &server,
        &["create", "token", "sy-sparkyard", "-n", NAMESPACE],
    );
    let as_sparkyard = server.kubeconfig_with_token(token.trim(), "sparkyard-sa");
    let can = |args: &[&str]| -> bool {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = kubectl(&as_sparkyard, &all);
        text(&out.stdout).trim() == "yes"
    };
    for (args, expected) in [
        (&["watch", "pods", "--all-namespaces"][..], true),
        (&["list", "jobs.batch", "--all-namespaces"], true),
        (&["list", "namespaces"], true),
        (&["create", "jobs.batch", "-n", "monthly-batch"], true),
        (
            &[
                "create",
                "serviceaccounts",
                "--subresource=token",
                "-n",
                "monthly-batch",
            ],
            true,
        ),
        (&["create", "jobs.batch", "-n", "elsewhere"], false),
        (
            &["create", "leases.coordination.k8s.io", "-n", NAMESPACE],
            true,
        ),
        (
            &[
                "update",
                "leases.coordination.k8s.io/sy-sparkyard-controller",
                "-n",
                NAMESPACE,
            ],
            true,
        ),
        (
            &[
                "update",
                "leases.coordination.k8s.io/someone-else",
                "-n",
                NAMESPACE,
            ],
            false,
        ),
        (&["delete", "nodes"], false),
    ] {
        assert_eq!(
            can(args),
            expected,
            "kubectl auth can-i {args:?} as sparkyard"
        );
    }

    // What the controller applies in a virtual cluster's namespace, built by its own code.
    let objects = |ns: &str| -> Vec<Value> {
        let vc = sparkyard_controller::build::virtual_cluster::build(ns);
        let role = sparkyard_controller::build::service_accounts::build(
            ns,
            "111122223333",
            "arn:aws:iam::111122223333:role/emr-job-monthly",
            "emr-job-monthly",
        );
        let mut out = vec![to_value(&vc.role), to_value(&vc.role_binding)];
        out.extend(role.service_accounts.iter().map(to_value));
        out.push(to_value(&role.role));
        out.push(to_value(&role.role_binding));
        out
    };
    let allowed = write(dir, "allowed.yaml", &multi_doc(objects("monthly-batch")));
    let out = kubectl(&as_sparkyard, &["create", "-f", allowed.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "sparkyard may create the emr-containers RBAC in a listed namespace:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        kubectl_ok(
            &server,
            &[
                "get",
                "role",
                "emr-containers",
                "-n",
                "monthly-batch",
                "-o",
                "name"
            ]
        )
        .trim(),
        "role.rbac.authorization.k8s.io/emr-containers"
    );

    let refused = write(dir, "refused.yaml", &multi_doc(objects("elsewhere")));
    let out = kubectl(&as_sparkyard, &["create", "-f", refused.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "created in an unlisted namespace:\n{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("Forbidden"),
        "{}",
        text(&out.stderr)
    );
    let left = kubectl_ok(
        &server,
        &[
            "get",
            "roles,rolebindings,serviceaccounts",
            "-n",
            "elsewhere",
            "-l",
            "app.kubernetes.io/managed-by=sparkyard",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        left.trim(),
        "",
        "nothing was created in the unlisted namespace"
    );
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_yaml::to_value(object).unwrap()
}

/// Objects as one multi-document YAML file. (Not a `v1` List: kubectl's validation of
/// one asks the embedded server for a schema it does not serve.)
fn multi_doc(items: Vec<Value>) -> String {
    items
        .iter()
        .map(|i| serde_yaml::to_string(i).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The acceptance of issue 17: `helm install` of the chart into the embedded cluster — sparkyard
/// running its own chart. Two replicas come up on a PostgreSQL store, one holds the Lease,
/// the API answers through the Service's NodePort, a pi job submitted there with the AWS CLI
/// runs to COMPLETED; deleting the leader pod hands the Lease over, the run is neither lost
/// nor run again, and the new leader runs the next one.
#[test]
fn the_chart_installed_in_the_embedded_cluster_runs_pi_and_hands_over() {
    let server = ClusterServer::start();
    let kubeconfig = server.kubeconfig();
    let pg = sparkyard_store::testing::TestPostgres::start();
    kubectl_ok(&server, &["create", "namespace", "emr-jobs"]);
    let kubeconfig_arg = kubeconfig.to_str().unwrap().to_string();
    let store = format!("store.url={}", pg.url());
    let out = helm(&[
        "install",
        RELEASE,
        chart().to_str().unwrap(),
        "--kubeconfig",
        &kubeconfig_arg,
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        &store,
        "--set",
        "service.type=NodePort",
        "--set",
        "rbac.namespaces={emr-jobs}",
        "--wait",
        "--timeout",
        "30m",
    ]);
    assert!(
        out.status.success(),
        "helm install failed:\n{}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        kubectl_ok(&server, &["get", "pods,events", "-n", NAMESPACE])
    );

    // Two replicas, both Ready; one of them holds the Lease.
    let pods: serde_json::Value = serde_json::from_str(&kubectl_ok(
        &server,
        &[
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/instance=sy",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    let names: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{pods}");
    let lease = format!("{RELEASE}-sparkyard-controller");
    let leader = cluster::wait_for_lease_holder(&kubeconfig, NAMESPACE, &lease, |h| !h.is_empty());
    let leader_pod = leader.split('_').next().unwrap().to_string();
    assert!(
        names.contains(&leader_pod),
        "{leader} leads, pods {names:?}"
    );

    // The AWS CLI through the NodePort, with the chart's bootstrap key.
    let node_port = kubectl_ok(
        &server,
        &[
            "get",
            "svc",
            "-n",
            NAMESPACE,
            "sy-sparkyard",
            "-o",
            "jsonpath={.spec.ports[?(@.name==\"api\")].nodePort}",
        ],
    );
    let secret = |key: &str| {
        decode(&kubectl_ok(
            &server,
            &[
                "get",
                "secret",
                "-n",
                NAMESPACE,
                "sy-sparkyard",
                "-o",
                &format!("jsonpath={{.data.{key}}}"),
            ],
        ))
    };
    let (key_id, secret_key) = (secret("access-key-id"), secret("secret-access-key"));
    let endpoint = format!("http://127.0.0.1:{node_port}");
    let aws = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(support::venv_tool("aws"))
            .args(args)
            .args([
                "--endpoint-url",
                &endpoint,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .env("AWS_ACCESS_KEY_ID", &key_id)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_MAX_ATTEMPTS", "40")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let provider =
        r#"{"id":"eks-emr-cluster","type":"EKS","info":{"eksInfo":{"namespace":"emr-jobs"}}}"#;
    let vc = aws(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "helm-vc",
        "--container-provider",
        provider,
    ]);
    let vc = vc["id"].as_str().unwrap().to_string();
    let run_pi = |name: &str| -> String {
        let run = aws(&[
            "emr-containers",
            "start-job-run",
            "--virtual-cluster-id",
            &vc,
            "--name",
            name,
            "--execution-role-arn",
            "arn:aws:iam::123456789012:role/pi",
            "--release-label",
            "emr-7.2.0-latest",
            "--job-driver",
            r#"{"sparkSubmitJobDriver":{"entryPoint":"local:///usr/lib/spark/examples/src/main/python/pi.py","entryPointArguments":["2"],"sparkSubmitParameters":"--conf spark.executor.instances=1 --conf spark.executor.memory=512m --conf spark.driver.memory=512m"}}"#,
        ]);
        run["id"].as_str().unwrap().to_string()
    };
    // Polls the run's state until it is terminal (the state is the API's; there is no watch).
    let finish = |id: &str| -> String {
        loop {
            let run = aws(&[
                "emr-containers",
                "describe-job-run",
                "--virtual-cluster-id",
                &vc,
                "--id",
                id,
            ]);
            let state = run["jobRun"]["state"].as_str().unwrap().to_string();
            if matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED") {
                if state != "COMPLETED" {
                    eprintln!(
                        "run {id}: {}\n{}\n{}",
                        run["jobRun"],
                        kubectl_ok(&server, &["get", "pods,events", "-A"]),
                        cluster::pod_logs(server.server.data_dir.path(), "emr-jobs", 40, |_| true)
                            + &cluster::pod_logs(
                                server.server.data_dir.path(),
                                NAMESPACE,
                                40,
                                |_| true
                            )
                    );
                }
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let first = run_pi("pi-before");
    assert_eq!(finish(&first), "COMPLETED", "{}", server.log());
    let drivers = |id: &str| -> usize {
        kubectl_ok(&server, &["get", "pods", "-n", "emr-jobs", "-o", "name"])
            .lines()
            .filter(|l| *l == format!("pod/spark-{id}-driver"))
            .count()
    };
    assert_eq!(drivers(&first), 1);

    // The leader pod goes: the other replica (or its replacement) takes the Lease.
    kubectl_ok(
        &server,
        &[
            "delete",
            "pod",
            "-n",
            NAMESPACE,
            &leader_pod,
            "--wait=false",
        ],
    );
    let next = cluster::wait_for_lease_holder(&kubeconfig, NAMESPACE, &lease, |h| {
        !h.is_empty() && h != leader
    });
    assert!(!next.starts_with(&format!("{leader_pod}_")));
    let second = run_pi("pi-after");
    assert_eq!(finish(&second), "COMPLETED", "{}", server.log());
    // Nothing lost, nothing run twice.
    let runs = aws(&[
        "emr-containers",
        "list-job-runs",
        "--virtual-cluster-id",
        &vc,
    ]);
    let mut seen: Vec<(String, String)> = runs["jobRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (first.clone(), "COMPLETED".to_string()),
        (second.clone(), "COMPLETED".to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(drivers(&first), 1, "the first run was not run again");
    assert_eq!(drivers(&second), 1);
}
