//! The **shared** policy: one EKS cluster — a managed node group of fixed size plus
//! Karpenter NodePools — that every job runs on, driven by the decisions the embedded
//! cluster itself takes:
//!
//! - **pod placement and preemption**: `sparkyard_scheduling`'s [`Snapshot`], kept
//!   incrementally as the live kube-scheduler keeps it (`upsert_node` / `remove_node`,
//!   `assume` on every decision, `remove_pod` when a pod ends), pending pods tried in
//!   [`queue_order`], victims of a
//!   [`PreemptionPlan`](sparkyard_scheduling::PreemptionPlan) deleted;
//! - **launches**: `sparkyard_provisioning::schedule` over the provisionable pods, the
//!   state nodes (in-flight ones included) and the NodePools, on Karpenter's batch
//!   boundaries (1 s idle, 10 s at most) — `karpenter.rs`;
//! - **scale-down**: `sparkyard_provisioning::disruption` (expiry, emptiness,
//!   consolidation) every 10 s while Karpenter has nodes — `karpenter.rs`.
//!
//! The loop is a discrete-event simulation over a heap of timed events; after every
//! instant's events, one scheduling pass tries the pods that could have become
//! schedulable (new pods; all pending pods when capacity was freed or a node joined).
//! Pods that share a constraint set, request and priority fail together: once one of
//! them failed without a preemption, the rest of the pass skips them (the cluster only
//! fills up within a pass, so they would fail too).
//!
//! The loop and the cluster's state are here; the handlers live beside it: `pods` (jobs'
//! attempts, pods, tasks, billing), `scheduling` (kube-scheduler's passes), `nodes` (node
//! lifecycle, spot interruptions) and `karpenter` (batches, launches, disruption).
//!
//! # Job model
//!
//! Submission → `timing.submit` → the driver pod is created → scheduled → running after
//! the image pull (a node's first EMR pod; node group nodes have the image) and
//! `timing.container_start` → it creates every executor pod at once → each running
//! executor takes tasks from the job's queue, one per slot → the job ends when every task
//! is done, and all its pods end with it.
//!
//! A deleted executor (preempted, evicted by Karpenter, or on an interrupted spot node)
//! stops at once: its running tasks go back to the queue (Spark reruns a lost executor's
//! tasks). It holds its resources for `timing.pod_exit`, then the driver requests a
//! replacement. A deleted driver fails the job's attempt: its executors are deleted and,
//! if `max_attempts` allows, the job is submitted again from scratch (EMR on EKS's retry
//! policy), otherwise it counts as failed. The wait of a retried job runs to its first
//! driver start; its completion to the end of the attempt that succeeded.
//!
//! # Cost
//!
//! EC2: every node from launch to termination at the catalog price for its capacity type
//! and zone, per second with a one-minute minimum. EMR on EKS: per pod, from binding
//! (EMR bills from the image download) to the pod's end, with `sparkyard_cost::cost_of_pod`
//! (requested vCPU and GB, seconds rounded up) — the live cost records' function. The same
//! call gives each pod's share of its node's EC2 price, which is how EC2 is attributed to
//! categories; what no pod accounts for is idle capacity.

mod karpenter;
mod nodes;
mod pods;
mod scheduling;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sparkyard_cost::{NodeShape, PodUsage, Rates};
use sparkyard_instance_types::InstanceType;
use sparkyard_provisioning::{InstanceOption, NodePoolSpec};
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{
    queue_order, Decision, NodeConfig, NodeInfo, Nomination, PodRequirements, Snapshot,
};

use super::arrivals::Job;
use super::metrics::{JobOutcome, PolicyRun};
use super::units::{Millis, HOUR};
use super::workload::{PodShape, Workload, WorkloadError};

/// A pod slot in the slab, with the serial that tells a live pod from a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PodKey {
    slot: u32,
    serial: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival(u32),
    /// The job runner's spark-submit creates the driver of this attempt.
    DriverCreated {
        job: u32,
        attempt: u32,
    },
    /// A bound pod's container started.
    Running(PodKey),
    /// One of an executor's tasks ended (its duration identifies it).
    TaskDone(PodKey, u32),
    /// A deleted pod exited and released its resources.
    Exited(PodKey),
    NodeReady(usize),
    NodeGone(usize),
    SpotInterruption(usize),
    /// Karpenter's batch window closed (the batch's number).
    Provision(u64),
    Disruption,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Driver,
    Executor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Bound,
    /// Deleted, still holding its node's resources until it exits.
    Terminating,
}

