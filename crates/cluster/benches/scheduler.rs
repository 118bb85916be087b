//! Scheduling throughput of the live cluster, end to end through the API: the embedded
//! cluster runs in process with 5,000 simulated m5.2xlarge nodes; 50,000 pods are created
//! through the HTTPS API (kube-rs, 64 requests in flight, 127.0.0.1 only) and a watch on
//! the same API sees each one get its `spec.nodeName`.
//!
//! - **wave 1** (no preemption): 50,000 pods of 750m / 1Gi, priority 0 — exactly ten per
//!   node, so the cluster ends full (kube-scheduler CI's `SchedulingBasic` shape);
//! - **wave 2** (preemption): 10,000 pods of the same size with a priority class of 1000:
//!   none fits, each evicts one wave-1 pod (graceful deletion, which a simulated node
//!   completes at once) and binds to the node it was nominated to.
//!
//! Reported: pods/s from the first creation request to the last bind seen on the watch,
//! and the creation→bind latency (request sent → `spec.nodeName` observed) p50 / p99.
//!
//! `cargo bench -p sparkyard-cluster --bench scheduler [-- nodes pods preemptors]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use sparkyard_cluster::scheduling::NodeConfig;
use sparkyard_cluster::ClusterConfig;

/// The allocator the `sparkyard` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 64;

fn pod(name: &str, class: Option<&str>) -> Pod {
    let mut spec = json!({
        "containers": [{"name": "main", "image": "busybox:1.36",
                        "resources": {"requests": {"cpu": "750m", "memory": "1Gi"}}}],
        "terminationGracePeriodSeconds": 30,
    });
    if let Some(c) = class {
        spec["priorityClassName"] = json!(c);
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "1"}}, "spec": spec}),
    )
    .unwrap()
}

/// When each pod was first seen bound, by name.
type Bound = Arc<Mutex<HashMap<String, Instant>>>;

/// Watches pods from `version` and records the first time each is seen with a node.
fn spawn_watcher(api: Api<Pod>, version: String, bound: Bound) {
    tokio::spawn(async move {
        let mut version = version;
        loop {
            let params = WatchParams::default().timeout(290);
            let mut stream = match api.watch(&params, &version).await {
                Ok(s) => s.boxed(),
                Err(e) => panic!("watch failed: {e}"),
            };
            while let Some(event) = stream.try_next().await.unwrap_or(None) {
                let p = match event {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                    WatchEvent::Deleted(p) => {
                        version = p.metadata.resource_version.unwrap_or(version);
                        continue;
                    }
                    WatchEvent::Bookmark(b) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    WatchEvent::Error(e) => panic!("watch error: {e:?}"),
                };
                if let Some(rv) = &p.metadata.resource_version {
                    version = rv.clone();
                }
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    let name = p.metadata.name.unwrap_or_default();
                    bound
                        .lock()
                        .unwrap()
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        }
    });
}

struct Wave {
    pods: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    create_errors: usize,
}

async fn wave(api: &Api<Pod>, bound: &Bound, prefix: &str, n: usize, class: Option<&str>) -> Wave {
    let started = Instant::now();
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let errors = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let sent = sent.clone();
            let class = class.map(str::to_string);
            let name = format!("{prefix}-{i:06}");
            async move {
                let at = Instant::now();
                let result = api
                    .create(&PostParams::default(), &pod(&name, class.as_deref()))
                    .await;
                sent.lock().unwrap().push((name, at));
                result.is_err() as usize
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0, |acc, e| async move { acc + e })
        .await;
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = {
            let b = bound.lock().unwrap();
            sent.lock()
                .unwrap()
                .iter()
                .filter(|(name, _)| b.contains_key(name))
                .count()
        };
        if done + errors >= n {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("  timed out: {done}/{n} bound");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = bound.lock().unwrap();
    let sent = sent.lock().unwrap();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(name, at)| b.get(name).map(|t| t.saturating_duration_since(*at)))
        .collect();
    let last_bind = sent
        .iter()
        .filter_map(|(name, _)| b.get(name))
        .max()
        .copied();
    latencies.sort();
    let q = |f: f64| {
        latencies
            .get(((latencies.len() as f64 * f) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    eprintln!("  created in {:.1} s", created.as_secs_f64());
    Wave {
        pods: latencies.len(),
        elapsed: last_bind.map_or(started.elapsed(), |t| t - started),
        p50: q(0.50),
        p99: q(0.99),
        create_errors: errors,
    }
}

fn report(label: &str, w: &Wave) {
    println!(
        "{label}: {} pods bound in {:.1} s = {:.0} pods/s; creation→bind p50 {:.0} ms, p99 {:.0} ms{}",
        w.pods,
        w.elapsed.as_secs_f64(),
        w.pods as f64 / w.elapsed.as_secs_f64(),
        w.p50.as_secs_f64() * 1e3,
        w.p99.as_secs_f64() * 1e3,
        if w.create_errors > 0 {
            format!(" ({} creations failed)", w.create_errors)
        } else {
            String::new()
        }
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(5_000);
    let pods = args.get(1).copied().unwrap_or(50_000);
    let preemptors = args.get(2).copied().unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(nodes, pods, preemptors));
}

async fn run(nodes: usize, pods: usize, preemptors: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let n = std::process::id();
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.10.{}.{}:0", n % 250 + 1, (n >> 8) % 250 + 2)
            .parse()
            .unwrap(),
        nodes: (0..nodes)
            .map(|i| NodeConfig {
                name: format!("sim-{i:05}"),
                simulated: true,
                ..NodeConfig::default()
            })
            .collect(),
        ..ClusterConfig::default()
    };
    let setup = Instant::now();
    let cluster = sparkyard_cluster::start(config, dir.path()).await.unwrap();
    let kube_config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&cluster.kubeconfig_path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(kube_config).unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let version = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap_or_default();
    let bound: Bound = Arc::new(Mutex::new(HashMap::new()));
    if std::env::var_os("SCHED_BENCH_REGISTRY_WATCH").is_some() {
        // Diagnostics: observe binds in process instead of through the API.
        let in_process = cluster.client();
        let bound = bound.clone();
        let mut stream = Box::pin(
            in_process
                .watch(
                    sparkyard_cluster::Resource::new("", "pods"),
                    Some(version.parse().unwrap()),
                )
                .unwrap(),
        );
        tokio::spawn(async move {
            while let Some(e) = stream.next().await {
                if e.object["spec"]["nodeName"].is_string() {
                    let name = e.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    bound
                        .lock()
                        .unwrap()
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        });
    } else {
        spawn_watcher(api.clone(), version, bound.clone());
    }
    eprintln!(
        "{nodes} simulated nodes up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    eprintln!("wave 1: {pods} pods, no preemption");
    let w1 = wave(&api, &bound, "low", pods, None).await;
    report("wave 1 (no preemption)", &w1);

    let classes: Api<PriorityClass> = Api::all(client.clone());
    let class: PriorityClass = serde_json::from_value(
        json!({"metadata": {"name": "bench-high"}, "value": 1000, "description": "bench"}),
    )
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    eprintln!("wave 2: {preemptors} pods of priority 1000 into the full cluster");
    let w2 = wave(&api, &bound, "high", preemptors, Some("bench-high")).await;
    report("wave 2 (each preempts one pod)", &w2);
}
