//! The web console end to end, on one `sparkyard serve` without the job-run controller
//! (runs stay PENDING; the Spark-backed pages are checked in tests/logs.rs and
//! tests/walkthrough_priorities.rs): the seed's five virtual clusters and job runs made
//! with the real `aws` CLI, objects made with kubectl, a role session from STS
//! (AssumeRoleWithWebIdentity) whose IAM policy lacks `emr-containers:ListJobRuns` and
//! whose `aws-auth` mapping grants only `view` in `monthly-batch`, the one-time link from
//! `sparkyard console --url`, and Debian's chromium driven by playwright-core
//! (`tests/console/browser.mjs`). Around the browser, raw HTTP checks what a browser would
//! never send: no session, a reused link, POSTs without or with a forged CSRF token, and
//! the namespace-view principal's pages. The screenshots go to `docs/console/`.
//!
//! Needs `scripts/setup.sh` (chromium, node, `tests/console/node_modules`).

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::Path;

use support::console::{self as console_support, csrf_of, BrowserTools, Http};
use support::Server;

const ROLE: &str = "console-reader";
/// The seed's job categories: one namespace and virtual cluster (`<ns>-emr-cluster`) each.
const CATEGORIES: [&str; 5] = [
    "realtime-batch",
    "intra-day-batch",
    "nightly-batch",
    "monthly-batch",
    "adhoc-ml-batch",
];

