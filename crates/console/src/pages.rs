//! Routes and handlers: sign-in, sign-out, the pages and the JSON API.
//!
//! Every handler but the sign-in ones and the stylesheet starts by finding the session
//! ([`session_or_redirect`], [`session_or_401`]); every POST but the sign-in form checks
//! the session's CSRF token ([`check_post`]); the sign-in form carries an HMAC of a
//! pre-session cookie instead.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sparkyard_aws::Principal;

use crate::api::{ApiError, RunFilter};
use crate::links::{self, LinkError};
use crate::sessions::{self, Session, SignInMethod, COOKIE, PRE_COOKIE};
use crate::views::{self, Choice, Nav, RunRow, VcRow};
use crate::Console;

/// The stylesheet: the shell's, then each area's, served as one file.
const CSS: &str = concat!(
    include_str!("../assets/console.css"),
    include_str!("../assets/eks.css"),
    include_str!("../assets/insights.css"),
    include_str!("../assets/run.css"),
);

/// Job-run states, in the order the filter offers them.
const RUN_STATES: [&str; 7] = [
    "PENDING",
    "SUBMITTED",
    "RUNNING",
    "CANCEL_PENDING",
    "CANCELLED",
    "FAILED",
    "COMPLETED",
];

pub fn router(console: Console) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(crate::live::script))
        .route("/signin", get(signin_form).post(signin))
        .route("/signin/link", get(signin_link))
        .route("/signout", post(signout))
        .route("/virtual-clusters", get(virtual_clusters))
        .route("/virtual-clusters/{vc}", get(job_runs))
        .route(
            "/virtual-clusters/{vc}/delete",
            post(delete_virtual_cluster),
        )
        .route("/api/session", get(api_session))
        .route("/api/virtual-clusters", get(api_virtual_clusters))
        .route("/api/virtual-clusters/{vc}/job-runs", get(api_job_runs))
        .merge(crate::eks::routes())
        .merge(crate::insights::routes())
        .merge(crate::job_run::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(console)
}

/// Headers on every answer: no framing, no sniffing, no referrer to other sites (a
/// sign-in link's token is in its URL; `same-origin` rather than `no-referrer`, under
/// which browsers send `Origin: null` on the console's own forms), nothing cached, and a
/// policy that allows this origin's stylesheet, one script file (`/assets/console.js`:
/// live updates and chart read-outs; no inline scripts, no `eval`) and forms only.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    response
}

