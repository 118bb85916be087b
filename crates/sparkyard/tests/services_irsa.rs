//! IAM roles for service accounts (IRSA) through the real clients: a role whose trust policy
//! `aws emr-containers update-role-trust-policy` wrote, service-account tokens minted by the
//! embedded cluster's real token issuer (`sparkyard_cluster::TokenIssuer` with the cluster's
//! `sa.key`), exchanged by boto3 with STS `AssumeRoleWithWebIdentity`, and role credentials
//! limited by the role's inline policy (`python/services_irsa.py`).

mod support;

use support::Server;

const ROLE: &str = "nightly-batch-JobExecutionRole";

fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn web_identity_credentials_follow_trust_and_inline_policies() {
    let s = Server::start();
    let work = tempfile::tempdir().unwrap();

    // Data the role may read, and data it may not.
    let input = work.path().join("input.txt");
    std::fs::write(&input, "input\n").unwrap();
    for bucket in ["irsa-data", "irsa-other"] {
        s.aws_ok(&["s3", "mb", &format!("s3://{bucket}")]);
    }
    s.aws_ok(&[
        "s3",
        "cp",
        input.to_str().unwrap(),
        "s3://irsa-data/input.txt",
    ]);
    s.aws_ok(&[
        "s3",
        "cp",
        input.to_str().unwrap(),
        "s3://irsa-other/secret.txt",
    ]);

    // The role: the seed's trust policy, GetObject on one bucket only, then EMR's trust
    // statement for the namespace.
    let trust = work.path().join("trust.json");
    std::fs::write(
        &trust,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"elasticmapreduce.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap();
    let policy = work.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::irsa-data/*"}]}"#,
    )
    .unwrap();
    s.aws_ok(&[
        "iam",
        "create-role",
        "--role-name",
        ROLE,
        "--assume-role-policy-document",
        &file_url(&trust),
    ]);
    s.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "read-one-bucket",
        "--policy-document",
        &file_url(&policy),
    ]);
    s.aws_ok(&[
        "emr-containers",
        "update-role-trust-policy",
        "--cluster-name",
        "eks-emr-cluster",
        "--namespace",
        "nightly-batch",
        "--role-name",
        ROLE,
    ]);
    let role = s.aws_json(&["iam", "get-role", "--role-name", ROLE]);
    let role_arn = role["Role"]["Arn"].as_str().unwrap().to_string();

    // The service-account name EMR would use: the trust policy's pattern with its two
    // wildcards filled as EMR fills them (component and a job-specific id).
    let statement = &role["Role"]["AssumeRolePolicyDocument"]["Statement"][1];
    let (key, pattern) = statement["Condition"]["StringLike"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let pattern = pattern.as_str().unwrap();
    assert!(key.ends_with(":sub"), "{key}");
    let subject = pattern.replacen("*-*", "spark-0000000abc", 1);
    let service_account = subject.rsplit(':').next().unwrap().to_string();

    // Tokens from the embedded cluster's own issuer and key; the issuer is the one EKS
    // DescribeCluster reports (and so the one update-role-trust-policy wrote).
    let issuer = s.aws_json(&["eks", "describe-cluster", "--name", "eks-emr-cluster"])["cluster"]
        ["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        key,
        &format!("{}:sub", issuer.trim_start_matches("https://"))
    );
    let key_pem = std::fs::read_to_string(s.data_dir.path().join("cluster/pki/sa.key")).unwrap();
    let tokens = sparkyard_cluster::TokenIssuer::new(&issuer, &key_pem).unwrap();
    let audience = vec!["sts.amazonaws.com".to_string()];
    let good = tokens.issue("nightly-batch", &service_account, &audience, None, 3600);
    let other_namespace = tokens.issue("realtime-batch", &service_account, &audience, None, 3600);
    // Refused whatever the trust policy says: a token for another audience, and one signed
    // with the right key but naming an issuer no OIDC provider of the account has.
    let wrong_audience = tokens.issue(
        "nightly-batch",
        &service_account,
        &["https://kubernetes.default.svc".to_string()],
        None,
        3600,
    );
    let wrong_issuer =
        sparkyard_cluster::TokenIssuer::new("https://oidc.example.com/id/0", &key_pem)
            .unwrap()
            .issue("nightly-batch", &service_account, &audience, None, 3600);
    let files: Vec<String> = [
        ("good", good),
        ("bad", other_namespace),
        ("audience", wrong_audience),
        ("issuer", wrong_issuer),
    ]
    .into_iter()
    .map(|(name, token)| {
        let file = work.path().join(format!("{name}.token"));
        std::fs::write(&file, token).unwrap();
        file.to_str().unwrap().to_string()
    })
    .collect();
    let mut args = vec![role_arn.as_str()];
    args.extend(files.iter().map(String::as_str));
    let out = s.python("services_irsa.py", &args);
    assert_eq!(out.trim(), "ok");
}
