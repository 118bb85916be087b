//! The EC2 and Auto Scaling shapes: configuration, requests, instances, groups, events,
//! errors. Data only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sparkyard_scheduling::node::CapacityType;
use sparkyard_scheduling::Taint;

/// How the embedded EC2 behaves.
#[derive(Debug, Clone)]
pub struct Ec2Config {
    pub region: String,
    pub cluster_name: String,
    /// From `RunInstances` to the node registering (EC2 boot + kubelet start): about a
    /// minute on AWS, 3 s on the embedded cluster.
    pub boot_delay: Duration,
    /// Where instances and groups are kept across restarts (JSON, replaced atomically).
    pub state_file: PathBuf,
    /// How long before a spot interruption EC2 warns (2 minutes on AWS).
    pub spot_notice: Duration,
}

impl Ec2Config {
    /// The embedded cluster's defaults: 3 s boots, 2-minute spot notices.
    pub fn new(region: &str, cluster_name: &str, state_file: PathBuf) -> Self {
        Self {
            region: region.into(),
            cluster_name: cluster_name.into(),
            boot_delay: Duration::from_secs(3),
            state_file,
            spot_notice: Duration::from_secs(120),
        }
    }
}

/// `RunInstances` for one instance, with what the launcher (node group, Karpenter) puts
/// into the node's kubelet configuration.
#[derive(Debug, Clone, Default)]
pub struct LaunchRequest {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    /// Node labels (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// `--register-with-taints`: on the Node only when it is first created.
    pub taints: Vec<Taint>,
    /// The node's pods run no process (see the kubelet's simulated driver).
    pub simulated: bool,
    /// EC2 tags.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// EC2's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// Pending or running: the instance exists (and is billed).
    pub fn is_live(self) -> bool {
        matches!(self, InstanceState::Pending | InstanceState::Running)
    }
}

/// One instance, as `DescribeInstances` shows it (and as the state file keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub instance_id: String,
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: CapacityType,
    pub private_ip: String,
    /// `ip-192-168-X-Y.<region>.compute.internal`: also the Node's name.
    pub node_name: String,
    /// `aws:///<zone>/<instance id>`: the Node's `spec.providerID`.
    pub provider_id: String,
    pub state: InstanceState,
    /// When `state` last changed.
    #[serde(default = "Utc::now")]
    pub state_changed_at: DateTime<Utc>,
    pub launch_time: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub simulated: bool,
    pub tags: BTreeMap<String, String>,
    /// Being drained by its Auto Scaling group before termination.
    #[serde(default)]
    pub draining: bool,
    /// When a spot interruption will take it (after a warning).
    #[serde(default)]
    pub interruption_at: Option<DateTime<Utc>>,
}

impl Instance {
    /// The Auto Scaling group it belongs to (tag `aws:autoscaling:groupName`).
    pub fn group(&self) -> Option<&str> {
        self.tags.get(crate::TAG_ASG).map(String::as_str)
    }
}

/// What EC2 tells its subscribers (EventBridge's `aws.ec2` events).
#[derive(Debug, Clone, PartialEq)]
pub enum Ec2Event {
    /// "EC2 Spot Instance Interruption Warning": the instance goes at `action_time`.
    SpotInterruptionWarning {
        instance_id: String,
        node_name: String,
        action_time: DateTime<Utc>,
    },
    /// "EC2 Instance State-change Notification".
    StateChange {
        instance_id: String,
        state: InstanceState,
    },
}

/// An Auto Scaling group behind an EKS managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    pub name: String,
    /// The EKS node group (`eks.amazonaws.com/nodegroup`).
    pub nodegroup: String,
    /// Launched in this order of preference (the first is used).
    pub instance_types: Vec<String>,
    pub capacity_type: CapacityType,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Empty: every zone of the region.
    pub zones: Vec<String>,
    /// Its nodes' pods run no process.
    #[serde(default)]
    pub simulated: bool,
}

/// `DescribeAutoScalingGroups` for one group.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub spec: GroupSpec,
    /// Its instances that are not terminated (draining ones included).
    pub instances: Vec<Instance>,
    /// Of those, how many have a Ready Node.
    pub ready_nodes: usize,
    /// The instance count is `desired`, none is draining, and every node is Ready.
    pub settled: bool,
    /// `delete_group` was called: it drains to nothing, then disappears.
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ec2Error {
    #[error("InvalidInstanceType: the instance type {0:?} is not in the catalog")]
    InvalidInstanceType(String),
    #[error("InvalidParameterValue: {0}")]
    InvalidParameter(String),
    #[error("InvalidInstanceID.NotFound: the instance ID {0:?} does not exist")]
    InstanceNotFound(String),
    #[error("IncorrectInstanceState: {0}")]
    IncorrectState(String),
    #[error("InsufficientFreeAddressesInSubnet: no free private IP in 192.168.0.0/16")]
    NoFreeAddress,
    #[error("ValidationError: {0}")]
    InvalidGroup(String),
    #[error("AutoScalingGroup {0:?} not found")]
    GroupNotFound(String),
    #[error("cannot keep EC2 state in {path}: {message}")]
    State { path: String, message: String },
}