/// `Server-Timing: app;dur=<ms>` on every answer: how long the console took to render it
/// (the API calls it made included), shown by browsers' developer tools and read by
/// `scripts/bench-console.py`.
async fn server_timing(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

// ---- responses ---------------------------------------------------------------------------

pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

pub(crate) fn message(status: StatusCode, nav: Option<Nav>, title: &str, text: &str) -> Response {
    let (link, link_text) = match nav {
        Some(_) => ("/virtual-clusters", "Back to virtual clusters"),
        None => ("/signin", "Sign in"),
    };
    page(
        status,
        &views::Message {
            nav,
            title: title.into(),
            text: text.into(),
            link: link.into(),
            link_text: link_text.into(),
            refresh: false,
        },
    )
}

pub(crate) fn json_response(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

pub(crate) fn api_error(e: &ApiError) -> Response {
    json_response(e.status, json!({"code": e.code, "message": e.message}))
}

pub(crate) fn nav(session: &Session) -> Option<Nav> {
    Some(Nav {
        arn: session.principal.arn.clone(),
        csrf: session.csrf.clone(),
    })
}

// ---- sessions ------------------------------------------------------------------------------

/// The request's live session. A session whose access key the keyring no longer knows
/// (expired temporary credentials are pruned) ends with it.
fn current(console: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = sessions::cookie(headers, COOKIE)?;
    let inner = &console.inner;
    let session = inner.sessions.get(id, Utc::now())?;
    if inner
        .keyring
        .lookup(&session.principal.access_key_id)
        .is_none()
    {
        inner.sessions.remove(id);
        return None;
    }
    Some((id.to_string(), session))
}

/// Pages: the session, or a redirect to the sign-in page.
#[allow(clippy::result_large_err)]
pub(crate) fn session_or_redirect(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Session, Response> {
    current(console, headers)
        .map(|(_, s)| s)
        .ok_or_else(|| see_other("/signin"))
}

/// The JSON API: the session, or 401.
#[allow(clippy::result_large_err)]
pub(crate) fn session_or_401(console: &Console, headers: &HeaderMap) -> Result<Session, Response> {
    current(console, headers).map(|(_, s)| s).ok_or_else(|| {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({"code": "Unauthorized", "message": "Sign in to the console first."}),
        )
    })
}

pub(crate) fn form(body: &Bytes) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A browser's POST names the page's origin; one from another origin is refused even
/// before its token is looked at.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser, or one that sends no Origin: the token decides.
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The CSRF check of every signed-in POST: same origin and the session's own token.
#[allow(clippy::result_large_err)]
pub(crate) fn check_post(
    headers: &HeaderMap,
    session: &Session,
    form: &HashMap<String, String>,
) -> Result<(), Response> {
    let token = form.get("csrf").map(String::as_str).unwrap_or_default();
    if same_origin(headers) && sessions::constant_time_eq(token.as_bytes(), session.csrf.as_bytes())
    {
        return Ok(());
    }
    tracing::warn!(principal = %session.principal.arn, "console POST without its CSRF token refused");
    Err(message(
        StatusCode::FORBIDDEN,
        nav(session),
        "Request refused",
        "The form was not sent from this console session (missing or wrong CSRF token). Nothing was changed.",
    ))
}

/// The start of every signed-in POST handler: the session (or a redirect to sign in),
/// then the CSRF check; the form's fields.
#[allow(clippy::result_large_err)]
pub(crate) fn signed_in_post(
    console: &Console,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Session, HashMap<String, String>), Response> {
    let session = session_or_redirect(console, headers)?;
    let fields = form(body);
    check_post(headers, &session, &fields)?;
    Ok((session, fields))
}

// ---- sign-in -------------------------------------------------------------------------------

async fn root(State(console): State<Console>, headers: HeaderMap) -> Response {
    match current(&console, &headers) {
        Some(_) => see_other("/virtual-clusters"),
        None => see_other("/signin"),
    }
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// The sign-in form's token: HMAC of the pre-session cookie under the server's key.
fn form_token(console: &Console, pre: &str) -> String {
    hex::encode(ring::hmac::sign(
        &console.inner.form_key,
        format!("signin:{pre}").as_bytes(),
    ))
}

fn signin_page(
    console: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    error: &str,
    access_key_id: &str,
) -> Response {
    let existing = sessions::cookie(headers, PRE_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let pre = existing.clone().unwrap_or_else(sessions::random_token);
    let mut response = page(
        status,
        &views::SignIn {
            nav: None,
            title: "Sign in".into(),
            csrf: form_token(console, &pre),
            error: error.into(),
            access_key_id: access_key_id.into(),
        },
    );
    if existing.is_none() {
        if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(PRE_COOKIE, &pre, 3600)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn signin_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    if current(&console, &headers).is_some() {
        return see_other("/virtual-clusters");
    }
    signin_page(&console, &headers, StatusCode::OK, "", "")
}

/// Starts a session for `principal` and answers with its cookie. The answer is a page
/// that moves on to `/virtual-clusters` itself (not a redirect), so the strict cookie is
/// sent even when the link was opened from another application.
fn start_session(
    console: &Console,
    principal: Principal,
    expires: DateTime<Utc>,
    method: SignInMethod,
) -> Response {
    let (id, _) = console.inner.sessions.create(principal, expires, method);
    let max_age = (expires - Utc::now()).num_seconds().max(1);
    let mut response = page(
        StatusCode::OK,
        &views::Message {
            nav: None,
            title: "Signed in".into(),
            text: "You are signed in.".into(),
            link: "/virtual-clusters".into(),
            link_text: "Continue to the console".into(),
            refresh: true,
        },
    );
    for cookie in [
        sessions::set_cookie(COOKIE, &id, max_age),
        sessions::clear_cookie(PRE_COOKIE),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn session_ttl(console: &Console) -> Duration {
    Duration::hours(console.inner.settings.config.session_hours.max(1) as i64)
}

/// Checks an access key (and session token) against the keyring as the SigV4 layer
/// would: the secret, a token for temporary keys and none for permanent ones, and the
/// credentials' expiry, which also bounds the console session.
pub(crate) fn verify_key(
    console: &Console,
    access_key_id: &str,
    secret: &str,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Principal, DateTime<Utc>), &'static str> {
    const INVALID: &str = "The access key ID, secret access key or session token is not valid.";
    let record = console.inner.keyring.lookup(access_key_id).ok_or(INVALID)?;
    if !sessions::constant_time_eq(record.secret_access_key.as_bytes(), secret.as_bytes()) {
        return Err(INVALID);
    }
    let until = now + session_ttl(console);
    let expires = match (&record.session, token) {
        (None, None) => until,
        (Some(s), Some(t)) if sessions::constant_time_eq(s.token.as_bytes(), t.as_bytes()) => {
            if s.expiration <= now {
                return Err("These temporary credentials have expired.");
            }
            until.min(s.expiration)
        }
        _ => return Err(INVALID),
    };
    Ok((
        Principal {
            access_key_id: access_key_id.to_string(),
            account_id: record.owner.account_id,
            arn: record.owner.arn,
            region: console.inner.settings.region.clone(),
            service: "emr-containers".into(),
        },
        expires,
    ))
}

async fn signin(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let access_key_id = field("access_key_id");
    let pre = sessions::cookie(&headers, PRE_COOKIE).unwrap_or_default();
    let token_ok = !pre.is_empty()
        && hex::decode(field("csrf")).is_ok_and(|tag| {
            ring::hmac::verify(
                &console.inner.form_key,
                format!("signin:{pre}").as_bytes(),
                &tag,
            )
            .is_ok()
        });
    if !token_ok || !same_origin(&headers) {
        return signin_page(
            &console,
            &headers,
            StatusCode::FORBIDDEN,
            "The sign-in form expired or was not sent from this page; please try again.",
            &access_key_id,
        );
    }
    let session_token = field("session_token");
    let session_token = (!session_token.is_empty()).then_some(session_token.as_str());
    match verify_key(
        &console,
        &access_key_id,
        &field("secret_access_key"),
        session_token,
        Utc::now(),
    ) {
        Ok((principal, expires)) => {
            tracing::info!(principal = %principal.arn, "console sign-in with an access key");
            start_session(&console, principal, expires, SignInMethod::AccessKey)
        }
        Err(why) => {
            tracing::warn!(%access_key_id, "console sign-in refused");
            signin_page(
                &console,
                &headers,
                StatusCode::UNAUTHORIZED,
                why,
                &access_key_id,
            )
        }
    }
}

async fn signin_link(
    State(console): State<Console>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let token = query.get("token").map(String::as_str).unwrap_or_default();
    let now = Utc::now();
    match links::redeem(&console.inner.settings.data_dir, token, now) {
        Ok(()) => {
            let keyring = &console.inner.keyring;
            let key = keyring.bootstrap();
            let Some(record) = keyring.lookup(&key.access_key_id) else {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Sign-in failed",
                    "The administrator key is missing.",
                );
            };
            let principal = Principal {
                access_key_id: key.access_key_id.clone(),
                account_id: record.owner.account_id,
                arn: record.owner.arn,
                region: console.inner.settings.region.clone(),
                service: "emr-containers".into(),
            };
            tracing::info!(principal = %principal.arn, "console sign-in with a one-time link");
            start_session(
                &console,
                principal,
                now + session_ttl(&console),
                SignInMethod::Link,
            )
        }
        Err(e) => {
            let text = match e {
                LinkError::Expired => "This sign-in link has expired. Run `sparkyard console` for a new one.",
                LinkError::Invalid => "This sign-in link is not valid or has already been used. Run `sparkyard console` for a new one.",
            };
            message(StatusCode::FORBIDDEN, None, "Sign-in link refused", text)
        }
    }
}

async fn signout(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((id, session)) = current(&console, &headers) else {
        return see_other("/signin");
    };
    if let Err(refused) = check_post(&headers, &session, &form(&body)) {
        return refused;
    }
    console.inner.sessions.remove(&id);
    let mut response = see_other("/signin");
    if let Ok(v) = HeaderValue::from_str(&sessions::clear_cookie(COOKIE)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ---- formatting ----------------------------------------------------------------------------

pub(crate) fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(crate) fn or_dash(s: String) -> String {
    if s.is_empty() {
        "—".into()
    } else {
        s
    }
}

pub(crate) fn timestamp(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    match v.pointer(pointer)? {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => DateTime::from_timestamp_millis((n.as_f64()? * 1000.0) as i64),
        _ => None,
    }
}

pub(crate) fn shown_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// `2h 3m 4s`, `5m 0s`, `12s`.
pub(crate) fn shown_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// From creation to the end, or to now while the run is not finished.
pub(crate) fn run_duration(run: &Value) -> String {
    let Some(created) = timestamp(run, "/createdAt") else {
        return "—".into();
    };
    let end = timestamp(run, "/finishedAt").unwrap_or_else(Utc::now);
    shown_duration(end - created)
}

/// Ids reach the API's paths only when they look like ids.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

// ---- pages ---------------------------------------------------------------------------------

async fn virtual_clusters(State(console): State<Console>, headers: HeaderMap) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let api = &console.inner.api;
    let p = &session.principal;
    let (rows, error) = match api.list_virtual_clusters(p).await {
        Ok(list) => {
            let mut rows = Vec::new();
            for vc in &list {
                let id = text(vc, "/id");
                let running = RunFilter {
                    states: vec!["RUNNING".into()],
                    ..RunFilter::default()
                };
                let running = match api.list_job_runs(p, &id, &running).await {
                    Ok(runs) => runs.len().to_string(),
                    Err(_) => "—".into(),
                };
                rows.push(VcRow {
                    name: or_dash(text(vc, "/name")),
                    state: text(vc, "/state"),
                    namespace: or_dash(text(vc, "/containerProvider/info/eksInfo/namespace")),
                    created: shown_time(timestamp(vc, "/createdAt")),
                    running,
                    id,
                });
            }
            (rows, String::new())
        }
        Err(e) => (Vec::new(), e.message),
    };
    page(
        StatusCode::OK,
        &views::VirtualClusters {
            nav: nav(&session),
            title: "Virtual clusters".into(),
            rows,
            error,
        },
    )
}

/// A cost record's EC2 share plus EMR charge.
pub(crate) fn total_usd(cost: &Value) -> f64 {
    cost["ec2Usd"].as_f64().unwrap_or_default() + cost["emrUsd"].as_f64().unwrap_or_default()
}

/// Dollars to the cent's hundredth: a pi run costs fractions of a cent.
pub(crate) fn usd(amount: f64) -> String {
    format!("${amount:.4}")
}

/// "N runs with a cost record: $T (EC2 $E, EMR on EKS $M; V vCPU-hours, G GB-hours)".
fn cost_summary<'a>(costs: impl Iterator<Item = &'a Value>) -> String {
    let (mut n, mut ec2, mut emr, mut vcpu, mut gb) = (0, 0.0, 0.0, 0.0, 0.0);
    for c in costs {
        n += 1;
        ec2 += c["ec2Usd"].as_f64().unwrap_or_default();
        emr += c["emrUsd"].as_f64().unwrap_or_default();
        vcpu += c["vcpuHours"].as_f64().unwrap_or_default();
        gb += c["gbHours"].as_f64().unwrap_or_default();
    }
    if n == 0 {
        return String::new();
    }
    format!(
        "{n} run{} with a cost record: {} (EC2 {}, EMR on EKS {}; {vcpu:.3} vCPU-hours, {gb:.3} GB-hours)",
        if n == 1 { "" } else { "s" },
        usd(ec2 + emr),
        usd(ec2),
        usd(emr)
    )
}

fn run_filter(query: &HashMap<String, String>) -> RunFilter {
    let get = |k: &str| {
        query
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    RunFilter {
        states: get("state")
            .filter(|s| RUN_STATES.contains(&s.as_str()))
            .into_iter()
            .collect(),
        name: get("name"),
        created_after: get("created_after"),
    }
}

async fn job_runs(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(vc): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&vc) {
        return message(
            StatusCode::NOT_FOUND,
            nav(&session),
            "Not found",
            "No such virtual cluster.",
        );
    }
    let api = &console.inner.api;
    let p = &session.principal;
    let (vc_name, vc_state, vc_namespace) = match api.describe_virtual_cluster(p, &vc).await {
        Ok(v) => (
            or_dash(text(&v, "/name")),
            or_dash(text(&v, "/state")),
            or_dash(text(&v, "/containerProvider/info/eksInfo/namespace")),
        ),
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return message(
                StatusCode::NOT_FOUND,
                nav(&session),
                "Not found",
                &e.message,
            )
        }
        // Without DescribeVirtualCluster the page still lists what ListJobRuns allows.
        Err(_) => (vc.clone(), "—".into(), "—".into()),
    };
    let filter = run_filter(&query);
    // The same runs' cost records (a failure leaves the column at "—").
    let costs: HashMap<String, Value> = api
        .list_job_run_costs(p, &vc, &filter)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c["cost"].is_null())
        .map(|c| (text(&c, "/id"), c["cost"].clone()))
        .collect();
    let cost_total = cost_summary(costs.values());
    let (rows, error) = match api.list_job_runs(p, &vc, &filter).await {
        Ok(runs) => (
            runs.iter()
                .map(|r| RunRow {
                    id: text(r, "/id"),
                    name: or_dash(text(r, "/name")),
                    state: text(r, "/state"),
                    created: shown_time(timestamp(r, "/createdAt")),
                    release: or_dash(text(r, "/releaseLabel")),
                    duration: run_duration(r),
                    cost: costs
                        .get(&text(r, "/id"))
                        .map(|c| usd(total_usd(c)))
                        .unwrap_or_else(|| "—".into()),
                })
                .collect(),
            String::new(),
        ),
        Err(e) if e.denied() => (
            Vec::new(),
            format!(
                "You are not authorized to list the job runs of this virtual cluster. {}",
                e.message
            ),
        ),
        Err(e) => (Vec::new(), e.message),
    };
    let selected = filter.states.first().cloned().unwrap_or_default();
    page(
        StatusCode::OK,
        &views::JobRuns {
            nav: nav(&session),
            title: format!("{vc_name} · job runs"),
            csrf: session.csrf.clone(),
            deletable: vc_state == "RUNNING",
            notice: if query.contains_key("deleted") {
                "Virtual cluster deleted: it is TERMINATED and its job runs are cancelled.".into()
            } else {
                String::new()
            },
            vc_id: vc.clone(),
            vc_name,
            vc_state,
            vc_namespace,
            rows,
            cost_total,
            error,
            choices: RUN_STATES
                .iter()
                .map(|&s| Choice {
                    value: s,
                    selected: s == selected.as_str(),
                })
                .collect(),
            name: filter.name.clone().unwrap_or_default(),
            created_after: filter.created_after.clone().unwrap_or_default(),
            filtered: filter != RunFilter::default(),
        },
    )
}

pub(crate) fn api_failure_page(session: &Session, e: &ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not authorized",
        _ => "Request failed",
    };
    message(e.status, nav(session), title, &e.message)
}

/// DeleteVirtualCluster from the job runs page: the cluster goes TERMINATED (its runs
/// are cancelled by the service), and the page says so.
async fn delete_virtual_cluster(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(vc): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_in_post(&console, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !valid_id(&vc) {
        return message(
            StatusCode::NOT_FOUND,
            nav(&session),
            "Not found",
            "No such virtual cluster.",
        );
    }
    let p = &session.principal;
    match console.inner.api.delete_virtual_cluster(p, &vc).await {
        Ok(_) => {
            tracing::info!(principal = %p.arn, virtual_cluster = %vc, "virtual cluster deleted from the console");
            see_other(&format!("/virtual-clusters/{vc}?deleted=1"))
        }
        Err(e) => api_failure_page(&session, &e),
    }
}

async fn not_found(
    State(console): State<Console>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if uri.path().starts_with("/api/") {
        return match session_or_401(&console, &headers) {
            Ok(_) => json_response(
                StatusCode::NOT_FOUND,
                json!({"code": "NotFound", "message": "No such console API."}),
            ),
            Err(r) => r,
        };
    }
    match session_or_redirect(&console, &headers) {
        Ok(s) => message(
            StatusCode::NOT_FOUND,
            nav(&s),
            "Not found",
            "There is no such page.",
        ),
        Err(r) => r,
    }
}

// ---- JSON API ------------------------------------------------------------------------------

async fn api_session(State(console): State<Console>, headers: HeaderMap) -> Response {
    match session_or_401(&console, &headers) {
        Ok(s) => json_response(
            StatusCode::OK,
            json!({
                "arn": s.principal.arn,
                "accountId": s.principal.account_id,
                "accessKeyId": s.principal.access_key_id,
                "expires": s.expires.to_rfc3339(),
                "signInMethod": match s.method {
                    SignInMethod::Link => "link",
                    SignInMethod::AccessKey => "accessKey",
                },
            }),
        ),
        Err(r) => r,
    }
}

async fn api_virtual_clusters(State(console): State<Console>, headers: HeaderMap) -> Response {
    let session = match session_or_401(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match console
        .inner
        .api
        .list_virtual_clusters(&session.principal)
        .await
    {
        Ok(list) => json_response(StatusCode::OK, json!({ "virtualClusters": list })),
        Err(e) => api_error(&e),
    }
}

async fn api_job_runs(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(vc): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session_or_401(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !valid_id(&vc) {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "No such virtual cluster."}),
        );
    }
    match console
        .inner
        .api
        .list_job_runs(&session.principal, &vc, &run_filter(&query))
        .await
    {
        Ok(list) => json_response(StatusCode::OK, json!({ "jobRuns": list })),
        Err(e) => api_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_emr_console() {
        assert_eq!(shown_duration(Duration::seconds(12)), "12s");
        assert_eq!(shown_duration(Duration::seconds(300)), "5m 0s");
        assert_eq!(shown_duration(Duration::seconds(7384)), "2h 3m 4s");
        assert_eq!(shown_duration(Duration::seconds(-3)), "0s");
    }

    #[test]
    fn only_plain_ids_reach_api_paths() {
        assert!(valid_id("0000000abcdef123"));
        assert!(!valid_id("../x"));
        assert!(!valid_id(""));
        assert!(!valid_id("a%2Fb"));
    }

    #[test]
    fn origins_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:4752".parse().unwrap());
        assert!(same_origin(&h), "no Origin: the token decides");
        h.insert(header::ORIGIN, "http://127.0.0.1:4752".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
