//! The live scheduler: kube-scheduler's loop over the pure scheduling core
//! (`sparkyard-scheduling`).
//!
//! **Owns:** the scheduling queue, back-off, the incremental [`Snapshot`] fed by watches, and
//! carrying decisions out. **Must not touch:** the registry or the API server's internals —
//! it reads, watches and writes through the API server's [`Client`] only (bind through
//! `pods/binding`, conditions through `pods/status`, victims through `DELETE`), so it could
//! drive a real API server the same way. **Entry point:** [`start`]; its Prometheus
//! metrics (`scheduler_*`, and `kube_pod_resource_request`/`_limit` for
//! `/metrics/resources`) are in [`metrics`].
//!
//! It watches nodes, pods and claims and keeps a [`Snapshot`] up to date incrementally (one parse
//! per relevant change; status-only updates from kubelets are recognised without parsing).
//! Pending pods wait in a queue ordered by [`queue_order`] (priority, then age). Each cycle
//! takes the head, asks [`Snapshot::schedule`] and carries the decision out with the API
//! server's semantics, in process:
//!
//! - **volumes** (`VolumeBinding`): a pod's PersistentVolumeClaims, their volumes and
//!   classes are read each cycle (they change without the pod changing); a missing or
//!   unbound-immediate claim rules out every node, a bound volume's node affinity the
//!   nodes outside it; claims of `WaitForFirstConsumer` classes get the chosen node as
//!   `volume.kubernetes.io/selected-node` just before the binding;
//! - **bind**: `spec.nodeName`, `PodScheduled=True`, event `Scheduled`
//!   (`Successfully assigned ns/pod to node`);
//! - **unschedulable**: `PodScheduled=False` / `Unschedulable` with kube-scheduler's
//!   message and a `FailedScheduling` event — written again only when the message
//!   changes, so retries do not spam;
//! - **preemption**: each victim gets the `DisruptionTarget` condition
//!   (`PreemptionByScheduler`) and a `Preempted` event naming the preemptor's uid and the
//!   node, and is deleted gracefully (the same path as `kubectl delete`: its kubelet stops
//!   it with SIGTERM, reports a terminal status, completes the deletion); the preemptor
//!   gets `status.nominatedNodeName`; lower-priority pods nominated to that node lose
//!   their nomination. The preemptor binds when the room appears.
//!
//! Unschedulable pods are retried like kube-scheduler's unschedulable queue: after a
//! cluster change that can make room (a node added or changed, a bound pod finished or
//! deleted, a nomination dropped) and their back-off (1 s doubling to 10 s) has passed,
//! and at least every [`UNSCHEDULABLE_MAX_WAIT`] regardless. A pod nominated to a node
//! goes back at once when room frees *there*, and otherwise only on node changes: it is
//! waiting for its victims, and retrying it whenever any pod anywhere leaves (a full
//! failed cycle each time) is what made preemption slow at 5,000 nodes.
//!
//! Decisions are "assumed" into the snapshot, and the API writes that carry them out run
//! on a writer thread (`scheduler-writer`), in order, as kube-scheduler runs its binding
//! cycle, its preemption (`prepareCandidateAsync`) and its event broadcaster off the
//! scheduling cycle. While a write to a pod is in flight that pod's watch events are
//! skipped (the pod is read again once the writes land, if any were skipped); afterwards
//! events older than the scheduler's own last write are skipped, so a stale event cannot
//! undo an assumption. A failed binding voids the assumption and the pod is read again.
//!
//! The loop runs on its own thread (a current-thread runtime), so that a burst of
//! scheduling work never holds up the API server's worker threads and vice versa.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::Either;
use futures::StreamExt;
use serde_json::{json, Value};

use sparkyard_kube_apiserver::conditions::set as set_condition;
use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::{now_rfc3339, Event, EventType, Resource};
use sparkyard_kube_apiserver::{ApiError, Client, DeleteOptions, Subresource};
use sparkyard_scheduling::message;
use sparkyard_scheduling::volumes::ANNOTATION_SELECTED_NODE;
use sparkyard_scheduling::{
    Decision, NodeInfo, Nomination, PodRequirements, Snapshot, VolumeBinding,
};

pub mod metrics;

const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");
const PVCS: Resource = Resource::new("", "persistentvolumeclaims");
const PVS: Resource = Resource::new("", "persistentvolumes");
const STORAGE_CLASSES: Resource = Resource::new("storage.k8s.io", "storageclasses");
pub const DEFAULT_SCHEDULER: &str = message::SCHEDULER_NAME;

