//! Walkthrough steps 14–17 the seed's way, on a congested node: the real `aws` CLI and
//! `kubectl`, sparkyard's controller, real Spark.
//!
//! - Step 14: the seed's four PriorityClasses, `kubectl apply -f` one file each.
//! - Step 15: its three pod templates, `aws s3 cp` into the pod-templates bucket.
//! - Step 16: `aws emr-containers start-job-run` of the low-priority job on `monthly-batch`
//!   and, once its executors work, of the high-priority job on `intra-day-batch`, each with
//!   the templates as `s3://` URIs in `sparkSubmitParameters` (fetched with the run's role)
//!   and its thread sleeper from the demo-jobs bucket.
//! - Step 17: the low job loses one executor to the high job, keeps its driver, gets the
//!   executor back under the next id once the high job gives room back, and both runs
//!   complete; the preempted executor's output is in the low run's S3 log location.
//!
//! One on-demand node, sized in CPU requests (memory is plentiful; the runner pods request
//! nothing), so that the high job's second executor fits only by preempting:
//!
//! | | requests | on the 2-CPU node |
//! |---|---|---|
//! | low app: driver + 2 executors | 200m + 2 × 700m | 1600m used, 400m free |
//! | high driver | 200m | fits: 200m free |
//! | high executors | 2 × 200m | one fits; the other preempts a low executor (700m) |
//! | low replacement `exec-3` | 700m | waits until a high executor has gone |
//!
//! Every version of every pod is recorded with `kubectl get pods -A -w -o json`, so the test
//! sees what polling would miss: the victim's `DisruptionTarget` condition, the order of
//! bindings and deletions, and that the low driver never changed.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use jobs_env::Env;
use serde_json::Value;
use support::walkthrough::{
    self, CLUSTER, DRIVER_TEMPLATE, HP_EXECUTOR_TEMPLATE, LP_EXECUTOR_TEMPLATE, POD_TEMPLATES,
};

const NODE: &str = "spark-node";
const JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
const CAPACITY_TYPE: &str = "eks.amazonaws.com/capacityType";

/// One of step 16's two jobs.
struct Job {
    namespace: &'static str,
    name: &'static str,
    script: &'static str,
    /// Seconds per unit of the thread sleeper's sleeps (the seed's: 20).
    unit: u32,
    executor_template: &'static str,
    executor_cores: &'static str,
    stream_prefix: &'static str,
}

const LOW: Job = Job {
    namespace: "monthly-batch",
    name: "monthly-batch-low-priority-job",
    script: "low-priority-threadsleeper.py",
    unit: 15,
    executor_template: LP_EXECUTOR_TEMPLATE,
    executor_cores: "700m",
    stream_prefix: "low-p-",
};

const HIGH: Job = Job {
    namespace: "intra-day-batch",
    name: "intra-day-high-priority-time-sensitive-job",
    script: "high-priority-threadsleeper.py",
    unit: 1,
    executor_template: HP_EXECUTOR_TEMPLATE,
    executor_cores: "200m",
    stream_prefix: "high-p-",
};

/// A job's virtual cluster and role (steps 5, 7) and log bucket (step 8).
struct Place {
    vc: String,
    role_arn: String,
    log_bucket: String,
}

/// Steps 5, 7 and 8 for the job's namespace.
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

