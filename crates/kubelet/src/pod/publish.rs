//! What the outside sees of the pod: its phase, the status written to `pods/status`
//! through the API server's client (only while the object is still this pod, by uid), and
//! the events the kubelet records about it and its containers.

use serde_json::json;

use super::{Stage, Worker};
use crate::status::{self, PodView};
use crate::PODS;
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::registry::now_rfc3339;

impl Worker {
    fn phase(&self) -> &'static str {
        match self.stage {
            Stage::Terminal(_) if self.slots.iter().any(|s| s.proc.is_some()) => "Running",
            Stage::Terminal(_) => self.terminal_phase(),
            Stage::Main
                if self
                    .slots
                    .iter()
                    .filter(|s| !s.is_init)
                    .any(|s| s.ever_started) =>
            {
                "Running"
            }
            _ => "Pending",
        }
    }

    pub(super) fn publish(&self) {
        let view = PodView {
            phase: self.phase(),
            pod_ip: self.ip.clone(),
            host_ip: self.k.host_ip.clone(),
            start_time: self.start_time.clone(),
            sandbox_ready: !self.ip.is_empty(),
            init: self
                .slots
                .iter()
                .filter(|s| s.is_init)
                .map(|s| s.view.clone())
                .collect(),
            containers: self
                .slots
                .iter()
                .filter(|s| !s.is_init)
                .map(|s| s.view.clone())
                .collect(),
            reason: None,
            message: self.pending_reason.clone(),
        };
        let uid = self.uid.clone();
        let now = now_rfc3339();
        let result = self
            .k
            .client
            .update_status(PODS, &self.namespace, &self.name, |pod| {
                if pod["metadata"]["uid"] != uid.as_str() {
                    return Err(sparkyard_kube_apiserver::ApiError::conflict("", "pods", ""));
                }
                let snapshot = pod.clone();
                status::apply(&snapshot, &mut pod["status"], &view, &now);
                Ok(())
            });
        if let Err(e) = result {
            tracing::debug!(pod = %self.name, error = %e, "pod status not published");
        }
        // Services selecting this pod change with its phase: the hosts watcher
        // (keep_hosts_current) sees the status change and rewrites the files.
        self.report_usage();
    }

    pub(super) fn event(&self, kind: Kind, reason: &str, message: &str, container: Option<&str>) {
        let mut involved = (*self.pod).clone();
        involved["apiVersion"] = json!("v1");
        involved["kind"] = json!("Pod");
        let field_path = container.map(|c| {
            let list = if self.slots.iter().any(|s| s.is_init && s.view.name == c) {
                "initContainers"
            } else {
                "containers"
            };
            format!("spec.{list}{{{c}}}")
        });
        events::record_for_field(
            &self.k.client,
            &involved,
            kind,
            reason,
            message,
            &self.k.event_source(self.node()),
            field_path.as_deref(),
        );
    }
}
