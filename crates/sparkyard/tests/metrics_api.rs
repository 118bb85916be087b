//! Resource usage end to end, with the real clients: `kubectl top` (nodes, pods, `-l`,
//! `-A`, `--containers`) over `metrics.k8s.io/v1beta1`, PodMetrics through kube-rs, and
//! the kubelet's `/metrics/resource`, `/metrics/cadvisor` and `/stats/summary` through
//! the API server's node proxy (`kubectl get --raw`), parsed by Python's
//! `prometheus_client`. A CPU-burning pod's reported usage is checked against what
//! `/proc` says of its processes over the same windows; a pod on a simulated node
//! reports the model (0.9 × its requests); RBAC keeps a service account out until `view`
//! is bound.
//!
//! One server for every check (CI has two cores).

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster::{kube_client, kubectl, ClusterServer};
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

/// Two nodes — a real one (pods run here as processes) and a simulated one — and a short
/// sampling interval so that several windows pass quickly.
const CONFIG: &str = r#"
[cluster]
usage-sample-interval = "2s"

[[cluster.nodes]]
name = "local-1"
cpu = "4"
memory = "8Gi"

[[cluster.nodes]]
name = "sim-1"
simulated = true
cpu = "4"
memory = "16Gi"
"#;

const NS: &str = "metrics";

fn manifests(marker: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: Pod
metadata:
  name: burner
  namespace: {NS}
  labels: {{app: burner}}
spec:
  nodeSelector: {{kubernetes.io/hostname: local-1}}
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    # Bounded, in case the test's clean-up never runs: shims outlive sparkyard.
    command: [timeout, "300", sh, -c, "while :; do :; done # {marker}"]
    resources:
      requests: {{cpu: 100m, memory: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: idle
  namespace: {NS}
  labels: {{app: idle}}
spec:
  nodeSelector: {{kubernetes.io/hostname: local-1}}
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "300"]
  - name: side
    image: busybox:1.36
    command: [sleep, "300"]
---
apiVersion: v1
kind: Pod
metadata:
  name: modelled
  namespace: {NS}
  labels: {{app: modelled}}
spec:
  nodeSelector: {{kubernetes.io/hostname: sim-1}}
  containers:
  - name: main
    image: busybox:1.36
    resources:
      requests: {{cpu: "1", memory: 256Mi}}
"#
    )
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_with(server: &ClusterServer, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
        server.log()
    );
    stdout
}

fn ok(server: &ClusterServer, args: &[&str]) -> String {
    ok_with(server, &server.kubeconfig(), args)
}

/// Runs `f` until it returns `Some`, up to `limit`; panics with `what` otherwise.
fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `kubectl top` columns of the row whose first column is `name`.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
}

/// `998m` / `1` → cores; `1234Ki`, `2Mi`, `1048576` → bytes.
fn cpu_cores(q: &str) -> f64 {
    match q.strip_suffix('n') {
        Some(n) => n.parse::<f64>().unwrap() / 1e9,
        None => match q.strip_suffix('u') {
            Some(u) => u.parse::<f64>().unwrap() / 1e6,
            None => match q.strip_suffix('m') {
                Some(m) => m.parse::<f64>().unwrap() / 1e3,
                None => q.parse().unwrap(),
            },
        },
    }
}

fn bytes(q: &str) -> f64 {
    for (suffix, scale) in [("Ki", 1024.0), ("Mi", 1048576.0), ("Gi", 1073741824.0)] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * scale;
        }
    }
    q.parse().unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// CPU ticks (utime+stime+cutime+cstime) of every process whose command line holds
/// `marker`: the pod's sandbox and its shell.
fn proc_ticks(marker: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<u64> = stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // Fields 14..=17 (utime, stime, cutime, cstime); index = field - 3.
        total += fields[11..=14].iter().sum::<u64>();
        found = true;
    }
    found.then_some(total)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `(unix seconds, ticks)` readings, taken every 100 ms by a thread of the test.
struct ProcSeries {
    points: Arc<Mutex<Vec<(f64, u64)>>>,
    stop: Arc<AtomicBool>,
}

impl ProcSeries {
    fn start(marker: &str) -> Self {
        let points = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s, marker) = (points.clone(), stop.clone(), marker.to_string());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(ticks) = proc_ticks(&marker) {
                    p.lock().unwrap().push((unix_now(), ticks));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { points, stop }
    }

    /// Ticks at time `t`, interpolated between the readings around it.
    fn ticks_at(&self, t: f64) -> Option<f64> {
        let points = self.points.lock().unwrap();
        let after = points.iter().position(|(at, _)| *at >= t)?;
        if after == 0 {
            return None;
        }
        let ((t0, c0), (t1, c1)) = (points[after - 1], points[after]);
        Some(c0 as f64 + (c1 as f64 - c0 as f64) * (t - t0) / (t1 - t0))
    }
}

