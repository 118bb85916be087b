//! The kubelet side of simulated nodes (`simulated = true` in `[[cluster.nodes]]`),
//! KWOK-style: pods bound to them start no process. They go `Running` at once (with a pod
//! IP, conditions and container statuses), end when their
//! `sparkyard.dev/simulated-duration` runs out, and a graceful deletion ends them at once
//! as if their containers exited on SIGTERM (143). The status transitions themselves are
//! pure ([`crate::scheduling::simulated`]); this task only applies them, with one timer
//! per pod instead of polling, so tens of thousands of simulated pods cost nothing while
//! they "run".
//!
//! No events are recorded for simulated pods (KWOK records none either): at benchmark
//! scale they would only fill the registry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

use tokio::sync::mpsc;

use super::nodes::NodeChange;
use super::{is_mirror_pod, Kubelet, PODS};
use sparkyard_kube_apiserver::registry::EventType;
use sparkyard_kube_apiserver::{ApiError, Client};
use sparkyard_scheduling::simulated::{next_transition, simulated_status};

/// Exit code of a container stopped by SIGTERM (128 + 15).
const EXIT_SIGTERM: i64 = 143;

/// Pod IPs for simulated pods: `10.0.0.1` upwards, reused after a pod is gone. They are
/// never bound on this machine (nothing listens), so they stay out of the kubelet's
/// loopback range.
#[derive(Default)]
struct Ips {
    next: u32,
    free: Vec<u32>,
    by_uid: HashMap<String, u32>,
    used: HashSet<u32>,
}

impl Ips {
    fn get(&mut self, uid: &str) -> String {
        let n = match self.by_uid.get(uid) {
            Some(&n) => n,
            None => {
                let n = loop {
                    let n = self.free.pop().unwrap_or_else(|| {
                        self.next = (self.next % 0x00ff_fffe) + 1;
                        self.next
                    });
                    if !self.used.contains(&n) {
                        break n;
                    }
                };
                self.used.insert(n);
                self.by_uid.insert(uid.to_string(), n);
                n
            }
        };
        format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
    }

    /// Keeps the address a running pod already has (after a restart of sparkyard).
    fn reserve(&mut self, uid: &str, ip: &str) {
        let octets: Vec<u32> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
        if let [10, a, b, c] = octets[..] {
            let n = (a << 16) | (b << 8) | c;
            if !self.by_uid.contains_key(uid) && self.used.insert(n) {
                self.by_uid.insert(uid.to_string(), n);
            }
        }
    }

    fn release(&mut self, uid: &str) {
        if let Some(n) = self.by_uid.remove(uid) {
            self.used.remove(&n);
            self.free.push(n);
        }
    }
}

struct Driver {
    client: Client,
    /// The served nodes; the simulated ones are this driver's.
    k: Arc<Kubelet>,
    ips: Ips,
    /// Due transitions: (when, uid) → (namespace, name).
    timers: BTreeMap<(DateTime<Utc>, String), (String, String)>,
}

fn str_at<'a>(pod: &'a Value, pointer: &str) -> &'a str {
    pod.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Turns a pod's status into that of a pod whose containers were stopped by a graceful
/// deletion: every running container terminated with 143 now, phase `Failed` (not all
/// exited 0), `Ready` false — what a kubelet reports before it completes the deletion.
/// In place, on the copy of the stored pod that the status write makes anyway.
fn stop(status: &mut Value, now: DateTime<Utc>) {
    let at = rfc3339(now);
    if !status.is_object() {
        *status = json!({});
    }
    if let Some(list) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in list {
            let started = c
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or_else(|| json!(at));
            let cid = c.get("containerID").cloned().unwrap_or(Value::Null);
            c["state"] = json!({"terminated": {"exitCode": EXIT_SIGTERM, "reason": "Error",
                "startedAt": started, "finishedAt": at, "containerID": cid}});
            c["ready"] = json!(false);
            c["started"] = json!(false);
        }
    }
    status["phase"] = json!("Failed");
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in list {
            if matches!(c["type"].as_str(), Some("Ready" | "ContainersReady")) {
                c["status"] = json!("False");
                c["reason"] = json!("PodFailed");
                c["lastTransitionTime"] = json!(at);
            }
        }
    }
}

impl Driver {
    fn ours(&self, pod: &Value) -> bool {
        self.k.nodes.is_simulated(str_at(pod, "/spec/nodeName")) && !is_mirror_pod(pod)
    }

    /// A simulated node registered: the pods already bound to it start "running".
    fn on_node_change(&mut self, change: NodeChange) {
        // A node that went away needs nothing: `ours` no longer holds for its pods, so
        // their timers do nothing, and their addresses go back with their deletion.
        if let NodeChange::Added(node) = change {
            let (pods, _) = self.client.list(PODS, None);
            for pod in pods.iter().filter(|p| str_at(p, "/spec/nodeName") == node) {
                self.handle(pod);
            }
        }
    }

