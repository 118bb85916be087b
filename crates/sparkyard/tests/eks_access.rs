//! IAM → Kubernetes as EKS does it, through the real clients: `aws eks update-kubeconfig`
//! writes a kubeconfig whose user runs `aws eks get-token`; kubectl sends that token to the
//! embedded API server, which verifies it with sparkyard's STS and maps the caller — the
//! cluster creator, an `aws-auth` `mapRoles` entry (seed step 19's console group), an EKS
//! access entry with a namespace-scoped access policy, or nobody (401).
//!
//! Roles are used the way a person would: AWS CLI profiles with `role_arn` and
//! `source_profile` (botocore calls STS `AssumeRole`).

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cluster::{kubectl_command, ClusterServer};
use serde_json::Value;
use support::{venv_tool, Server};

const CLUSTER: &str = "eks-emr-cluster";
const POLICY_PREFIX: &str = "arn:aws:eks::aws:cluster-access-policy/";

/// Seed step 19: AWS's `eks-console-full-access.yaml` (read-only get/list) and its binding
/// to the group `eks-console-dashboard-full-access-group`.
const CONSOLE_FULL_ACCESS: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: eks-console-dashboard-full-access-clusterrole
rules:
- apiGroups: [\"\"]
  resources: [nodes, namespaces, pods, configmaps, endpoints, events, limitranges, persistentvolumeclaims, podtemplates, replicationcontrollers, resourcequotas, secrets, serviceaccounts, services]
  verbs: [get, list]
- apiGroups: [apps]
  resources: [deployments, daemonsets, statefulsets, replicasets]
  verbs: [get, list]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eks-console-dashboard-full-access-binding
subjects:
- kind: Group
  name: eks-console-dashboard-full-access-group
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: ClusterRole
  name: eks-console-dashboard-full-access-clusterrole
  apiGroup: rbac.authorization.k8s.io
";

struct Env {
    cluster: ClusterServer,
    work: tempfile::TempDir,
    account: String,
}

impl Env {
    fn server(&self) -> &Server {
        &self.cluster.server
    }

    /// The `aws` CLI with the server's profile files and a private HOME (botocore caches
    /// assumed-role credentials under `~/.aws/cli/cache`, keyed by role ARN).
    fn aws(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(venv_tool("aws"));
        cmd.args(args);
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.server().client_env())
            .env("HOME", self.work.path());
        cmd.output().expect("run aws CLI")
    }

    fn aws_ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A role any principal of the account may assume, allowed `eks:DescribeCluster` (what
    /// `update-kubeconfig` calls), and a CLI profile `name` that assumes it.
    fn role(&self, name: &str) -> String {
        let s = self.server();
        let trust = self.work.path().join(format!("{name}-trust.json"));
        std::fs::write(
            &trust,
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
                self.account
            ),
        )
        .unwrap();
        let policy = self.work.path().join(format!("{name}-policy.json"));
        std::fs::write(
            &policy,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"*"}]}"#,
        )
        .unwrap();
        let created = s.aws_json(&[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--path",
            "/console/",
            "--assume-role-policy-document",
            &format!("file://{}", trust.display()),
        ]);
        s.aws_ok(&[
            "iam",
            "put-role-policy",
            "--role-name",
            name,
            "--policy-name",
            "describe-cluster",
            "--policy-document",
            &format!("file://{}", policy.display()),
        ]);
        let arn = created["Role"]["Arn"].as_str().unwrap().to_string();
        // Appended to the profile file sparkyard wrote (it rewrites it only at start).
        let config = s.data_dir.path().join("aws/config");
        let text = std::fs::read_to_string(&config).unwrap();
        let endpoint = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("endpoint_url = "))
            .unwrap()
            .to_string();
        let region = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("region = "))
            .unwrap()
            .to_string();
        std::fs::write(
            &config,
            format!("{text}\n[profile {name}]\nrole_arn = {arn}\nsource_profile = sparkyard\nregion = {region}\nendpoint_url = {endpoint}\n"),
        )
        .unwrap();
        arn
    }

    /// `aws eks update-kubeconfig` for `profile` into a kubeconfig of its own.
    fn kubeconfig(&self, profile: &str) -> PathBuf {
        let dir = self.work.path().join(profile);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        self.aws_ok(&[
            "eks",
            "update-kubeconfig",
            "--name",
            CLUSTER,
            "--kubeconfig",
            path.to_str().unwrap(),
            "--profile",
            profile,
        ]);
        path
    }

    /// kubectl with the kubeconfig the CLI wrote: its exec plugin finds `aws` (the venv's)
    /// on PATH and the profile files through the environment, as in a user's shell.
    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let aws_dir = venv_tool("aws")
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty());
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(dir) = aws_dir {
            let mut joined = std::ffi::OsString::from(dir.canonicalize().unwrap());
            joined.push(":");
            joined.push(&path);
            path = joined;
        }
        let mut cmd = kubectl_command(kubeconfig, args);
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.server().client_env())
            .env_remove("AWS_PROFILE")
            .env("PATH", path)
            .env("HOME", self.work.path());
        cmd.output().expect("run kubectl")
    }

    fn ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.cluster.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting a refusal; returns stderr.
    fn refused(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have been refused:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// A SelfSubjectAccessReview (what `kubectl auth can-i` asks; sent as JSON, since
    /// sparkyard reads review bodies in JSON only). `resource` is `plural[.group]`.
    /// Runs kubectl expecting a refusal whose message contains `needle`.
    fn refused_with(&self, kubeconfig: &Path, args: &[&str], needle: &str) {
        let stderr = self.refused(kubeconfig, args);
        assert!(
            stderr.contains(needle),
            "kubectl {args:?}: expected {needle:?} in:\n{stderr}\nserver log:\n{}",
            self.cluster.log()
        );
    }

    /// Runs kubectl expecting 401: kubectl says "You must be logged in to the server" on
    /// reads, and quotes the Status's `Unauthorized` on writes.
    fn unauthorized(&self, kubeconfig: &Path, args: &[&str]) {
        let stderr = self.refused(kubeconfig, args);
        assert!(
            stderr.contains("You must be logged in to the server")
                || stderr.contains(": Unauthorized"),
            "kubectl {args:?}: expected a 401 in:\n{stderr}"
        );
    }

    fn can_i(&self, kubeconfig: &Path, verb: &str, resource: &str, ns: Option<&str>) -> bool {
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "verb": verb, "resource": plural, "group": group, "namespace": ns.unwrap_or(""),
            }},
        });
        let path =
            kubeconfig.with_file_name(format!("review-{verb}-{resource}.json").replace('*', "all"));
        std::fs::write(&path, review.to_string()).unwrap();
        let answer: Value = serde_json::from_str(&self.ok(
            kubeconfig,
            &["create", "-f", path.to_str().unwrap(), "-o", "json"],
        ))
        .unwrap();
        answer["status"]["allowed"].as_bool().unwrap_or(false)
    }

    fn aws_error(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(!out.status.success(), "aws {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).to_string()
    }
}

