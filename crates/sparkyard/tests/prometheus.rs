//! The Prometheus listener end to end: one `sparkyard serve` with its embedded cluster,
//! changed with kubectl and the `aws` CLI, scraped over HTTP and parsed by the Prometheus
//! project's own Python parser (`prometheus_client.parser.text_string_to_metric_families`).
//! The series named in `docs/metrics.md` (Prometheus exposition) must be there with the labels and
//! values that follow what the test did.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use jobs_env::{Env, NS, PI};
use serde_json::{json, Value};

const SMALL: &str = "--conf spark.executor.instances=1 --conf spark.executor.memory=512m --conf spark.driver.memory=512m --conf spark.kubernetes.driver.request.cores=250m --conf spark.kubernetes.executor.request.cores=250m";

/// Parses the exposition with the real parser; prints the content type and families.
const PARSE: &str = r##"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
    ctype = r.headers.get("Content-Type")
    text = r.read().decode()
families = []
for f in text_string_to_metric_families(text):
    families.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")]
print(json.dumps({"content_type": ctype, "families": families, "types": types}))
"##;

struct Scrape {
    content_type: String,
    families: Vec<Value>,
    /// Every `# TYPE` line's name, in order.
    types: Vec<String>,
}

type Labels = BTreeMap<String, String>;

