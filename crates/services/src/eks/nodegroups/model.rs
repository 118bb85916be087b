//! A managed node group as EKS records it, the update records of `UpdateNodegroupConfig`,
//! and the seam to whatever provides the nodes ([`NodeGroupBackend`]).
//!
//! Status follows what the backend reports, never a timer: CREATING and UPDATING become
//! ACTIVE once the backend says the group has settled at its desired size, DELETING ends
//! (the record goes) once the backend says the group is gone. [`next_status`] is that rule,
//! pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `NodegroupStatus` (botocore's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Creating,
    Active,
    Updating,
    Deleting,
    CreateFailed,
    DeleteFailed,
    Degraded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
            Status::CreateFailed => "CREATE_FAILED",
            Status::DeleteFailed => "DELETE_FAILED",
            Status::Degraded => "DEGRADED",
        }
    }
}

/// `NodegroupScalingConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    pub min_size: u32,
    pub max_size: u32,
    pub desired_size: u32,
}

/// A taint as the EKS API spells it (`NO_SCHEDULE`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksTaint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
}

impl EksTaint {
    /// The Kubernetes spelling of the effect (`NoSchedule`, …), as nodes carry it.
    pub fn kubernetes_effect(&self) -> &'static str {
        match self.effect.as_str() {
            "NO_EXECUTE" => "NoExecute",
            "PREFER_NO_SCHEDULE" => "PreferNoSchedule",
            _ => "NoSchedule",
        }
    }
}

/// `health.issues[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub resource_ids: Vec<String>,
}

/// The durable record of one node group (stored as JSON in `eks_nodegroups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeGroupRecord {
    pub cluster: String,
    pub name: String,
    /// The ARN's last part; also names the Auto Scaling group (`eks-<name>-<uuid>`).
    pub uuid: String,
    pub version: String,
    pub release_version: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub status: Status,
    pub capacity_type: String,
    pub scaling: Scaling,
    pub instance_types: Vec<String>,
    pub subnets: Vec<String>,
    pub ami_type: String,
    pub node_role: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<EksTaint>,
    pub disk_size: u32,
    pub tags: BTreeMap<String, String>,
    /// Availability zones the instances go to (from the subnets in AWS; given directly by
    /// an eksctl ClusterConfig's `availabilityZones`, else the region's `a`, `b`, `c`).
    pub zones: Vec<String>,
    pub max_unavailable: u32,
    #[serde(default)]
    pub health: Vec<Issue>,
    /// The `UpdateNodegroupConfig` in progress, marked Successful when the group settles.
    #[serde(default)]
    pub update_id: Option<String>,
}

impl NodeGroupRecord {
    pub fn asg_name(&self) -> String {
        format!("eks-{}-{}", self.name, self.uuid)
    }

    /// What the backend is asked to make true.
    pub fn spec(&self) -> NodeGroupSpec {
        NodeGroupSpec {
            cluster: self.cluster.clone(),
            nodegroup: self.name.clone(),
            asg_name: self.asg_name(),
            instance_types: self.instance_types.clone(),
            spot: self.capacity_type == "SPOT",
            min_size: self.scaling.min_size,
            max_size: self.scaling.max_size,
            desired_size: self.scaling.desired_size,
            labels: self.labels.clone(),
            taints: self
                .taints
                .iter()
                .map(|t| NodeTaint {
                    key: t.key.clone(),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.kubernetes_effect().to_string(),
                })
                .collect(),
            zones: self.zones.clone(),
            disk_size_gib: self.disk_size,
            tags: self.tags.clone(),
        }
    }
}

/// One update of `UpdateNodegroupConfig` (`DescribeUpdate`'s `update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRecord {
    pub id: String,
    pub cluster: String,
    pub nodegroup: String,
    /// `InProgress`, `Successful`, `Failed`.
    pub status: String,
    /// `ConfigUpdate`.
    pub kind: String,
    /// `UpdateParam`s: (`type`, `value`).
    pub params: Vec<(String, String)>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// A taint as a Node carries it (Kubernetes spelling of the effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTaint {
    pub key: String,
    pub value: String,
    /// `NoSchedule`, `NoExecute` or `PreferNoSchedule`.
    pub effect: String,
}

/// What a node group asks of the machines behind it: an Auto Scaling group of instances
/// that join the cluster with these labels and taints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGroupSpec {
    pub cluster: String,
    pub nodegroup: String,
    /// `eks-<nodegroup>-<uuid>`, as EKS names the group's Auto Scaling group.
    pub asg_name: String,
    pub instance_types: Vec<String>,
    pub spot: bool,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_size: u32,
    /// The node group's own labels (`labels` of the EKS API); the backend adds the ones
    /// EKS derives (`eks.amazonaws.com/nodegroup`, `…/capacityType`, …).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    pub zones: Vec<String>,
    pub disk_size_gib: u32,
    pub tags: BTreeMap<String, String>,
}

