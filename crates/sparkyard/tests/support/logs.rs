//! The environment of the log tests: [`jobs_env::Env`]'s `sparkyard serve` with its embedded
//! cluster, walkthrough steps 5, 7 and 8 for [`NS`] (namespace and virtual cluster, execution
//! role with the seed's policy and EMR's trust, log group and bucket), and what the tests
//! read back: S3 objects, CloudWatch events, pod phases.
//!
//! Include it as `#[path = "support/logs.rs"] mod logs_env;` beside `mod support;`,
//! `#[path = "support/cluster.rs"] mod cluster;` and `#[path = "support/jobs.rs"] mod
//! jobs_env;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::ops::{Deref, DerefMut};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster;
use crate::jobs_env::{self, PI};
use crate::support::walkthrough;

pub use crate::jobs_env::NS;
pub const ROLE: &str = "monthly-batch-JobExecutionRole";
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const GROUP: &str = "/emr-on-eks/eks-emr-cluster/monthly-batch";

/// Tests that do not look at the history server spare the machine a JVM.
pub const NO_HISTORY: &str = "[history]\nenabled = false\n";

/// Step 8's log bucket of [`NS`].
pub fn bucket() -> String {
    format!("monthly-batch-logs-{ACCOUNT}-{REGION}")
}

/// A [`jobs_env::Env`] (server, kubeconfig, `vc`, `role_arn`, kubectl) with a scratch
/// directory for the files the tests hand to the CLIs.
pub struct Env {
    env: jobs_env::Env,
    pub _dir: tempfile::TempDir,
}

impl Deref for Env {
    type Target = jobs_env::Env;
    fn deref(&self) -> &jobs_env::Env {
        &self.env
    }
}

impl DerefMut for Env {
    fn deref_mut(&mut self) -> &mut jobs_env::Env {
        &mut self.env
    }
}

impl Env {
    /// `sparkyard serve` with its embedded cluster (and the job-run controller if
    /// `controller`), `extra_config` at the end of its configuration file, plus walkthrough
    /// steps 5 (namespace, virtual cluster), 7 (role, the seed's policy, EMR trust) and 8
    /// (log group and bucket).
    pub fn start(controller: bool, extra_config: &str) -> Env {
        let args: &[&str] = if controller {
            &[]
        } else {
            &["--no-controller"]
        };
        let mut env = jobs_env::Env::serve_with(extra_config, args);
        env.walkthrough_setup(NS, None);
        walkthrough::grant_job_policy(&env.server, NS);
        assert_eq!(
            walkthrough::log_locations(&env.server, NS, ACCOUNT, REGION),
            bucket()
        );
        Env {
            env,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn kubectl_apply(&self, object: &Value) {
        let file = self
            ._dir
            .path()
            .join(format!("{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, object.to_string()).unwrap();
        self.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    }

    pub fn file_arg(&self, name: &str, content: &str) -> String {
        let path = self._dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        format!("file://{}", path.display())
    }

    /// A service-account name the role's EMR trust statement admits, for `component`.
    pub fn service_account(&self, component: &str) -> String {
        self.role_service_account(ROLE, component)
    }

    /// A service-account name the EMR trust statement of the role `role_name` admits, for
    /// `component`.
    pub fn role_service_account(&self, role_name: &str, component: &str) -> String {
        let role = self
            .server
            .aws_json(&["iam", "get-role", "--role-name", role_name]);
        let statements = role["Role"]["AssumeRolePolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone();
        let pattern = statements
            .iter()
            .find_map(|s| {
                s["Condition"]["StringLike"]
                    .as_object()
                    .and_then(|o| o.values().next().cloned())
            })
            .expect("EMR trust statement");
        let subject = pattern.as_str().unwrap().replacen("*-*", component, 1);
        subject.rsplit(':').next().unwrap().to_string()
    }

    /// The service account of the run's driver, annotated with the execution role (IRSA);
    /// returns its name.
    pub fn driver_service_account(&self) -> String {
        let name = self.service_account("spark-driver");
        self.kubectl_apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"eks.amazonaws.com/role-arn": self.role_arn}}}));
        name
    }

