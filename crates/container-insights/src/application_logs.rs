//! The log half of Container Insights: every container's stdout and stderr into
//! `/aws/containerinsights/<cluster>/application`, in the record shape and stream names of
//! the fluent-bit DaemonSet AWS ships for Container Insights:
//!
//! - stream `<node>-application.var.log.containers.<pod>_<namespace>_<container>-<container id>.log`
//!   (fluent-bit's `log_stream_prefix ${HOST_NAME}-` before the tail input's tag);
//! - message `{"log": …, "stream": "stdout"|"stderr", "time": …, "kubernetes": {pod_name,
//!   namespace_name, pod_id, host, container_name, docker_id, container_image}}` (the CRI
//!   parser's fields plus the kubernetes filter's metadata, labels and annotations off).
//!
//! It tails the CRI log files the embedded kubelet writes (`sparkyard-container-logs`
//! layout), so it runs only beside the embedded cluster; on a real cluster the seed's
//! fluent-bit DaemonSet does this part. Offsets are kept in a checkpoint file, written after
//! each successful upload, so a restart neither repeats nor loses lines. Partial CRI records
//! (`P`, lines over 16 KiB) are shipped as they are, one event each.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use sparkyard_logs::aws::cloudwatch::Logs;
use sparkyard_logs::batch::{batches, Event};

/// What the shipper needs.
pub struct ApplicationLogSettings {
    pub cluster_name: String,
    /// The embedded cluster's data directory (`<data-dir>/cluster`): pods' logs are under it.
    pub cluster_data_dir: PathBuf,
    /// Where the offsets are kept.
    pub checkpoint: PathBuf,
    /// How often it looks for new lines (fluent-bit's flush interval: 5 s).
    pub interval: Duration,
    pub kube: kube::Client,
    pub logs: Logs,
}

pub fn application_log_group(cluster: &str) -> String {
    format!("/aws/containerinsights/{cluster}/application")
}

/// One container's log file, identified from its path and its pod.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    path: PathBuf,
    namespace: String,
    pod: String,
    uid: String,
    container: String,
}

