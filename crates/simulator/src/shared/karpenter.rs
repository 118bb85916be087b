//! Karpenter in the shared policy: the provisioner on batch boundaries and the disruption
//! loop, both calling `sparkyard_provisioning` as the live controllers do.
//!
//! **Provisioning.** A pod that kube-scheduler leaves pending without a nomination opens
//! (or extends) a batch: it closes 1 s after the last such pod, or 10 s after the first
//! (Karpenter's `BATCH_IDLE_DURATION` / `BATCH_MAX_DURATION`). Then, as the live
//! provisioner does: the state nodes (every node, in-flight ones uninitialized), the
//! provisionable pods — less those still nominated to an in-flight node that can hold them
//! — and the pools (with their usage, for limits) go to [`schedule`]; each new claim with
//! a launch choice becomes a node of that type, zone and capacity type, Ready
//! `policies.shared.boot` later, labelled by [`node_labels`].
//!
//! **Spot interruptions.** A spot node's interruption time is drawn at launch from an
//! exponential distribution with `spot_interruptions_per_node_hour` (its own seeded
//! stream per launch). At that time the node is cordoned and its pods deleted (Karpenter
//! drains on the two-minute notice); the instance ends when they have exited.
//!
//! **Disruption**, every 10 s while Karpenter has nodes, Karpenter's order: [`expired`]
//! (forceful), [`emptiness`], then single-node [`consolidation`] (delete, or replace with
//! a cheaper node: it is launched, the candidate cordoned, and deleted once the
//! replacement is Ready). Calls are skipped when a cheap look shows they cannot act: no
//! node past `expireAfter`, none empty past `consolidateAfter`, no consolidation
//! candidate, or nothing changed since consolidation last found nothing. Nodes the last
//! provisioning pass planned pending pods onto are nominated (not disrupted), as the live
//! controller marks them. A node whose pods provably could not go anywhere (see
//! `could_consolidate`) is not offered as a consolidation candidate either (marked
//! nominated): a necessary condition, so no decision changes, but each candidate costs a
//! full scheduling simulation — three quarters of a month's run time.

use std::collections::BTreeSet;

use rand::RngExt;
use sparkyard_provisioning::disruption::{
    self, consolidation, emptiness, expired, DisruptionInput, NodeState, PodOnNode,
};
use sparkyard_provisioning::{
    node_labels, schedule, ConsolidationPolicy, NewClaim, ScheduleInput, StateNode, Usage,
};
use sparkyard_scheduling::filter::NodeUsage;
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::{NodeConfig, PodRequirements};

use super::{Deletion, Event, Sim};
use crate::arrivals::{stream, SPOT};
use crate::units::{Millis, HOUR, SECOND};

/// Free room on the schedulable nodes: (cpu, memory) in total and per node.
#[derive(Default)]
struct Room {
    total: (i64, i64),
    nodes: Vec<(usize, i64, i64)>,
}

pub(super) const DISRUPTION_INTERVAL: Millis = 10 * SECOND;
const BATCH_IDLE: Millis = SECOND;
const BATCH_MAX: Millis = 10 * SECOND;

fn millis(d: std::time::Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as Millis
}

