//! Container state bookkeeping after an exit: the restart policy, crash back-off
//! (10 s doubling to 5 min, reset after 10 min of running), moving from one init container
//! to the next and then to the main containers, and the pod's terminal phase.

use std::time::Duration;

use tokio::time::Instant;

use super::{Exit, Stage, Worker};
use crate::status::{self, State};
use sparkyard_kube_apiserver::events::Kind;
use sparkyard_kube_apiserver::registry::now_rfc3339;

pub(super) const BACKOFF_START: Duration = Duration::from_secs(10);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long has its crash back-off reset, as kubelet does.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

impl Worker {
    /// After init container `from - 1` (or setup), moves to the next init container or the
    /// main containers, due now.
    pub(super) fn advance_from(&mut self, first_init: usize) {
        // Init containers that finished under a previous kubelet are skipped.
        let inits: Vec<usize> = (0..self.slots.len())
            .filter(|i| self.slots[*i].is_init)
            .collect();
        let first_init = (first_init..inits.len())
            .find(|n| !self.slots[inits[*n]].done)
            .unwrap_or(inits.len());
        let now = Instant::now();
        if let Some(&next) = inits.get(first_init) {
            self.stage = Stage::Init(next);
            self.slots[next].next_start = Some(now);
            for slot in self.slots.iter_mut().filter(|s| !s.is_init) {
                slot.view.state = State::waiting("PodInitializing");
            }
        } else {
            self.stage = Stage::Main;
            for slot in self.slots.iter_mut().filter(|s| !s.is_init) {
                slot.next_start = Some(now);
            }
        }
    }

    pub(super) fn on_exit(&mut self, exit: Exit) {
        let policy = self.restart_policy().to_string();
        let terminating = self.terminating.is_some();
        if self.slots[exit.slot].proc.as_ref().map(|p| p.pid) == Some(exit.pid) {
            self.stop_probes(exit.slot);
        }
        let slot = &mut self.slots[exit.slot];
        let Some(proc) = slot.proc.take_if(|p| p.pid == exit.pid) else {
            return;
        };
        let mut termination_message = std::fs::read_to_string(
            self.dir
                .join("containers")
                .join(&slot.view.name)
                .join("termination-log"),
        )
        .ok();
        // `FallbackToLogsOnError`: a failed container that wrote no message gets its log's
        // tail instead, as a kubelet does.
        if exit.code != 0
            && termination_message.as_deref().unwrap_or("").is_empty()
            && slot.spec["terminationMessagePolicy"] == "FallbackToLogsOnError"
        {
            let log = crate::logs::pod_log_path(
                &self.k.config.data_dir,
                &self.namespace,
                &self.name,
                &self.uid,
                &slot.view.name,
                slot.view.restart_count,
            );
            termination_message = crate::logs::read_output(&log, None)
                .ok()
                .map(|text| crate::status::log_tail_message(&text));
        }
        let terminated = State::Terminated {
            exit_code: exit.code,
            reason: status::exit_reason(exit.code).into(),
            message: termination_message,
            started_at: proc.started_at.clone(),
            finished_at: exit.finished_at.unwrap_or_else(now_rfc3339),
            container_id: proc.container_id.clone(),
        };
        let restart = !terminating
            && match policy.as_str() {
                "Never" => false,
                "OnFailure" => exit.code != 0,
                _ => !slot.is_init || exit.code != 0,
            };
        let is_init = slot.is_init;
        if restart {
            if proc.started.elapsed() > BACKOFF_RESET_AFTER {
                slot.backoff = BACKOFF_START;
            }
            let delay = slot.backoff;
            slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
            slot.view.last_state = Some(terminated);
            let name = slot.view.name.clone();
            slot.view.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={name} pod={}_{}({})",
                    delay.as_secs(),
                    self.name,
                    self.namespace,
                    self.uid
                )),
            };
            slot.next_start = Some(Instant::now() + delay);
            let message = format!(
                "Back-off restarting failed container {name} in pod {}_{}({})",
                self.name, self.namespace, self.uid
            );
            self.event(Kind::Warning, "BackOff", &message, Some(&name));
        } else {
            slot.view.state = terminated;
            slot.done = true;
        }
        if is_init && !terminating {
            if exit.code == 0 {
                let position = self.slots[..=exit.slot]
                    .iter()
                    .filter(|s| s.is_init)
                    .count();
                self.advance_from(position);
            } else if !restart {
                self.stage = Stage::Terminal("Failed");
            }
        }
        if self.stage == Stage::Main && self.slots.iter().filter(|s| !s.is_init).all(|s| s.done) {
            self.stage = Stage::Terminal(self.terminal_phase());
        }
        self.publish();
    }

    /// Succeeded when every main container exited 0, else Failed.
    pub(super) fn terminal_phase(&self) -> &'static str {
        let all_zero = self
            .slots
            .iter()
            .filter(|s| !s.is_init)
            .all(|s| s.view.exit_code() == Some(0));
        if all_zero && self.stage != Stage::Terminal("Failed") {
            "Succeeded"
        } else {
            "Failed"
        }
    }
}