#[derive(Debug, Clone)]
struct Pod {
    serial: u64,
    req: PodRequirements,
    job: u32,
    attempt: u32,
    role: Role,
    phase: Phase,
    node: Option<usize>,
    bound_at: Millis,
    running: bool,
    /// Durations of the tasks it runs now.
    tasks: Vec<u32>,
    /// kube-scheduler found no node and did not nominate one: Karpenter's to provision for.
    provisionable: bool,
    /// Where Karpenter's last pass planned it (node id), kept while that still holds.
    karpenter_target: Option<usize>,
    do_not_disrupt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    /// Before the attempt's driver exists.
    Submitting,
    Active,
    Settled,
}

/// A job's progress through its attempts.
#[derive(Debug, Clone)]
struct Run {
    attempt: u32,
    state: RunState,
    driver: Option<usize>,
    executors: Vec<usize>,
    /// Tasks not yet started, handed out from the end.
    queue: Vec<u32>,
    done: usize,
    executors_created: u32,
}

/// A node: the node group's or one Karpenter launched.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    info: NodeInfo,
    /// Index into the NodePools; `None` for the node group.
    pool: Option<usize>,
    instance_type: &'static InstanceType,
    zone: String,
    capacity_type: CapacityType,
    shape: NodeShape,
    launched: Millis,
    ready: Option<Millis>,
    gone: Option<Millis>,
    deleting: bool,
    /// Job pods bound here (terminating ones until they exit).
    pods: Vec<usize>,
    last_pod_event: Millis,
    /// When the EMR image is on the node.
    image_ready: Option<Millis>,
    /// A consolidation replacement: the node to delete once this one is ready.
    replaces: Option<usize>,
    /// `launch_choice`'s $/h for this node.
    price: f64,
}

/// Why a running pod is being deleted (what the report counts it as).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletion {
    Preempted,
    Interrupted,
    Disrupted,
}

pub(crate) struct Sim<'a> {
    w: &'a Workload,
    jobs: &'a [Job],
    rates: Rates,
    now: Millis,
    seq: u64,
    events: BinaryHeap<Reverse<(Millis, u64, Event)>>,
    snapshot: Snapshot,
    pods: Vec<Option<Pod>>,
    free_slots: Vec<usize>,
    serial: u64,
    uid_slot: HashMap<String, usize>,
    /// Pending pods (slots), in slot order.
    pending: BTreeSet<usize>,
    /// Pods to try in the next pass though nothing was freed (new or re-activated).
    fresh: Vec<usize>,
    /// Capacity was freed or added: try every pending pod in the next pass.
    retry_all: bool,
    nodes: Vec<Node>,
    /// Nodes not gone (launched or up), by id: what every pass over nodes walks, since
    /// `nodes` keeps every node the month ever had.
    alive: BTreeSet<usize>,
    node_index: HashMap<String, usize>,
    /// Per category and role: the pod as its template makes it.
    templates: Vec<[PodRequirements; 2]>,
    daemon: PodRequirements,
    pools: Vec<NodePoolSpec>,
    instance_types: Vec<InstanceOption>,
    /// Karpenter's open batch: (first trigger, batch number).
    batch: Option<Millis>,
    batch_number: u64,
    disruption_scheduled: bool,
    /// Bumped on every bind, unbind and node change (consolidation's memo).
    state_version: u64,
    consolidation_memo: Option<(u64, usize)>,
    launches: u64,
    runs: Vec<Run>,
    settled: usize,
    out: PolicyRun,
}

/// A pod template's `PodRequirements`, read by the scheduling crate from the pod object
/// as a pod template would produce it.
fn template(shape: &PodShape, namespace: &str, name: &str) -> PodRequirements {
    let pod = json!({
        "metadata": {"name": name, "namespace": namespace, "uid": name},
        "spec": shape.pod_spec(),
    });
    PodRequirements::from_pod(&pod).expect("the workload's quantities were checked")
}

fn daemon_template(w: &Workload) -> PodRequirements {
    let pod = json!({
        "metadata": {"name": "daemons", "namespace": "kube-system", "uid": "daemons"},
        "spec": {"priority": 2_000_001_000i64, "containers": [{"name": "daemons", "resources": {"requests": {
            "cpu": format!("{}m", w.shared.daemonset_cpu_millis),
            "memory": w.shared.daemonset_memory_bytes.to_string()}}}]},
    });
    PodRequirements::from_pod(&pod).expect("checked quantities")
}

