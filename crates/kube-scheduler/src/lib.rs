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
//! It watches nodes and pods and keeps a [`Snapshot`] up to date incrementally (one parse
//! per relevant change; status-only updates from kubelets are recognised without parsing).
//! Pending pods wait in a queue ordered by [`queue_order`] (priority, then age). Each cycle
//! takes the head, asks [`Snapshot::schedule`] and carries the decision out with the API
//! server's semantics, in process:
//!
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
//! Decisions are "assumed" into the snapshot before the API writes land; watch events
//! older than the scheduler's own last write to a pod are skipped, so a stale event in
//! flight cannot undo an assumption.
//!
//! The loop runs on its own thread (a current-thread runtime), so that a burst of
//! scheduling work never holds up the API server's worker threads and vice versa.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

use sparkyard_kube_apiserver::conditions::set as set_condition;
use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::{now_rfc3339, Event, EventType, Resource};
use sparkyard_kube_apiserver::{ApiError, Client, DeleteOptions};
use sparkyard_scheduling::message;
use sparkyard_scheduling::{Decision, NodeInfo, Nomination, PodRequirements, Snapshot};

pub mod metrics;

const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");
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

struct Scheduler {
    client: Client,
    source: Source,
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
    /// The resourceVersion of the scheduler's own last write per pod: older events of
    /// that pod are stale (the snapshot already assumed something newer).
    written: HashMap<String, u64>,
    /// The last `FailedScheduling` message (and nomination) reported per pod.
    reported: HashMap<String, (String, Option<String>)>,
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

/// Whether two versions of a pod look the same to the scheduler, judged without parsing
/// them: the spec is covered by `generation` (the registry bumps it on any spec change),
/// the rest by the few metadata and status fields the core reads.
fn same_for_scheduling(a: &Value, b: &Value) -> bool {
    const POINTERS: [&str; 6] = [
        "/metadata/generation",
        "/metadata/deletionTimestamp",
        "/status/phase",
        "/status/nominatedNodeName",
        "/status/startTime",
        "/spec/nodeName",
    ];
    let disruption = |p: &Value| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget").cloned())
    };
    POINTERS.iter().all(|p| a.pointer(p) == b.pointer(p)) && disruption(a) == disruption(b)
}

/// The `involvedObject` of an event about a pod known by reference only.
fn pod_ref_object(namespace: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"namespace": namespace, "name": name, "uid": uid}})
}

fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(8);
    (BACKOFF_INITIAL * 2u32.pow(exp)).min(BACKOFF_MAX)
}

