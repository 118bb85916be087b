//! Karpenter on the live cluster: 1,000 pending pods of mixed shapes onto simulated
//! capacity, end to end through the API server's `Client`.
//!
//! The embedded cluster runs in process (persistence off, a temporary data directory) with
//! one tiny simulated base node (100m / 256Mi: no bench pod fits), the embedded EC2 (1 s
//! boots) and Karpenter (`sparkyard_karpenter::start`, default batching: 1 s idle, 10 s
//! max). One v1 NodePool (`sparkyard.dev/simulated: "true"`, spot and on-demand, categories
//! c/m/r, `consolidationPolicy: WhenEmpty`, `consolidateAfter: 10s`, default budget) and
//! its EC2NodeClass are created through the `Client`; then 1,000 pods — the pure
//! provisioning bench's generator (SplitMix64, seed 42: 250m–4 CPU × 512Mi–16Gi; 3 % demand
//! on-demand, 5 % pin us-east-2b, 5 % demand the r family, 10 % tolerate a taint).
//! In-process watches on pods, NodeClaims and nodes timestamp every transition.
//!
//! Reported:
//! - **(a) batch → NodeClaims**: per provisioning pass, from Karpenter's own log
//!   (`<data_dir>/pods/karpenter_*/logs/controller/0.log`): when the batch closed (the
//!   "found provisionable pod(s)" line's time minus its `duration`), relative to the last
//!   pod marked `Unschedulable`, and how long until its last "created nodeclaim" line;
//! - **(b) nodes and cost**: Karpenter nodes launched, their hourly price (catalog
//!   `price(zone, capacity type)` from each node's labels) against the fractional lower
//!   bound of `crates/provisioning/benches/provisioning.rs` (any amount of any type at its
//!   cheapest offering covering total CPU and memory against allocatable; computed over the
//!   whole catalog as there, and over the pool's c/m/r types only — both valid bounds) and
//!   against the pure planner (`sparkyard_provisioning::schedule`) on the same pods;
//! - **(c)** first pod creation → all 1,000 bound;
//! - **(d) empty-node removal**: every pod is deleted; per Karpenter node, (Node deleted −
//!   its last pod's DELETE returned, when Karpenter's emptiness clock starts) −
//!   `consolidateAfter`, min / median / max; and the same from the last pod gone.
//!
//! `cargo bench -p sparkyard-cluster --bench karpenter [-- pods consolidate_after_secs
//! spread_ms]`: `spread_ms` (default 0) creates the pods in 20 equal groups over that
//! long, as a Spark application's executor requests arrive. `KARPENTER_BENCH_LOG=<file>`
//! keeps a copy of Karpenter's log; `KARPENTER_BENCH_BUDGET=100%` sets the pool's
//! disruption budget (default: none given, so Karpenter's `nodes: 10%`). Without `--bench`
//! (`cargo test --benches`) it is a smoke run of 50 pods.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_cluster::scheduling::node::CapacityType;
use sparkyard_cluster::scheduling::{NodeConfig, PodRequirements};
use sparkyard_cluster::{Client, ClusterConfig, EventType, Propagation, Resource};
use sparkyard_provisioning::{InstanceOption, NodePoolSpec, ScheduleInput};

/// The allocator the `sparkyard` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");
const NODECLAIMS: Resource = Resource::new("karpenter.sh", "nodeclaims");
const NODEPOOLS: Resource = Resource::new("karpenter.sh", "nodepools");
const EC2NODECLASSES: Resource = Resource::new("karpenter.k8s.aws", "ec2nodeclasses");
const REGION: &str = "us-east-2";
const NAMESPACE: &str = "default";
const BASE_NODE: &str = "base";
const BOOT_DELAY: Duration = Duration::from_secs(1);