impl Sim<'_> {
    pub(super) fn trigger_provisioning(&mut self) {
        if self.pools.is_empty() {
            return;
        }
        let first = *self.batch.get_or_insert(self.now);
        let close = (self.now + BATCH_IDLE).min(first + BATCH_MAX);
        self.batch_number += 1;
        self.push(close, Event::Provision(self.batch_number));
    }

    /// What a node's pods (daemons included) request.
    fn usage_of(&self, id: usize) -> NodeUsage {
        let mut usage = NodeUsage::default();
        if self.nodes[id].ready.is_some() {
            usage.add(&self.daemon);
        }
        for &slot in &self.nodes[id].pods {
            usage.add(&self.pod(slot).req);
        }
        usage
    }

    /// Karpenter's state nodes: every node not gone, in-flight ones uninitialized.
    fn state_nodes(&self) -> (Vec<StateNode>, Vec<usize>) {
        let ids: Vec<usize> = self.alive.iter().copied().collect();
        let nodes = ids
            .iter()
            .map(|&i| {
                let n = &self.nodes[i];
                StateNode {
                    info: n.info.clone(),
                    usage: self.usage_of(i),
                    initialized: n.ready.is_some(),
                    deleting: n.deleting,
                }
            })
            .collect();
        (nodes, ids)
    }

    /// `status.resources` of each pool: the capacity of its nodes.
    fn update_pool_usage(&mut self) {
        for pool in self.pools.iter_mut() {
            pool.usage = Usage::default();
        }
        for &id in &self.alive {
            let n = &self.nodes[id];
            if let Some(p) = n.pool {
                let c = n.instance_type.capacity();
                let usage = &mut self.pools[p].usage;
                usage.cpu_millis += c.cpu_millis;
                usage.memory_bytes += c.memory_bytes;
                usage.nodes += 1;
            }
        }
    }

    fn provisionable(&self) -> Vec<usize> {
        self.pending
            .iter()
            .copied()
            .filter(|&s| {
                let p = self.pod(s);
                p.provisionable && p.req.nominated_node_name.is_none()
            })
            .collect()
    }

    /// One provisioning pass (the batch closed).
    pub(super) fn provision(&mut self) {
        let candidates = self.provisionable();
        if candidates.is_empty() {
            return;
        }
        let (mut state, ids) = self.state_nodes();
        // Pods Karpenter planned onto a node still booting keep their place there.
        let mut plan = Vec::new();
        for slot in candidates {
            let pod = self.pod(slot);
            let kept = pod.karpenter_target.and_then(|target| {
                let i = ids.iter().position(|&id| id == target)?;
                let s = &state[i];
                (!s.initialized
                    && !s.deleting
                    && sparkyard_scheduling::fits(&pod.req, &s.info, &s.usage).is_ok())
                .then_some(i)
            });
            match kept {
                Some(i) => state[i].usage.add(&pod.req),
                None => plan.push(slot),
            }
        }
        if plan.is_empty() {
            return;
        }
        self.update_pool_usage();
        let pods: Vec<PodRequirements> = plan.iter().map(|&s| self.pod(s).req.clone()).collect();
        let result = schedule(&ScheduleInput {
            pools: &self.pools,
            nodes: &state,
            pods: &pods,
            daemonsets: std::slice::from_ref(&self.daemon),
            instance_types: &self.instance_types,
            right_size: self.w.shared.right_size,
        });
        for placement in &result.existing {
            let id = self.node_index[&placement.node];
            for &i in &placement.pods {
                self.pod_mut(plan[i]).karpenter_target = Some(id);
            }
        }
        for claim in &result.new_claims {
            if let Some(id) = self.launch(claim, None) {
                for &i in &claim.pods {
                    self.pod_mut(plan[i]).karpenter_target = Some(id);
                }
            }
        }
    }

    /// Launches the node a claim describes; Ready after the boot time.
    fn launch(&mut self, claim: &NewClaim, replaces: Option<usize>) -> Option<usize> {
        let launch = claim.launch.as_ref()?;
        let pool = self.pools.iter().position(|p| p.name == claim.pool)?;
        let it = sparkyard_instance_types::get(&launch.instance_type)?;
        self.launches += 1;
        let name = format!("{}-{:06}", claim.pool, self.launches);
        let labels = node_labels(
            &claim.requirements,
            it,
            &launch.zone,
            launch.capacity_type,
            &self.pools[pool],
        );
        let mut config = NodeConfig {
            name,
            zone: launch.zone.clone(),
            capacity_type: launch.capacity_type,
            nodegroup: None,
            labels,
            taints: claim.taints.clone(),
            simulated: true,
            ..NodeConfig::default()
        };
        it.apply_to(&mut config);
        let info = config.node_info().ok()?;
        let id = self.add_node(
            info,
            Some(pool),
            it,
            launch.zone.clone(),
            launch.capacity_type,
            Some(launch.price),
        );
        self.nodes[id].replaces = replaces;
        self.push(self.now + self.w.shared.boot, Event::NodeReady(id));
        let rate = self.w.shared.spot_interruptions_per_node_hour;
        if launch.capacity_type == CapacityType::Spot && rate > 0.0 {
            let mut rng = stream(self.w.seed, &[SPOT, self.launches]);
            let u: f64 = rng.random();
            let after = (-(1.0 - u).ln() / rate * HOUR as f64) as Millis;
            let at = self.now.saturating_add(after.max(1));
            if at <= self.w.duration + self.w.drain_limit {
                self.push(at, Event::SpotInterruption(id));
            }
        }
        Some(id)
    }

    /// Whether consolidation could take a node away (a necessary condition, so skipping
    /// the others changes no decision): **delete** needs each of its pods to fit some
    /// other node's free room and all of them the room in total; **replace** needs them to
    /// fit the room plus the largest instance type offered cheaper than the node — for a
    /// spot node only on-demand offerings count, spot-to-spot replacement being behind
    /// Karpenter's `SpotToSpotConsolidation` gate (off).
    fn could_consolidate(&self, id: usize, room: &Room) -> bool {
        let n = &self.nodes[id];
        let own = self.free_room(id);
        let (room_cpu, room_memory) = (room.total.0 - own.0, room.total.1 - own.1);
        let (mut cpu, mut memory) = (0, 0);
        let mut each_fits = true;
        for &slot in &n.pods {
            let r = &self.pod(slot).req.requests;
            cpu += r.milli_cpu;
            memory += r.memory;
            each_fits &= room
                .nodes
                .iter()
                .any(|&(node, c, m)| node != id && r.milli_cpu <= c && r.memory <= m);
        }
        if each_fits && cpu <= room_cpu && memory <= room_memory {
            return true;
        }
        let spot = n.capacity_type == CapacityType::Spot;
        let (mut best_cpu, mut best_memory) = (0, 0);
        for t in &self.instance_types {
            let cheaper = t.offerings.iter().any(|o| {
                o.available && o.price < n.price && !(spot && o.capacity_type == CapacityType::Spot)
            });
            if cheaper {
                best_cpu = best_cpu.max(t.allocatable.cpu_millis);
                best_memory = best_memory.max(t.allocatable.memory_bytes);
            }
        }
        cpu <= room_cpu + best_cpu && memory <= room_memory + best_memory
    }

    /// The free room of every node consolidation may move pods to (booting ones too, as
    /// Karpenter counts in-flight capacity): the total, and each node's.
    fn room(&self) -> Room {
        let mut room = Room::default();
        for &i in &self.alive {
            let (c, m) = self.free_room(i);
            room.total.0 += c;
            room.total.1 += m;
            if c > 0 && m > 0 {
                room.nodes.push((i, c, m));
            }
        }
        room
    }

    /// Allocatable less requests on a node that is not being deleted.
    fn free_room(&self, id: usize) -> (i64, i64) {
        let n = &self.nodes[id];
        if n.deleting || n.gone.is_some() {
            return (0, 0);
        }
        let u = self.usage_of(id);
        (
            (n.info.allocatable.milli_cpu - u.requested.milli_cpu).max(0),
            (n.info.allocatable.memory - u.requested.memory).max(0),
        )
    }

    /// Disruption's view of a Karpenter node; `offer: false` marks it nominated, which
    /// keeps it from being a candidate.
    fn node_state(&self, id: usize, offer: bool) -> NodeState {
        let n = &self.nodes[id];
        let mut pods: Vec<PodOnNode> = n
            .pods
            .iter()
            .map(|&slot| {
                let p = self.pod(slot);
                PodOnNode {
                    pod: p.req.clone(),
                    daemon: false,
                    mirror: false,
                    statefulset: false,
                    do_not_disrupt: p.do_not_disrupt,
                    pdb_blocked: false,
                }
            })
            .collect();
        if n.ready.is_some() {
            let mut daemon = self.daemon.clone();
            daemon.node_name = Some(n.name.clone());
            pods.push(PodOnNode {
                pod: daemon,
                daemon: true,
                mirror: false,
                statefulset: false,
                do_not_disrupt: false,
                pdb_blocked: false,
            });
        }
        let pool = &self.pools[n.pool.expect("a Karpenter node")];
        NodeState {
            info: n.info.clone(),
            nodeclaim: n.name.clone(),
            pool: pool.name.clone(),
            instance_type: n.instance_type.name.clone(),
            zone: n.zone.clone(),
            capacity_type: n.capacity_type,
            price: n.price,
            pods,
            created: self.at(n.launched),
            initialized: n.ready.map(|t| self.at(t)),
            last_pod_event: Some(self.at(n.last_pod_event)),
            annotations: Default::default(),
            deleting: n.deleting,
            ready: n.ready.is_some(),
            nominated: !offer,
            pool_hash: None,
        }
    }

    /// One round of Karpenter's disruption loop.
    pub(super) fn disruption_tick(&mut self) {
        self.disruption_scheduled = false;
        let now = self.now;
        let karpenter: Vec<usize> = self
            .alive
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].pool.is_some())
            .collect();
        if karpenter.is_empty() {
            return;
        }
        self.disruption_scheduled = true;
        self.push(now + DISRUPTION_INTERVAL, Event::Disruption);

        let (mut any_expired, mut any_empty, mut underused) = (false, false, Vec::new());
        for &id in &karpenter {
            let n = &self.nodes[id];
            if n.deleting || n.ready.is_none() {
                continue;
            }
            let pool = &self.pools[n.pool.expect("Karpenter's")];
            if pool
                .expire_after
                .is_some_and(|d| now - n.launched >= millis(d))
            {
                any_expired = true;
            }
            let settled = pool
                .consolidate_after
                .is_some_and(|d| now - n.last_pod_event >= millis(d));
            if !settled {
                continue;
            }
            if n.pods.is_empty() {
                any_empty = true;
            } else if pool.consolidation_policy == ConsolidationPolicy::WhenEmptyOrUnderutilized
                && !n.pods.iter().any(|&s| self.pod(s).do_not_disrupt)
            {
                underused.push(id);
            }
        }
        let memo = (self.state_version, underused.len());
        let consolidate = !underused.is_empty() && self.consolidation_memo != Some(memo);
        if !(any_expired || any_empty || consolidate) {
            return;
        }
        let room = self.room();
        // Nodes the last provisioning pass planned pending pods onto are nominated, as the
        // live controller marks them: not disrupted while those pods are on their way.
        let targeted: BTreeSet<usize> = self
            .pending
            .iter()
            .filter_map(|&s| self.pod(s).karpenter_target)
            .collect();
        let states: Vec<NodeState> = karpenter
            .iter()
            .map(|&id| {
                let offer = !targeted.contains(&id)
                    && (!underused.contains(&id) || self.could_consolidate(id, &room));
                self.node_state(id, offer)
            })
            .collect();
        let others: Vec<StateNode> = self
            .alive
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].pool.is_none())
            .map(|i| StateNode {
                info: self.nodes[i].info.clone(),
                usage: self.usage_of(i),
                initialized: self.nodes[i].ready.is_some(),
                deleting: self.nodes[i].deleting,
            })
            .collect();
        let pending: Vec<PodRequirements> = self
            .provisionable()
            .into_iter()
            .map(|s| self.pod(s).req.clone())
            .collect();
        self.update_pool_usage();
        let input = DisruptionInput {
            nodes: &states,
            pools: &self.pools,
            other_nodes: &others,
            pending: &pending,
            daemonsets: std::slice::from_ref(&self.daemon),
            instance_types: &self.instance_types,
            now: self.at(now),
            spot_to_spot: false,
        };
        let mut delete = if any_expired {
            expired(&input)
        } else {
            Vec::new()
        };
        if delete.is_empty() && any_empty {
            delete = emptiness(&input);
        }
        let command = if delete.is_empty() && consolidate {
            let c = consolidation(&input);
            if c.is_none() {
                self.consolidation_memo = Some(memo);
            }
            c
        } else {
            None
        };
        for name in delete {
            let id = self.node_index[&name];
            self.delete_node(id, Deletion::Disrupted);
        }
        let Some(command) = command else {
            return;
        };
        let Some(&candidate) = command.nodes.first().map(|n| &self.node_index[n]) else {
            return;
        };
        match (command.decision, &command.replacement) {
            (disruption::Decision::Delete, _) => self.delete_node(candidate, Deletion::Disrupted),
            (disruption::Decision::Replace, Some(claim)) => {
                if self.launch(claim, Some(candidate)).is_some() {
                    // Tainted now, deleted when the replacement is Ready.
                    let node = &mut self.nodes[candidate];
                    node.deleting = true;
                    node.info.unschedulable = true;
                    let info = node.info.clone();
                    self.snapshot.upsert_node(info);
                    self.state_version += 1;
                }
            }
            (disruption::Decision::Replace, None) => {}
        }
    }
}
