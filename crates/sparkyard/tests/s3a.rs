//! Real data (issue 14), on real Spark through `aws emr-containers start-job-run`: job runs
//! read and write `s3://` on sparkyard's S3 through Hadoop's S3A, as their execution role.
//!
//! One server; the SQL run and the two refused ones run side by side, the others alone:
//!
//! | run | what | checks |
//! |---|---|---|
//! | etl | `examples/s3-etl/etl-job.json` + the seed's pod templates; `--py-files`/`--files` from `s3://` | `_SUCCESS` and a Parquet part per city under `out/`; event log in S3, listed by the History Server as `spark-<jobRunId>` |
//! | sql | `examples/spark-sql/sales-by-region-job.json` as it is (no pod templates) | reads the Parquet back: per-region counts equal what was generated |
//! | no read | the ETL as a role without `s3:GetObject` on the input | FAILED, `AccessDenied` in the driver log |
//! | no write | the ETL as a role without `s3:PutObject` on the output | FAILED, nothing under its `out/` |
//! | preempted | a slow write with the magic committer; a high-priority pod preempts one low-priority executor mid-write | COMPLETED, the job reads back exactly the rows it wrote, no `__magic` or pending upload left |
//!
//! The input is `examples/s3-etl/make_sales.py`'s CSV, `SPARKYARD_S3A_TEST_MB` MiB (16 by
//! default, to keep CI short; the acceptance run used 1024), copied in with `aws s3 cp`.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/jobs.rs"]
mod jobs_env;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jobs_env::Env;
use serde_json::{json, Value};
use support::walkthrough::{self, DRIVER_TEMPLATE, LP_EXECUTOR_TEMPLATE, POD_TEMPLATES};

/// The examples' bucket, as their start-job-run JSONs name it.
const BUCKET: &str = "sparkyard-examples";
const HISTORY_BUCKET: &str = "spark-history";
const NS: &str = "etl";

/// What S3A needs besides step 7's Get/Put/List: deletes (renames, overwrites, committer
/// clean-up) and the multipart actions of large writes and committers.
const FULL_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
     "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts"], "Resource": "*"}]}"#;
/// Everything but reading the data: the code and the event logs stay readable.
const NO_READ_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
     "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"], "Resource": "*"},
  {"Effect": "Allow", "Action": "s3:GetObject",
   "Resource": ["arn:aws:s3:::sparkyard-examples/code/*", "arn:aws:s3:::sparkyard-examples/templates/*", "arn:aws:s3:::spark-history/*"]}]}"#;
/// Reading everything, writing only event logs.
const NO_WRITE_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
   "Resource": "arn:aws:s3:::spark-history/*"}]}"#;

/// The preempted run's job: the ETL's input rewritten with the magic committer, each write
/// task pausing after its first rows so that an executor dies with its files half written.
/// It reads its output back and prints both counts.
const PREEMPTED_JOB: &str = r#"import sys, time
from pyspark.sql import SparkSession
import sales
source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("s3-preempted").getOrCreate()
rows = spark.read.option("header", True).schema(sales.SCHEMA).csv(source).repartition(4)
def slowly(part):
    for i, row in enumerate(part):
        if i == 1000:
            time.sleep(8)
        yield row
spark.createDataFrame(rows.rdd.mapPartitions(slowly), sales.SCHEMA).write.mode("overwrite").parquet(target)
written = spark.read.parquet(target).count()
print(f"s3-preempted read back {written} rows")
spark.stop()
"#;

/// S3A's magic committer for Spark SQL writes (docs/data.md).
const MAGIC: &str = "--conf spark.hadoop.fs.s3a.committer.name=magic --conf spark.sql.sources.commitProtocolClass=org.apache.spark.internal.io.cloud.PathOutputCommitProtocol --conf spark.sql.parquet.output.committer.class=org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter";

struct Data {
    rows: u64,
    by_region: Value,
}

