//! The environment of the job-run tests: `sparkyard serve` with its embedded cluster (or the
//! cluster in a process of its own), walkthrough steps 5 and 7 done with kubectl and the
//! real `aws` CLI, and the emr-containers calls the tests make on their runs.
//!
//! Include it as `#[path = "support/jobs.rs"] mod jobs_env;` beside `mod support;` and
//! `#[path = "support/cluster.rs"] mod cluster;`: it runs kubectl through `crate::cluster`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster;
use crate::support::{self, walkthrough, Server};

/// The walkthrough's namespace of the seed's pi job.
pub const NS: &str = "monthly-batch";

/// The seed's pi job (step 9's entry point).
pub const PI: &str = "local:///usr/lib/spark/examples/src/main/python/pi.py";

/// A loopback /16 and service IP no other test process uses.
pub fn unique_octet() -> u32 {
    let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
    n % 200 + 30
}

/// A directory every pod can read (the host file system is visible read-only inside pods,
/// but each pod has a private `/tmp`).
pub fn shared_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("jobs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a job script into `dir`; returns its `local://` URI.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    format!("local://{}", path.display())
}

pub struct Env {
    pub server: Server,
    /// Kept alive for the config file.
    _config_dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// A second server holding the cluster, when the cluster runs in its own process.
    pub cluster: Option<Server>,
    pub vc: String,
    pub role_arn: String,
}

fn write_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn cluster_table(octet: u32) -> String {
    // The default node is the seed's m5.2xlarge (8 CPUs, 32 GiB): room for a driver and
    // executors. The pod IP range is the test's own, so servers side by side never collide.
    format!("[cluster]\npod-cidr = \"127.{octet}.0.0/16\"\n")
}

impl Env {
    /// `sparkyard serve` with its embedded cluster, as a user runs it, with walkthrough steps
    /// 5 and 7 done for [`NS`].
    pub fn all_in_one(scheduler: Option<Value>) -> Env {
        let mut env = Env::serve("");
        env.walkthrough_setup(NS, scheduler);
        env
    }

    /// `sparkyard serve` with its embedded cluster and no namespace yet. `config` ends the
    /// configuration file, after `[cluster]` (the test's own pod IP range) and `[controller]`:
    /// e.g. `[[cluster.nodes]]` entries or a `[history]` table.
    pub fn serve(config: &str) -> Env {
        Env::serve_with(config, &[])
    }

    /// [`Env::serve`] with more `sparkyard serve` arguments, e.g. `--no-controller`.
    pub fn serve_with(config: &str, args: &[&str]) -> Env {
        let octet = unique_octet();
        let config_dir = tempfile::tempdir().unwrap();
        let config = write_config(
            config_dir.path(),
            "sparkyard.toml",
            &format!(
                "{}\n[controller]\nresync-seconds = 1\n\n{config}",
                cluster_table(octet)
            ),
        );
        let cluster_listen = format!("127.0.0.1:{}", support::free_port());
        let service = format!("127.11.{octet}.1:443");
        let mut all = vec![
            "--config",
            config.to_str().unwrap(),
            "--cluster-listen",
            &cluster_listen,
            "--cluster-service-address",
            &service,
        ];
        all.extend(args);
        let server = Server::start_with(&all);
        let kubeconfig = server.data_dir.path().join("cluster/kubeconfig");
        Env {
            server,
            _config_dir: config_dir,
            kubeconfig,
            cluster: None,
            vc: String::new(),
            role_arn: String::new(),
        }
    }

    /// The cluster in one process (`serve --cluster-only`), the AWS endpoint and controller
    /// in another (`serve --no-cluster`): the controller then sees the cluster as it would
    /// see a real one, and the API process can crash without taking the cluster with it.
    pub fn split() -> Env {
        let octet = unique_octet();
        let config_dir = tempfile::tempdir().unwrap();
        let cluster_config = write_config(config_dir.path(), "cluster.toml", &cluster_table(octet));
        let cluster = Server::start_with(&[
            "--cluster-only",
            "--config",
            cluster_config.to_str().unwrap(),
            "--cluster-listen",
            &format!("127.0.0.1:{}", support::free_port()),
            "--cluster-service-address",
            &format!("127.11.{octet}.1:443"),
        ]);
        let kubeconfig = cluster.data_dir.path().join("cluster/kubeconfig");
        let api_config = write_config(
            config_dir.path(),
            "api.toml",
            &format!(
                "[controller]\nresync-seconds = 1\nkubeconfig = \"{}\"\nmaster = \"https://kubernetes.default.svc\"\n",
                kubeconfig.display()
            ),
        );
        let server =
            Server::start_with(&["--no-cluster", "--config", api_config.to_str().unwrap()]);
        let mut env = Env {
            server,
            _config_dir: config_dir,
            kubeconfig,
            cluster: Some(cluster),
            vc: String::new(),
            role_arn: String::new(),
        };
        env.walkthrough_setup(NS, None);
        env
    }