    /// Brings one pod up to date; idempotent (every watch event and timer lands here).
    fn handle(&mut self, pod: &Value) {
        if !self.ours(pod) {
            return;
        }
        let ns = str_at(pod, "/metadata/namespace").to_string();
        let name = str_at(pod, "/metadata/name").to_string();
        let uid = str_at(pod, "/metadata/uid").to_string();
        let terminal = matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed");
        let now = Utc::now();
        if pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            // Nothing runs, so the grace period is over at once: terminal status (unless
            // already terminal), then the kubelet's final DELETE.
            if !terminal {
                let _ = self.client.update_status(PODS, &ns, &name, |p| {
                    if str_at(p, "/metadata/uid") != uid {
                        return Err(ApiError::conflict("", "pods", &name));
                    }
                    stop(&mut p["status"], now);
                    Ok(())
                });
            }
            let _ = self.client.finish_pod(&ns, &name, &uid);
            self.ips.release(&uid);
            return;
        }
        if terminal {
            self.ips.release(&uid);
            return;
        }
        if let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str) {
            self.ips.reserve(&uid, ip);
        }
        let mut current: Option<Arc<Value>> = None;
        if let Some(mut status) = simulated_status(pod, now) {
            let ip = self.ips.get(&uid);
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
            status["hostIP"] = json!("127.0.0.1");
            status["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            match self.client.update_status(PODS, &ns, &name, |p| {
                if str_at(p, "/metadata/uid") != uid {
                    return Err(ApiError::conflict("", "pods", &name));
                }
                p["status"] = status.clone();
                Ok(())
            }) {
                Ok(stored) => current = Some(stored),
                Err(_) => return,
            }
        }
        let latest = current.as_deref().unwrap_or(pod);
        if matches!(str_at(latest, "/status/phase"), "Succeeded" | "Failed") {
            self.ips.release(&uid);
            return;
        }
        if let Some(at) = next_transition(latest, now) {
            self.timers.insert((at, uid), (ns, name));
        }
    }

    fn fire_due(&mut self) {
        let now = Utc::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, uid), (ns, name)) = entry.remove_entry();
            if let Some(pod) = self.client.get(PODS, &ns, &name) {
                if str_at(&pod, "/metadata/uid") == uid {
                    self.handle(&pod);
                }
            }
        }
    }

    fn next_due(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
        match self.timers.first_key_value() {
            Some(((at, _), _)) => {
                let wait = (*at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::Instant::now() + wait
            }
            None => far,
        }
    }
}

/// Runs the pods of the kubelet's simulated nodes until the process ends; `changes` says
/// when a simulated node registers or goes away.
pub async fn run(
    client: Client,
    k: Arc<Kubelet>,
    mut changes: mpsc::UnboundedReceiver<NodeChange>,
) {
    let mut d = Driver {
        client,
        k,
        ips: Ips::default(),
        timers: BTreeMap::new(),
    };
    let mut resume: Option<u64> = None;
    loop {
        // (Re)start: a full list when there is no position to resume from.
        let from = match resume {
            Some(rv) => rv,
            None => {
                let (pods, revision) = d.client.list(PODS, None);
                for pod in &pods {
                    d.handle(pod);
                }
                revision
            }
        };
        let stream = match d.client.watch(PODS, Some(from)) {
            Ok(s) => s,
            Err(_) => {
                resume = None;
                continue;
            }
        };
        let mut stream = Box::pin(stream);
        loop {
            tokio::select! {
                event = stream.next() => {
                    let Some(event) = event else { break };
                    resume = Some(event.resource_version);
                    match event.event_type {
                        EventType::Deleted => d.ips.release(str_at(&event.object, "/metadata/uid")),
                        _ => d.handle(&event.object),
                    }
                }
                _ = tokio::time::sleep_until(d.next_due()) => d.fire_due(),
                Some(change) = changes.recv() => d.on_node_change(change),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_unique_and_reused() {
        let mut ips = Ips::default();
        let a = ips.get("a");
        assert_eq!(a, "10.0.0.1");
        assert_eq!(ips.get("a"), a);
        assert_eq!(ips.get("b"), "10.0.0.2");
        ips.release("a");
        assert_eq!(ips.get("c"), "10.0.0.1");
        ips.reserve("d", "10.0.0.3");
        assert_eq!(ips.get("d"), "10.0.0.3");
        assert_eq!(
            ips.get("e"),
            "10.0.0.4",
            "a reserved address is not handed out"
        );
    }

    #[test]
    fn a_deleted_running_pod_ends_with_sigterm() {
        let pod = json!({"metadata": {"name": "p", "uid": "u"},
            "spec": {"nodeName": "n", "containers": [{"name": "main"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "main", "containerID": "containerd://x",
                    "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}, "ready": true}]}});
        let mut status = pod["status"].clone();
        stop(&mut status, "2025-01-01T00:01:00Z".parse().unwrap());
        assert_eq!(status["phase"], "Failed");
        let term = &status["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(term["exitCode"], 143);
        assert_eq!(term["startedAt"], "2025-01-01T00:00:00Z");
        assert_eq!(term["finishedAt"], "2025-01-01T00:01:00Z");
        assert_eq!(status["conditions"][0]["status"], "False");
        assert_eq!(status["conditions"][1]["status"], "True");
    }
}