#[test]
fn spark_jobs_read_and_write_s3_with_their_execution_role() {
    let history_port = support::free_port();
    let mut env = Env::serve(&format!(
        "[history]\nport = {history_port}\nevent-log-dir = \"s3://{HISTORY_BUCKET}/events\"\n"
    ));
    env.kubectl(&["create", "namespace", NS]);
    env.vc = env.create_vc("etl", NS, None);
    let full = create_role(&env, "etl-full", FULL_POLICY);
    let no_read = create_role(&env, "etl-no-read", NO_READ_POLICY);
    let no_write = create_role(&env, "etl-no-write", NO_WRITE_POLICY);
    let files = tempfile::tempdir().unwrap();
    for (name, text) in walkthrough::priority_classes() {
        let path = files.path().join(&name);
        std::fs::write(&path, text).unwrap();
        env.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    }
    env.server.aws_ok(&["s3", "mb", &format!("s3://{BUCKET}")]);
    let data = upload_inputs(&env, files.path());

    // The ETL with the seed's pod templates, and its `--py-files`/`--files` from s3://.
    let templates = format!(
        " --conf spark.kubernetes.driver.podTemplateFile=s3://{BUCKET}/templates/{DRIVER_TEMPLATE} --conf spark.kubernetes.executor.podTemplateFile=s3://{BUCKET}/templates/{LP_EXECUTOR_TEMPLATE}"
    );
    let etl = start(
        &env,
        &example("s3-etl/etl-job.json", &templates, None),
        &full,
    );
    finished(&env, &etl, "COMPLETED");
    let listing = env.server.aws_ok(&[
        "s3",
        "ls",
        "--recursive",
        &format!("s3://{BUCKET}/sales/out/"),
    ]);
    assert!(listing.contains("sales/out/_SUCCESS"), "{listing}");
    for city in ["lille", "paris", "lyon", "marseille", "nantes"] {
        assert!(
            listing.contains(&format!("sales/out/city={city}/part-")),
            "no Parquet for {city}:\n{listing}"
        );
    }
    assert!(!listing.contains("_temporary"), "{listing}");
    let driver_log = env.kubectl(&["logs", "-n", NS, &format!("spark-{etl}-driver")]);
    assert!(
        driver_log.contains(&format!("from {} rows", data.rows)),
        "{driver_log}"
    );

    // The event log is in S3 and the History Server, reading S3, lists the application
    // under EMR's id.
    let events = env.server.aws_ok(&[
        "s3",
        "ls",
        "--recursive",
        &format!("s3://{HISTORY_BUCKET}/events/"),
    ]);
    assert!(
        events.contains(&format!(
            "events/eventlog_v2_spark-{etl}/events_1_spark-{etl}"
        )),
        "{events}"
    );
    let apps = env.wait_for_history(history_port, &format!("spark-{etl}"));
    let app = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == format!("spark-{etl}").as_str())
        .unwrap();
    assert_eq!(app["name"], "s3-etl");
    assert_eq!(app["attempts"][0]["completed"], true, "{app:#}");

    // Spark SQL reads the Parquet back, without pod templates; at the same time, roles that
    // may not read the input, or not write the output, fail as S3 refuses them.
    let sql = start(
        &env,
        &example("spark-sql/sales-by-region-job.json", "", None),
        &full,
    );
    let denied_out = "s3://sparkyard-examples/sales/denied-out/";
    let one_executor = " --conf spark.executor.instances=1";
    let unreadable = start(
        &env,
        &example("s3-etl/etl-job.json", one_executor, Some(denied_out)),
        &no_read,
    );
    let unwritable = start(
        &env,
        &example("s3-etl/etl-job.json", one_executor, Some(denied_out)),
        &no_write,
    );
    finished(&env, &sql, "COMPLETED");
    let printed = env.kubectl(&["logs", "-n", NS, &format!("spark-{sql}-driver")]);
    for (region, count) in data.by_region.as_object().unwrap() {
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("sales-by-region\t{region}\t")))
            .unwrap_or_else(|| panic!("no line for {region}:\n{printed}"));
        let sales: Vec<&str> = line.split('\t').collect();
        assert_eq!(sales[3], count.to_string(), "{line}");
    }
    let by_region = env.server.aws_ok(&[
        "s3",
        "ls",
        "--recursive",
        &format!("s3://{BUCKET}/sales/by-region/"),
    ]);
    assert!(by_region.contains("_SUCCESS"), "{by_region}");
    for (id, refusal) in [
        (
            &unreadable,
            "AccessDeniedException: s3://sparkyard-examples/sales/in",
        ),
        (&unwritable, "is not authorized to perform: s3:PutObject"),
    ] {
        let run = finished(&env, id, "FAILED");
        assert_eq!(run["failureReason"], "USER_ERROR", "{run:#}");
        assert!(
            run["stateDetails"]
                .as_str()
                .unwrap()
                .starts_with("JobRun failed: the Spark driver exited with exit code 1"),
            "{run:#}"
        );
        let log = env.kubectl(&["logs", "-n", NS, &format!("spark-{id}-driver")]);
        assert!(log.contains(refusal), "no {refusal:?} in:\n{log}");
    }
    let leftovers = env.server.aws(&["s3", "ls", "--recursive", denied_out]);
    assert!(
        String::from_utf8_lossy(&leftovers.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&leftovers.stdout)
    );

    preempted_mid_write_commits_once(&env, files.path(), &full, &data);
}

