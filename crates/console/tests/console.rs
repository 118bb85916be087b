//! The console's router in process, over a real emr-containers API (store, router, an
//! authorizer): sign-in links, access-key sign-in, sessions, CSRF, IAM-filtered pages and
//! cancel. The browser and the real binary are in `crates/sparkyard/tests/console.rs`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sparkyard_aws::keyring::{KeyOwner, Keyring};
use sparkyard_aws::{Authorize, Principal};
use tower::ServiceExt;

const ACCOUNT: &str = "123456789012";
const READER: &str = "arn:aws:sts::123456789012:assumed-role/reader/console";

/// Root may do anything; the reader role may do anything but list and cancel job runs.
struct Policies;

impl Authorize for Policies {
    fn authorize(&self, p: &Principal, action: &str, resource: &str) -> Result<(), String> {
        let denied = ["emr-containers:ListJobRuns", "emr-containers:CancelJobRun"];
        if p.arn.ends_with(":root") || (p.arn == READER && !denied.contains(&action)) {
            Ok(())
        } else {
            Err(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource}",
                p.arn
            ))
        }
    }
}

struct Env {
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
    keyring: Arc<Keyring>,
    api: Router,
    app: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// `name=value` of the `Set-Cookie` for `name`, if any.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")) && !v.contains("Max-Age=0"))
            .map(|v| v.split(';').next().unwrap().to_string())
    }

    /// The value of the first hidden `csrf` input.
    fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        self.body[start..start + 64].to_string()
    }
}

