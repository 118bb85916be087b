//! Instances: launch, boot (the node registers), terminate (the node goes), spot
//! interruptions, and picking up where a previous run left off.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sparkyard_scheduling::node::{CapacityType, LABEL_EKS_NODEGROUP};
use sparkyard_scheduling::NodeConfig;

use crate::types::{Ec2Error, Ec2Event, Instance, InstanceState, LaunchRequest};
use crate::{ids, podgc, Inner, NODES};

impl Inner {
    pub(crate) fn run_instance(
        self: &Arc<Self>,
        request: LaunchRequest,
        boot_delay: Option<Duration>,
    ) -> Result<Instance, Ec2Error> {
        if sparkyard_instance_types::get(&request.instance_type).is_none() {
            return Err(Ec2Error::InvalidInstanceType(request.instance_type));
        }
        self.check_zone(&request.zone)?;
        let instance = {
            let mut state = self.state.lock().unwrap();
            let taken: HashSet<Ipv4Addr> = state
                .instances
                .values()
                .filter(|i| i.state != InstanceState::Terminated)
                .filter_map(|i| i.private_ip.parse().ok())
                .collect();
            let ip = ids::private_ip(&taken).ok_or(Ec2Error::NoFreeAddress)?;
            let instance_id = ids::instance_id();
            let now = Utc::now();
            let instance = Instance {
                provider_id: ids::provider_id(&request.zone, &instance_id),
                node_name: ids::node_name(ip, &self.config.region),
                private_ip: ip.to_string(),
                instance_id,
                instance_type: request.instance_type,
                zone: request.zone,
                capacity_type: request.capacity_type,
                state: InstanceState::Pending,
                state_changed_at: now,
                launch_time: now,
                labels: request.labels,
                taints: request.taints,
                simulated: request.simulated,
                tags: request.tags,
                draining: false,
                interruption_at: None,
            };
            state
                .instances
                .insert(instance.instance_id.clone(), instance.clone());
            state.save(&self.config.state_file)?;
            instance
        };
        tracing::info!(instance = %instance.instance_id, node = %instance.node_name,
            instance_type = %instance.instance_type, zone = %instance.zone, "instance launched");
        self.emit_state(&instance.instance_id, InstanceState::Pending);
        let delay = boot_delay.unwrap_or(self.config.boot_delay);
        tokio::spawn(self.clone().boot(instance.instance_id.clone(), delay));
        Ok(instance)
    }

    fn check_zone(&self, zone: &str) -> Result<(), Ec2Error> {
        let zones = sparkyard_instance_types::zones(&self.config.region);
        let known = if zones.is_empty() {
            zone.strip_prefix(self.config.region.as_str())
                .is_some_and(|z| z.len() == 1)
        } else {
            zones.iter().any(|z| z == zone)
        };
        if known {
            Ok(())
        } else {
            Err(Ec2Error::InvalidParameter(format!(
                "the availability zone {zone:?} is not in region {}",
                self.config.region
            )))
        }
    }

    /// After the boot delay the instance runs and its node registers.
    async fn boot(self: Arc<Self>, id: String, delay: Duration) {
        tokio::time::sleep(delay).await;
        let instance = {
            let mut state = self.state.lock().unwrap();
            let Some(instance) = state.instances.get_mut(&id) else {
                return;
            };
            // Terminated while booting.
            if instance.state != InstanceState::Pending {
                return;
            }
            instance.state = InstanceState::Running;
            instance.state_changed_at = Utc::now();
            let instance = instance.clone();
            if let Err(e) = state.save(&self.config.state_file) {
                tracing::warn!(error = %e, "cannot persist EC2 state");
            }
            instance
        };
        self.emit_state(&id, InstanceState::Running);
        self.register(&instance);
        self.wake_groups.notify_one();
    }

    /// The node's kubelet starts: it registers (or, after a restart, adopts) its Node.
    fn register(&self, instance: &Instance) {
        if let Err(e) = self.kubelet.register_node(node_config(instance)) {
            tracing::warn!(instance = %instance.instance_id, error = %e, "node did not register");
        }
    }

    pub(crate) fn terminate_instance(self: &Arc<Self>, id: &str) -> Result<Instance, Ec2Error> {
        {
            let mut state = self.state.lock().unwrap();
            let instance = state
                .instances
                .get_mut(id)
                .ok_or_else(|| Ec2Error::InstanceNotFound(id.into()))?;
            if !instance.state.is_live() {
                // Already gone, or another caller is taking it down.
                return Ok(instance.clone());
            }
            instance.state = InstanceState::ShuttingDown;
            instance.state_changed_at = Utc::now();
            state.save(&self.config.state_file)?;
        }
        self.emit_state(id, InstanceState::ShuttingDown);
        self.finish_termination(id)
    }