impl Drop for ProcSeries {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Python's `prometheus_client` parser over `text`: every sample as
/// `[name, labels, value, timestamp]`.
fn parse_prometheus(dir: &Path, exposition: &str) -> Vec<Value> {
    let file = dir.join("scrape.txt");
    std::fs::write(&file, exposition).unwrap();
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        ts = None if s.timestamp is None else float(s.timestamp)
        out.append([s.name, s.labels, s.value, ts, family.type])
print(json.dumps(out))
"#;
    let out = std::process::Command::new(support::venv_tool("python3"))
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run python3");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "prometheus_client could not parse:\n{stderr}\n{exposition}"
    );
    serde_json::from_str::<Vec<Value>>(&stdout).unwrap()
}

fn sample<'a>(samples: &'a [Value], name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    samples.iter().find(|s| {
        s[0] == name
            && labels
                .iter()
                .all(|(k, v)| s[1].get(*k).and_then(Value::as_str) == Some(v))
    })
}

fn pod_metrics_api(client: kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    Api::namespaced_with(client, NS, &resource)
}

/// One PodMetrics reading: (timestamp, window seconds, cores of container `main`, bytes).
fn reading(object: &DynamicObject) -> (String, f64, f64, f64) {
    let data = &object.data;
    let window = data["window"].as_str().unwrap();
    let window: f64 = window
        .strip_suffix("ms")
        .map(|ms| ms.parse::<f64>().unwrap() / 1e3)
        .unwrap_or_else(|| window.trim_end_matches('s').parse().unwrap());
    let main = data["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .expect("container main");
    (
        data["timestamp"].as_str().unwrap().to_string(),
        window,
        cpu_cores(main["usage"]["cpu"].as_str().unwrap()),
        bytes(main["usage"]["memory"].as_str().unwrap()),
    )
}

/// Deletes the test's pods when dropped (pass or fail): their containers run under shims
/// that outlive sparkyard, so killing the server would leave them running.
struct Cleanup<'a>(&'a ClusterServer);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let kubeconfig = self.0.kubeconfig();
        let _ = kubectl(
            &kubeconfig,
            &[
                "delete",
                "pods",
                "--all",
                "-n",
                NS,
                "--grace-period=0",
                "--wait=false",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = kubectl(&kubeconfig, &["get", "pods", "-n", NS, "-o", "name"]);
            if out.status.success() && out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn kubectl_top_and_kubelet_endpoints_report_what_proc_measures() {
    let server = ClusterServer::start_with_config(CONFIG);
    let _cleanup = Cleanup(&server);
    let dir = server.server.data_dir.path().to_path_buf();
    let marker = format!("sparkyard-metrics-{}", uuid::Uuid::new_v4().simple());
    let manifest = dir.join("pods.yml");
    std::fs::write(&manifest, manifests(&marker)).unwrap();
    ok(&server, &["apply", "-f", manifest.to_str().unwrap()]);

    // Discovery: the group is listed and kubectl finds the resources.
    let resources = ok(&server, &["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        resources.contains("NodeMetrics") && resources.contains("PodMetrics"),
        "{resources}"
    );

    // Samples come every 2 s; a pod shows once it has two.
    let top = poll(Duration::from_secs(120), "kubectl top pods", || {
        let out = kubectl(&server.kubeconfig(), &["top", "pods", "-n", NS]);
        let (stdout, _) = text(&out);
        (out.status.success()
            && ["burner", "idle", "modelled"]
                .iter()
                .all(|p| row(&stdout, p).is_some()))
        .then_some(stdout)
    });
    let burner = row(&top, "burner").unwrap();
    assert!(
        cpu_cores(&burner[1]) > 0.02,
        "a busy loop uses CPU: {burner:?}\n{top}"
    );
    let idle = row(&top, "idle").unwrap();
    assert!(cpu_cores(&idle[1]) < 0.05, "sleep uses none: {idle:?}");
    // The simulated pod: 0.9 × its 1-CPU request, its memory request.
    assert_eq!(
        row(&top, "modelled").unwrap()[1..],
        ["900m", "256Mi"],
        "{top}"
    );

    // Nodes: every one, real and simulated, with usage (no `<unknown>`).
    let nodes = poll(Duration::from_secs(60), "kubectl top nodes", || {
        let out = kubectl(&server.kubeconfig(), &["top", "nodes"]);
        let (stdout, _) = text(&out);
        (out.status.success() && !stdout.contains("<unknown>")).then_some(stdout)
    });
    let local = row(&nodes, "local-1").unwrap_or_else(|| panic!("{nodes}"));
    assert!(cpu_cores(&local[1]) > 0.02, "{nodes}");
    let sim = row(&nodes, "sim-1").unwrap_or_else(|| panic!("{nodes}"));
    assert_eq!(
        (sim[1].as_str(), sim[3].as_str()),
        ("900m", "256Mi"),
        "{nodes}"
    );

    // `kubectl get` prints metrics-server's table; `explain` reads the OpenAPI document.
    let got = ok(&server, &["get", "podmetrics", "-n", NS]);
    let header: Vec<&str> = got.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU", "MEMORY", "WINDOW"], "{got}");
    assert_eq!(
        row(&got, "modelled").unwrap()[1..3],
        ["900m", "256Mi"],
        "{got}"
    );
    let got = ok(&server, &["get", "nodemetrics", "sim-1", "-o", "json"]);
    let sim_metrics: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(sim_metrics["kind"], "NodeMetrics");
    assert_eq!(sim_metrics["usage"]["cpu"], "900m");
    assert_eq!(
        sim_metrics["metadata"]["labels"]["kubernetes.io/hostname"],
        "sim-1"
    );
    assert!(ok(&server, &["explain", "podmetrics.containers"]).contains("usage"));

    // Selectors, all namespaces, containers.
    let labelled = ok(&server, &["top", "pods", "-n", NS, "-l", "app=burner"]);
    assert!(
        row(&labelled, "burner").is_some() && row(&labelled, "idle").is_none(),
        "{labelled}"
    );
    let all = ok(&server, &["top", "pods", "-A"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with(NS) && l.contains("modelled")),
        "{all}"
    );
    let containers = ok(&server, &["top", "pods", "idle", "-n", NS, "--containers"]);
    let names: Vec<String> = containers
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    assert_eq!(names, ["main", "side"], "{containers}");
    let by_name = ok(
        &server,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/metrics/pods?fieldSelector=metadata.name%3Didle",
        ],
    );
    let by_name: Value = serde_json::from_str(&by_name).unwrap();
    assert_eq!(by_name["kind"], "PodMetricsList");
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1, "{by_name}");
    assert_eq!(by_name["items"][0]["metadata"]["labels"]["app"], "idle");

    // CPU against /proc, over several consecutive sampler windows.
    let series = ProcSeries::start(&marker);
    let ticks_per_second = clock_ticks();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pods = pod_metrics_api(runtime.block_on(kube_client(&server.kubeconfig())));
    let mut readings: Vec<(String, f64, f64, f64)> = Vec::new();
    let first_seen = Instant::now();
    while readings.len() < 7 {
        let object = runtime.block_on(pods.get("burner")).unwrap();
        let r = reading(&object);
        if readings.last().map(|l| l.0 != r.0).unwrap_or(true) {
            readings.push(r);
        }
        assert!(
            first_seen.elapsed() < Duration::from_secs(120),
            "PodMetrics did not move on: {readings:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The first readings' windows began before /proc was being read: compare the rest.
    let windows = &readings[3..];
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp() as f64
            // Whole seconds in the object: the sample was taken within the second after.
            + 0.5
    };
    let span_end = parse(&windows.last().unwrap().0);
    let span_start = parse(&windows[0].0) - windows[0].1;
    let reported =
        windows.iter().map(|w| w.2 * w.1).sum::<f64>() / windows.iter().map(|w| w.1).sum::<f64>();
    // Readings of /proc around the end of the span.
    poll(Duration::from_secs(10), "/proc readings", || {
        series.ticks_at(span_end + 0.2).map(|_| ())
    });
    let measured = (series.ticks_at(span_end).unwrap()
        - series
            .ticks_at(span_start)
            .expect("/proc readings cover the span"))
        / ticks_per_second
        / (span_end - span_start);
    eprintln!("PodMetrics {reported:.3} cores, /proc {measured:.3} cores, over {windows:?}");
    assert!(
        measured > 0.05,
        "the busy loop barely ran ({measured} cores)"
    );
    assert!(
        (reported - measured).abs() <= 0.2 * measured,
        "PodMetrics says {reported:.3} cores over {windows:?}, /proc {measured:.3}"
    );
    let memory = windows.last().unwrap().3;
    assert!(
        (64.0 * 1024.0..512.0 * 1048576.0).contains(&memory),
        "working set of a shell loop: {memory} bytes"
    );

    // Unknown pod and node: NotFound, as metrics-server words it.
    let missing = runtime.block_on(pods.get("nope")).unwrap_err();
    match missing {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
            assert_eq!(
                status.message,
                "podmetrics.metrics.k8s.io \"metrics/nope\" not found"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let out = kubectl(&server.kubeconfig(), &["top", "node", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("not found"), "{}", text(&out).1);

    // The kubelet's endpoints through the node proxy, parsed by prometheus_client.
    let resource = ok(
        &server,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/local-1/proxy/metrics/resource",
        ],
    );
    let samples = parse_prometheus(&dir, &resource);
    let burner_labels = [("container", "main"), ("pod", "burner"), ("namespace", NS)];
    let cpu = sample(
        &samples,
        "container_cpu_usage_seconds_total",
        &burner_labels,
    )
    .unwrap_or_else(|| panic!("no burner CPU series in\n{resource}"));
    assert_eq!(cpu[4], "counter");
    assert!(cpu[2].as_f64().unwrap() > 0.0, "{cpu}");
    let stamped = cpu[3].as_f64().expect("a timestamp");
    assert!(
        (stamped - unix_now()).abs() < 3600.0,
        "timestamp {stamped} is in seconds since the epoch"
    );
    for name in [
        "container_memory_working_set_bytes",
        "container_start_time_seconds",
    ] {
        assert!(
            sample(&samples, name, &burner_labels).is_some(),
            "{name}\n{resource}"
        );
    }
    for (name, labels) in [
        (
            "pod_cpu_usage_seconds_total",
            &[("pod", "burner"), ("namespace", NS)][..],
        ),
        (
            "pod_memory_working_set_bytes",
            &[("pod", "idle"), ("namespace", NS)][..],
        ),
        ("node_cpu_usage_seconds_total", &[][..]),
        ("node_memory_working_set_bytes", &[][..]),
        ("scrape_error", &[][..]),
    ] {
        assert!(
            sample(&samples, name, labels).is_some(),
            "{name}\n{resource}"
        );
    }
    assert!(
        sample(
            &samples,
            "pod_cpu_usage_seconds_total",
            &[("pod", "modelled")]
        )
        .is_none(),
        "a simulated node's pod is not on local-1's kubelet"
    );

    let cadvisor = ok(
        &server,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/local-1/proxy/metrics/cadvisor",
        ],
    );
    let samples = parse_prometheus(&dir, &cadvisor);
    // The node's "machine" is its capacity.
    let capacity = ok(
        &server,
        &[
            "get",
            "node",
            "local-1",
            "-o",
            "jsonpath={.status.capacity.cpu}",
        ],
    );
    assert_eq!(
        sample(&samples, "machine_cpu_cores", &[]).map(|s| s[2].as_f64().unwrap()),
        Some(cpu_cores(capacity.trim())),
        "{cadvisor}"
    );
    assert!(sample(
        &samples,
        "container_cpu_usage_seconds_total",
        &[("id", "/")]
    )
    .is_some());
    assert!(sample(
        &samples,
        "container_memory_working_set_bytes",
        &[("container", ""), ("pod", "burner"), ("namespace", NS)]
    )
    .is_some());
    assert!(
        sample(
            &samples,
            "container_cpu_usage_seconds_total",
            &[
                ("container", "main"),
                ("pod", "burner"),
                ("image", "busybox:1.36")
            ]
        )
        .is_some(),
        "{cadvisor}"
    );

    let summary: Value = serde_json::from_str(&ok(
        &server,
        &["get", "--raw", "/api/v1/nodes/sim-1/proxy/stats/summary"],
    ))
    .unwrap();
    assert_eq!(summary["node"]["nodeName"], "sim-1");
    let modelled = &summary["pods"][0];
    assert_eq!(modelled["podRef"]["name"], "modelled");
    assert_eq!(modelled["cpu"]["usageNanoCores"], 900_000_000u64);
    assert_eq!(modelled["memory"]["workingSetBytes"], 256u64 << 20);

    // RBAC: a service account sees nothing until `view` is bound in the namespace, and
    // even then neither node metrics nor the node proxy.
    ok(&server, &["create", "serviceaccount", "viewer", "-n", NS]);
    let token = ok(&server, &["create", "token", "viewer", "-n", NS]);
    let viewer = server.kubeconfig_with_token(token.trim(), "viewer");
    let refused = kubectl(&viewer, &["top", "pods", "-n", NS]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).1.contains("forbidden"),
        "{}",
        text(&refused).1
    );
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "viewer-view",
            "--clusterrole=view",
            "--serviceaccount=metrics:viewer",
            "-n",
            NS,
        ],
    );
    let seen = ok_with(&server, &viewer, &["top", "pods", "-n", NS]);
    assert!(row(&seen, "burner").is_some(), "{seen}");
    let refused = kubectl(
        &viewer,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/local-1/proxy/metrics/resource",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).1.contains("forbidden"),
        "{}",
        text(&refused).1
    );
}
