//! The kubelet's HTTP endpoints for usage, as the API server's node proxy reaches them
//! (`/api/v1/nodes/<node>/proxy/<path>`):
//!
//! - `metrics/resource`: the kubelet's resource metrics, names, labels and help as
//!   upstream (`node_cpu_usage_seconds_total`, `container_memory_working_set_bytes
//!   {container,namespace,pod}`, …), with the sample's timestamp in milliseconds.
//! - `metrics/cadvisor`: the cAdvisor subset — `container_cpu_usage_seconds_total`,
//!   `container_memory_working_set_bytes`, `container_start_time_seconds`
//!   {container,id,image,name,namespace,pod} with the root (`id="/"`), pod-level
//!   (`container=""`) and container rows — and `machine_cpu_cores`, `machine_memory_bytes`.
//! - `stats/summary`: the Summary API (`stats/v1alpha1`) JSON.
//! - `metrics`: the kubelet's own `kubelet_running_pods`, `kubelet_running_containers`,
//!   `kubelet_node_name`; `healthz`.
//!
//! Text is written directly (the Prometheus text format 0.0.4): the kubelet stamps its
//! samples with their time, which the `prometheus-client` encoder does not do.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{NodeUsage, PodUsage, Snapshot};
use sparkyard_kube_apiserver::metrics_api::KubeletReply;

pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers `GET /<path>` on `node`'s kubelet.
pub fn serve(snapshot: &Snapshot, node: &str, path: &str) -> KubeletReply {
    let text = |body: String| KubeletReply {
        status: 200,
        content_type: TEXT_FORMAT.into(),
        body: body.into_bytes(),
    };
    match path.trim_matches('/') {
        "metrics/resource" => text(resource_metrics(snapshot, node)),
        "metrics/cadvisor" => text(cadvisor_metrics(snapshot, node)),
        "metrics" => text(kubelet_metrics(snapshot, node)),
        "stats/summary" => KubeletReply {
            status: 200,
            content_type: "application/json".into(),
            body: serde_json::to_vec_pretty(&summary(snapshot, node)).unwrap_or_default(),
        },
        "healthz" => KubeletReply {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"ok".to_vec(),
        },
        _ => KubeletReply {
            status: 404,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"404 page not found\n".to_vec(),
        },
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it (the Prometheus Go
/// client's text encoder): shortest round-trip digits, exponent form from 1e6 and below
/// 1e-4 (`1.7e+09`, `1.048576e+06`, `0.25`, `123456`).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let scientific = format!("{v:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{v}")
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// One family: `# HELP`, `# TYPE` and its samples (label pairs, value, timestamp ms).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64, Option<i64>)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: &'static str) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, pairs: &[(&str, &str)], value: f64, at: Option<DateTime<Utc>>) {
        self.samples
            .push((labels(pairs), value, at.map(|t| t.timestamp_millis())));
    }
}

/// Families sorted by name, samples by labels, as the Go client gathers them.
fn render(mut families: Vec<Family>) -> String {
    families.sort_by_key(|f| f.name);
    let mut out = String::new();
    for mut family in families {
        family.samples.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for (labels, value, at) in family.samples {
            match at {
                Some(ms) => {
                    let _ = writeln!(out, "{}{labels} {} {ms}", family.name, go_float(value));
                }
                None => {
                    let _ = writeln!(out, "{}{labels} {}", family.name, go_float(value));
                }
            }
        }
    }
    out
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9
}

/// `/metrics/resource`.
pub fn resource_metrics(snapshot: &Snapshot, node: &str) -> String {
    let mut node_cpu = Family::new(
        "node_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    let mut node_memory = Family::new(
        "node_memory_working_set_bytes",
        "[STABLE] Current working set of the node in bytes",
        "gauge",
    );
    let mut container_cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    let mut container_memory = Family::new(
        "container_memory_working_set_bytes",
        "[STABLE] Current working set of the container in bytes",
        "gauge",
    );
    let mut container_start = Family::new(
        "container_start_time_seconds",
        "[STABLE] Start time of the container since unix epoch in seconds",
        "gauge",
    );
    let mut pod_cpu = Family::new(
        "pod_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    let mut pod_memory = Family::new(
        "pod_memory_working_set_bytes",
        "[STABLE] Current working set of the pod in bytes",
        "gauge",
    );
    let mut scrape_error = Family::new(
        "scrape_error",
        "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let mut resource_scrape_error = Family::new(
        "resource_scrape_error",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let error = if snapshot.taken_at.is_some() {
        0.0
    } else {
        1.0
    };
    scrape_error.add(&[], error, None);
    resource_scrape_error.add(&[], error, None);
    if let Some(n) = snapshot.node(node) {
        node_cpu.add(&[], n.cpu_seconds_total, Some(n.timestamp));
        node_memory.add(&[], n.memory_working_set_bytes as f64, Some(n.timestamp));
    }
    for pod in snapshot.pods_of(node) {
        let (ns, name) = (pod.namespace.as_str(), pod.name.as_str());
        for c in &pod.containers {
            let pairs = [
                ("container", c.name.as_str()),
                ("namespace", ns),
                ("pod", name),
            ];
            if let Some(start) = c.start_time {
                container_start.add(&pairs, seconds(start), None);
            }
            container_cpu.add(&pairs, c.cpu_seconds_total, Some(c.timestamp));
            container_memory.add(&pairs, c.memory_working_set_bytes as f64, Some(c.timestamp));
        }
        let pairs = [("namespace", ns), ("pod", name)];
        pod_cpu.add(&pairs, pod.cpu_seconds_total, Some(pod.timestamp));
        pod_memory.add(
            &pairs,
            pod.memory_working_set_bytes as f64,
            Some(pod.timestamp),
        );
    }
    render(vec![
        container_cpu,
        container_memory,
        container_start,
        node_cpu,
        node_memory,
        pod_cpu,
        pod_memory,
        resource_scrape_error,
        scrape_error,
    ])
}

/// The container ID without its runtime scheme (cAdvisor's `name`).
fn bare_id(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map(|(_, id)| id)
        .unwrap_or(container_id)
}

/// `/metrics/cadvisor`.
pub fn cadvisor_metrics(snapshot: &Snapshot, node: &str) -> String {
    let mut cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        "counter",
    );
    let mut memory = Family::new(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        "gauge",
    );
    let mut start = Family::new(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
        "gauge",
    );
    let mut cores = Family::new("machine_cpu_cores", "Number of logical CPU cores.", "gauge");
    let mut machine_memory = Family::new(
        "machine_memory_bytes",
        "Amount of memory installed on the machine.",
        "gauge",
    );
    if let Some(n) = snapshot.node(node) {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let machine = [
            ("boot_id", boot_id.as_str()),
            ("machine_id", n.name.as_str()),
            ("system_uuid", n.name.as_str()),
        ];
        cores.add(&machine, n.machine_cpu_cores, None);
        machine_memory.add(&machine, n.machine_memory_bytes as f64, None);
        let root = cadvisor_labels("", "/", "", "", "", "");
        let root: Vec<(&str, &str)> = root.iter().map(|(k, v)| (*k, v.as_str())).collect();
        add_cpu(&mut cpu, &root, n.cpu_seconds_total, n.timestamp);
        memory.add(&root, n.memory_working_set_bytes as f64, Some(n.timestamp));
        start.add(&root, seconds(n.start_time), Some(n.timestamp));
    }
    for pod in snapshot.pods_of(node) {
        let pod_id = format!("/kubepods/pod{}", pod.uid);
        let owned = cadvisor_labels("", &pod_id, "", "", &pod.namespace, &pod.name);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        add_cpu(&mut cpu, &pairs, pod.cpu_seconds_total, pod.timestamp);
        memory.add(
            &pairs,
            pod.memory_working_set_bytes as f64,
            Some(pod.timestamp),
        );
        if let Some(t) = pod.start_time {
            start.add(&pairs, seconds(t), Some(pod.timestamp));
        }
        for c in &pod.containers {
            let id = bare_id(&c.container_id);
            let owned = cadvisor_labels(
                &c.name,
                &format!("{pod_id}/{id}"),
                &c.image,
                id,
                &pod.namespace,
                &pod.name,
            );
            let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            add_cpu(&mut cpu, &pairs, c.cpu_seconds_total, c.timestamp);
            memory.add(&pairs, c.memory_working_set_bytes as f64, Some(c.timestamp));
            if let Some(t) = c.start_time {
                start.add(&pairs, seconds(t), Some(c.timestamp));
            }
        }
    }
    render(vec![cpu, memory, start, cores, machine_memory])
}

fn cadvisor_labels(
    container: &str,
    id: &str,
    image: &str,
    name: &str,
    namespace: &str,
    pod: &str,
) -> [(&'static str, String); 6] {
    [
        ("container", container.to_string()),
        ("id", id.to_string()),
        ("image", image.to_string()),
        ("name", name.to_string()),
        ("namespace", namespace.to_string()),
        ("pod", pod.to_string()),
    ]
}

/// cAdvisor's CPU counter carries `cpu="total"` (per-CPU series are disabled).
fn add_cpu(family: &mut Family, pairs: &[(&str, &str)], value: f64, at: DateTime<Utc>) {
    let mut with_cpu: Vec<(&str, &str)> = pairs.to_vec();
    with_cpu.insert(1, ("cpu", "total"));
    family.add(&with_cpu, value, Some(at));
}

/// `/metrics`: a few of the kubelet's own series.
pub fn kubelet_metrics(snapshot: &Snapshot, node: &str) -> String {
    let mut pods = Family::new(
        "kubelet_running_pods",
        "[ALPHA] Number of pods that have a running pod sandbox",
        "gauge",
    );
    let mut containers = Family::new(
        "kubelet_running_containers",
        "[ALPHA] Number of containers currently running",
        "gauge",
    );
    let mut name = Family::new(
        "kubelet_node_name",
        "[ALPHA] The node's name. The count is always 1.",
        "gauge",
    );
    let running: Vec<&PodUsage> = snapshot.pods_of(node).collect();
    pods.add(&[], running.len() as f64, None);
    containers.add(
        &[("container_state", "running")],
        running.iter().map(|p| p.containers.len()).sum::<usize>() as f64,
        None,
    );
    name.add(&[("node", node)], 1.0, None);
    render(vec![containers, name, pods])
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn cpu_json(at: DateTime<Utc>, nano_cores: Option<u64>, seconds_total: f64) -> Value {
    let mut cpu = json!({
        "time": time(at),
        "usageCoreNanoSeconds": (seconds_total * 1e9).round() as u64,
    });
    if let Some(n) = nano_cores {
        cpu["usageNanoCores"] = json!(n);
    }
    cpu
}

fn memory_json(at: DateTime<Utc>, working_set: u64, available: Option<u64>) -> Value {
    let mut memory = json!({
        "time": time(at),
        "usageBytes": working_set,
        "workingSetBytes": working_set,
        "rssBytes": working_set,
        "pageFaults": 0,
        "majorPageFaults": 0,
    });
    if let Some(available) = available {
        memory["availableBytes"] = json!(available);
    }
    memory
}

fn node_summary(n: &NodeUsage) -> Value {
    json!({
        "nodeName": n.name,
        "startTime": time(n.start_time),
        "cpu": cpu_json(n.timestamp, n.cpu_nano_cores, n.cpu_seconds_total),
        "memory": memory_json(
            n.timestamp,
            n.memory_working_set_bytes,
            Some(n.machine_memory_bytes.saturating_sub(n.memory_working_set_bytes)),
        ),
    })
}

/// `/stats/summary`: the node and its pods, CPU and memory.
pub fn summary(snapshot: &Snapshot, node: &str) -> Value {
    let node_json = snapshot
        .node(node)
        .map(node_summary)
        .unwrap_or(json!({"nodeName": node}));
    let pods: Vec<Value> = snapshot
        .pods_of(node)
        .map(|p| {
            let containers: Vec<Value> = p
                .containers
                .iter()
                .map(|c| {
                    let mut container = json!({
                        "name": c.name,
                        "cpu": cpu_json(c.timestamp, c.cpu_nano_cores, c.cpu_seconds_total),
                        "memory": memory_json(c.timestamp, c.memory_working_set_bytes, None),
                    });
                    if let Some(t) = c.start_time {
                        container["startTime"] = json!(time(t));
                    }
                    container
                })
                .collect();
            let mut pod = json!({
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "containers": containers,
                "cpu": cpu_json(p.timestamp, p.cpu_nano_cores, p.cpu_seconds_total),
                "memory": memory_json(p.timestamp, p.memory_working_set_bytes, None),
            });
            if let Some(t) = p.start_time {
                pod["startTime"] = json!(time(t));
            }
            pod
        })
        .collect();
    json!({"node": node_json, "pods": pods})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ContainerUsage;
    use std::time::Duration;

    fn snapshot() -> Snapshot {
        let at: DateTime<Utc> = "2025-01-01T00:00:10Z".parse().unwrap();
        let container = ContainerUsage {
            name: "main".into(),
            container_id: "sparkyard://abc".into(),
            image: "busybox:1.36".into(),
            start_time: Some("2025-01-01T00:00:00Z".parse().unwrap()),
            timestamp: at,
            window: Some(Duration::from_secs(10)),
            cpu_seconds_total: 9.5,
            cpu_nano_cores: Some(950_000_000),
            memory_working_set_bytes: 1 << 20,
            processes: 3,
        };
        Snapshot {
            taken_at: Some(at),
            nodes: vec![NodeUsage {
                name: "n1".into(),
                simulated: false,
                start_time: "2025-01-01T00:00:00Z".parse().unwrap(),
                timestamp: at,
                window: Some(Duration::from_secs(10)),
                cpu_seconds_total: 9.5,
                cpu_nano_cores: Some(950_000_000),
                memory_working_set_bytes: 1 << 20,
                machine_cpu_cores: 8.0,
                machine_memory_bytes: 32 << 30,
            }],
            pods: vec![PodUsage {
                namespace: "ns".into(),
                name: "burner".into(),
                uid: "u-1".into(),
                node: "n1".into(),
                start_time: Some("2025-01-01T00:00:00Z".parse().unwrap()),
                timestamp: at,
                window: Some(Duration::from_secs(10)),
                cpu_seconds_total: 9.5,
                cpu_nano_cores: Some(950_000_000),
                memory_working_set_bytes: 1 << 20,
                containers: vec![container],
            }],
        }
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(9.5), "9.5");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1_048_576.0), "1.048576e+06");
        assert_eq!(go_float(1.7356896e9), "1.7356896e+09");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
    }

    #[test]
    fn resource_metrics_have_upstream_names_labels_and_timestamps() {
        let text = resource_metrics(&snapshot(), "n1");
        for line in [
            "# TYPE container_cpu_usage_seconds_total counter",
            "container_cpu_usage_seconds_total{container=\"main\",namespace=\"ns\",pod=\"burner\"} 9.5 1735689610000",
            "container_memory_working_set_bytes{container=\"main\",namespace=\"ns\",pod=\"burner\"} 1.048576e+06 1735689610000",
            "container_start_time_seconds{container=\"main\",namespace=\"ns\",pod=\"burner\"} 1.7356896e+09",
            "node_cpu_usage_seconds_total 9.5 1735689610000",
            "node_memory_working_set_bytes 1.048576e+06 1735689610000",
            "pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"burner\"} 9.5 1735689610000",
            "pod_memory_working_set_bytes{namespace=\"ns\",pod=\"burner\"} 1.048576e+06 1735689610000",
            "scrape_error 0",
            "resource_scrape_error 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        // Another node's kubelet knows nothing of this pod.
        assert!(!resource_metrics(&snapshot(), "n2").contains("burner"));
    }

    #[test]
    fn cadvisor_rows_for_root_pod_and_container() {
        let text = cadvisor_metrics(&snapshot(), "n1");
        for needle in [
            "container_cpu_usage_seconds_total{container=\"\",cpu=\"total\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"} 9.5",
            "container_cpu_usage_seconds_total{container=\"\",cpu=\"total\",id=\"/kubepods/podu-1\",image=\"\",name=\"\",namespace=\"ns\",pod=\"burner\"} 9.5",
            "container_memory_working_set_bytes{container=\"main\",id=\"/kubepods/podu-1/abc\",image=\"busybox:1.36\",name=\"abc\",namespace=\"ns\",pod=\"burner\"} 1.048576e+06",
            "machine_cpu_cores{boot_id=",
            "machine_memory_bytes{",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn summary_and_routes() {
        let s = summary(&snapshot(), "n1");
        assert_eq!(s["node"]["cpu"]["usageNanoCores"], 950_000_000);
        assert_eq!(s["node"]["cpu"]["usageCoreNanoSeconds"], 9_500_000_000u64);
        assert_eq!(s["pods"][0]["podRef"]["name"], "burner");
        assert_eq!(
            s["pods"][0]["containers"][0]["memory"]["workingSetBytes"],
            1 << 20
        );
        let snap = snapshot();
        assert_eq!(serve(&snap, "n1", "metrics/resource").status, 200);
        assert_eq!(
            serve(&snap, "n1", "/stats/summary").content_type,
            "application/json"
        );
        assert_eq!(serve(&snap, "n1", "nope").status, 404);
        assert!(String::from_utf8(serve(&snap, "n1", "metrics").body)
            .unwrap()
            .contains("kubelet_running_pods 1"));
    }
}
