//! StartJobRun throughput through the router (no SigV4, no TCP) against a real, durable
//! store: `cargo run --release -p sparkyard-emr --example bench_start_job_run -- [runs] [concurrency]`.
//! Every request is acknowledged only after its group commit was fsynced.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let store = sparkyard_store::Store::open(&dir.path().join("bench.db")).unwrap();
    let settings = sparkyard_emr::Settings {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        config: Default::default(),
    };
    let emr = sparkyard_emr::Emr::open(store, settings).await.unwrap();
    let app = sparkyard_emr::router(emr);
    let vc = call(&app, "/virtualclusters", serde_json::json!({"name": "bench", "clientToken": "vc",
        "containerProvider": {"id": "c", "type": "EKS", "info": {"eksInfo": {"namespace": "bench"}}}}))
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let per_task = runs / concurrency;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let app = app.clone();
        let uri = format!("/virtualclusters/{vc}/jobruns");
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let body = serde_json::json!({
                    "name": "pi", "clientToken": format!("{t}-{i}"),
                    "executionRoleArn": "arn:aws:iam::123456789012:role/r", "releaseLabel": "emr-6.15.0-latest",
                    "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///pi.py", "sparkSubmitParameters": "--conf spark.executor.instances=2"}},
                    "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs/"}}}
                });
                let v = call(&app, &uri, body).await;
                assert!(v.get("id").is_some(), "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = per_task * concurrency;
    println!(
        "{n} StartJobRun in {secs:.2}s = {:.0}/s (concurrency {concurrency})",
        n as f64 / secs
    );
}

async fn call(app: &axum::Router, uri: &str, body: serde_json::Value) -> serde_json::Value {
    let req = Request::post(uri)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