fn create_vc(s: &Server, namespace: &str) -> String {
    let provider = format!(
        r#"{{"id":"eks-emr-cluster","type":"EKS","info":{{"eksInfo":{{"namespace":"{namespace}"}}}}}}"#
    );
    s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        &format!("{namespace}-emr-cluster"),
        "--container-provider",
        &provider,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A job run that stays PENDING: the server runs without the job-run controller, so
/// nothing starts Spark (the console only needs the run's record).
fn start_run(s: &Server, vc: &str, name: &str) -> String {
    s.aws_json(&[
        "emr-containers",
        "start-job-run",
        "--virtual-cluster-id",
        vc,
        "--name",
        name,
        "--execution-role-arn",
        "arn:aws:iam::123456789012:role/console-JobExecutionRole",
        "--release-label",
        "emr-7.2.0-latest",
        "--job-driver",
        r#"{"sparkSubmitJobDriver":{"entryPoint":"local:///usr/lib/spark/examples/src/main/python/pi.py","sparkSubmitParameters":"--conf spark.executor.instances=1"}}"#,
    ])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn run_state(s: &Server, vc: &str, id: &str) -> String {
    s.aws_json(&[
        "emr-containers",
        "describe-job-run",
        "--virtual-cluster-id",
        vc,
        "--id",
        id,
    ])["jobRun"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Temporary credentials of a role allowed to see virtual clusters and describe runs but
/// not to list them: STS AssumeRoleWithWebIdentity with a service-account token from the
/// embedded cluster's issuer (as in tests/services_irsa.rs), through the `aws` CLI.
fn reader_credentials(s: &Server) -> serde_json::Value {
    let work = tempfile::tempdir().unwrap();
    let trust = work.path().join("trust.json");
    std::fs::write(&trust, support::walkthrough::TRUST_POLICY).unwrap();
    let policy = work.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["emr-containers:ListVirtualClusters","emr-containers:DescribeVirtualCluster","emr-containers:DescribeJobRun"],"Resource":"*"}]}"#,
    )
    .unwrap();
    let url = |p: &Path| format!("file://{}", p.display());
    s.aws_ok(&[
        "iam",
        "create-role",
        "--role-name",
        ROLE,
        "--assume-role-policy-document",
        &url(&trust),
    ]);
    s.aws_ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        ROLE,
        "--policy-name",
        "no-list-job-runs",
        "--policy-document",
        &url(&policy),
    ]);
    s.aws_ok(&[
        "emr-containers",
        "update-role-trust-policy",
        "--cluster-name",
        "eks-emr-cluster",
        "--namespace",
        "monthly-batch",
        "--role-name",
        ROLE,
    ]);
    let role = s.aws_json(&["iam", "get-role", "--role-name", ROLE]);
    let role_arn = role["Role"]["Arn"].as_str().unwrap().to_string();
    let statement = &role["Role"]["AssumeRolePolicyDocument"]["Statement"][1];
    let (_, pattern) = statement["Condition"]["StringLike"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let subject = pattern
        .as_str()
        .unwrap()
        .replacen("*-*", "spark-0000000abc", 1);
    let service_account = subject.rsplit(':').next().unwrap().to_string();
    let issuer = s.aws_json(&["eks", "describe-cluster", "--name", "eks-emr-cluster"])["cluster"]
        ["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let key_pem = std::fs::read_to_string(s.data_dir.path().join("cluster/pki/sa.key")).unwrap();
    let tokens = sparkyard_cluster::TokenIssuer::new(&issuer, &key_pem).unwrap();
    let token = tokens.issue(
        "monthly-batch",
        &service_account,
        &["sts.amazonaws.com".to_string()],
        None,
        3600,
    );
    s.aws_json(&[
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        &role_arn,
        "--role-session-name",
        "console-reader",
        "--web-identity-token",
        &token,
    ])["Credentials"]
        .clone()
}

fn kubectl(s: &Server, args: &[&str]) -> String {
    let kubeconfig = s.data_dir.path().join("cluster/kubeconfig");
    let out = cluster::kubectl(&kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubectl_apply(s: &Server, manifest: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, manifest).unwrap();
    kubectl(s, &["apply", "-f", path.to_str().unwrap()]);
}

/// Seed step 19's shape for one namespace: `aws-auth` maps the reader role to a group
/// bound to the built-in `view` ClusterRole in `monthly-batch` only.
fn grant_monthly_view(s: &Server) {
    let role_arn = s.aws_json(&["iam", "get-role", "--role-name", ROLE])["Role"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    kubectl_apply(
        s,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aws-auth\n  namespace: kube-system\ndata:\n  mapRoles: |\n    - rolearn: {role_arn}\n      username: console-reader:{{{{SessionName}}}}\n      groups:\n      - monthly-batch-viewers\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: monthly-batch-viewers\n  namespace: monthly-batch\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: Group\n  name: monthly-batch-viewers\n"
        ),
    );
}

#[test]
fn console_in_a_browser() {
    let tools = BrowserTools::find();
    let s = Server::start_with(&["--no-controller"]);
    let console = console_support::base(&s);
    let http = Http::new(&console);

    // What the aws CLI and kubectl made, for the console to show (seed step 5: the
    // namespaces first, then a virtual cluster on each).
    for ns in CATEGORIES {
        kubectl(&s, &["create", "namespace", ns]);
    }
    let vcs: Vec<String> = CATEGORIES.iter().map(|ns| create_vc(&s, ns)).collect();
    let (nightly, monthly) = (vcs[2].clone(), vcs[3].clone());
    let run = start_run(&s, &monthly, "console-pi");
    let other = start_run(&s, &monthly, "console-other");
    start_run(&s, &nightly, "console-nightly-run");
    for ns in ["monthly-batch", "nightly-batch"] {
        let name = format!("{}-settings", ns.trim_end_matches("-batch"));
        kubectl(
            &s,
            &[
                "create",
                "configmap",
                &name,
                "-n",
                ns,
                "--from-literal=team=data",
            ],
        );
    }
    let reader = reader_credentials(&s);
    grant_monthly_view(&s);

    // Nothing answers without a session.
    for page in [
        "/virtual-clusters".to_string(),
        format!("/virtual-clusters/{monthly}"),
        format!("/virtual-clusters/{monthly}/job-runs/{run}"),
        "/eks".into(),
        "/eks/compute".into(),
        "/eks/resources".into(),
        "/eks/resources/core/v1/configmaps?namespace=monthly-batch".into(),
        "/eks/events".into(),
        "/container-insights".into(),
    ] {
        let r = http.send("GET", &page, None, None);
        assert_eq!((r.status, r.location.as_str()), (303, "/signin"), "{page}");
        assert!(!r.body.contains("settings"), "{page}: {}", r.body);
    }
    for api in ["/api/virtual-clusters", "/api/session", "/api/nothing-here"] {
        let r = http.send("GET", api, None, None);
        assert_eq!(r.status, 401, "{api}: {}", r.body);
    }
    let r = http.send(
        "POST",
        &format!("/virtual-clusters/{monthly}/job-runs/{other}/cancel"),
        None,
        Some("csrf=x"),
    );
    assert_eq!((r.status, r.location.as_str()), (303, "/signin"));

    // The browser: the link, every area, Start and Cancel, sign-out, the reader.
    let link = console_support::signin_link(&s);
    assert!(
        link.starts_with(&format!("{console}/signin/link?token=")),
        "{link}"
    );
    tools.run(
        "browser.mjs",
        &[
            ("CONSOLE", console.clone()),
            ("SIGNIN_LINK", link.clone()),
            ("VC_IDS", vcs.join(",")),
            ("VC_MONTHLY", monthly.clone()),
            ("VC_NIGHTLY", nightly.clone()),
            ("RUN_ID", run.clone()),
            ("OTHER_RUN_ID", other.clone()),
            (
                "READER_KEY_ID",
                reader["AccessKeyId"].as_str().unwrap().into(),
            ),
            (
                "READER_SECRET",
                reader["SecretAccessKey"].as_str().unwrap().into(),
            ),
            (
                "READER_TOKEN",
                reader["SessionToken"].as_str().unwrap().into(),
            ),
        ],
        || s.log(),
    );
    // The Cancel button went through CancelJobRun: the API says so.
    let state = run_state(&s, &monthly, &run);
    assert!(
        state == "CANCELLED" || state == "CANCEL_PENDING",
        "after Cancel in the console: {state}"
    );
    // Start job run from the page went through StartJobRun.
    let runs = s.aws_json(&[
        "emr-containers",
        "list-job-runs",
        "--virtual-cluster-id",
        &monthly,
        "--name",
        "started-in-the-console",
    ]);
    assert_eq!(runs["jobRuns"].as_array().unwrap().len(), 1, "{runs:#}");

    // Delete in the console went through DeleteVirtualCluster.
    let adhoc = s.aws_json(&[
        "emr-containers",
        "describe-virtual-cluster",
        "--id",
        &vcs[4],
    ]);
    assert_eq!(adhoc["virtualCluster"]["state"], "TERMINATED", "{adhoc:#}");

    // The link the browser used works no more.
    let r = http.send("GET", &link, None, None);
    assert_eq!(r.status, 403);
    assert!(r.session.is_none());

    // The reader (IAM: no ListJobRuns; RBAC: view in monthly-batch only), page by page.
    let reader_session = http.sign_in_with_key(
        reader["AccessKeyId"].as_str().unwrap(),
        reader["SecretAccessKey"].as_str().unwrap(),
        reader["SessionToken"].as_str(),
    );
    let get = |path: &str| {
        let r = http.send("GET", path, Some(&reader_session), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    };
    let runs_page = get(&format!("/virtual-clusters/{monthly}"));
    assert!(!runs_page.contains(&run) && !runs_page.contains("console-pi"));
    let mine = get("/eks/resources/core/v1/configmaps?namespace=monthly-batch");
    assert!(mine.contains("monthly-settings"), "{mine}");
    let theirs = http.send(
        "GET",
        "/eks/resources/core/v1/configmaps?namespace=nightly-batch",
        Some(&reader_session),
        None,
    );
    assert!(
        !theirs.body.contains("nightly-settings") && theirs.body.contains("forbidden"),
        "another namespace's objects: {}",
        theirs.body
    );
    let everywhere = http.send(
        "GET",
        "/eks/resources/core/v1/configmaps",
        Some(&reader_session),
        None,
    );
    assert!(
        !everywhere.body.contains("nightly-settings")
            && !everywhere.body.contains("monthly-settings"),
        "a cluster-wide list: {}",
        everywhere.body
    );
    let object = http.send(
        "GET",
        "/eks/resources/core/v1/configmaps/nightly-batch/nightly-settings",
        Some(&reader_session),
        None,
    );
    assert!(
        !object.body.contains("\"team\""),
        "another namespace's object: {}",
        object.body
    );
    let compute = get("/eks/compute");
    let node = kubectl(
        &s,
        &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
    );
    assert!(
        !compute.contains(&format!("data-node=\"{node}\"")),
        "nodes are cluster-scoped; view in one namespace does not list them: {compute}"
    );

    // POSTs without or with a forged CSRF token are refused and change nothing.
    let fresh = console_support::signin_link(&s);
    let r = http.send("GET", &fresh, None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.session.expect("the link starts a session");
    let page = format!("/virtual-clusters/{monthly}/job-runs/{other}");
    let r = http.send("GET", &page, Some(&session), None);
    assert_eq!(r.status, 200);
    let csrf = csrf_of(&r.body);
    let cancel = format!("{page}/cancel");
    let forged = format!("csrf={}", "f".repeat(64));
    for form in ["", "csrf=", forged.as_str()] {
        let r = http.send("POST", &cancel, Some(&session), Some(form));
        assert_eq!(r.status, 403, "form {form:?}: {}", r.body);
        assert_eq!(run_state(&s, &monthly, &other), "PENDING");
    }
    // The right token from another site's page (a cross-site form post) is refused.
    let r = http.send_with(
        "POST",
        &cancel,
        Some(&session),
        Some(&format!("csrf={csrf}")),
        &[("origin", "http://attacker.example")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(run_state(&s, &monthly, &other), "PENDING");
    // Another session's token is no better, nor a forged session with the right token.
    let r = http.send(
        "POST",
        &cancel,
        Some(&reader_session),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = http.send(
        "POST",
        &cancel,
        Some(&"0".repeat(64)),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!((r.status, r.location.as_str()), (303, "/signin"));
    assert_eq!(run_state(&s, &monthly, &other), "PENDING");
    // The same POST with the session's token goes through (so the refusals above were
    // the token's doing).
    let r = http.send(
        "POST",
        &cancel,
        Some(&session),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(run_state(&s, &monthly, &other), "CANCELLED");
}
