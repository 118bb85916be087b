//! End to end: unmodified `spark-submit` (pyspark 4.0.1) in cluster mode against the
//! embedded cluster, set up with real `kubectl` as one would set up a real cluster. The
//! driver and executors run as sandboxed pods; the driver talks to
//! `https://kubernetes.default.svc` with its own service-account token.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::kubectl;
use serde_json::Value;
use support::{free_port, venv_tool, Server};

struct Cluster {
    server: Server,
    api_port: u16,
}

impl Cluster {
    /// `sparkyard serve --cluster-only` with its own API port and its own in-cluster IP on
    /// port 443, which is what Spark's driver uses by default.
    fn start() -> Cluster {
        let api_port = free_port();
        let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
        let service = format!("127.13.{}.{}:443", (n >> 8) % 250 + 1, n % 250 + 1);
        let server = Server::start_with(&[
            "--cluster-only",
            "--cluster-listen",
            &format!("127.0.0.1:{api_port}"),
            "--cluster-service-address",
            &service,
        ]);
        let cluster = Cluster { server, api_port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.kubeconfig().exists() {
            assert!(
                Instant::now() < deadline,
                "no kubeconfig:\n{}",
                cluster.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    fn kubeconfig(&self) -> std::path::PathBuf {
        self.server.data_dir.path().join("cluster/kubeconfig")
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = kubectl(&self.kubeconfig(), args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).unwrap()
    }

    /// What a real cluster needs for Spark: a namespace, the `spark` service account and a
    /// Role allowing it to manage its pods, services, config maps and claims.
    fn prepare_namespace(&self, ns: &str) {
        let path = self.server.data_dir.path().join(format!("{ns}.yaml"));
        std::fs::write(&path, cluster_support::spark_namespace_manifest(ns)).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    /// Runs spark-submit in cluster mode to completion; returns (exit ok, output, seconds).
    fn submit_pi(&self, ns: &str, app_path: &str) -> (bool, String, f64) {
        let started = Instant::now();
        let out = Command::new(venv_tool("spark-submit"))
            .args([
                "--master",
                &format!("k8s://https://127.0.0.1:{}", self.api_port),
                "--deploy-mode",
                "cluster",
                "--name",
                "spark-pi",
                "--conf",
                "spark.kubernetes.container.image=apache/spark:4.0.1",
                "--conf",
                "spark.kubernetes.authenticate.driver.serviceAccountName=spark",
                "--conf",
                &format!("spark.kubernetes.namespace={ns}"),
                "--conf",
                "spark.executor.instances=2",
                "--conf",
                "spark.executor.memory=512m",
                "--conf",
                "spark.driver.memory=512m",
                "--conf",
                "spark.kubernetes.driver.request.cores=100m",
                "--conf",
                "spark.kubernetes.executor.request.cores=100m",
                app_path,
                "4",
            ])
            .env("KUBECONFIG", self.kubeconfig())
            // As with an activated venv: the launcher scripts find pyspark with `python3`.
            .env("PATH", cluster_support::venv_path())
            .env_remove("SPARK_HOME")
            .output()
            .expect("run spark-submit");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text, started.elapsed().as_secs_f64())
    }

    /// Asserts the application ran: driver Succeeded, its log has the result, executors
    /// and the driver service are gone.
    fn assert_pi_completed(&self, ns: &str, submit_output: &str) {
        let drivers = self.kubectl_json(&["get", "pods", "-n", ns, "-l", "spark-role=driver"]);
        let driver = &drivers["items"][0];
        let name = driver["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("no driver pod; spark-submit said:\n{submit_output}"));
        let logs = kubectl(&self.kubeconfig(), &["logs", "-n", ns, name]);
        let logs = String::from_utf8_lossy(&logs.stdout).to_string();
        assert_eq!(
            driver["status"]["phase"], "Succeeded",
            "driver {name} did not succeed; spark-submit:\n{submit_output}\ndriver log:\n{logs}\nexecutor logs:\n{}",
            self.executor_logs(ns)
        );
        assert!(logs.contains("Pi is roughly 3.1"), "driver log:\n{logs}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let executors =
                self.kubectl_json(&["get", "pods", "-n", ns, "-l", "spark-role=executor"]);
            let services = self.kubectl_json(&["get", "services", "-n", ns]);
            let left = executors["items"].as_array().unwrap().len()
                + services["items"].as_array().unwrap().len();
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "executors or services left:\n{executors:#}\n{services:#}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn executor_logs(&self, ns: &str) -> String {
        cluster_support::pod_logs(self.server.data_dir.path(), ns, 40, |name| {
            name.contains("-exec-")
        })
    }
}

#[test]
fn spark_pi_runs_in_cluster_mode_from_opt_spark() {
    let cluster = Cluster::start();
    cluster.prepare_namespace("spark-pi");
    let (ok, output, seconds) = cluster.submit_pi(
        "spark-pi",
        "local:///opt/spark/examples/src/main/python/pi.py",
    );
    eprintln!("spark-submit (/opt/spark) took {seconds:.1} s");
    assert!(
        ok,
        "spark-submit failed:\n{output}\nserver log:\n{}",
        cluster.server.log()
    );
    cluster.assert_pi_completed("spark-pi", &output);
}

#[test]
fn spark_pi_runs_from_emr_path_and_two_apps_run_side_by_side() {
    let cluster = Cluster::start();
    cluster.prepare_namespace("team-a");
    cluster.prepare_namespace("team-b");
    let started = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            cluster.submit_pi(
                "team-a",
                "local:///usr/lib/spark/examples/src/main/python/pi.py",
            )
        });
        let b = s.spawn(|| {
            cluster.submit_pi(
                "team-b",
                "local:///opt/spark/examples/src/main/python/pi.py",
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!(
        "two concurrent spark-submits took {:.1} s (a {:.1} s, b {:.1} s)",
        started.elapsed().as_secs_f64(),
        a.2,
        b.2
    );
    assert!(a.0, "team-a spark-submit failed:\n{}", a.1);
    assert!(b.0, "team-b spark-submit failed:\n{}", b.1);
    cluster.assert_pi_completed("team-a", &a.1);
    cluster.assert_pi_completed("team-b", &b.1);
}