/// A low-priority executor is preempted while the magic committer's tasks write: the run
/// still completes, its output holds each row once, and nothing pending is left behind.
fn preempted_mid_write_commits_once(env: &Env, dir: &Path, role: &str, data: &Data) {
    let job = dir.join("preempted.py");
    std::fs::write(&job, PREEMPTED_JOB).unwrap();
    copy_to_s3(env, &job, "code/preempted.py");
    let target = format!("s3://{BUCKET}/sales/preempted/");
    let request = json!({
        "name": "s3-preempted",
        "releaseLabel": "emr-7.2.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": format!("s3://{BUCKET}/code/preempted.py"),
            "entryPointArguments": [format!("s3://{BUCKET}/sales/in/"), target],
            "sparkSubmitParameters": format!(
                "--py-files s3://{BUCKET}/code/sales.py --conf spark.executor.instances=2 --conf spark.executor.cores=1 --conf spark.executor.memory=1g --conf spark.driver.memory=1g --conf spark.kubernetes.driver.podTemplateFile=s3://{BUCKET}/templates/{DRIVER_TEMPLATE} --conf spark.kubernetes.executor.podTemplateFile=s3://{BUCKET}/templates/{LP_EXECUTOR_TEMPLATE} {MAGIC}"
            ),
        }},
    });
    let id = start(env, &request, role);

    // The write job has started once the committer's `__magic_job-…/` directory exists.
    env.wait_for_value("the magic committer's job directory", || {
        let keys = list_keys(env, "sales/preempted/");
        keys.iter().any(|k| k.contains("__magic")).then_some(())
    });
    let executors = format!("emr-containers.amazonaws.com/job.id={id},spark-role=executor");
    let running: Vec<Value> = env.wait_for_value("two running executors", || {
        let pods = pods(env, &executors);
        let running: Vec<Value> = pods
            .into_iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .collect();
        (running.len() == 2).then_some(running)
    });
    // A critical-priority pod that fits only in the room of one executor (1 CPU).
    let node = running[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let need = free_millicpu(env, &node) + 500;
    let intruder = dir.join("intruder.yaml");
    std::fs::write(
        &intruder,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: intruder\n  namespace: {NS}\nspec:\n  priorityClassName: critical-priority\n  nodeSelector:\n    kubernetes.io/hostname: {node}\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [sleep, \"600\"]\n    resources:\n      requests: {{cpu: {need}m, memory: 64Mi}}\n"
        ),
    )
    .unwrap();
    env.kubectl(&["apply", "-f", intruder.to_str().unwrap()]);
    let victim = env.wait_for_value("an executor preempted", || {
        let events: Value = serde_json::from_str(&env.kubectl(&[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "reason=Preempted",
            "-o",
            "json",
        ]))
        .ok()?;
        events["items"].as_array()?.iter().find_map(|e| {
            let name = e["involvedObject"]["name"].as_str()?;
            running
                .iter()
                .any(|p| p["metadata"]["name"] == name)
                .then(|| name.to_string())
        })
    });
    eprintln!("preempted {victim} mid-write");
    let still_writing = list_keys(env, "sales/preempted/");
    assert!(
        !still_writing.iter().any(|k| k.ends_with("_SUCCESS")),
        "the job had committed before the preemption: {still_writing:?}"
    );
    env.kubectl(&["delete", "pod", "-n", NS, "intruder", "--wait=false"]);

    finished(env, &id, "COMPLETED");
    let log = env.kubectl(&["logs", "-n", NS, &format!("spark-{id}-driver")]);
    assert!(
        log.contains(&format!("s3-preempted read back {} rows", data.rows)),
        "{log}"
    );
    let keys = list_keys(env, "sales/preempted/");
    assert!(keys.iter().any(|k| k.ends_with("_SUCCESS")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("__magic")), "{keys:?}");
    let uploads = env.server.aws_json(&[
        "s3api",
        "list-multipart-uploads",
        "--bucket",
        BUCKET,
        "--prefix",
        "sales/preempted/",
    ]);
    assert!(uploads.get("Uploads").is_none(), "{uploads:#}");
}

