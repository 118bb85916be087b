//! The worker's side of probes: one task per running container that has any, which runs
//! the startup probe until it succeeds and then the liveness and readiness probes, each on
//! its own period, and reports every result to the worker's main loop. The worker turns
//! them into the container's `ready`/`started`, `Unhealthy` events and — when liveness or
//! startup fails — a `Killing` event and SIGTERM (SIGKILL after the grace period); the
//! exit then goes through the restart policy like any other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Worker;
use crate::probe::{self, Kind, Probe, Thresholds};
use crate::process;
use sparkyard_kube_apiserver::events::Kind as EventKind;

/// One probe result, sent to the worker.
pub(super) struct ProbeReport {
    slot: usize,
    /// The container run it is about (a report about an earlier run is dropped).
    pid: u32,
    kind: Kind,
    outcome: probe::Outcome,
    /// The probe's state when it changed.
    transition: Option<bool>,
}

impl Worker {
    /// Starts the probes of container `i`, just started or adopted (nothing without any).
    pub(super) fn start_probes(&mut self, i: usize) {
        self.stop_probes(i);
        let Some(pid) = self.slots[i].proc.as_ref().map(|p| p.pid) else {
            return;
        };
        let spec = &self.slots[i].spec;
        let [startup, liveness, readiness] = [Kind::Startup, Kind::Liveness, Kind::Readiness]
            .map(|k| probe::parse(k, spec, &self.ip));
        let slot = &mut self.slots[i];
        slot.view.probe_started = startup.is_none();
        // A container adopted after a restart keeps the readiness it had.
        slot.view.probe_ready = readiness.is_none() || slot.adopted_ready;
        slot.unhealthy.clear();
        if startup.is_none() && liveness.is_none() && readiness.is_none() {
            return;
        }
        let exec = self.exec_runner(i);
        let tx = self.probes_tx.clone();
        self.slots[i].probes = Some(tokio::spawn(async move {
            let report = Reporter { tx, slot: i, pid };
            if let Some(startup) = startup {
                if !run_probe(&startup, &report, exec.as_ref(), true).await {
                    return;
                }
            }
            let live = async {
                if let Some(p) = &liveness {
                    run_probe(p, &report, exec.as_ref(), false).await;
                }
            };
            let ready = async {
                if let Some(p) = &readiness {
                    run_probe(p, &report, exec.as_ref(), false).await;
                }
            };
            futures::join!(live, ready);
        }));
    }

    pub(super) fn stop_probes(&mut self, i: usize) {
        if let Some(task) = self.slots[i].probes.take() {
            task.abort();
        }
        self.slots[i].kill_at = None;
    }

