//! The shared policy's nodes: added (node group or Karpenter), ready, deleted (with
//! their pods), gone, billed; spot interruptions.

use super::*;

impl Sim<'_> {
    pub(super) fn add_node(
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

    pub(super) fn node_ready(&mut self, id: usize) {
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
    pub(super) fn delete_node(&mut self, id: usize, why: Deletion) {
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

    pub(super) fn node_gone(&mut self, id: usize) {
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

    pub(super) fn uncordon(&mut self, id: usize) {
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

    pub(super) fn bill_node(&mut self, id: usize, end: Millis) {
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
        self.out.nodes.push(crate::metrics::NodeLife {
            name: node.name.clone(),
            instance_type: node.instance_type.name.clone(),
            spot: node.capacity_type == CapacityType::Spot,
            pool: node.pool.map(|p| self.pools[p].name.clone()),
            launched: node.launched,
            ended: end,
        });
    }

    pub(super) fn spot_interruption(&mut self, id: usize) {
        if self.nodes[id].gone.is_some() {
            return;
        }
        self.out.spot_interruptions += 1;
        self.delete_node(id, Deletion::Interrupted);
    }
}
