//! Acceptance tests for the emr-containers API through boto3 (PyPI), one test per group of
//! `tests/python/boto3_all_ops.py`, each against its own fresh server so a failure points at
//! one area. The Python prints what it checked; on failure the harness shows its traceback and
//! the server log.

mod support;

use support::Server;

/// The API alone: `--no-controller` keeps accepted runs PENDING (execution is tested
/// elsewhere) and `--no-cluster` skips the embedded Kubernetes cluster these tests don't use.
fn api_server() -> Server {
    Server::start_with(&["--no-controller", "--no-cluster"])
}

fn run_group(group: &str) {
    let s = api_server();
    let out = s.python("boto3_all_ops.py", &[group]);
    assert!(
        out.lines().any(|l| l.starts_with(&format!("ok {group}"))),
        "group {group} did not report success:\n{out}"
    );
}

/// Each of the 25 operations is called once and answered (200, or the specified 400 for
/// GetManagedEndpointSessionCredentials).
#[test]
fn boto3_all_25_operations() {
    run_group("all_operations");
}

#[test]
fn boto3_virtual_clusters_lifecycle_filters_and_pagination() {
    run_group("virtual_clusters");
}

#[test]
fn boto3_job_run_fields_echo_and_validation() {
    run_group("job_run_fields");
}

#[test]
fn boto3_job_run_pagination_newest_first() {
    run_group("job_run_pagination");
}

#[test]
fn boto3_job_run_list_filters() {
    run_group("job_run_filters");
}

#[test]
fn boto3_idempotent_client_token() {
    run_group("idempotency");
}

#[test]
fn boto3_job_templates_and_parameters() {
    run_group("job_templates");
}

#[test]
fn boto3_cancel_job_run() {
    run_group("cancel");
}

#[test]
fn boto3_scheduler_configuration_and_queue_limit() {
    run_group("scheduler");
}

#[test]
fn boto3_managed_endpoints_end_terminated_with_errors() {
    run_group("managed_endpoints");
}

#[test]
fn boto3_security_configurations() {
    run_group("security_configurations");
}

#[test]
fn boto3_tags_on_every_taggable_arn() {
    run_group("tags");
}
