//! Job runs end to end: the real `aws` CLI starts runs, the controller turns them into
//! Kubernetes objects, and real `spark-submit` runs them on the embedded cluster (walkthrough
//! steps 5, 7 and 9–10). Spark runs are heavy on a 2-core machine, so the tests that run Spark
//! take turns (one lock), and ask for small resources.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jobs_env::{script, shared_dir, Env, NS};
use serde_json::{json, Value};
use support::walkthrough;

/// One Spark-running test at a time.
static SPARK: Mutex<()> = Mutex::new(());

fn spark_turn() -> std::sync::MutexGuard<'static, ()> {
    SPARK.lock().unwrap_or_else(|e| e.into_inner())
}

const PI: &str = "local:///usr/lib/spark/examples/src/main/python/pi.py";
/// The seed's parameters with small memory and CPU requests, so that a driver and two
/// executors fit the node and the machine.
const SMALL: &str = "--conf spark.executor.instances=2 --conf spark.executor.memory=512m --conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.driver.memory=512m --conf spark.kubernetes.executor.request.cores=250m --conf spark.kubernetes.driver.request.cores=250m";

/// Walkthrough steps 9–10: pi-4 goes PENDING → SUBMITTED → RUNNING → COMPLETED, with the
/// runner, `spark-<id>-driver` and two `pythonpi-…-exec-N` pods along the way.
#[test]
fn pi_runs_through_every_state_with_emrs_pods() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    let started = Instant::now();
    let id = env.start(&env.request(&env.vc, "pi-4", PI, SMALL, json!({})));
    let mut pods_seen: Vec<String> = Vec::new();
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(480), |run| {
        if run["state"] == "RUNNING" {
            for pod in env.pod_names(None) {
                if !pods_seen.contains(&pod) {
                    pods_seen.push(pod);
                }
            }
        }
    });
    eprintln!(
        "pi-4: {states:?} in {:?}; pods {pods_seen:?}",
        started.elapsed()
    );
    assert_eq!(run["state"], "COMPLETED", "{run:#}\n{}", env.log());
    let details = run["stateDetails"].as_str().unwrap();
    assert!(
        details.starts_with("JobRun completed successfully. It ran for "),
        "{details}"
    );
    assert!(run["finishedAt"].is_string());
    // Every state the run went through, from the controller's log (a poll may miss a state
    // that lasts less than its interval: SUBMITTED does, with native submission).
    let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    let changes: Vec<String> = ansi
        .replace_all(&env.log(), "")
        .lines()
        .filter(|l| l.contains("job run state changed") && l.contains(&format!("job_run={id}")))
        .filter_map(|l| {
            l.split(" to=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .collect();
    assert_eq!(
        changes,
        ["SUBMITTED", "RUNNING", "COMPLETED"],
        "{}",
        env.log()
    );
    let runner = regex::Regex::new(&format!("^{id}-[a-z0-9]{{5}}$")).unwrap();
    assert!(
        pods_seen.iter().any(|p| runner.is_match(p)),
        "no runner pod in {pods_seen:?}"
    );
    assert!(
        pods_seen.contains(&format!("spark-{id}-driver")),
        "no driver in {pods_seen:?}"
    );
    let executor = regex::Regex::new("^pythonpi-[0-9a-f]{16}-exec-[12]$").unwrap();
    let executors = pods_seen.iter().filter(|p| executor.is_match(p)).count();
    assert_eq!(executors, 2, "executors in {pods_seen:?}");
    // The runner submitted natively (issue 15): its log says so and keeps spark-submit's
    // watcher lines.
    let runner_log = env.kubectl(&[
        "logs",
        "-n",
        NS,
        "-l",
        &format!("job-name={id}"),
        "--tail=-1",
    ]);
    for line in [
        "sparkyard: native submission (no JVM): creating driver pod",
        "LoggingPodStatusWatcherImpl: Application status for spark-",
        "(phase: Succeeded)",
    ] {
        assert!(
            runner_log.contains(line),
            "{line} missing from:\n{runner_log}"
        );
    }
    // The role's service accounts and the namespace's emr-containers RBAC exist.
    let sas = env.kubectl(&["get", "serviceaccounts", "-n", NS, "-o", "name"]);
    for role in ["client", "driver", "executor"] {
        assert!(
            sas.contains(&format!("emr-containers-sa-spark-{role}-123456789012-")),
            "{sas}"
        );
    }
    env.kubectl(&["get", "role", "emr-containers", "-n", NS]);
    env.kubectl(&["get", "rolebinding", "emr-containers", "-n", NS]);
}

/// A driver that fails ends FAILED / USER_ERROR with stateDetails that point at the logs;
/// a conf spark-submit refuses fails USER_ERROR with spark-submit's error; a run on a namespace that does not exist fails CLUSTER_UNAVAILABLE; an unsupported
/// classification fails VALIDATION_ERROR. With `ttl-seconds-after-finished = 0` the failed
/// runs' Jobs, pods and ConfigMaps are deleted once they end; their records stay.
#[test]
fn failures_carry_emrs_reasons() {
    let _turn = spark_turn();
    let mut env = Env::serve("ttl-seconds-after-finished = 0\n");
    env.walkthrough_setup(NS, None);
    let dir = shared_dir();
    let failing = script(&dir, "fail.py", "import sys\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('fails').getOrCreate()\nprint('about to fail')\nsys.exit(3)\n");
    let id = env.start(&env.request(&env.vc, "fails", &failing, SMALL, json!({})));
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(300), |_| {});
    assert_eq!(run["state"], "FAILED", "{states:?} {run:#}\n{}", env.log());
    assert_eq!(run["failureReason"], "USER_ERROR");
    let details = run["stateDetails"].as_str().unwrap();
    assert!(
        details.contains("s3://monthly-batch-logs-123456789012-us-east-1/")
            && details.contains(&format!("spark-{id}-driver")),
        "{details}"
    );

    // A conf value spark-submit refuses: the run fails with spark-submit's own error.
    let refused = env.start(&env.request(
        &env.vc,
        "refused-conf",
        PI,
        &format!("{SMALL} --conf spark.ui.port=seven"),
        json!({}),
    ));
    let (run, _) = env.follow(&env.vc, &refused, Duration::from_secs(120), |_| {});
    assert_eq!(
        (run["state"].as_str(), run["failureReason"].as_str()),
        (Some("FAILED"), Some("USER_ERROR")),
        "{run:#}"
    );
    assert_eq!(
        run["stateDetails"],
        "JobRun submission failed: java.lang.IllegalArgumentException: spark.ui.port should be int, but was seven",
        "{}",
        env.log()
    );
    // Both finished runs' objects go (the TTL is 0): runner Jobs and their pods, drivers and
    // executors, the runs' ConfigMaps; DescribeJobRun still answers.
    for finished in [&id, &refused] {
        let selector = format!("emr-containers.amazonaws.com/job.id={finished}");
        let objects = || {
            env.kubectl(&[
                "get",
                "jobs,pods,configmaps",
                "-n",
                NS,
                "-l",
                &selector,
                "-o",
                "name",
            ])
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !objects().trim().is_empty() {
            assert!(
                Instant::now() < deadline,
                "objects of finished run {finished} left: {}\n{}",
                objects(),
                env.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let config_map = format!("{finished}-spark-conf");
        let all = env.kubectl(&["get", "configmaps", "-n", NS, "-o", "name"]);
        assert!(!all.contains(&config_map), "{all}");
        assert_eq!(env.describe(&env.vc, finished)["state"], "FAILED");
    }
    assert!(env
        .log()
        .contains("deleting a finished job run's objects (ttl-seconds-after-finished)"));

    let bad = env.start(&env.request(&env.vc, "bad-classification", PI, SMALL, json!({
        "configurationOverrides": {"applicationConfiguration": [{"classification": "hdfs-site", "properties": {"a": "b"}}]}})));
    let (run, _) = env.follow(&env.vc, &bad, Duration::from_secs(60), |_| {});
    assert_eq!(
        (run["state"].as_str(), run["failureReason"].as_str()),
        (Some("FAILED"), Some("VALIDATION_ERROR"))
    );
    assert_eq!(
        run["stateDetails"],
        "JobRun submission failed. Classification hdfs-site not supported."
    );

    let orphan_vc = env.create_vc("orphan-emr-cluster", "no-such-namespace", None);
    let orphan = env.start(&env.request(&orphan_vc, "orphan", PI, SMALL, json!({})));
    let (run, _) = env.follow(&orphan_vc, &orphan, Duration::from_secs(60), |_| {});
    assert_eq!(
        (run["state"].as_str(), run["failureReason"].as_str()),
        (Some("FAILED"), Some("CLUSTER_UNAVAILABLE"))
    );
    assert!(
        run["stateDetails"]
            .as_str()
            .unwrap()
            .contains("namespace no-such-namespace does not exist"),
        "{run:#}"
    );
}

/// CancelJobRun on a running job: CANCEL_PENDING, then CANCELLED once no pod is left.
#[test]
fn cancel_leaves_no_pods() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    let dir = shared_dir();
    let sleeper = script(&dir, "sleeper.py", "import time\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('sleeper').getOrCreate()\nspark.sparkContext.parallelize(range(2), 2).foreach(lambda x: time.sleep(300))\n");
    let id = env.start(&env.request(&env.vc, "sleeper", &sleeper, SMALL, json!({})));
    let deadline = Instant::now() + Duration::from_secs(300);
    while env.describe(&env.vc, &id)["state"] != "RUNNING" {
        assert!(Instant::now() < deadline, "never RUNNING\n{}", env.log());
        std::thread::sleep(Duration::from_millis(500));
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
    assert_eq!(run["state"], "CANCELLED", "{states:?}\n{}", env.log());
    assert_eq!(run["stateDetails"], "JobRun CANCELLED successfully.");
    let left = env.pod_names(Some(&format!("emr-containers.amazonaws.com/job.id={id}")));
    assert!(left.is_empty(), "pods left after cancel: {left:?}");
    let all = env.pod_names(None);
    assert!(
        all.iter()
            .all(|p| !p.contains(&id) && !p.starts_with("sleeper-")),
        "pods left: {all:?}"
    );
}

/// `maxAttempts: 2` with a driver that fails on its first attempt (a marker file in a
/// hostPath volume of the driver's pod template) ends COMPLETED on attempt 2.
#[test]
fn a_retry_policy_recreates_a_failed_driver() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    let dir = shared_dir();
    let markers = dir.join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let template = dir.join("driver.yaml");
    std::fs::write(&template, format!(
        "apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n    - name: markers\n      hostPath:\n        path: {}\n  containers:\n    - name: spark-kubernetes-driver\n      volumeMounts:\n        - name: markers\n          mountPath: /markers\n",
        markers.display()
    )).unwrap();
    let flaky = script(&dir, "flaky.py", "import os, sys\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('flaky').getOrCreate()\nif not os.path.exists('/markers/attempted'):\n    open('/markers/attempted', 'w').write('1')\n    print('first attempt: failing on purpose')\n    sys.exit(1)\nprint('sum', spark.sparkContext.parallelize(range(10)).sum())\n");
    let params = format!(
        "{SMALL} --conf spark.kubernetes.driver.podTemplateFile={}",
        template.display()
    );
    let id = env.start(&env.request(
        &env.vc,
        "flaky",
        &flaky,
        &params,
        json!({"retryPolicyConfiguration": {"maxAttempts": 2}}),
    ));
    let started = Instant::now();
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(600), |_| {});
    eprintln!("flaky: {states:?} in {:?}", started.elapsed());
    assert_eq!(
        run["state"],
        "COMPLETED",
        "{states:?} {run:#}\n{}",
        env.log()
    );
    assert_eq!(run["retryPolicyExecution"]["currentAttemptCount"], 2);
    assert!(markers.join("attempted").exists());
    let drivers = env.pod_names(Some(&format!(
        "emr-containers.amazonaws.com/job.id={id},spark-role=driver"
    )));
    assert_eq!(drivers.len(), 2, "one driver per attempt: {drivers:?}");
    let jobs = env.kubectl(&["get", "jobs", "-n", NS, "-o", "name"]);
    assert!(
        jobs.contains(&format!("job.batch/{id}\n")) && jobs.contains(&format!("job.batch/{id}--2")),
        "{jobs}"
    );
}

/// `maxConcurrentJobRuns: 1`: the second run waits PENDING while the first runs, then runs.
#[test]
fn runs_over_the_concurrency_limit_wait_in_the_queue() {
    let _turn = spark_turn();
    let env = Env::all_in_one(Some(json!({"maxConcurrentJobRuns": 1})));
    let dir = shared_dir();
    let short = script(&dir, "short.py", "import time\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('short').getOrCreate()\nspark.sparkContext.parallelize(range(2), 2).foreach(lambda x: time.sleep(5))\n");
    let one_executor = SMALL.replace("spark.executor.instances=2", "spark.executor.instances=1");
    let first = env.start(&env.request(&env.vc, "first", &short, &one_executor, json!({})));
    let second = env.start(&env.request(&env.vc, "second", &short, &one_executor, json!({})));
    let (run, states) = env.follow(&env.vc, &first, Duration::from_secs(400), |_| {
        // Second first, then first again: had the second left the queue while the first was
        // still active, the first is still active when looked at afterwards.
        let waiting = env.describe(&env.vc, &second)["state"].clone();
        let holder = env.describe(&env.vc, &first)["state"].clone();
        let holder_done = matches!(holder.as_str(), Some("COMPLETED" | "FAILED" | "CANCELLED"));
        assert!(
            waiting == "PENDING" || holder_done,
            "second run is {waiting} while the first, holding the only slot, is {holder}"
        );
    });
    assert_eq!(run["state"], "COMPLETED", "{states:?}\n{}", env.log());
    let (run, states) = env.follow(&env.vc, &second, Duration::from_secs(400), |_| {});
    assert_eq!(run["state"], "COMPLETED", "{states:?}\n{}", env.log());
}

/// `kill -9` of the server mid-run, then a restart: the run finishes once, with one runner
/// Job and one driver. The cluster runs in its own process (as a real cluster would), since
/// the embedded cluster keeps its objects in memory.
#[test]
fn a_killed_controller_resumes_without_duplicates() {
    let _turn = spark_turn();
    let mut env = Env::split();
    let dir = shared_dir();
    let sleeper = script(&dir, "sleep20.py", "import time\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('sleep20').getOrCreate()\nspark.sparkContext.parallelize(range(2), 2).foreach(lambda x: time.sleep(20))\n");
    let id = env.start(&env.request(&env.vc, "survivor", &sleeper, SMALL, json!({})));
    let deadline = Instant::now() + Duration::from_secs(300);
    while env.describe(&env.vc, &id)["state"] != "RUNNING" {
        assert!(Instant::now() < deadline, "never RUNNING\n{}", env.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    env.server.kill9();
    std::thread::sleep(Duration::from_secs(2));
    env.server.restart();
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(300), |_| {});
    assert_eq!(
        run["state"],
        "COMPLETED",
        "{states:?} {run:#}\n{}",
        env.log()
    );
    let jobs = env.kubectl(&[
        "get",
        "jobs",
        "-n",
        NS,
        "-l",
        &format!("emr-containers.amazonaws.com/job.id={id}"),
        "-o",
        "name",
    ]);
    assert_eq!(jobs.lines().count(), 1, "{jobs}");
    let drivers = env.pod_names(Some(&format!(
        "emr-containers.amazonaws.com/job.id={id},spark-role=driver"
    )));
    assert_eq!(drivers, [format!("spark-{id}-driver")]);
}

/// `kill -9` of the all-in-one `sparkyard serve` (API, controller and embedded cluster in
/// one process) mid-run, then a restart on the same data directory and ports: the cluster's
/// objects were persisted and its containers ran on under their shims, so the run finishes
/// once, with one runner Job and one driver pod.
#[test]
fn a_killed_sparkyard_resumes_the_run() {
    let _turn = spark_turn();
    let mut env = Env::all_in_one(None);
    let dir = shared_dir();
    let sleeper = script(&dir, "sleep20.py", "import time\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.appName('sleep20').getOrCreate()\nspark.sparkContext.parallelize(range(2), 2).foreach(lambda x: time.sleep(20))\n");
    let id = env.start(&env.request(&env.vc, "survivor", &sleeper, SMALL, json!({})));
    let deadline = Instant::now() + Duration::from_secs(300);
    while env.describe(&env.vc, &id)["state"] != "RUNNING" {
        assert!(Instant::now() < deadline, "never RUNNING\n{}", env.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    // Killed while the driver runs (its executors sleep 20 s).
    let driver = format!("spark-{id}-driver");
    let phase = |env: &Env| {
        let out = cluster::kubectl(
            &env.kubeconfig,
            &[
                "get",
                "pod",
                "-n",
                NS,
                &driver,
                "-o",
                "jsonpath={.status.phase}",
            ],
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    while phase(&env) != "Running" {
        assert!(
            Instant::now() < deadline,
            "driver never Running\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let driver_uid = env.kubectl(&[
        "get",
        "pod",
        "-n",
        NS,
        &driver,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    env.server.kill9();
    std::thread::sleep(Duration::from_secs(2));
    env.server.restart();
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(300), |_| {});
    assert_eq!(
        run["state"],
        "COMPLETED",
        "{states:?} {run:#}\n{}",
        env.log()
    );
    let jobs = env.kubectl(&[
        "get",
        "jobs",
        "-n",
        NS,
        "-l",
        &format!("emr-containers.amazonaws.com/job.id={id}"),
        "-o",
        "name",
    ]);
    assert_eq!(jobs.lines().count(), 1, "{jobs}");
    let drivers = env.pod_names(Some(&format!(
        "emr-containers.amazonaws.com/job.id={id},spark-role=driver"
    )));
    assert_eq!(drivers, std::slice::from_ref(&driver));
    // The same driver pod, never restarted: it ran on while sparkyard was down.
    let after = env.kubectl(&[
        "get",
        "pod",
        "-n",
        NS,
        &driver,
        "-o",
        "jsonpath={.metadata.uid} {.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(after, format!("{driver_uid} 0"), "{}", env.log());
}

/// `sparkyard submit --wait`, `runs list`, `runs describe`, `runs logs`, `runs ui`.
#[test]
fn the_sparkyard_cli_submits_follows_and_shows_logs() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    let dir = shared_dir();
    let request = env.request(
        &env.vc,
        "cli-pi",
        PI,
        &SMALL.replace("spark.executor.instances=2", "spark.executor.instances=1"),
        json!({}),
    );
    let file = dir.join("pi.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let data_dir = env.server.data_dir.path().to_str().unwrap().to_string();
    let sparkyard = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .args(args)
            .args(["--data-dir", &data_dir])
            .output()
            .unwrap()
    };
    let out = sparkyard(&["submit", file.to_str().unwrap(), "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.log()
    );
    // (SUBMITTED may be too short for a poller to see: the state order is checked by
    // pi_runs_through_every_state_with_emrs_pods.)
    for needed in [
        "RUNNING",
        "final state: COMPLETED",
        "JobRun completed successfully",
        "s3://monthly-batch-logs-123456789012-us-east-1/",
    ] {
        assert!(stdout.contains(needed), "{needed} missing from:\n{stdout}");
    }
    let id = stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let list = String::from_utf8(sparkyard(&["runs", "list"]).stdout).unwrap();
    assert!(
        list.contains(&id) && list.contains("COMPLETED") && list.contains("cli-pi"),
        "{list}"
    );
    let described: Value =
        serde_json::from_slice(&sparkyard(&["runs", "describe", &id]).stdout).unwrap();
    assert_eq!(described["state"], "COMPLETED");
    let logs = sparkyard(&["runs", "logs", &id]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("Pi is roughly"),
        "{text}\n{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    // The application id is EMR's spark-<jobRunId> (spark-runtime's driver step), on the
    // driver pod's label and in the Spark UI's address.
    let app = env.kubectl(&[
        "get",
        "pod",
        "-n",
        NS,
        &format!("spark-{id}-driver"),
        "-o",
        "jsonpath={.metadata.labels.spark-app-selector}",
    ]);
    assert_eq!(app, format!("spark-{id}"));
    let ui = sparkyard(&["runs", "ui", &id]);
    let url = String::from_utf8_lossy(&ui.stdout);
    assert_eq!(
        url.trim(),
        format!("http://127.0.0.1:18080/history/{app}/"),
        "{}",
        String::from_utf8_lossy(&ui.stderr)
    );
    assert!(
        stdout.contains(&format!("spark ui:    {}", url.trim())),
        "{stdout}"
    );
}

/// Walkthrough step 7 as most users run it (issue 16, fault 4): the script and a
/// `--py-files` module live in S3 and the run brings **no pod templates**. sparkyard fetches
/// them in the pods with the run's role (IRSA) into a volume its generated templates share
/// with Spark's containers. (Steps 15, 16 and 21, with the seed's S3 templates, are
/// walkthrough_priorities.rs.)
#[test]
fn s3_inputs_are_fetched_with_the_runs_role() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    walkthrough::grant_job_policy(&env.server, NS);
    let s = &env.server;
    let dir = tempfile::tempdir().unwrap();

    let job = dir.path().join("threadsleeper.py");
    std::fs::write(&job, "from time import sleep\nfrom pyspark.sql import SparkSession\nfrom naps import nap\nspark = SparkSession.builder.appName('threadsleeper').getOrCreate()\nspark.sparkContext.parallelize(range(1, 3), 2).foreach(lambda x: sleep(nap(x)))\nprint('slept from s3')\nspark.stop()\n").unwrap();
    let helper = dir.path().join("naps.py");
    std::fs::write(&helper, "def nap(x):\n    return x / 2\n").unwrap();
    s.aws_ok(&["s3", "mb", "s3://eks-emr-cluster-demojobs"]);
    for (file, key) in [(&job, "threadsleeper.py"), (&helper, "lib/naps.py")] {
        s.aws_ok(&[
            "s3",
            "cp",
            file.to_str().unwrap(),
            &format!("s3://eks-emr-cluster-demojobs/{key}"),
        ]);
    }

    let params = format!("--py-files s3://eks-emr-cluster-demojobs/lib/naps.py {SMALL}");
    let id = env.start(&env.request(
        &env.vc,
        "from-s3",
        "s3://eks-emr-cluster-demojobs/threadsleeper.py",
        &params,
        json!({}),
    ));
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(400), |_| {});
    assert_eq!(
        run["state"],
        "COMPLETED",
        "{states:?} {run:#}\n{}",
        env.log()
    );
    let logs = env.kubectl(&["logs", &format!("spark-{id}-driver"), "-n", NS]);
    assert!(logs.contains("slept from s3"), "{logs}");
    // The inputs came through sparkyard's fetch, with the run's role.
    let fetch = env.kubectl(&[
        "logs",
        &format!("spark-{id}-driver"),
        "-n",
        NS,
        "-c",
        "sparkyard-fetch-remote-files",
    ]);
    assert!(
        fetch.contains("fetched s3://eks-emr-cluster-demojobs/threadsleeper.py"),
        "{fetch}"
    );
}

/// Issue 17's acceptance: the virtual cluster's namespace has a ResourceQuota of 4 CPUs (and
/// a LimitRange giving the job runner, which asks for nothing, a small CPU request). A run
/// asks for a 1-CPU driver and 6 executors of 1 CPU: the executors that fit run, the rest are
/// refused with kube's `exceeded quota` 403 — which Spark's ExecutorPodsAllocator logs and
/// retries on its next allocation round — and the run completes.
#[test]
fn a_namespace_quota_caps_executors_and_the_run_completes() {
    let _turn = spark_turn();
    let env = Env::all_in_one(None);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("quota.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\n  namespace: {NS}\nspec:\n  hard:\n    requests.cpu: \"4\"\n---\napiVersion: v1\nkind: LimitRange\nmetadata:\n  name: defaults\n  namespace: {NS}\nspec:\n  limits:\n  - type: Container\n    defaultRequest: {{cpu: 100m}}\n"
        ),
    )
    .unwrap();
    env.kubectl(&["apply", "-f", manifest.to_str().unwrap()]);
    let params = "--conf spark.executor.instances=6 --conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.executor.memory=512m --conf spark.driver.memory=512m";
    let id = env.start(&env.request(&env.vc, "pi-quota", PI, params, json!({})));
    let mut most_executors = 0;
    let (run, states) = env.follow(&env.vc, &id, Duration::from_secs(600), |_| {
        let pods: Value = serde_json::from_str(&env.kubectl(&[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "spark-role=executor",
            "-o",
            "json",
        ]))
        .unwrap();
        let live = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        most_executors = most_executors.max(live);
    });
    assert_eq!(
        run["state"],
        "COMPLETED",
        "{states:?} {run:#}\n{}",
        env.log()
    );
    // Runner (100m) + driver (1) leave 2.9 CPUs: two 1-CPU executors at a time.
    assert!(
        (1..6).contains(&most_executors),
        "{most_executors} executors at once"
    );
    let driver_log = env.kubectl(&["logs", &format!("spark-{id}-driver"), "-n", NS, "--tail=-1"]);
    assert!(
        driver_log.contains(
            "is forbidden: exceeded quota: compute, requested: requests.cpu=1, used: requests.cpu="
        ) && driver_log.contains("limited: requests.cpu=4"),
        "no quota refusal in the driver log:\n{driver_log}"
    );
    assert!(driver_log.contains("Pi is roughly"), "{driver_log}");
    let refusals = driver_log.matches("exceeded quota").count();
    eprintln!("pi-quota: {states:?}; at most {most_executors} executors at once; {refusals} refusals in the driver log");
}