    /// Shutting down → terminated: the kubelet stops, the Node object is deleted (the
    /// cloud-node-lifecycle controller's job) and its pods are collected.
    fn finish_termination(self: &Arc<Self>, id: &str) -> Result<Instance, Ec2Error> {
        let node = match self.state.lock().unwrap().instances.get(id) {
            Some(i) => i.node_name.clone(),
            None => return Err(Ec2Error::InstanceNotFound(id.into())),
        };
        self.kubelet.deregister_node(&node);
        match self.client.delete(
            NODES,
            "",
            &node,
            sparkyard_kube_apiserver::Propagation::Background,
            None,
        ) {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => tracing::warn!(node = %node, error = %e.message, "cannot delete node"),
        }
        podgc::collect_when_node_gone(self.client.clone(), node.clone());
        let instance = {
            let mut state = self.state.lock().unwrap();
            let Some(instance) = state.instances.get_mut(id) else {
                return Err(Ec2Error::InstanceNotFound(id.into()));
            };
            instance.state = InstanceState::Terminated;
            instance.state_changed_at = Utc::now();
            instance.draining = false;
            let instance = instance.clone();
            state.save(&self.config.state_file)?;
            instance
        };
        tracing::info!(instance = %id, node = %node, "instance terminated");
        self.emit_state(id, InstanceState::Terminated);
        self.wake_groups.notify_one();
        Ok(instance)
    }

    pub(crate) fn send_spot_interruption(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<chrono::DateTime<Utc>, Ec2Error> {
        let (node_name, action_time) = {
            let mut state = self.state.lock().unwrap();
            let instance = state
                .instances
                .get_mut(id)
                .ok_or_else(|| Ec2Error::InstanceNotFound(id.into()))?;
            if instance.capacity_type != CapacityType::Spot {
                return Err(Ec2Error::IncorrectState(format!(
                    "{id} is an on-demand instance: only spot instances are interrupted"
                )));
            }
            if !instance.state.is_live() {
                return Err(Ec2Error::IncorrectState(format!(
                    "{id} is {}",
                    instance.state.as_str()
                )));
            }
            let notice = chrono::Duration::from_std(self.config.spot_notice)
                .unwrap_or(chrono::Duration::minutes(2));
            let at = *instance
                .interruption_at
                .get_or_insert_with(|| Utc::now() + notice);
            let node = instance.node_name.clone();
            state.save(&self.config.state_file)?;
            (node, at)
        };
        tracing::info!(instance = %id, node = %node_name, %action_time, "spot interruption warning");
        let _ = self.events.send(Ec2Event::SpotInterruptionWarning {
            instance_id: id.into(),
            node_name,
            action_time,
        });
        tokio::spawn(self.clone().interrupt_at(id.to_string(), action_time));
        Ok(action_time)
    }

    /// EC2 takes the instance back at the action time, whatever happened meanwhile.
    async fn interrupt_at(self: Arc<Self>, id: String, at: chrono::DateTime<Utc>) {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        if let Err(e) = self.terminate_instance(&id) {
            tracing::warn!(instance = %id, error = %e, "spot interruption failed");
        }
    }

    /// A restart: booting instances finish booting, running ones' nodes are served
    /// again (their Node objects adopted), half-terminated ones finish, pending
    /// interruptions and drains resume.
    pub(crate) fn resume(self: &Arc<Self>) {
        let instances: Vec<Instance> = self
            .state
            .lock()
            .unwrap()
            .instances
            .values()
            .cloned()
            .collect();
        for instance in instances {
            let id = instance.instance_id.clone();
            match instance.state {
                InstanceState::Pending => {
                    // The boot was under way: it completes after a fresh delay.
                    tokio::spawn(self.clone().boot(id.clone(), self.config.boot_delay));
                }
                InstanceState::Running => self.register(&instance),
                InstanceState::ShuttingDown => {
                    if let Err(e) = self.finish_termination(&id) {
                        tracing::warn!(instance = %id, error = %e, "cannot finish termination");
                    }
                    continue;
                }
                InstanceState::Terminated => continue,
            }
            if let Some(at) = instance.interruption_at {
                tokio::spawn(self.clone().interrupt_at(id.clone(), at));
            }
            if instance.draining {
                tokio::spawn(crate::drain::drain_and_terminate(self.clone(), id));
            }
        }
    }

    fn emit_state(&self, id: &str, state: InstanceState) {
        // No subscriber is not an error.
        let _ = self.events.send(Ec2Event::StateChange {
            instance_id: id.into(),
            state,
        });
    }
}

/// The node an instance boots as: the catalog's capacity and allocatable for its type,
/// its zone and capacity type, the launcher's labels and register-with-taints.
pub fn node_config(instance: &Instance) -> NodeConfig {
    let mut node = NodeConfig {
        name: instance.node_name.clone(),
        instance_type: instance.instance_type.clone(),
        zone: instance.zone.clone(),
        capacity_type: instance.capacity_type,
        nodegroup: instance.labels.get(LABEL_EKS_NODEGROUP).cloned(),
        labels: Default::default(),
        taints: instance.taints.clone(),
        simulated: instance.simulated,
        provider_id: Some(instance.provider_id.clone()),
        ..NodeConfig::default()
    };
    if let Some(it) = sparkyard_instance_types::get(&instance.instance_type) {
        it.apply_to(&mut node);
    }
    // The launcher's labels win over the catalog's.
    node.labels.extend(instance.labels.clone());
    node
}