/// Step 7 for one role of the namespace: trust, policy, and EMR's trust of the namespace's
/// service accounts. Returns its ARN.
fn create_role(env: &Env, name: &str, policy: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust.json");
    std::fs::write(&trust, walkthrough::TRUST_POLICY).unwrap();
    let arn = env.server.aws_json(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        &format!("file://{}", trust.display()),
    ])["Role"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    let file = dir.path().join("policy.json");
    std::fs::write(&file, policy).unwrap();
    env.server.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        name,
        "--policy-name",
        "data",
        "--policy-document",
        &format!("file://{}", file.display()),
    ]);
    env.server.aws_ok(&[
        "emr-containers",
        "update-role-trust-policy",
        "--cluster-name",
        walkthrough::CLUSTER,
        "--namespace",
        NS,
        "--role-name",
        name,
    ]);
    arn
}

/// The generated CSV under `sales/in/`, the examples' code under `code/`, the seed's pod
/// templates under `templates/`, all with `aws s3 cp`.
fn upload_inputs(env: &Env, dir: &Path) -> Data {
    let mb: u64 = std::env::var("SPARKYARD_S3A_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let examples = support::repo_root().join("examples");
    let csv = dir.join("in");
    let out = Command::new(support::venv_tool("python3"))
        .arg(examples.join("s3-etl/make_sales.py"))
        .arg(&csv)
        .args(["--mb", &mb.to_string(), "--files", "4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let generated: Value = serde_json::from_slice(&out.stdout).unwrap();
    env.server.aws_ok(&[
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        csv.to_str().unwrap(),
        &format!("s3://{BUCKET}/sales/in/"),
    ]);
    for file in [
        "s3-etl/etl.py",
        "s3-etl/sales.py",
        "s3-etl/regions.csv",
        "spark-sql/sales-by-region.sql",
    ] {
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        copy_to_s3(env, &examples.join(file), &format!("code/{name}"));
    }
    for (name, text) in POD_TEMPLATES {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        copy_to_s3(env, &path, &format!("templates/{name}"));
    }
    eprintln!("input: {generated}");
    Data {
        rows: generated["rows"].as_u64().unwrap(),
        by_region: generated["by_region"].clone(),
    }
}

fn copy_to_s3(env: &Env, file: &Path, key: &str) {
    env.server.aws_ok(&[
        "s3",
        "cp",
        "--quiet",
        file.to_str().unwrap(),
        &format!("s3://{BUCKET}/{key}"),
    ]);
}

/// An example's start-job-run JSON, with more spark-submit parameters and another output.
fn example(file: &str, more_params: &str, output: Option<&str>) -> Value {
    let path = support::repo_root().join("examples").join(file);
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let driver = request["jobDriver"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    for key in ["sparkSubmitParameters", "sparkSqlParameters"] {
        if let Some(Value::String(params)) = driver.get_mut(key) {
            params.push_str(more_params);
        }
    }
    if let Some(output) = output {
        driver["entryPointArguments"][1] = json!(output);
    }
    request
}

/// `aws emr-containers start-job-run --cli-input-json file://… --virtual-cluster-id …
/// --execution-role-arn …`, as the examples' README says; returns the run's id.
fn start(env: &Env, request: &Value, role: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.json");
    std::fs::write(&file, request.to_string()).unwrap();
    env.server.aws_json(&[
        "emr-containers",
        "start-job-run",
        "--cli-input-json",
        &format!("file://{}", file.display()),
        "--virtual-cluster-id",
        &env.vc,
        "--execution-role-arn",
        role,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits for the run to end and asserts its state; the driver's log explains a surprise.
fn finished(env: &Env, id: &str, expected: &str) -> Value {
    let (run, states) = env.follow(&env.vc, id, Duration::from_secs(900), |_| {});
    if run["state"] != expected {
        let driver = cluster::kubectl(
            &env.kubeconfig,
            &[
                "logs",
                "-n",
                NS,
                &format!("spark-{id}-driver"),
                "--tail",
                "80",
            ],
        );
        panic!(
            "run {id} ended {} (states {states:?}), expected {expected}: {run:#}\ndriver log:\n{}",
            run["state"],
            String::from_utf8_lossy(&driver.stdout)
        );
    }
    eprintln!("run {id} ({}): {}", run["name"], run["stateDetails"]);
    run
}

fn list_keys(env: &Env, prefix: &str) -> Vec<String> {
    let listing = env.server.aws_json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        prefix,
    ]);
    listing["Contents"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|o| o["Key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn pods(env: &Env, selector: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(
        &env.kubectl(&["get", "pods", "-n", NS, "-l", selector, "-o", "json"]),
    )
    .unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The node's allocatable CPU less the requests of the pods that still hold it.
fn free_millicpu(env: &Env, node: &str) -> i64 {
    let node_json: Value =
        serde_json::from_str(&env.kubectl(&["get", "node", node, "-o", "json"])).unwrap();
    let allocatable = millicpu(node_json["status"]["allocatable"]["cpu"].as_str().unwrap());
    let all: Value = serde_json::from_str(&env.kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "json",
    ]))
    .unwrap();
    let used: i64 = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .flat_map(|p| {
            p["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["resources"]["requests"]["cpu"].as_str().map(millicpu))
        .sum();
    allocatable - used
}

fn millicpu(quantity: &str) -> i64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse().unwrap(),
        None => (quantity.parse::<f64>().unwrap() * 1000.0) as i64,
    }
}

trait Waits {
    fn wait_for_value<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T;
    fn wait_for_history(&self, port: u16, app: &str) -> Value;
}

impl Waits for Env {
    /// Polls `probe` until it gives a value (bounded, so a broken run fails rather than hangs).
    fn wait_for_value<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The History Server's `/api/v1/applications` once it lists `app`.
    fn wait_for_history(&self, port: u16, app: &str) -> Value {
        self.wait_for_value(&format!("the History Server to list {app}"), || {
            let out = Command::new("curl")
                .args([
                    "-sf",
                    &format!("http://127.0.0.1:{port}/api/v1/applications"),
                ])
                .output()
                .ok()?;
            let apps: Value = serde_json::from_slice(&out.stdout).ok()?;
            apps.as_array()?
                .iter()
                .any(|a| a["id"] == app)
                .then_some(apps)
        })
    }
}