async fn send(app: &Router, method: &str, uri: &str, cookie: &str, form: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "console.test");
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    let body = match form {
        Some(f) => {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The API as the administrator (what the `aws` CLI would do).
async fn admin(env: &Env, method: &str, uri: &str, body: Option<Value>) -> Value {
    let key = env.keyring.bootstrap();
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .extension(Principal {
            access_key_id: key.access_key_id.clone(),
            account_id: ACCOUNT.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:root"),
            region: "us-east-1".into(),
            service: "emr-containers".into(),
        })
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap();
    let response = env.api.clone().oneshot(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{method} {uri}: {}",
        response.status()
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let keyring = Arc::new(Keyring::load_or_bootstrap(&data_dir, ACCOUNT).unwrap());
    let store = sparkyard_store::Store::open(&data_dir.join("db")).unwrap();
    let emr = sparkyard_emr::Emr::open(
        store,
        sparkyard_emr::Settings {
            region: "us-east-1".into(),
            account_id: ACCOUNT.into(),
            config: Default::default(),
        },
    )
    .await
    .unwrap();
    let api = sparkyard_emr::router_with(emr, Some(Arc::new(Policies)));
    let console = sparkyard_console::Console::new(
        sparkyard_console::Settings {
            data_dir: data_dir.clone(),
            region: "us-east-1".into(),
            config: Default::default(),
            kube: None,
            cluster_name: "eks-emr-cluster".into(),
            history_url: None,
        },
        keyring.clone(),
        api.clone(),
    )
    .unwrap();
    Env {
        _dir: dir,
        data_dir,
        keyring,
        api,
        app: console.router(),
    }
}

async fn create_vc(env: &Env, name: &str) -> String {
    let vc = admin(
        env,
        "POST",
        "/virtualclusters",
        Some(json!({"name": name, "clientToken": format!("t-{name}"),
            "containerProvider": {"id": "eks-emr-cluster", "type": "EKS",
                "info": {"eksInfo": {"namespace": name}}}})),
    )
    .await;
    vc["id"].as_str().unwrap().to_string()
}

async fn start_run(env: &Env, vc: &str, name: &str) -> String {
    let run = admin(
        env,
        "POST",
        &format!("/virtualclusters/{vc}/jobruns"),
        Some(json!({
            "name": name,
            "clientToken": format!("t-{name}"),
            "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
            "releaseLabel": "emr-7.2.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///pi.py"}}
        })),
    )
    .await;
    run["id"].as_str().unwrap().to_string()
}

async fn run_state(env: &Env, vc: &str, id: &str) -> String {
    admin(
        env,
        "GET",
        &format!("/virtualclusters/{vc}/jobruns/{id}"),
        None,
    )
    .await["jobRun"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn nothing_answers_without_a_session() {
    let env = env().await;
    for page in [
        "/",
        "/virtual-clusters",
        "/virtual-clusters/abc",
        "/nowhere",
    ] {
        let r = send(&env.app, "GET", page, "", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(r.location(), "/signin", "{page}");
    }
    for api in ["/api/session", "/api/virtual-clusters", "/api/nowhere"] {
        let r = send(&env.app, "GET", api, "", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{api}");
    }
    let r = send(
        &env.app,
        "GET",
        "/api/session",
        "sparkyard_console=forged",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&env.app, "GET", "/signin", "", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(r.cookie("sparkyard_console_pre").is_some());
}

#[tokio::test]
async fn the_administrator_signs_in_once_per_link_and_cancels_with_csrf() {
    let env = env().await;
    let vc = create_vc(&env, "alpha").await;
    let run = start_run(&env, &vc, "console-pi").await;

    let token = sparkyard_console::links::issue(&env.data_dir, Utc::now()).unwrap();
    let link = format!("/signin/link?token={token}");
    let r = send(&env.app, "GET", &link, "", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.cookie("sparkyard_console").expect("a session cookie");
    let set = r.headers["set-cookie"].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"));
    let again = send(&env.app, "GET", &link, "", None).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.cookie("sparkyard_console").is_none());

    let me = send(&env.app, "GET", "/api/session", &session, None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert!(me.body.contains(":root"), "{}", me.body);

    let list = send(&env.app, "GET", "/virtual-clusters", &session, None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("alpha") && list.body.contains(&vc));
    let runs = send(
        &env.app,
        "GET",
        &format!("/virtual-clusters/{vc}"),
        &session,
        None,
    )
    .await;
    assert!(runs.body.contains("console-pi") && runs.body.contains("emr-7.2.0-latest"));
    let filtered = send(
        &env.app,
        "GET",
        &format!("/virtual-clusters/{vc}?state=COMPLETED"),
        &session,
        None,
    )
    .await;
    assert!(!filtered.body.contains("console-pi") && filtered.body.contains("No job runs"));

    let page_uri = format!("/virtual-clusters/{vc}/job-runs/{run}");
    let page = send(&env.app, "GET", &page_uri, &session, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("PENDING") && page.body.contains("sparkSubmitJobDriver"));
    let csrf = page.csrf();

    let cancel = format!("{page_uri}/cancel");
    let forged = format!("csrf={}", "0".repeat(64));
    for form in ["", "csrf=", forged.as_str()] {
        let r = send(&env.app, "POST", &cancel, &session, Some(form)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "form {form:?}");
        assert_eq!(run_state(&env, &vc, &run).await, "PENDING");
    }
    // Another session's token is no better.
    let other_token = sparkyard_console::links::issue(&env.data_dir, Utc::now()).unwrap();
    let other = send(
        &env.app,
        "GET",
        &format!("/signin/link?token={other_token}"),
        "",
        None,
    )
    .await;
    let other_session = other.cookie("sparkyard_console").unwrap();
    let other_csrf = send(&env.app, "GET", &page_uri, &other_session, None)
        .await
        .csrf();
    assert_ne!(other_csrf, csrf);
    let r = send(
        &env.app,
        "POST",
        &cancel,
        &session,
        Some(&format!("csrf={other_csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(run_state(&env, &vc, &run).await, "PENDING");

    let r = send(
        &env.app,
        "POST",
        &cancel,
        &session,
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(run_state(&env, &vc, &run).await, "CANCELLED");
    let page = send(&env.app, "GET", r.location(), &session, None).await;
    assert!(page.body.contains("CANCELLED") && page.body.contains("Cancellation requested"));

    // Sign-out needs the token too, and ends the session.
    let r = send(&env.app, "POST", "/signout", &session, Some("csrf=nope")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &env.app,
        "POST",
        "/signout",
        &session,
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(&env.app, "GET", "/api/session", &session, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn access_keys_sign_in_and_pages_follow_their_policies() {
    let env = env().await;
    let vc = create_vc(&env, "beta").await;
    let run = start_run(&env, &vc, "secret-run").await;
    let creds = env
        .keyring
        .issue_session(
            KeyOwner {
                account_id: ACCOUNT.into(),
                arn: READER.into(),
            },
            Utc::now() + Duration::hours(1),
        )
        .unwrap();

    let form_page = send(&env.app, "GET", "/signin", "", None).await;
    let pre = form_page.cookie("sparkyard_console_pre").unwrap();
    let csrf = form_page.csrf();
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = |secret: &str, token: &str, csrf: &str| {
        format!(
            "csrf={csrf}&access_key_id={}&secret_access_key={}&session_token={}",
            creds.key.access_key_id,
            enc(secret),
            enc(token)
        )
    };
    // Wrong secret, missing token, missing or foreign form token: refused.
    let r = send(
        &env.app,
        "POST",
        "/signin",
        &pre,
        Some(&form("wrong", &creds.session_token, &csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.cookie("sparkyard_console").is_none());
    let r = send(
        &env.app,
        "POST",
        "/signin",
        &pre,
        Some(&form(&creds.key.secret_access_key, "", &csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let good = form(&creds.key.secret_access_key, &creds.session_token, &csrf);
    let r = send(&env.app, "POST", "/signin", "", Some(&good)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &env.app,
        "POST",
        "/signin",
        "sparkyard_console_pre=other",
        Some(&good),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = send(&env.app, "POST", "/signin", &pre, Some(&good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.cookie("sparkyard_console").unwrap();
    let me = send(&env.app, "GET", "/api/session", &session, None).await;
    assert!(me.body.contains(READER), "{}", me.body);

    // ListVirtualClusters allowed, ListJobRuns not: the cluster shows, its runs do not.
    let list = send(&env.app, "GET", "/virtual-clusters", &session, None).await;
    assert!(list.body.contains(&vc));
    let runs = send(
        &env.app,
        "GET",
        &format!("/virtual-clusters/{vc}"),
        &session,
        None,
    )
    .await;
    assert_eq!(runs.status, StatusCode::OK);
    assert!(
        runs.body.contains("not authorized to list the job runs"),
        "{}",
        runs.body
    );
    assert!(!runs.body.contains("secret-run"));
    let api = send(
        &env.app,
        "GET",
        &format!("/api/virtual-clusters/{vc}/job-runs"),
        &session,
        None,
    )
    .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);

    // DescribeJobRun is allowed, CancelJobRun is not: the API's denial, nothing changed.
    let page_uri = format!("/virtual-clusters/{vc}/job-runs/{run}");
    let page = send(&env.app, "GET", &page_uri, &session, None).await;
    let csrf = page.csrf();
    let r = send(
        &env.app,
        "POST",
        &format!("{page_uri}/cancel"),
        &session,
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("emr-containers:CancelJobRun"), "{}", r.body);
    assert_eq!(run_state(&env, &vc, &run).await, "PENDING");
}
