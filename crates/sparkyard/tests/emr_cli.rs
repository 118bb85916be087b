//! Acceptance tests for the emr-containers API through the real AWS CLI (awscli v1 from PyPI),
//! written from `shared/reference/emr-containers.md` and the seed walkthrough (steps 5 and 9).
//!
//! Every command goes through the `sparkyard` profile that the server writes into its data
//! directory, so these tests also exercise SigV4 verification and the generated profile.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Server;

/// The API alone: `--no-controller` keeps accepted runs PENDING (execution is tested
/// elsewhere) and `--no-cluster` skips the embedded Kubernetes cluster these tests don't use.
fn api_server() -> Server {
    Server::start_with(&["--no-controller", "--no-cluster"])
}

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const NAMESPACES: [&str; 5] = [
    "realtime-batch",
    "intra-day-batch",
    "nightly-batch",
    "monthly-batch",
    "adhoc-ml-batch",
];

// ---------------------------------------------------------------------------------------------
// helpers

fn container_provider(namespace: &str) -> String {
    json!({"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}})
        .to_string()
}

/// `aws emr-containers create-virtual-cluster` as in seed step 5; returns the whole response.
fn create_vc(s: &Server, name: &str, namespace: &str) -> Value {
    let provider = container_provider(namespace);
    s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        name,
        "--container-provider",
        &provider,
    ])
}

fn create_vc_id(s: &Server, namespace: &str) -> String {
    let out = create_vc(s, &format!("{namespace}-emr-cluster"), namespace);
    str_field(&out, "id")
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {v:#}"))
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the CLI failed the way botocore reports a modeled AWS error: exit code 255 and
/// `An error occurred (<code>) when calling the <operation> operation: …` on stderr.
/// Returns the message after the colon.
fn assert_aws_error(out: &Output, code: &str, operation: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(255),
        "expected exit code 255 for {code} from {operation}; stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    let prefix = format!("An error occurred ({code}) when calling the {operation} operation: ");
    let line = err
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("stderr has no line starting {prefix:?}:\n{err}"));
    let message = line[prefix.len()..].to_string();
    assert!(!message.trim().is_empty(), "empty error message: {err}");
    message
}

fn list_vcs(s: &Server) -> Value {
    s.aws_json(&["emr-containers", "list-virtual-clusters"])
}

fn list_job_runs(s: &Server, vc: &str) -> Value {
    s.aws_json(&[
        "emr-containers",
        "list-job-runs",
        "--virtual-cluster-id",
        vc,
    ])
}

fn describe_vc(s: &Server, vc: &str) -> Value {
    s.aws_json(&["emr-containers", "describe-virtual-cluster", "--id", vc])["virtualCluster"]
        .clone()
}

/// The seed's step-9 `pi-4` request (`start-job-run --cli-input-json file://…`).
fn pi_request(vc: &str) -> Value {
    json!({
        "name": "pi-4",
        "virtualClusterId": vc,
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/monthly-batch-JobExecutionRole"),
        "releaseLabel": "emr-6.3.0-latest",
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
                "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"
            }
        },
        "configurationOverrides": {
            "applicationConfiguration": [
                {
                    "classification": "spark-defaults",
                    "properties": {
                        "spark.dynamicAllocation.enabled": "false",
                        "spark.kubernetes.executor.deleteOnTermination": "true"
                    }
                }
            ],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {
                    "logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch",
                    "logStreamNamePrefix": "pi"
                },
                "s3MonitoringConfiguration": {
                    "logUri": format!("s3://monthly-batch-logs-{ACCOUNT}-{REGION}/")
                }
            }
        }
    })
}

/// Writes `request` into a temp file and runs `start-job-run --cli-input-json file://…`.
fn start_job_run_from_file(s: &Server, request: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pi.json");
    std::fs::write(&path, serde_json::to_string_pretty(request).unwrap()).unwrap();
    let arg = format!("file://{}", path.display());
    s.aws(&[
        "emr-containers",
        "start-job-run",
        "--cli-input-json",
        &arg,
        "--output",
        "json",
    ])
}

