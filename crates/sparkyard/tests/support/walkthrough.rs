//! The seed walkthrough's files, and the `aws` commands its scripts run with them
//! (`../shared/seed/walkthrough.md`), for the tests that replay its steps. The files are the
//! scripts' own: `3-iam-roles-and-permissions.sh` (step 7), `7-pod-priority-classes.sh`
//! (step 14), `8-pod-templates.sh` (step 15), `9-…`/`10-…-job.sh` (step 16).

use std::path::Path;

use serde_json::{json, Value};

use super::Server;

/// `CLUSTER_NAME`.
pub const CLUSTER: &str = "eks-emr-cluster";

/// Step 7's trust policy: EMR may assume the role.
pub const TRUST_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "Service": "elasticmapreduce.amazonaws.com" },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;

/// Step 7's job execution policy.
pub const JOB_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    { "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"], "Resource": "*" },
    {
      "Effect": "Allow",
      "Action": ["logs:PutLogEvents", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
      "Resource": ["arn:aws:logs:*:*:*"]
    }
  ]
}"#;

/// Step 7's name of a namespace's job execution role.
///
/// The walkthrough's roles give service-account names of up to 91 characters: a valid DNS
/// subdomain (up to 253), though longer than a 63-character label.
pub fn role_name(namespace: &str) -> String {
    format!("{namespace}-JobExecutionRole")
}

/// Step 7's `aws iam create-role` of `namespace`'s execution role with [`TRUST_POLICY`];
/// returns its ARN (`aws iam get-role … --query Role.Arn`).
pub fn create_role(server: &Server, namespace: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("emr-trust-policy.json");
    std::fs::write(&trust, TRUST_POLICY).unwrap();
    let role = role_name(namespace);
    server.aws_ok(&[
        "iam",
        "create-role",
        "--role-name",
        &role,
        "--assume-role-policy-document",
        &format!("file://{}", trust.display()),
    ]);
    server
        .aws_ok(&[
            "iam",
            "get-role",
            "--role-name",
            &role,
            "--query",
            "Role.Arn",
            "--output",
            "text",
        ])
        .trim()
        .to_string()
}

/// The rest of step 7 for `namespace`'s role: [`JOB_POLICY`] (`aws iam put-role-policy`)
/// and EMR's trust of the namespace's service accounts (`aws emr-containers
/// update-role-trust-policy`), so that the run's pods act with the role (IRSA). Returns
/// what `update-role-trust-policy` printed.
pub fn grant_job_policy(server: &Server, namespace: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("EMRContainers-JobExecutionRole.json");
    std::fs::write(&policy, JOB_POLICY).unwrap();
    let role = role_name(namespace);
    server.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        &role,
        "--policy-name",
        "EMR-Containers-Job-Execution",
        "--policy-document",
        &format!("file://{}", policy.display()),
    ]);
    server.aws_ok(&[
        "emr-containers",
        "update-role-trust-policy",
        "--cluster-name",
        CLUSTER,
        "--namespace",
        namespace,
        "--role-name",
        &role,
    ])
}

/// Step 14: the four PriorityClasses as `(file name, manifest)`, one file each, as the
/// script writes them for `kubectl apply -f`.
pub fn priority_classes() -> Vec<(String, String)> {
    [
        ("critical-priority", 400, true),
        ("realtime-priority", 300, false),
        ("high-priority", 200, false),
        ("low-priority", 100, false),
    ]
    .iter()
    .map(|(name, value, global)| {
        (
            format!("{name}-class.yml"),
            format!(
                "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\nglobalDefault: {global}\ndescription: \"{name} Pods\"\n"
            ),
        )
    })
    .collect()
}

pub const DRIVER_TEMPLATE: &str = "spark_driver_pod_template.yml";
pub const HP_EXECUTOR_TEMPLATE: &str = "hp_spark_executor_pod_template.yml";
pub const LP_EXECUTOR_TEMPLATE: &str = "lp_spark_executor_pod_template.yml";