/// Step 16's `aws emr-containers start-job-run`, with the seed's arguments but memory and
/// CPU requests sized for the node (table above). Returns the run's id.
fn start(env: &Env, job: &Job, place: &Place, jobs_url: &str, templates_url: &str) -> String {
    let params = format!(
        "--conf spark.kubernetes.driver.podTemplateFile=\"{templates_url}/{DRIVER_TEMPLATE}\" \
         --conf spark.kubernetes.executor.podTemplateFile=\"{templates_url}/{}\" \
         --conf spark.executor.instances=2 --conf spark.executor.memory=512m \
         --conf spark.executor.cores=1 --conf spark.driver.cores=1 \
         --conf spark.driver.memory=512m --conf spark.kubernetes.driver.request.cores=200m \
         --conf spark.kubernetes.executor.request.cores={}",
        job.executor_template, job.executor_cores
    );
    let driver = serde_json::json!({"sparkSubmitJobDriver": {
        "entryPoint": format!("{jobs_url}/{}", job.script),
        "sparkSubmitParameters": params}});
    let overrides =
        walkthrough::configuration_overrides(job.namespace, job.stream_prefix, &place.log_bucket);
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

/// `kubectl get pods -A -w -o json --output-watch-events`, running for the whole scenario.
struct PodWatch {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

/// One watch event: `ADDED`, `MODIFIED` or `DELETED` and the pod as it was then.
struct Seen {
    kind: String,
    pod: Value,
}

impl PodWatch {
    fn start(env: &Env, dir: &Path) -> PodWatch {
        let out = dir.join("pods-watch.json");
        let err = dir.join("pods-watch.err");
        let child = cluster::kubectl_command(
            &env.kubeconfig,
            &[
                "get",
                "pods",
                "-A",
                "--watch",
                "-o",
                "json",
                "--output-watch-events",
            ],
        )
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run kubectl get pods --watch");
        PodWatch { child, out, err }
    }

    /// Ends the watch (it must still be running: none of the scenario is missing) and
    /// returns what it saw, in order.
    fn finish(&mut self) -> Vec<Seen> {
        let early = self.child.try_wait().unwrap();
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(
            early.is_none(),
            "the pod watch ended early ({early:?}): {}",
            std::fs::read_to_string(&self.err).unwrap_or_default()
        );
        let text = std::fs::read_to_string(&self.out).unwrap();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map(|event| {
                let event = event.expect("kubectl's watch output is JSON");
                Seen {
                    kind: event["type"].as_str().unwrap_or("").to_string(),
                    pod: event["object"].clone(),
                }
            })
            .collect()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn name_of(pod: &Value) -> &str {
    pod["metadata"]["name"].as_str().unwrap_or("")
}

fn uid_of(pod: &Value) -> &str {
    pod["metadata"]["uid"].as_str().unwrap_or("")
}

fn label<'a>(pod: &'a Value, key: &str) -> &'a str {
    pod["metadata"]["labels"][key].as_str().unwrap_or("")
}

fn exec_id(pod: &Value) -> u32 {
    label(pod, "spark-exec-id").parse().unwrap_or(0)
}

fn disruption_target(pod: &Value) -> Option<&Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
}

/// Done with: deleted, or ended (its requests no longer count on the node).
fn released(seen: &Seen) -> bool {
    seen.kind == "DELETED"
        || matches!(
            seen.pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

/// The watch, one line per event, for failure messages.
fn summary(seen: &[Seen]) -> String {
    seen.iter()
        .enumerate()
        .map(|(i, s)| {
            let p = &s.pod;
            format!(
                "{i:4} {:8} {}/{} uid={} phase={} node={} nominated={} deleting={} disruption={}",
                s.kind,
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                name_of(p),
                uid_of(p),
                p["status"]["phase"].as_str().unwrap_or("-"),
                p["spec"]["nodeName"].as_str().unwrap_or("-"),
                p["status"]["nominatedNodeName"].as_str().unwrap_or("-"),
                !p["metadata"]["deletionTimestamp"].is_null(),
                disruption_target(p).is_some()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The seed's template as the pod carries it: priority class and value, the on-demand
/// selector, and the template's two volumes.
fn assert_templated(pod: &Value, class: &str, priority: i64, on_demand: bool, context: &str) {
    let spec = &pod["spec"];
    let name = name_of(pod);
    assert_eq!(spec["priorityClassName"], class, "{name}{context}");
    assert_eq!(spec["priority"], priority, "{name}{context}");
    assert_eq!(
        spec["nodeSelector"][CAPACITY_TYPE].as_str(),
        on_demand.then_some("ON_DEMAND"),
        "{name}{context}"
    );
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    for volume in ["source-data-volume", "metrics-files-volume"] {
        assert!(volumes.contains(&volume), "{name}: {volumes:?}{context}");
    }
}

fn gunzip(gz: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_string(&mut text)
        .expect("a gzip object");
    text
}

#[test]
fn a_high_priority_run_preempts_a_low_priority_executor_and_both_complete() {
    let env = Env::serve(&format!(
        "[[cluster.nodes]]\nname = \"{NODE}\"\ncpu = \"2\"\nmemory = \"16Gi\"\n\
         capacity = {{ cpu = \"2\", memory = \"16Gi\" }}\n\
         # What the seed's driver and high-priority executor templates select.\n\
         labels = {{ \"{CAPACITY_TYPE}\" = \"ON_DEMAND\" }}\n\n\
         # No Spark History Server: one JVM fewer on two cores.\n\
         [history]\nenabled = false\n\n\
         # Container Insights samples often enough to see the node fill up.\n\
         [container-insights]\ninterval = \"10s\"\n"
    ));
    let node =
        serde_json::from_str::<Value>(&env.kubectl(&["get", "node", NODE, "-o", "json"])).unwrap();
    assert_eq!(node["metadata"]["labels"][CAPACITY_TYPE], "ON_DEMAND");
    assert_eq!(node["status"]["allocatable"]["cpu"], "2");
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path();

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
    let classes: Value =
        serde_json::from_str(&env.kubectl(&["get", "priorityclasses", "-o", "json"])).unwrap();
    let class = |name: &str| {
        classes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| name_of(c) == name)
            .map(|c| (c["value"].as_i64().unwrap(), c["globalDefault"] == true))
    };
    assert_eq!(class("critical-priority"), Some((400, true)));
    assert_eq!(class("realtime-priority"), Some((300, false)));
    assert_eq!(class("high-priority"), Some((200, false)));
    assert_eq!(class("low-priority"), Some((100, false)));

    // Step 15: pod templates; step 16: the two thread sleepers.
    let templates_url = walkthrough::upload(
        &env.server,
        work,
        &format!("{CLUSTER}-pod-templates-{account}-{region}"),
        &POD_TEMPLATES,
    );
    let [low_script, high_script] =
        [&LOW, &HIGH].map(|job| walkthrough::threadsleeper(job.name, job.unit));
    let jobs_url = walkthrough::upload(
        &env.server,
        work,
        &format!("{CLUSTER}-demojobs-{account}-{region}"),
        &[(LOW.script, &low_script), (HIGH.script, &high_script)],
    );

    let mut watch = PodWatch::start(&env, work);
    let started = Instant::now();
    let low_id = start(&env, &LOW, &low, &jobs_url, &templates_url);
    let low_driver = format!("spark-{low_id}-driver");

    // The low job holds the node: its driver and both executors run and have begun work
    // (deleting an executor while SparkContext still initialises trips a Spark race, see
    // reference/spark-k8s-api.md §5).
    let deadline = Instant::now() + Duration::from_secs(420);
    loop {
        let pods: Value = serde_json::from_str(&env.kubectl(&[
            "get",
            "pods",
            "-n",
            LOW.namespace,
            "-l",
            &format!("{JOB_ID}={low_id},spark-role=executor"),
            "-o",
            "json",
        ]))
        .unwrap();
        let running = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        if running == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the low-priority executors never ran: {:#}\n{}",
            env.describe(&low.vc, &low_id),
            env.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(8));
    let low_driver_uid_now = || {
        env.kubectl(&[
            "get",
            "pod",
            "-n",
            LOW.namespace,
            &low_driver,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let low_driver_uid = low_driver_uid_now();
    eprintln!(
        "low run {low_id} running after {:.0} s; starting the high-priority run",
        started.elapsed().as_secs_f64()
    );
    let high_id = start(&env, &HIGH, &high, &jobs_url, &templates_url);

    // Both runs to the end; which ended first.
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut finished: Vec<(&str, Value)> = Vec::new();
    while finished.len() < 2 {
        for (which, place, id) in [("low", &low, &low_id), ("high", &high, &high_id)] {
            if finished.iter().any(|(w, _)| *w == which) {
                continue;
            }
            let run = env.describe(&place.vc, id);
            if matches!(
                run["state"].as_str(),
                Some("COMPLETED" | "FAILED" | "CANCELLED")
            ) {
                eprintln!(
                    "{which} run {id} {} after {:.0} s",
                    run["state"],
                    started.elapsed().as_secs_f64()
                );
                finished.push((which, run));
            }
        }
        assert!(
            Instant::now() < deadline,
            "runs not finished after 900 s: {finished:?}\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let seen = watch.finish();
    let events: Value =
        serde_json::from_str(&env.kubectl(&["get", "events", "-n", LOW.namespace, "-o", "json"]))
            .unwrap();
    let events = events["items"].as_array().cloned().unwrap_or_default();
    let context = format!(
        "\nruns: {finished:#?}\nlow events: {:#}\npods as watched:\n{}",
        Value::Array(events.clone()),
        summary(&seen)
    );

    // Both complete, the high-priority one first.
    for (which, run) in &finished {
        assert_eq!(run["state"], "COMPLETED", "{which}{context}");
        assert!(
            run["stateDetails"]
                .as_str()
                .unwrap_or("")
                .starts_with("JobRun completed successfully."),
            "{which}{context}"
        );
    }
    assert_eq!(finished[0].0, "high", "{context}");
    // Steps 16 and 21 submit natively: s3:// entry point, s3:// pod templates (issue 15).
    for (job, id) in [(&LOW, &low_id), (&HIGH, &high_id)] {
        let runner_log = env.kubectl(&[
            "logs",
            "-n",
            job.namespace,
            "-l",
            &format!("job-name={id}"),
            "--tail=-1",
        ]);
        assert!(
            runner_log.contains("sparkyard: native submission (no JVM)"),
            "{}: {runner_log}",
            job.name
        );
    }

    // Every pod of both runs as its template (from S3) made it.
    let of_run = |id: &str, role: &str| -> Vec<(usize, &Seen)> {
        seen.iter()
            .enumerate()
            .filter(|(_, s)| label(&s.pod, JOB_ID) == id && label(&s.pod, "spark-role") == role)
            .collect()
    };
    let (low_drivers, high_drivers) = (of_run(&low_id, "driver"), of_run(&high_id, "driver"));
    let (low_execs, high_execs) = (of_run(&low_id, "executor"), of_run(&high_id, "executor"));
    assert!(
        !high_drivers.is_empty() && !low_execs.is_empty(),
        "{context}"
    );
    for (pods, class, priority, on_demand) in [
        (&low_drivers, "critical-priority", 400, true),
        (&high_drivers, "critical-priority", 400, true),
        (&low_execs, "low-priority", 100, false),
        (&high_execs, "critical-priority", 400, true),
    ] {
        for (i, s) in pods {
            let context = format!(" (event {i}){context}");
            assert_templated(&s.pod, class, priority, on_demand, &context);
        }
    }

    // The low driver was never touched: one pod, one uid, never deleting nor disrupted,
    // and it finished its work.
    assert!(!low_drivers.is_empty(), "{context}");
    for (i, s) in &low_drivers {
        assert_eq!(
            name_of(&s.pod),
            low_driver,
            "one driver (event {i}){context}"
        );
        assert_eq!(uid_of(&s.pod), low_driver_uid, "event {i}{context}");
        assert_ne!(s.kind, "DELETED", "event {i}{context}");
        assert!(
            s.pod["metadata"]["deletionTimestamp"].is_null(),
            "event {i}{context}"
        );
        assert!(disruption_target(&s.pod).is_none(), "event {i}{context}");
    }
    let (_, last) = low_drivers.last().unwrap();
    assert_eq!(last.pod["status"]["phase"], "Succeeded", "{context}");
    assert_eq!(low_driver_uid_now(), low_driver_uid, "{context}");
    let driver_log = env.kubectl(&["logs", "-n", LOW.namespace, &low_driver]);
    assert!(
        driver_log.contains(&format!("{} finished", LOW.name)),
        "{driver_log}{context}"
    );
    let low_driver_done = low_drivers
        .iter()
        .find(|(_, s)| s.pod["status"]["phase"] == "Succeeded")
        .map(|(i, _)| *i)
        .unwrap();

    // Exactly one low executor was preempted, by a high executor, on the node.
    let preempted: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "Preempted")
        .collect();
    assert_eq!(
        preempted.len(),
        1,
        "exactly one executor gives way{context}"
    );
    let victim = preempted[0]["involvedObject"]["name"].as_str().unwrap();
    let victim_uid = preempted[0]["involvedObject"]["uid"].as_str().unwrap();
    let victim_seen: Vec<&(usize, &Seen)> = low_execs
        .iter()
        .filter(|(_, s)| uid_of(&s.pod) == victim_uid)
        .collect();
    assert!(
        !victim_seen.is_empty(),
        "{victim} is not a low executor{context}"
    );
    let victim_id = exec_id(&victim_seen[0].1.pod);
    assert!(
        [1, 2].contains(&victim_id),
        "only a first executor may be preempted, not {victim}{context}"
    );
    let preemptor = high_execs
        .iter()
        .find(|(_, s)| {
            preempted[0]["message"] == format!("Preempted by pod {} on node {NODE}", uid_of(&s.pod))
        })
        .map(|(_, s)| uid_of(&s.pod))
        .unwrap_or_else(|| {
            panic!(
                "the message names no high executor: {}{context}",
                preempted[0]["message"]
            )
        });
    assert!(
        high_execs
            .iter()
            .any(|(_, s)| uid_of(&s.pod) == preemptor
                && s.pod["status"]["nominatedNodeName"] == NODE),
        "the preemptor was nominated to {NODE}{context}"
    );

    // The victim left as kube-scheduler makes it leave: DisruptionTarget, a graceful
    // deletion, gone — before the low driver finished — and it was the only one.
    let disrupted = victim_seen
        .iter()
        .find_map(|(_, s)| disruption_target(&s.pod))
        .unwrap_or_else(|| panic!("{victim} never had DisruptionTarget{context}"));
    assert_eq!(disrupted["status"], "True", "{context}");
    assert_eq!(disrupted["reason"], "PreemptionByScheduler", "{context}");
    let victim_gone = victim_seen
        .iter()
        .find(|(_, s)| s.kind == "DELETED")
        .map(|(i, _)| *i)
        .unwrap_or_else(|| panic!("{victim} was never deleted{context}"));
    assert!(victim_gone < low_driver_done, "{context}");
    assert!(
        low_execs
            .iter()
            .chain(&low_drivers)
            .chain(&high_execs)
            .chain(&high_drivers)
            .all(|(_, s)| uid_of(&s.pod) == victim_uid || disruption_target(&s.pod).is_none()),
        "only the victim is disrupted{context}"
    );

    // Its replacement has the next id, waited while the high job held the room, bound only
    // once a high executor had gone, and ran.
    let replacement: Vec<&(usize, &Seen)> = low_execs
        .iter()
        .filter(|(_, s)| exec_id(&s.pod) == 3)
        .collect();
    assert!(!replacement.is_empty(), "no exec-3{context}");
    let replacement_name = name_of(&replacement[0].1.pod).to_string();
    assert!(
        low_execs.iter().all(|(_, s)| exec_id(&s.pod) <= 3),
        "one replacement only{context}"
    );
    let bound = replacement
        .iter()
        .find(|(_, s)| s.pod["spec"]["nodeName"] == NODE)
        .map(|(i, _)| *i)
        .unwrap_or_else(|| panic!("{replacement_name} never bound{context}"));
    let first_high_exec_released = high_execs
        .iter()
        .find(|(_, s)| released(s))
        .map(|(i, _)| *i)
        .unwrap_or_else(|| panic!("no high executor ended{context}"));
    assert!(
        victim_gone < bound && first_high_exec_released < bound,
        "{replacement_name} bound at event {bound}, the victim gone at {victim_gone}, the first high executor released at {first_high_exec_released}{context}"
    );
    assert!(
        events.iter().any(|e| e["reason"] == "FailedScheduling"
            && e["involvedObject"]["name"] == replacement_name.as_str()),
        "{replacement_name} should have waited with FailedScheduling{context}"
    );
    assert!(
        replacement
            .iter()
            .any(|(_, s)| s.pod["status"]["phase"] == "Running"),
        "{replacement_name} ran{context}"
    );
    eprintln!(
        "{victim} (exec-{victim_id}) preempted, {replacement_name} replaced it; scenario checked after {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The preempted executor's output in the low run's S3 log location: stdout and stderr
    // apart, the executor's log4j lines (and its SIGTERM) in stderr.
    let prefix = format!(
        "s3://{}/{}/jobs/{low_id}/containers/spark-{low_id}/{victim}/",
        low.log_bucket, low.vc
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let listing = loop {
        let out = env.server.aws(&["s3", "ls", &prefix]);
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        if listing.contains("stdout.gz") && listing.contains("stderr.gz") {
            break listing;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} holds no stdout.gz and stderr.gz:\n{listing}\nthe run's logs:\n{}",
            env.server.aws_ok(&[
                "s3",
                "ls",
                "--recursive",
                &format!("s3://{}/", low.log_bucket)
            ])
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let object = |stream: &str| {
        let local = work.join(format!("victim-{stream}.gz"));
        env.server.aws_ok(&[
            "s3",
            "cp",
            &format!("{prefix}{stream}.gz"),
            local.to_str().unwrap(),
        ]);
        gunzip(&std::fs::read(&local).unwrap())
    };
    let (stdout, stderr) = (object("stdout"), object("stderr"));
    assert!(
        !stdout.contains("CoarseGrainedExecutorBackend"),
        "the log4j output belongs in stderr.gz, not stdout.gz:\n{stdout}"
    );
    for needed in [
        "CoarseGrainedExecutorBackend",
        &format!("Starting executor ID {victim_id} "),
        "RECEIVED SIGNAL TERM",
    ] {
        assert!(
            stderr.contains(needed),
            "{needed:?} missing from {prefix}stderr.gz ({listing}):\n{stderr}"
        );
    }

    // Step 17 in the console: the low run's timeline and the node's Reserved CPU
    // (tests/console/preemption.mjs, in Debian's chromium).
    support::console::BrowserTools::find().run(
        "preemption.mjs",
        &[
            ("CONSOLE", support::console::base(&env.server)),
            ("SIGNIN_LINK", support::console::signin_link(&env.server)),
            ("VC", low.vc.clone()),
            ("RUN_ID", low_id.clone()),
            ("VICTIM_ID", victim_id.to_string()),
            ("REPLACEMENT_ID", "3".to_string()),
            ("NODE", NODE.to_string()),
        ],
        || env.log(),
    );
    eprintln!("done after {:.0} s", started.elapsed().as_secs_f64());
}