    /// Runs an exec probe's command in a sandbox like container `i`'s (same image, mounts,
    /// environment and `/tmp`), as `kubectl exec` would find it.
    fn exec_runner(&self, i: usize) -> Option<probe::ExecRunner> {
        let needs = [Kind::Startup, Kind::Liveness, Kind::Readiness]
            .iter()
            .any(|k| {
                self.slots[i].spec[k.field()]
                    .get("exec")
                    .is_some_and(|e| e.is_object())
            });
        if !needs {
            return None;
        }
        let (template, env) = self.sandbox_spec(i, Some(vec![])).ok()?;
        let bwrap = self.k.bwrap.clone();
        Some(Arc::new(move |command: Vec<String>, timeout: Duration| {
            let mut spec = template.clone();
            spec.command = command;
            let args = crate::sandbox::bwrap_args(&spec, &crate::sandbox::RealFs);
            let bwrap = bwrap.clone();
            let env = env.clone();
            Box::pin(async move {
                let mut command = tokio::process::Command::new(&bwrap);
                command
                    .args(&args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                match tokio::time::timeout(timeout, command.output()).await {
                    Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
                    Ok(Err(e)) => Err(format!("cannot run the probe's sandbox: {e}")),
                    Ok(Ok(output)) if output.status.success() => Ok(()),
                    Ok(Ok(output)) => {
                        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                        text.push_str(&String::from_utf8_lossy(&output.stderr));
                        Err(text.trim_end().to_string())
                    }
                }
            }) as futures::future::BoxFuture<'static, probe::Outcome>
        }))
    }

    /// A probe result from a container's task.
    pub(super) fn on_probe(&mut self, report: ProbeReport) {
        let slot = &self.slots[report.slot];
        if slot.proc.as_ref().map(|p| p.pid) != Some(report.pid) {
            return;
        }
        let name = slot.view.name.clone();
        match &report.outcome {
            Ok(()) => {
                self.slots[report.slot].unhealthy.remove(&report.kind);
            }
            Err(message) => {
                let text = format!("{} probe failed: {message}", report.kind.name());
                // kube records every failure and its event correlator folds repeats; one
                // Event per run of the same failure says the same without an object a
                // period.
                if self.slots[report.slot].unhealthy.get(&report.kind) != Some(&text) {
                    self.slots[report.slot]
                        .unhealthy
                        .insert(report.kind, text.clone());
                    self.event(EventKind::Warning, "Unhealthy", &text, Some(&name));
                }
            }
        }
        let Some(state) = report.transition else {
            return;
        };
        match (report.kind, state) {
            (Kind::Readiness, ready) => {
                self.slots[report.slot].view.probe_ready = ready;
                self.publish();
            }
            (Kind::Startup, true) => {
                self.slots[report.slot].view.probe_started = true;
                self.publish();
            }
            (Kind::Liveness | Kind::Startup, false) => {
                self.kill_unhealthy(report.slot, report.kind)
            }
            (Kind::Liveness, true) => {}
        }
    }

    /// Liveness or startup failed: stop the container; its exit restarts it per policy.
    fn kill_unhealthy(&mut self, i: usize, kind: Kind) {
        if self.terminating.is_some() || self.slots[i].kill_at.is_some() {
            return;
        }
        let Some(pid) = self.slots[i].proc.as_ref().map(|p| p.pid) else {
            return;
        };
        let name = self.slots[i].view.name.clone();
        let mut message = format!(
            "Container {name} failed {} probe",
            kind.name().to_lowercase()
        );
        if self.restart_policy() != "Never" {
            message.push_str(", will be restarted");
        }
        self.event(EventKind::Normal, "Killing", &message, Some(&name));
        let grace = probe::parse(kind, &self.slots[i].spec, &self.ip)
            .and_then(|p| p.termination_grace)
            .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0) as u64;
        if let Some(task) = self.slots[i].probes.take() {
            task.abort();
        }
        if grace == 0 {
            process::kill(pid);
        } else {
            process::terminate(pid);
        }
        self.slots[i].kill_at = Some(Instant::now() + Duration::from_secs(grace));
    }

    /// SIGKILL to a container stopped for a failed probe that outlived its grace period.
    pub(super) fn enforce_probe_kills(&self) {
        let now = Instant::now();
        for slot in &self.slots {
            if let (Some(at), Some(p)) = (slot.kill_at, &slot.proc) {
                if at <= now {
                    process::kill(p.pid);
                }
            }
        }
    }
}

struct Reporter {
    tx: mpsc::UnboundedSender<ProbeReport>,
    slot: usize,
    pid: u32,
}

/// Runs `probe` every period after its initial delay, reporting each result. A startup
/// probe (`until_decided`) stops at its first verdict and returns whether it succeeded;
/// the others run until the task is aborted.
async fn run_probe(
    probe: &Probe,
    report: &Reporter,
    exec: Option<&probe::ExecRunner>,
    until_decided: bool,
) -> bool {
    tokio::time::sleep(probe.initial_delay).await;
    let mut thresholds = Thresholds::default();
    loop {
        let started = Instant::now();
        let outcome = probe::check(&probe.action, probe.timeout, exec).await;
        let transition = thresholds.record(probe, outcome.is_ok());
        let sent = report.tx.send(ProbeReport {
            slot: report.slot,
            pid: report.pid,
            kind: probe.kind,
            outcome,
            transition,
        });
        if sent.is_err() {
            return false;
        }
        if until_decided {
            if let Some(verdict) = transition {
                return verdict;
            }
        }
        tokio::time::sleep_until(started + probe.period).await;
    }
}
