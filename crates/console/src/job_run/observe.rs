//! What the cluster and the logs say about a run: its namespace, its pods (ONE labelled
//! list), their events (ONE namespace list), the pods that only shipped logs, and Spark's
//! executor lifecycle from the driver's log.

use std::collections::BTreeSet;

use serde_json::Value;

use super::chain::{self, ChainPod, Role};
use super::logs::{self, CloudWatch};
use super::spark_log;
use super::timeline::{self, SparkExecutor};
use crate::kube::KubeError;
use crate::pages::text;
use crate::sessions::Session;
use crate::Console;

/// The run's label on every pod EMR and Spark create for it (runner, driver, executors).
const JOB_ID_LABEL: &str = "emr-containers.amazonaws.com%2Fjob.id";

pub(super) struct Observed {
    pub namespace: String,
    pub pods: Vec<ChainPod>,
    pub pods_error: String,
    pub timeline: Vec<timeline::Entry>,
    pub timeline_error: String,
    pub shipped: BTreeSet<String>,
    pub event_names: BTreeSet<String>,
    pub logs_note: String,
}

fn denied_or(e: KubeError, what: &str, namespace: &str) -> String {
    if e.denied() {
        format!(
            "You are not authorized to {what} in {namespace}. {}",
            e.message
        )
    } else {
        e.message
    }
}

pub(super) async fn observe(
    console: &Console,
    session: &Session,
    vc: &str,
    run: &Value,
) -> Observed {
    let inner = &console.inner;
    let p = &session.principal;
    let id = text(run, "/id");
    let mut o = Observed {
        namespace: "—".into(),
        pods: Vec::new(),
        pods_error: String::new(),
        timeline: Vec::new(),
        timeline_error: String::new(),
        shipped: BTreeSet::new(),
        event_names: BTreeSet::new(),
        logs_note: String::new(),
    };
    let cw = logs::cloudwatch_of(run);
    let shipped = async {
        match &cw {
            Some(cw) => {
                Some(logs::shipped_pods(&inner.api, p, cw, &logs::run_prefix(cw, vc, &id)).await)
            }
            None => None,
        }
    };
    let namespace = async {
        inner
            .api
            .describe_virtual_cluster(p, vc)
            .await
            .map(|v| text(&v, "/containerProvider/info/eksInfo/namespace"))
    };
    let (shipped, namespace) = tokio::join!(shipped, namespace);
    let namespace = match namespace {
        Ok(ns) => ns,
        Err(e) => {
            o.pods_error = format!("Cannot find the virtual cluster's namespace: {}", e.message);
            o.timeline_error = o.pods_error.clone();
            String::new()
        }
    };
    match shipped {
        Some(Ok(pods)) => o.shipped = pods.into_iter().collect(),
        Some(Err(e)) if e.denied() => {
            o.logs_note = format!(
                "You are not authorized to read this run's CloudWatch logs. {}",
                e.message
            )
        }
        Some(Err(e)) => o.logs_note = format!("CloudWatch Logs: {}", e.message),
        None => {
            o.logs_note = match logs::s3_log_uri(run) {
                Some(uri) => format!("This run stores its container logs in S3 only ({uri}); the log pages read live pods, or use aws s3 cp."),
                None => "This run stores no copy of its container logs (no monitoringConfiguration): the log pages read live pods only.".into(),
            }
        }
    }
    if namespace.is_empty() {
        return o;
    }
    let pods_path =
        format!("/api/v1/namespaces/{namespace}/pods?labelSelector={JOB_ID_LABEL}%3D{id}");
    let events_path = format!("/api/v1/namespaces/{namespace}/events");
    let (pods_answer, events_answer) = tokio::join!(
        inner.kube.list(&inner.keyring, p, &pods_path),
        inner.kube.list(&inner.keyring, p, &events_path),
    );
    let live: Vec<ChainPod> = match pods_answer {
        Ok(pods) => pods.iter().map(chain::from_api).collect(),
        Err(e) => {
            o.pods_error = denied_or(e, "list pods", &namespace);
            Vec::new()
        }
    };
    let prefixes = chain::exec_prefixes(
        live.iter()
            .map(|p| p.name.as_str())
            .chain(o.shipped.iter().map(String::as_str)),
    );
    let (k8s, facts) = match events_answer {
        Ok(events) => timeline::k8s_entries(&events, |n| chain::belongs(&id, &prefixes, n)),
        Err(e) => {
            o.timeline_error = denied_or(e, "list events", &namespace);
            (Vec::new(), Default::default())
        }
    };
    o.event_names = facts.keys().cloned().collect();
    let extra: Vec<String> = o.shipped.iter().chain(facts.keys()).cloned().collect();
    o.pods = chain::assemble(&id, live, extra, &facts);
    o.timeline = k8s;
    o.namespace = namespace;
    o
}

/// Spark's side of the timeline, and what the page says when it has none.
pub(super) struct SparkSide {
    pub executors: Vec<SparkExecutor>,
    /// The application id the driver's log names (its event log file).
    pub app_id: String,
    pub note: String,
}

/// The driver's stderr: from the live pod (with the log API's precise timestamps), else
/// from its stored CloudWatch copy, then folded into executor lives.
pub(super) async fn spark_side(
    console: &Console,
    session: &Session,
    vc: &str,
    id: &str,
    namespace: &str,
    pods: &[ChainPod],
    cw: Option<&CloudWatch>,
) -> SparkSide {
    let inner = &console.inner;
    let p = &session.principal;
    let driver = pods.iter().find(|d| d.role == Role::Driver);
    let mut side = SparkSide {
        executors: Vec::new(),
        app_id: String::new(),
        note: String::new(),
    };
    let Some(driver) = driver else {
        side.note = "Spark's executor events appear once the driver runs.".into();
        return side;
    };
    let lines: Result<Vec<String>, String> = if driver.live && driver.phase != "Pending" {
        let container = logs::main_container(Role::Driver);
        let split = logs::live_log_path(
            namespace,
            &driver.name,
            container,
            Some("stderr"),
            true,
            None,
        );
        let answer = match inner.kube.text(&inner.keyring, p, &split).await {
            // A cluster without split streams: both streams merged.
            Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => {
                let merged =
                    logs::live_log_path(namespace, &driver.name, container, None, true, None);
                inner.kube.text(&inner.keyring, p, &merged).await
            }
            other => other,
        };
        answer
            .map(|t| t.lines().map(str::to_string).collect())
            .map_err(|e| denied_or(e, "read pod logs", namespace))
    } else if let Some(cw) = cw {
        let stream = logs::stream_name(cw, vc, id, &driver.name, false, "stderr");
        logs::stored_lines(&inner.api, p, cw, &stream, true)
            .await
            .map_err(|e| format!("The driver's stored log: {}", e.message))
    } else if driver.live {
        Ok(Vec::new())
    } else {
        Err("Spark's executor events are gone with the driver pod: this run stores no CloudWatch copy of its log.".into())
    };
    match lines {
        Ok(lines) => {
            side.executors = spark_log::executors(lines.iter().map(String::as_str));
            side.app_id = lines
                .iter()
                .find_map(|l| spark_log::app_id_in(l))
                .unwrap_or_default();
        }
        Err(note) => side.note = note,
    }
    side
}