fn node_group_info(w: &Workload, name: &str) -> (NodeInfo, &'static InstanceType) {
    let g = &w.shared.node_group;
    let it = sparkyard_instance_types::get(&g.instance_type).expect("checked instance type");
    let mut cfg = NodeConfig {
        name: name.to_string(),
        zone: format!("{}a", w.region),
        capacity_type: if g.spot {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        },
        nodegroup: Some(g.name.clone()),
        labels: g.labels.clone(),
        taints: g
            .taints
            .iter()
            .filter_map(sparkyard_scheduling::Taint::from_json)
            .collect(),
        simulated: true,
        ..NodeConfig::default()
    };
    it.apply_to(&mut cfg);
    (cfg.node_info().expect("a valid node group node"), it)
}

/// Every driver and executor must fit somewhere: an empty node group node, or a node
/// some NodePool can launch.
pub fn check_fits(w: &Workload) -> Result<(), WorkloadError> {
    let daemon = daemon_template(w);
    let (group, _) = node_group_info(w, "check");
    let mut usage = sparkyard_scheduling::NodeUsage::default();
    usage.add(&daemon);
    let pools: Vec<NodePoolSpec> = w
        .shared
        .node_pools
        .iter()
        .map(NodePoolSpec::from_nodepool)
        .collect();
    let types = sparkyard_provisioning::instance_options(&w.region, &[]);
    for (i, c) in w.categories.iter().enumerate() {
        for (role, shape) in [("driver", &c.driver), ("executors", &c.executors)] {
            let pod = template(shape, &c.name, "check");
            if w.shared.node_group.count > 0
                && sparkyard_scheduling::fits(&pod, &group, &usage).is_ok()
            {
                continue;
            }
            let result = sparkyard_provisioning::schedule(&sparkyard_provisioning::ScheduleInput {
                pools: &pools,
                nodes: &[],
                pods: std::slice::from_ref(&pod),
                daemonsets: std::slice::from_ref(&daemon),
                instance_types: &types,
                right_size: false,
            });
            if let Some(e) = result.errors.first() {
                return Err(WorkloadError {
                    path: format!("categories[{i}].{role}"),
                    message: format!(
                        "{}m CPU / {} MiB fits no node group node and no NodePool can launch a node for it (Karpenter: {})",
                        shape.cpu_millis,
                        shape.memory_bytes >> 20,
                        e.message
                    ),
                });
            }
        }
    }
    Ok(())
}

