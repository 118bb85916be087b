//! The pod worker: one task per pod bound to this node, from sandbox setup through
//! containers, restarts and graceful termination to removal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::EntrypointKind;
use super::env::{ConfigError, EnvSources};
use super::sandbox::{self, Mount, SandboxSpec};
use super::status::{self, ContainerView, PodView, State};
use super::volumes::{self, VolumeSources};
use super::{process, Kubelet, PODS};
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::registry::now_rfc3339;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long has its crash back-off reset, as kubelet does.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);
const RETRY: Duration = Duration::from_secs(1);

mod adopt;

/// Latest pod object from the dispatcher; `None` once it is gone from the registry.
pub type PodUpdates = watch::Receiver<Option<Arc<Value>>>;

struct Proc {
    pid: u32,
    started: Instant,
    started_at: String,
    container_id: String,
}

struct Slot {
    spec: Value,
    is_init: bool,
    view: ContainerView,
    proc: Option<Proc>,
    next_start: Option<Instant>,
    backoff: Duration,
    /// Finished for good (no more restarts).
    done: bool,
    /// Started at least once.
    ever_started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Volumes not ready yet.
    Setup,
    /// Running init container `n`.
    Init(usize),
    Main,
    Terminal(&'static str),
}

struct Exit {
    slot: usize,
    pid: u32,
    code: i32,
    /// When the container really finished, if it was before this worker learnt of it.
    finished_at: Option<String>,
}

pub struct Worker {
    k: Arc<Kubelet>,
    pod: Arc<Value>,
    namespace: String,
    name: String,
    uid: String,
    dir: PathBuf,
    ip: String,
    hostname: String,
    start_time: String,
    slots: Vec<Slot>,
    stage: Stage,
    volume_dirs: BTreeMap<String, PathBuf>,
    pending_reason: Option<String>,
    terminating: Option<Instant>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
}

pub async fn run(k: Arc<Kubelet>, pod: Arc<Value>, mut updates: PodUpdates) {
    let mut worker = Worker::new(k, pod);
    worker.lifecycle(&mut updates).await;
    worker.cleanup();
}

impl Worker {
    fn new(k: Arc<Kubelet>, pod: Arc<Value>) -> Self {
        let meta = &pod["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let name = meta["name"].as_str().unwrap_or("").to_string();
        let uid = meta["uid"].as_str().unwrap_or("").to_string();
        let dir = crate::logs::pod_dir(&k.config.data_dir, &namespace, &name, &uid);
        let hostname: String = pod["spec"]["hostname"]
            .as_str()
            .unwrap_or(&name)
            .chars()
            .take(63)
            .collect();
        let init_specs: Vec<Value> = pod["spec"]["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let main_specs: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut slots = Vec::new();
        for (specs, is_init) in [(init_specs, true), (main_specs, false)] {
            for spec in specs {
                let image = spec["image"].as_str().unwrap_or("").to_string();
                let view = ContainerView::new(
                    &spec,
                    &k.image_id(&image),
                    State::waiting("ContainerCreating"),
                );
                slots.push(Slot {
                    spec,
                    is_init,
                    view,
                    proc: None,
                    next_start: None,
                    backoff: BACKOFF_START,
                    done: false,
                    ever_started: false,
                });
            }
        }
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Self {
            k,
            pod,
            namespace,
            name,
            uid,
            dir,
            ip: String::new(),
            hostname,
            start_time: now_rfc3339(),
            slots,
            stage: Stage::Setup,
            volume_dirs: BTreeMap::new(),
            pending_reason: None,
            terminating: None,
            exits_tx,
            exits_rx,
        }
    }

    /// The node the pod is bound to (`spec.nodeName` never changes once set).
    fn node(&self) -> &str {
        self.pod["spec"]["nodeName"].as_str().unwrap_or("")
    }

    fn deleting(&self) -> bool {
        !self.pod["metadata"]["deletionTimestamp"].is_null()
    }

    fn restart_policy(&self) -> &str {
        self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
    }

    async fn lifecycle(&mut self, updates: &mut PodUpdates) {
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
        if let Err(e) = self.create_dirs() {
            tracing::warn!(pod = %self.name, error = %e, "cannot create pod directories");
        }
        if !self.ip.is_empty() {
            self.k.hosts.register(
                &self.uid,
                &self.namespace,
                &self.ip,
                &self.hostname,
                self.fqdn(),
                self.dir.join("etc/hosts"),
            );
            self.k.hosts.refresh(&self.k);
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
        }
        wake
    }

    /// After init container `from - 1` (or setup), moves to the next init container or the
    /// main containers, due now.
    fn advance_from(&mut self, first_init: usize) {
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

    fn start_due(&mut self, indices: &[usize]) {
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
                Ok(()) => {}
                Err((reason, message)) => {
                    let slot = &mut self.slots[i];
                    slot.view.state = State::Waiting {
                        reason: reason.to_string(),
                        message: Some(message.clone()),
                    };
                    slot.next_start = Some(now + Duration::from_secs(2));
                    if reason != "CreateContainerConfigError" || slot.view.restart_count == 0 {
                        tracing::debug!(pod = %self.name, %reason, %message, "container cannot start yet");
                    }
                }
            }
        }
        if changed {
            self.publish();
        }
    }

    fn start(&mut self, i: usize) -> Result<(), (&'static str, String)> {
        let spec = self.slots[i].spec.clone();
        let container_name = spec["name"].as_str().unwrap_or("").to_string();
        let image_name = spec["image"].as_str().unwrap_or("").to_string();
        let image = self
            .k
            .resolve_image(&image_name)
            .map_err(|e| ("ErrImagePull", e))?;
        let restart_count = if self.slots[i].ever_started {
            self.slots[i].view.restart_count + 1
        } else {
            0
        };

        // Environment: image ENV, then what kubelet adds, then the container's own.
        let client = self.k.client.clone();
        let ns = self.namespace.clone();
        let cm = |name: &str| {
            client
                .get(super::CONFIGMAPS, &ns, name)
                .map(|o| (*o).clone())
        };
        let secret = |name: &str| client.get(super::SECRETS, &ns, name).map(|o| (*o).clone());
        let sources = EnvSources {
            pod: &self.pod,
            pod_ip: &self.ip,
            host_ip: &self.k.host_ip,
            node_cpu_millis: self.k.shape(self.node()).cpu_millis,
            node_memory: self.k.shape(self.node()).memory,
            config_map: &cm,
            secret: &secret,
        };
        let container_env = super::env::resolve(&spec, &sources)
            .map_err(|ConfigError(m)| ("CreateContainerConfigError", m))?;
        let cwd = spec["workingDir"]
            .as_str()
            .map(str::to_string)
            .or(image.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
        if let Some(java) = &self.k.host.java_home {
            env.insert("JAVA_HOME".into(), java.display().to_string());
        }
        for (key, value) in &image.env {
            env.insert(key.clone(), value.clone());
        }
        if image.entrypoint == EntrypointKind::Spark {
            env.insert(
                "PYSPARK_PYTHON".into(),
                self.k.host.python.display().to_string(),
            );
        }
        env.insert("HOSTNAME".into(), self.hostname.clone());
        // HOME is writable and private to the pod either way.
        env.insert(
            "HOME".into(),
            if self.k.private_root_home {
                "/root"
            } else {
                "/tmp"
            }
            .into(),
        );
        let (api_ip, api_port) = (
            self.k.config.service_ip.to_string(),
            self.k.config.service_port.to_string(),
        );
        env.insert("KUBERNETES_SERVICE_HOST".into(), api_ip.clone());
        env.insert("KUBERNETES_SERVICE_PORT".into(), api_port.clone());
        env.insert("KUBERNETES_SERVICE_PORT_HTTPS".into(), api_port.clone());
        env.insert(
            "KUBERNETES_PORT".into(),
            format!("tcp://{api_ip}:{api_port}"),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP"),
            format!("tcp://{api_ip}:{api_port}"),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_PROTO"),
            "tcp".into(),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_PORT"),
            api_port.clone(),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_ADDR"),
            api_ip.clone(),
        );
        for (key, value) in container_env {
            env.insert(key, value);
        }
        let mut entry_env = env.clone();
        entry_env.insert("PWD".into(), cwd.clone());
        let argv = super::entrypoint::argv(&spec, image.entrypoint, &entry_env)
            .map_err(|e| ("RunContainerError", e))?;

        // Mounts: the image, the pod's files, then the container's volume mounts on top.
        let cdir = self.dir.join("containers").join(&container_name);
        let _ = std::fs::create_dir_all(cdir.join("work-dir"));
        let termination_log = cdir.join("termination-log");
        let _ = std::fs::write(&termination_log, b"");
        let mut mounts: Vec<Mount> = Vec::new();
        for (source, target) in &image.mounts {
            mounts.push(Mount {
                source: source.clone(),
                target: target.clone(),
                read_only: true,
            });
        }
        if let Some(workdir) = &image.working_dir {
            mounts.push(Mount {
                source: cdir.join("work-dir"),
                target: workdir.clone(),
                read_only: false,
            });
        }
        mounts.push(Mount {
            source: self.dir.join("etc/hosts"),
            target: "/etc/hosts".into(),
            read_only: true,
        });
        mounts.push(Mount {
            source: self.dir.join("etc/hostname"),
            target: "/etc/hostname".into(),
            read_only: true,
        });
        // A private, writable home that also hides the host's /root.
        if self.k.private_root_home {
            mounts.push(Mount {
                source: self.dir.join("home"),
                target: "/root".into(),
                read_only: false,
            });
        }
        let termination_path = spec["terminationMessagePath"]
            .as_str()
            .unwrap_or("/dev/termination-log")
            .to_string();
        mounts.push(Mount {
            source: termination_log.clone(),
            target: termination_path,
            read_only: false,
        });
        for vm in spec["volumeMounts"].as_array().into_iter().flatten() {
            let volume = vm["name"].as_str().unwrap_or("");
            let Some(source) = self.volume_dirs.get(volume) else {
                return Err(("CreateContainerConfigError", format!("cannot find volume \"{volume}\" to mount into container \"{container_name}\"")));
            };
            let mut source = source.clone();
            if let Some(sub) = vm["subPath"]
                .as_str()
                .filter(|s| !s.is_empty() && !s.split('/').any(|c| c == ".."))
            {
                source = source.join(sub);
                if !source.exists() {
                    let _ = std::fs::create_dir_all(&source);
                }
            }
            mounts.push(Mount {
                source,
                target: vm["mountPath"].as_str().unwrap_or("/").to_string(),
                read_only: vm["readOnly"] == true,
            });
        }
        if let Some(sa) = self.volume_dirs.get(volumes::AUTO_SA_VOLUME) {
            mounts.push(Mount {
                source: sa.clone(),
                target: volumes::SERVICE_ACCOUNT_PATH.into(),
                read_only: true,
            });
        }
        let spec_sandbox = SandboxSpec {
            hostname: self.hostname.clone(),
            tmp_dir: self.dir.join("tmp"),
            mounts,
            masked: vec![self.k.config.data_dir.clone()],
            ensure_dirs: vec![cwd.clone()],
            cwd,
            command: argv,
        };
        let args = sandbox::bwrap_args(&spec_sandbox, &sandbox::RealFs);
        let log = crate::logs::pod_log_path(
            &self.k.config.data_dir,
            &self.namespace,
            &self.name,
            &self.uid,
            &container_name,
            restart_count,
        );
        let env: Vec<(String, String)> = env.into_iter().collect();
        self.event(
            Kind::Normal,
            "Pulled",
            &format!("Container image \"{image_name}\" already present on machine"),
            Some(&container_name),
        );
        let container_id = format!("sparkyard://{}", uuid::Uuid::new_v4().simple());
        let now = now_rfc3339();
        let pid = match super::shim::executable() {
            // Under a shim, the container outlives this process (see `shim`).
            Some(shim) => {
                let run = adopt::Run {
                    container: &container_name,
                    restart: restart_count,
                    container_id: &container_id,
                    started_at: &now,
                };
                self.start_supervised(i, shim, &args, &env, &log, &run)
                    .map_err(|e| {
                        (
                            "RunContainerError",
                            format!("cannot start the container: {e}"),
                        )
                    })?
            }
            None => {
                let started = process::spawn(&self.k.bwrap, &args, &env, &log)
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
                        tokio::task::spawn_blocking(move || drained.wait(super::shim::DRAIN_LIMIT))
                            .await;
                    let _ = tx.send(Exit {
                        slot: i,
                        pid,
                        code,
                        finished_at: None,
                    });
                });
                pid
            }
        };
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
        Ok(())
    }

