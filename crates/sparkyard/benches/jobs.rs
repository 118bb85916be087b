//! Job-run benchmark: real Spark through `sparkyard serve` and its embedded cluster.
//!
//! ```text
//! cargo bench -p sparkyard --bench jobs
//! SPARKYARD_BENCH_RUNS=20 SPARKYARD_BENCH_RATE=2 SPARKYARD_BENCH_PI_RUNS=3 \
//!     SPARKYARD_BENCH_PART=all cargo bench -p sparkyard --bench jobs
//! ```
//!
//! 1. **StartJobRun → driver pod created.** `SPARKYARD_BENCH_RUNS` runs (default 20) are
//!    started at a steady `SPARKYARD_BENCH_RATE` per second (default 2) with tiny resource
//!    requests. A Kubernetes watch on the namespace (kube-rs) notes when each run's job-runner
//!    pod and its driver pod `spark-<id>-driver` first appear; the latency is measured from the
//!    StartJobRun response. Each run is cancelled as soon as its driver exists, so that at most
//!    a few Spark JVMs compete for the machine: this measures creation, not completion.
//! 2. **Pi end to end.** `SPARKYARD_BENCH_PI_RUNS` times (default 3), alternately: the seed's
//!    pi job (2 executors, small memory) through sparkyard, StartJobRun → `COMPLETED` as
//!    DescribeJobRun reports it; and a raw `spark-submit --deploy-mode cluster` of the same job
//!    to the same embedded cluster, submit → process exit with the driver pod `Succeeded`.
//!
//! 3. **The control plane at 1,000 runs a minute** (`load`, only when asked for): see
//!    [`load`].
//!
//! `SPARKYARD_BENCH_PART` = `create`, `pi`, `all` (default: both) or `load` picks the parts. Everything runs
//! on 127.0.0.1. Without `--bench` (e.g. `cargo test --benches`) it runs nothing: real Spark
//! is too heavy for a smoke run.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::{json, Value};

#[path = "jobs/load.rs"]
mod load;

