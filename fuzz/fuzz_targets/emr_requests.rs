//! emr-containers requests through the real router: raw-path routing and label decoding,
//! query documents, body decoding, shape validation (`validate`/`shapes`), the handlers'
//! semantic checks (StartJobRun's effective body, job templates, pagination tokens,
//! idempotency fingerprints) and the state changes they make, against a real store.
//!
//! Input (UTF-8 text):
//! ```text
//! METHOD /raw/path?raw=query          <- request line
//! {"json": "body"}                    <- everything after the first newline is the body
//! ```
//! Ids are random per process, so the harness replaces `{vc}` (a running virtual cluster)
//! and `{tpl}` (a job template with parameters) in the request line and the body.
//!
//! Besides the router, the pure public helpers are fed directly: `validate::validate` with
//! every request shape, `routes::query_document`, `templates::resolve`/`merge`,
//! `idempotency::fingerprint`, `pagination::decode_token`, `time::parse_timestamp`.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sparkyard_emr::{idempotency, pagination, routes, shapes, templates, time, validate};
use sparkyard_emr::{Emr, EmrConfig, Settings};
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    emr: Emr,
    vc: String,
    tpl: String,
    _dir: std::path::PathBuf,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // TMPDIR points at a tmpfs in scripts/fuzz.sh: the store fsyncs every commit.
        let dir = std::env::temp_dir().join(format!("sparkyard-fuzz-emr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = sparkyard_store::Store::open(&dir.join("db")).unwrap();
        let emr = rt
            .block_on(Emr::open(
                store,
                Settings {
                    region: "us-east-2".into(),
                    account_id: "123456789012".into(),
                    config: EmrConfig::default(),
                },
            ))
            .unwrap();
        let mut w = World {
            rt,
            emr,
            vc: String::new(),
            tpl: String::new(),
            _dir: dir,
        };
        let vc = call(
            &w,
            "POST",
            "/virtualclusters",
            json!({"name": "fuzz", "clientToken": "setup-vc",
                   "containerProvider": {"type": "EKS", "id": "sparkyard",
                       "info": {"eksInfo": {"namespace": "fuzz"}}}})
            .to_string(),
        );
        w.vc = match vc["id"].as_str() {
            Some(id) => id.to_string(),
            None => panic!("setup virtual cluster: {vc}"),
        };
        let tpl = call(
            &w,
            "POST",
            "/jobtemplates",
            json!({"name": "fuzz-template", "clientToken": "setup-tpl",
                "jobTemplateData": {
                    "executionRoleArn": "${Role}",
                    "releaseLabel": "emr-7.5.0-latest",
                    "jobDriver": {"sparkSubmitJobDriver": {
                        "entryPoint": "s3://bucket/${Script}",
                        "sparkSubmitParameters": "--conf spark.executor.instances=${Executors}"}},
                    "parameterConfiguration": {
                        "Role": {"type": "STRING",
                                 "defaultValue": "arn:aws:iam::123456789012:role/spark"},
                        "Script": {"type": "STRING", "defaultValue": "pi.py"},
                        "Executors": {"type": "NUMBER", "defaultValue": "2"}},
                    "jobTags": {"team": "fuzz"}}})
            .to_string(),
        );
        w.tpl = match tpl["id"].as_str() {
            Some(id) => id.to_string(),
            None => panic!("setup job template: {tpl}"),
        };
        w
    })
}

fn call(w: &World, method: &str, uri: &str, body: String) -> Value {
    let Ok(req) = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(body))
    else {
        return Value::Null;
    };
    w.rt.block_on(async {
        let resp = sparkyard_emr::router(w.emr.clone())
            .oneshot(req)
            .await
            .expect("the router is infallible");
        // Bad input is the client's fault: a 4xx, never a 5xx.
        let status = resp.status();
        assert!(!status.is_server_error(), "answered {status}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        // Every response, success or error, is a JSON document.
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    })
}

const BODY_SHAPES: &[&validate::Shape] = &[
    &shapes::CREATE_VIRTUAL_CLUSTER,
    &shapes::UPDATE_VIRTUAL_CLUSTER,
    &shapes::START_JOB_RUN,
    &shapes::CREATE_JOB_TEMPLATE,
    &shapes::CREATE_MANAGED_ENDPOINT,
    &shapes::GET_SESSION_CREDENTIALS,
    &shapes::CREATE_SECURITY_CONFIGURATION,
    &shapes::TAG_RESOURCE,
    &shapes::JOB_TEMPLATE_DATA,
];

const QUERY_SHAPES: &[&validate::Shape] = &[
    &shapes::LIST_VIRTUAL_CLUSTERS,
    &shapes::LIST_JOB_RUNS,
    &shapes::LIST_MANAGED_ENDPOINTS,
    &shapes::LIST_CREATED,
    &shapes::UNTAG_RESOURCE,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = world();
    let text = text.replace("{vc}", &w.vc).replace("{tpl}", &w.tpl);
    let (request_line, body) = text.split_once('\n').unwrap_or((&text, ""));
    let (method, target) = request_line
        .trim_end_matches('\r')
        .split_once(' ')
        .unwrap_or(("GET", request_line));
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };

    // Pure helpers, fed the same pieces the router gets.
    if let Ok(m) = http::Method::from_bytes(method.as_bytes()) {
        if let Some((_, labels)) = routes::route(&m, raw_path) {
            for l in labels {
                let _ = routes::decode_label(l);
            }
        }
    }
    let pairs = routes::parse_query(raw_query);
    for shape in QUERY_SHAPES {
        if let Ok(doc) = routes::query_document(&pairs, shape) {
            let _ = validate::validate(&doc, shape);
            if let Some(v) = doc.get("createdAfter") {
                let _ = time::parse_timestamp(v);
            }
            if let Some(t) = doc.get("nextToken").and_then(Value::as_str) {
                let _ = pagination::decode_token(t);
            }
            let _ = pagination::page_size(doc.get("maxResults").and_then(Value::as_i64));
        }
    }
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        for shape in BODY_SHAPES {
            let _ = validate::validate(&value, shape);
        }
        let _ = idempotency::fingerprint(&[w.vc.as_str()], &value);
        let _ = validate::render(&value);
        if let Some(data) = value.get("jobTemplateData") {
            let inputs = value
                .get("jobTemplateParameters")
                .and_then(Value::as_object);
            if let Ok(resolved) = templates::resolve("fuzz", data, inputs) {
                let merged = templates::merge(&resolved, &value);
                let _ = validate::validate(&merged, &shapes::START_JOB_RUN);
            }
        }
        for key in ["createdAfter", "createdBefore"] {
            if let Some(v) = value.get(key) {
                let _ = time::parse_timestamp(v);
            }
        }
    }

    // The real thing: the router, its handlers and the store.
    let resp = call(w, method, target, body.to_string());
    if debug() {
        eprintln!("{method} {target} -> {resp}");
    }
});

/// `FUZZ_DEBUG=1`: print each request and its response (for writing seeds).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}