#[test]
fn iam_identities_map_to_kubernetes_users_as_on_eks() {
    let cluster = ClusterServer::start_with_aws();
    let account = support::walkthrough::account_id(&cluster.server);
    let env = Env {
        cluster,
        work: tempfile::tempdir().unwrap(),
        account,
    };
    let s = env.server();

    // DescribeCluster reports the embedded API server and its CA; update-kubeconfig writes
    // them with an exec user running `aws eks get-token`.
    let described = s.aws_json(&["eks", "describe-cluster", "--name", CLUSTER]);
    let endpoint = described["cluster"]["endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    assert!(described["cluster"]["certificateAuthority"]["data"].is_string());
    let admin = env.kubeconfig("sparkyard");
    let written = std::fs::read_to_string(&admin).unwrap();
    assert!(
        written.contains(&format!("server: {endpoint}")),
        "{written}"
    );
    assert!(written.contains("get-token"), "{written}");

    // The cluster creator (the bootstrap key) is kubernetes-admin in system:masters.
    env.ok(&admin, &["get", "pods", "-A"]);
    assert!(env.can_i(&admin, "*", "*", None));
    for ns in ["monthly-batch", "nightly-batch"] {
        env.ok(&admin, &["create", "namespace", ns]);
    }
    env.ok(
        &admin,
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            "monthly-batch",
            "--from-literal=a=1",
        ],
    );
    env.ok(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "monthly-batch",
            "--from-literal=k=v",
        ],
    );

    // A role mapped nowhere: its token verifies but maps to nobody → 401, nothing written.
    env.role("unmapped");
    let unmapped = env.kubeconfig("unmapped");
    env.unauthorized(&unmapped, &["get", "pods", "-A"]);
    env.unauthorized(
        &unmapped,
        &[
            "create",
            "configmap",
            "intruder",
            "-n",
            "monthly-batch",
            "--from-literal=x=1",
        ],
    );
    let absent = env.kubectl(
        &admin,
        &["get", "configmap", "intruder", "-n", "monthly-batch"],
    );
    assert!(!absent.status.success());
    assert!(String::from_utf8_lossy(&absent.stderr).contains("NotFound"));

    // Seed step 19: the console ClusterRole and binding, and aws-auth mapping a role to
    // the group. The role's sessions get exactly the role's rules.
    let console_arn = env.role("eks-console-viewer");
    let manifests = env.work.path().join("console.yaml");
    let aws_auth = format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aws-auth\n  namespace: kube-system\ndata:\n  mapRoles: |\n    - rolearn: {console_arn}\n      username: console-viewer:{{{{SessionName}}}}\n      groups:\n      - eks-console-dashboard-full-access-group\n"
    );
    std::fs::write(&manifests, format!("{CONSOLE_FULL_ACCESS}{aws_auth}")).unwrap();
    env.ok(&admin, &["apply", "-f", manifests.to_str().unwrap()]);
    let viewer = env.kubeconfig("eks-console-viewer");
    env.ok(&viewer, &["get", "pods", "-A"]);
    env.ok(&viewer, &["get", "nodes"]);
    let secrets = env.ok(&viewer, &["get", "secrets", "-n", "monthly-batch"]);
    assert!(secrets.contains("creds"), "{secrets}");
    let denied = env.refused(
        &viewer,
        &["delete", "configmap", "settings", "-n", "monthly-batch"],
    );
    assert!(
        denied.contains("Forbidden")
            && denied.contains("User \"console-viewer:")
            && denied.contains("cannot delete resource \"configmaps\" in API group \"\" in the namespace \"monthly-batch\""),
        "{denied}"
    );
    env.ok(
        &admin,
        &["get", "configmap", "settings", "-n", "monthly-batch"],
    );
    let denied = env.refused(&viewer, &["create", "namespace", "sneaky"]);
    assert!(denied.contains("Forbidden"), "{denied}");
    assert!(!env
        .kubectl(&admin, &["get", "namespace", "sneaky"])
        .status
        .success());
    // Exactly the role's rules: get and list on its resources, nothing else.
    let listed = [
        "pods",
        "nodes",
        "namespaces",
        "configmaps",
        "endpoints",
        "events",
        "persistentvolumeclaims",
        "secrets",
        "serviceaccounts",
        "services",
        "jobs.batch",
    ];
    for resource in listed {
        for verb in ["get", "list"] {
            assert!(
                env.can_i(&viewer, verb, resource, None),
                "{verb} {resource}"
            );
        }
        for verb in ["watch", "create", "update", "patch", "delete"] {
            assert!(
                !env.can_i(&viewer, verb, resource, None),
                "{verb} {resource}"
            );
        }
    }
    for resource in [
        "roles.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "leases.coordination.k8s.io",
        "priorityclasses.scheduling.k8s.io",
        "poddisruptionbudgets.policy",
    ] {
        assert!(
            !env.can_i(&viewer, "list", resource, None),
            "list {resource}"
        );
    }

    // The same role in the web console (steps 19–20: "EKS console → Resources"): a
    // session of it signs in with its keys and sees what its kubectl sees — nodes and
    // secrets — and RBAC's Forbidden for what the ClusterRole leaves out.
    let session = env.server().aws_json(&[
        "sts",
        "assume-role",
        "--role-arn",
        &console_arn,
        "--role-session-name",
        "console",
    ])["Credentials"]
        .clone();
    let console = support::console::Http::new(&support::console::base(env.server()));
    let cookie = console.sign_in_with_key(
        session["AccessKeyId"].as_str().unwrap(),
        session["SecretAccessKey"].as_str().unwrap(),
        session["SessionToken"].as_str(),
    );
    let page = |path: &str| {
        let r = console.send("GET", path, Some(&cookie), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    };
    let node = env.ok(
        &admin,
        &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
    );
    let compute = page("/eks/compute");
    assert!(
        compute.contains(&format!("data-node=\"{node}\"")),
        "{compute}"
    );
    let secrets = page("/eks/resources/core/v1/secrets?namespace=monthly-batch");
    assert!(secrets.contains("creds"), "{secrets}");
    let roles = page("/eks/resources/rbac.authorization.k8s.io/v1/clusterroles");
    assert!(
        roles.contains("forbidden")
            && !roles.contains("eks-console-dashboard-full-access-clusterrole"),
        "{roles}"
    );

    // An access entry with AmazonEKSViewPolicy scoped to one namespace.
    let ns_arn = env.role("batch-viewer");
    let created = s.aws_json(&[
        "eks",
        "create-access-entry",
        "--cluster-name",
        CLUSTER,
        "--principal-arn",
        &ns_arn,
    ]);
    assert_eq!(created["accessEntry"]["principalArn"], ns_arn.as_str());
    assert_eq!(created["accessEntry"]["type"], "STANDARD");
    assert_eq!(
        created["accessEntry"]["username"],
        format!(
            "arn:aws:sts::{}:assumed-role/batch-viewer/{{{{SessionName}}}}",
            env.account
        )
    );
    assert!(env
        .aws_error(&[
            "eks",
            "create-access-entry",
            "--cluster-name",
            CLUSTER,
            "--principal-arn",
            &ns_arn
        ])
        .contains("ResourceInUseException"));
    let view = format!("{POLICY_PREFIX}AmazonEKSViewPolicy");
    assert!(env
        .aws_error(&[
            "eks",
            "associate-access-policy",
            "--cluster-name",
            CLUSTER,
            "--principal-arn",
            &ns_arn,
            "--policy-arn",
            &view,
            "--access-scope",
            "type=namespace",
        ])
        .contains("InvalidParameterException"));
    let associated = s.aws_json(&[
        "eks",
        "associate-access-policy",
        "--cluster-name",
        CLUSTER,
        "--principal-arn",
        &ns_arn,
        "--policy-arn",
        &view,
        "--access-scope",
        "type=namespace,namespaces=monthly-batch",
    ]);
    assert_eq!(
        associated["associatedAccessPolicy"]["accessScope"]["namespaces"],
        serde_json::json!(["monthly-batch"])
    );
    let listed = s.aws_json(&["eks", "list-access-entries", "--cluster-name", CLUSTER]);
    assert_eq!(listed["accessEntries"], serde_json::json!([ns_arn]));
    let with_view = s.aws_json(&[
        "eks",
        "list-access-entries",
        "--cluster-name",
        CLUSTER,
        "--associated-policy-arn",
        &view,
    ]);
    assert_eq!(with_view["accessEntries"], serde_json::json!([ns_arn]));
    let policies = s.aws_json(&[
        "eks",
        "list-associated-access-policies",
        "--cluster-name",
        CLUSTER,
        "--principal-arn",
        &ns_arn,
    ]);
    assert_eq!(
        policies["associatedAccessPolicies"][0]["policyArn"],
        view.as_str()
    );
    let offered = s.aws_json(&["eks", "list-access-policies"]);
    let names: Vec<&str> = offered["accessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSViewPolicy",
        "AmazonEMRJobPolicy",
    ] {
        assert!(names.contains(&wanted), "{names:?}");
    }
    let described = s.aws_json(&[
        "eks",
        "describe-access-entry",
        "--cluster-name",
        CLUSTER,
        "--principal-arn",
        &ns_arn,
    ]);
    assert_eq!(described["accessEntry"]["principalArn"], ns_arn.as_str());

    let batch = env.kubeconfig("batch-viewer");
    env.ok(&batch, &["get", "pods", "-n", "monthly-batch"]);
    env.ok(
        &batch,
        &["get", "configmap", "settings", "-n", "monthly-batch"],
    );
    let elsewhere = env.refused(&batch, &["get", "pods", "-n", "nightly-batch"]);
    assert!(
        elsewhere.contains("Forbidden") && elsewhere.contains("in the namespace \"nightly-batch\""),
        "{elsewhere}"
    );
    env.refused_with(
        &batch,
        &["get", "secrets", "-n", "monthly-batch"],
        "Forbidden",
    );
    env.refused_with(
        &batch,
        &["delete", "configmap", "settings", "-n", "monthly-batch"],
        "Forbidden",
    );
    env.ok(
        &admin,
        &["get", "configmap", "settings", "-n", "monthly-batch"],
    );
    env.refused_with(&batch, &["get", "pods", "-A"], "Forbidden");

    // Deleting the entry removes the access (the principal is mapped nowhere else).
    s.aws_ok(&[
        "eks",
        "delete-access-entry",
        "--cluster-name",
        CLUSTER,
        "--principal-arn",
        &ns_arn,
    ]);
    env.unauthorized(&batch, &["get", "pods", "-n", "monthly-batch"]);
    assert!(env
        .aws_error(&[
            "eks",
            "describe-access-entry",
            "--cluster-name",
            CLUSTER,
            "--principal-arn",
            &ns_arn
        ])
        .contains("ResourceNotFoundException"));
    let listed: Value = s.aws_json(&["eks", "list-access-entries", "--cluster-name", CLUSTER]);
    assert_eq!(listed["accessEntries"], serde_json::json!([]));
}
