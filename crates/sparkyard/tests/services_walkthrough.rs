//! The seed walkthrough's non-EMR `aws` commands (steps 7, 8, 15, 16, 22 and the account
//! lookup), run unchanged with the real AWS CLI through the profile sparkyard writes, against
//! sparkyard's IAM, STS, EKS, CloudWatch Logs and S3.

mod support;

use serde_json::Value;
use support::walkthrough::{self, CLUSTER, POD_TEMPLATES};
use support::Server;

const NAMESPACES: [&str; 5] = [
    "realtime-batch",
    "intra-day-batch",
    "nightly-batch",
    "monthly-batch",
    "adhoc-ml-batch",
];
fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn seed_walkthrough_aws_commands_run_unchanged() {
    let mut s = Server::start();
    let work = tempfile::tempdir().unwrap();
    let region = "us-east-1";

    // AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)
    let account = walkthrough::account_id(&s);
    assert_eq!(account, "123456789012");

    // Step 7: execution roles.
    for ns in NAMESPACES {
        let role = walkthrough::role_name(ns);
        let arn = walkthrough::create_role(&s, ns);
        assert_eq!(arn, format!("arn:aws:iam::{account}:role/{role}"));
        let out = walkthrough::grant_job_policy(&s, ns);
        assert_eq!(
            out.trim(),
            format!("Successfully updated trust policy of role {role}")
        );
    }
    // The trust policy now admits EMR's service accounts of that namespace via the
    // cluster's OIDC provider, as update-role-trust-policy writes it; a second run is a no-op.
    let role = s.aws_json(&[
        "iam",
        "get-role",
        "--role-name",
        "nightly-batch-JobExecutionRole",
    ]);
    let statements = role["Role"]["AssumeRolePolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[1]["Action"], "sts:AssumeRoleWithWebIdentity");
    let federated = statements[1]["Principal"]["Federated"].as_str().unwrap();
    assert!(
        federated.starts_with(&format!("arn:aws:iam::{account}:oidc-provider/")),
        "{federated}"
    );
    let again = s.aws_ok(&[
        "emr-containers",
        "update-role-trust-policy",
        "--cluster-name",
        CLUSTER,
        "--namespace",
        "nightly-batch",
        "--role-name",
        "nightly-batch-JobExecutionRole",
    ]);
    assert!(again.contains("already exists"), "{again}");

    // Step 8: log locations.
    for ns in NAMESPACES {
        walkthrough::log_locations(&s, ns, &account, region);
    }
    let dup = s.aws(&[
        "logs",
        "create-log-group",
        &format!("--log-group-name=/emr-on-eks/{CLUSTER}/nightly-batch"),
    ]);
    assert!(!dup.status.success());
    assert!(
        stderr_of(&dup).contains("ResourceAlreadyExistsException")
            && stderr_of(&dup).contains("The specified log group already exists")
    );

    // Step 15: pod templates.
    let templates_bucket = walkthrough::upload(
        &s,
        work.path(),
        &format!("{CLUSTER}-pod-templates-{account}-{region}"),
        &POD_TEMPLATES,
    );

    // Step 16: the job script.
    let jobs_bucket = walkthrough::upload(
        &s,
        work.path(),
        &format!("{CLUSTER}-demojobs-{account}-{region}"),
        &[(
            "low-priority-threadsleeper.py",
            &walkthrough::threadsleeper("monthly-batch-low-priority-job", 20),
        )],
    );

    // Everything survives a crash.
    s.restart();

    let listing = s.aws_ok(&["s3", "ls", &format!("{templates_bucket}/")]);
    for (name, body) in POD_TEMPLATES {
        assert!(listing.contains(name), "{listing}");
        let back = work.path().join(format!("back-{name}"));
        s.aws_ok(&[
            "s3",
            "cp",
            &format!("{templates_bucket}/{name}"),
            back.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&back).unwrap(), body);
    }
    let buckets = s.aws_ok(&["s3", "ls"]);
    assert_eq!(buckets.lines().count(), 7, "{buckets}");
    let arn = s.aws_ok(&[
        "iam",
        "get-role",
        "--role-name",
        "monthly-batch-JobExecutionRole",
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ]);
    assert_eq!(
        arn.trim(),
        format!("arn:aws:iam::{account}:role/monthly-batch-JobExecutionRole")
    );

    // Step 22: clean-up.
    let mut all_buckets = vec![templates_bucket.clone(), jobs_bucket.clone()];
    all_buckets.extend(
        NAMESPACES
            .iter()
            .map(|ns| format!("s3://{ns}-logs-{account}-{region}")),
    );
    for bucket in &all_buckets {
        s.aws_ok(&["s3", "rm", bucket, "--recursive"]);
        s.aws_ok(&["s3", "rb", bucket, "--force"]);
    }
    for ns in NAMESPACES {
        s.aws_ok(&[
            "logs",
            "delete-log-group",
            "--log-group-name",
            &format!("/emr-on-eks/{CLUSTER}/{ns}"),
        ]);
        let role = format!("{ns}-JobExecutionRole");
        // A role with a policy cannot go first.
        let refused = s.aws(&["iam", "delete-role", "--role-name", &role]);
        assert!(
            stderr_of(&refused).contains("DeleteConflict")
                && stderr_of(&refused)
                    .contains("Cannot delete entity, must delete policies first.")
        );
        s.aws_ok(&[
            "iam",
            "delete-role-policy",
            "--role-name",
            &role,
            "--policy-name",
            "EMR-Containers-Job-Execution",
        ]);
        s.aws_ok(&["iam", "delete-role", "--role-name", &role]);
    }
    assert_eq!(s.aws_ok(&["s3", "ls"]).trim(), "");
    assert_eq!(
        s.aws_json(&["iam", "list-roles"])["Roles"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The seed's groups are gone; Container Insights' own (the built-in agent keeps
    // writing its performance log, as the CloudWatch agent would) are not the seed's.
    let left: Vec<Value> = s.aws_json(&["logs", "describe-log-groups"])["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            !g["logGroupName"]
                .as_str()
                .unwrap()
                .starts_with("/aws/containerinsights/")
        })
        .cloned()
        .collect();
    assert_eq!(left, Vec::<Value>::new());
    let gone = s.aws(&[
        "logs",
        "delete-log-group",
        "--log-group-name",
        "/emr-on-eks/eks-emr-cluster/nightly-batch",
    ]);
    assert!(
        stderr_of(&gone).contains("ResourceNotFoundException")
            && stderr_of(&gone).contains("The specified log group does not exist.")
    );
    let gone = s.aws(&[
        "iam",
        "get-role",
        "--role-name",
        "nightly-batch-JobExecutionRole",
    ]);
    assert!(
        stderr_of(&gone).contains("NoSuchEntity"),
        "{}",
        stderr_of(&gone)
    );
}

#[test]
fn eks_describes_the_embedded_cluster() {
    let s = Server::start();
    let clusters = s.aws_json(&["eks", "list-clusters"]);
    assert_eq!(clusters["clusters"], serde_json::json!([CLUSTER]));
    let cluster = s.aws_json(&["eks", "describe-cluster", "--name", CLUSTER]);
    assert_eq!(
        cluster["cluster"]["arn"],
        format!("arn:aws:eks:us-east-1:123456789012:cluster/{CLUSTER}")
    );
    assert!(cluster["cluster"]["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let missing = s.aws(&["eks", "describe-cluster", "--name", "other"]);
    assert!(
        stderr_of(&missing).contains("ResourceNotFoundException"),
        "{}",
        stderr_of(&missing)
    );
}
