//! Router-level tests: requests go through `router()` exactly as the binary serves them
//! (minus SigV4), with a real store in a temporary directory.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::*;

pub(crate) struct T {
    pub emr: Emr,
    pub _dir: tempfile::TempDir,
}

pub(crate) async fn setup() -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = sparkyard_store::Store::open(&dir.path().join("db")).unwrap();
    let emr = Emr::open(
        store,
        Settings {
            region: "us-east-2".into(),
            account_id: "123456789012".into(),
            config: EmrConfig::default(),
        },
    )
    .await
    .unwrap();
    T { emr, _dir: dir }
}

pub(crate) struct Resp {
    pub status: StatusCode,
    pub error_type: Option<String>,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
    #[track_caller]
    pub fn err(&self, code: &str) -> String {
        assert_eq!(
            self.error_type.as_deref(),
            Some(code),
            "{} {}",
            self.status,
            self.body
        );
        assert_eq!(self.body["__type"], code);
        self.body["message"].as_str().unwrap().to_string()
    }
}

impl T {
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(match body {
                Some(b) => Body::from(b.to_string()),
                None => Body::empty(),
            })
            .unwrap();
        let resp = router(self.emr.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Resp {
            status,
            error_type,
            body,
        }
    }

    pub async fn raw(&self, method: &str, uri: &str, body: &str) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = router(self.emr.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            error_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn create_vc(&self, ns: &str) -> String {
        let r = self
            .call(
                "POST",
                "/virtualclusters",
                Some(json!({"name": format!("{ns}-emr-cluster"), "clientToken": uuid(),
                    "containerProvider": {"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": ns}}}})),
            )
            .await;
        r.ok()["id"].as_str().unwrap().to_string()
    }

    pub async fn start(&self, vc: &str, extra: Value) -> Resp {
        let mut body = job();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(body),
        )
        .await
    }
}

pub(crate) fn uuid() -> String {
    crate::ids::random_id(32)
}

pub(crate) fn job() -> Value {
    json!({
        "name": "pi-4",
        "clientToken": uuid(),
        "executionRoleArn": "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole",
        "releaseLabel": "emr-6.3.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
            "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"}},
        "configurationOverrides": {
            "applicationConfiguration": [{"classification": "spark-defaults",
                "properties": {"spark.dynamicAllocation.enabled": "false", "spark.kubernetes.executor.deleteOnTermination": "true"}}],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch", "logStreamNamePrefix": "pi"},
                "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-123456789012-us-east-2/"}}}
    })
}

mod api;