/// kube-scheduler's `podInitialBackoffSeconds` and `podMaxBackoffSeconds`.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often unschedulable pods are checked for a retry (kube flushes its back-off queue
/// every second).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// An unschedulable pod is retried at least this often even without a cluster event
/// (kube's `podMaxInUnschedulablePodsDuration` is 5 min; shorter here, since some room
/// changes — an allocatable edit through a status patch, say — are cheap to miss).
const UNSCHEDULABLE_MAX_WAIT: Duration = Duration::from_secs(30);
/// Pods scheduled per cycle before pending watch events are applied again.
const CYCLE_BATCH: usize = 512;
/// Watch events applied per batch before scheduling resumes.
const EVENT_BATCH: usize = 8192;

/// Starts the scheduler on its own thread.
pub fn start(client: Client) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || runtime.block_on(run(client)))?;
    Ok(())
}

/// Position in the scheduling queue: `queue_order` as a sortable key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    neg_priority: i64,
    /// Creation time in seconds; a pod without one sorts last.
    created: i64,
    namespace: String,
    name: String,
    uid: String,
}

impl QueueKey {
    fn of(p: &PodRequirements) -> QueueKey {
        QueueKey {
            neg_priority: -i64::from(p.priority),
            created: p.creation_timestamp.map_or(i64::MAX, |t| t.timestamp()),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            uid: p.key(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Unschedulable {
        /// The cluster-change counter when the attempt failed.
        seq: u64,
        /// The node-change counter when the attempt failed.
        node_seq: u64,
        retry_at: Instant,
        failed_at: Instant,
    },
}

struct Pending {
    req: PodRequirements,
    key: QueueKey,
    state: State,
    attempts: u32,
}

/// A write to a pod, run by the writer thread; it reports how each write landed.
type Job = Box<dyn FnOnce(&Client, &Source) -> Vec<Outcome> + Send>;

/// How a write to a pod landed, reported back to the loop.
enum Outcome {
    /// A status update or deletion: the pod's resourceVersion after it (`None`: not written).
    Wrote {
        uid: String,
        namespace: String,
        name: String,
        rv: Option<u64>,
    },
    /// A binding; `rv` is `None` when it failed (the assumption is then void).
    Bound {
        uid: String,
        namespace: String,
        name: String,
        rv: Option<u64>,
        started: Instant,
    },
}

/// The scheduler's own writes to a pod: while some are in flight, that pod's watch events
/// are skipped (the snapshot already assumed their outcome); afterwards, events older than
/// the last of them.
#[derive(Debug, Default)]
struct Own {
    in_flight: u32,
    /// An event was skipped while writes were in flight: read the pod again when they land.
    skipped: bool,
    rv: u64,
}

/// Starts the thread that carries out the loop's API writes in order — kube-scheduler's
/// asynchronous binding cycle, asynchronous preemption (`prepareCandidateAsync`) and
/// event broadcaster: the scheduling cycle decides and assumes; the writes follow.
fn start_writer(
    client: Client,
    source: Source,
    outcomes: tokio::sync::mpsc::UnboundedSender<Outcome>,
) -> std::sync::mpsc::Sender<Job> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("scheduler-writer".into())
        .spawn(move || {
            while let Ok(job) = queue.recv() {
                for outcome in job(&client, &source) {
                    if outcomes.send(outcome).is_err() {
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the scheduler's writer thread");
    }
    jobs
}

struct Scheduler {
    client: Client,
    jobs: std::sync::mpsc::Sender<Job>,
    snapshot: Snapshot,
    nodes: HashMap<String, NodeInfo>,
    pending: HashMap<String, Pending>,
    active: BTreeSet<QueueKey>,
    /// Bumped on every change that can make room for an unschedulable pod.
    seq: u64,
    /// Bumped on node changes only: pods nominated to a node wait for room *there*
    /// (`room_freed`), or for a node change, not for any pod leaving anywhere.
    node_seq: u64,
    last_flush: Instant,
    /// The scheduler's own writes per pod (in flight, or the resourceVersion of the
    /// last): older events of that pod are stale (the snapshot already assumed them).
    written: HashMap<String, Own>,
    /// The last `FailedScheduling` message (and nomination) reported per pod.
    reported: HashMap<String, (String, Option<String>)>,
    /// Pending pods by the node they are nominated to (`req.nominated_node_name`), so
    /// that room freed on a node wakes its nominated pods without a scan of every
    /// pending pod (thousands of them during a preemption wave).
    nominated: HashMap<String, HashSet<String>>,
}

/// Moves `key` in the nominated index from `old` to `new`.
fn renominate(
    index: &mut HashMap<String, HashSet<String>>,
    key: &str,
    old: Option<&str>,
    new: Option<&str>,
) {
    if old == new {
        return;
    }
    if let Some(node) = old {
        if let Some(keys) = index.get_mut(node) {
            keys.remove(key);
            if keys.is_empty() {
                index.remove(node);
            }
        }
    }
    if let Some(node) = new {
        index
            .entry(node.to_string())
            .or_default()
            .insert(key.to_string());
    }
}

fn rv_of(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn uid_of(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What of a pod the scheduler reads besides its spec (covered by `generation`, which the
/// registry bumps on any spec change) and the phase and start time
/// ([`same_for_scheduling`] compares those too).
const SCHEDULING_POINTERS: [&str; 4] = [
    "/metadata/generation",
    "/metadata/deletionTimestamp",
    "/status/nominatedNodeName",
    "/spec/nodeName",
];

fn disruption_target(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget"))
}

/// Whether two versions of a pod agree on everything the scheduler reads but the phase and
/// the start time: a kubelet's status report.
fn same_but_phase(a: &Value, b: &Value) -> bool {
    SCHEDULING_POINTERS
        .iter()
        .all(|p| a.pointer(p) == b.pointer(p))
        && disruption_target(a) == disruption_target(b)
}

/// Whether two versions of a pod look the same to the scheduler, judged without parsing
/// them.
fn same_for_scheduling(a: &Value, b: &Value) -> bool {
    same_but_phase(a, b)
        && ["/status/phase", "/status/startTime"]
            .iter()
            .all(|p| a.pointer(p) == b.pointer(p))
}

/// The pod an event is about, as much of it as the event names: the reference, and the
/// resourceVersion of `stored` (the pod as the event's write left it) when known.
fn pod_ref_object(namespace: &str, name: &str, uid: &str, stored: Option<&Value>) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"namespace": namespace, "name": name, "uid": uid}});
    if let Some(rv) = stored.and_then(|s| s.pointer("/metadata/resourceVersion")) {
        pod["metadata"]["resourceVersion"] = rv.clone();
    }
    pod
}

fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(8);
    (BACKOFF_INITIAL * 2u32.pow(exp)).min(BACKOFF_MAX)
}

impl Scheduler {
    fn new(client: Client, outcomes: tokio::sync::mpsc::UnboundedSender<Outcome>) -> Scheduler {
        let source = Source {
            component: DEFAULT_SCHEDULER,
            host: None,
        };
        Scheduler {
            jobs: start_writer(client.clone(), source, outcomes),
            client,
            snapshot: Snapshot::new(),
            nodes: HashMap::new(),
            pending: HashMap::new(),
            active: BTreeSet::new(),
            seq: 0,
            node_seq: 0,
            last_flush: Instant::now(),
            written: HashMap::new(),
            reported: HashMap::new(),
            nominated: HashMap::new(),
        }
    }

    /// Rebuilds everything from a full list; returns the list's resourceVersion.
    fn resync(&mut self) -> u64 {
        let (nodes, revision) = self.client.list(NODES, None);
        let (pods, _) = self.client.list(PODS, None);
        self.snapshot = Snapshot::new();
        self.nodes.clear();
        self.pending.clear();
        self.active.clear();
        self.written.clear();
        self.nominated.clear();
        metrics::reset_gated();
        for node in &nodes {
            self.node_changed(node);
        }
        for pod in &pods {
            self.pod_changed(pod, None);
        }
        self.seq += 1;
        revision
    }

    fn node_changed(&mut self, node: &Value) {
        match NodeInfo::from_node(node) {
            Ok(info) => {
                if self.nodes.get(&info.name) == Some(&info) {
                    return; // a heartbeat: nothing the scheduler reads changed
                }
                self.nodes.insert(info.name.clone(), info.clone());
                self.snapshot.upsert_node(info);
                self.seq += 1;
                self.node_seq += 1;
            }
            Err(e) => tracing::warn!(error = %e, "scheduler ignores a node it cannot read"),
        }
    }

    fn node_deleted(&mut self, node: &Value) {
        if let Some(name) = node.pointer("/metadata/name").and_then(Value::as_str) {
            self.nodes.remove(name);
            self.snapshot.remove_node(name);
            self.seq += 1;
            self.node_seq += 1;
        }
    }

    /// Room may have appeared on `node`: pods nominated there go back to the queue now,
    /// the other unschedulable pods after their back-off.
    fn room_freed(&mut self, node: &str) {
        self.seq += 1;
        let Some(keys) = self.nominated.get(node) else {
            return;
        };
        let ready: Vec<String> = keys
            .iter()
            .filter(|k| {
                self.pending
                    .get(*k)
                    .is_some_and(|p| p.state != State::Active)
            })
            .cloned()
            .collect();
        for key in ready {
            self.activate(&key);
        }
    }

    fn activate(&mut self, key: &str) {
        if let Some(p) = self.pending.get_mut(key) {
            if p.state != State::Active {
                p.state = State::Active;
                self.active.insert(p.key.clone());
            }
        }
    }

    fn forget_pending(&mut self, key: &str) {
        if let Some(p) = self.pending.remove(key) {
            self.active.remove(&p.key);
            renominate(
                &mut self.nominated,
                key,
                p.req.nominated_node_name.as_deref(),
                None,
            );
        }
    }

    /// A pod was added or changed (`previous`: its state before, for MODIFIED).
    fn pod_changed(&mut self, pod: &Value, previous: Option<&Value>) {
        let uid = uid_of(pod);
        let mut after_own_write = false;
        if let Some(own) = self.written.get_mut(uid) {
            if own.in_flight > 0 {
                own.skipped = true; // read again once the writes land
                return;
            }
            if rv_of(pod) < own.rv {
                return; // older than what the snapshot assumed
            }
            self.written.remove(uid);
            // Events skipped as stale may have carried changes: read this one in full.
            after_own_write = true;
        }
        if let (Some(prev), false) = (previous, after_own_write) {
            if same_for_scheduling(prev, pod) {
                return;
            }
        }
        let known = previous
            .filter(|prev| !after_own_write && same_but_phase(prev, pod))
            .and_then(|_| self.with_new_phase(uid, pod));
        let req = match known.map_or_else(|| PodRequirements::from_pod(pod), Ok) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e.0, "scheduler ignores a pod it cannot read");
                return;
            }
        };
        let key = req.key();
        metrics::gated(&key, Some(&req));
        let before = self
            .snapshot
            .placement_of(&key)
            .map(|(n, bound)| (n.to_string(), bound));
        let spec_changed = previous.is_none_or(|prev| {
            prev.pointer("/metadata/generation") != pod.pointer("/metadata/generation")
        });
        let wants = req.wants_scheduling();
        self.snapshot.upsert_pod(req.clone());
        let after = self
            .snapshot
            .placement_of(&key)
            .map(|(n, bound)| (n.to_string(), bound));
        // A bound pod that finished, or a nomination that went away, leaves room; a
        // nominated pod binding where it was nominated does not (it held that room).
        if let Some((node, _)) = before.filter(|(n, _)| match &after {
            None => true,
            Some((m, _)) => m != n,
        }) {
            self.room_freed(&node);
        }
        if !wants {
            self.forget_pending(&key);
            self.reported.remove(&key);
            return;
        }
        let queue_key = QueueKey::of(&req);
        match self.pending.get_mut(&key) {
            Some(p) => {
                if p.key != queue_key {
                    if self.active.remove(&p.key) {
                        self.active.insert(queue_key.clone());
                    }
                    p.key = queue_key;
                }
                renominate(
                    &mut self.nominated,
                    &key,
                    p.req.nominated_node_name.as_deref(),
                    req.nominated_node_name.as_deref(),
                );
                p.req = req;
                if spec_changed {
                    self.activate(&key);
                }
            }
            None => {
                self.active.insert(queue_key.clone());
                renominate(
                    &mut self.nominated,
                    &key,
                    None,
                    req.nominated_node_name.as_deref(),
                );
                self.pending.insert(
                    key,
                    Pending {
                        req,
                        key: queue_key,
                        state: State::Active,
                        attempts: 0,
                    },
                );
            }
        }
    }

    /// The requirements already known for the pod `uid`, with the phase and start time of
    /// `pod`: a kubelet's status report (a pod starting, or finishing) needs no parse of the
    /// whole pod — half the scheduler's parsing during a preemption wave.
    fn with_new_phase(&self, uid: &str, pod: &Value) -> Option<PodRequirements> {
        let known = self
            .snapshot
            .tracked(uid)
            .or_else(|| self.pending.get(uid).map(|p| &p.req))?;
        let mut req = known.clone();
        req.start_time = pod
            .pointer("/status/startTime")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        req.terminal = matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        Some(req)
    }

    fn pod_deleted(&mut self, pod: &Value) {
        // PodRequirements::key without parsing the whole pod.
        let key = match uid_of(pod) {
            "" => format!(
                "{}/{}",
                pod.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default"),
                pod.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
            uid => uid.to_string(),
        };
        let before = self.snapshot.placement_of(&key).map(|(n, _)| n.to_string());
        self.snapshot.remove_pod(&key);
        self.forget_pending(&key);
        self.written.remove(&key);
        self.reported.remove(&key);
        metrics::gated(&key, None);
        if let Some(node) = before {
            self.room_freed(&node);
        }
    }

    fn apply_event(&mut self, event: &Event) {
        match (event.resource.plural, event.event_type) {
            ("nodes", EventType::Deleted) => self.node_deleted(&event.object),
            ("nodes", _) => self.node_changed(&event.object),
            ("pods", EventType::Deleted) => self.pod_deleted(&event.object),
            ("pods", _) => self.pod_changed(&event.object, event.previous.as_deref()),
            // A claim created, bound or deleted can make room for a pod that waits on it
            // (kube's VolumeBinding re-queues on PVC events).
            ("persistentvolumeclaims", _) => self.seq += 1,
            _ => {}
        }
    }

    /// Moves unschedulable pods whose retry is due back into the queue.
    fn flush_unschedulable(&mut self, now: Instant) {
        if now.duration_since(self.last_flush) < FLUSH_EVERY {
            return;
        }
        self.last_flush = now;
        let (seq, node_seq) = (self.seq, self.node_seq);
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| match p.state {
                State::Active => false,
                State::Unschedulable {
                    seq: failed_seq,
                    node_seq: failed_node_seq,
                    retry_at,
                    failed_at,
                } => {
                    let changed = if p.req.nominated_node_name.is_some() {
                        failed_node_seq < node_seq
                    } else {
                        failed_seq < seq
                    };
                    (changed && retry_at <= now)
                        || now.duration_since(failed_at) >= UNSCHEDULABLE_MAX_WAIT
                }
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.activate(&key);
        }
    }

    /// Schedules up to [`CYCLE_BATCH`] queued pods; returns how many it took.
    fn cycle(&mut self) -> usize {
        let mut done = 0;
        while done < CYCLE_BATCH {
            let Some(head) = self.active.pop_first() else {
                break;
            };
            done += 1;
            let Some(p) = self.pending.get(&head.uid) else {
                continue;
            };
            let mut req = p.req.clone();
            let started = Instant::now();
            let volumes = self.volume_binding(&req);
            if let Some(volumes) = &volumes {
                volumes.apply(&mut req);
            }
            let decision = self.snapshot.schedule(&req);
            let now = Utc::now();
            self.snapshot.assume(&req, &decision, now);
            match decision {
                Decision::Bind { node } => {
                    let delayed = volumes.map(|v| v.delayed).unwrap_or_default();
                    self.bind(&req, &node, started, delayed)
                }
                Decision::Unschedulable {
                    message,
                    nomination,
                    preemption,
                } => {
                    if let Some(plan) = &preemption {
                        self.preempt(&req, plan, now);
                    }
                    self.unschedulable(&req, &message, &nomination);
                    metrics::preemption(preemption.as_ref().map(|p| p.victims.len()));
                    metrics::attempt("unschedulable", started);
                }
            }
        }
        done
    }

    /// Hands writes to the writer thread; the pods `uids` have them in flight.
    fn submit(&mut self, uids: &[&str], job: Job) {
        for uid in uids {
            self.written.entry(uid.to_string()).or_default().in_flight += 1;
        }
        if self.jobs.send(job).is_err() {
            tracing::error!("the scheduler's writer thread is gone");
        }
    }

    /// A write reported back by the writer thread.
    fn landed(&mut self, outcome: Outcome) {
        let (uid, namespace, name, rv, bind) = match outcome {
            Outcome::Wrote {
                uid,
                namespace,
                name,
                rv,
            } => (uid, namespace, name, rv, None),
            Outcome::Bound {
                uid,
                namespace,
                name,
                rv,
                started,
            } => {
                metrics::attempt(if rv.is_some() { "scheduled" } else { "error" }, started);
                (uid, namespace, name, rv, Some(rv.is_some()))
            }
        };
        let Some(own) = self.written.get_mut(&uid) else {
            return; // deleted (or resynced) meanwhile
        };
        own.in_flight = own.in_flight.saturating_sub(1);
        if let Some(rv) = rv {
            own.rv = own.rv.max(rv);
        }
        if bind == Some(false) {
            // Gone, deleted or bound meanwhile: the assumption is void; the pod as it is
            // now says what it is.
            let key = if uid.is_empty() {
                format!("{namespace}/{name}")
            } else {
                uid.clone()
            };
            self.snapshot.remove_pod(&key);
            own.skipped = true;
        }
        if own.in_flight > 0 {
            return;
        }
        let skipped = std::mem::take(&mut own.skipped);
        if own.rv == 0 || skipped {
            self.written.remove(&uid);
        }
        if skipped {
            // Events were skipped while the writes were in flight: catch up at once.
            if let Some(current) = self.client.get(PODS, &namespace, &name) {
                if uid_of(&current) == uid {
                    self.pod_changed(&current, None);
                }
            }
        }
    }

    /// `VolumeBinding`'s view of the pod's claims, read now (claims, volumes and classes
    /// change without the pod changing); `None` for a pod without claims.
    fn volume_binding(&self, req: &PodRequirements) -> Option<VolumeBinding> {
        if req.claims.is_empty() {
            return None;
        }
        let ns = req.namespace.as_str();
        Some(sparkyard_scheduling::volume_binding(
            &req.claims,
            |name| self.client.get(PVCS, ns, name),
            |name| self.client.get(PVS, "", name),
            |name| self.client.get(STORAGE_CLASSES, "", name),
        ))
    }

    /// Binds the pod (on the writer thread), then records `Scheduled`. Its claims that
    /// wait for their first consumer (`delayed`) are first annotated with the node
    /// (`volume.kubernetes.io/selected-node`), as kube-scheduler's VolumeBinding PreBind
    /// does, so the provisioner creates their volumes there. Unlike kube-scheduler, the
    /// pod is bound without waiting for the claims to be bound: its kubelet waits for them
    /// before it mounts anything.
    fn bind(&mut self, req: &PodRequirements, node: &str, started: Instant, delayed: Vec<String>) {
        let key = req.key();
        self.forget_pending(&key);
        self.reported.remove(&key);
        let (uid, namespace, name, node) = (
            req.uid.clone(),
            req.namespace.clone(),
            req.name.clone(),
            node.to_string(),
        );
        self.submit(
            &[&key],
            Box::new(move |client, source| {
                for claim in &delayed {
                    let selected = client.modify(PVCS, &namespace, claim, Subresource::Main, |c| {
                        if c.pointer("/spec/volumeName").and_then(Value::as_str).is_some_and(|v| !v.is_empty()) {
                            return Ok(()); // bound meanwhile
                        }
                        if !c["metadata"]["annotations"].is_object() {
                            c["metadata"]["annotations"] = json!({});
                        }
                        c["metadata"]["annotations"][ANNOTATION_SELECTED_NODE] = json!(node);
                        Ok(())
                    });
                    if let Err(e) = selected {
                        tracing::debug!(claim = %claim, error = %e.message, "cannot record the selected node");
                    }
                }
                let result = client.bind(&namespace, &name, Some(&uid), &node);
                let rv = match result {
                    Ok(stored) => {
                        let rv = rv_of(&stored);
                        events::record(
                            client,
                            &pod_ref_object(&namespace, &name, &uid, Some(&stored)),
                            Kind::Normal,
                            message::EVENT_SCHEDULED,
                            &message::scheduled_event_message(&namespace, &name, &node),
                            source,
                        );
                        Some(rv)
                    }
                    Err(e) => {
                        tracing::debug!(pod = %name, error = %e.message, "binding failed");
                        None
                    }
                };
                vec![Outcome::Bound {
                    uid,
                    namespace,
                    name,
                    rv,
                    started,
                }]
            }),
        );
    }

    fn preempt(
        &mut self,
        preemptor: &PodRequirements,
        plan: &sparkyard_scheduling::PreemptionPlan,
        now: DateTime<Utc>,
    ) {
        let text = plan.victim_event_message(&preemptor.uid);
        let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let victims: Vec<_> = plan
            .victims
            .iter()
            .filter(|v| !v.already_terminating)
            .map(|v| v.pod.clone())
            .collect();
        let cleared = plan.clear_nominated.clone();
        for r in &cleared {
            if let Some(p) = self.pending.get_mut(&r.uid) {
                let old = p.req.nominated_node_name.take();
                renominate(&mut self.nominated, &r.uid, old.as_deref(), None);
            }
            self.activate(&r.uid);
        }
        let uids: Vec<String> = victims
            .iter()
            .chain(&cleared)
            .map(|r| r.uid.clone())
            .collect();
        let uids: Vec<&str> = uids.iter().map(String::as_str).collect();
        // kube-scheduler's prepareCandidate: for each victim the DisruptionTarget
        // condition, the deletion and the Preempted event; then the lower-priority
        // nominations on the node are cleared.
        self.submit(
            &uids,
            Box::new(move |client, source| {
                let mut out = Vec::new();
                for v in victims {
                    let marked = client.update_status(PODS, &v.namespace, &v.name, |p| {
                        if uid_of(p) != v.uid {
                            return Err(ApiError::conflict("", "pods", &v.name));
                        }
                        set_condition(p, message::disruption_target_condition(&at));
                        Ok(())
                    });
                    let mut rv = None;
                    if marked.is_ok() {
                        let opts = DeleteOptions {
                            precondition_uid: Some(v.uid.clone()),
                            ..Default::default()
                        };
                        match client.delete_with(PODS, &v.namespace, &v.name, &opts) {
                            Ok(after) => {
                                if after.pointer("/metadata/deletionTimestamp").is_some() {
                                    rv = Some(rv_of(&after));
                                }
                                events::record(
                                    client,
                                    &pod_ref_object(&v.namespace, &v.name, &v.uid, None),
                                    Kind::Normal,
                                    message::EVENT_PREEMPTED,
                                    &text,
                                    source,
                                );
                            }
                            Err(e) => {
                                tracing::debug!(pod = %v.name, error = %e.message, "victim not deleted")
                            }
                        }
                    }
                    out.push(Outcome::Wrote {
                        uid: v.uid,
                        namespace: v.namespace,
                        name: v.name,
                        rv,
                    });
                }
                for r in cleared {
                    let result = client.update_status(PODS, &r.namespace, &r.name, |p| {
                        if uid_of(p) != r.uid {
                            return Err(ApiError::conflict("", "pods", &r.name));
                        }
                        if let Some(status) = p["status"].as_object_mut() {
                            status.remove("nominatedNodeName");
                        }
                        Ok(())
                    });
                    out.push(Outcome::Wrote {
                        uid: r.uid,
                        namespace: r.namespace,
                        name: r.name,
                        rv: result.ok().map(|stored| rv_of(&stored)),
                    });
                }
                out
            }),
        );
    }

    fn unschedulable(&mut self, req: &PodRequirements, text: &str, nomination: &Nomination) {
        let key = req.key();
        let nominated = match nomination {
            Nomination::Keep => req.nominated_node_name.clone(),
            Nomination::Clear => None,
            Nomination::Set(n) => Some(n.clone()),
        };
        let now = Instant::now();
        let (seq, node_seq) = (self.seq, self.node_seq);
        if let Some(p) = self.pending.get_mut(&key) {
            p.attempts += 1;
            renominate(
                &mut self.nominated,
                &key,
                p.req.nominated_node_name.as_deref(),
                nominated.as_deref(),
            );
            p.req.nominated_node_name = nominated.clone();
            p.state = State::Unschedulable {
                seq,
                node_seq,
                retry_at: now + backoff(p.attempts),
                failed_at: now,
            };
        }
        let report = (text.to_string(), nominated.clone());
        let previous = self.reported.insert(key.clone(), report.clone());
        if previous.as_ref() == Some(&report) {
            return; // same message, same nomination: nothing new to tell
        }
        let message_changed = previous.map(|r| r.0) != Some(report.0);
        let (uid, namespace, name, text) = (
            req.uid.clone(),
            req.namespace.clone(),
            req.name.clone(),
            text.to_string(),
        );
        self.submit(
            &[&key],
            Box::new(move |client, source| {
                let at = now_rfc3339();
                let result = client.update_status(PODS, &namespace, &name, |p| {
                    if uid_of(p) != uid {
                        return Err(ApiError::conflict("", "pods", &name));
                    }
                    set_condition(p, message::unschedulable_condition(&text, &at));
                    match &nominated {
                        Some(n) => p["status"]["nominatedNodeName"] = json!(n),
                        None => {
                            if let Some(status) = p["status"].as_object_mut() {
                                status.remove("nominatedNodeName");
                            }
                        }
                    }
                    if p["status"]["phase"].is_null() {
                        p["status"]["phase"] = json!("Pending");
                    }
                    Ok(())
                });
                let rv = match result {
                    Ok(stored) => {
                        if message_changed {
                            events::record(
                                client,
                                &pod_ref_object(&namespace, &name, &uid, Some(&stored)),
                                Kind::Warning,
                                message::EVENT_FAILED_SCHEDULING,
                                &text,
                                source,
                            );
                        }
                        Some(rv_of(&stored))
                    }
                    Err(_) => None,
                };
                vec![Outcome::Wrote {
                    uid,
                    namespace,
                    name,
                    rv,
                }]
            }),
        );
    }
}

/// Runs the scheduler until the process ends.
pub async fn run(client: Client) {
    let (outcomes_tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let mut s = Scheduler::new(client, outcomes_tx);
    // Where each watch resumes after its stream ended (it fell behind the live channel).
    let mut resume: Option<(u64, u64, u64)> = None;
    loop {
        let (pods_from, nodes_from, claims_from) = match resume {
            Some(r) => r,
            None => {
                let rv = s.resync();
                (rv, rv, rv)
            }
        };
        let (Ok(pods), Ok(nodes), Ok(claims)) = (
            s.client.watch(PODS, Some(pods_from)),
            s.client.watch(NODES, Some(nodes_from)),
            s.client.watch(PVCS, Some(claims_from)),
        ) else {
            // Too far behind for the history: start over from a list.
            resume = None;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut at = (pods_from, nodes_from, claims_from);
        // Each stream ends with `None` when it falls behind; `select` alone would carry
        // on with the other one, leaving the picture silently stale.
        let ended = || futures::stream::once(async { None });
        let mut stream = futures::stream::select(
            futures::stream::select(
                Box::pin(pods.map(Some).chain(ended())),
                Box::pin(nodes.map(Some).chain(ended())),
            ),
            Box::pin(claims.map(Some).chain(ended())),
        );
        'watch: loop {
            // Wait for work: an event, or the next retry check while pods are waiting.
            if s.active.is_empty() {
                let wait = if s.pending.is_empty() {
                    Duration::from_secs(3600)
                } else {
                    FLUSH_EVERY
                };
                let next = futures::future::select(stream.next(), Box::pin(outcomes.recv()));
                match tokio::time::timeout(wait, next).await {
                    Ok(Either::Left((Some(Some(event)), _))) => {
                        track(&event, &mut at);
                        s.apply_event(&event);
                    }
                    Ok(Either::Left(_)) => break 'watch,
                    Ok(Either::Right((Some(outcome), _))) => s.landed(outcome),
                    Ok(Either::Right((None, _))) | Err(_) => {}
                }
            }
            // How the writes went, then everything already queued, without waiting.
            while let Ok(outcome) = outcomes.try_recv() {
                s.landed(outcome);
            }
            for _ in 0..EVENT_BATCH {
                match futures::FutureExt::now_or_never(stream.next()) {
                    Some(Some(Some(event))) => {
                        track(&event, &mut at);
                        s.apply_event(&event);
                    }
                    Some(_) => break 'watch,
                    None => break,
                }
            }
            s.flush_unschedulable(Instant::now());
            let scheduled = s.cycle();
            metrics::update_pending(&s);
            if scheduled > 0 {
                // Let the registry's other watchers and this runtime's timers run.
                tokio::task::yield_now().await;
            }
        }
        resume = Some(at);
    }
}

/// Where each watch resumes: (pods, nodes, claims).
fn track(event: &Event, at: &mut (u64, u64, u64)) {
    match event.resource.plural {
        "pods" => at.0 = event.resource_version,
        "nodes" => at.1 = event.resource_version,
        _ => at.2 = event.resource_version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkyard_scheduling::queue_order;

    #[test]
    fn queue_keys_sort_like_queue_order() {
        let pod = |name: &str, prio: i64, created: &str| {
            PodRequirements::from_pod(&json!({"metadata": {"name": name, "namespace": "ns",
                "uid": name, "creationTimestamp": created}, "spec": {"priority": prio}}))
            .unwrap()
        };
        let mut pods = [
            pod("old-low", 0, "2024-01-01T00:00:00Z"),
            pod("new-high", 100, "2024-01-02T00:00:00Z"),
            pod("old-high", 100, "2024-01-01T00:00:00Z"),
            pod("b-same", 100, "2024-01-02T00:00:00Z"),
        ];
        let mut keys: Vec<QueueKey> = pods.iter().map(QueueKey::of).collect();
        keys.sort();
        pods.sort_by(queue_order);
        let by_key: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        let by_order: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(by_key, by_order);
        assert_eq!(by_key, ["old-high", "b-same", "new-high", "old-low"]);
    }

    #[test]
    fn status_only_updates_are_not_scheduling_changes() {
        let a = json!({"metadata": {"generation": 1}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        let mut b = a.clone();
        b["status"]["conditions"][0]["status"] = json!("False");
        b["status"]["podIP"] = json!("10.0.0.1");
        assert!(same_for_scheduling(&a, &b));
        let mut c = a.clone();
        c["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "DisruptionTarget", "status": "True"}));
        assert!(!same_for_scheduling(&a, &c));
        let mut d = a.clone();
        d["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert!(!same_for_scheduling(&a, &d));
        assert!(!same_but_phase(&a, &d));
        let mut e = a.clone();
        e["status"]["phase"] = json!("Failed");
        assert!(!same_for_scheduling(&a, &e));
        assert!(
            same_but_phase(&a, &e),
            "a phase change alone is read without a parse"
        );
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(5), Duration::from_secs(10));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }
}