    fn on_exit(&mut self, exit: Exit) {
        let policy = self.restart_policy().to_string();
        let terminating = self.terminating.is_some();
        let slot = &mut self.slots[exit.slot];
        let Some(proc) = slot.proc.take_if(|p| p.pid == exit.pid) else {
            return;
        };
        let termination_message = std::fs::read_to_string(
            self.dir
                .join("containers")
                .join(&slot.view.name)
                .join("termination-log"),
        )
        .ok();
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
    fn terminal_phase(&self) -> &'static str {
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

    fn begin_termination(&mut self) {
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

    fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(p) = slot.proc.take() {
                process::kill(p.pid);
            }
        }
    }

    /// The kubelet's final DELETE: grace 0, then removal unless finalizers still hold it.
    fn finish_deletion(&self) {
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

    async fn wait_removed(&mut self, updates: &mut PodUpdates) {
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

    fn prepare_volumes(&mut self) -> Result<(), String> {
        let client = self.k.client.clone();
        let ns = self.namespace.clone();
        let cm = |name: &str| {
            client
                .get(super::CONFIGMAPS, &ns, name)
                .map(|o| (*o).clone())
        };
        let secret = |name: &str| client.get(super::SECRETS, &ns, name).map(|o| (*o).clone());
        let service_account = self.pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let (pod_name, pod_uid) = (self.name.clone(), self.uid.clone());
        let client = self.k.client.clone();
        let token = |audience: Option<&str>, expiration: i64| {
            let audiences: Vec<String> = audience.map(|a| vec![a.to_string()]).unwrap_or_default();
            client.service_account_token(
                &ns,
                &service_account,
                &audiences,
                Some((&pod_name, &pod_uid)),
                expiration,
            )
        };
        let src = VolumeSources {
            env: EnvSources {
                pod: &self.pod,
                pod_ip: &self.ip,
                host_ip: &self.k.host_ip,
                node_cpu_millis: self.k.shape(self.node()).cpu_millis,
                node_memory: self.k.shape(self.node()).memory,
                config_map: &cm,
                secret: &secret,
            },
            token: &token,
            ca_pem: &self.k.config.ca_pem,
        };
        let mut volumes: Vec<Value> = self.pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let sa_object = client.get(super::SERVICE_ACCOUNTS, &ns, &service_account);
        if volumes::wants_auto_service_account(&self.pod, sa_object.as_deref()) {
            volumes.push(volumes::auto_service_account_volume());
        }
        let mut dirs = BTreeMap::new();
        for volume in &volumes {
            let name = volume["name"].as_str().unwrap_or("").to_string();
            if let Some(dir) =
                volumes::plain_dir(volume, &self.dir, &self.k.config.data_dir, &self.namespace)
            {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("MountVolume.SetUp failed for volume \"{name}\" : {e}"))?;
                dirs.insert(name, dir);
                continue;
            }
            match volumes::volume_files(volume, &src).map_err(|volumes::NotReady(m)| m)? {
                Some(files) => {
                    let dir = self.dir.join("volumes").join(&name);
                    volumes::write_files(&dir, &files).map_err(|e| {
                        format!("MountVolume.SetUp failed for volume \"{name}\" : {e}")
                    })?;
                    dirs.insert(name, dir);
                }
                None => {
                    // Unsupported volume type: an empty directory keeps the pod runnable.
                    let dir = self.dir.join("volumes").join(&name);
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    dirs.insert(name, dir);
                }
            }
        }
        self.volume_dirs = dirs;
        Ok(())
    }

    fn create_dirs(&self) -> std::io::Result<()> {
        for sub in ["volumes", "tmp", "etc", "home", "containers"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        std::fs::set_permissions(
            self.dir.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )?;
        std::fs::write(
            self.dir.join("etc/hostname"),
            format!("{}\n", self.hostname),
        )?;
        if !self.dir.join("etc/hosts").exists() {
            std::fs::write(self.dir.join("etc/hosts"), "127.0.0.1\tlocalhost\n")?;
        }
        Ok(())
    }

    fn fqdn(&self) -> Option<String> {
        let subdomain = self.pod["spec"]["subdomain"]
            .as_str()
            .filter(|s| !s.is_empty())?;
        Some(format!(
            "{}.{subdomain}.{}.svc.{}",
            self.hostname,
            self.namespace,
            super::hosts::CLUSTER_DOMAIN
        ))
    }

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

    fn publish(&self) {
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
        // Services selecting this pod change with its phase.
        self.k.hosts.refresh(&self.k);
    }

    fn event(&self, kind: Kind, reason: &str, message: &str, container: Option<&str>) {
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

    fn cleanup(&mut self) {
        self.kill_all();
        self.k.hosts.unregister(&self.uid);
        self.k.ipam.release(&self.uid);
        // Logs stay for `kubectl logs` of finished pods' records and the log shipper; the
        // sandbox's scratch space goes.
        for sub in ["volumes", "tmp", "home", "containers", "state"] {
            let _ = std::fs::remove_dir_all(self.dir.join(sub));
        }
    }
}
