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

    // ---- jobs and pods ------------------------------------------------------------------

    fn start_attempt(&mut self, job: u32) {
        let j = &self.jobs[job as usize];
        let run = &mut self.runs[job as usize];
        run.state = RunState::Active;
        run.queue = j.tasks.iter().rev().copied().collect();
        run.done = 0;
        run.executors.clear();
        run.executors_created = 0;
        let slot = self.create_pod(job, Role::Driver);
        self.runs[job as usize].driver = Some(slot);
    }

    fn create_pod(&mut self, job: u32, role: Role) -> usize {
        let j = &self.jobs[job as usize];
        let c = &self.w.categories[j.category];
        let run = &mut self.runs[job as usize];
        let (mut req, name, do_not_disrupt) = match role {
            Role::Driver => (
                self.templates[j.category][0].clone(),
                format!("j{job:06}-a{}-driver", run.attempt),
                c.driver.do_not_disrupt,
            ),
            Role::Executor => {
                run.executors_created += 1;
                (
                    self.templates[j.category][1].clone(),
                    format!(
                        "j{job:06}-a{}-exec-{:04}",
                        run.attempt, run.executors_created
                    ),
                    c.executors.do_not_disrupt,
                )
            }
        };
        let attempt = run.attempt;
        req.uid = name.clone();
        req.name = name;
        req.creation_timestamp = Some(self.at(self.now));
        self.serial += 1;
        let pod = Pod {
            serial: self.serial,
            req,
            job,
            attempt,
            role,
            phase: Phase::Pending,
            node: None,
            bound_at: 0,
            running: false,
            tasks: Vec::new(),
            provisionable: false,
            karpenter_target: None,
            do_not_disrupt,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.pods[s] = Some(pod);
                s
            }
            None => {
                self.pods.push(Some(pod));
                self.pods.len() - 1
            }
        };
        self.uid_slot.insert(self.pod(slot).req.uid.clone(), slot);
        self.pending.insert(slot);
        self.fresh.push(slot);
        if role == Role::Executor {
            self.runs[job as usize].executors.push(slot);
        }
        slot
    }

    fn bind(&mut self, slot: usize, node: usize, decision: &Decision) {
        let now = self.now;
        let start = self.at(now);
        let pod = self.pods[slot].as_mut().expect("live");
        pod.req.start_time = Some(start);
        self.snapshot.assume(&pod.req, decision, start);
        pod.req.node_name = Some(self.nodes[node].name.clone());
        pod.req.nominated_node_name = None;
        pod.phase = Phase::Bound;
        pod.node = Some(node);
        pod.bound_at = now;
        pod.provisionable = false;
        pod.karpenter_target = None;
        self.pending.remove(&slot);
        let n = &mut self.nodes[node];
        n.pods.push(slot);
        n.last_pod_event = now;
        let image = *n.image_ready.get_or_insert(now + self.w.timing.image_pull);
        let running = image.max(now) + self.w.timing.container_start;
        self.state_version += 1;
        let key = self.key(slot);
        self.push(running, Event::Running(key));
    }

    fn container_started(&mut self, slot: usize) {
        let pod = self.pod(slot);
        if pod.phase != Phase::Bound {
            return;
        }
        let (job, role) = (pod.job, pod.role);
        self.pod_mut(slot).running = true;
        match role {
            Role::Driver => {
                let outcome = &mut self.out.jobs[job as usize];
                outcome.driver_running.get_or_insert(self.now);
                let count = self.w.categories[self.jobs[job as usize].category].executor_count;
                for _ in 0..count {
                    self.create_pod(job, Role::Executor);
                }
            }
            Role::Executor => self.fill(slot),
        }
    }

    /// Hands queued tasks to the executor's free slots.
    fn fill(&mut self, slot: usize) {
        let job = self.pod(slot).job as usize;
        let slots = self.jobs[job].slots_per_executor as usize;
        let key = self.key(slot);
        while self.pod(slot).tasks.len() < slots {
            let Some(task) = self.runs[job].queue.pop() else {
                break;
            };
            self.pod_mut(slot).tasks.push(task);
            let at = self.now + Millis::from(task);
            self.push(at, Event::TaskDone(key, task));
        }
    }

    fn task_done(&mut self, slot: usize, task: u32) {
        let pod = self.pods[slot].as_mut().expect("live");
        if !pod.running {
            return; // lost with its executor; the task went back to the queue
        }
        let Some(i) = pod.tasks.iter().position(|&t| t == task) else {
            return;
        };
        pod.tasks.swap_remove(i);
        let job = pod.job as usize;
        self.runs[job].done += 1;
        if self.runs[job].done == self.jobs[job].tasks.len() {
            self.end_attempt(job as u32, true);
        } else {
            self.fill(slot);
        }
    }

    /// Stops a pod's work: its tasks go back to its job's queue.
    fn stop(&mut self, slot: usize) {
        let pod = self.pods[slot].as_mut().expect("live");
        pod.running = false;
        let tasks = std::mem::take(&mut pod.tasks);
        let job = pod.job as usize;
        if self.runs[job].state == RunState::Active {
            self.runs[job].queue.extend(tasks);
        }
    }

    /// Deletes a bound pod: it stops now and leaves its node `timing.pod_exit` later.
    fn delete_pod(&mut self, slot: usize, why: Deletion) {
        let pod = self.pod(slot);
        if pod.phase != Phase::Bound {
            return;
        }
        let category = self.jobs[pod.job as usize].category;
        let counts = &mut self.out.categories[category];
        match why {
            Deletion::Preempted => counts.preempted_pods += 1,
            Deletion::Interrupted => counts.interrupted_pods += 1,
            Deletion::Disrupted => counts.disrupted_pods += 1,
        }
        self.stop(slot);
        let now = self.at(self.now);
        let pod = self.pod_mut(slot);
        pod.phase = Phase::Terminating;
        pod.req.deletion_timestamp.get_or_insert(now);
        if why != Deletion::Preempted {
            // Preemption's victims were marked by `assume`; evictions are recorded here.
            let req = pod.req.clone();
            self.snapshot.upsert_pod(req);
        }
        let key = self.key(slot);
        self.push(self.now + self.w.timing.pod_exit, Event::Exited(key));
    }

    /// A deleted pod is gone: a lost executor is replaced, a lost driver fails its attempt.
    fn exited(&mut self, slot: usize) {
        let pod = self.pod(slot);
        let (job, attempt, role) = (pod.job, pod.attempt, pod.role);
        self.stop(slot);
        self.release(slot);
        let run = &mut self.runs[job as usize];
        if run.state != RunState::Active || run.attempt != attempt {
            return;
        }
        match role {
            Role::Executor => {
                run.executors.retain(|&s| s != slot);
                self.create_pod(job, Role::Executor);
            }
            Role::Driver => {
                run.driver = None;
                self.end_attempt(job, false);
            }
        }
    }

    /// Ends an attempt: every pod of it ends now. A successful one settles the job; a
    /// failed one is retried while attempts remain.
    fn end_attempt(&mut self, job: u32, success: bool) {
        let run = &mut self.runs[job as usize];
        let pods: Vec<usize> = run
            .driver
            .take()
            .into_iter()
            .chain(run.executors.drain(..))
            .collect();
        run.queue.clear();
        for slot in pods {
            match self.pod(slot).phase {
                Phase::Pending => self.forget(slot),
                Phase::Bound => {
                    self.stop(slot);
                    self.release(slot);
                }
                // Deleted already: leaves when it exits (its exit finds the attempt over).
                Phase::Terminating => {}
            }
        }
        let max_attempts = self.w.max_attempts;
        let category = self.jobs[job as usize].category;
        let run = &mut self.runs[job as usize];
        if success || run.attempt >= max_attempts {
            run.state = RunState::Settled;
            self.settled += 1;
            let outcome = &mut self.out.jobs[job as usize];
            outcome.finished = Some(self.now);
            outcome.failed = !success;
        } else {
            run.attempt += 1;
            run.state = RunState::Submitting;
            let attempt = run.attempt;
            self.out.categories[category].retries += 1;
            self.out.jobs[job as usize].attempts = attempt;
            self.push(
                self.now + self.w.timing.submit,
                Event::DriverCreated { job, attempt },
            );
        }
    }

    /// Drops a pending pod.
    fn forget(&mut self, slot: usize) {
        let pod = self.pods[slot].take().expect("live");
        self.pending.remove(&slot);
        self.uid_slot.remove(&pod.req.uid);
        // A pending pod is tracked only while nominated.
        self.snapshot.remove_pod(&pod.req.uid);
        self.free_slots.push(slot);
    }

    /// A bound (or terminating) pod leaves its node now: it is billed and its resources
    /// are free.
    fn release(&mut self, slot: usize) {
        let pod = self.pods[slot].take().expect("live");
        let node_id = pod.node.expect("bound");
        let now = self.now;
        self.snapshot.remove_pod(&pod.req.uid);
        self.uid_slot.remove(&pod.req.uid);
        self.free_slots.push(slot);
        let node = &mut self.nodes[node_id];
        node.pods.retain(|&s| s != slot);
        node.last_pod_event = now;
        let vcpu = pod.req.requests.milli_cpu as f64 / 1000.0;
        let usage = PodUsage {
            name: String::new(),
            role: match pod.role {
                Role::Driver => "driver".into(),
                Role::Executor => "executor".into(),
            },
            start: self.w.start + chrono::Duration::milliseconds(pod.bound_at),
            end: self.w.start + chrono::Duration::milliseconds(now),
            vcpu,
            memory_bytes: pod.req.requests.memory as f64,
            node: Some(node.shape.clone()),
        };
        let cost = sparkyard_cost::cost_of_pod(&usage, &self.rates);
        let category = self.jobs[pod.job as usize].category;
        let counts = &mut self.out.categories[category];
        counts.emr_usd += cost.emr_usd;
        counts.ec2_usd += cost.ec2_usd;
        self.out.emr_usd += cost.emr_usd;
        self.out.timeline.pod(pod.bound_at, now, vcpu);
        self.state_version += 1;
        self.retry_all = true;
    }

    // ---- scheduling --------------------------------------------------------------------

    /// One pass of kube-scheduler over the pods that may now fit, in queue order.
    fn scheduling_pass(&mut self) {
        let mut order: Vec<usize> = if self.retry_all {
            self.pending.iter().copied().collect()
        } else {
            let mut f: Vec<usize> = self
                .fresh
                .iter()
                .copied()
                .filter(|s| self.pending.contains(s))
                .collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        self.retry_all = false;
        self.fresh.clear();
        if order.is_empty() {
            return;
        }
        order.sort_by(|&a, &b| queue_order(&self.pod(a).req, &self.pod(b).req));
        // (constraint set, cpu, memory, priority) of pods that failed without preempting.
        let mut failed: Vec<(usize, i64, i64, i32)> = Vec::new();
        for slot in order {
            let Some(pod) = &self.pods[slot] else {
                continue;
            };
            if pod.phase != Phase::Pending {
                continue;
            }
            let class = (
                Arc::as_ptr(&pod.req.placement) as usize,
                pod.req.requests.milli_cpu,
                pod.req.requests.memory,
                pod.req.priority,
            );
            let nominated = pod.req.nominated_node_name.is_some();
            if !nominated && failed.contains(&class) {
                self.unschedulable(slot);
                continue;
            }
            let decision = self.snapshot.schedule(&pod.req);
            match &decision {
                Decision::Bind { node } => {
                    let node = self.node_index[node];
                    self.bind(slot, node, &decision);
                }
                Decision::Unschedulable {
                    nomination,
                    preemption,
                    ..
                } => {
                    let now = self.at(self.now);
                    let req = &self.pods[slot].as_ref().expect("live").req;
                    self.snapshot.assume(req, &decision, now);
                    if let Some(plan) = preemption {
                        for v in plan.victims.iter().filter(|v| !v.already_terminating) {
                            if let Some(&victim) = self.uid_slot.get(&v.pod.uid) {
                                self.delete_pod(victim, Deletion::Preempted);
                            }
                        }
                        for r in &plan.clear_nominated {
                            if let Some(&other) = self.uid_slot.get(&r.uid) {
                                self.pod_mut(other).req.nominated_node_name = None;
                                self.fresh.push(other);
                            }
                        }
                    }
                    let pod = self.pod_mut(slot);
                    match nomination {
                        Nomination::Set(n) => {
                            pod.req.nominated_node_name = Some(n.clone());
                            pod.provisionable = false;
                        }
                        Nomination::Clear => pod.req.nominated_node_name = None,
                        Nomination::Keep => {}
                    }
                    if preemption.is_none() {
                        if !nominated {
                            failed.push(class);
                        }
                        self.unschedulable(slot);
                    }
                }
            }
        }
    }

    /// The pod stays pending; without a nomination Karpenter is to provision for it. A
    /// pod already provisioned for triggers again when Karpenter's plan for it did not
    /// hold — it planned the pod onto a node that is up (kube-scheduler still refused it:
    /// nominated preemptors hold the room) or gone — as each failed attempt updates the
    /// live pod's status and so re-triggers the live provisioner.
    fn unschedulable(&mut self, slot: usize) {
        let pod = self.pod(slot);
        if pod.req.nominated_node_name.is_some() {
            return;
        }
        let plan_failed = pod.provisionable
            && pod
                .karpenter_target
                .is_some_and(|n| self.nodes[n].ready.is_some() || self.nodes[n].gone.is_some());
        if !pod.provisionable || plan_failed {
            let pod = self.pod_mut(slot);
            pod.provisionable = true;
            pod.karpenter_target = None;
            self.trigger_provisioning();
        }
    }

    // ---- nodes -------------------------------------------------------------------------

    fn add_node(
        &mut self,
        info: NodeInfo,
        pool: Option<usize>,
        instance_type: &'static InstanceType,
        zone: String,
        capacity_type: CapacityType,
        price: Option<f64>,
    ) -> usize {
        let shape = NodeShape::from_catalog(&info.name, &instance_type.name, capacity_type, &zone)
            .expect("a catalog type");
        let id = self.nodes.len();
        self.alive.insert(id);
        self.node_index.insert(info.name.clone(), id);
        self.nodes.push(Node {
            name: info.name.clone(),
            info,
            pool,
            instance_type,
            zone,
            capacity_type,
            price: price.unwrap_or(shape.price_per_hour),
            shape,
            launched: self.now,
            ready: None,
            gone: None,
            deleting: false,
            pods: Vec::new(),
            last_pod_event: self.now,
            image_ready: None,
            replaces: None,
        });
        self.out.node_launches += 1;
        *self
            .out
            .launches_by_type
            .entry(instance_type.name.clone())
            .or_default() += 1;
        id
    }

    fn node_ready(&mut self, id: usize) {
        let now = self.now;
        let node = &mut self.nodes[id];
        node.ready = Some(now);
        node.last_pod_event = now;
        let info = node.info.clone();
        let mut daemon = self.daemon.clone();
        daemon.uid = format!("daemons-{}", info.name);
        daemon.name = daemon.uid.clone();
        daemon.node_name = Some(info.name.clone());
        self.snapshot.upsert_node(info);
        self.snapshot.upsert_pod(daemon);
        self.retry_all = true;
        self.state_version += 1;
        if let Some(old) = self.nodes[id].replaces.take() {
            self.delete_node(old, Deletion::Disrupted);
        }
        if self.nodes[id].pool.is_some() && !self.disruption_scheduled {
            self.disruption_scheduled = true;
            self.push(now + karpenter::DISRUPTION_INTERVAL, Event::Disruption);
        }
    }

    /// Cordons a node, evicts its pods and terminates it once they have exited.
    fn delete_node(&mut self, id: usize, why: Deletion) {
        let node = &mut self.nodes[id];
        if node.gone.is_some() {
            return;
        }
        node.deleting = true;
        if node.ready.is_none() {
            // Not up yet: nothing runs there.
            self.node_gone(id);
            return;
        }
        node.info.unschedulable = true;
        let info = node.info.clone();
        let pods = node.pods.clone();
        self.snapshot.upsert_node(info);
        let mut wait = 0;
        for slot in pods {
            if self.pod(slot).phase == Phase::Bound {
                self.delete_pod(slot, why);
            }
            wait = self.w.timing.pod_exit;
        }
        self.state_version += 1;
        self.push(self.now + wait, Event::NodeGone(id));
    }

    fn node_gone(&mut self, id: usize) {
        if self.nodes[id].gone.is_some() {
            return;
        }
        // Pods still there (none: their exits came first) go with it.
        for slot in self.nodes[id].pods.clone() {
            self.exited(slot);
        }
        let now = self.now;
        self.alive.remove(&id);
        let node = &mut self.nodes[id];
        node.gone = Some(now);
        node.deleting = true;
        let name = node.name.clone();
        if node.ready.is_some() {
            self.snapshot.remove_pod(&format!("daemons-{name}"));
            self.snapshot.remove_node(&name);
        }
        self.state_version += 1;
        self.bill_node(id, now);
        // A replacement that never came up: its candidate stays (Karpenter un-taints it).
        if let Some(old) = self.nodes[id].replaces.take() {
            self.uncordon(old);
        }
        // Capacity left a pool: pods its limits held back may be launched for now.
        if self.nodes[id].pool.is_some() && self.pending.iter().any(|&s| self.pod(s).provisionable)
        {
            self.trigger_provisioning();
        }
    }

    fn uncordon(&mut self, id: usize) {
        let node = &mut self.nodes[id];
        if node.gone.is_some() || node.ready.is_none() {
            return;
        }
        node.deleting = false;
        node.info.unschedulable = false;
        let info = node.info.clone();
        self.snapshot.upsert_node(info);
        self.retry_all = true;
        self.state_version += 1;
    }

    fn bill_node(&mut self, id: usize, end: Millis) {
        let node = &self.nodes[id];
        let seconds = PolicyRun::bill_instance(self.at(node.launched), self.at(end)) as f64;
        self.out.ec2_usd += node.price * seconds / 3600.0;
        self.out.node_hours += seconds / 3600.0;
        if node.capacity_type == CapacityType::Spot {
            self.out.spot_node_hours += seconds / 3600.0;
        }
        self.out
            .timeline
            .nodes(node.launched, end, 1, f64::from(node.instance_type.vcpu));
        self.out.nodes.push(super::metrics::NodeLife {
            name: node.name.clone(),
            instance_type: node.instance_type.name.clone(),
            spot: node.capacity_type == CapacityType::Spot,
            pool: node.pool.map(|p| self.pools[p].name.clone()),
            launched: node.launched,
            ended: end,
        });
    }

    fn spot_interruption(&mut self, id: usize) {
        if self.nodes[id].gone.is_some() {
            return;
        }
        self.out.spot_interruptions += 1;
        self.delete_node(id, Deletion::Interrupted);
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
