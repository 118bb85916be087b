//! Starting one container: when its slot is due, resolving its image, building its
//! environment, entrypoint and bubblewrap sandbox, and spawning it — under a shim when
//! there is one (the container then outlives sparkyard, see `adopt`), else as a child
//! whose exit, once its output is in the log, is sent to the worker's main loop.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{adopt, restarts, Exit, Proc, Worker};
use crate::process;
use crate::sandbox::{self, SandboxSpec};
use crate::status::State;
use sparkyard_kube_apiserver::events::Kind;
use sparkyard_kube_apiserver::registry::now_rfc3339;

/// Why a container cannot start: its waiting reason and message.
pub(super) type StartError = (&'static str, String);

impl Worker {
    pub(super) fn start_due(&mut self, indices: &[usize]) {
        let now = Instant::now();
        let mut changed = false;
        for &i in indices {
            let slot = &self.slots[i];
            if slot.done || slot.proc.is_some() || slot.next_start.map(|t| t > now).unwrap_or(true)
            {
                continue;
            }
            changed = true;
            match self.start(i) {
                Ok(()) => {
                    let slot = &mut self.slots[i];
                    slot.pull_backoff = None;
                    slot.last_failure = None;
                }
                Err(("ErrImagePull", message)) => self.image_pull_failed(i, &message, now),
                Err((reason, message)) => {
                    tracing::debug!(pod = %self.name, %reason, %message, "container cannot start yet");
                    let slot = &mut self.slots[i];
                    slot.view.state = State::Waiting {
                        reason: reason.to_string(),
                        message: Some(message.clone()),
                    };
                    slot.next_start = Some(now + Duration::from_secs(2));
                    // kubelet records `Failed` "Error: <cause>" on each sync; its event
                    // correlator folds the repeats into one. Recording it when the cause
                    // changes gives `kubectl describe` the same line without one Event
                    // object per retry.
                    let event = format!("Error: {message}");
                    if slot.last_failure.as_ref() != Some(&event) {
                        slot.last_failure = Some(event.clone());
                        let name = slot.view.name.clone();
                        self.event(Kind::Warning, "Failed", &event, Some(&name));
                    }
                }
            }
        }
        if changed {
            self.publish();
        }
    }

    /// An image that maps to nothing ("pull" failed): the events and waiting reasons a
    /// kubelet gives, and its image back-off (10 s doubling to 5 min). The first failure
    /// shows `ErrImagePull`; each retry that fails again shows `ImagePullBackOff`.
    fn image_pull_failed(&mut self, i: usize, cause: &str, now: Instant) {
        let slot = &mut self.slots[i];
        let image = slot.spec["image"].as_str().unwrap_or("").to_string();
        let name = slot.view.name.clone();
        let retry = slot.pull_backoff.is_some();
        let delay = slot.pull_backoff.unwrap_or(restarts::BACKOFF_START);
        slot.pull_backoff = Some((delay * 2).min(restarts::BACKOFF_MAX));
        slot.next_start = Some(now + delay);
        slot.view.state = if retry {
            State::Waiting {
                reason: "ImagePullBackOff".into(),
                message: Some(format!(
                    "Back-off pulling image \"{image}\": ErrImagePull: {cause}"
                )),
            }
        } else {
            State::Waiting {
                reason: "ErrImagePull".into(),
                message: Some(cause.to_string()),
            }
        };
        tracing::info!(pod = %self.name, container = %name, %image, %cause, "image cannot be pulled");
        let container = Some(name.as_str());
        self.event(
            Kind::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
            container,
        );
        self.event(
            Kind::Warning,
            "Failed",
            &format!("Failed to pull image \"{image}\": {cause}"),
            container,
        );
        self.event(Kind::Warning, "Failed", "Error: ErrImagePull", container);
        if retry {
            self.event(
                Kind::Normal,
                "BackOff",
                &format!("Back-off pulling image \"{image}\""),
                container,
            );
            self.event(
                Kind::Warning,
                "Failed",
                "Error: ImagePullBackOff",
                container,
            );
        }
    }

    /// Container `i`'s sandbox (image, environment, mounts, working directory) running
    /// `command`, or its entrypoint for `None`; with its environment. Exec probes run in
    /// one like it.
    pub(super) fn sandbox_spec(
        &self,
        i: usize,
        command: Option<Vec<String>>,
    ) -> Result<(SandboxSpec, Vec<(String, String)>), StartError> {
        let spec = &self.slots[i].spec;
        let container_name = spec["name"].as_str().unwrap_or("").to_string();
        let image_name = spec["image"].as_str().unwrap_or("").to_string();
        let image = self
            .k
            .resolve_image(&image_name)
            .map_err(|e| ("ErrImagePull", e))?;
        let env = self.environment(spec, &image)?;
        let cwd = spec["workingDir"]
            .as_str()
            .map(str::to_string)
            .or(image.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        let argv = match command {
            Some(command) => command,
            None => {
                let mut entry_env = env.clone();
                entry_env.insert("PWD".into(), cwd.clone());
                crate::entrypoint::argv(spec, image.entrypoint, &entry_env)
                    .map_err(|e| ("RunContainerError", e))?
            }
        };
        let spec_sandbox = SandboxSpec {
            hostname: self.hostname.clone(),
            tmp_dir: self.dir.join("tmp"),
            mounts: self.mounts(spec, &image, &container_name)?,
            masked: std::iter::once(&self.k.config.data_dir)
                .chain(&self.k.config.hidden)
                .cloned()
                .collect(),
            ensure_dirs: vec![cwd.clone()],
            cwd,
            command: argv,
        };
        Ok((spec_sandbox, env.into_iter().collect()))
    }

    fn start(&mut self, i: usize) -> Result<(), StartError> {
        let spec = self.slots[i].spec.clone();
        let container_name = spec["name"].as_str().unwrap_or("").to_string();
        let image_name = spec["image"].as_str().unwrap_or("").to_string();
        let restart_count = if self.slots[i].ever_started {
            self.slots[i].view.restart_count + 1
        } else {
            0
        };
        let (spec_sandbox, env) = self.sandbox_spec(i, None)?;
        let args = sandbox::bwrap_args(&spec_sandbox, &sandbox::RealFs);
        let log = crate::logs::pod_log_path(
            &self.k.config.data_dir,
            &self.namespace,
            &self.name,
            &self.uid,
            &container_name,
            restart_count,
        );
        self.event(
            Kind::Normal,
            "Pulled",
            &format!("Container image \"{image_name}\" already present on machine"),
            Some(&container_name),
        );
        let container_id = format!("sparkyard://{}", uuid::Uuid::new_v4().simple());
        let now = now_rfc3339();
        let run = adopt::Run {
            container: &container_name,
            restart: restart_count,
            container_id: &container_id,
            started_at: &now,
        };
        let pid = self.spawn(i, &args, &env, &log, &run)?;
        self.event(
            Kind::Normal,
            "Created",
            &format!("Created container: {container_name}"),
            Some(&container_name),
        );
        self.event(
            Kind::Normal,
            "Started",
            &format!("Started container {container_name}"),
            Some(&container_name),
        );
        tracing::debug!(pod = %self.name, container = %container_name, pid, "container started");

        let slot = &mut self.slots[i];
        if slot.ever_started {
            slot.view.restart_count += 1;
        }
        slot.ever_started = true;
        slot.view.container_id = Some(container_id.clone());
        slot.view.state = State::Running {
            started_at: now.clone(),
        };
        slot.proc = Some(Proc {
            pid,
            started: Instant::now(),
            started_at: now,
            container_id,
        });
        slot.next_start = None;
        self.start_probes(i);
        Ok(())
    }

    /// Runs the sandbox of slot `i`; returns its pid.
    fn spawn(
        &mut self,
        i: usize,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        run: &adopt::Run<'_>,
    ) -> Result<u32, StartError> {
        match crate::shim::executable() {
            // Under a shim, the container outlives this process (see `shim`).
            Some(shim) => self
                .start_supervised(i, shim, args, env, log, run)
                .map_err(|e| {
                    (
                        "RunContainerError",
                        format!("cannot start the container: {e}"),
                    )
                }),
            None => {
                let started = process::spawn(&self.k.bwrap, args, env, log)
                    .map_err(|e| ("RunContainerError", format!("cannot start bwrap: {e}")))?;
                let pid = started.pid;
                let tx = self.exits_tx.clone();
                let mut child = started.child;
                let drained = started.drained;
                tokio::spawn(async move {
                    let code = match child.wait().await {
                        Ok(status) => process::exit_code(status),
                        Err(_) => 255,
                    };
                    // Report the exit once the output is in the log, as the shim does.
                    let _ =
                        tokio::task::spawn_blocking(move || drained.wait(crate::shim::DRAIN_LIMIT))
                            .await;
                    let _ = tx.send(Exit {
                        slot: i,
                        pid,
                        code,
                        finished_at: None,
                    });
                });
                Ok(pid)
            }
        }
    }
}