fn start_pi(s: &Server, vc: &str) -> Value {
    let out = start_job_run_from_file(s, &pi_request(vc));
    assert!(
        out.status.success(),
        "start-job-run failed: {}\nserver log:\n{}",
        stderr(&out),
        s.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_iso8601_recent(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
        .unwrap();
    assert!(
        re.is_match(text),
        "{what} {text:?} is not an ISO-8601 UTC timestamp"
    );
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} {text:?} does not parse: {e}"));
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(
        age.num_seconds().abs() < 300,
        "{what} {text} is not within 5 minutes of now"
    );
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn job_run_id_regex() -> regex::Regex {
    regex::Regex::new(r"^0{7}[0-9a-z]{12}$").unwrap()
}

// ---------------------------------------------------------------------------------------------
// seed step 5: five virtual clusters, then the id lookup the seed's scripts use

#[test]
fn seed_step5_five_virtual_clusters_and_query_lookup() {
    let s = api_server();
    let mut ids = Vec::new();
    let id_re = regex::Regex::new(r"^[0-9a-z]{1,64}$").unwrap();
    for ns in NAMESPACES {
        let name = format!("{ns}-emr-cluster");
        let out = create_vc(&s, &name, ns);
        let id = str_field(&out, "id");
        assert!(
            id_re.is_match(&id),
            "virtual cluster id {id:?} is not a ResourceIdString"
        );
        assert_eq!(str_field(&out, "name"), name, "create response name");
        assert_eq!(
            str_field(&out, "arn"),
            format!("arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{id}"),
            "create response arn"
        );
        ids.push(id);
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        5,
        "virtual cluster ids must be distinct: {ids:?}"
    );

    // The seed's exact lookup (step 9 / step 22), text output.
    let text = s.aws_ok(&[
        "emr-containers",
        "list-virtual-clusters",
        "--query",
        "virtualClusters[?name=='monthly-batch-emr-cluster' && state=='RUNNING' && containerProvider.id=='eks-emr-cluster'].id",
        "--output",
        "text",
    ]);
    assert_eq!(
        text.trim(),
        ids[3],
        "the seed's --query lookup must print the monthly-batch id only"
    );

    // Every cluster is listed, RUNNING, with its container provider echoed exactly.
    let listed = list_vcs(&s);
    let vcs = listed["virtualClusters"]
        .as_array()
        .expect("virtualClusters array");
    assert_eq!(vcs.len(), 5, "list-virtual-clusters: {listed:#}");
    for (ns, id) in NAMESPACES.iter().zip(&ids) {
        let vc = vcs
            .iter()
            .find(|v| v["id"] == json!(id))
            .unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(vc["name"], json!(format!("{ns}-emr-cluster")));
        assert_eq!(vc["state"], json!("RUNNING"));
        let provider: Value = serde_json::from_str(&container_provider(ns)).unwrap();
        assert_eq!(
            vc["containerProvider"], provider,
            "containerProvider echoed exactly"
        );
        assert_iso8601_recent(&vc["createdAt"], "virtualCluster.createdAt");
        let described = describe_vc(&s, id);
        assert_eq!(described["id"], json!(id));
        assert_eq!(described["state"], json!("RUNNING"));
        assert_eq!(described["containerProvider"], provider);
    }
}

// ---------------------------------------------------------------------------------------------
// seed step 9: start the pi-4 job run from a JSON file and read it back

#[test]
fn seed_step9_start_job_run_from_json_file_and_read_back() {
    let s = api_server();
    for ns in NAMESPACES {
        create_vc_id(&s, ns);
    }
    let vc = s
        .aws_ok(&[
            "emr-containers",
            "list-virtual-clusters",
            "--query",
            "virtualClusters[?name=='monthly-batch-emr-cluster' && state=='RUNNING' && containerProvider.id=='eks-emr-cluster'].id",
            "--output",
            "text",
        ])
        .trim()
        .to_string();
    assert!(
        !vc.is_empty() && !vc.contains(char::is_whitespace),
        "lookup gave {vc:?}"
    );

    let request = pi_request(&vc);
    let started = start_pi(&s, &vc);
    let id = str_field(&started, "id");
    assert_eq!(id.len(), 19, "job run id {id:?} must be 19 characters");
    assert!(
        job_run_id_regex().is_match(&id),
        "job run id {id:?} must match ^0{{7}}[0-9a-z]{{12}}$"
    );
    assert_eq!(started["name"], json!("pi-4"));
    assert_eq!(started["virtualClusterId"], json!(vc));
    let arn =
        format!("arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{vc}/jobruns/{id}");
    assert_eq!(started["arn"], json!(arn));

    let described = s.aws_json(&[
        "emr-containers",
        "describe-job-run",
        "--virtual-cluster-id",
        &vc,
        "--id",
        &id,
    ]);
    let run = &described["jobRun"];
    check_pi_run(run, &request, &id, &vc, &arn);

    let listed = list_job_runs(&s, &vc);
    let runs = listed["jobRuns"].as_array().expect("jobRuns array");
    assert_eq!(runs.len(), 1, "list-job-runs: {listed:#}");
    check_pi_run(&runs[0], &request, &id, &vc, &arn);
    assert_eq!(
        &runs[0], run,
        "list-job-runs and describe-job-run must show the same JobRun"
    );
}

fn check_pi_run(run: &Value, request: &Value, id: &str, vc: &str, arn: &str) {
    assert_eq!(run["id"], json!(id), "jobRun.id");
    assert_eq!(
        run["virtualClusterId"],
        json!(vc),
        "jobRun.virtualClusterId"
    );
    assert_eq!(run["arn"], json!(arn), "jobRun.arn");
    assert_eq!(run["name"], request["name"], "jobRun.name");
    // Execution arrives in a later issue: an accepted run waits in PENDING.
    assert_eq!(run["state"], json!("PENDING"), "jobRun.state");
    assert_eq!(
        run["executionRoleArn"], request["executionRoleArn"],
        "jobRun.executionRoleArn"
    );
    assert_eq!(
        run["releaseLabel"], request["releaseLabel"],
        "jobRun.releaseLabel"
    );
    assert_eq!(
        run["jobDriver"], request["jobDriver"],
        "jobRun.jobDriver echoed exactly"
    );
    assert_eq!(
        run["configurationOverrides"], request["configurationOverrides"],
        "jobRun.configurationOverrides echoed exactly"
    );
    let created_by = run["createdBy"]
        .as_str()
        .unwrap_or_else(|| panic!("no createdBy in {run:#}"));
    let by_re = regex::Regex::new(r"^arn:aws:(iam|sts)::123456789012:[\w/+=,.@-]+$").unwrap();
    assert!(
        by_re.is_match(created_by),
        "createdBy {created_by:?} is not an IAM/STS ARN of the account"
    );
    assert_iso8601_recent(&run["createdAt"], "jobRun.createdAt");
    assert!(
        run.get("finishedAt").is_none(),
        "a PENDING run has no finishedAt: {run:#}"
    );
    let token = run["clientToken"].as_str().unwrap_or_default();
    assert!(
        !token.is_empty(),
        "jobRun.clientToken (the CLI always sends one): {run:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// error paths

#[test]
fn describe_unknown_job_run_is_resource_not_found() {
    let s = api_server();
    let vc = create_vc_id(&s, "monthly-batch");
    let unknown = "0000000306pd7cjc3s5";
    let out = s.aws(&[
        "emr-containers",
        "describe-job-run",
        "--virtual-cluster-id",
        &vc,
        "--id",
        unknown,
    ]);
    assert_aws_error(&out, "ResourceNotFoundException", "DescribeJobRun");
    let expected = format!(
        "An error occurred (ResourceNotFoundException) when calling the DescribeJobRun operation: Job run {unknown} doesn't exist."
    );
    assert!(
        stderr(&out).lines().any(|l| l == expected),
        "stderr must carry exactly {expected:?}, got:\n{}",
        stderr(&out)
    );

    // A real run in another virtual cluster is not found through this one either.
    let other = create_vc_id(&s, "nightly-batch");
    let started = start_pi(&s, &other);
    let id = str_field(&started, "id");
    let out = s.aws(&[
        "emr-containers",
        "describe-job-run",
        "--virtual-cluster-id",
        &vc,
        "--id",
        &id,
    ]);
    assert_aws_error(&out, "ResourceNotFoundException", "DescribeJobRun");
}

#[test]
fn describe_unknown_virtual_cluster_is_resource_not_found() {
    let s = api_server();
    let out = s.aws(&[
        "emr-containers",
        "describe-virtual-cluster",
        "--id",
        "ahg18jv46xeqp3jbe83pj39m1",
    ]);
    assert_aws_error(&out, "ResourceNotFoundException", "DescribeVirtualCluster");
}

#[test]
fn bad_names_are_validation_errors_and_change_nothing() {
    let s = api_server();
    let vc = create_vc_id(&s, "monthly-batch");
    let before = list_vcs(&s);

    let long = "a".repeat(65);
    for (i, name) in [long.as_str(), "bad name!"].into_iter().enumerate() {
        let provider = container_provider(&format!("ns-{i}"));
        let out = s.aws(&[
            "emr-containers",
            "create-virtual-cluster",
            "--name",
            name,
            "--container-provider",
            &provider,
        ]);
        assert_aws_error(&out, "ValidationException", "CreateVirtualCluster");
        assert_eq!(
            list_vcs(&s),
            before,
            "a rejected create-virtual-cluster ({name:?}) changed the list"
        );
    }
    // 64 characters is still a valid name (the boundary).
    create_vc(&s, &"b".repeat(64), "ns-64");

    // Job run names follow the same rule.
    let runs_before = list_job_runs(&s, &vc);
    for name in [long.as_str(), "bad name!"] {
        let mut request = pi_request(&vc);
        request["name"] = json!(name);
        let out = start_job_run_from_file(&s, &request);
        assert_aws_error(&out, "ValidationException", "StartJobRun");
        assert_eq!(
            list_job_runs(&s, &vc),
            runs_before,
            "a rejected start-job-run ({name:?}) changed the list"
        );
    }
}

#[test]
fn second_virtual_cluster_in_same_namespace_is_rejected() {
    let s = api_server();
    create_vc_id(&s, "monthly-batch");
    let before = list_vcs(&s);
    let out = s.aws(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "another-name",
        "--container-provider",
        &container_provider("monthly-batch"),
    ]);
    assert_aws_error(&out, "ValidationException", "CreateVirtualCluster");
    assert_eq!(
        list_vcs(&s),
        before,
        "the rejected create-virtual-cluster changed the list"
    );
}

#[test]
fn start_job_run_on_deleted_virtual_cluster_is_rejected() {
    let s = api_server();
    let vc = create_vc_id(&s, "monthly-batch");
    start_pi(&s, &vc);
    s.aws_json(&["emr-containers", "delete-virtual-cluster", "--id", &vc]);

    // Right after the delete (TERMINATING or TERMINATED) …
    let runs_before = list_job_runs(&s, &vc);
    let out = start_job_run_from_file(&s, &pi_request(&vc));
    assert_aws_error(&out, "ValidationException", "StartJobRun");
    assert_eq!(
        list_job_runs(&s, &vc),
        runs_before,
        "rejected start-job-run changed list-job-runs"
    );

    // … and once it is TERMINATED.
    wait_terminated(&s, &vc);
    let vcs_before = list_vcs(&s);
    let runs_before = list_job_runs(&s, &vc);
    let out = start_job_run_from_file(&s, &pi_request(&vc));
    let message = assert_aws_error(&out, "ValidationException", "StartJobRun");
    assert!(
        message.contains("TERMINATED"),
        "message should name the state (\"Virtual cluster state TERMINATED is not valid to create resource JobRun.\"), got {message:?}"
    );
    assert_eq!(
        list_job_runs(&s, &vc),
        runs_before,
        "rejected start-job-run changed list-job-runs"
    );
    assert_eq!(
        list_vcs(&s),
        vcs_before,
        "rejected start-job-run changed list-virtual-clusters"
    );
}

#[test]
fn unknown_release_label_is_resource_not_found() {
    let s = api_server();
    let vc = create_vc_id(&s, "monthly-batch");
    let before = list_job_runs(&s, &vc);
    let mut request = pi_request(&vc);
    request["releaseLabel"] = json!("emr-99.0.0-latest");
    let out = start_job_run_from_file(&s, &request);
    let message = assert_aws_error(&out, "ResourceNotFoundException", "StartJobRun");
    assert_eq!(message, "Release emr-99.0.0-latest doesn't exist.");
    assert_eq!(
        list_job_runs(&s, &vc),
        before,
        "rejected start-job-run changed list-job-runs"
    );
}

#[test]
fn unknown_virtual_cluster_for_start_job_run_is_resource_not_found() {
    let s = api_server();
    let out = start_job_run_from_file(&s, &pi_request("ahg18jv46xeqp3jbe83pj39m1"));
    let message = assert_aws_error(&out, "ResourceNotFoundException", "StartJobRun");
    assert!(
        message.contains("ahg18jv46xeqp3jbe83pj39m1"),
        "message should name the cluster: {message:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// delete virtual cluster

fn wait_terminated(s: &Server, vc: &str) {
    poll(
        "virtual cluster to reach TERMINATED",
        Duration::from_secs(60),
        || {
            let state = describe_vc(s, vc)["state"].clone();
            assert!(
                state == json!("TERMINATING") || state == json!("TERMINATED"),
                "a deleted virtual cluster must be TERMINATING or TERMINATED, got {state}"
            );
            (state == json!("TERMINATED")).then_some(())
        },
    );
}

#[test]
fn delete_virtual_cluster_terminates_and_stays_listed() {
    let s = api_server();
    let vc = create_vc_id(&s, "monthly-batch");
    let keep = create_vc_id(&s, "nightly-batch");
    let out = s.aws_json(&["emr-containers", "delete-virtual-cluster", "--id", &vc]);
    assert_eq!(
        out["id"],
        json!(vc),
        "delete-virtual-cluster returns the id"
    );
    let state = describe_vc(&s, &vc)["state"].clone();
    assert!(
        state == json!("TERMINATING") || state == json!("TERMINATED"),
        "right after delete the state must be TERMINATING or TERMINATED, got {state}"
    );
    wait_terminated(&s, &vc);

    let terminated = s.aws_json(&[
        "emr-containers",
        "list-virtual-clusters",
        "--states",
        "TERMINATED",
    ]);
    let ids: Vec<&Value> = terminated["virtualClusters"]
        .as_array()
        .expect("virtualClusters")
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(vc)],
        "--states TERMINATED lists exactly the deleted cluster"
    );

    let running = s.aws_json(&[
        "emr-containers",
        "list-virtual-clusters",
        "--states",
        "RUNNING",
    ]);
    let ids: Vec<&Value> = running["virtualClusters"]
        .as_array()
        .expect("virtualClusters")
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(keep)],
        "--states RUNNING lists only the live cluster"
    );

    // The seed's lookup no longer finds it (it filters on state=='RUNNING'), and the
    // namespace is free again.
    let text = s.aws_ok(&[
        "emr-containers",
        "list-virtual-clusters",
        "--query",
        "virtualClusters[?name=='monthly-batch-emr-cluster' && state=='RUNNING'].id",
        "--output",
        "text",
    ]);
    assert!(
        text.trim().is_empty() || text.trim() == "None",
        "lookup after delete printed {text:?}"
    );
    let again = create_vc_id(&s, "monthly-batch");
    assert_ne!(again, vc, "a new virtual cluster gets a new id");
}