/// A deterministic generator (SplitMix64), so every run sees the same pods.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// The pods of `crates/provisioning/benches/provisioning.rs`, as Pod objects.
fn pods(n: usize) -> Vec<Value> {
    let mut rng = Rng(42);
    let cpus = ["250m", "500m", "1", "2", "4"];
    let mems = ["512Mi", "1Gi", "2Gi", "4Gi", "8Gi", "16Gi"];
    (0..n)
        .map(|i| {
            let mut spec = json!({"containers": [{"name": "main", "image": "busybox:1.36",
                "resources": {"requests": {"cpu": rng.pick(&cpus), "memory": rng.pick(&mems)}}}]});
            match rng.next() % 100 {
                0..=2 => spec["nodeSelector"] = json!({"karpenter.sh/capacity-type": "on-demand"}),
                3..=7 => {
                    spec["nodeSelector"] = json!({"topology.kubernetes.io/zone": "us-east-2b"})
                }
                8..=12 => {
                    spec["nodeSelector"] = json!({"karpenter.k8s.aws/instance-category": "r"})
                }
                13..=22 => spec["tolerations"] = json!([{"key": "spark", "operator": "Exists"}]),
                _ => {}
            }
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("exec-{i:04}"), "namespace": NAMESPACE,
                    "labels": {"bench": "karpenter"}},
                "spec": spec})
        })
        .collect()
}

fn nodepool(consolidate_after: u64) -> Value {
    let mut pool = json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "bench", "annotations": {"sparkyard.dev/simulated": "true"}},
        "spec": {
            "template": {"spec": {
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                    {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]}],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "bench"},
                "expireAfter": "Never"}},
            "disruption": {"consolidationPolicy": "WhenEmpty",
                "consolidateAfter": format!("{consolidate_after}s")}}});
    if let Ok(nodes) = std::env::var("KARPENTER_BENCH_BUDGET") {
        pool["spec"]["disruption"]["budgets"] = json!([{ "nodes": nodes }]);
    }
    pool
}

fn nodeclass() -> Value {
    json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "bench"},
        "spec": {"amiSelectorTerms": [{"alias": "al2023@latest"}],
            "role": "KarpenterNodeRole-bench",
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "bench"}}]}})
}

/// What the watches saw, by name.
#[derive(Default, Clone)]
struct Seen {
    unschedulable: HashMap<String, Instant>,
    bound: HashMap<String, (Instant, String)>,
    pod_gone: HashMap<String, Instant>,
    claims_added: Vec<(String, Instant)>,
    node_added: HashMap<String, Instant>,
    node_labels: HashMap<String, Value>,
    node_gone: HashMap<String, Instant>,
    /// A watch ended (fell behind) and was reopened: some events may be missing.
    reopened: usize,
}

type Shared = Arc<Mutex<Seen>>;

fn record(seen: &Shared, resource: Resource, kind: EventType, object: &Value) {
    let now = Instant::now();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut s = seen.lock().unwrap();
    if resource == PODS {
        if object["metadata"]["namespace"] != NAMESPACE {
            return;
        }
        if kind == EventType::Deleted {
            s.pod_gone.entry(name).or_insert(now);
            return;
        }
        if let Some(node) = object["spec"]["nodeName"].as_str() {
            s.bound
                .entry(name.clone())
                .or_insert_with(|| (now, node.to_string()));
        }
        if sparkyard_provisioning::is_provisionable(object) {
            s.unschedulable.entry(name).or_insert(now);
        }
    } else if resource == NODECLAIMS {
        if kind == EventType::Added {
            s.claims_added.push((name, now));
        }
    } else if resource == NODES {
        match kind {
            EventType::Deleted => {
                s.node_gone.entry(name).or_insert(now);
            }
            _ => {
                s.node_added.entry(name.clone()).or_insert(now);
                s.node_labels
                    .insert(name, object["metadata"]["labels"].clone());
            }
        }
    }
}

fn spawn_watch(client: Client, resource: Resource, from: u64, seen: Shared) {
    tokio::spawn(async move {
        let mut from = Some(from);
        loop {
            let mut stream = Box::pin(client.watch(resource, from).expect("watch"));
            while let Some(e) = stream.next().await {
                record(&seen, resource, e.event_type, &e.object);
            }
            seen.lock().unwrap().reopened += 1;
            from = Some(client.revision());
        }
    });
}

/// One provisioning pass, from Karpenter's log.
struct Pass {
    closed: DateTime<Utc>,
    pods: usize,
    claims: usize,
    last_claim: Option<DateTime<Utc>>,
}