impl<'a> Sim<'a> {
    pub(crate) fn new(w: &'a Workload, jobs: &'a [Job]) -> Sim<'a> {
        let templates = w
            .categories
            .iter()
            .map(|c| {
                [
                    template(&c.driver, &c.name, "driver"),
                    template(&c.executors, &c.name, "executor"),
                ]
            })
            .collect();
        let mut sim = Sim {
            w,
            jobs,
            rates: sparkyard_cost::rates::emr_on_eks(&w.region).0,
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            snapshot: Snapshot::new(),
            pods: Vec::new(),
            free_slots: Vec::new(),
            serial: 0,
            uid_slot: HashMap::new(),
            pending: BTreeSet::new(),
            fresh: Vec::new(),
            retry_all: false,
            nodes: Vec::new(),
            alive: BTreeSet::new(),
            node_index: HashMap::new(),
            templates,
            daemon: daemon_template(w),
            pools: w
                .shared
                .node_pools
                .iter()
                .map(NodePoolSpec::from_nodepool)
                .collect(),
            instance_types: sparkyard_provisioning::instance_options(&w.region, &[]),
            batch: None,
            batch_number: 0,
            disruption_scheduled: false,
            state_version: 0,
            consolidation_memo: None,
            launches: 0,
            runs: Vec::new(),
            settled: 0,
            out: PolicyRun::new(jobs.len(), w.categories.len()),
        };
        for i in 0..w.shared.node_group.count {
            let name = format!("{}-{}", w.shared.node_group.name, i + 1);
            let (info, it) = node_group_info(w, &name);
            let zone = info.labels[sparkyard_scheduling::node::LABEL_ZONE].clone();
            let capacity_type = if w.shared.node_group.spot {
                CapacityType::Spot
            } else {
                CapacityType::OnDemand
            };
            let id = sim.add_node(info, None, it, zone, capacity_type, None);
            // Long-lived nodes: the image is there and they are up from the start.
            sim.nodes[id].image_ready = Some(0);
            sim.node_ready(id);
        }
        sim
    }

    fn at(&self, ms: Millis) -> DateTime<Utc> {
        self.w.start + chrono::Duration::milliseconds(ms)
    }

    fn push(&mut self, at: Millis, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    fn pod(&self, slot: usize) -> &Pod {
        self.pods[slot].as_ref().expect("a live pod slot")
    }

    fn pod_mut(&mut self, slot: usize) -> &mut Pod {
        self.pods[slot].as_mut().expect("a live pod slot")
    }

    fn key(&self, slot: usize) -> PodKey {
        PodKey {
            slot: slot as u32,
            serial: self.pod(slot).serial,
        }
    }

    /// The live pod a key names, if it is still that pod.
    fn live(&self, key: PodKey) -> Option<usize> {
        let slot = key.slot as usize;
        match &self.pods[slot] {
            Some(p) if p.serial == key.serial => Some(slot),
            _ => None,
        }
    }

    /// Runs to the last job's end (or the drain limit) and returns the outcome.
    pub(crate) fn run(mut self) -> PolicyRun {
        self.runs = self
            .jobs
            .iter()
            .map(|_| Run {
                attempt: 0,
                state: RunState::Submitting,
                driver: None,
                executors: Vec::new(),
                queue: Vec::new(),
                done: 0,
                executors_created: 0,
            })
            .collect();
        for j in self.jobs {
            self.out.jobs[j.id as usize] = JobOutcome {
                category: j.category,
                submit: j.submit,
                ..JobOutcome::default()
            };
            self.push(j.submit, Event::Arrival(j.id));
        }
        let stop = self.w.duration + self.w.drain_limit;
        // Once every job has settled, the loop runs on only while Karpenter still has
        // nodes to scale down (at most an hour more): they are billed until they go.
        let mut settled_at = None;
        while let Some(Reverse((t, _, event))) = self.events.pop() {
            if t > stop || settled_at.is_some_and(|s: Millis| t > s.max(self.w.duration) + HOUR) {
                break;
            }
            self.now = t;
            self.handle(event);
            if settled_at.is_none() && self.settled == self.jobs.len() {
                settled_at = Some(t);
            }
            let instant_over = self
                .events
                .peek()
                .is_none_or(|Reverse((next, ..))| *next > t);
            if instant_over {
                self.scheduling_pass();
            }
            let karpenter_nodes = self.alive.iter().any(|&n| self.nodes[n].pool.is_some());
            if settled_at.is_some() && !karpenter_nodes {
                break;
            }
        }
        let horizon = match settled_at {
            Some(t) => t.max(self.w.duration),
            None => stop,
        };
        self.finish(horizon)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrival(job) => {
                let at = self.now + self.w.timing.submit;
                self.runs[job as usize].attempt = 1;
                self.out.jobs[job as usize].attempts = 1;
                self.push(at, Event::DriverCreated { job, attempt: 1 });
            }
            Event::DriverCreated { job, attempt } => {
                let run = &self.runs[job as usize];
                if run.attempt == attempt && run.state == RunState::Submitting {
                    self.start_attempt(job);
                }
            }
            Event::Running(key) => {
                if let Some(slot) = self.live(key) {
                    self.container_started(slot);
                }
            }
            Event::TaskDone(key, task) => {
                if let Some(slot) = self.live(key) {
                    self.task_done(slot, task);
                }
            }
            Event::Exited(key) => {
                if let Some(slot) = self.live(key) {
                    self.exited(slot);
                }
            }
            Event::NodeReady(id) => {
                if self.nodes[id].gone.is_none() && self.nodes[id].ready.is_none() {
                    self.node_ready(id);
                }
            }
            Event::NodeGone(id) => self.node_gone(id),
            Event::SpotInterruption(id) => self.spot_interruption(id),
            Event::Provision(number) => {
                if number == self.batch_number {
                    self.batch = None;
                    self.provision();
                }
            }
            Event::Disruption => self.disruption_tick(),
        }
    }

    /// Closes the books at `horizon`: pods still running and nodes still up are billed
    /// to it, unsettled jobs counted.
    fn finish(mut self, horizon: Millis) -> PolicyRun {
        // The node group runs to the horizon; Karpenter's nodes still up (the drain was
        // cut short) to now, if that is later.
        let end = self.now.max(horizon);
        self.now = end;
        let live: Vec<usize> = (0..self.pods.len())
            .filter(|&s| {
                self.pods[s]
                    .as_ref()
                    .is_some_and(|p| p.phase != Phase::Pending)
            })
            .collect();
        for slot in live {
            self.release(slot);
        }
        for id in std::mem::take(&mut self.alive) {
            let at = if self.nodes[id].pool.is_none() {
                horizon
            } else {
                end
            };
            self.nodes[id].gone = Some(at);
            self.bill_node(id, at);
        }
        self.out.eks_usd = self.w.shared.control_plane_usd_per_hour * horizon as f64 / HOUR as f64;
        self.out.unfinished = (self.jobs.len() - self.settled) as u64;
        self.out.horizon = horizon;
        self.out
    }
}

/// Runs the jobs on the shared cluster.
pub fn simulate(w: &Workload, jobs: &[Job]) -> PolicyRun {
    Sim::new(w, jobs).run()
}
