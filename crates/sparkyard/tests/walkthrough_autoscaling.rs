//! Walkthrough step 21 the seed's way, with real Spark: the two priority jobs of step 16 run
//! together on a cluster of one managed node group node, Karpenter (the seed's step 18
//! Provisioner, `kubectl apply -f`) launches a spot node for the low-priority executors,
//! and removes it `ttlSecondsAfterEmpty` (30 s) after it empties. On the way, a spot
//! interruption of that node: Karpenter drains it, launches a replacement, the low job's lost
//! executors come back there and both runs complete with their drivers untouched.
//!
//! The cluster is the seed's step 3 ClusterConfig (`serve --cluster-config`) with one real
//! m5.xlarge node (4 vCPUs, allocatable 3920m). Spark is configured as the seed's step 16
//! (`spark.executor.instances=2`, `spark.executor.cores=1`, `spark.driver.cores=1`,
//! `spark.executor.memory=2G`); only the Kubernetes CPU requests are set, so that the layout
//! does not depend on which driver asks for executors first:
//!
//! | | requests | on the node-group node (3920m) |
//! |---|---|---|
//! | two drivers (critical, ON_DEMAND) | 2 × 1500m | 3000m; 920m left |
//! | high executors (critical, ON_DEMAND) | 2 × 450m | both fit: 3900m used |
//! | low executors (low, anywhere) | 2 × 1000m (the seed's) | never fit beside the drivers: Karpenter |
//! | job runners | nothing | on the node (the only one when they start) |
//!
//! With the seed's own 1-CPU requests the node could not hold both drivers and both high
//! executors (4000m > 3920m), and a low executor bound to the node before the high executors
//! came would be preempted while its SparkContext may still be initialising (a Spark race).
//!
//! Every version of every pod and node is recorded with `kubectl get … -w -o json`, stamped
//! as it arrives, so the test sees bindings, evictions and the node's removal in order and
//! measures the emptiness delay.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jobs_env::Env;
use serde_json::Value;
use support::walkthrough::{
    self, CLUSTER, DRIVER_TEMPLATE, HP_EXECUTOR_TEMPLATE, LP_EXECUTOR_TEMPLATE, POD_TEMPLATES,
};

const JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
const NODEGROUP: &str = "eks.amazonaws.com/nodegroup";
const PROVISIONER: &str = "karpenter.sh/provisioner-name";
const CAPACITY: &str = "karpenter.sh/capacity-type";
const TTL: f64 = 30.0;

/// The seed's step 3 node group, with one real (not simulated) m5.xlarge.
const GROUP: &str = "  - name: eks-emr-cluster-ng\n    instanceType: m5.xlarge\n    desiredCapacity: 1\n    minSize: 1\n    maxSize: 10\n";