fn karpenter_passes(data_dir: &Path) -> Vec<Pass> {
    let mut passes: Vec<Pass> = Vec::new();
    let Some(dir) = std::fs::read_dir(data_dir.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("karpenter_"))
    else {
        return passes;
    };
    let text =
        std::fs::read_to_string(dir.path().join("logs/controller/0.log")).unwrap_or_default();
    for line in text.lines() {
        let Some(start) = line.find('{') else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Value>(&line[start..]) else {
            continue;
        };
        let Some(time) = record["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        match record["message"].as_str().unwrap_or_default() {
            "found provisionable pod(s)" => {
                let duration = record["duration"]
                    .as_str()
                    .and_then(parse_go_duration)
                    .unwrap_or_default();
                let names = record["Pods"].as_str().unwrap_or_default();
                let pods = match names.rsplit_once(" and ") {
                    Some((_, rest)) => {
                        5 + rest
                            .trim_end_matches(" other(s)")
                            .parse::<usize>()
                            .unwrap_or(0)
                    }
                    None => names.split(", ").filter(|n| !n.is_empty()).count(),
                };
                passes.push(Pass {
                    closed: time - chrono::Duration::from_std(duration).unwrap_or_default(),
                    pods,
                    claims: 0,
                    last_claim: None,
                });
            }
            "created nodeclaim" => {
                if let Some(p) = passes.last_mut() {
                    p.claims += 1;
                    p.last_claim = Some(time);
                }
            }
            _ => {}
        }
    }
    passes
}

fn keep_log(data_dir: &Path, to: &Path) {
    let Some(dir) = std::fs::read_dir(data_dir.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("karpenter_"))
    else {
        return;
    };
    let _ = std::fs::copy(dir.path().join("logs/controller/0.log"), to);
}

/// Rust's `{:?}` of a `Duration` as Karpenter's log prints it: `1.234ms`, `56µs`, `2.5s`.
fn parse_go_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ns" => n * 1e-9,
        "µs" | "us" => n * 1e-6,
        "ms" => n * 1e-3,
        "s" => n,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn node_price(labels: &Value) -> Option<(String, CapacityType, f64)> {
    let t = labels["node.kubernetes.io/instance-type"].as_str()?;
    let zone = labels["topology.kubernetes.io/zone"].as_str()?;
    let ct = match labels["karpenter.sh/capacity-type"].as_str()? {
        "spot" => CapacityType::Spot,
        _ => CapacityType::OnDemand,
    };
    Some((
        t.to_string(),
        ct,
        sparkyard_instance_types::get(t)?.price(zone, ct),
    ))
}

fn quantiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            eprintln!("  timed out waiting for {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) a small smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args
        .first()
        .copied()
        .unwrap_or(if bench { 1_000 } else { 50 }) as usize;
    let consolidate_after = args.get(1).copied().unwrap_or(10);
    let spread = Duration::from_millis(args.get(2).copied().unwrap_or(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n, consolidate_after, spread));
}

