//! Logs that outlive their pods, remote inputs and the persistent app UI (issue 6, items 4,
//! 6, 7), checked with the real `aws` CLI against sparkyard's embedded S3 and CloudWatch
//! Logs (walkthrough steps 7–11):
//!
//! - `sparkyard fetch` downloads `s3://` inputs with a pod's IRSA role, and only what the
//!   role may read;
//! - the log shipper delivers each container's output in EMR's S3 and CloudWatch layout
//!   — driver, and an executor deleted mid-run — when the container exits, and sends no
//!   CloudWatch event twice across a restart; it writes with the run's role, so a role
//!   without `s3:PutObject` or `logs:PutLogEvents` gets nothing there (pods created
//!   directly with kubectl, so the tests run in seconds, without Spark);
//! - the seed's pi-4 on real Spark: driver stdout with `Pi is roughly` in S3 and
//!   CloudWatch, and the Spark History Server lists the finished application.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
#[path = "support/logs.rs"]
mod logs_env;
mod support;

use std::process::Command;
use std::time::Duration;

use logs_env::{bucket, pod, Env, GROUP, NO_HISTORY, NS, REGION, ROLE};
use serde_json::{json, Value};

/// Containers created directly (no Spark): the driver's output lands in S3 and CloudWatch
/// in EMR's layout when it exits, an executor deleted mid-run still has its log in S3, and
/// a restart sends no CloudWatch event twice.
#[test]
fn shipper_delivers_driver_and_deleted_executor_logs_once() {
    let mut env = Env::start(false, NO_HISTORY);
    // A run the shipper can look up (no controller: it stays PENDING and makes no pods).
    let id = env.start_run("--conf spark.executor.instances=1", json!({}));
    let driver_sa = env.driver_service_account();

    let driver = format!("spark-{id}-driver");
    let executor = "pythonpi-0123456789abcdef-exec-1";
    env.kubectl_apply(&pod(
        executor,
        &id,
        Some("executor"),
        "spark-kubernetes-executor",
        &driver_sa,
        "echo executor started; sleep 300",
    ));
    env.kubectl_apply(&pod(&driver, &id, Some("driver"), "spark-kubernetes-driver", &driver_sa,
        "for i in 1 2 3; do echo line $i; done; echo 'Pi is roughly 3.141640'; echo driver-stderr >&2"));

    // The driver exits by itself (its pod stays): its whole log is delivered on the exit.
    env.wait_for("the driver to finish", Duration::from_secs(60), || {
        (env.pod_phase(&driver) == "Succeeded").then_some(())
    });
    let prefix = format!("{}/jobs/{id}/containers/spark-{id}", env.vc);
    let stdout = env.wait_for("the driver's stdout.gz", Duration::from_secs(60), || {
        env.s3_text(&format!("{prefix}/{driver}/stdout.gz"))
    });
    assert_eq!(
        stdout, "line 1\nline 2\nline 3\nPi is roughly 3.141640\n",
        "the whole stdout, and only stdout"
    );
    // stdout and stderr apart, as EMR keeps them.
    let stderr = env.wait_for("the driver's stderr.gz", Duration::from_secs(10), || {
        env.s3_text(&format!("{prefix}/{driver}/stderr.gz"))
    });
    assert_eq!(stderr, "driver-stderr\n");
    let stderr_stream = format!(
        "pi/{}/jobs/{id}/containers/spark-{id}/{driver}/stderr",
        env.vc
    );
    assert_eq!(env.cloudwatch_messages(&stderr_stream), ["driver-stderr"]);
    let stream = format!(
        "pi/{}/jobs/{id}/containers/spark-{id}/{driver}/stdout",
        env.vc
    );
    let messages = env.wait_for("CloudWatch events", Duration::from_secs(10), || {
        let m = env.cloudwatch_messages(&stream);
        m.iter().any(|l| l.contains("Pi is roughly")).then_some(m)
    });
    assert_eq!(
        &messages[..3],
        ["line 1", "line 2", "line 3"],
        "{messages:?}"
    );

    // The executor is deleted while it runs (as preemption does): its output is kept. Its
    // first line in CloudWatch shows the shipper is following the live container and the
    // line is written before the deletion.
    let executor_stream = format!(
        "pi/{}/jobs/{id}/containers/spark-{id}/{executor}/stdout",
        env.vc
    );
    env.wait_for(
        "the running executor's first line in CloudWatch",
        Duration::from_secs(60),
        || (env.cloudwatch_messages(&executor_stream) == ["executor started"]).then_some(()),
    );
    assert_eq!(env.pod_phase(executor), "Running");
    env.kubectl(&["delete", "pod", "-n", NS, executor, "--wait=false"]);
    let text = env.wait_for(
        "the deleted executor's stdout.gz",
        Duration::from_secs(30),
        || env.s3_text(&format!("{prefix}/{executor}/stdout.gz")),
    );
    assert!(text.contains("executor started"), "{text}");

    // Every stream of both containers shipped: nothing is in progress when sparkyard stops.
    let shipped = |log: &str| log.matches("container log shipped").count();
    env.wait_for(
        "the four streams to be shipped",
        Duration::from_secs(60),
        || (shipped(&env.server.log()) >= 4).then_some(()),
    );

    // A restart sends nothing twice. sparkyard is killed as if between the driver's
    // checkpoints being marked done and its shipping record being removed (a window a
    // kill can hit), so the restarted shipper takes the driver up again. It removes the
    // record once it has dealt with the driver: proof that it has decided, and sent
    // whatever it was going to send.
    let driver_stderr = env.cloudwatch_messages(&stderr_stream);
    let driver_stdout = env.cloudwatch_messages(&stream);
    assert_eq!(driver_stdout.len(), 4, "{driver_stdout:?}");
    let uid = env.kubectl(&[
        "get",
        "pod",
        "-n",
        NS,
        &driver,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    env.server.kill9();
    let pending = env.server.data_dir.path().join("logs/pending");
    std::fs::create_dir_all(&pending).unwrap();
    let record = pending.join(format!("{uid}_spark-kubernetes-driver.json"));
    std::fs::write(
        &record,
        json!({"namespace": NS, "pod": driver, "uid": uid, "container": "spark-kubernetes-driver",
               "service_account": driver_sa, "job_id": id, "kind": "Spark", "is_driver": true,
               "app_id": format!("spark-{id}")})
        .to_string(),
    )
    .unwrap();
    env.server.restart();
    env.wait_for(
        "the restarted shipper to deal with the driver",
        Duration::from_secs(60),
        || (!record.exists()).then_some(()),
    );
    assert_eq!(env.cloudwatch_messages(&stream), driver_stdout);
    assert_eq!(env.cloudwatch_messages(&stderr_stream), driver_stderr);
}

/// The shipper writes with the run's execution role, not with sparkyard's own credentials:
/// of two runs, one whose role lacks the seed policy's `s3:PutObject` and one whose role
/// lacks its `logs:PutLogEvents`, each gets its driver's whole output where its role may
/// write, nothing where it may not, and the shipper logs each refusal with the role's name.
#[test]
fn shipper_writes_with_the_runs_role_and_only_where_it_may() {
    let env = Env::start(false, NO_HISTORY);
    let (no_s3, no_events) = (
        "monthly-batch-NoS3PutJobExecutionRole",
        "monthly-batch-NoLogEventsJobExecutionRole",
    );
    let runs: Vec<String> = [(no_s3, "s3:PutObject"), (no_events, "logs:PutLogEvents")]
        .into_iter()
        .map(|(role, denied)| {
            let arn = env.execution_role(role, &logs_env::seed_policy_without(denied));
            let id = env.start_run_as(&arn, "--conf spark.executor.instances=1");
            let sa = env.annotated_service_account(role, &arn, "spark-driver");
            env.kubectl_apply(&pod(
                &format!("spark-{id}-driver"),
                &id,
                Some("driver"),
                "spark-kubernetes-driver",
                &sa,
                &format!("for i in 1 2 3; do echo \"{role} line $i\"; done"),
            ));
            id
        })
        .collect();
    let label =
        |id: &str, stream: &str| format!("{NS}/spark-{id}-driver/spark-kubernetes-driver:{stream}");
    // Shipping a stream ends with this line, after every write was made or given up.
    for id in &runs {
        for stream in ["stdout", "stderr"] {
            env.wait_for(
                &format!("run {id}'s driver {stream} to be shipped"),
                Duration::from_secs(120),
                || env.log_line(&["container log shipped", &label(id, stream)]),
            );
        }
    }
    let expected = |role: &str| format!("{role} line 1\n{role} line 2\n{role} line 3\n");
    let cloudwatch_stream = |id: &str| {
        format!(
            "pi/{}/jobs/{id}/containers/spark-{id}/spark-{id}-driver/stdout",
            env.vc
        )
    };
    let objects = |id: &str| {
        env.server.aws_json(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            &bucket(),
            "--prefix",
            &format!("{}/jobs/{id}/", env.vc),
        ])["Contents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };

    // No s3:PutObject: the whole output in CloudWatch, no object in S3, and the refusal
    // logged with the run's role as the caller.
    let id = &runs[0];
    assert_eq!(
        env.cloudwatch_messages(&cloudwatch_stream(id)).join("\n") + "\n",
        expected(no_s3)
    );
    assert_eq!(
        objects(id),
        Vec::<Value>::new(),
        "nothing in S3 for run {id}"
    );
    let refusal = env
        .log_line(&["cannot upload a log object", &label(id, "stdout")])
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", env.server.log()));
    assert!(
        refusal.contains(&format!("assumed-role/{no_s3}/")) && refusal.contains("s3:PutObject"),
        "{refusal}"
    );

    // No logs:PutLogEvents: the whole output in S3; the stream was created (the role may)
    // and holds no event; the lost events logged with the run's role as the caller.
    let id = &runs[1];
    let prefix = format!(
        "{}/jobs/{id}/containers/spark-{id}/spark-{id}-driver",
        env.vc
    );
    assert_eq!(
        env.s3_text(&format!("{prefix}/stdout.gz")).as_deref(),
        Some(expected(no_events).as_str())
    );
    let events = env.server.aws_json(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        GROUP,
        "--log-stream-name",
        &cloudwatch_stream(id),
        "--start-from-head",
    ]);
    assert_eq!(events["events"], json!([]), "run {id}'s stream");
    let refusal = env
        .log_line(&["CloudWatch events lost", &label(id, "stdout")])
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", env.server.log()));
    assert!(
        refusal.contains(&format!("assumed-role/{no_events}/"))
            && refusal.contains("logs:PutLogEvents"),
        "{refusal}"
    );
}

/// `containerLogRotationConfiguration` (2 KB segments, 3 files kept) and
/// `executor.logging=DISABLED`: the driver's output is cut into segments rotating through
/// `stdout.1.gz` and `stdout.2.gz` beside `stdout.gz` (only `s3:PutObject`, which is all the
/// seed's role may do), and the executor ships nothing.
#[test]
fn rotation_keeps_max_files_and_disabled_executor_logging_ships_nothing() {
    let env = Env::start(false, NO_HISTORY);
    let id = env.start_run(
        "--conf spark.executor.instances=1",
        json!({
            "applicationConfiguration": [{"classification": "emr-containers-defaults",
                                          "properties": {"executor.logging": "DISABLED"}}],
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": format!("s3://{}/", bucket())},
                "containerLogRotationConfiguration": {"rotationSize": "2KB", "maxFilesToKeep": 3}}
        }),
    );
    let sa = env.service_account("spark-driver");
    env.kubectl_apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": sa, "namespace": NS}}));
    let driver = format!("spark-{id}-driver");
    let executor = "pythonpi-00000000000000aa-exec-1";
    env.kubectl_apply(&pod(
        executor,
        &id,
        Some("executor"),
        "spark-kubernetes-executor",
        &sa,
        "echo executor output",
    ));
    // 200 lines of 50 bytes: four full segments and 2,000 bytes in the current one.
    env.kubectl_apply(&pod(&driver, &id, Some("driver"), "spark-kubernetes-driver", &sa,
        "i=100; while [ $i -lt 300 ]; do echo \"line $i ........................................\"; i=$((i+1)); done"));
    let prefix = format!("{}/jobs/{id}/containers/spark-{id}", env.vc);
    let last = env.wait_for("the driver's stdout.gz", Duration::from_secs(60), || {
        env.s3_text(&format!("{prefix}/{driver}/stdout.gz"))
    });
    let listing = env.server.aws_ok(&[
        "s3",
        "ls",
        "--recursive",
        &format!("s3://{}/{prefix}/", bucket()),
    ]);
    let mut names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .collect();
    names.sort();
    // stderr stayed empty; its object is there all the same, as stdout's would be.
    assert_eq!(
        names,
        ["stderr.gz", "stdout.1.gz", "stdout.2.gz", "stdout.gz"],
        "{listing}"
    );
    let (three, four) = (
        env.s3_text(&format!("{prefix}/{driver}/stdout.1.gz"))
            .unwrap(),
        env.s3_text(&format!("{prefix}/{driver}/stdout.2.gz"))
            .unwrap(),
    );
    // 40 whole lines (2,000 bytes) per segment: cut at the last newline within 2 KB.
    assert_eq!((three.len(), four.len(), last.len()), (2000, 2000, 2000));
    // Segments 1..4 rotated through the two slots (3 → slot 1, 4 → slot 2): the kept
    // segments and the current one are the end of the output, in order, whole lines.
    let kept = format!("{three}{four}{last}");
    assert!(
        kept.ends_with("line 299 ........................................\n"),
        "{kept}"
    );
    assert!(kept.starts_with("line 180 "), "{kept}");
    assert!(
        !listing.contains(executor),
        "executor logging is DISABLED: {listing}"
    );
}

/// `sparkyard fetch` as an init container runs it: IRSA variables and the endpoint from the
/// environment; what the role may read arrives, what it may not fails the command.
#[test]
fn fetch_downloads_with_the_pods_role() {
    let env = Env::start(false, NO_HISTORY);
    let s = &env.server;
    let input = env._dir.path().join("app.py");
    std::fs::write(&input, "print('hello from s3')\n").unwrap();
    s.aws_ok(&["s3", "mb", "s3://demojobs"]);
    s.aws_ok(&[
        "s3",
        "cp",
        input.to_str().unwrap(),
        "s3://demojobs/jobs/app.py",
    ]);
    // A role that may read only the jobs bucket.
    let policy = env.file_arg("read.json", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::demojobs/*"}]}"#);
    s.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "EMR-Containers-Job-Execution",
        "--policy-document",
        &policy,
    ]);

    let issuer = s.aws_json(&["eks", "describe-cluster", "--name", "eks-emr-cluster"])["cluster"]
        ["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let key = std::fs::read_to_string(s.data_dir.path().join("cluster/pki/sa.key")).unwrap();
    let tokens = sparkyard_cluster::TokenIssuer::new(&issuer, &key).unwrap();
    let token = tokens.issue(
        NS,
        &env.service_account("spark-client"),
        &["sts.amazonaws.com".to_string()],
        None,
        3600,
    );
    let token_file = env._dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();

    let fetch = |args: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .arg("fetch")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ROLE_ARN", &env.role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
            .env("AWS_ENDPOINT_URL", s.endpoint())
            .env("AWS_REGION", REGION)
            .output()
            .unwrap()
    };
    let target = env._dir.path().join("remote/0/app.py");
    let out = fetch(&[format!("s3://demojobs/jobs/app.py={}", target.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "print('hello from s3')\n"
    );

    // The log bucket is not readable with this role.
    s.aws_ok(&[
        "s3",
        "cp",
        input.to_str().unwrap(),
        &format!("s3://{}/x.py", bucket()),
    ]);
    let denied = env._dir.path().join("remote/1/x.py");
    let out = fetch(&[format!("s3://{}/x.py={}", bucket(), denied.display())]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AccessDenied") || stderr.contains("403"),
        "{stderr}"
    );
    assert!(!denied.exists());
}

/// `sparkyard fetch` inside a pod, as the controller's init containers run it: the EKS
/// pod-identity webhook gives the pod the role (projected token, `AWS_ROLE_ARN`) and
/// sparkyard's endpoint, and the main container sees the downloaded file. (The command names
/// the binary explicitly until the kubelet maps sparkyard's image to it.)
#[test]
fn fetch_in_an_init_container_uses_the_pods_irsa_role() {
    let env = Env::start(false, NO_HISTORY);
    let s = &env.server;
    let input = env._dir.path().join("app.py");
    std::fs::write(&input, "print('fetched in a pod')\n").unwrap();
    s.aws_ok(&["s3", "mb", "s3://demojobs"]);
    s.aws_ok(&["s3", "cp", input.to_str().unwrap(), "s3://demojobs/app.py"]);
    let sa = env.service_account("spark-driver");
    env.kubectl_apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": sa, "namespace": NS,
                     "annotations": {"eks.amazonaws.com/role-arn": env.role_arn}}}));
    env.kubectl_apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "fetcher", "namespace": NS},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": sa,
            "volumes": [{"name": "remote", "emptyDir": {}}],
            "initContainers": [{"name": "fetch", "image": "sparkyard:dev",
                "command": [env!("CARGO_BIN_EXE_sparkyard")],
                "args": ["fetch", "s3://demojobs/app.py=/var/sparkyard/remote/0/app.py"],
                "volumeMounts": [{"name": "remote", "mountPath": "/var/sparkyard/remote"}]}],
            "containers": [{"name": "main", "image": "busybox:1.36",
                "command": ["cat", "/var/sparkyard/remote/0/app.py"],
                "volumeMounts": [{"name": "remote", "mountPath": "/var/sparkyard/remote"}]}]
        }
    }));
    let phase = env.wait_for("the pod to finish", Duration::from_secs(60), || {
        let p = env.pod_phase("fetcher");
        matches!(p.as_str(), "Succeeded" | "Failed").then_some(p)
    });
    let fetch_log = cluster::kubectl(
        &env.kubeconfig,
        &["logs", "-n", NS, "fetcher", "-c", "fetch"],
    );
    let fetch_log = String::from_utf8_lossy(&fetch_log.stdout).to_string();
    assert_eq!(phase, "Succeeded", "fetch said: {fetch_log}\n{}", s.log());
    assert!(
        fetch_log.contains("fetched s3://demojobs/app.py"),
        "{fetch_log}"
    );
    assert_eq!(
        env.kubectl(&["logs", "-n", NS, "fetcher", "-c", "main"]),
        "print('fetched in a pod')\n"
    );
}

/// Walkthrough steps 9–11 on real Spark: pi-4's driver stdout (`Pi is roughly`) in S3 and
/// CloudWatch where the seed looks, and the finished application in the Spark History
/// Server.
#[test]
fn pi_logs_land_in_s3_and_cloudwatch_and_the_history_server_lists_it() {
    let history_port = support::free_port();
    let mut env = Env::start(true, &format!("[history]\nport = {history_port}\n"));
    let params = "--conf spark.executor.instances=2 --conf spark.executor.memory=512m --conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.driver.memory=512m --conf spark.kubernetes.executor.request.cores=250m --conf spark.kubernetes.driver.request.cores=250m";
    // No event-log confs are passed: the controller adds them to every run.
    let id = env.start_run(params, json!({}));
    let state = env.wait_for("pi-4 to finish", Duration::from_secs(600), || {
        let run = env.server.aws_json(&[
            "emr-containers",
            "describe-job-run",
            "--virtual-cluster-id",
            &env.vc,
            "--id",
            &id,
        ]);
        let state = run["jobRun"]["state"].as_str().unwrap().to_string();
        matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED").then_some(state)
    });
    let key = format!(
        "{}/jobs/{id}/containers/spark-{id}/spark-{id}-driver/stdout.gz",
        env.vc
    );
    if state != "COMPLETED" {
        let driver_log = env.wait_for("the failed driver's log", Duration::from_secs(30), || {
            env.s3_text(&key)
        });
        panic!(
            "pi-4 ended {state}; driver log:\n{driver_log}\n{}",
            env.server.log()
        );
    }
    let stdout = env.wait_for("the driver's stdout.gz", Duration::from_secs(30), || {
        env.s3_text(&key)
    });
    assert!(stdout.contains("Pi is roughly"), "{stdout}");
    let stream = format!(
        "pi/{}/jobs/{id}/containers/spark-{id}/spark-{id}-driver/stdout",
        env.vc
    );
    env.wait_for(
        "the driver's CloudWatch stream",
        Duration::from_secs(30),
        || {
            env.cloudwatch_messages(&stream)
                .iter()
                .any(|m| m.contains("Pi is roughly"))
                .then_some(())
        },
    );
    // The runner's log sits directly under containers/.
    let listing = env.server.aws_ok(&[
        "s3",
        "ls",
        "--recursive",
        &format!("s3://{}/{}/jobs/{id}/containers/", bucket(), env.vc),
    ]);
    assert!(listing.contains(&format!("containers/{id}-")), "{listing}");
    assert!(listing.contains("-exec-1/stdout.gz"), "{listing}");
    // Spark logs through log4j to the console's stderr: the executor's log is there.
    let executor_log = listing
        .lines()
        .find(|l| l.ends_with("-exec-1/stderr.gz"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no executor stderr.gz: {listing}"));
    let executor_stderr = env.s3_text(executor_log).expect("the executor's stderr.gz");
    assert!(
        executor_stderr.contains("CoarseGrainedExecutorBackend"),
        "{executor_stderr}"
    );

    // sparkyard prints the run's UI address, with EMR's application id `spark-<jobRunId>`,
    // and the history server lists the finished application.
    let line = env.wait_for(
        "the run's UI address in the log",
        Duration::from_secs(30),
        || {
            env.server
                .log()
                .lines()
                .find(|l| l.contains("Spark UI of the finished run"))
                .map(String::from)
        },
    );
    let url = regex::Regex::new(r"http://127\.0\.0\.1:\d+/history/(spark-[0-9a-z]+)/").unwrap();
    let captures = url.captures(&line).unwrap_or_else(|| panic!("{line}"));
    let (page, app) = (captures[0].to_string(), captures[1].to_string());
    assert_eq!(app, format!("spark-{id}"), "{line}");
    assert!(
        page.starts_with(&format!("http://127.0.0.1:{history_port}/history/")),
        "{page}"
    );
    eprintln!("run {id}: UI at {page}");
    let data = env.server.data_dir.path();
    let events: Vec<String> = std::fs::read_dir(data.join("spark-events"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        events.iter().any(|e| e.ends_with(&app)),
        "event logs {events:?}, app {app}"
    );
    let history_log =
        std::fs::read_to_string(data.join("history/history-server.log")).unwrap_or_default();
    let apps = env.wait_for(
        &format!("the history server to list {app}; its log:\n{history_log}"),
        Duration::from_secs(120),
        || {
            let api = format!("http://127.0.0.1:{history_port}/api/v1/applications");
            let out = Command::new("curl").args(["-sf", &api]).output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains(&app).then_some(text)
        },
    );
    let apps: Value = serde_json::from_str(&apps).unwrap();
    let entry = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app.as_str())
        .unwrap();
    assert_eq!(entry["attempts"][0]["completed"], true, "{entry:#}");

    // Steps 10–11 in the console: the run's page, its pods, the driver's stored stdout and
    // the Spark UI link (tests/console/pi.mjs, in Debian's chromium).
    support::console::BrowserTools::find().run(
        "pi.mjs",
        &[
            ("CONSOLE", support::console::base(&env.server)),
            ("SIGNIN_LINK", support::console::signin_link(&env.server)),
            ("VC", env.vc.clone()),
            ("RUN_ID", id.clone()),
            ("DRIVER", format!("spark-{id}-driver")),
            ("HISTORY", format!("http://127.0.0.1:{history_port}/")),
        ],
        || env.server.log(),
    );

    // The History Server stops with sparkyard, even a killed one: nothing keeps its port.
    env.server.kill9();
    env.wait_for(
        "the History Server to stop with sparkyard",
        Duration::from_secs(30),
        || std::net::TcpListener::bind(("127.0.0.1", history_port)).ok(),
    );
}

/// The two states a `kill -9` can leave the shipper in, written as the kill leaves them, and
/// what the restarted shipper must make of them:
/// - a `PutLogEvents` that landed before its checkpoint moved (the checkpoint records the
///   batch as in flight and the stream's sequence token has moved since): not sent again;
///   one that did not land (token unchanged): sent;
/// - an executor deleted while its log was being shipped, its S3 object not yet written:
///   finished from the node's log file although the pod is gone.
#[test]
fn shipper_finishes_what_a_kill_interrupted() {
    let mut env = Env::start(false, NO_HISTORY);
    let id = env.start_run("--conf spark.executor.instances=1", json!({}));
    let driver_sa = env.driver_service_account();
    let driver = format!("spark-{id}-driver");
    let executor = "pythonpi-0123456789abcdef-exec-1";
    env.kubectl_apply(&pod(
        &driver,
        &id,
        Some("driver"),
        "spark-kubernetes-driver",
        &driver_sa,
        "for i in 1 2 3; do echo line $i; done; echo driver-stderr >&2",
    ));
    env.kubectl_apply(&pod(
        executor,
        &id,
        Some("executor"),
        "spark-kubernetes-executor",
        &driver_sa,
        "echo executor line 1; echo executor line 2; sleep 300",
    ));
    let prefix = format!("{}/jobs/{id}/containers/spark-{id}", env.vc);
    let stream_of = |pod: &str, stream: &str| {
        format!(
            "pi/{}/jobs/{id}/containers/spark-{id}/{pod}/{stream}",
            env.vc
        )
    };
    let (driver_out, driver_err) = (stream_of(&driver, "stdout"), stream_of(&driver, "stderr"));
    let executor_out = stream_of(executor, "stdout");

    // Everything delivered once: the driver exited, the executor was deleted mid-run.
    env.wait_for(
        "the driver's CloudWatch events",
        Duration::from_secs(120),
        || {
            let m = env.cloudwatch_messages(&driver_out);
            (m.len() == 3 && env.cloudwatch_messages(&driver_err).len() == 1).then_some(())
        },
    );
    env.wait_for(
        "the executor's CloudWatch events",
        Duration::from_secs(120),
        || (env.cloudwatch_messages(&executor_out).len() == 2).then_some(()),
    );
    env.kubectl(&["delete", "pod", "-n", NS, executor]);
    let executor_key = format!("{prefix}/{executor}/stdout.gz");
    let shipped = env.wait_for("the executor's stdout.gz", Duration::from_secs(60), || {
        env.s3_text(&executor_key)
    });
    assert_eq!(shipped, "executor line 1\nexecutor line 2\n");

    let token = |stream: &str| -> String {
        let v = env.server.aws_json(&[
            "logs",
            "describe-log-streams",
            "--log-group-name",
            logs_env::GROUP,
            "--log-stream-name-prefix",
            stream,
        ]);
        v["logStreams"][0]["uploadSequenceToken"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let stderr_token = token(&driver_err);
    // The executor's object is gone as if the kill came before its upload.
    env.server
        .aws_ok(&["s3", "rm", &format!("s3://{}/{executor_key}", bucket())]);
    assert_eq!(env.s3_text(&executor_key), None);
    let shipped_lines = |log: &str| log.matches("container log shipped").count();
    let shipped_before = shipped_lines(&env.server.log());

    env.server.kill9();
    let state = env.server.data_dir.path().join("logs");
    let checkpoint = |pod: &str, container: &str, stream: &str| -> (std::path::PathBuf, Value) {
        let found = std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with(&format!("{NS}_{pod}_"))
                    && name.ends_with(&format!("_{container}_{stream}.json"))
            })
            .unwrap_or_else(|| panic!("no checkpoint for {pod} {stream} in {}", state.display()));
        let value = serde_json::from_slice(&std::fs::read(&found).unwrap()).unwrap();
        (found, value)
    };
    // Landed: offset back to 0, the whole output in flight, the token it had before.
    let (path, value) = checkpoint(&driver, "spark-kubernetes-driver", "stdout");
    assert_eq!(value["done"], true, "{value}");
    let end = value["cloudwatch_offset"].clone();
    std::fs::write(
        &path,
        json!({"cloudwatch_offset": 0, "done": false, "sequence_token": "0",
        "in_flight": {"end_offset": end, "token_before": "0"}})
        .to_string(),
    )
    .unwrap();
    // Not landed: the stream's token is the one recorded before the batch.
    let (path, value) = checkpoint(&driver, "spark-kubernetes-driver", "stderr");
    let end = value["cloudwatch_offset"].clone();
    std::fs::write(
        &path,
        json!({"cloudwatch_offset": 0, "done": false, "sequence_token": stderr_token,
        "in_flight": {"end_offset": end, "token_before": stderr_token}})
        .to_string(),
    )
    .unwrap();
    // The executor: shipping begun (its pending record), CloudWatch done, S3 not.
    let (path, mut value) = checkpoint(executor, "spark-kubernetes-executor", "stdout");
    let uid = path.file_name().unwrap().to_string_lossy()[format!("{NS}_{executor}_").len()..]
        .split('_')
        .next()
        .unwrap()
        .to_string();
    value["done"] = json!(false);
    std::fs::write(&path, value.to_string()).unwrap();
    std::fs::create_dir_all(state.join("pending")).unwrap();
    std::fs::write(
        state.join(format!("pending/{uid}_spark-kubernetes-executor.json")),
        json!({"namespace": NS, "pod": executor, "uid": uid, "container": "spark-kubernetes-executor",
               "service_account": driver_sa, "job_id": id, "kind": "Spark", "is_driver": false,
               "app_id": format!("spark-{id}")}).to_string(),
    )
    .unwrap();

    env.server.restart();
    let restored = env.wait_for(
        "the executor's stdout.gz again",
        Duration::from_secs(60),
        || env.s3_text(&executor_key),
    );
    assert_eq!(restored, "executor line 1\nexecutor line 2\n");
    // The driver's two streams and the executor's stdout shipped again (its stderr was done).
    env.wait_for(
        "the restarted shipper to finish",
        Duration::from_secs(60),
        || (shipped_lines(&env.server.log()) >= shipped_before + 3).then_some(()),
    );
    let log = env.server.log();
    assert!(
        log.contains("the CloudWatch batch in flight at the last stop was delivered"),
        "{log}"
    );
    assert!(
        log.contains("finishing the log of a container whose pod was deleted before the last stop"),
        "{log}"
    );
    assert_eq!(
        env.cloudwatch_messages(&driver_out),
        ["line 1", "line 2", "line 3"]
    );
    assert_eq!(
        env.cloudwatch_messages(&driver_err),
        ["driver-stderr", "driver-stderr"],
        "a batch that had not landed is sent"
    );
    assert_eq!(
        env.cloudwatch_messages(&executor_out),
        ["executor line 1", "executor line 2"]
    );
    assert!(
        !state
            .join(format!("pending/{uid}_spark-kubernetes-executor.json"))
            .exists(),
        "the pending record is removed once shipped"
    );
}
