//! Taking over a pod after a kubelet restart, as a real kubelet does after reading the
//! container runtime's state: containers whose shim still runs are monitored again, those
//! that exited meanwhile get their exit recorded (and the restart policy applied), and
//! containers that finished before the restart are not run again.
//!
//! The source of truth is the shim records on disk (`kubelet::shim`), not the pod status:
//! a crash can fall between starting a container and publishing its status.

use std::path::Path;

use serde_json::Value;
use tokio::time::Instant;

use super::{Exit, Proc, State, Worker};
use crate::shim::{self, Monitor};

/// One run of a container, as recorded for a later kubelet.
pub(super) struct Run<'a> {
    pub container: &'a str,
    pub restart: u32,
    pub container_id: &'a str,
    pub started_at: &'a str,
}

/// A container state from pod status JSON (the inverse of `State::to_json`).
fn state_from_json(value: &Value) -> Option<State> {
    if let Some(t) = value.get("terminated") {
        let text = |k: &str| t[k].as_str().unwrap_or("").to_string();
        return Some(State::Terminated {
            exit_code: t["exitCode"].as_i64().unwrap_or(0) as i32,
            reason: text("reason"),
            message: t["message"].as_str().map(String::from),
            started_at: text("startedAt"),
            finished_at: text("finishedAt"),
            container_id: text("containerID"),
        });
    }
    if let Some(r) = value.get("running") {
        return Some(State::Running {
            started_at: r["startedAt"].as_str().unwrap_or("").to_string(),
        });
    }
    let w = value.get("waiting")?;
    Some(State::Waiting {
        reason: w["reason"].as_str().unwrap_or("").to_string(),
        message: w["message"].as_str().map(String::from),
    })
}

impl Worker {
    /// Restores what a previous kubelet left of this pod. Returns whether any container of
    /// it had been started (so the pod is not new to this node).
    pub(super) fn adopt(&mut self) -> bool {
        let status = self.pod["status"].clone();
        if let Some(ip) = status["podIP"].as_str().and_then(|ip| ip.parse().ok()) {
            // The address running containers already use; reserved before anyone else asks.
            self.k.ipam.reserve(&self.uid, ip);
        }
        if let Some(start) = status["startTime"].as_str() {
            self.start_time = start.to_string();
        }
        let mut adopted = false;
        for i in 0..self.slots.len() {
            let name = self.slots[i].view.name.clone();
            let list = if self.slots[i].is_init {
                "initContainerStatuses"
            } else {
                "containerStatuses"
            };
            let reported = status[list]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["name"] == name.as_str()))
                .cloned();
            if let Some(reported) = &reported {
                let slot = &mut self.slots[i];
                slot.view.restart_count = reported["restartCount"].as_u64().unwrap_or(0) as u32;
                slot.view.last_state = state_from_json(&reported["lastState"]);
                if let Some(id) = reported["containerID"].as_str() {
                    slot.view.container_id = Some(id.to_string());
                }
                if slot.view.restart_count > 0 || slot.view.last_state.is_some() {
                    slot.ever_started = true;
                }
            }
            let record = shim::newest_record(&self.dir, &name)
                .filter(|(n, _)| *n >= self.slots[i].view.restart_count);
            if let Some((restart, record)) = record {
                adopted = true;
                self.take_over(i, restart, record);
                continue;
            }
            // No live run: a container that finished for good stays finished.
            if let Some(State::Terminated { exit_code, .. }) =
                reported.as_ref().and_then(|r| state_from_json(&r["state"]))
            {
                adopted = true;
                let policy = self.restart_policy().to_string();
                let slot = &mut self.slots[i];
                slot.ever_started = true;
                slot.done = match policy.as_str() {
                    "Never" => true,
                    "OnFailure" => exit_code == 0,
                    _ => slot.is_init && exit_code == 0,
                };
                slot.view.state = state_from_json(&reported.unwrap()["state"]).unwrap();
            }
        }
        if self.slots.iter().any(|s| s.proc.is_some()) {
            self.reuse_volumes();
        }
        adopted
    }

    /// Running containers have the pod's volume directories bind-mounted: rewriting them
    /// (`prepare_volumes` replaces each directory) would leave those containers looking at
    /// deleted, empty directories — e.g. Spark's driver without its `ca.crt`. So the
    /// directories are taken as they are and setup is skipped.
    fn reuse_volumes(&mut self) {
        use crate::volumes;
        for volume in &self.volume_specs() {
            let name = volume["name"].as_str().unwrap_or("").to_string();
            if volumes::unsafe_name(volume).is_some() {
                continue;
            }
            // A claim's directory is its bound volume's, as at setup.
            let claim_dir = volume
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(serde_json::Value::as_str)
                .and_then(|claim| self.claim_dir(&name, claim).ok());
            let dir = claim_dir
                .or_else(|| volumes::plain_dir(volume, &self.dir))
                .unwrap_or_else(|| self.dir.join("volumes").join(&name));
            self.volume_dirs.insert(name, dir);
        }
        self.advance_from(0);
    }

    /// Monitors run `restart` of container `i` again, or records its exit if it ended.
    fn take_over(&mut self, i: usize, restart: u32, record: shim::Record) {
        let name = self.slots[i].view.name.clone();
        let exit_file = shim::exit_path(&self.dir, &name, restart);
        let slot = &mut self.slots[i];
        slot.ever_started = true;
        slot.view.restart_count = restart;
        slot.view.container_id = Some(record.container_id.clone());
        slot.view.state = State::Running {
            started_at: record.started_at.clone(),
        };
        slot.next_start = None;
        slot.proc = Some(Proc {
            pid: record.sandbox_pid,
            // Unknown for a run started by another process; only the back-off reset uses it.
            started: Instant::now(),
            started_at: record.started_at.clone(),
            container_id: record.container_id.clone(),
        });
        tracing::info!(pod = %self.name, container = %name, restart, pid = record.sandbox_pid,
            "re-adopted a container started before the restart");
        let was_ready = self.pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == name.as_str() && c["ready"] == true);
        // Its probes start once the pod has its IP back (`lifecycle`).
        self.slots[i].adopted_ready = was_ready;
        self.watch_exit(
            i,
            record.sandbox_pid,
            Monitor::adopted(record.shim_pid, exit_file),
        );
    }

    fn watch_exit(&self, slot: usize, pid: u32, monitor: Monitor) {
        let tx = self.exits_tx.clone();
        tokio::spawn(async move {
            let exit = monitor.wait().await;
            let _ = tx.send(Exit {
                slot,
                pid,
                code: exit.exit_code,
                finished_at: Some(exit.finished_at),
            });
        });
    }

    /// Starts a container under a shim; returns the sandbox's pid.
    pub(super) fn start_supervised(
        &mut self,
        slot: usize,
        shim_exe: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        run: &Run<'_>,
    ) -> std::io::Result<u32> {
        let started = shim::spawn(
            shim_exe,
            &self.k.bwrap,
            args,
            env,
            log,
            &self.dir,
            run.container,
            run.restart,
            run.container_id,
            run.started_at,
        )?;
        self.watch_exit(slot, started.sandbox_pid, started.monitor);
        Ok(started.sandbox_pid)
    }
}