async fn run(n: usize, consolidate_after: u64, spread: Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let id = std::process::id();
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.10.{}.{}:0", id % 250 + 1, (id >> 8) % 250 + 2)
            .parse()
            .unwrap(),
        nodes: vec![NodeConfig {
            name: BASE_NODE.into(),
            simulated: true,
            cpu: "100m".into(),
            memory: "256Mi".into(),
            ..NodeConfig::default()
        }],
        persistence: false,
        ..ClusterConfig::default()
    };
    let cluster = sparkyard_cluster::start(config, dir.path()).await.unwrap();
    let client = cluster.client();
    let mut ec2_config =
        sparkyard_ec2::Ec2Config::new(REGION, "bench", cluster.data_dir.join("ec2-state.json"));
    ec2_config.boot_delay = BOOT_DELAY;
    let ec2 = sparkyard_ec2::Ec2::new(client.clone(), cluster.kubelet(), ec2_config).unwrap();
    let mut k =
        sparkyard_karpenter::KarpenterConfig::new(REGION, "bench", cluster.data_dir.clone());
    k.log_node = Some(BASE_NODE.into());
    let (batch_idle, batch_max) = (k.batch_idle, k.batch_max);
    let _karpenter = sparkyard_karpenter::start(&client, ec2, k);

    client.create(EC2NODECLASSES, "", nodeclass()).unwrap();
    let pool = client
        .create(NODEPOOLS, "", nodepool(consolidate_after))
        .unwrap();
    wait_until("the NodePool to be Ready", Duration::from_secs(30), || {
        client.get(NODEPOOLS, "", "bench").is_some_and(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    })
    .await;

    let seen: Shared = Arc::default();
    let from = client.revision();
    for r in [PODS, NODECLAIMS, NODES] {
        spawn_watch(client.clone(), r, from, seen.clone());
    }

    // ---- the burst ------------------------------------------------------------------
    let t0 = Instant::now();
    let wall0 = Utc::now();
    let wall = |t: DateTime<Utc>| (t - wall0).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let rel = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
    let mut created = Vec::with_capacity(n);
    for (i, pod) in pods(n).into_iter().enumerate() {
        if !spread.is_zero() && i > 0 && i % n.div_ceil(20) == 0 {
            tokio::time::sleep(spread / 19).await;
        }
        match client.create(PODS, NAMESPACE, pod) {
            Ok(p) => created.push(p),
            Err(e) => eprintln!("  pod creation failed: {}", e.message),
        }
    }
    let created_in = t0.elapsed();
    eprintln!(
        "{} pods created in {:.2} s",
        created.len(),
        created_in.as_secs_f64()
    );
    let all_bound = wait_until("every pod bound", Duration::from_secs(600), || {
        seen.lock().unwrap().bound.len() >= created.len()
    })
    .await;
    // Let stragglers (claims of later passes, nodes still registering) show.
    tokio::time::sleep(batch_idle + Duration::from_secs(2)).await;

    // ---- (a) batch → NodeClaims -------------------------------------------------------
    let passes = karpenter_passes(&cluster.data_dir);

    // A copy: no guard is held across the waits below.
    let s = seen.lock().unwrap().clone();
    let first_unsched = s.unschedulable.values().min().copied();
    let last_unsched = s.unschedulable.values().max().copied();
    let (b50, b99, bmax) = {
        let mut v: Vec<f64> = s.bound.values().map(|(t, _)| rel(*t)).collect();
        v.sort_by(f64::total_cmp);
        let q = |f: f64| {
            v.get(((v.len() as f64 * f) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f64::NAN)
        };
        (q(0.5), q(0.99), v.last().copied().unwrap_or(f64::NAN))
    };
    let claims_first = s.claims_added.iter().map(|(_, t)| *t).min();
    let claims_last = s.claims_added.iter().map(|(_, t)| *t).max();
    let registered: Vec<f64> = s
        .node_added
        .iter()
        .filter(|(n, _)| s.node_labels[*n]["karpenter.sh/nodepool"] == "bench")
        .map(|(_, t)| rel(*t))
        .collect();
    let (reg_first, _, reg_last) = quantiles(registered);

    // ---- (b) nodes and cost -----------------------------------------------------------
    let mut pods_per_node: HashMap<String, usize> = HashMap::new();
    for (_, node) in s.bound.values() {
        *pods_per_node.entry(node.clone()).or_default() += 1;
    }
    let karpenter_nodes: Vec<String> = s
        .node_labels
        .iter()
        .filter(|(_, l)| l["karpenter.sh/nodepool"] == "bench")
        .map(|(name, _)| name.clone())
        .collect();
    let mut cost = 0.0;
    let mut cost_used = 0.0;
    let mut spot = 0;
    let mut used = 0;
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for name in &karpenter_nodes {
        if let Some((t, ct, price)) = node_price(&s.node_labels[name]) {
            cost += price;
            spot += (ct == CapacityType::Spot) as usize;
            *by_type.entry(t).or_default() += 1;
            if pods_per_node.contains_key(name) {
                cost_used += price;
                used += 1;
            }
        }
    }
    let reqs: Vec<PodRequirements> = created
        .iter()
        .filter_map(|p| PodRequirements::from_pod(p).ok())
        .collect();
    let cpu: i64 = reqs.iter().map(|p| p.requests.milli_cpu).sum();
    let mem: i64 = reqs.iter().map(|p| p.requests.memory).sum();
    let types = sparkyard_provisioning::instance_options(REGION, &[]);
    let all: Vec<&InstanceOption> = types.iter().collect();
    let cmr: Vec<&InstanceOption> = types
        .iter()
        .filter(|t| {
            let l = t.instance_type.labels();
            ["c", "m", "r"].contains(
                &l.get("karpenter.k8s.aws/instance-category")
                    .map(String::as_str)
                    .unwrap_or(""),
            )
        })
        .collect();
    let bound_all = sparkyard_provisioning::cost_lower_bound(&all, cpu as f64, mem as f64, None);
    let bound_cmr = sparkyard_provisioning::cost_lower_bound(&cmr, cpu as f64, mem as f64, None);
    // Not a strict bound (as in the pure bench): the pods that demand on-demand priced at
    // on-demand, the rest at spot.
    let od = |p: &&PodRequirements| {
        p.placement
            .node_selector
            .iter()
            .any(|(k, v)| k == "karpenter.sh/capacity-type" && v == "on-demand")
    };
    let sum = |f: &dyn Fn(&&PodRequirements) -> bool| {
        reqs.iter().filter(f).fold((0.0, 0.0), |a, p| {
            (
                a.0 + p.requests.milli_cpu as f64,
                a.1 + p.requests.memory as f64,
            )
        })
    };
    let ((od_cpu, od_mem), (rest_cpu, rest_mem)) = (sum(&od), sum(&|p| !od(p)));
    let estimate = sparkyard_provisioning::cost_lower_bound(
        &cmr,
        od_cpu,
        od_mem,
        Some(CapacityType::OnDemand),
    ) + sparkyard_provisioning::cost_lower_bound(
        &cmr,
        rest_cpu,
        rest_mem,
        Some(CapacityType::Spot),
    );
    let spec = NodePoolSpec::from_nodepool(&pool);
    let pure = sparkyard_provisioning::schedule(&ScheduleInput {
        pools: std::slice::from_ref(&spec),
        nodes: &[],
        pods: &reqs,
        daemonsets: &[],
        instance_types: &types,
        right_size: true,
    });

    // ---- (d) delete every pod; empty-node removal -----------------------------------------
    // When each DELETE returned: the pod has its deletionTimestamp, and Karpenter's
    // emptiness (which ignores terminating pods) counts from then.
    let t_delete = Instant::now();
    let mut pod_deleting: HashMap<String, Instant> = HashMap::new();
    for p in &created {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let _ = client.delete(PODS, NAMESPACE, name, Propagation::Background, None);
        pod_deleting.insert(name.to_string(), Instant::now());
    }
    let deleted_in = t_delete.elapsed();
    let holding: Vec<String> = pods_per_node.keys().cloned().collect();
    let limit = Duration::from_secs(consolidate_after + 120);
    wait_until("every Karpenter node removed", limit, || {
        let s = seen.lock().unwrap();
        holding.iter().all(|n| s.node_gone.contains_key(n))
    })
    .await;
    let s = seen.lock().unwrap();
    let mut last_pod_gone: HashMap<&str, Instant> = HashMap::new();
    for (pod, (_, node)) in &s.bound {
        if let Some(t) = s.pod_gone.get(pod) {
            let e = last_pod_gone.entry(node.as_str()).or_insert(*t);
            *e = (*e).max(*t);
        }
    }
    let mut last_pod_deleting: HashMap<&str, Instant> = HashMap::new();
    for (pod, (_, node)) in &s.bound {
        if let Some(t) = pod_deleting.get(pod) {
            let e = last_pod_deleting.entry(node.as_str()).or_insert(*t);
            *e = (*e).max(*t);
        }
    }
    let ttl = consolidate_after as f64;
    let error_from = |last: &HashMap<&str, Instant>| -> Vec<f64> {
        holding
            .iter()
            .filter_map(|n| {
                let gone = s.node_gone.get(n)?;
                let last = last.get(n.as_str())?;
                Some(gone.saturating_duration_since(*last).as_secs_f64() - ttl)
            })
            .collect()
    };
    let errors = error_from(&last_pod_gone);
    let (dmin, dmed, dmax) = quantiles(error_from(&last_pod_deleting));
    let removed = errors.len();
    let last_removed = holding.iter().filter_map(|n| s.node_gone.get(n)).max();
    let (emin, emed, emax) = quantiles(errors);
    let never_used = karpenter_nodes
        .iter()
        .filter(|n| !pods_per_node.contains_key(*n))
        .count();

    if let Some(copy) = std::env::var_os("KARPENTER_BENCH_LOG") {
        keep_log(&cluster.data_dir, Path::new(&copy));
    }

    // ---- report -----------------------------------------------------------------------
    println!(
        "Karpenter on the live cluster: {} pods ({:.1} vCPU, {:.1} GiB requested), consolidateAfter {consolidate_after}s, batch {:?} idle / {:?} max, boot {:?}",
        created.len(),
        cpu as f64 / 1000.0,
        mem as f64 / (1u64 << 30) as f64,
        batch_idle,
        batch_max,
        BOOT_DELAY
    );
    println!(
        "  pods created in {:.2} s; marked Unschedulable {:.2}–{:.2} s (times from the first creation)",
        created_in.as_secs_f64(),
        first_unsched.map_or(f64::NAN, rel),
        last_unsched.map_or(f64::NAN, rel),
    );
    println!("  (a) provisioning passes (Karpenter's log):");
    println!("      | pass | batch closed at | − last Unschedulable | pods | NodeClaims | close → last NodeClaim |");
    for (i, p) in passes.iter().enumerate() {
        println!(
            "      | {} | {:.3} s | {:+.3} s | {} | {} | {} |",
            i + 1,
            wall(p.closed),
            wall(p.closed) - last_unsched.map_or(f64::NAN, rel),
            p.pods,
            p.claims,
            p.last_claim.map_or("—".to_string(), |t| format!(
                "{:.0} ms",
                (t - p.closed).num_microseconds().unwrap_or(0) as f64 / 1e3
            )),
        );
    }
    println!(
        "      NodeClaims seen on the watch: {} between {:.3} s and {:.3} s",
        s.claims_added.len(),
        claims_first.map_or(f64::NAN, rel),
        claims_last.map_or(f64::NAN, rel),
    );
    println!(
        "  (b) {} Karpenter nodes ({} spot, {} never got a pod): ${cost:.3}/h; with pods {} nodes ${cost_used:.3}/h",
        karpenter_nodes.len(),
        spot,
        never_used,
        used,
    );
    println!("      types: {by_type:?}");
    println!(
        "      lower bound ${bound_all:.3}/h (whole catalog), ${bound_cmr:.3}/h (c/m/r): cost = {:.3} × / {:.3} × bound; selector-aware estimate ${estimate:.3}/h: {:.3} ×",
        cost / bound_all,
        cost / bound_cmr,
        cost / estimate
    );
    println!(
        "      pure planner on the same pods: {} nodes, ${:.3}/h ({:.3} × c/m/r bound, {:.3} × estimate), {} unschedulable",
        pure.new_claims.len(),
        pure.launch_cost(),
        pure.launch_cost() / bound_cmr,
        pure.launch_cost() / estimate,
        pure.errors.len()
    );
    println!(
        "  (c) {} / {} pods bound; binds p50 {b50:.2} s, p99 {b99:.2} s, last {bmax:.2} s after the first creation{}; Karpenter nodes registered {reg_first:.2}–{reg_last:.2} s",
        s.bound.len(),
        created.len(),
        if all_bound { "" } else { " (timed out)" }
    );
    println!(
        "  (d) {} pods deleted in {:.2} s; {removed} / {} nodes with pods removed, the last {:.2} s after deletion began",
        created.len(),
        deleted_in.as_secs_f64(),
        holding.len(),
        last_removed.map_or(f64::NAN, |t| t.saturating_duration_since(t_delete).as_secs_f64()),
    );
    println!(
        "      removal − last pod gone − consolidateAfter: min {emin:+.3} s, median {emed:+.3} s, max {emax:+.3} s"
    );
    println!(
        "      removal − last pod's deletion begun − consolidateAfter: min {dmin:+.3} s, median {dmed:+.3} s, max {dmax:+.3} s"
    );
    if s.reopened > 0 {
        println!(
            "  note: a watch fell behind {} time(s); some events may be missing",
            s.reopened
        );
    }
}
