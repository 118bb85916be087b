//! The embedded EC2 beneath EKS managed node groups and Karpenter: instances that boot
//! as nodes of the embedded cluster, Auto Scaling groups that keep a node group at its
//! desired size (draining on scale-in), and spot interruption notices.
//!
//! **Owns:** instances (ids, private IPs, node names, states, the boot delay), their
//! persistence across restarts (`Ec2Config::state_file`), the cloud-node-lifecycle
//! controller's part (a terminated instance's Node object is deleted) and PodGC's (pods of
//! a node that no longer exists are deleted), Auto Scaling groups and their drains, spot
//! interruption warnings and the events subscribers receive.
//!
//! **Must not touch:** the registry or the API server's internals: objects are read and
//! written through the API server's `Client` only (Node deletion, cordon, the Eviction
//! API, pod GC). Nodes are served through the kubelet's [`KubeletHandle`]: a booted
//! instance registers its node, a terminated one deregisters it. No scheduling or
//! provisioning decisions: which instance to launch is the caller's (node group,
//! Karpenter); instance shapes come from `sparkyard-instance-types`.
//!
//! **Entry points:** [`Ec2::new`]; [`Ec2::run_instance`], [`Ec2::terminate_instance`],
//! [`Ec2::send_spot_interruption`], [`Ec2::subscribe`]; [`Ec2::put_group`],
//! [`Ec2::delete_group`], [`Ec2::group`].
//!
//! - `types`: the data; `ids`: instance ids, addresses, names; `state`: the state file.
//! - `instances`: launch, boot, terminate, interruptions, resume after restart.
//! - `groups`: the Auto Scaling reconciler; `drain`: cordon and evict; `podgc`: orphaned pods.

mod drain;
mod groups;
pub mod ids;
mod instances;
mod podgc;
mod state;
pub mod types;

use std::sync::{Arc, Mutex};

use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;
use sparkyard_kubelet::KubeletHandle;
use tokio::sync::{broadcast, Notify};

pub use drain::{fate as drain_fate, PodFate, DO_NOT_DISRUPT, DO_NOT_EVICT};
pub use groups::{next_zone, pick_victims};
pub use instances::node_config;
pub use types::{
    Ec2Config, Ec2Error, Ec2Event, GroupSpec, GroupStatus, Instance, InstanceState, LaunchRequest,
};

/// The tag that makes an instance a member of an Auto Scaling group.
pub const TAG_ASG: &str = "aws:autoscaling:groupName";

pub(crate) const NODES: Resource = Resource::new("", "nodes");
pub(crate) const PODS: Resource = Resource::new("", "pods");

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// The embedded EC2. Cheap to clone; every clone is the same EC2.
#[derive(Clone)]
pub struct Ec2 {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: Client,
    kubelet: KubeletHandle,
    config: Ec2Config,
    state: Mutex<state::State>,
    events: broadcast::Sender<Ec2Event>,
    /// Wakes the group reconciler.
    wake_groups: Notify,
}

impl Inner {
    fn instance(&self, id: &str) -> Option<Instance> {
        self.state.lock().unwrap().instances.get(id).cloned()
    }
}

impl Ec2 {
    /// Loads the state a previous run left (if any), serves its running instances' nodes
    /// again, and starts the group reconciler. Must be called inside a tokio runtime.
    pub fn new(client: Client, kubelet: KubeletHandle, config: Ec2Config) -> Result<Ec2, Ec2Error> {
        let state = state::State::load(&config.state_file)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let inner = Arc::new(Inner {
            client,
            kubelet,
            config,
            state: Mutex::new(state),
            events,
            wake_groups: Notify::new(),
        });
        inner.resume();
        tokio::spawn(inner.clone().run_groups());
        Ok(Ec2 { inner })
    }

    pub fn config(&self) -> &Ec2Config {
        &self.inner.config
    }

    /// `RunInstances`: returns at once with the instance `pending`; after the boot delay
    /// it is `running` and its node has registered.
    pub fn run_instance(&self, request: LaunchRequest) -> Result<Instance, Ec2Error> {
        self.inner.run_instance(request, None)
    }

    /// [`Ec2::run_instance`] with this launch's own boot delay instead of the configured
    /// one (a scenario that wants some nodes slow to come up).
    pub fn run_instance_booting_in(
        &self,
        request: LaunchRequest,
        boot_delay: std::time::Duration,
    ) -> Result<Instance, Ec2Error> {
        self.inner.run_instance(request, Some(boot_delay))
    }

    /// `TerminateInstances`: shutting-down, then terminated; the node stops being served,
    /// its Node object is deleted, and the pods still bound to it are collected.
    /// Terminating a terminated instance is not an error.
    pub fn terminate_instance(&self, id: &str) -> Result<Instance, Ec2Error> {
        self.inner.terminate_instance(id)
    }

    /// Every instance EC2 still shows (terminated ones for an hour).
    pub fn instances(&self) -> Vec<Instance> {
        self.inner
            .state
            .lock()
            .unwrap()
            .instances
            .values()
            .cloned()
            .collect()
    }

    pub fn instance(&self, id: &str) -> Option<Instance> {
        self.inner.instance(id)
    }

    /// The live (not terminated) instance whose node is `node`.
    pub fn instance_by_node(&self, node: &str) -> Option<Instance> {
        self.inner
            .state
            .lock()
            .unwrap()
            .instances
            .values()
            .find(|i| i.node_name == node && i.state != InstanceState::Terminated)
            .cloned()
    }

    /// Warns subscribers that a spot instance will be taken back, and takes it at the
    /// action time (`now + spot_notice`) if it is still there. Returns the action time.
    pub fn send_spot_interruption(
        &self,
        id: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, Ec2Error> {
        self.inner.send_spot_interruption(id)
    }

    /// EC2's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Ec2Event> {
        self.inner.events.subscribe()
    }

    /// Creates or updates an Auto Scaling group (`min ≤ desired ≤ max`, `max ≥ 1`).
    pub fn put_group(&self, spec: GroupSpec) -> Result<(), Ec2Error> {
        self.inner.put_group(spec)
    }

    /// Drains and terminates every instance of the group, then forgets it.
    pub fn delete_group(&self, name: &str) -> Result<(), Ec2Error> {
        self.inner.delete_group(name)
    }

    /// The group's spec and instances; `None` once it does not exist (a deleted group is
    /// gone as soon as its last instance is terminated).
    pub fn group(&self, name: &str) -> Option<GroupStatus> {
        self.inner.group(name)
    }

    /// Every group's name.
    pub fn groups(&self) -> Vec<String> {
        self.inner
            .state
            .lock()
            .unwrap()
            .groups
            .keys()
            .cloned()
            .collect()
    }
}
