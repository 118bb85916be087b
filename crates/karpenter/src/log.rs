//! Karpenter's log, in its v1 JSON format, readable with
//! `kubectl logs -n karpenter -l app.kubernetes.io/name=karpenter`.
//!
//! On a real cluster Karpenter runs as a pod and its stdout is the container log. Here the
//! controller runs inside sparkyard, so it appears as a *mirror pod* (the kubelet's way of
//! showing a process it did not start: annotation `kubernetes.io/config.mirror`) in the
//! `karpenter` namespace, and each line is written in the CRI format to that pod's log
//! file, where `pods/log` reads it. Every line also goes to sparkyard's own tracing log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use sparkyard_container_logs as logs;
use sparkyard_kube_apiserver::registry::{now_rfc3339, Resource};
use sparkyard_kube_apiserver::Client;

pub const NAMESPACE: &str = "karpenter";
pub const CONTAINER: &str = "controller";
/// The release's commit in Karpenter's log lines: sparkyard's version stands in for it.
const COMMIT: &str = env!("CARGO_PKG_VERSION");

const PODS: Resource = Resource::new("", "pods");
const NAMESPACES: Resource = Resource::new("", "namespaces");

/// Where log lines go. Cloning shares the file.
#[derive(Clone, Default)]
pub struct Log {
    writer: Arc<Mutex<Option<Arc<logs::cri::Writer>>>>,
}

impl Log {
    /// Creates (or adopts, after a restart) the `karpenter` namespace and mirror pod, and
    /// opens its log file. `node` is where the pod shows as running; `data_dir` is the
    /// cluster's, under which pod logs live.
    pub fn open(client: &Client, data_dir: &std::path::Path, node: Option<&str>) -> Log {
        let log = Log::default();
        match mirror_pod(client, node) {
            Ok((name, uid)) => {
                let path: PathBuf =
                    logs::pod_log_path(data_dir, NAMESPACE, &name, &uid, CONTAINER, 0);
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                match logs::cri::Writer::open(&path) {
                    Ok(w) => *log.writer.lock().unwrap() = Some(w),
                    Err(e) => tracing::warn!(error = %e, "karpenter: cannot open its pod log"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "karpenter: cannot create its mirror pod"),
        }
        log
    }

    /// One line: `level` INFO/DEBUG/ERROR, `controller` (provisioner, nodeclaim.lifecycle,
    /// disruption, node.termination, interruption), the message and its fields.
    pub fn line(&self, level: &str, controller: &str, message: &str, fields: Value) {
        let mut record = Map::new();
        record.insert("level".into(), json!(level));
        record.insert("time".into(), json!(now_rfc3339_millis()));
        record.insert("logger".into(), json!("controller"));
        record.insert("message".into(), json!(message));
        record.insert("commit".into(), json!(COMMIT));
        record.insert("controller".into(), json!(controller));
        if let Value::Object(extra) = fields {
            record.extend(extra);
        }
        let text = Value::Object(record).to_string();
        tracing::info!(target: "karpenter", "{text}");
        if let Some(w) = self.writer.lock().unwrap().as_ref() {
            let _ = w.record(logs::cri::Stream::Stdout, false, text.as_bytes());
        }
    }

    pub fn info(&self, controller: &str, message: &str, fields: Value) {
        self.line("INFO", controller, message, fields)
    }

    pub fn error(&self, controller: &str, message: &str, fields: Value) {
        self.line("ERROR", controller, message, fields)
    }
}

fn now_rfc3339_millis() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `karpenter` namespace and the controller's mirror pod (kept across restarts).
fn mirror_pod(client: &Client, node: Option<&str>) -> Result<(String, String), String> {
    if client.get(NAMESPACES, "", NAMESPACE).is_none() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"kubernetes.io/metadata.name": NAMESPACE}}});
        client
            .create(NAMESPACES, "", ns)
            .map_err(|e| e.to_string())?;
    }
    let (pods, _) = client.list(PODS, Some(NAMESPACE));
    if let Some(pod) = pods.iter().find(|p| {
        p["metadata"]["labels"]["app.kubernetes.io/name"] == "karpenter"
            && p["metadata"]["deletionTimestamp"].is_null()
    }) {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return Ok((name, uid));
    }
    let suffix = format!("{:010x}", rand_suffix());
    let name = format!("karpenter-{}-{}", &suffix[..10], &suffix[..5]);
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"},
            "annotations": {"kubernetes.io/config.mirror": "sparkyard", "kubernetes.io/config.source": "sparkyard"}},
        "spec": {"containers": [{"name": CONTAINER, "image": "public.ecr.aws/karpenter/controller:sparkyard"}],
            "priorityClassName": "system-cluster-critical",
            // No scheduler binds it: it runs inside sparkyard.
            "schedulerName": "sparkyard-control-plane"}});
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    let created = client
        .create(PODS, NAMESPACE, pod)
        .map_err(|e| e.to_string())?;
    let uid = created["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = now_rfc3339();
    let _ = client.update_status(PODS, NAMESPACE, &name, |pod| {
        pod["status"] = json!({"phase": "Running", "startTime": now,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [{"name": CONTAINER, "ready": true, "started": true, "restartCount": 0,
                "image": "public.ecr.aws/karpenter/controller:sparkyard", "imageID": "",
                "state": {"running": {"startedAt": now}}}]});
        Ok(())
    });
    Ok((name, uid))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// "a, b, c, d, e and 54 other(s)": how Karpenter lists many names.
pub fn first_five(names: &[String]) -> String {
    if names.len() <= 5 {
        return names.join(", ");
    }
    format!("{} and {} other(s)", names[..5].join(", "), names.len() - 5)
}
