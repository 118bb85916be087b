//! The embedded EC2 behind the AWS endpoint: EKS managed node groups are Auto Scaling
//! groups of it ([`Ec2NodeGroups`]), and `ec2 DescribeInstances` /
//! `SendSpotInstanceInterruptions` show and interrupt its instances ([`Ec2Instances`]).
//! The services crate defines the two traits; this is the only place that knows both.

use sparkyard_cluster::scheduling::node::{CapacityType, Taint, TaintEffect};
use sparkyard_ec2::{Ec2, Ec2Error, GroupSpec};
use sparkyard_services::ec2::{Ec2Backend, InstanceView};
use sparkyard_services::eks::nodegroups::{NodeGroupBackend, NodeGroupObserved, NodeGroupSpec};

/// A node group tag that makes its nodes simulated (their pods run no process): for
/// scale tests and simulations, like Karpenter pools' `sparkyard.dev/simulated`.
pub const SIMULATED_TAG: &str = "sparkyard.dev/simulated";

pub struct Ec2NodeGroups {
    pub ec2: Ec2,
}

/// The Auto Scaling group a node group asks for. Its nodes carry the node group's labels
/// plus what EKS derives (`eks.amazonaws.com/nodegroup`, `…/capacityType`, added by the
/// EC2 group itself) and the image label EKS's AMIs set.
pub fn group_spec(g: &NodeGroupSpec) -> GroupSpec {
    let mut labels = g.labels.clone();
    labels.insert(
        "eks.amazonaws.com/nodegroup-image".into(),
        "ami-0sparkyard000000".into(),
    );
    GroupSpec {
        name: g.asg_name.clone(),
        nodegroup: g.nodegroup.clone(),
        instance_types: g.instance_types.clone(),
        capacity_type: if g.spot {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        },
        min: g.min_size,
        max: g.max_size,
        desired: g.desired_size,
        labels,
        taints: g
            .taints
            .iter()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: TaintEffect::parse(&t.effect).unwrap_or(TaintEffect::NoSchedule),
            })
            .collect(),
        zones: g.zones.clone(),
        simulated: g.tags.get(SIMULATED_TAG).is_some_and(|v| v == "true"),
    }
}

impl NodeGroupBackend for Ec2NodeGroups {
    fn check(&self, g: &NodeGroupSpec) -> Result<(), String> {
        match g
            .instance_types
            .iter()
            .find(|t| sparkyard_instance_types::get(t).is_none())
        {
            Some(t) => Err(format!("Instance type {t} is not valid")),
            None => Ok(()),
        }
    }

    fn apply(&self, g: &NodeGroupSpec) -> Result<(), String> {
        self.ec2.put_group(group_spec(g)).map_err(|e| e.to_string())
    }

    fn remove(&self, g: &NodeGroupSpec) {
        match self.ec2.delete_group(&g.asg_name) {
            Ok(()) | Err(Ec2Error::GroupNotFound(_)) => {}
            Err(e) => {
                tracing::warn!(group = %g.asg_name, error = %e, "cannot delete Auto Scaling group")
            }
        }
    }

    fn observe(&self, g: &NodeGroupSpec) -> Option<NodeGroupObserved> {
        // A group that no longer exists has finished deleting: `None` says so.
        self.ec2.group(&g.asg_name).map(|s| NodeGroupObserved {
            nodes: s.instances.len(),
            ready_nodes: s.ready_nodes,
            settled: s.settled && !s.deleting,
            gone: false,
        })
    }
}

pub struct Ec2Instances {
    pub ec2: Ec2,
}

impl Ec2Backend for Ec2Instances {
    fn instances(&self) -> Vec<InstanceView> {
        self.ec2
            .instances()
            .into_iter()
            .map(|i| InstanceView {
                state: i.state.as_str().to_string(),
                spot: i.capacity_type == CapacityType::Spot,
                instance_id: i.instance_id,
                instance_type: i.instance_type,
                zone: i.zone,
                private_ip: i.private_ip,
                private_dns_name: i.node_name,
                launch_time: i.launch_time,
                state_changed_at: i.state_changed_at,
                tags: i.tags,
            })
            .collect()
    }

    fn send_spot_interruption(
        &self,
        id: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, (String, String)> {
        if let Some(i) = self.ec2.instance(id) {
            if i.capacity_type != CapacityType::Spot {
                return Err((
                    "UnsupportedOperation".into(),
                    format!("The instance '{id}' is not a Spot Instance."),
                ));
            }
        }
        self.ec2.send_spot_interruption(id).map_err(|e| match e {
            Ec2Error::InstanceNotFound(_) => (
                "InvalidInstanceID.NotFound".into(),
                format!("The instance ID '{id}' does not exist"),
            ),
            Ec2Error::IncorrectState(m) => ("IncorrectInstanceState".into(), m),
            other => ("InternalError".into(), other.to_string()),
        })
    }
}