/// `<pods dir>/<ns>_<pod>_<uid>/logs/<container>/<n>.log` (names cannot hold `_`).
fn sources(cluster_data_dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let Ok(pods) = std::fs::read_dir(cluster_data_dir.join("pods")) else {
        return out;
    };
    for pod in pods.flatten() {
        let name = pod.file_name().to_string_lossy().to_string();
        let mut parts = name.splitn(3, '_');
        let (Some(ns), Some(pod_name), Some(uid)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(containers) = std::fs::read_dir(pod.path().join("logs")) else {
            continue;
        };
        for c in containers.flatten() {
            let Ok(files) = std::fs::read_dir(c.path()) else {
                continue;
            };
            for f in files.flatten() {
                if f.path().extension().is_some_and(|e| e == "log") {
                    out.push(Source {
                        path: f.path(),
                        namespace: ns.into(),
                        pod: pod_name.into(),
                        uid: uid.into(),
                        container: c.file_name().to_string_lossy().into(),
                    });
                }
            }
        }
    }
    out
}

/// What the kubernetes filter adds, from the pod object.
#[derive(Debug, Clone, Default, PartialEq)]
struct PodMeta {
    node: String,
    /// container name → (container id without its runtime scheme, image)
    containers: HashMap<String, (String, String)>,
}

fn pod_meta(pod: &Pod) -> PodMeta {
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let containers = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|list| {
            list.iter()
                .map(|c| {
                    let id = c
                        .container_id
                        .as_deref()
                        .map(|id| id.rsplit("://").next().unwrap_or(id).to_string())
                        .unwrap_or_default();
                    (c.name.clone(), (id, c.image.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    PodMeta { node, containers }
}

/// The stream fluent-bit would write this container's lines to.
fn stream_name(node: &str, s: &Source, container_id: &str) -> String {
    format!(
        "{node}-application.var.log.containers.{}_{}_{}-{container_id}.log",
        s.pod, s.namespace, s.container
    )
}

/// New complete lines of `text` as events (the returned offset is past the last one).
fn events(text: &[u8], start: u64, s: &Source, meta: &PodMeta) -> (Vec<Event>, u64) {
    let (id, image) = meta
        .containers
        .get(&s.container)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut offset = start;
    let mut rest = text;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        let line = &rest[..end];
        offset += end as u64 + 1;
        rest = &rest[end + 1..];
        let record = sparkyard_container_logs::cri::parse(line);
        let time = record
            .time
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let message = json!({
            "log": String::from_utf8_lossy(record.content),
            "stream": record.stream.as_str(),
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "kubernetes": {
                "pod_name": s.pod,
                "namespace_name": s.namespace,
                "pod_id": s.uid,
                "host": meta.node,
                "container_name": s.container,
                "docker_id": id,
                "container_image": image,
            }
        });
        out.push(Event {
            timestamp: time.timestamp_millis(),
            message: message.to_string(),
            end_offset: offset,
        });
    }
    (out, offset)
}

/// Starts the shipper.
pub fn spawn(settings: ApplicationLogSettings) {
    tokio::spawn(async move {
        let mut offsets: BTreeMap<String, u64> = std::fs::read(&settings.checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut streams = std::collections::HashSet::new();
        let group = application_log_group(&settings.cluster_name);
        let pods_api = kube::Api::<Pod>::all(settings.kube.clone());
        let mut tick = tokio::time::interval(settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let found = sources(&settings.cluster_data_dir);
            if found.iter().all(|s| {
                let key = s.path.display().to_string();
                let len = std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0);
                offsets.get(&key).copied().unwrap_or(0) >= len
            }) {
                continue;
            }
            let pods = match pods_api.list(&Default::default()).await {
                Ok(list) => list.items,
                Err(e) => {
                    tracing::debug!(error = %e, "Container Insights logs: cannot list pods");
                    continue;
                }
            };
            let metas: HashMap<String, PodMeta> = pods
                .iter()
                .filter_map(|p| Some((p.metadata.uid.clone()?, pod_meta(p))))
                .collect();
            let mut changed = false;
            for s in found {
                let Some(meta) = metas.get(&s.uid) else {
                    continue; // the pod is gone: its lines went out while it lived
                };
                let key = s.path.display().to_string();
                let start = offsets.get(&key).copied().unwrap_or(0);
                let Ok(text) = sparkyard_container_logs::cri::read_from(&s.path, start) else {
                    continue;
                };
                let (batch_events, end) = events(&text, start, &s, meta);
                if batch_events.is_empty() {
                    continue;
                }
                let id = meta
                    .containers
                    .get(&s.container)
                    .map(|(id, _)| id.as_str())
                    .unwrap_or("");
                let stream = stream_name(&meta.node, &s, id);
                if let Err(e) =
                    ship(&settings.logs, &group, &stream, &mut streams, batch_events).await
                {
                    tracing::warn!(error = %e, %stream, "Container Insights logs: cannot ship");
                    continue;
                }
                offsets.insert(key, end);
                changed = true;
            }
            if changed {
                if let Ok(bytes) = serde_json::to_vec(&offsets) {
                    let _ = std::fs::write(&settings.checkpoint, bytes);
                }
            }
        }
    });
}

async fn ship(
    logs: &Logs,
    group: &str,
    stream: &str,
    streams: &mut std::collections::HashSet<String>,
    events: Vec<Event>,
) -> anyhow::Result<()> {
    if !streams.contains(stream) {
        logs.ensure_stream(group, stream).await?;
        streams.insert(stream.to_string());
    }
    for batch in batches(events) {
        logs.put_events(group, stream, &batch).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluent_bit_record_and_stream() {
        let s = Source {
            path: "/x/0.log".into(),
            namespace: "monthly-batch".into(),
            pod: "spark-pi-driver".into(),
            uid: "u1".into(),
            container: "spark-kubernetes-driver".into(),
        };
        let meta = PodMeta {
            node: "ip-10-0-1-1".into(),
            containers: [(
                "spark-kubernetes-driver".to_string(),
                ("abc123".to_string(), "spark:4".to_string()),
            )]
            .into(),
        };
        let text = b"2026-12-04T10:00:00.123456789Z stdout F Pi is roughly 3.14\n2026-12-04T10:00:01Z stderr F half";
        let (events, end) = events(text, 100, &s, &meta);
        assert_eq!(events.len(), 1, "the unterminated line waits");
        assert_eq!(end, 100 + 59);
        let v: serde_json::Value = serde_json::from_str(&events[0].message).unwrap();
        assert_eq!(v["log"], "Pi is roughly 3.14");
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["kubernetes"]["docker_id"], "abc123");
        assert_eq!(v["kubernetes"]["host"], "ip-10-0-1-1");
        assert_eq!(events[0].timestamp, 1_796_378_400_123);
        assert_eq!(
            stream_name("ip-10-0-1-1", &s, "abc123"),
            "ip-10-0-1-1-application.var.log.containers.spark-pi-driver_monthly-batch_spark-kubernetes-driver-abc123.log"
        );
    }
}
