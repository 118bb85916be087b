//! `serve --leader-elect`: replicas sharing a PostgreSQL store elect a leader with a
//! Lease on a cluster (here an embedded one, as a real one would be), every replica
//! answers the API (followers pass requests to the leader), and killing the leader
//! mid-burst of StartJobRun loses no acknowledged run and makes none twice.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use cluster::{kubectl, ClusterServer};
use serde_json::Value;
use sparkyard_store::testing::TestPostgres;
use support::{free_port, venv_tool};

const KEY_ID: &str = "AKIAREPLICATESTKEY01";
const SECRET: &str = "replica-test-secret-key";

struct Replica {
    name: &'static str,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Replica {
    fn start(name: &'static str, pg: &str, kubeconfig: &Path) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[controller]\nkubeconfig = {:?}\n",
                kubeconfig.display().to_string()
            ),
        )
        .unwrap();
        let mut replica = Replica {
            name,
            port: free_port(),
            dir,
            child: None,
        };
        replica.spawn(pg, &config);
        replica
    }

    fn spawn(&mut self, pg: &str, config: &Path) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .args(["serve", "--no-cluster", "--no-controller", "--leader-elect"])
            .args(["--leader-elect-lease-duration", "4s"])
            .args(["--leader-elect-renew-deadline", "3s"])
            .args(["--leader-elect-retry-period", "500ms"])
            .args(["--leader-elect-resource-namespace", "default"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--config")
            .arg(config)
            .args(["--store-url", pg])
            .env("POD_NAME", self.name)
            .env("SPARKYARD_BOOTSTRAP_ACCESS_KEY_ID", KEY_ID)
            .env("SPARKYARD_BOOTSTRAP_SECRET_ACCESS_KEY", SECRET)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn identity(&self) -> String {
        format!("{}_127.0.0.1:{}", self.name, self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, as `kubectl delete pod` sends, and wait for the process to end.
    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            child.wait().unwrap();
        }
    }

    fn aws(&self, args: &[&str]) -> Output {
        Command::new(venv_tool("aws"))
            .args(args)
            .args([
                "--endpoint-url",
                &self.endpoint(),
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_MAX_ATTEMPTS", "40")
            .output()
            .unwrap()
    }

    fn aws_json(&self, args: &[&str]) -> Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} via {} failed: {}\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn lease(kubeconfig: &Path) -> Value {
    let out = kubectl(
        kubeconfig,
        &[
            "get",
            "lease",
            "sparkyard-controller",
            "-n",
            "default",
            "-o",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kubeconfig_of(cluster: &ClusterServer) -> PathBuf {
    cluster.kubeconfig()
}

#[test]
fn replicas_elect_one_leader_forward_to_it_and_lose_nothing_when_it_dies() {
    let cluster = ClusterServer::start();
    let kubeconfig = kubeconfig_of(&cluster);
    let pg = TestPostgres::start();
    let mut a = Replica::start("replica-a", pg.url(), &kubeconfig);
    let holder =
        cluster::wait_for_lease_holder(&kubeconfig, "default", "sparkyard-controller", |h| {
            !h.is_empty()
        });
    let mut b = Replica::start("replica-b", pg.url(), &kubeconfig);
    assert_eq!(holder, a.identity(), "the only candidate leads");

    // Both answer; the follower (b) passes the request to the leader (a).
    let provider = serde_json::json!({"id": "cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "burst"}}}).to_string();
    let vc = b.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "replicated",
        "--container-provider",
        &provider,
    ]);
    let vc_id = vc["id"].as_str().unwrap().to_string();
    let seen = a.aws_json(&["emr-containers", "describe-virtual-cluster", "--id", &vc_id]);
    assert_eq!(seen["virtualCluster"]["name"], "replicated");
    // A wrong secret is refused by the leader, through the follower, and changes nothing.
    let refused = Command::new(venv_tool("aws"))
        .args([
            "emr-containers",
            "create-virtual-cluster",
            "--name",
            "forged",
            "--container-provider",
            &provider,
        ])
        .args(["--endpoint-url", &b.endpoint(), "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let listed = a.aws_json(&["emr-containers", "list-virtual-clusters"]);
    assert_eq!(listed["virtualClusters"].as_array().unwrap().len(), 1);

    // A burst of StartJobRun through the follower; the leader is killed mid-burst.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/replica_burst.py");
    let mut burst = Command::new(venv_tool("python3"))
        .arg(&script)
        .args([&b.endpoint(), vc_id.as_str(), "60"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("PYTHONOPTIMIZE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked: Vec<(String, String)> = Vec::new();
    let lines = BufReader::new(burst.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts[0], "ACK", "{line}");
        acked.push((parts[1].to_string(), parts[2].to_string()));
        if acked.len() == 20 {
            a.kill9();
        }
    }
    let status = burst.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut burst.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "burst failed: {stderr}\nleader log:\n{}\nfollower log:\n{}",
        a.log(),
        b.log()
    );
    assert_eq!(acked.len(), 60);

    // b took over: the Lease names it, with one more transition.
    let lease = lease(&kubeconfig);
    assert_eq!(lease["spec"]["holderIdentity"], b.identity().as_str());
    assert!(lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1);
    assert!(
        b.log()
            .contains("successfully acquired lease default/sparkyard-controller"),
        "{}",
        b.log()
    );

    // Every acknowledged run exists once, and nothing else was made.
    let mut runs: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            "emr-containers",
            "list-job-runs",
            "--virtual-cluster-id",
            vc_id.as_str(),
            "--no-paginate",
        ];
        if let Some(t) = &token {
            args.extend(["--next-token", t.as_str()]);
        }
        let page = b.aws_json(&args);
        runs.extend(page["jobRuns"].as_array().unwrap().iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let ids: std::collections::BTreeSet<&str> =
        runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), runs.len(), "a run is listed twice");
    assert_eq!(
        runs.len(),
        60,
        "one run per token: {:?}",
        runs.iter().map(|r| &r["name"]).collect::<Vec<_>>()
    );
    for (token, id) in &acked {
        assert!(
            ids.contains(id.as_str()),
            "acknowledged run {id} ({token}) is missing"
        );
    }

    // A graceful stop releases the Lease at once: the restarted replica takes it over
    // without waiting out a lease duration.
    let config = a.dir.path().join("config.toml");
    a.spawn(pg.url(), &config);
    b.terminate();
    let holder =
        cluster::wait_for_lease_holder(&kubeconfig, "default", "sparkyard-controller", |h| {
            h == a.identity()
        });
    assert_eq!(holder, a.identity());
    assert!(
        b.log()
            .contains("released lease default/sparkyard-controller"),
        "{}",
        b.log()
    );
    let seen = a.aws_json(&["emr-containers", "describe-virtual-cluster", "--id", &vc_id]);
    assert_eq!(seen["virtualCluster"]["state"], "RUNNING");
}