/// Step 15's three pod templates, `(file name, text)`: drivers and high-priority executors
/// at `critical-priority` on on-demand capacity, low-priority executors at `low-priority`
/// anywhere.
pub const POD_TEMPLATES: [(&str, &str); 3] = [
    (
        DRIVER_TEMPLATE,
        r#"apiVersion: v1
kind: Pod
spec:
  priorityClassName: "critical-priority"
  volumes:
    - name: source-data-volume
      emptyDir: {}
    - name: metrics-files-volume
      emptyDir: {}
  nodeSelector:
    eks.amazonaws.com/capacityType: ON_DEMAND
  containers:
  - name: spark-kubernetes-driver # This will be interpreted as Spark driver container
"#,
    ),
    (
        HP_EXECUTOR_TEMPLATE,
        r#"apiVersion: v1
kind: Pod
spec:
  # Reusing the critical priority class
  priorityClassName: "critical-priority"
  volumes:
    - name: source-data-volume
      emptyDir: {}
    - name: metrics-files-volume
      emptyDir: {}
  nodeSelector:
    eks.amazonaws.com/capacityType: ON_DEMAND
  containers:
  - name: spark-kubernetes-executor # This will be interpreted as Spark executor container
"#,
    ),
    (
        LP_EXECUTOR_TEMPLATE,
        r#"apiVersion: v1
kind: Pod
spec:
  priorityClassName: "low-priority"
  volumes:
    - name: source-data-volume
      emptyDir: {}
    - name: metrics-files-volume
      emptyDir: {}
  containers:
  - name: spark-kubernetes-executor # This will be interpreted as Spark executor container
"#,
    ),
];

/// Step 16's thread sleeper for the application `app_name`, with tasks sleeping `x * unit`
/// seconds (the seed's unit is 20) and, added for the tests, a last line
/// `<app_name> finished` on stdout.
pub fn threadsleeper(app_name: &str, unit: u32) -> String {
    format!(
        "import sys\nfrom time import sleep\nfrom pyspark.sql import SparkSession\n\n\
         spark = SparkSession.builder.appName(\"{app_name}\").getOrCreate()\n\n\
         def sleep_for_x_seconds(x):sleep(x*{unit})\n\n\
         sc=spark.sparkContext\n\
         sc.parallelize(range(1,6), 5).foreach(sleep_for_x_seconds)\n\n\
         print(\"{app_name} finished\")\n\
         spark.stop()\n"
    )
}

/// Steps 9 and 16's `--configuration-overrides`: the `spark-defaults` the seed sets, and the
/// namespace's CloudWatch log group (streams prefixed `stream_prefix`) and S3 log bucket.
pub fn configuration_overrides(namespace: &str, stream_prefix: &str, log_bucket: &str) -> Value {
    json!({
        "applicationConfiguration": [{"classification": "spark-defaults", "properties": {
            "spark.dynamicAllocation.enabled": "false",
            "spark.kubernetes.executor.deleteOnTermination": "true"}}],
        "monitoringConfiguration": {
            "cloudWatchMonitoringConfiguration": {
                "logGroupName": format!("/emr-on-eks/{CLUSTER}/{namespace}"),
                "logStreamNamePrefix": stream_prefix},
            "s3MonitoringConfiguration": {"logUri": format!("s3://{log_bucket}/")}}
    })
}

/// `AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)`.
pub fn account_id(server: &Server) -> String {
    server
        .aws_ok(&[
            "sts",
            "get-caller-identity",
            "--query",
            "Account",
            "--output",
            "text",
        ])
        .trim()
        .to_string()
}

/// Step 8 for one namespace: `aws logs create-log-group` and `aws s3 mb` of its log bucket.
/// Returns the bucket's name, `<namespace>-logs-<account>-<region>`.
pub fn log_locations(server: &Server, namespace: &str, account: &str, region: &str) -> String {
    server.aws_ok(&[
        "logs",
        "create-log-group",
        &format!("--log-group-name=/emr-on-eks/{CLUSTER}/{namespace}"),
    ]);
    let bucket = format!("{namespace}-logs-{account}-{region}");
    server.aws_ok(&["s3", "mb", &format!("s3://{bucket}")]);
    bucket
}

/// Steps 15 and 16's uploads: `aws s3 mb s3://<bucket>`, then each `(file name, text)`
/// written into `dir` and copied into the bucket with `aws s3 cp`. Returns `s3://<bucket>`.
pub fn upload(server: &Server, dir: &Path, bucket: &str, files: &[(&str, &str)]) -> String {
    let url = format!("s3://{bucket}");
    server.aws_ok(&["s3", "mb", &url]);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        server.aws_ok(&["s3", "cp", path.to_str().unwrap(), &format!("{url}/")]);
    }
    url
}