/// What the backend reports about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeGroupObserved {
    /// Instances that exist (booting or running).
    pub nodes: usize,
    /// Nodes that are Ready.
    pub ready_nodes: usize,
    /// Nothing is launching or draining: the group is at its desired size.
    pub settled: bool,
    /// The group and all its instances are gone.
    pub gone: bool,
}

/// Whatever provides the nodes: the binary implements it over the embedded EC2. Without
/// one (`serve --no-cluster`) node groups are records only.
pub trait NodeGroupBackend: Send + Sync {
    /// Refuses a spec the backend cannot provide (an unknown instance type): the message
    /// becomes the `InvalidParameterException` of the request, and nothing is recorded.
    fn check(&self, _group: &NodeGroupSpec) -> Result<(), String> {
        Ok(())
    }
    /// Creates or updates the group; it reconciles in the background.
    fn apply(&self, group: &NodeGroupSpec) -> Result<(), String>;
    /// Drains and removes the group and its instances, in the background.
    fn remove(&self, group: &NodeGroupSpec);
    /// The group as it is now; `None` when the backend has no such group.
    fn observe(&self, group: &NodeGroupSpec) -> Option<NodeGroupObserved>;
}

/// What a transitional status becomes given what the backend reports (`None`: no backend,
/// the group is a record only and every transition completes at once). `Some(None)` of
/// the result means "delete the record"; `None` means "no change".
pub fn next_status(
    record: &NodeGroupRecord,
    observed: Option<Option<NodeGroupObserved>>,
) -> Option<Option<Status>> {
    let desired = record.scaling.desired_size as usize;
    let at_size =
        |o: &NodeGroupObserved| o.settled && o.nodes == desired && o.ready_nodes == desired;
    match (record.status, observed) {
        (Status::Creating | Status::Updating, None) => Some(Some(Status::Active)),
        (Status::Creating | Status::Updating, Some(Some(o))) if at_size(&o) => {
            Some(Some(Status::Active))
        }
        (Status::Deleting, None) => Some(None),
        (Status::Deleting, Some(None)) => Some(None),
        (Status::Deleting, Some(Some(o))) if o.gone => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, desired: u32) -> NodeGroupRecord {
        NodeGroupRecord {
            cluster: "c".into(),
            name: "ng".into(),
            uuid: "u".into(),
            version: "1.22".into(),
            release_version: "1.22.0-sparkyard".into(),
            created_at: Utc::now(),
            modified_at: Utc::now(),
            status,
            capacity_type: "ON_DEMAND".into(),
            scaling: Scaling {
                min_size: 0,
                max_size: 10,
                desired_size: desired,
            },
            instance_types: vec!["m5.2xlarge".into()],
            subnets: vec![],
            ami_type: "AL2_x86_64".into(),
            node_role: "r".into(),
            labels: BTreeMap::new(),
            taints: vec![EksTaint {
                key: "k".into(),
                value: None,
                effect: "PREFER_NO_SCHEDULE".into(),
            }],
            disk_size: 20,
            tags: BTreeMap::new(),
            zones: vec![],
            max_unavailable: 1,
            health: vec![],
            update_id: None,
        }
    }

    #[test]
    fn transitions_follow_the_backend() {
        let settled = |n| NodeGroupObserved {
            nodes: n,
            ready_nodes: n,
            settled: true,
            gone: false,
        };
        let r = record(Status::Updating, 2);
        // Settled at the old size (the backend has not seen the update yet): still UPDATING.
        assert_eq!(next_status(&r, Some(Some(settled(1)))), None);
        assert_eq!(
            next_status(&r, Some(Some(settled(2)))),
            Some(Some(Status::Active))
        );
        let booting = NodeGroupObserved {
            ready_nodes: 1,
            ..settled(2)
        };
        assert_eq!(next_status(&r, Some(Some(booting))), None);
        assert_eq!(next_status(&r, None), Some(Some(Status::Active)));
        let d = record(Status::Deleting, 2);
        assert_eq!(next_status(&d, Some(Some(settled(2)))), None);
        let gone = NodeGroupObserved {
            gone: true,
            ..Default::default()
        };
        assert_eq!(next_status(&d, Some(Some(gone))), Some(None));
        assert_eq!(next_status(&record(Status::Active, 1), None), None);
    }

    #[test]
    fn spec_names_the_asg_and_speaks_kubernetes_effects() {
        let spec = record(Status::Active, 1).spec();
        assert_eq!(spec.asg_name, "eks-ng-u");
        assert_eq!(spec.taints[0].effect, "PreferNoSchedule");
    }
}
