//! Graceful termination, as a kubelet does it: SIGTERM to every running container when the
//! pod is deleted, SIGKILL once its grace period is over (or at once for a grace of 0),
//! then the kubelet's final `DELETE` through `Client::finish_pod`, and waiting for the pod
//! to leave the registry.

use std::time::Duration;

use tokio::time::Instant;

use super::{PodUpdates, Worker};
use crate::process;
use sparkyard_kube_apiserver::events::Kind;

impl Worker {
    pub(super) fn begin_termination(&mut self) {
        let grace = self.pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0);
        self.terminating = Some(Instant::now() + Duration::from_secs(grace as u64));
        let mut stopping = Vec::new();
        for slot in &mut self.slots {
            slot.next_start = None;
            if let Some(p) = &slot.proc {
                stopping.push(slot.view.name.clone());
                if grace == 0 {
                    process::kill(p.pid);
                } else {
                    process::terminate(p.pid);
                }
            } else if !slot.done {
                slot.done = true;
            }
        }
        for name in stopping {
            self.event(
                Kind::Normal,
                "Killing",
                &format!("Stopping container {name}"),
                Some(&name),
            );
        }
    }

    /// Once the grace period is over, SIGKILL to every container still running (resent on
    /// each wake until they all exited).
    pub(super) fn enforce_grace_deadline(&self) {
        if let Some(deadline) = self.terminating {
            if Instant::now() >= deadline {
                for slot in &self.slots {
                    if let Some(p) = &slot.proc {
                        process::kill(p.pid);
                    }
                }
            }
        }
    }

    pub(super) fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(p) = slot.proc.take() {
                process::kill(p.pid);
            }
        }
    }

    /// The kubelet's final DELETE: grace 0, then removal unless finalizers still hold it.
    pub(super) fn finish_deletion(&self) {
        if let Err(e) = self
            .k
            .client
            .finish_pod(&self.namespace, &self.name, &self.uid)
        {
            if e.code != 404 && e.code != 409 {
                tracing::warn!(pod = %self.name, error = %e, "cannot complete the pod's deletion");
            }
        }
    }

    pub(super) async fn wait_removed(&mut self, updates: &mut PodUpdates) {
        loop {
            if updates.changed().await.is_err() {
                return;
            }
            let latest = updates.borrow_and_update().clone();
            match latest {
                None => return,
                Some(pod) if pod["metadata"]["uid"] != self.uid.as_str() => return,
                Some(pod) => {
                    let newly_deleted = !pod["metadata"]["deletionTimestamp"].is_null();
                    self.pod = pod;
                    if newly_deleted {
                        self.finish_deletion();
                    }
                }
            }
        }
    }
}
