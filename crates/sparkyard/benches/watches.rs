//! Many watches on the embedded cluster's API server (issue 16, load).
//!
//! ```text
//! cargo bench -p sparkyard --bench watches
//! SPARKYARD_BENCH_WATCHES=1000 SPARKYARD_BENCH_OBJECTS=200 cargo bench -p sparkyard --bench watches
//! ```
//!
//! Starts `sparkyard serve --cluster-only` on a fresh data directory, opens
//! `SPARKYARD_BENCH_WATCHES` (default 1,000) kube-rs watches of ConfigMaps in one namespace —
//! each its own HTTPS connection, as 1,000 controllers would have — waits until every one has
//! its initial list, then creates `SPARKYARD_BENCH_OBJECTS` (default 200) ConfigMaps and waits
//! until every watch has seen every one. Prints the time to establish the watches, the
//! fan-out (creations → last delivery), per-watch delivery latency p50/p99, errors, and the
//! server's RSS idle, with the watches open, and after. Without `--bench` it does nothing.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::json;

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    data_dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(data_dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .args(["serve", "--cluster-only", "--listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--cluster-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("SPARKYARD_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sparkyard");
        Server { child, data_dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("cluster/kubeconfig")
    }

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (watches, objects) = (
        var("SPARKYARD_BENCH_WATCHES", 1000),
        var("SPARKYARD_BENCH_OBJECTS", 200),
    );
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async move {
        let started = Instant::now();
        let client = loop {
            if let Ok(kubeconfig) = Kubeconfig::read_from(server.kubeconfig()) {
                let config =
                    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await
                        .unwrap();
                let client = kube::Client::try_from(config).unwrap();
                if client.apiserver_version().await.is_ok() {
                    break client;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no API server");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "w"}})).unwrap(),
            )
            .await
            .unwrap();
        let idle_rss = server.rss_mib();
        println!("sparkyard watch benchmark: {watches} watches of ConfigMaps, {objects} creations");

        // Each watch: its own client (its own connection), counting what it sees.
        let ready = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let established = Instant::now();
        for _ in 0..watches {
            let config = kube::Config::from_custom_kubeconfig(
                Kubeconfig::read_from(server.kubeconfig()).unwrap(),
                &KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            let api: Api<ConfigMap> =
                Api::namespaced(kube::Client::try_from(config).unwrap(), "w");
            let (ready, errors, delivered, seen) =
                (ready.clone(), errors.clone(), delivered.clone(), seen.clone());
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(watcher::Event::InitDone) => {
                            ready.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(watcher::Event::Apply(cm)) => {
                            let now = Instant::now();
                            seen.lock()
                                .unwrap()
                                .push((cm.metadata.name.unwrap_or_default(), now));
                            delivered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        while ready.load(Ordering::SeqCst) < watches {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let establish_s = established.elapsed().as_secs_f64();
        let open_rss = server.rss_mib();

        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
        let mut created_at = HashMap::new();
        let first = Instant::now();
        for i in 0..objects {
            let name = format!("e-{i}");
            let cm = serde_json::from_value(json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}))
                .unwrap();
            configmaps.create(&PostParams::default(), &cm).await.unwrap();
            created_at.insert(name, Instant::now());
        }
        let created_s = first.elapsed().as_secs_f64();
        let want = watches * objects;
        let deadline = Instant::now() + Duration::from_secs(600);
        while delivered.load(Ordering::SeqCst) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fan_out_s = first.elapsed().as_secs_f64();
        let peak_rss = server.rss_mib();
        let mut latencies: Vec<f64> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(name, at)| {
                created_at
                    .get(name)
                    .map(|c| at.saturating_duration_since(*c).as_secs_f64() * 1000.0)
            })
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        println!("  {watches} watches established (initial list done) in {establish_s:.2} s");
        println!(
            "  {objects} ConfigMaps created in {created_s:.2} s; {} of {want} deliveries in {fan_out_s:.2} s ({:.0} events/s)",
            delivered.load(Ordering::SeqCst),
            delivered.load(Ordering::SeqCst) as f64 / fan_out_s
        );
        println!(
            "  delivery after the create's response: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; watch errors {}",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
            errors.load(Ordering::SeqCst)
        );
        println!(
            "  server RSS: {idle_rss:.0} MiB idle, {open_rss:.0} MiB with the watches open, {peak_rss:.0} MiB after the fan-out"
        );
    });
}
