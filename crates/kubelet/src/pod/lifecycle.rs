//! The worker's life from start to end: taking over what a previous kubelet left, the
//! sandbox's setup (pod IP, directories, `/etc/hosts`), the main loop that starts
//! containers and reacts to their exits, to pod updates and to timers, the final
//! `DELETE`, and the teardown once the pod is gone.

use std::time::Duration;

use tokio::time::Instant;

use super::{PodUpdates, Stage, Worker};
use sparkyard_kube_apiserver::events::Kind;

/// How often volume setup is retried while it cannot complete.
const RETRY: Duration = Duration::from_secs(1);

impl Worker {
    pub(super) async fn lifecycle(&mut self, updates: &mut PodUpdates) {
        // Containers of a previous kubelet (sparkyard restarted) are taken over, not rerun.
        let adopted = self.adopt();
        if self.deleting() && adopted {
            self.begin_termination();
        } else if self.deleting() {
            // Deleted before it ever ran here: nothing to stop.
            self.finish_deletion();
            self.wait_removed(updates).await;
            return;
        }
        match self.k.ipam.allocate(&self.uid) {
            Some(ip) => self.ip = ip.to_string(),
            None => {
                self.pending_reason = Some("no free pod IP in the node's pod CIDR".into());
            }
        }
        // Adopted containers' probes, now that the pod IP they address is known.
        for i in 0..self.slots.len() {
            if self.slots[i].proc.is_some() && !self.ip.is_empty() {
                self.start_probes(i);
            }
        }
        if let Err(e) = self.create_dirs() {
            tracing::warn!(pod = %self.name, error = %e, "cannot create pod directories");
        }
        if !self.ip.is_empty() {
            self.k.hosts.register(
                &self.k,
                &self.uid,
                &self.namespace,
                crate::hosts::own_lines(&self.ip, &self.hostname, self.fqdn().as_deref()),
                self.dir.join("etc/hosts"),
            );
        }
        self.publish();
        let removed = self.supervise(updates).await;
        if removed {
            return;
        }
        self.publish();
        if self.terminating.is_some() || self.deleting() {
            self.finish_deletion();
        }
        self.wait_removed(updates).await;
    }

    /// The main loop. Returns `true` when the pod vanished from the registry.
    async fn supervise(&mut self, updates: &mut PodUpdates) -> bool {
        let mut last_mount_error: Option<String> = None;
        loop {
            if self.terminating.is_none() {
                match self.stage {
                    Stage::Setup if !self.ip.is_empty() => match self.prepare_volumes() {
                        Ok(()) => {
                            self.advance_from(0);
                            self.publish();
                        }
                        Err(message) => {
                            if last_mount_error.as_deref() != Some(&message) {
                                self.event(Kind::Warning, "FailedMount", &message, None);
                                last_mount_error = Some(message);
                            }
                        }
                    },
                    Stage::Init(i) => self.start_due(&[i]),
                    Stage::Main => {
                        let mains: Vec<usize> = (0..self.slots.len())
                            .filter(|i| !self.slots[*i].is_init)
                            .collect();
                        self.start_due(&mains);
                    }
                    _ => {}
                }
            }
            let running = self.slots.iter().any(|s| s.proc.is_some());
            if matches!(self.stage, Stage::Terminal(_)) && !running {
                return false;
            }
            if self.terminating.is_some() && !running {
                self.stage = Stage::Terminal(self.terminal_phase());
                return false;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(exit) = self.exits_rx.recv() => self.on_exit(exit),
                Some(report) = self.probes_rx.recv() => self.on_probe(report),
                changed = updates.changed() => {
                    let latest = if changed.is_ok() { updates.borrow_and_update().clone() } else { None };
                    match latest {
                        None => {
                            self.kill_all();
                            return true;
                        }
                        Some(pod) => {
                            if pod["metadata"]["uid"] != self.uid.as_str() {
                                self.kill_all();
                                return true;
                            }
                            self.pod = pod;
                            if self.deleting() && self.terminating.is_none() {
                                self.begin_termination();
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    self.enforce_grace_deadline();
                    self.enforce_probe_kills();
                }
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if let Some(deadline) = self.terminating {
            // After the deadline keep checking: SIGKILL is resent until everything exited.
            wake = wake.min(deadline.max(Instant::now() + Duration::from_millis(200)));
        }
        if self.stage == Stage::Setup {
            wake = wake.min(Instant::now() + RETRY);
        }
        for slot in &self.slots {
            if let (None, Some(at), false) = (&slot.proc, slot.next_start, slot.done) {
                wake = wake.min(at);
            }
            if let (Some(_), Some(at)) = (&slot.proc, slot.kill_at) {
                // Resent until the container is gone, like the grace deadline's SIGKILL.
                wake = wake.min(at.max(Instant::now() + Duration::from_millis(200)));
            }
        }
        wake
    }

    fn fqdn(&self) -> Option<String> {
        let subdomain = self.pod["spec"]["subdomain"]
            .as_str()
            .filter(|s| !s.is_empty())?;
        Some(format!(
            "{}.{subdomain}.{}.svc.{}",
            self.hostname,
            self.namespace,
            crate::hosts::CLUSTER_DOMAIN
        ))
    }

    pub(super) fn cleanup(&mut self) {
        for i in 0..self.slots.len() {
            self.stop_probes(i);
        }
        self.kill_all();
        self.k.stats.forget(&self.uid);
        self.k.hosts.unregister(&self.uid);
        self.k.ipam.release(&self.uid);
        // Logs stay for `kubectl logs` of finished pods' records and the log shipper; the
        // sandbox's scratch space goes.
        for sub in ["volumes", "tmp", "home", "containers", "state"] {
            let _ = std::fs::remove_dir_all(self.dir.join(sub));
        }
    }
}