    /// Another execution role for [`NS`], made as step 7 makes the seed's: EMR's trust
    /// policy, `policy` as its permissions, and EMR's trust of the namespace's service
    /// accounts. Returns its ARN.
    pub fn execution_role(&self, name: &str, policy: &Value) -> String {
        let s = &self.server;
        let trust = self.file_arg(&format!("{name}-trust.json"), walkthrough::TRUST_POLICY);
        let arn = s.aws_json(&[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            &trust,
        ])["Role"]["Arn"]
            .as_str()
            .unwrap()
            .to_string();
        let policy = self.file_arg(&format!("{name}-policy.json"), &policy.to_string());
        s.aws_ok(&[
            "iam",
            "put-role-policy",
            "--role-name",
            name,
            "--policy-name",
            "EMR-Containers-Job-Execution",
            "--policy-document",
            &policy,
        ]);
        s.aws_ok(&[
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

    /// The service account of `component` (e.g. `spark-driver`) under the role `role_name`
    /// (`role_arn`), annotated with the role (IRSA); returns its name.
    pub fn annotated_service_account(
        &self,
        role_name: &str,
        role_arn: &str,
        component: &str,
    ) -> String {
        let name = self.role_service_account(role_name, component);
        self.kubectl_apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"eks.amazonaws.com/role-arn": role_arn}}}));
        name
    }

    /// [`Env::start_run`] with the execution role `role_arn` and no extra overrides.
    pub fn start_run_as(&self, role_arn: &str, params: &str) -> String {
        let request = self.request(
            &self.vc,
            "pi-4",
            PI,
            params,
            json!({"executionRoleArn": role_arn}),
        );
        self.start(&request)
    }

    /// The first line of sparkyard's log that contains every one of `parts`.
    pub fn log_line(&self, parts: &[&str]) -> Option<String> {
        self.server
            .log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(String::from)
    }

    /// Step 9's request (the seed's pi-4), with `extra_overrides` merged into its
    /// `configurationOverrides`; returns the run id.
    pub fn start_run(&self, params: &str, extra_overrides: Value) -> String {
        let mut request = self.request(&self.vc, "pi-4", PI, params, json!({}));
        for (k, v) in extra_overrides.as_object().cloned().unwrap_or_default() {
            request["configurationOverrides"][k] = v;
        }
        self.start(&request)
    }

    /// The gunzipped S3 object, or `None` while it does not exist.
    pub fn s3_text(&self, key: &str) -> Option<String> {
        let local = self
            ._dir
            .path()
            .join(format!("{}.gz", uuid::Uuid::new_v4()));
        let out = self.server.aws(&[
            "s3",
            "cp",
            &format!("s3://{}/{key}", bucket()),
            local.to_str().unwrap(),
        ]);
        if !out.status.success() {
            return None;
        }
        let mut text = String::new();
        gunzip(&std::fs::read(&local).unwrap(), &mut text);
        Some(text)
    }

    pub fn cloudwatch_messages(&self, stream: &str) -> Vec<String> {
        let out = self.server.aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            GROUP,
            "--log-stream-name",
            stream,
            "--start-from-head",
            "--output",
            "json",
        ]);
        if !out.status.success() {
            return Vec::new();
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn pod_phase(&self, pod: &str) -> String {
        let out = cluster::kubectl(
            &self.kubeconfig,
            &[
                "get",
                "pod",
                "-n",
                NS,
                pod,
                "-o",
                "jsonpath={.status.phase}",
            ],
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// The seed's job execution policy (step 7) without `action`, which it must allow.
pub fn seed_policy_without(action: &str) -> Value {
    let mut policy: Value = serde_json::from_str(walkthrough::JOB_POLICY).unwrap();
    let mut removed = 0;
    for statement in policy["Statement"].as_array_mut().unwrap() {
        let actions = statement["Action"].as_array_mut().unwrap();
        let before = actions.len();
        actions.retain(|a| a != action);
        removed += before - actions.len();
    }
    assert_eq!(removed, 1, "{action} in {}", walkthrough::JOB_POLICY);
    policy
}

/// gzip → text with the system's `gzip`, independent of the shipper's encoder.
fn gunzip(gz: &[u8], out: &mut String) {
    let mut child = Command::new("gzip")
        .args(["-dc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(gz).unwrap();
    child.stdout.take().unwrap().read_to_string(out).unwrap();
    assert!(child.wait().unwrap().success(), "not gzip");
}

/// A pod of run `job_id` in [`NS`] (a Spark `role`'s, if given) whose one container
/// `container` runs `script` with `busybox`.
pub fn pod(
    name: &str,
    job_id: &str,
    role: Option<&str>,
    container: &str,
    service_account: &str,
    script: &str,
) -> Value {
    let mut labels = json!({"emr-containers.amazonaws.com/job.id": job_id});
    if let Some(role) = role {
        labels["spark-role"] = json!(role);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": service_account,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": container, "image": "busybox:1.36", "command": ["sh", "-c", script]}]
        }
    })
}