impl Scheduler {
    fn new(client: Client) -> Scheduler {
        Scheduler {
            client,
            source: Source {
                component: DEFAULT_SCHEDULER,
                host: None,
            },
            snapshot: Snapshot::new(),
            nodes: HashMap::new(),
            pending: HashMap::new(),
            active: BTreeSet::new(),
            seq: 0,
            node_seq: 0,
            last_flush: Instant::now(),
            written: HashMap::new(),
            reported: HashMap::new(),
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
        let ready: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                p.state != State::Active && p.req.nominated_node_name.as_deref() == Some(node)
            })
            .map(|(k, _)| k.clone())
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
        }
    }

    /// A pod was added or changed (`previous`: its state before, for MODIFIED).
    fn pod_changed(&mut self, pod: &Value, previous: Option<&Value>) {
        let uid = uid_of(pod);
        let mut after_own_write = false;
        if let Some(&mine) = self.written.get(uid) {
            if rv_of(pod) < mine {
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
        let req = match PodRequirements::from_pod(pod) {
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
                p.req = req;
                if spec_changed {
                    self.activate(&key);
                }
            }
            None => {
                self.active.insert(queue_key.clone());
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
            let req = p.req.clone();
            let started = Instant::now();
            let decision = self.snapshot.schedule(&req);
            let now = Utc::now();
            self.snapshot.assume(&req, &decision, now);
            match decision {
                Decision::Bind { node } => {
                    let bound = self.bind(&req, &node);
                    metrics::attempt(if bound { "scheduled" } else { "error" }, started);
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

    /// Binds the pod; `false` when the binding write failed.
    fn bind(&mut self, req: &PodRequirements, node: &str) -> bool {
        let key = req.key();
        let result = self
            .client
            .bind(&req.namespace, &req.name, Some(&req.uid), node);
        self.forget_pending(&key);
        self.reported.remove(&key);
        match result {
            Ok(stored) => {
                self.written.insert(key, rv_of(&stored));
                let mut involved = stored;
                involved["apiVersion"] = json!("v1");
                involved["kind"] = json!("Pod");
                events::record(
                    &self.client,
                    &involved,
                    Kind::Normal,
                    message::EVENT_SCHEDULED,
                    &message::scheduled_event_message(&req.namespace, &req.name, node),
                    &self.source,
                );
                true
            }
            Err(e) => {
                // Gone, deleted or bound meanwhile: the assumption is void; the pod's own
                // watch events say what it is now.
                tracing::debug!(pod = %req.name, error = %e.message, "binding failed");
                self.snapshot.remove_pod(&key);
                if let Some(current) = self.client.get(PODS, &req.namespace, &req.name) {
                    self.pod_changed(&current, None);
                }
                false
            }
        }
    }

    fn preempt(
        &mut self,
        preemptor: &PodRequirements,
        plan: &sparkyard_scheduling::PreemptionPlan,
        now: DateTime<Utc>,
    ) {
        let text = plan.victim_event_message(&preemptor.uid);
        let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        for victim in plan.victims.iter().filter(|v| !v.already_terminating) {
            let v = &victim.pod;
            let marked = self.client.update_status(PODS, &v.namespace, &v.name, |p| {
                if uid_of(p) != v.uid {
                    return Err(ApiError::conflict("", "pods", &v.name));
                }
                set_condition(p, message::disruption_target_condition(&at));
                Ok(())
            });
            if marked.is_err() {
                continue; // already gone
            }
            events::record(
                &self.client,
                &pod_ref_object(&v.namespace, &v.name, &v.uid),
                Kind::Normal,
                message::EVENT_PREEMPTED,
                &text,
                &self.source,
            );
            let opts = DeleteOptions {
                precondition_uid: Some(v.uid.clone()),
                ..Default::default()
            };
            match self.client.delete_with(PODS, &v.namespace, &v.name, &opts) {
                Ok(after) => {
                    let rv = rv_of(&after);
                    if after.pointer("/metadata/deletionTimestamp").is_some() {
                        self.written.insert(v.uid.clone(), rv);
                    }
                }
                Err(e) => tracing::debug!(pod = %v.name, error = %e.message, "victim not deleted"),
            }
        }
        for r in &plan.clear_nominated {
            let result = self.client.update_status(PODS, &r.namespace, &r.name, |p| {
                if uid_of(p) != r.uid {
                    return Err(ApiError::conflict("", "pods", &r.name));
                }
                if let Some(status) = p["status"].as_object_mut() {
                    status.remove("nominatedNodeName");
                }
                Ok(())
            });
            if let Ok(stored) = result {
                self.written.insert(r.uid.clone(), rv_of(&stored));
            }
            if let Some(p) = self.pending.get_mut(&r.uid) {
                p.req.nominated_node_name = None;
            }
            self.activate(&r.uid);
        }
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
            p.req.nominated_node_name = nominated.clone();
            p.state = State::Unschedulable {
                seq,
                node_seq,
                retry_at: now + backoff(p.attempts),
                failed_at: now,
            };
        }
        let report = (text.to_string(), nominated.clone());
        if self.reported.get(&key) == Some(&report) {
            return; // same message, same nomination: nothing new to tell
        }
        let uid = req.uid.clone();
        let at = now_rfc3339();
        let result = self
            .client
            .update_status(PODS, &req.namespace, &req.name, |p| {
                if uid_of(p) != uid {
                    return Err(ApiError::conflict("", "pods", &req.name));
                }
                set_condition(p, message::unschedulable_condition(text, &at));
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
        let Ok(stored) = result else {
            return;
        };
        self.written.insert(key.clone(), rv_of(&stored));
        if self.reported.get(&key).map(|r| r.0.as_str()) != Some(text) {
            let mut involved = (*stored).clone();
            involved["apiVersion"] = json!("v1");
            involved["kind"] = json!("Pod");
            events::record(
                &self.client,
                &involved,
                Kind::Warning,
                message::EVENT_FAILED_SCHEDULING,
                text,
                &self.source,
            );
        }
        self.reported.insert(key, report);
    }
}

/// Runs the scheduler until the process ends.
pub async fn run(client: Client) {
    let mut s = Scheduler::new(client);
    // Where each watch resumes after its stream ended (it fell behind the live channel).
    let mut resume: Option<(u64, u64)> = None;
    loop {
        let (pods_from, nodes_from) = match resume {
            Some(r) => r,
            None => {
                let rv = s.resync();
                (rv, rv)
            }
        };
        let (Ok(pods), Ok(nodes)) = (
            s.client.watch(PODS, Some(pods_from)),
            s.client.watch(NODES, Some(nodes_from)),
        ) else {
            // Too far behind for the history: start over from a list.
            resume = None;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (mut pods_at, mut nodes_at) = (pods_from, nodes_from);
        // Each stream ends with `None` when it falls behind; `select` alone would carry
        // on with the other one, leaving the picture silently stale.
        let ended = || futures::stream::once(async { None });
        let mut stream = futures::stream::select(
            Box::pin(pods.map(Some).chain(ended())),
            Box::pin(nodes.map(Some).chain(ended())),
        );
        'watch: loop {
            // Wait for work: an event, or the next retry check while pods are waiting.
            if s.active.is_empty() {
                let wait = if s.pending.is_empty() {
                    Duration::from_secs(3600)
                } else {
                    FLUSH_EVERY
                };
                match tokio::time::timeout(wait, stream.next()).await {
                    Ok(Some(Some(event))) => {
                        track(&event, &mut pods_at, &mut nodes_at);
                        s.apply_event(&event);
                    }
                    Ok(_) => break 'watch,
                    Err(_) => {}
                }
            }
            // Apply everything already queued, without waiting.
            for _ in 0..EVENT_BATCH {
                match futures::FutureExt::now_or_never(stream.next()) {
                    Some(Some(Some(event))) => {
                        track(&event, &mut pods_at, &mut nodes_at);
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
        resume = Some((pods_at, nodes_at));
    }
}

fn track(event: &Event, pods_at: &mut u64, nodes_at: &mut u64) {
    match event.resource.plural {
        "pods" => *pods_at = event.resource_version,
        _ => *nodes_at = event.resource_version,
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
