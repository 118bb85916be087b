//! The pod worker: one task per pod bound to this node, from sandbox setup through
//! containers, restarts and graceful termination to removal.
//!
//! This file owns the worker's state (`Worker`, one `Slot` per container, the `Stage` the
//! pod is at) and its entry point [`run`]. The work itself is split by concern:
//!
//! - `lifecycle`: the sandbox's setup and teardown around the main loop, which reacts to
//!   container exits, pod updates and timers.
//! - `volumes`: the pod's directories and its volumes.
//! - `start`, `environment`, `mounts`: starting one container (image, environment,
//!   sandbox, process or shim).
//! - `restarts`: container exits, the restart policy and back-off, init → main.
//! - `publish`: the pod's phase, status and events.
//! - `termination`: graceful deletion and the final `DELETE`.
//! - `adopt`: taking over a pod after a kubelet restart.
//! - `probes`: startup, liveness and readiness probes of running containers.
//! - `usage`: telling the usage sampler which containers run (sandbox pids).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::status::{ContainerView, State};
use super::Kubelet;
use sparkyard_kube_apiserver::registry::now_rfc3339;

mod adopt;
mod environment;
mod lifecycle;
mod mounts;
mod probes;
mod publish;
mod restarts;
mod start;
mod termination;
mod usage;
mod volumes;

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
    /// Image pull back-off after a failed pull (10 s doubling to 5 min); `None` until one
    /// fails.
    pull_backoff: Option<Duration>,
    /// The message of the last `Failed` event for a container that cannot start, so that a
    /// cause that has not changed is not recorded again every retry.
    last_failure: Option<String>,
    /// Finished for good (no more restarts).
    done: bool,
    /// Started at least once.
    ever_started: bool,
    /// The task running this container's probes (aborted when the container stops).
    probes: Option<tokio::task::JoinHandle<()>>,
    /// When a container stopped for a failed liveness or startup probe gets SIGKILL.
    kill_at: Option<Instant>,
    /// The last `Unhealthy` message recorded per probe, until it succeeds again.
    unhealthy: std::collections::HashMap<crate::probe::Kind, String>,
    /// A container re-adopted after a restart was ready (its readiness carries over).
    adopted_ready: bool,
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
    probes_tx: mpsc::UnboundedSender<probes::ProbeReport>,
    probes_rx: mpsc::UnboundedReceiver<probes::ProbeReport>,
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
                    backoff: restarts::BACKOFF_START,
                    pull_backoff: None,
                    last_failure: None,
                    done: false,
                    ever_started: false,
                    probes: None,
                    kill_at: None,
                    unhealthy: Default::default(),
                    adopted_ready: false,
                });
            }
        }
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let (probes_tx, probes_rx) = mpsc::unbounded_channel();
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
            probes_tx,
            probes_rx,
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
}
