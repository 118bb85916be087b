//! The seed's priority scenario (steps 14–17) with real Spark: on a congested node, a
//! running low-priority application loses one executor to a high-priority application's
//! driver, keeps its driver, gets the executor back as `exec-3` once the high-priority
//! application is done, and completes.
//!
//! Priority classes and pod templates are the seed's: drivers and high-priority executors
//! `critical-priority` (400) with `nodeSelector: eks.amazonaws.com/capacityType:
//! ON_DEMAND`, low-priority executors `low-priority` (100). The node is sized in CPU
//! requests (memory is plentiful) so that:
//!
//! | | requests | on the 2-CPU node |
//! |---|---|---|
//! | low app: driver + 2 executors | 400m + 2 × 700m | 1800m used, 200m free |
//! | high driver arrives | 400m | does not fit → preempts one low executor (700m) |
//! | high executors | 2 × 200m | fit in what is left (500m) |
//! | low replacement exec-3 | 700m | waits (nothing of lower priority to evict) until the high app ends |
//!
//! Sleeps are the seed's `sc.parallelize(range(1,6), 5).foreach(lambda x: sleep(x*…))`
//! with shorter units; the whole test takes about 2–3 minutes on two cores.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::kubectl;
use serde_json::Value;
use support::walkthrough::{
    self, DRIVER_TEMPLATE, HP_EXECUTOR_TEMPLATE, LP_EXECUTOR_TEMPLATE, POD_TEMPLATES,
};
use support::{free_port, venv_tool, Server};

const NODE: &str = "spark-node";
const LOW_JOB: &str = "low-priority-threadsleeper.py";
const HIGH_JOB: &str = "high-priority-threadsleeper.py";

