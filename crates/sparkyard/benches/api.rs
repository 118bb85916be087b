//! Load benchmark of the emr-containers API: SigV4-signed StartJobRun and DescribeJobRun
//! against a real `sparkyard serve` on 127.0.0.1, with many requests in flight.
//!
//! ```text
//! cargo bench -p sparkyard --bench api
//! SPARKYARD_BENCH_REQUESTS=50000 SPARKYARD_BENCH_SECONDS=30 SPARKYARD_BENCH_CONCURRENCY=64 \
//!     cargo bench -p sparkyard --bench api
//! ```
//!
//! Each operation runs until it has sent `SPARKYARD_BENCH_REQUESTS` requests (default 20000) or
//! `SPARKYARD_BENCH_SECONDS` have passed (default 20), whichever is first, with
//! `SPARKYARD_BENCH_CONCURRENCY` requests in flight (default 64). The server runs on a fresh
//! temporary data directory with its default (durable) settings; the client signs every request
//! with the bootstrap key the server wrote to `<data_dir>/aws/credentials`, as the AWS CLI would.
//! Run without `--bench` (e.g. `cargo test --benches`) it does a short smoke run only.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Settings {
    requests: usize,
    /// Requests per read operation (DescribeJobRun, ListJobRuns).
    reads: usize,
    seconds: f64,
    concurrency: usize,
}

impl Settings {
    fn from_env(smoke: bool) -> Settings {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        }
        if smoke {
            return Settings {
                requests: 200,
                reads: 200,
                seconds: 10.0,
                concurrency: 8,
            };
        }
        let requests = var("SPARKYARD_BENCH_REQUESTS", 20_000);
        Settings {
            requests,
            reads: var("SPARKYARD_BENCH_READS", requests),
            seconds: var("SPARKYARD_BENCH_SECONDS", 20.0),
            concurrency: var("SPARKYARD_BENCH_CONCURRENCY", 64),
        }
    }
}

/// API only by default (`--no-controller --no-cluster`: runs stay PENDING, nothing else
/// competes for the CPU); `SPARKYARD_BENCH_FULL=1` runs the default `sparkyard serve` with the
/// embedded cluster and the controller reconciling every run it accepts.
fn serve_mode_args() -> &'static [&'static str] {
    if std::env::var("SPARKYARD_BENCH_FULL").is_ok_and(|v| v == "1") {
        &[]
    } else {
        &["--no-controller", "--no-cluster"]
    }
}

/// The server under test; killed on drop.
struct Server {
    child: Child,
    port: u16,
    data_dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let log = std::fs::File::create(data_dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(serve_mode_args())
            .env("SPARKYARD_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sparkyard");
        let mut server = Server {
            child,
            port,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("sparkyard exited early ({status}):\n{}", server.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's resident memory (`VmRSS`), in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
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
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    fn from_data_dir(dir: &Path) -> Signer {
        let creds = read_ini(&dir.join("aws/credentials"));
        let profile = creds
            .get("sparkyard")
            .unwrap_or_else(|| panic!("no [sparkyard] profile in aws/credentials: {creds:?}"));
        let config = read_ini(&dir.join("aws/config"));
        let region = config
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
        Signer { identity, region }
    }

    /// Builds a request signed the way botocore signs emr-containers calls.
    fn request(&self, method: &str, url: &str, body: Option<&[u8]>) -> http::Request<Full<Bytes>> {
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
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body.unwrap_or(&[])),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(Bytes::copy_from_slice(body.unwrap_or(&[]))))
            .unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_str(value).unwrap());
        }
        instructions.apply_to_request_http1x(&mut request);
        request
    }
}

/// Sends one request; returns (status, body).
async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

fn start_job_run_body(i: usize) -> Vec<u8> {
    json!({
        "name": format!("bench-{i}"),
        "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
        "releaseLabel": "emr-6.3.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
            "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"}},
        "configurationOverrides": {
            "applicationConfiguration": [{"classification": "spark-defaults", "properties": {
                "spark.dynamicAllocation.enabled": "false",
                "spark.kubernetes.executor.deleteOnTermination": "true"}}],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch", "logStreamNamePrefix": "pi"},
                "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-123456789012-us-east-1/"}}},
        "clientToken": uuid::Uuid::new_v4().to_string(),
    })
    .to_string()
    .into_bytes()
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Outcome {
    fn report(&self, operation: &str) {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let pct = |p: f64| -> f64 {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
            sorted[idx] as f64 / 1000.0
        };
        let ok = sorted.len();
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{operation:<16} {ok:>8} {:>7} {secs:>8.2} {:>9.0} {:>8.2} {:>8.2} {:>8.2}",
            self.errors,
            ok as f64 / secs,
            pct(50.0),
            pct(99.0),
            sorted.last().map_or(f64::NAN, |v| *v as f64 / 1000.0),
        );
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
    }
}