impl Scrape {
    fn samples(&self, name: &str) -> Vec<(Labels, f64)> {
        self.families
            .iter()
            .flat_map(|f| f["samples"].as_array().unwrap().iter())
            .filter(|s| s["name"] == name)
            .map(|s| {
                let labels = s["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (labels, s["value"].as_f64().unwrap())
            })
            .collect()
    }

    /// The value of the one sample of `name` whose labels include `want`.
    fn value(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self
            .samples(name)
            .into_iter()
            .filter(|(l, _)| {
                want.iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .collect();
        assert!(
            found.len() <= 1,
            "{name} {want:?}: several series {found:?}"
        );
        found.first().copied()
    }

    fn labels_of(&self, name: &str, want: &[(&str, &str)]) -> Option<Labels> {
        self.samples(name)
            .into_iter()
            .find(|(l, _)| {
                want.iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(l, _)| l)
    }

    fn family_type(&self, family: &str) -> Option<String> {
        self.families
            .iter()
            .find(|f| f["name"] == family)
            .map(|f| f["type"].as_str().unwrap().to_string())
    }
}

fn scrape(url: &str) -> Scrape {
    let out = Command::new(support::venv_tool("python3"))
        .args(["-c", PARSE, url])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "scraping {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Scrape {
        content_type: v["content_type"].as_str().unwrap_or("").to_string(),
        families: v["families"].as_array().unwrap().clone(),
        types: v["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
    }
}

/// Scrapes until `check` passes (it returns a description of what is missing otherwise).
fn until(
    env: &Env,
    url: &str,
    what: &str,
    mut check: impl FnMut(&Scrape) -> Result<(), String>,
) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = scrape(url);
        match check(&s) {
            Ok(()) => return s,
            Err(missing) => assert!(
                Instant::now() < deadline,
                "{what}: still {missing}\n{}",
                env.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn expect(cond: bool, missing: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(missing.into())
    }
}

fn kubectl_create(env: &Env, manifest: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("object.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    env.kubectl(&["create", "-f", file.to_str().unwrap()]);
}

fn pod(name: &str, cpu: &str, limits: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "metrics-probe"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": limits}}]}})
}

#[test]
fn metrics_follow_the_cluster_and_the_job_runs() {
    let env = Env::all_in_one(None);
    let addr = std::fs::read_to_string(env.server.data_dir.path().join("metrics.addr"))
        .expect("metrics.addr");
    let url = format!("http://{}/metrics", addr.trim());

    // --- kube-state-metrics, scheduler resources, API server, scheduler -------------
    kubectl_create(
        &env,
        &pod("probe", "250m", json!({"cpu": "500m", "memory": "128Mi"})),
    );
    // A pod no node can hold: the scheduler reports it unschedulable.
    kubectl_create(&env, &pod("too-big", "1000", json!({})));
    env.kubectl(&["get", "pods", "-n", NS]);
    let node_json: Value =
        serde_json::from_str(&env.kubectl(&["get", "nodes", "-o", "json"])).unwrap();
    let node = &node_json["items"][0];
    let node_name = node["metadata"]["name"].as_str().unwrap().to_string();
    let node_cpu: f64 = node["status"]["capacity"]["cpu"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let probe = [("namespace", NS), ("pod", "probe")];
    let s = until(&env, &url, "the probe pod running in the metrics", |s| {
        expect(
            s.value(
                "kube_pod_status_phase",
                &[("pod", "probe"), ("phase", "Running")],
            ) == Some(1.0),
            "probe not Running",
        )?;
        expect(
            s.value(
                "scheduler_schedule_attempts_total",
                &[
                    ("result", "unschedulable"),
                    ("profile", "default-scheduler"),
                ],
            )
            .is_some_and(|v| v >= 1.0),
            "no unschedulable attempt",
        )
    });
    assert!(
        s.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        s.content_type
    );
    let mut seen = std::collections::HashSet::new();
    for t in &s.types {
        assert!(seen.insert(t.clone()), "family {t} declared twice");
    }

    // KSM: container requests and limits, as kubectl created them.
    let cpu = [
        probe.as_slice(),
        &[("container", "main"), ("resource", "cpu"), ("unit", "core")],
    ]
    .concat();
    assert_eq!(
        s.value("kube_pod_container_resource_requests", &cpu),
        Some(0.25)
    );
    assert_eq!(
        s.value("kube_pod_container_resource_limits", &cpu),
        Some(0.5)
    );
    let req = s
        .labels_of("kube_pod_container_resource_requests", &cpu)
        .unwrap();
    assert_eq!(req["node"], node_name);
    assert!(!req["uid"].is_empty());
    assert_eq!(
        s.value(
            "kube_pod_container_resource_requests",
            &[("pod", "probe"), ("resource", "memory"), ("unit", "byte")]
        ),
        Some(64.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        s.family_type("kube_pod_container_resource_requests")
            .as_deref(),
        Some("gauge")
    );
    for phase in ["Pending", "Succeeded", "Failed", "Unknown"] {
        assert_eq!(
            s.value(
                "kube_pod_status_phase",
                &[("pod", "probe"), ("phase", phase)]
            ),
            Some(0.0)
        );
    }
    let info = s.labels_of("kube_pod_info", &probe).expect("kube_pod_info");
    assert_eq!(info["node"], node_name);
    assert_eq!(info["host_network"], "false");
    assert!(info.contains_key("created_by_kind") && info.contains_key("priority_class"));
    assert!(s
        .value(
            "kube_pod_owner",
            &[("pod", "probe"), ("owner_kind", "<none>")]
        )
        .is_some());
    assert!(s
        .value(
            "kube_pod_labels",
            &[("pod", "probe"), ("label_app", "metrics-probe")]
        )
        .is_some());
    assert_eq!(
        s.value(
            "kube_pod_container_status_running",
            &[("pod", "probe"), ("container", "main")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "kube_pod_container_status_waiting",
            &[("pod", "probe"), ("container", "main")]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.value(
            "kube_pod_container_status_restarts_total",
            &[("pod", "probe"), ("container", "main")]
        ),
        Some(0.0)
    );
    assert_eq!(
        s.family_type("kube_pod_container_status_restarts")
            .as_deref(),
        Some("counter")
    );
    assert!(s
        .types
        .iter()
        .any(|t| t == "kube_pod_container_status_terminated_reason"));

    // KSM: the node, as kubectl sees it.
    let n = [("node", node_name.as_str())];
    assert_eq!(
        s.value(
            "kube_node_status_capacity",
            &[n[0], ("resource", "cpu"), ("unit", "core")]
        ),
        Some(node_cpu)
    );
    for resource in ["memory", "pods", "ephemeral_storage"] {
        assert!(
            s.value(
                "kube_node_status_allocatable",
                &[n[0], ("resource", resource)]
            )
            .is_some(),
            "allocatable {resource}"
        );
    }
    assert_eq!(
        s.value(
            "kube_node_status_condition",
            &[n[0], ("condition", "Ready"), ("status", "true")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            "kube_node_status_condition",
            &[n[0], ("condition", "Ready"), ("status", "false")]
        ),
        Some(0.0)
    );
    let node_info = s.labels_of("kube_node_info", &n).expect("kube_node_info");
    for key in [
        "kubelet_version",
        "os_image",
        "internal_ip",
        "provider_id",
        "pod_cidr",
        "system_uuid",
    ] {
        assert!(
            node_info.contains_key(key),
            "kube_node_info without {key}: {node_info:?}"
        );
    }
    assert!(s
        .value(
            "kube_node_labels",
            &[n[0], ("label_kubernetes_io_hostname", node_name.as_str())]
        )
        .is_some());
    assert_eq!(s.value("kube_node_spec_unschedulable", &n), Some(0.0));

    // kube-scheduler's resources view: bound and pending pods, cores and bytes.
    let sched = s
        .labels_of(
            "kube_pod_resource_request",
            &[("pod", "probe"), ("resource", "cpu")],
        )
        .unwrap();
    assert_eq!(
        (
            sched["unit"].as_str(),
            sched["scheduler"].as_str(),
            sched["node"].as_str()
        ),
        ("cores", "default-scheduler", node_name.as_str())
    );
    assert_eq!(
        s.value(
            "kube_pod_resource_request",
            &[("pod", "probe"), ("resource", "cpu")]
        ),
        Some(0.25)
    );
    assert_eq!(
        s.value(
            "kube_pod_resource_limit",
            &[("pod", "probe"), ("resource", "memory"), ("unit", "bytes")]
        ),
        Some(128.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        s.labels_of(
            "kube_pod_resource_request",
            &[("pod", "too-big"), ("resource", "cpu")]
        )
        .unwrap()["node"],
        ""
    );

    // The API server counted kubectl's requests.
    assert!(s
        .value(
            "apiserver_request_total",
            &[
                ("verb", "POST"),
                ("resource", "pods"),
                ("scope", "resource"),
                ("code", "201"),
                ("component", "apiserver"),
                ("group", ""),
                ("version", "v1"),
                ("subresource", "")
            ]
        )
        .is_some_and(|v| v >= 2.0));
    assert!(s
        .value(
            "apiserver_request_total",
            &[
                ("verb", "LIST"),
                ("resource", "pods"),
                ("scope", "namespace"),
                ("code", "200")
            ]
        )
        .is_some_and(|v| v >= 1.0));
    assert!(s
        .value(
            "apiserver_request_duration_seconds_bucket",
            &[
                ("verb", "LIST"),
                ("resource", "pods"),
                ("scope", "namespace"),
                ("le", "60.0")
            ]
        )
        .is_some_and(|v| v >= 1.0));
    assert_eq!(
        s.family_type("apiserver_request_duration_seconds")
            .as_deref(),
        Some("histogram")
    );
    assert!(s
        .value(
            "apiserver_current_inflight_requests",
            &[("request_kind", "mutating")]
        )
        .is_some());
    assert!(s
        .value("apiserver_storage_objects", &[("resource", "pods")])
        .is_some_and(|v| v >= 2.0));

    // The scheduler.
    assert!(s
        .value(
            "scheduler_schedule_attempts_total",
            &[("result", "scheduled"), ("profile", "default-scheduler")]
        )
        .is_some_and(|v| v >= 1.0));
    assert!(s
        .value(
            "scheduler_scheduling_attempt_duration_seconds_count",
            &[("result", "scheduled")]
        )
        .is_some());
    for queue in ["active", "backoff", "unschedulable", "gated"] {
        assert!(
            s.value("scheduler_pending_pods", &[("queue", queue)])
                .is_some(),
            "queue {queue}"
        );
    }
    assert!(s
        .value("scheduler_preemption_attempts_total", &[])
        .is_some_and(|v| v >= 1.0));
    assert_eq!(
        s.family_type("scheduler_preemption_victims").as_deref(),
        Some("histogram")
    );
    // Karpenter's families come through the same listener (a family with no series yet
    // is not written, as prometheus-client does; its histograms always are).
    assert_eq!(
        s.family_type("karpenter_pods_startup_duration_seconds")
            .as_deref(),
        Some("histogram"),
        "{:?}",
        s.types
    );

    // /metrics/resources: kube-scheduler's resource metrics alone.
    let r = scrape(&format!("http://{}/metrics/resources", addr.trim()));
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
    assert_eq!(
        r.types,
        ["kube_pod_resource_request", "kube_pod_resource_limit"]
    );
    assert_eq!(
        r.value(
            "kube_pod_resource_request",
            &[("pod", "probe"), ("resource", "cpu")]
        ),
        Some(0.25)
    );

    // Deleted: its series go.
    env.kubectl(&["delete", "pod", "probe", "too-big", "-n", NS, "--wait=true"]);
    until(&env, &url, "the deleted pods' series gone", |s| {
        expect(
            s.samples("kube_pod_container_resource_requests")
                .iter()
                .all(|(l, _)| l["pod"] != "probe"),
            "probe's requests",
        )?;
        expect(
            s.samples("kube_pod_info")
                .iter()
                .all(|(l, _)| l["pod"] != "probe"),
            "probe's info",
        )?;
        expect(
            s.samples("kube_pod_resource_request")
                .iter()
                .all(|(l, _)| l["pod"] != "too-big"),
            "too-big's scheduler request",
        )
    });

    // --- job runs ----------------------------------------------------------------------
    // One that fails at once: its virtual cluster's namespace does not exist.
    let orphan_vc = env.create_vc("orphan-emr-cluster", "no-such-namespace", None);
    let orphan = env.start(&env.request(&orphan_vc, "orphan", PI, SMALL, json!({})));
    let (run, _) = env.follow(&orphan_vc, &orphan, Duration::from_secs(60), |_| {});
    assert_eq!(run["state"], "FAILED");
    // One the controller submits, cancelled before Spark gets far.
    let id = env.start(&env.request(&env.vc, "cancelled", PI, SMALL, json!({})));
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.describe(&env.vc, &id)["state"] == "PENDING" {
        assert!(Instant::now() < deadline, "never submitted\n{}", env.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    env.server.aws_ok(&[
        "emr-containers",
        "cancel-job-run",
        "--virtual-cluster-id",
        &env.vc,
        "--id",
        &id,
    ]);
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(180), |_| {});
    assert_eq!(run["state"], "CANCELLED", "{states:?}");

    let vc = env.vc.clone();
    let ours = [("virtual_cluster_id", vc.as_str()), ("namespace", NS)];
    let s = until(&env, &url, "the job-run counters", |s| {
        expect(
            s.value(
                "sparkyard_job_run_failed_total",
                &[
                    ("virtual_cluster_id", orphan_vc.as_str()),
                    ("namespace", "no-such-namespace"),
                ],
            ) == Some(1.0),
            "no failed run",
        )?;
        expect(
            s.value("sparkyard_job_run_cancelled_total", &ours) == Some(1.0),
            "no cancelled run",
        )
    });
    assert_eq!(
        s.value("sparkyard_job_run_submitted_total", &ours),
        Some(1.0)
    );
    assert_eq!(s.value("sparkyard_job_run_completed_total", &ours), None);
    assert_eq!(
        s.family_type("sparkyard_job_run_submitted").as_deref(),
        Some("counter")
    );
    // Families without series yet (no run RUNNING now, no driver created) are left out;
    // when present they have their types.
    for (family, kind) in [
        ("sparkyard_job_run_running", "gauge"),
        ("sparkyard_job_run_submit_latency_seconds", "histogram"),
        ("sparkyard_job_run_start_latency_seconds", "histogram"),
    ] {
        let t = s.family_type(family);
        assert!(t.is_none() || t.as_deref() == Some(kind), "{family}: {t:?}");
    }
    // No job-run id in any label.
    for f in &s.families {
        for sample in f["samples"].as_array().unwrap() {
            let text = sample["labels"].to_string();
            assert!(!text.contains(&id) && !text.contains(&orphan), "{text}");
        }
    }
}