struct Cluster {
    server: Server,
    api_port: u16,
    /// Job script and pod templates, where pods can read them (`/tmp` and the data
    /// directory are private to the sandboxes).
    files: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let files = tempfile::Builder::new()
            .prefix("sparkyard-preemption-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
        let config = files.path().join("sparkyard.toml");
        std::fs::write(
            &config,
            format!(
                "[cluster]\npod-cidr = \"127.{}.0.0/16\"\n\n[[cluster.nodes]]\nname = \"{NODE}\"\ncpu = \"2\"\nmemory = \"16Gi\"\ncapacity = {{ cpu = \"2\", memory = \"16Gi\" }}\n",
                40 + n % 200
            ),
        )
        .unwrap();
        let api_port = free_port();
        let service = format!("127.14.{}.{}:443", (n >> 8) % 250 + 1, n % 250 + 1);
        let server = Server::start_with(&[
            "--cluster-only",
            "--cluster-listen",
            &format!("127.0.0.1:{api_port}"),
            "--cluster-service-address",
            &service,
            "--config",
            config.to_str().unwrap(),
        ]);
        let cluster = Cluster {
            server,
            api_port,
            files,
        };
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

    fn kubeconfig(&self) -> PathBuf {
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

    fn apply(&self, name: &str, manifest: &str) {
        let path = self.files.path().join(name);
        std::fs::write(&path, manifest).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    /// A namespace as a virtual cluster needs it: the `spark` service account and a Role
    /// for the driver's pods, services and config maps.
    fn prepare_namespace(&self, ns: &str) {
        self.apply(
            &format!("{ns}.yaml"),
            &cluster_support::spark_namespace_manifest(ns),
        );
    }

    /// Writes the seed's three pod templates and the two thread-sleeper jobs.
    fn write_job_files(&self) {
        let dir = self.files.path();
        for (name, text) in POD_TEMPLATES {
            std::fs::write(dir.join(name), text).unwrap();
        }
        for (file, app, unit) in [
            (LOW_JOB, "monthly-batch-low-priority-job", 10),
            (HIGH_JOB, "intra-day-high-priority-time-sensitive-job", 1),
        ] {
            std::fs::write(dir.join(file), walkthrough::threadsleeper(app, unit)).unwrap();
        }
    }

    /// spark-submit in cluster mode, to completion; returns (exit ok, output).
    fn submit(
        &self,
        ns: &str,
        name: &str,
        executor_template: &str,
        executor_cores: &str,
        job: &str,
    ) -> (bool, String) {
        let dir = self.files.path();
        let file = |f: &str| dir.join(f).display().to_string();
        let out = Command::new(venv_tool("spark-submit"))
            .args([
                "--master",
                &format!("k8s://https://127.0.0.1:{}", self.api_port),
                "--deploy-mode",
                "cluster",
                "--name",
                name,
                "--conf",
                "spark.kubernetes.container.image=apache/spark:4.0.1",
                "--conf",
                "spark.kubernetes.authenticate.driver.serviceAccountName=spark",
                "--conf",
                &format!("spark.kubernetes.namespace={ns}"),
                "--conf",
                &format!(
                    "spark.kubernetes.driver.podTemplateFile={}",
                    file(DRIVER_TEMPLATE)
                ),
                "--conf",
                &format!(
                    "spark.kubernetes.executor.podTemplateFile={}",
                    file(executor_template)
                ),
                "--conf",
                "spark.executor.instances=2",
                "--conf",
                "spark.executor.cores=1",
                "--conf",
                "spark.driver.cores=1",
                "--conf",
                "spark.executor.memory=512m",
                "--conf",
                "spark.driver.memory=512m",
                "--conf",
                "spark.kubernetes.driver.request.cores=400m",
                "--conf",
                &format!("spark.kubernetes.executor.request.cores={executor_cores}"),
                "--conf",
                "spark.dynamicAllocation.enabled=false",
                "--conf",
                "spark.kubernetes.executor.deleteOnTermination=true",
                &format!("local://{}", file(job)),
            ])
            .env("KUBECONFIG", self.kubeconfig())
            .env("PATH", cluster_support::venv_path())
            .env_remove("SPARK_HOME")
            .output()
            .expect("run spark-submit");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn pods(&self, ns: &str, selector: &str) -> Vec<Value> {
        self.kubectl_json(&["get", "pods", "-n", ns, "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn events(&self, ns: &str) -> Vec<Value> {
        self.kubectl_json(&["get", "events", "-n", ns])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn driver_log(&self, ns: &str, name: &str) -> String {
        let out = kubectl(&self.kubeconfig(), &["logs", "-n", ns, name]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn pod_logs(&self, ns: &str) -> String {
        cluster_support::pod_logs(self.server.data_dir.path(), ns, 30, |_| true)
    }
}

fn name_of(pod: &Value) -> &str {
    pod["metadata"]["name"].as_str().unwrap_or("")
}

fn event_time(event: &Value) -> String {
    event["lastTimestamp"]
        .as_str()
        .or_else(|| event["eventTime"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn high_priority_job_preempts_a_low_priority_executor_which_comes_back_as_exec_3() {
    let cluster = Cluster::start();
    for (file, manifest) in walkthrough::priority_classes() {
        cluster.apply(&file, &manifest);
    }
    cluster.prepare_namespace("monthly-batch");
    cluster.prepare_namespace("intra-day-batch");
    cluster.write_job_files();

    let started = Instant::now();
    std::thread::scope(|s| {
        let low = s.spawn(|| {
            cluster.submit(
                "monthly-batch",
                "monthly-batch-low-priority-job",
                LP_EXECUTOR_TEMPLATE,
                "700m",
                LOW_JOB,
            )
        });

        // The low job holds the node: its driver and both executors run and have begun
        // work (deleting an executor while SparkContext still initialises trips a Spark
        // race, see reference/spark-k8s-api.md §5).
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let running: Vec<String> = cluster
                .pods("monthly-batch", "spark-role=executor")
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .map(|p| name_of(p).to_string())
                .collect();
            if running.len() == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the low-priority executors never ran; server log:\n{}\npods:\n{}\nlogs:\n{}",
                cluster.server.log(),
                cluster.kubectl_ok(&["get", "pods", "-A", "-o", "yaml"]),
                cluster.pod_logs("monthly-batch")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(Duration::from_secs(8));
        let low_driver = cluster.pods("monthly-batch", "spark-role=driver");
        assert_eq!(low_driver.len(), 1);
        let low_driver_uid = low_driver[0]["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string();
        let low_driver_name = name_of(&low_driver[0]).to_string();
        eprintln!(
            "low job running after {:.0} s; submitting the high-priority job",
            started.elapsed().as_secs_f64()
        );

        let high = s.spawn(|| {
            cluster.submit(
                "intra-day-batch",
                "intra-day-high-priority-time-sensitive-job",
                HP_EXECUTOR_TEMPLATE,
                "200m",
                HIGH_JOB,
            )
        });
        let (high_ok, high_out) = high.join().unwrap();
        eprintln!(
            "high job done after {:.0} s",
            started.elapsed().as_secs_f64()
        );
        let (low_ok, low_out) = low.join().unwrap();
        eprintln!(
            "low job done after {:.0} s",
            started.elapsed().as_secs_f64()
        );

        let context = || {
            format!(
                "\nlow spark-submit:\n{low_out}\nhigh spark-submit:\n{high_out}\nlow events:\n{:#}\nlow pods:\n{}\nhigh pods:\n{}",
                Value::Array(cluster.events("monthly-batch")),
                cluster.pod_logs("monthly-batch"),
                cluster.pod_logs("intra-day-batch")
            )
        };
        assert!(high_ok, "high-priority spark-submit failed{}", context());
        assert!(low_ok, "low-priority spark-submit failed{}", context());

        // The high job's driver succeeded.
        let high_driver = cluster.pods("intra-day-batch", "spark-role=driver");
        assert_eq!(high_driver.len(), 1, "{}", context());
        let high_driver = &high_driver[0];
        assert_eq!(high_driver["status"]["phase"], "Succeeded", "{}", context());
        let high_uid = high_driver["metadata"]["uid"].as_str().unwrap();
        let high_finished = high_driver["status"]["containerStatuses"][0]["state"]["terminated"]
            ["finishedAt"]
            .as_str()
            .unwrap_or("")
            .to_string();

        // A low executor was preempted, by the high driver, on the node.
        let low_events = cluster.events("monthly-batch");
        let preempted: Vec<&Value> = low_events
            .iter()
            .filter(|e| e["reason"] == "Preempted")
            .collect();
        assert!(!preempted.is_empty(), "no Preempted event{}", context());
        for e in &preempted {
            let victim = e["involvedObject"]["name"].as_str().unwrap_or("");
            assert!(
                victim.ends_with("-exec-1") || victim.ends_with("-exec-2"),
                "only a first-generation low executor may be preempted, not {victim}{}",
                context()
            );
            assert_eq!(
                e["message"],
                format!("Preempted by pod {high_uid} on node {NODE}"),
                "{}",
                context()
            );
        }
        assert_eq!(
            preempted.len(),
            1,
            "exactly one executor gives way{}",
            context()
        );

        // The low driver was never touched: same pod, not deleted, and it succeeded.
        let low_driver_now = cluster.pods("monthly-batch", "spark-role=driver");
        assert_eq!(low_driver_now.len(), 1);
        let d = &low_driver_now[0];
        assert_eq!(d["metadata"]["uid"], low_driver_uid.as_str());
        assert!(d["metadata"]["deletionTimestamp"].is_null());
        assert_eq!(d["status"]["phase"], "Succeeded", "{}", context());
        assert!(
            low_events.iter().all(
                |e| !(e["involvedObject"]["name"] == low_driver_name.as_str()
                    && matches!(e["reason"].as_str(), Some("Preempted" | "Killing")))
            ),
            "the low driver must not be preempted{}",
            context()
        );
        let log = cluster.driver_log("monthly-batch", &low_driver_name);
        assert!(
            log.contains("monthly-batch-low-priority-job finished"),
            "low driver log:\n{log}{}",
            context()
        );

        // The replacement executor has the next id, and was placed only once the high job
        // had finished (it waited as Unschedulable meanwhile).
        let scheduled_exec3: Vec<&Value> = low_events
            .iter()
            .filter(|e| {
                e["reason"] == "Scheduled"
                    && e["involvedObject"]["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with("-exec-3"))
            })
            .collect();
        assert_eq!(
            scheduled_exec3.len(),
            1,
            "exec-3 was never scheduled{}",
            context()
        );
        assert!(
            event_time(scheduled_exec3[0]) >= high_finished,
            "exec-3 bound at {} before the high job's driver finished at {high_finished}{}",
            event_time(scheduled_exec3[0]),
            context()
        );
        assert!(
            low_events.iter().any(|e| e["reason"] == "FailedScheduling"
                && e["involvedObject"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-exec-3"))),
            "exec-3 should have waited with FailedScheduling{}",
            context()
        );
        assert!(
            cluster.pod_logs("monthly-batch").contains("-exec-3"),
            "exec-3 ran on the node{}",
            context()
        );
        eprintln!(
            "scenario complete after {:.0} s",
            started.elapsed().as_secs_f64()
        );
    });
}
