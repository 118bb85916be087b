//! Durability: every acknowledged write survives `kill -9` and a restart on the same data
//! directory, field for field (DESIGN.md: "nothing acknowledged is lost on a crash").

mod support;

use serde_json::{json, Value};
use support::Server;

/// The API alone: `--no-controller` keeps accepted runs PENDING (execution is tested
/// elsewhere) and `--no-cluster` skips the embedded Kubernetes cluster these tests don't use.
fn api_server() -> Server {
    Server::start_with(&["--no-controller", "--no-cluster"])
}

/// boto3 writes everything the API stores (virtual clusters, job runs, a template, a security
/// configuration, an endpoint, tags, deletes, a cancel, an update), ending with a burst of job
/// runs; the server is killed the moment the last acknowledgement arrives.
#[test]
fn boto3_acknowledged_writes_survive_kill9() {
    let mut s = api_server();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot.json");
    let snapshot = snapshot.to_str().unwrap();
    s.python("durability.py", &["write", snapshot]);
    s.kill9();
    s.restart();
    let out = s.python("durability.py", &["verify", snapshot]);
    assert!(out.contains("verified"), "verify did not finish: {out}");
}

fn describe(s: &Server, args: &[&str]) -> Value {
    s.aws_json(args)
}

/// The same through the AWS CLI, and across two crashes in a row.
#[test]
fn cli_writes_survive_kill9_twice() {
    let mut s = api_server();
    let provider = json!({"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "monthly-batch"}}})
        .to_string();
    let vc = s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "monthly-batch-emr-cluster",
        "--container-provider",
        &provider,
        "--tags",
        "team=data",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let request = json!({
        "name": "pi-4",
        "virtualClusterId": vc,
        "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
        "releaseLabel": "emr-6.3.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
            "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"}},
        "configurationOverrides": {
            "applicationConfiguration": [{"classification": "spark-defaults", "properties": {
                "spark.dynamicAllocation.enabled": "false",
                "spark.kubernetes.executor.deleteOnTermination": "true"}}],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch", "logStreamNamePrefix": "pi"},
                "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-123456789012-us-east-1/"}}}
    });
    let path = dir.path().join("pi.json");
    std::fs::write(&path, request.to_string()).unwrap();
    let file_arg = format!("file://{}", path.display());
    let run = s.aws_json(&[
        "emr-containers",
        "start-job-run",
        "--cli-input-json",
        &file_arg,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run_arn = format!(
        "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/{vc}/jobruns/{run}"
    );
    s.aws_ok(&[
        "emr-containers",
        "tag-resource",
        "--resource-arn",
        &run_arn,
        "--tags",
        "cost=42",
    ]);

    let template_data = json!({
        "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
        "releaseLabel": "emr-6.3.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "${EntryPoint}"}},
        "parameterConfiguration": {"EntryPoint": {"type": "STRING", "defaultValue": "local:///pi.py"}}
    });
    let tpath = dir.path().join("template.json");
    std::fs::write(&tpath, template_data.to_string()).unwrap();
    let targ = format!("file://{}", tpath.display());
    let template = s.aws_json(&[
        "emr-containers",
        "create-job-template",
        "--name",
        "pi-template",
        "--job-template-data",
        &targ,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();

    let reads: Vec<Vec<String>> = vec![
        vec![
            "emr-containers".into(),
            "describe-virtual-cluster".into(),
            "--id".into(),
            vc.clone(),
        ],
        vec![
            "emr-containers".into(),
            "describe-job-run".into(),
            "--virtual-cluster-id".into(),
            vc.clone(),
            "--id".into(),
            run.clone(),
        ],
        vec![
            "emr-containers".into(),
            "list-job-runs".into(),
            "--virtual-cluster-id".into(),
            vc.clone(),
        ],
        vec![
            "emr-containers".into(),
            "describe-job-template".into(),
            "--id".into(),
            template.clone(),
        ],
        vec![
            "emr-containers".into(),
            "list-tags-for-resource".into(),
            "--resource-arn".into(),
            run_arn.clone(),
        ],
        vec!["emr-containers".into(), "list-virtual-clusters".into()],
    ];
    let snapshot = |s: &Server| -> Vec<Value> {
        reads
            .iter()
            .map(|args| describe(s, &args.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect()
    };
    let before = snapshot(&s);
    assert_eq!(
        before[4]["tags"],
        json!({"cost": "42"}),
        "tags before the crash"
    );
    assert_eq!(before[0]["virtualCluster"]["tags"], json!({"team": "data"}));

    for round in 1..=2 {
        s.kill9();
        s.restart();
        let after = snapshot(&s);
        for (args, (b, a)) in reads.iter().zip(before.iter().zip(&after)) {
            assert_eq!(
                b,
                a,
                "crash {round}: `aws {}` differs after kill -9",
                args.join(" ")
            );
        }
    }
}
