//! Starting `sparkyard serve --cluster-only` for tests of the embedded Kubernetes API, with
//! per-test ports and in-cluster address so tests can run side by side.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{free_port, repo_root, Server};

pub struct ClusterServer {
    pub server: Server,
    pub api_port: u16,
}

/// A loopback address no other test uses: 127.12.<pid-derived>.<random>, port chosen by the OS.
fn service_address() -> String {
    let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
    format!("127.12.{}.{}:0", (n >> 8) % 250 + 1, n % 250 + 1)
}

impl ClusterServer {
    pub fn start() -> ClusterServer {
        Self::start_serving(true)
    }

    /// The whole of `sparkyard serve` (AWS endpoint too), on per-test cluster addresses.
    pub fn start_with_aws() -> ClusterServer {
        Self::start_serving(false)
    }

    /// [`ClusterServer::start_with_aws`] with the data directory below `parent`
    /// ([`Server::start_in`]).
    pub fn start_with_aws_in(parent: &Path) -> ClusterServer {
        Self::start_serving_in(parent, false)
    }

    fn start_serving(cluster_only: bool) -> ClusterServer {
        Self::start_serving_in(&std::env::temp_dir(), cluster_only)
    }

    fn start_serving_in(parent: &Path, cluster_only: bool) -> ClusterServer {
        let api_port = free_port();
        let listen = format!("127.0.0.1:{api_port}");
        let service = service_address();
        let mut args = vec![
            "--cluster-listen",
            &listen,
            "--cluster-service-address",
            &service,
        ];
        if cluster_only {
            args.insert(0, "--cluster-only");
        }
        let server = Server::start_in(parent, &args);
        ClusterServer { server, api_port }
    }

    /// Like [`ClusterServer::start`], with a configuration file (`--config`) holding
    /// `config` — e.g. `[[cluster.nodes]]` entries. The file lives next to the data
    /// directory and goes with it.
    pub fn start_with_config(config: &str) -> ClusterServer {
        let dir = std::env::temp_dir().join(format!("sparkyard-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sparkyard.toml");
        std::fs::write(&path, config).unwrap();
        let api_port = free_port();
        let listen = format!("127.0.0.1:{api_port}");
        let service = service_address();
        let server = Server::start_with(&[
            "--cluster-only",
            "--cluster-listen",
            &listen,
            "--cluster-service-address",
            &service,
            "--config",
            path.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        ClusterServer { server, api_port }
    }

    /// The kubeconfig sparkyard wrote (cluster `sparkyard`, user `sparkyard-admin`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.server.data_dir.path().join("cluster/kubeconfig")
    }

    pub fn admin_token(&self) -> String {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("token: ")
                    .map(|t| t.trim().to_string())
            })
            .expect("token in kubeconfig")
    }

    /// A copy of the kubeconfig whose user authenticates with `token` instead.
    pub fn kubeconfig_with_token(&self, token: &str, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        let replaced = text.replace(
            &format!("token: {}", self.admin_token()),
            &format!("token: {token}"),
        );
        let path = self
            .server
            .data_dir
            .path()
            .join(format!("kubeconfig-{name}"));
        std::fs::write(&path, replaced).unwrap();
        path
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// `kubectl` on PATH, else `<repo>/.venv/bin/kubectl`.
pub fn kubectl_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("kubectl"))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| repo_root().join(".venv/bin/kubectl"))
}

/// kubectl against the cluster, with a private discovery cache, ready to run or spawn.
pub fn kubectl_command(kubeconfig: &Path, args: &[&str]) -> Command {
    let cache = kubeconfig.parent().unwrap().join("kube-cache");
    let mut command = Command::new(kubectl_binary());
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .env_remove("KUBECONFIG");
    command
}

/// Runs kubectl against the cluster, with a private discovery cache.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    kubectl_command(kubeconfig, args)
        .output()
        .expect("run kubectl")
}

/// What Spark needs in a namespace of a plain cluster: the namespace, the `spark` service
/// account and a Role letting it manage its pods, services, config maps and claims.
pub fn spark_namespace_manifest(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: spark
  namespace: {ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: spark-driver
  namespace: {ns}
rules:
- apiGroups: [""]
  resources: ["pods", "services", "configmaps", "persistentvolumeclaims"]
  verbs: ["create", "get", "list", "watch", "update", "patch", "delete", "deletecollection"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: spark-driver
  namespace: {ns}
subjects:
- kind: ServiceAccount
  name: spark
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: spark-driver
"#
    )
}

/// `PATH` with the project's venv first, where `spark-submit` and pyspark are.
pub fn venv_path() -> String {
    let venv_bin = repo_root().join(".venv/bin");
    format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// For failure messages: the last `tail` lines of every container log of the pods of `ns`
/// whose sandbox directory name (`<ns>_<pod>_<uid>`) passes `only`, one `== <dir>` section
/// per pod, read from the embedded cluster's files under `data_dir` (so gone pods count).
pub fn pod_logs(data_dir: &Path, ns: &str, tail: usize, only: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let pods = data_dir.join("cluster/pods");
    for entry in std::fs::read_dir(&pods).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with(&format!("{ns}_")) || !only(&name) {
            continue;
        }
        out.push_str(&format!("== {name}\n"));
        let logs = entry.path().join("logs");
        for container in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let output =
                    sparkyard_cluster::logs::read_output(&file.path(), None).unwrap_or_default();
                let text = String::from_utf8_lossy(&output);
                let lines: Vec<&str> = text.lines().rev().take(tail).collect();
                out.push_str(&lines.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
        out.push('\n');
    }
    out
}

/// A kube-rs client for `kubeconfig` (the admin's, or one `kubeconfig_with_token` wrote).
pub async fn kube_client(kubeconfig: &Path) -> kube::Client {
    // Both rustls providers are in the dependency graph; kube-rs needs one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Waits (on a watch) until the Lease's holder satisfies `done`, returning it.
pub fn wait_for_lease_holder(
    kubeconfig: &Path,
    namespace: &str,
    name: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut watch = kubectl_command(
        kubeconfig,
        &[
            "get",
            "lease",
            "-n",
            namespace,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // kubectl prints one JSON document per event, pretty-printed: split on top-level braces.
    let stdout = watch.stdout.take().unwrap();
    let mut depth = 0i32;
    let mut doc = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        doc.push_str(&line);
        if depth == 0 && !doc.trim().is_empty() {
            let event: serde_json::Value = serde_json::from_str(&doc).unwrap();
            doc.clear();
            let holder = event["object"]["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if event["object"]["metadata"]["name"] == name && done(&holder) {
                let _ = watch.kill();
                let _ = watch.wait();
                return holder;
            }
        }
    }
    let _ = watch.wait();
    panic!("the lease watch ended");
}