    pub fn log(&self) -> String {
        let cluster = self.cluster.as_ref().map(|c| c.log()).unwrap_or_default();
        format!("{}\n--- cluster process ---\n{cluster}", self.server.log())
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = cluster::kubectl(&self.kubeconfig, args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Steps 5 and 7 for `namespace`, kept as the environment's `vc` and `role_arn`.
    pub fn walkthrough_setup(&mut self, namespace: &str, scheduler: Option<Value>) {
        (self.vc, self.role_arn) = self.add_namespace(namespace, scheduler);
    }

    /// Steps 5 and 7: the namespace, its execution role and its virtual cluster
    /// `<namespace>-emr-cluster`. Returns the virtual cluster's id and the role's ARN.
    pub fn add_namespace(&self, namespace: &str, scheduler: Option<Value>) -> (String, String) {
        self.kubectl(&["create", "namespace", namespace]);
        let role_arn = walkthrough::create_role(&self.server, namespace);
        let vc = self.create_vc(&format!("{namespace}-emr-cluster"), namespace, scheduler);
        (vc, role_arn)
    }

    pub fn create_vc(&self, name: &str, namespace: &str, scheduler: Option<Value>) -> String {
        let provider = json!({"id": walkthrough::CLUSTER, "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}}).to_string();
        let mut args = vec![
            "emr-containers",
            "create-virtual-cluster",
            "--name",
            name,
            "--container-provider",
            &provider,
        ];
        let scheduler = scheduler.map(|s| s.to_string());
        if let Some(s) = &scheduler {
            args.extend(["--scheduler-configuration", s]);
        }
        self.server.aws_json(&args)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Step 9's request, with the given driver and parameters.
    pub fn request(
        &self,
        vc: &str,
        name: &str,
        entry_point: &str,
        params: &str,
        extra: Value,
    ) -> Value {
        let mut request = json!({
            "name": name,
            "virtualClusterId": vc,
            "executionRoleArn": self.role_arn,
            "releaseLabel": "emr-6.3.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": entry_point, "sparkSubmitParameters": params}},
            "configurationOverrides": walkthrough::configuration_overrides(
                NS, "pi", "monthly-batch-logs-123456789012-us-east-1"),
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            request[k] = v;
        }
        request
    }

    /// `aws emr-containers start-job-run --cli-input-json file://…`; returns the run id.
    pub fn start(&self, request: &Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.json");
        std::fs::write(&file, request.to_string()).unwrap();
        let out = self.server.aws_json(&[
            "emr-containers",
            "start-job-run",
            "--cli-input-json",
            &format!("file://{}", file.display()),
        ]);
        out["id"].as_str().unwrap().to_string()
    }

    pub fn describe(&self, vc: &str, id: &str) -> Value {
        self.server.aws_json(&[
            "emr-containers",
            "describe-job-run",
            "--virtual-cluster-id",
            vc,
            "--id",
            id,
        ])["jobRun"]
            .clone()
    }

    /// Polls until the run is terminal; returns the final run and every state seen, in order.
    pub fn follow(
        &self,
        vc: &str,
        id: &str,
        limit: Duration,
        mut each: impl FnMut(&Value),
    ) -> (Value, Vec<String>) {
        let deadline = Instant::now() + limit;
        let mut states: Vec<String> = Vec::new();
        loop {
            let run = self.describe(vc, id);
            let state = run["state"].as_str().unwrap().to_string();
            if states.last() != Some(&state) {
                states.push(state.clone());
            }
            each(&run);
            if matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED") {
                return (run, states);
            }
            assert!(
                Instant::now() < deadline,
                "run {id} still {state} after {limit:?} (states {states:?})\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn pod_names(&self, selector: Option<&str>) -> Vec<String> {
        let mut args = vec!["get", "pods", "-n", NS, "-o", "name"];
        if let Some(s) = selector {
            args.extend(["-l", s]);
        }
        self.kubectl(&args)
            .lines()
            .map(|l| l.trim_start_matches("pod/").to_string())
            .collect()
    }
}