const NS: &str = "monthly-batch";
const RAW_NS: &str = "raw-spark";
const ROLE: &str = "monthly-batch-JobExecutionRole";
const PI: &str = "local:///usr/lib/spark/examples/src/main/python/pi.py";
/// Part 1: the smallest requests Spark accepts, so many drivers fit the node.
const TINY: &str = "--conf spark.executor.instances=1 --conf spark.executor.memory=512m --conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.driver.memory=512m --conf spark.kubernetes.driver.request.cores=100m --conf spark.kubernetes.executor.request.cores=100m";
/// Part 2: the seed's pi-4 parameters (2 executors) with small memory and CPU requests.
const PI_CONFS: &[(&str, &str)] = &[
    ("spark.executor.instances", "2"),
    ("spark.executor.memory", "512m"),
    ("spark.executor.cores", "1"),
    ("spark.driver.cores", "1"),
    ("spark.driver.memory", "512m"),
    ("spark.kubernetes.executor.request.cores", "250m"),
    ("spark.kubernetes.driver.request.cores", "250m"),
    ("spark.dynamicAllocation.enabled", "false"),
    ("spark.kubernetes.executor.deleteOnTermination", "true"),
];

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `<repo>/.venv/bin/<tool>` (made by `scripts/setup.sh`), else the bare name.
fn venv_tool(tool: &str) -> PathBuf {
    let candidate = repo_root().join(".venv/bin").join(tool);
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from(tool)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sparkyard serve` with its embedded cluster, on private ports and loopback addresses;
/// killed on drop.
struct Server {
    child: Child,
    port: u16,
    cluster_port: u16,
    data_dir: tempfile::TempDir,
}

impl Server {
    /// `extra_config` is appended to the generated `sparkyard.toml`.
    fn start(extra_config: &str) -> Server {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let octet = std::process::id() % 200 + 30;
        let config = data_dir.path().join("sparkyard.toml");
        std::fs::write(
            &config,
            format!("[cluster]\npod-cidr = \"127.{octet}.0.0/16\"\n{extra_config}"),
        )
        .unwrap();
        let (port, cluster_port) = (free_port(), free_port());
        let log = std::fs::File::create(data_dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--config")
            .arg(&config)
            .arg("--cluster-listen")
            .arg(format!("127.0.0.1:{cluster_port}"))
            .arg("--cluster-service-address")
            .arg(format!("127.14.{octet}.1:443"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sparkyard");
        let mut server = Server {
            child,
            port,
            cluster_port,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("sparkyard exited early ({status}):\n{}", server.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && server.kubeconfig().exists()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sparkyard did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("cluster/kubeconfig")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// The real `aws` CLI with the profile sparkyard wrote (setup only, never timed).
    fn aws(&self, args: &[&str]) -> std::process::Output {
        let aws = self.data_dir.path().join("aws");
        let mut cmd = Command::new(venv_tool("aws"));
        for v in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        ] {
            cmd.env_remove(v);
        }
        cmd.args(args)
            .env("AWS_CONFIG_FILE", aws.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
            .env("AWS_PROFILE", "sparkyard")
            .env("AWS_PAGER", "")
            .output()
            .expect("run aws CLI")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `[section]` → key → value from an INI file such as `~/.aws/credentials`.
fn read_ini(path: &Path) -> HashMap<String, HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            if !line.starts_with('#') && !line.starts_with(';') {
                out.entry(section.clone())
                    .or_default()
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    out
}

/// SigV4-signed emr-containers calls with the bootstrap key, over plain HTTP on loopback.
struct Emr {
    identity: Identity,
    region: String,
    base: String,
    http: reqwest::Client,
}

impl Emr {
    fn new(server: &Server) -> Emr {
        let dir = server.data_dir.path();
        let creds = read_ini(&dir.join("aws/credentials"));
        let profile = &creds["sparkyard"];
        let region = read_ini(&dir.join("aws/config"))
            .get("profile sparkyard")
            .and_then(|p| p.get("region"))
            .cloned()
            .unwrap_or_else(|| "us-east-1".to_string());
        let identity = Credentials::new(
            &profile["aws_access_key_id"],
            &profile["aws_secret_access_key"],
            profile.get("aws_session_token").cloned(),
            None,
            "sparkyard-bench",
        )
        .into();
        Emr {
            identity,
            region,
            base: format!("http://127.0.0.1:{}", server.port),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// Sends one signed call; returns the JSON body of a 200, else an error with the body.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string().into_bytes());
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("emr-containers")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let content_type = [("content-type", "application/json")];
        let headers: &[(&str, &str)] = if body.is_some() { &content_type } else { &[] };
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_deref().unwrap_or(&[])),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(body.unwrap_or_default())
            .unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_static(value));
        }
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| e.to_string())?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    async fn start_job_run(
        &self,
        vc: &str,
        role_arn: &str,
        name: &str,
        params: &str,
    ) -> Result<String, String> {
        self.start_job_run_with(
            vc,
            role_arn,
            name,
            params,
            json!({"applicationConfiguration": []}),
        )
        .await
    }

    /// StartJobRun with `overrides` (configurationOverrides) and the bench's spark-defaults.
    async fn start_job_run_with(
        &self,
        vc: &str,
        role_arn: &str,
        name: &str,
        params: &str,
        mut overrides: Value,
    ) -> Result<String, String> {
        let properties: serde_json::Map<String, Value> = PI_CONFS
            .iter()
            .filter(|(k, _)| {
                k.starts_with("spark.dynamicAllocation") || k.contains("OnTermination")
            })
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        overrides["applicationConfiguration"]
            .as_array_mut()
            .expect("applicationConfiguration is a list")
            .push(json!({"classification": "spark-defaults", "properties": properties}));
        let body = json!({
            "name": name,
            "executionRoleArn": role_arn,
            "releaseLabel": "emr-6.3.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": PI, "sparkSubmitParameters": params}},
            "configurationOverrides": overrides,
            "clientToken": uuid::Uuid::new_v4().to_string(),
        });
        let out = self
            .call(
                "POST",
                &format!("/virtualclusters/{vc}/jobruns"),
                Some(body),
            )
            .await?;
        out["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no id in {out}"))
    }

    async fn state(&self, vc: &str, id: &str) -> Result<String, String> {
        let out = self
            .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
            .await?;
        Ok(out["jobRun"]["state"].as_str().unwrap_or("?").to_string())
    }
}

/// When each pod (`namespace/name`) was first seen on the watch, and first seen bound.
type Seen = Arc<Mutex<HashMap<String, PodTimes>>>;

#[derive(Clone, Copy)]
struct PodTimes {
    created: Instant,
    bound: Option<Instant>,
}

/// Watches the pods of `ns` and records the first time each name appears and the first time
/// it appears with a node (`spec.nodeName`).
fn watch_pods(client: kube::Client, ns: &str, seen: Seen) {
    let api: Api<Pod> = Api::namespaced(client, ns);
    let ns = ns.to_string();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let now = Instant::now();
            if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
                if let Some(name) = pod.metadata.name {
                    let mut seen = seen.lock().unwrap();
                    let times = seen.entry(format!("{ns}/{name}")).or_insert(PodTimes {
                        created: now,
                        bound: None,
                    });
                    if bound && times.bound.is_none() {
                        times.bound = Some(now);
                    }
                }
            }
        }
    });
}

/// The first seen pod of `ns` whose name satisfies `matches`.
fn first_seen(seen: &Seen, ns: &str, matches: impl Fn(&str) -> bool) -> Option<Instant> {
    let prefix = format!("{ns}/");
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.strip_prefix(&prefix).is_some_and(&matches))
        .map(|(_, t)| t.created)
        .min()
}

/// When the pod `ns/name` was first seen bound to a node.
fn first_bound(seen: &Seen, ns: &str, name: &str) -> Option<Instant> {
    seen.lock().unwrap().get(&format!("{ns}/{name}"))?.bound
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// Prints n, p50, p99, min and max of `values` (seconds), shown in `unit` ("s" or "ms").
fn summary(label: &str, values: &[f64], unit: &str) {
    let scale = if unit == "ms" { 1000.0 } else { 1.0 };
    let mut sorted: Vec<f64> = values.iter().map(|v| v * scale).collect();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  {label:<27} n={:<3} p50 {:>7.2} {unit:<2}  p99 {:>7.2} {unit:<2}  min {:>7.2} {unit:<2}  max {:>7.2} {unit}",
        sorted.len(),
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 50.0)
}

struct Bench {
    server: Server,
    emr: Arc<Emr>,
    kube: kube::Client,
    vc: String,
    role_arn: String,
    seen: Seen,
}

impl Bench {
    async fn setup(extra_config: &str) -> Bench {
        let server = Server::start(extra_config);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(server.kubeconfig()).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        let kube = kube::Client::try_from(config).unwrap();

        // Walkthrough steps 5 and 7: the namespace, the execution role, the virtual cluster.
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
        for ns in [NS, RAW_NS] {
            let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
            namespaces
                .create(&PostParams::default(), &namespace)
                .await
                .expect("create namespace");
        }
        let trust = server.data_dir.path().join("trust.json");
        std::fs::write(
            &trust,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "elasticmapreduce.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .unwrap();
        let out = server.aws(&[
            "iam",
            "create-role",
            "--role-name",
            ROLE,
            "--assume-role-policy-document",
            &format!("file://{}", trust.display()),
            "--query",
            "Role.Arn",
            "--output",
            "text",
        ]);
        assert!(
            out.status.success(),
            "aws iam create-role: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let role_arn = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let emr = Arc::new(Emr::new(&server));
        let vc = emr
            .call(
                "POST",
                "/virtualclusters",
                Some(json!({
                    "name": format!("{NS}-emr-cluster"),
                    "containerProvider": {"id": "eks-emr-cluster", "type": "EKS",
                                          "info": {"eksInfo": {"namespace": NS}}},
                    "clientToken": uuid::Uuid::new_v4().to_string(),
                })),
            )
            .await
            .expect("create virtual cluster")["id"]
            .as_str()
            .unwrap()
            .to_string();

        let seen: Seen = Arc::default();
        watch_pods(kube.clone(), NS, seen.clone());
        watch_pods(kube.clone(), RAW_NS, seen.clone());
        Bench {
            server,
            emr,
            kube,
            vc,
            role_arn,
            seen,
        }
    }

    /// Waits until every pod left in `ns` has finished (bounded), so one part's pods do not
    /// load the next.
    async fn drain(&self, ns: &str, limit: Duration) {
        let api: Api<Pod> = Api::namespaced(self.kube.clone(), ns);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match api.list(&Default::default()).await {
                Ok(list)
                    if list.items.iter().all(|pod| {
                        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                        matches!(phase, Some("Succeeded" | "Failed"))
                    }) =>
                {
                    return
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        println!("  (pods still running in {ns} after {limit:?}; going on)");
    }

    /// Part 1: StartJobRun response → driver pod first seen and first seen bound, at a steady
    /// rate.
    async fn creation(&self, runs: usize, rate: f64) {
        println!(
            "\n== StartJobRun -> driver pod created: {runs} runs at {rate}/s, each cancelled once its driver exists"
        );
        println!(
            "{:>4} {:>14} {:>17} {:>17} {:>17}",
            "run", "StartJobRun ms", "-> runner pod s", "-> driver pod s", "-> bound s"
        );
        let begin = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..runs {
            let at = begin + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            let (emr, vc, role, seen) = (
                self.emr.clone(),
                self.vc.clone(),
                self.role_arn.clone(),
                self.seen.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let id = emr
                    .start_job_run(&vc, &role, &format!("create-{i}"), TINY)
                    .await?;
                let answered = Instant::now();
                let driver = format!("spark-{id}-driver");
                let deadline = answered + Duration::from_secs(900);
                let driver_at = loop {
                    if let Some(t) = first_seen(&seen, NS, |n| n == driver) {
                        break t;
                    }
                    if Instant::now() > deadline {
                        return Err(format!("run {id}: no driver pod in 900 s"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                // Cancelling deletes the driver; wait for its binding first (it follows
                // creation by milliseconds when a node has room).
                let bound_at = loop {
                    if let Some(t) = first_bound(&seen, NS, &driver) {
                        break Some(t);
                    }
                    if Instant::now() > deadline {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                // The runner Job's pod is named `<id>-<suffix>`.
                let runner_at = first_seen(&seen, NS, |n| n.starts_with(&format!("{id}-")));
                let _ = emr
                    .call(
                        "DELETE",
                        &format!("/virtualclusters/{vc}/jobruns/{id}"),
                        None,
                    )
                    .await;
                let api_ms = (answered - sent).as_secs_f64() * 1000.0;
                let runner_s =
                    runner_at.map(|t| t.saturating_duration_since(answered).as_secs_f64());
                let driver_s = driver_at.saturating_duration_since(answered).as_secs_f64();
                let bound_s = bound_at.map(|t| t.saturating_duration_since(answered).as_secs_f64());
                let shown = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}"));
                println!(
                    "{i:>4} {api_ms:>14.1} {:>17} {driver_s:>17.2} {:>17}",
                    shown(runner_s),
                    shown(bound_s)
                );
                Ok::<_, String>((api_ms, runner_s, driver_s, bound_s))
            }));
        }
        let (mut api, mut runner, mut driver, mut bound, mut errors) =
            (vec![], vec![], vec![], vec![], vec![]);
        for t in tasks {
            match t.await.expect("run task") {
                Ok((a, r, d, b)) => {
                    api.push(a / 1000.0);
                    runner.extend(r);
                    driver.push(d);
                    bound.extend(b);
                }
                Err(e) => errors.push(e),
            }
        }
        println!(
            "  submitted over {:.1} s; {} measured, {} errors",
            (runs.saturating_sub(1)) as f64 / rate,
            driver.len(),
            errors.len()
        );
        for e in errors.iter().take(3) {
            println!("  error: {e}");
        }
        summary("StartJobRun call", &api, "ms");
        summary("StartJobRun -> runner pod", &runner, "s");
        summary("StartJobRun -> driver pod", &driver, "s");
        summary("StartJobRun -> driver bound", &bound, "s");
        self.drain(NS, Duration::from_secs(180)).await;
    }

    /// One pi run through sparkyard: StartJobRun → COMPLETED; returns (total, runner pod,
    /// driver pod, state) in seconds from the request.
    async fn pi_sparkyard(&self, k: usize) -> (f64, Option<f64>, Option<f64>, String) {
        let params: Vec<String> = PI_CONFS
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("spark.dynamicAllocation") && !k.contains("OnTermination")
            })
            .map(|(k, v)| format!("--conf {k}={v}"))
            .collect();
        let sent = Instant::now();
        let id = self
            .emr
            .start_job_run(
                &self.vc,
                &self.role_arn,
                &format!("pi-{k}"),
                &params.join(" "),
            )
            .await
            .expect("StartJobRun");
        let deadline = sent + Duration::from_secs(600);
        let state = loop {
            let state = self.emr.state(&self.vc, &id).await.expect("DescribeJobRun");
            if matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED")
                || Instant::now() > deadline
            {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let total = sent.elapsed().as_secs_f64();
        let since = |t: Instant| t.saturating_duration_since(sent).as_secs_f64();
        let runner = first_seen(&self.seen, NS, |n| n.starts_with(&format!("{id}-"))).map(since);
        let driver = first_seen(&self.seen, NS, |n| n == format!("spark-{id}-driver")).map(since);
        (total, runner, driver, state)
    }

    /// The same job as a raw `spark-submit --deploy-mode cluster` (it waits for the app);
    /// returns (total, driver pod, driver phase).
    async fn pi_raw(&self, k: usize) -> (f64, Option<f64>, String) {
        let driver = format!("raw-pi-{k}-driver");
        let mut cmd = tokio::process::Command::new(venv_tool("spark-submit"));
        cmd.args([
            "--master",
            &format!("k8s://https://127.0.0.1:{}", self.server.cluster_port),
            "--deploy-mode",
            "cluster",
            "--name",
            &format!("raw-pi-{k}"),
            "--conf",
            "spark.kubernetes.container.image=apache/spark:4.0.1",
            "--conf",
            "spark.kubernetes.authenticate.driver.serviceAccountName=spark",
            "--conf",
            &format!("spark.kubernetes.namespace={RAW_NS}"),
            "--conf",
            &format!("spark.kubernetes.driver.pod.name={driver}"),
        ]);
        for (key, value) in PI_CONFS {
            cmd.args(["--conf", &format!("{key}={value}")]);
        }
        let venv_bin = repo_root().join(".venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.arg(PI)
            .env("KUBECONFIG", self.server.kubeconfig())
            .env("PATH", path)
            .env_remove("SPARK_HOME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let sent = Instant::now();
        let out = cmd.output().await.expect("run spark-submit");
        let total = sent.elapsed().as_secs_f64();
        let api: Api<Pod> = Api::namespaced(self.kube.clone(), RAW_NS);
        let phase = match api.get(&driver).await {
            Ok(pod) => pod.status.and_then(|s| s.phase).unwrap_or_default(),
            Err(e) => format!("no driver ({e})"),
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(15).collect();
            println!(
                "  spark-submit exited {}:\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let at = first_seen(&self.seen, RAW_NS, |n| n == driver)
            .map(|t| t.saturating_duration_since(sent).as_secs_f64());
        (total, at, phase)
    }

    /// What Spark needs in a plain namespace: the `spark` service account and its Role.
    async fn prepare_raw_namespace(&self) {
        let manifest = format!(
            r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: spark, namespace: {RAW_NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: spark-driver, namespace: {RAW_NS}}}
rules:
- apiGroups: [""]
  resources: ["pods", "services", "configmaps", "persistentvolumeclaims"]
  verbs: ["create", "get", "list", "watch", "update", "patch", "delete", "deletecollection"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: spark-driver, namespace: {RAW_NS}}}
subjects: [{{kind: ServiceAccount, name: spark, namespace: {RAW_NS}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: spark-driver}}
"#
        );
        let path = self.server.data_dir.path().join("raw-spark.yaml");
        std::fs::write(&path, manifest).unwrap();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .args(["apply", "-f"])
            .arg(&path)
            .env_remove("KUBECONFIG")
            .output()
            .or_else(|_| {
                Command::new(venv_tool("kubectl"))
                    .arg("--kubeconfig")
                    .arg(self.server.kubeconfig())
                    .args(["apply", "-f"])
                    .arg(&path)
                    .output()
            })
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Part 2: pi end to end, sparkyard and raw spark-submit alternately.
    async fn pi(&self, runs: usize) {
        self.prepare_raw_namespace().await;
        println!("\n== pi end to end (2 executors, 512m): sparkyard StartJobRun -> COMPLETED vs raw spark-submit -> driver Succeeded");
        println!(
            "{:>4} {:<10} {:>9} {:>12} {:>12}  outcome",
            "run", "path", "total s", "runner pod s", "driver pod s"
        );
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.2}"));
        let (mut yard, mut raw) = (vec![], vec![]);
        let (mut yard_driver, mut raw_driver) = (vec![], vec![]);
        for k in 0..runs {
            let (total, runner, driver, state) = self.pi_sparkyard(k).await;
            println!(
                "{k:>4} {:<10} {total:>9.2} {:>12} {:>12}  {state}",
                "sparkyard",
                fmt(runner),
                fmt(driver)
            );
            if state == "COMPLETED" {
                yard.push(total);
                yard_driver.extend(driver);
            }
            self.drain(NS, Duration::from_secs(60)).await;
            let (total, driver, phase) = self.pi_raw(k).await;
            println!(
                "{k:>4} {:<10} {total:>9.2} {:>12} {:>12}  driver {phase}",
                "raw",
                "-",
                fmt(driver)
            );
            if phase == "Succeeded" {
                raw.push(total);
                raw_driver.extend(driver);
            }
        }
        println!(
            "  median total: sparkyard {:.2} s ({} ok), raw spark-submit {:.2} s ({} ok), difference {:.2} s",
            median(&yard),
            yard.len(),
            median(&raw),
            raw.len(),
            median(&yard) - median(&raw)
        );
        println!(
            "  median to driver pod: sparkyard {:.2} s, raw {:.2} s",
            median(&yard_driver),
            median(&raw_driver)
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` (and clippy --all-targets builds): no Spark here.
        println!(
            "jobs bench: skipped (runs real Spark; use `cargo bench -p sparkyard --bench jobs`)"
        );
        return;
    }
    let part: String = var("SPARKYARD_BENCH_PART", "all".to_string());
    let runs: usize = var("SPARKYARD_BENCH_RUNS", 20);
    let rate: f64 = var("SPARKYARD_BENCH_RATE", 2.0);
    let pi_runs: usize = var("SPARKYARD_BENCH_PI_RUNS", 3);
    let load_rate: f64 = var("SPARKYARD_BENCH_LOAD_RATE", 1000.0);
    let load_minutes: f64 = var("SPARKYARD_BENCH_LOAD_MINUTES", 10.0);
    let sim_nodes: usize = var("SPARKYARD_BENCH_SIM_NODES", 50);
    let driver_seconds: u64 = var("SPARKYARD_BENCH_DRIVER_SECONDS", 5);
    let extra_config = if part == "load" {
        load::server_config(sim_nodes, 30)
    } else {
        String::new()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = Bench::setup(&extra_config).await;
        if let Ok(out) = Command::new("uptime").output() {
            print!("load at start: {}", String::from_utf8_lossy(&out.stdout));
        }
        if part == "all" || part == "create" {
            bench.creation(runs, rate).await;
        }
        if part == "all" || part == "pi" {
            bench.pi(pi_runs).await;
        }
        if part == "load" {
            bench.load(load_rate, load_minutes, driver_seconds).await;
        }
        if let Ok(out) = Command::new("uptime").output() {
            print!("load at end: {}", String::from_utf8_lossy(&out.stdout));
        }
    });
}