/// Runs `make(i)` requests with `concurrency` in flight until `requests` are sent or the time
/// is up; `on_ok` sees each successful body.
async fn drive<F, G>(client: &HttpClient, settings: &Settings, make: F, on_ok: G) -> Outcome
where
    F: Fn(usize) -> http::Request<Full<Bytes>> + Send + Sync + 'static,
    G: Fn(&Bytes) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let on_ok = Arc::new(on_ok);
    let next = Arc::new(AtomicUsize::new(0));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let deadline = Instant::now() + Duration::from_secs_f64(settings.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.concurrency {
        let (client, make, on_ok, next, outcome) = (
            client.clone(),
            make.clone(),
            on_ok.clone(),
            next.clone(),
            outcome.clone(),
        );
        let requests = settings.requests;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || Instant::now() >= deadline {
                    break;
                }
                let request = make(i);
                let t = Instant::now();
                match send(&client, request).await {
                    Ok((200, body)) => {
                        latencies.push(t.elapsed().as_micros() as u64);
                        on_ok(&body);
                    }
                    Ok((status, body)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            let mut o = outcome.lock().unwrap();
            o.latencies_us.extend(latencies);
            o.errors += errors;
            if o.first_error.is_none() {
                o.first_error = first_error;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let mut o = std::mem::take(&mut *outcome.lock().unwrap());
    o.elapsed = started.elapsed();
    o
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let settings = Settings::from_env(smoke);
    let server = Server::start();
    let signer = Arc::new(Signer::from_data_dir(server.data_dir.path()));
    let base = format!("http://127.0.0.1:{}", server.port);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(settings.concurrency)
            .build(connector);

        // One virtual cluster, as in seed step 5.
        let body = json!({
            "name": "monthly-batch-emr-cluster",
            "containerProvider": {"id": "eks-emr-cluster", "type": "EKS",
                                  "info": {"eksInfo": {"namespace": "monthly-batch"}}},
            "clientToken": uuid::Uuid::new_v4().to_string(),
        })
        .to_string();
        let url = format!("{base}/virtualclusters");
        let (status, body) = send(&client, signer.request("POST", &url, Some(body.as_bytes())))
            .await
            .expect("create-virtual-cluster");
        assert_eq!(status, 200, "CreateVirtualCluster: {}", String::from_utf8_lossy(&body));
        let vc: Value = serde_json::from_slice(&body).unwrap();
        let vc = vc["id"].as_str().expect("virtual cluster id").to_string();

        println!(
            "sparkyard emr-containers API benchmark ({}): {} in flight, up to {} requests or {}s per operation{}",
            if serve_mode_args().is_empty() { "full serve" } else { "API only" },
            settings.concurrency,
            settings.requests,
            settings.seconds,
            if smoke { " (smoke run; pass --bench for the real one)" } else { "" }
        );
        println!(
            "{:<16} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "operation", "ok", "errors", "seconds", "req/s", "p50 ms", "p99 ms", "max ms"
        );

        let rss_start = server.rss_mib();
        let ids = Arc::new(Mutex::new(Vec::<String>::new()));
        let start_url = format!("{base}/virtualclusters/{vc}/jobruns");
        let started = {
            let (signer, ids) = (signer.clone(), ids.clone());
            drive(
                &client,
                &settings,
                move |i| signer.request("POST", &start_url, Some(&start_job_run_body(i))),
                move |body| {
                    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    if let Some(id) = v["id"].as_str() {
                        ids.lock().unwrap().push(id.to_string());
                    }
                },
            )
            .await
        };
        started.report("StartJobRun");
        let rss_after_starts = server.rss_mib();
        let reads = Settings {
            requests: settings.reads,
            seconds: settings.seconds,
            concurrency: settings.concurrency,
            reads: settings.reads,
        };

        let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().unwrap()));
        assert!(!ids.is_empty(), "no job run was started:\n{}", server.log());
        let described = {
            let (signer, ids, base, vc) = (signer.clone(), ids.clone(), base.clone(), vc.clone());
            drive(
                &client,
                &reads,
                move |i| {
                    let id = &ids[(i.wrapping_mul(7919)) % ids.len()];
                    signer.request("GET", &format!("{base}/virtualclusters/{vc}/jobruns/{id}"), None)
                },
                |_| {},
            )
            .await
        };
        described.report("DescribeJobRun");
        // A page of 50, as the console and `aws emr-containers list-job-runs` ask for.
        let listed = {
            let (signer, base, vc) = (signer.clone(), base.clone(), vc.clone());
            let url = format!("{base}/virtualclusters/{vc}/jobruns?maxResults=50");
            drive(
                &client,
                &reads,
                move |_| signer.request("GET", &url, None),
                |_| {},
            )
            .await
        };
        listed.report("ListJobRuns");
        println!(
            "server RSS: {rss_start:.0} MiB at start, {rss_after_starts:.0} MiB after the StartJobRuns, {:.0} MiB after the reads",
            server.rss_mib()
        );
        if started.errors + described.errors + listed.errors > 0 && smoke {
            panic!("errors during the smoke run");
        }
    });
}
