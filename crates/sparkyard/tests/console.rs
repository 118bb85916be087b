//! The web console end to end, on one `sparkyard serve`: virtual clusters and job runs
//! made with the real `aws` CLI, a role session from STS (AssumeRoleWithWebIdentity)
//! whose policy lacks `emr-containers:ListJobRuns`, the one-time link from `sparkyard
//! console --url`, and Debian's chromium driven by playwright-core
//! (`tests/console/browser.mjs`): sign in, pages, filters, Cancel, sign-out, access-key
//! sign-in. Around the browser, raw HTTP checks what a browser would never send: no
//! session, a reused link, POSTs without or with a forged CSRF token. The screenshots go
//! to `docs/console/`.
//!
//! Needs `scripts/setup.sh` (chromium, node, `tests/console/node_modules`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Server;

const ROLE: &str = "console-reader";

/// node, chromium and playwright-core, or a message saying how to get them.
struct BrowserTools {
    node: PathBuf,
    chromium: PathBuf,
    driver: PathBuf,
}

impl BrowserTools {
    fn find() -> BrowserTools {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        let tools = BrowserTools {
            node: PathBuf::from("node"),
            chromium,
            driver: dir.join("browser.mjs"),
        };
        assert!(
            tools.chromium.exists(),
            "no chromium at {} (set CHROMIUM, or run scripts/setup.sh)",
            tools.chromium.display()
        );
        assert!(
            dir.join("node_modules/playwright-core/package.json")
                .exists(),
            "playwright-core is not installed in {} (run scripts/setup.sh)",
            dir.display()
        );
        tools
    }
}

fn sparkyard(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args(args)
        .output()
        .expect("run sparkyard");
    assert!(
        out.status.success(),
        "sparkyard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn create_vc(s: &Server, name: &str) -> String {
    let provider = format!(
        r#"{{"id":"eks-emr-cluster","type":"EKS","info":{{"eksInfo":{{"namespace":"{name}"}}}}}}"#
    );
    s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        name,
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
        "console-alpha",
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
        "console-alpha",
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

/// Raw HTTP to the console: status, `Set-Cookie` session value, `Location`, body.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    session: Option<String>,
    location: String,
    body: String,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    fn send(&self, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.client.request(method.parse().unwrap(), url);
        if let Some(c) = cookie {
            request = request.header("cookie", format!("sparkyard_console={c}"));
        }
        if let Some(f) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f.to_string());
        }
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let session = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix("sparkyard_console="))
                .map(|v| v.split(';').next().unwrap().to_string())
                .filter(|v| !v.is_empty());
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.text().await.unwrap();
            Answer {
                status,
                session,
                location,
                body,
            }
        })
    }
}

fn csrf_of(body: &str) -> String {
    let start = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[start..start + 64].to_string()
}

#[test]
fn console_in_a_browser() {
    let tools = BrowserTools::find();
    let s = Server::start_with(&["--no-controller"]);
    let data_dir = s.data_dir.path().to_str().unwrap().to_string();
    let console = format!(
        "http://{}",
        std::fs::read_to_string(s.data_dir.path().join("console.addr"))
            .expect("serve wrote console.addr before listening")
            .trim()
    );
    let http = Http::new(&console);

    // What the aws CLI made, for the console to show.
    let alpha = create_vc(&s, "console-alpha");
    let beta = create_vc(&s, "console-beta");
    let run = start_run(&s, &alpha, "console-pi");
    let other = start_run(&s, &alpha, "console-other");
    start_run(&s, &beta, "console-beta-run");
    let reader = reader_credentials(&s);

    // Nothing answers without a session.
    let r = http.send("GET", "/virtual-clusters", None, None);
    assert_eq!((r.status, r.location.as_str()), (303, "/signin"));
    let r = http.send("GET", "/api/virtual-clusters", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http.send(
        "POST",
        &format!("/virtual-clusters/{alpha}/job-runs/{other}/cancel"),
        None,
        Some("csrf=x"),
    );
    assert_eq!((r.status, r.location.as_str()), (303, "/signin"));

    // The browser: the link, pages, filters, Cancel, sign-out, the reader's sign-in.
    let link = sparkyard(&["console", "--data-dir", &data_dir, "--url"])
        .trim()
        .to_string();
    assert!(
        link.starts_with(&format!("{console}/signin/link?token=")),
        "{link}"
    );
    let screenshots = support::repo_root().join("docs/console");
    std::fs::create_dir_all(&screenshots).unwrap();
    let out = Command::new(&tools.node)
        .arg(&tools.driver)
        .env("CONSOLE", &console)
        .env("SIGNIN_LINK", &link)
        .env("VC_ALPHA", &alpha)
        .env("VC_BETA", &beta)
        .env("RUN_ID", &run)
        .env("OTHER_RUN_ID", &other)
        .env("READER_KEY_ID", reader["AccessKeyId"].as_str().unwrap())
        .env("READER_SECRET", reader["SecretAccessKey"].as_str().unwrap())
        .env("READER_TOKEN", reader["SessionToken"].as_str().unwrap())
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &tools.chromium)
        .output()
        .expect("run node");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "browser run failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    // The Cancel button went through CancelJobRun: the API says so.
    let state = run_state(&s, &alpha, &run);
    assert!(
        state == "CANCELLED" || state == "CANCEL_PENDING",
        "after Cancel in the console: {state}"
    );

    // The link the browser used works no more.
    let r = http.send("GET", &link, None, None);
    assert_eq!(r.status, 403);
    assert!(r.session.is_none());

    // POSTs without or with a forged CSRF token are refused and change nothing.
    let fresh = sparkyard(&["console", "--data-dir", &data_dir, "--url"]);
    let r = http.send("GET", fresh.trim(), None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.session.expect("the link starts a session");
    let page = format!("/virtual-clusters/{alpha}/job-runs/{other}");
    let r = http.send("GET", &page, Some(&session), None);
    assert_eq!(r.status, 200);
    let csrf = csrf_of(&r.body);
    let cancel = format!("{page}/cancel");
    let forged = format!("csrf={}", "f".repeat(64));
    for form in ["", "csrf=", forged.as_str()] {
        let r = http.send("POST", &cancel, Some(&session), Some(form));
        assert_eq!(r.status, 403, "form {form:?}: {}", r.body);
        assert_eq!(run_state(&s, &alpha, &other), "PENDING");
    }
    // A forged session cookie with the right token is no better.
    let r = http.send(
        "POST",
        &cancel,
        Some(&"0".repeat(64)),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!((r.status, r.location.as_str()), (303, "/signin"));
    assert_eq!(run_state(&s, &alpha, &other), "PENDING");
    // The same POST with the session's token goes through (so the refusals above were
    // the token's doing).
    let r = http.send(
        "POST",
        &cancel,
        Some(&session),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(run_state(&s, &alpha, &other), "CANCELLED");
}