/// The seed's step 18 Provisioner, as `11-karpenter-setup.sh` applies it.
const SEED_PROVISIONER: &str = "apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: default
spec:
  requirements:
    - key: karpenter.sh/capacity-type
      operator: In
      values: [\"spot\", \"on-demand\"]
  labels:
    intent: emr-job
  provider:
    subnetSelector:
      karpenter.sh/discovery: eks-emr-cluster
    securityGroupSelector:
      karpenter.sh/discovery: eks-emr-cluster
    instanceProfile: KarpenterNodeInstanceProfile-eks-emr-cluster
    tags:
      accountingEC2Tag: KarpenterDevEnvironmentEC2
  ttlSecondsAfterEmpty: 30
";

/// One of step 16's two jobs.
struct Job {
    namespace: &'static str,
    name: &'static str,
    script: &'static str,
    executor_template: &'static str,
    /// `spark.kubernetes.executor.request.cores`, if not the seed's 1 core.
    executor_request: Option<&'static str>,
    stream_prefix: &'static str,
    /// More `spark-defaults` than the seed's two.
    defaults: &'static [(&'static str, &'static str)],
}

const LOW: Job = Job {
    namespace: "monthly-batch",
    name: "monthly-batch-low-priority-job",
    script: "low-priority-threadsleeper.py",
    executor_template: LP_EXECUTOR_TEMPLATE,
    executor_request: None,
    stream_prefix: "low-p-",
    // The seed's graceful path for executors on spot capacity.
    defaults: &[("spark.decommission.enabled", "true")],
};

const HIGH: Job = Job {
    namespace: "intra-day-batch",
    name: "intra-day-high-priority-time-sensitive-job",
    script: "high-priority-threadsleeper.py",
    executor_template: HP_EXECUTOR_TEMPLATE,
    executor_request: Some("450m"),
    stream_prefix: "high-p-",
    defaults: &[],
};

/// Seconds per unit of the thread sleepers' sleeps (the seed's: 20): tasks of 2–10 s.
const UNIT: u32 = 2;

/// A job's virtual cluster and role (steps 5, 7) and log bucket (step 8).
struct Place {
    vc: String,
    role_arn: String,
    log_bucket: String,
}

fn prepare(env: &Env, job: &Job, account: &str, region: &str) -> Place {
    let (vc, role_arn) = env.add_namespace(job.namespace, None);
    walkthrough::grant_job_policy(&env.server, job.namespace);
    let log_bucket = walkthrough::log_locations(&env.server, job.namespace, account, region);
    Place {
        vc,
        role_arn,
        log_bucket,
    }
}

/// Step 16's `aws emr-containers start-job-run` with the seed's arguments and the CPU
/// requests of the table above. Returns the run's id.
fn start(env: &Env, job: &Job, place: &Place, jobs_url: &str, templates_url: &str) -> String {
    let mut params = format!(
        "--conf spark.kubernetes.driver.podTemplateFile=\"{templates_url}/{DRIVER_TEMPLATE}\" \
         --conf spark.kubernetes.executor.podTemplateFile=\"{templates_url}/{}\" \
         --conf spark.executor.instances=2 --conf spark.executor.memory=2G \
         --conf spark.executor.cores=1 --conf spark.driver.cores=1 \
         --conf spark.kubernetes.driver.request.cores=1500m",
        job.executor_template
    );
    if let Some(request) = job.executor_request {
        params.push_str(&format!(
            " --conf spark.kubernetes.executor.request.cores={request}"
        ));
    }
    let driver = serde_json::json!({"sparkSubmitJobDriver": {
        "entryPoint": format!("{jobs_url}/{}", job.script),
        "sparkSubmitParameters": params}});
    let mut overrides =
        walkthrough::configuration_overrides(job.namespace, job.stream_prefix, &place.log_bucket);
    for (key, value) in job.defaults {
        overrides["applicationConfiguration"][0]["properties"][*key] = Value::from(*value);
    }
    env.server.aws_json(&[
        "emr-containers",
        "start-job-run",
        "--virtual-cluster-id",
        &place.vc,
        "--name",
        job.name,
        "--execution-role-arn",
        &place.role_arn,
        "--release-label",
        "emr-6.4.0-latest",
        "--job-driver",
        &driver.to_string(),
        "--configuration-overrides",
        &overrides.to_string(),
    ])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One watch event, stamped with when the test read it (seconds since the scenario began).
#[derive(Clone)]
struct Seen {
    at: f64,
    kind: String,
    obj: Value,
}

/// `kubectl get <resource> -w -o json --output-watch-events`, read as it arrives.
struct Recorder {
    child: Child,
    err: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    reader: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start(env: &Env, dir: &Path, resource: &str, t0: Instant) -> Recorder {
        let err = dir.join(format!("{resource}-watch.err"));
        let mut args = vec!["get", resource];
        if resource == "pods" {
            args.push("-A");
        }
        args.extend(["--watch", "-o", "json", "--output-watch-events"]);
        let mut child = cluster::kubectl_command(&env.kubeconfig, &args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("run kubectl get --watch");
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let reader = std::thread::spawn(move || {
            let stream =
                serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
            for event in stream {
                let Ok(event) = event else { return };
                into.lock().unwrap().push(Seen {
                    at: t0.elapsed().as_secs_f64(),
                    kind: event["type"].as_str().unwrap_or("").to_string(),
                    obj: event["object"].clone(),
                });
            }
        });
        Recorder {
            child,
            err,
            seen,
            reader: Some(reader),
        }
    }

    fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Ends the watch (it must still be running: nothing is missing) and returns what it saw.
    fn finish(&mut self) -> Vec<Seen> {
        let early = self.child.try_wait().unwrap();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        assert!(
            early.is_none(),
            "a watch ended early ({early:?}): {}",
            std::fs::read_to_string(&self.err).unwrap_or_default()
        );
        self.snapshot()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn uid_of(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

fn label<'a>(o: &'a Value, key: &str) -> &'a str {
    o["metadata"]["labels"][key].as_str().unwrap_or("")
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

fn exec_id(pod: &Value) -> u32 {
    label(pod, "spark-exec-id").parse().unwrap_or(0)
}

/// One low executor pod as watched: its Spark id, its node, when it was first seen, whether
/// it ran.
struct Exec<'a> {
    id: u32,
    node: &'a str,
    first: f64,
    ran: bool,
}

/// What Karpenter's emptiness counts: a pod still active on its node.
fn active(seen: &Seen) -> bool {
    seen.kind != "DELETED"
        && !matches!(phase(&seen.obj), "Succeeded" | "Failed")
        && seen.obj["metadata"]["deletionTimestamp"].is_null()
}

fn has_taint(node: &Value, key: &str) -> bool {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == key)
}

/// Pods as watched, one line per event, for failure messages.
fn summary(seen: &[Seen]) -> String {
    seen.iter()
        .filter(|s| !label(&s.obj, JOB_ID).is_empty())
        .map(|s| {
            let p = &s.obj;
            format!(
                "{:7.1} {:8} {}/{} uid={} phase={} node={} deleting={}",
                s.at,
                s.kind,
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                name_of(p),
                uid_of(p),
                phase(p),
                node_of(p),
                !p["metadata"]["deletionTimestamp"].is_null(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The runs' states, polled; each change goes into the timeline.
struct Runs<'a> {
    env: &'a Env,
    t0: Instant,
    runs: Vec<(&'static str, String, String, String)>,
    finals: HashMap<&'static str, Value>,
    timeline: Vec<(f64, String)>,
}

impl Runs<'_> {
    fn note(&mut self, what: String) {
        let at = self.t0.elapsed().as_secs_f64();
        println!("{at:7.1} s  {what}");
        self.timeline.push((at, what));
    }

    /// Reads every run's state once; true when all are terminal.
    fn poll(&mut self) -> bool {
        let mut all_done = true;
        for i in 0..self.runs.len() {
            let (which, vc, id, last) = self.runs[i].clone();
            let run = self.env.describe(&vc, &id);
            let state = run["state"].as_str().unwrap_or("").to_string();
            if state != last {
                self.note(format!("{which} run {id} {state}"));
                self.runs[i].3 = state.clone();
            }
            if matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED") {
                self.finals.insert(which, run);
            } else {
                all_done = false;
            }
        }
        all_done
    }

    /// Polls the runs while waiting for `check`; the bound only turns a hang into a failure.
    fn until<T>(&mut self, what: &str, limit: u64, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(limit);
        loop {
            self.poll();
            if let Some(v) = check() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never happened (after {limit} s); runs: {:?}\n{}",
                self.runs,
                self.env.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn kubectl_json(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&env.kubectl(&all)).unwrap()
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn karpenter_log(env: &Env) -> String {
    env.kubectl(&[
        "logs",
        "-n",
        "karpenter",
        "-l",
        "app.kubernetes.io/name=karpenter",
        "--tail=-1",
    ])
}

#[test]
fn karpenter_launches_spot_capacity_for_low_priority_executors_survives_an_interruption_and_removes_it_when_empty(
) {
    let began = Instant::now();
    let config_dir = tempfile::tempdir().unwrap();
    let cluster_config = support::eks::cluster_config(config_dir.path(), GROUP);
    let env = Env::serve_with(
        "# No Spark History Server: one JVM fewer on two cores.\n[history]\nenabled = false\n",
        &["--cluster-config", cluster_config.to_str().unwrap()],
    );
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path();

    // Step 3: the node group's one real node, Ready, beside the tainted control-plane node.
    let deadline = Instant::now() + Duration::from_secs(180);
    let group_node = loop {
        let nodes = items(&kubectl_json(&env, &["get", "nodes", "-l", NODEGROUP]));
        let ready = nodes.iter().find(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if let Some(node) = ready {
            assert_eq!(nodes.len(), 1, "{nodes:#?}");
            break node.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no Ready node-group node: {nodes:#?}\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let group_node_name = name_of(&group_node).to_string();
    assert_eq!(label(&group_node, NODEGROUP), "eks-emr-cluster-ng");
    assert_eq!(
        label(&group_node, "eks.amazonaws.com/capacityType"),
        "ON_DEMAND"
    );
    assert_eq!(
        label(&group_node, "node.kubernetes.io/instance-type"),
        "m5.xlarge"
    );
    assert_eq!(group_node["status"]["allocatable"]["cpu"], "3920m");
    let node_names = |env: &Env| -> BTreeSet<String> {
        items(&kubectl_json(env, &["get", "nodes"]))
            .iter()
            .map(|n| name_of(n).to_string())
            .collect()
    };
    let initial_nodes = node_names(&env);
    assert_eq!(
        initial_nodes,
        BTreeSet::from([
            group_node_name.clone(),
            "sparkyard-control-plane".to_string()
        ]),
    );

    // Steps 5, 7 and 8 for both namespaces.
    let account = walkthrough::account_id(&env.server);
    let region = env
        .server
        .aws_ok(&["configure", "get", "region"])
        .trim()
        .to_string();
    let low = prepare(&env, &LOW, &account, &region);
    let high = prepare(&env, &HIGH, &account, &region);

    // Step 14: priority classes.
    for (file, manifest) in walkthrough::priority_classes() {
        let path = work.join(file);
        std::fs::write(&path, manifest).unwrap();
        env.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    }

    // Step 15: pod templates; step 16: the two thread sleepers.
    let templates_url = walkthrough::upload(
        &env.server,
        work,
        &format!("{CLUSTER}-pod-templates-{account}-{region}"),
        &POD_TEMPLATES,
    );
    let [low_script, high_script] =
        [&LOW, &HIGH].map(|job| walkthrough::threadsleeper(job.name, UNIT));
    let jobs_url = walkthrough::upload(
        &env.server,
        work,
        &format!("{CLUSTER}-demojobs-{account}-{region}"),
        &[(LOW.script, &low_script), (HIGH.script, &high_script)],
    );

    // Step 18: the seed's Provisioner.
    let provisioner = work.join("provisioner.yaml");
    std::fs::write(&provisioner, SEED_PROVISIONER).unwrap();
    env.kubectl(&["apply", "-f", provisioner.to_str().unwrap()]);
    assert!(env.kubectl(&["get", "provisioners"]).contains("default"));

    // Step 21: both jobs, one after the other as `sh 9-…; sh 10-…` submit them.
    println!(
        "server and steps 3–18 ready after {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let t0 = Instant::now();
    let mut pod_watch = Recorder::start(&env, work, "pods", t0);
    let mut node_watch = Recorder::start(&env, work, "nodes", t0);
    let mut runs = Runs {
        env: &env,
        t0,
        runs: Vec::new(),
        finals: HashMap::new(),
        timeline: Vec::new(),
    };
    runs.note(format!(
        "nodes: {}",
        initial_nodes.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    let low_id = start(&env, &LOW, &low, &jobs_url, &templates_url);
    runs.note(format!("low run {low_id} submitted"));
    let high_id = start(&env, &HIGH, &high, &jobs_url, &templates_url);
    runs.note(format!("high run {high_id} submitted"));
    runs.runs = vec![
        ("low", low.vc.clone(), low_id.clone(), String::new()),
        ("high", high.vc.clone(), high_id.clone(), String::new()),
    ];

    // A low executor runs on a Karpenter node and has been given a task.
    let karpenter_nodes = |env: &Env| -> Vec<Value> {
        items(&kubectl_json(
            env,
            &["get", "nodes", "-l", &format!("{PROVISIONER}=default")],
        ))
    };
    let (first_node, working_exec) =
        runs.until("a low executor working on a Karpenter node", 600, || {
            let nodes = karpenter_nodes(&env);
            let pods = items(&kubectl_json(
                &env,
                &[
                    "get",
                    "pods",
                    "-n",
                    LOW.namespace,
                    "-l",
                    &format!("{JOB_ID}={low_id},spark-role=executor"),
                ],
            ));
            pods.iter().find_map(|p| {
                let node = nodes.iter().find(|n| name_of(n) == node_of(p))?;
                if phase(p) != "Running" {
                    return None;
                }
                let out =
                    cluster::kubectl(&env.kubeconfig, &["logs", "-n", LOW.namespace, name_of(p)]);
                String::from_utf8_lossy(&out.stdout)
                    .contains("Got assigned task")
                    .then(|| (node.clone(), name_of(p).to_string()))
            })
        });
    let first_name = name_of(&first_node).to_string();
    runs.note(format!(
        "{working_exec} working on {first_name} ({}, {})",
        label(&first_node, "node.kubernetes.io/instance-type"),
        label(&first_node, CAPACITY)
    ));

    // The seed's Provisioner's node: spot, its labels, none of a managed node group's.
    let labels = first_node["metadata"]["labels"].as_object().unwrap();
    assert_eq!(labels["intent"], "emr-job", "{labels:#?}");
    assert_eq!(labels[CAPACITY], "spot", "{labels:#?}");
    assert_eq!(labels[PROVISIONER], "default", "{labels:#?}");
    assert!(
        labels.keys().all(|k| !k.starts_with("eks.amazonaws.com/")),
        "{labels:#?}"
    );

    // The spot interruption, as FIS sends it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args(["ec2", "send-spot-interruption", "--node-name", &first_name])
        .arg("--data-dir")
        .arg(env.server.data_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send-spot-interruption: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.log()
    );
    let interrupted_at = t0.elapsed().as_secs_f64();
    runs.note(format!("spot interruption sent for {first_name}"));

    // Both runs to the end, then the Karpenter nodes gone.
    let deadline = Instant::now() + Duration::from_secs(900);
    while !runs.poll() {
        assert!(
            Instant::now() < deadline,
            "runs not finished after 900 s: {:?}\npods as watched:\n{}\n{}",
            runs.runs,
            summary(&pod_watch.snapshot()),
            env.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !karpenter_nodes(&env).is_empty() {
        assert!(
            Instant::now() < deadline,
            "Karpenter nodes still there 300 s after the runs ended:\n{}\n{}",
            env.kubectl(&["get", "nodes", "--show-labels"]),
            env.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let pods = pod_watch.finish();
    let nodes = node_watch.finish();
    let mut timeline = std::mem::take(&mut runs.timeline);
    let finals = std::mem::take(&mut runs.finals);
    let low_events = items(&kubectl_json(&env, &["get", "events", "-n", LOW.namespace]));
    let context = format!(
        "\nruns: {finals:#?}\npods as watched:\n{}\nlow events: {:#}",
        summary(&pods),
        Value::Array(low_events.clone())
    );

    // Both runs complete.
    for (which, namespace) in [("low", LOW.namespace), ("high", HIGH.namespace)] {
        let run = &finals[which];
        if run["state"] != "COMPLETED" {
            panic!(
                "{which} run {}{context}\nits pods' logs:\n{}\nserver log:\n{}",
                run["state"],
                cluster::pod_logs(env.server.data_dir.path(), namespace, 40, |_| true),
                env.log()
            );
        }
        assert!(
            run["stateDetails"]
                .as_str()
                .unwrap_or("")
                .starts_with("JobRun completed successfully."),
            "{which}{context}"
        );
    }

    // The nodes as watched: when each Karpenter node came and went, when it was marked
    // empty and tainted for disruption.
    #[derive(Default, Debug)]
    struct NodeLife {
        added: f64,
        deleted: Option<f64>,
        marked_empty: Option<f64>,
        disrupted: Option<f64>,
        labels: Value,
    }
    let mut lives: BTreeMap<String, NodeLife> = BTreeMap::new();
    for s in &nodes {
        let name = name_of(&s.obj).to_string();
        if label(&s.obj, PROVISIONER).is_empty() && !lives.contains_key(&name) {
            if s.kind == "DELETED" || !initial_nodes.contains(&name) {
                timeline.push((s.at, format!("node {name} {}", s.kind)));
            }
            continue;
        }
        let life = lives.entry(name.clone()).or_insert_with(|| NodeLife {
            added: s.at,
            ..NodeLife::default()
        });
        life.labels = s.obj["metadata"]["labels"].clone();
        let marked =
            !s.obj["metadata"]["annotations"]["karpenter.sh/emptiness-timestamp"].is_null();
        match (marked, life.marked_empty) {
            (true, None) => life.marked_empty = Some(s.at),
            (false, Some(_)) => life.marked_empty = None,
            _ => {}
        }
        if has_taint(&s.obj, "karpenter.sh/disrupted") && life.disrupted.is_none() {
            life.disrupted = Some(s.at);
        }
        if s.kind == "DELETED" {
            life.deleted = Some(s.at);
        }
    }
    for (name, life) in &lives {
        let l = &life.labels;
        timeline.push((
            life.added,
            format!(
                "node {name} ADDED ({}, {}, {})",
                l["node.kubernetes.io/instance-type"].as_str().unwrap_or(""),
                l[CAPACITY].as_str().unwrap_or(""),
                l["topology.kubernetes.io/zone"].as_str().unwrap_or("")
            ),
        ));
        if let Some(at) = life.disrupted {
            timeline.push((at, format!("node {name} tainted karpenter.sh/disrupted")));
        }
        if let Some(at) = life.deleted {
            timeline.push((at, format!("node {name} DELETED")));
        }
        // Every Karpenter node is the Provisioner's: its labels, none of a node group's.
        let labels = l.as_object().unwrap();
        assert_eq!(labels["intent"], "emr-job", "{name}: {labels:#?}");
        assert_eq!(labels[PROVISIONER], "default", "{name}: {labels:#?}");
        assert!(
            labels.keys().all(|k| !k.starts_with("eks.amazonaws.com/")),
            "{name}: {labels:#?}"
        );
        assert!(life.deleted.is_some(), "{name} never deleted");
    }
    let karpenter_names: BTreeSet<&str> = lives.keys().map(String::as_str).collect();
    assert!(karpenter_names.contains(first_name.as_str()), "{lives:#?}");

    // Pods by role.
    let of = |id: &str, role: Option<&str>| -> Vec<&Seen> {
        pods.iter()
            .filter(|s| {
                label(&s.obj, JOB_ID) == id
                    && match role {
                        Some(role) => label(&s.obj, "spark-role") == role,
                        None => label(&s.obj, "spark-role").is_empty(),
                    }
            })
            .collect()
    };
    for s in &pods {
        let p = &s.obj;
        if !label(p, JOB_ID).is_empty() && !node_of(p).is_empty() {
            let first = pods
                .iter()
                .find(|o| uid_of(&o.obj) == uid_of(p) && !node_of(&o.obj).is_empty())
                .map(|o| o.at);
            if first == Some(s.at) {
                timeline.push((
                    s.at,
                    format!(
                        "pod {}/{} bound to {}",
                        p["metadata"]["namespace"].as_str().unwrap_or(""),
                        name_of(p),
                        node_of(p)
                    ),
                ));
            }
        }
    }

    // Every driver and job runner stays on the node-group node for the whole run; the
    // drivers are never replaced nor deleted, and finish.
    for (which, id) in [("low", &low_id), ("high", &high_id)] {
        let drivers = of(id, Some("driver"));
        let runners = of(id, None);
        assert!(!drivers.is_empty(), "{which} driver{context}");
        assert!(!runners.is_empty(), "{which} runner{context}");
        let driver_uids: BTreeSet<&str> = drivers.iter().map(|s| uid_of(&s.obj)).collect();
        assert_eq!(driver_uids.len(), 1, "{which}: one driver{context}");
        for s in drivers.iter().chain(&runners) {
            let node = node_of(&s.obj);
            assert!(
                node.is_empty() || node == group_node_name,
                "{which}: {} on {node}{context}",
                name_of(&s.obj)
            );
        }
        for s in &drivers {
            assert_ne!(s.kind, "DELETED", "{which} driver deleted{context}");
            assert!(
                s.obj["metadata"]["deletionTimestamp"].is_null(),
                "{which} driver deleting{context}"
            );
        }
        assert_eq!(
            phase(&drivers.last().unwrap().obj),
            "Succeeded",
            "{which}{context}"
        );
        assert!(
            drivers.iter().any(|s| node_of(&s.obj) == group_node_name),
            "{which} driver never bound{context}"
        );
    }
    let low_driver = format!("spark-{low_id}-driver");
    let driver_log = env.kubectl(&["logs", "-n", LOW.namespace, &low_driver]);
    assert!(
        driver_log.contains(&format!("{} finished", LOW.name)),
        "{driver_log}{context}"
    );

    // High executors on the node group, as their template says.
    let high_execs = of(&high_id, Some("executor"));
    assert!(!high_execs.is_empty(), "{context}");
    for s in &high_execs {
        let node = node_of(&s.obj);
        assert!(node.is_empty() || node == group_node_name, "{context}");
    }

    // Low executors: where each ran.
    let low_execs = of(&low_id, Some("executor"));
    let mut low_by_uid: BTreeMap<&str, Exec<'_>> = BTreeMap::new();
    for s in &low_execs {
        let e = low_by_uid.entry(uid_of(&s.obj)).or_insert(Exec {
            id: exec_id(&s.obj),
            node: "",
            first: s.at,
            ran: false,
        });
        if !node_of(&s.obj).is_empty() {
            e.node = node_of(&s.obj);
        }
        if phase(&s.obj) == "Running" {
            e.ran = true;
        }
    }
    println!("low executors (id, node, first seen, ran):");
    for (uid, e) in &low_by_uid {
        println!(
            "  exec-{} {uid} on {} from {:.1} s, ran: {}",
            e.id, e.node, e.first, e.ran
        );
    }
    println!(
        "low executors' preStop hook (spark.decommission.enabled): {}",
        low_execs[0].obj["spec"]["containers"][0]["lifecycle"]["preStop"]
    );
    assert!(
        low_by_uid.values().any(|e| e.node == first_name && e.ran),
        "a low executor ran on {first_name}{context}"
    );
    assert!(
        low_by_uid
            .values()
            .all(|e| e.node.is_empty() || karpenter_names.contains(e.node)),
        "low executors only on Karpenter nodes{context}"
    );

    // The interruption: Karpenter drained the node (its executors evicted, gone), the low
    // job replaced them on a new Karpenter node.
    let lost: Vec<&str> = low_by_uid
        .iter()
        .filter(|(_, e)| e.node == first_name)
        .map(|(uid, _)| *uid)
        .collect();
    for uid in &lost {
        let gone = low_execs
            .iter()
            .find(|s| uid_of(&s.obj) == *uid && s.kind == "DELETED")
            .map(|s| s.at);
        assert!(
            gone.is_some_and(|at| at > interrupted_at),
            "{uid} not deleted after the interruption{context}"
        );
    }
    assert!(
        low_events
            .iter()
            .any(|e| e["reason"] == "Evicted" && e["source"]["component"] == "karpenter"),
        "Karpenter evicted the executors{context}"
    );
    let replacements: Vec<(&&str, &Exec)> = low_by_uid
        .iter()
        .filter(|(_, e)| e.first > interrupted_at)
        .collect();
    assert!(!replacements.is_empty(), "no replacement executor{context}");
    let max_first = low_by_uid
        .values()
        .filter(|e| e.first <= interrupted_at)
        .map(|e| e.id)
        .max()
        .unwrap();
    assert!(
        replacements.iter().all(|(_, e)| e.id > max_first),
        "replacements take the next ids{context}"
    );
    assert!(
        replacements
            .iter()
            .any(|(_, e)| e.ran && e.node != first_name && karpenter_names.contains(e.node)),
        "a replacement ran on a new Karpenter node{context}"
    );
    let first_gone = lives[&first_name].deleted.unwrap();
    println!(
        "interrupted node {first_name}: removed {:.1} s after the interruption",
        first_gone - interrupted_at
    );

    // Each other Karpenter node: removed no sooner than the TTL after its last pod ended.
    let mut state: HashMap<&str, (&str, bool)> = HashMap::new();
    let mut emptied: HashMap<&str, f64> = HashMap::new();
    let count_on = |node: &str, state: &HashMap<&str, (&str, bool)>| {
        state.values().filter(|(n, a)| *n == node && *a).count()
    };
    for s in &pods {
        let node = node_of(&s.obj);
        let before = if node.is_empty() {
            0
        } else {
            count_on(node, &state)
        };
        state.insert(uid_of(&s.obj), (node, active(s)));
        if !node.is_empty() && before > 0 && count_on(node, &state) == 0 {
            emptied.insert(node, s.at);
        }
    }
    let mut removed_by_ttl = 0;
    for (name, life) in &lives {
        if *name == first_name {
            continue;
        }
        let deleted = life.deleted.unwrap();
        let Some(&empty_at) = emptied.get(name.as_str()) else {
            println!("{name}: never held a pod, removed at {deleted:.1} s");
            continue;
        };
        let delay = deleted - empty_at;
        println!(
            "{name}: last pod ended at {empty_at:.1} s; marked empty +{:.2} s, tainted for \
             disruption +{:.2} s, Node deleted +{delay:.2} s (ttlSecondsAfterEmpty {TTL} s)",
            life.marked_empty.map(|m| m - empty_at).unwrap_or(f64::NAN),
            life.disrupted.map(|m| m - empty_at).unwrap_or(f64::NAN),
        );
        timeline.push((empty_at, format!("node {name}: its last pod ended")));
        // Not before the TTL. Karpenter's emptiness clock shows on the node (the
        // `karpenter.sh/emptiness-timestamp` annotation, written when it saw the node
        // empty): the Node went no sooner than the TTL after that mark — both read from the
        // one node watch, so in order and with the same delay — and the mark came no
        // sooner than the last pod's end. The pod and node watches are two streams; 0.25 s
        // is their delivery skew, whereas a clock started while a pod still ran would be
        // early by seconds.
        let marked = life
            .marked_empty
            .unwrap_or_else(|| panic!("{name} never marked empty{context}"));
        // The mark and the deletion are observed through the watch, each some milliseconds
        // after Karpenter acted: allow the same 0.25 s delivery skew (CI saw 29.95 s).
        assert!(
            deleted - marked >= TTL - 0.25,
            "{name} removed {:.2} s after Karpenter marked it empty, before its {TTL} s TTL{context}",
            deleted - marked
        );
        assert!(
            marked >= empty_at - 0.25,
            "{name} marked empty {:.2} s before its last pod ended{context}",
            empty_at - marked
        );
        removed_by_ttl += 1;
    }
    assert!(removed_by_ttl >= 1, "{lives:#?}{context}");

    // Only the node group's node (and the control plane) is left.
    assert_eq!(node_names(&env), initial_nodes);
    let claims = items(&kubectl_json(&env, &["get", "nodeclaims"]));
    assert!(claims.is_empty(), "{claims:#?}");

    // Karpenter's story, in its log.
    let log = karpenter_log(&env);
    for line in [
        "found provisionable pod(s)",
        "created nodeclaim",
        "launched nodeclaim",
        "registered nodeclaim",
        "initialized nodeclaim",
        "initiating delete from interruption message",
        "added TTL to empty node",
        "disrupting nodeclaim(s) via delete",
        "(Empty)",
        "deleted node",
    ] {
        assert!(log.contains(line), "no {line:?} in Karpenter's log:\n{log}");
    }

    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("timeline (s since the scenario began):");
    for (at, what) in &timeline {
        println!("  {at:7.1}  {what}");
    }
    println!(
        "scenario {:.0} s, test {:.0} s",
        t0.elapsed().as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}
