//! Auto Scaling groups behind EKS managed node groups: a reconciler keeps each group's
//! live instance count at `desired`. Scale-out launches in the least-used zone (zones in
//! turn); scale-in picks the newest instance of the most-used zone, drains it and
//! terminates it. `delete_group` drains everything, then forgets the group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sparkyard_scheduling::node::{LABEL_EKS_CAPACITY_TYPE, LABEL_EKS_NODEGROUP};

use crate::state::Group;
use crate::types::{Ec2Error, GroupSpec, GroupStatus, Instance, InstanceState, LaunchRequest};
use crate::{drain, Inner, NODES, TAG_ASG};

/// A group is looked at again this often even when nothing woke the reconciler.
const RESYNC: Duration = Duration::from_secs(10);

/// Checks a spec and fills its zones (every zone of the region when empty).
pub fn validate(mut spec: GroupSpec, region: &str) -> Result<GroupSpec, Ec2Error> {
    let bad = |m: String| Err(Ec2Error::InvalidGroup(m));
    if spec.name.is_empty() || spec.nodegroup.is_empty() {
        return bad("a group needs a name and a node group name".into());
    }
    if spec.max < 1 {
        return bad(format!("max size of {} must be at least 1", spec.name));
    }
    if !(spec.min <= spec.desired && spec.desired <= spec.max) {
        return bad(format!(
            "{}: desired capacity {} must be between min size {} and max size {}",
            spec.name, spec.desired, spec.min, spec.max
        ));
    }
    if spec.instance_types.is_empty() {
        return bad(format!("{}: no instance types", spec.name));
    }
    if let Some(unknown) = spec
        .instance_types
        .iter()
        .find(|t| sparkyard_instance_types::get(t).is_none())
    {
        return Err(Ec2Error::InvalidInstanceType(unknown.clone()));
    }
    if spec.zones.is_empty() {
        spec.zones = sparkyard_instance_types::zones(region);
    }
    if spec.zones.is_empty() {
        return bad(format!("{}: no zones in region {region}", spec.name));
    }
    Ok(spec)
}

/// The zone the next instance goes to: the one with the fewest live instances, earlier
/// zones first on a tie (so zones take turns).
pub fn next_zone<'a>(zones: &'a [String], live: &BTreeMap<String, usize>) -> &'a str {
    zones
        .iter()
        .min_by_key(|z| live.get(*z).copied().unwrap_or(0))
        .map(String::as_str)
        .unwrap_or("")
}

/// Which `n` instances scale-in removes: each time the newest among the zones with the
/// most instances (Auto Scaling's default termination policy keeps zones balanced first).
pub fn pick_victims(instances: &[Instance], n: usize) -> Vec<String> {
    let mut left: Vec<&Instance> = instances.iter().collect();
    let mut victims = Vec::new();
    for _ in 0..n {
        let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &left {
            *per_zone.entry(i.zone.as_str()).or_default() += 1;
        }
        let most = per_zone.values().copied().max().unwrap_or(0);
        // The newest instance among the zones that have the most.
        let Some((index, _)) = left
            .iter()
            .enumerate()
            .filter(|(_, i)| per_zone[i.zone.as_str()] == most)
            .max_by_key(|(_, i)| (i.launch_time, i.instance_id.clone()))
        else {
            break;
        };
        victims.push(left.remove(index).instance_id.clone());
    }
    victims
}

impl Inner {
    pub(crate) fn put_group(self: &Arc<Self>, spec: GroupSpec) -> Result<(), Ec2Error> {
        let spec = validate(spec, &self.config.region)?;
        {
            let mut state = self.state.lock().unwrap();
            if state.groups.get(&spec.name).is_some_and(|g| g.deleting) {
                return Err(Ec2Error::InvalidGroup(format!(
                    "{} is being deleted",
                    spec.name
                )));
            }
            tracing::info!(group = %spec.name, desired = spec.desired, min = spec.min, max = spec.max, "group updated");
            state.groups.insert(
                spec.name.clone(),
                Group {
                    spec: Some(spec),
                    deleting: false,
                },
            );
            state.save(&self.config.state_file)?;
        }
        self.wake_groups.notify_one();
        Ok(())
    }

    pub(crate) fn delete_group(self: &Arc<Self>, name: &str) -> Result<(), Ec2Error> {
        {
            let mut state = self.state.lock().unwrap();
            let group = state
                .groups
                .get_mut(name)
                .ok_or_else(|| Ec2Error::GroupNotFound(name.into()))?;
            group.deleting = true;
            state.save(&self.config.state_file)?;
        }
        self.wake_groups.notify_one();
        Ok(())
    }

    pub(crate) fn group(&self, name: &str) -> Option<GroupStatus> {
        let (spec, deleting, instances) = {
            let state = self.state.lock().unwrap();
            let group = state.groups.get(name)?;
            let instances: Vec<Instance> = state
                .instances
                .values()
                .filter(|i| i.group() == Some(name) && i.state != InstanceState::Terminated)
                .cloned()
                .collect();
            (group.spec.clone()?, group.deleting, instances)
        };
        // Deleted once its last instance is terminated (the record goes at the next
        // reconcile, which no event announces).
        if deleting && instances.is_empty() {
            return None;
        }
        let ready_nodes = instances
            .iter()
            .filter(|i| self.node_ready(&i.node_name))
            .count();
        let draining = instances.iter().any(|i| i.draining || !i.state.is_live());
        let desired = if deleting { 0 } else { spec.desired as usize };
        Some(GroupStatus {
            settled: !draining && instances.len() == desired && ready_nodes == desired,
            spec,
            instances,
            ready_nodes,
            deleting,
        })
    }

    fn node_ready(&self, node: &str) -> bool {
        self.client.get(NODES, "", node).is_some_and(|n| {
            n["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
    }

    /// The reconciler: every group, whenever something changed (or every `RESYNC`).
    pub(crate) async fn run_groups(self: Arc<Self>) {
        loop {
            let names: Vec<String> = self.state.lock().unwrap().groups.keys().cloned().collect();
            for name in names {
                if let Err(e) = self.reconcile(&name) {
                    tracing::warn!(group = %name, error = %e, "cannot reconcile group");
                }
            }
            let _ = tokio::time::timeout(RESYNC, self.wake_groups.notified()).await;
        }
    }

    fn reconcile(self: &Arc<Self>, name: &str) -> Result<(), Ec2Error> {
        let (spec, deleting, members) = {
            let state = self.state.lock().unwrap();
            let Some(group) = state.groups.get(name) else {
                return Ok(());
            };
            let Some(spec) = group.spec.clone() else {
                return Ok(());
            };
            let members: Vec<Instance> = state
                .instances
                .values()
                .filter(|i| i.group() == Some(name) && i.state.is_live())
                .cloned()
                .collect();
            (spec, group.deleting, members)
        };
        if deleting && members.is_empty() {
            let mut state = self.state.lock().unwrap();
            state.groups.remove(name);
            state.save(&self.config.state_file)?;
            tracing::info!(group = %name, "group deleted");
            return Ok(());
        }
        let desired = if deleting { 0 } else { spec.desired as usize };
        let serving: Vec<Instance> = members.into_iter().filter(|i| !i.draining).collect();
        if serving.len() < desired {
            let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
            for i in &serving {
                *per_zone.entry(i.zone.clone()).or_default() += 1;
            }
            for _ in serving.len()..desired {
                let zone = next_zone(&spec.zones, &per_zone).to_string();
                self.run_instance(self.launch_request(&spec, &zone), None)?;
                *per_zone.entry(zone).or_default() += 1;
            }
        } else if serving.len() > desired {
            for id in pick_victims(&serving, serving.len() - desired) {
                {
                    let mut state = self.state.lock().unwrap();
                    if let Some(i) = state.instances.get_mut(&id) {
                        i.draining = true;
                    }
                    state.save(&self.config.state_file)?;
                }
                tracing::info!(group = %name, instance = %id, "scale-in: draining instance");
                tokio::spawn(drain::drain_and_terminate(self.clone(), id));
            }
        }
        Ok(())
    }

    fn launch_request(&self, spec: &GroupSpec, zone: &str) -> LaunchRequest {
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_EKS_NODEGROUP.into(), spec.nodegroup.clone());
        labels.insert(
            LABEL_EKS_CAPACITY_TYPE.into(),
            spec.capacity_type.eks().into(),
        );
        let mut tags = BTreeMap::new();
        tags.insert(TAG_ASG.to_string(), spec.name.clone());
        tags.insert("eks:nodegroup-name".into(), spec.nodegroup.clone());
        tags.insert("eks:cluster-name".into(), self.config.cluster_name.clone());
        tags.insert(
            format!("kubernetes.io/cluster/{}", self.config.cluster_name),
            "owned".into(),
        );
        LaunchRequest {
            instance_type: spec.instance_types[0].clone(),
            zone: zone.into(),
            capacity_type: spec.capacity_type,
            labels,
            taints: spec.taints.clone(),
            simulated: spec.simulated,
            tags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn instance(id: &str, zone: &str, minute: u32) -> Instance {
        Instance {
            instance_id: id.into(),
            instance_type: "m5.large".into(),
            zone: zone.into(),
            capacity_type: Default::default(),
            private_ip: String::new(),
            node_name: String::new(),
            provider_id: String::new(),
            state: InstanceState::Running,
            state_changed_at: Utc::now(),
            launch_time: Utc.with_ymd_and_hms(2025, 1, 1, 0, minute, 0).unwrap(),
            labels: Default::default(),
            taints: vec![],
            simulated: true,
            tags: Default::default(),
            draining: false,
            interruption_at: None,
        }
    }

    #[test]
    fn scale_in_takes_the_newest_from_the_busiest_zone() {
        let all = [
            instance("a1", "a", 0),
            instance("a2", "a", 5),
            instance("a3", "a", 1),
            instance("b1", "b", 9),
            instance("c1", "c", 2),
        ];
        assert_eq!(pick_victims(&all, 1), ["a2"]);
        assert_eq!(pick_victims(&all, 3), ["a2", "a3", "b1"]);
    }

    #[test]
    fn scale_out_fills_the_emptiest_zone_in_turn() {
        let zones: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut live = BTreeMap::new();
        let mut order = vec![];
        for _ in 0..4 {
            let z = next_zone(&zones, &live).to_string();
            *live.entry(z.clone()).or_insert(0) += 1;
            order.push(z);
        }
        assert_eq!(order, ["a", "b", "c", "a"]);
    }

    #[test]
    fn sizes_are_checked() {
        let spec = |min, desired, max| GroupSpec {
            name: "g".into(),
            nodegroup: "ng".into(),
            instance_types: vec!["m5.large".into()],
            capacity_type: Default::default(),
            min,
            max,
            desired,
            labels: Default::default(),
            taints: vec![],
            zones: vec!["us-east-2a".into()],
            simulated: true,
        };
        assert!(validate(spec(1, 2, 3), "us-east-2").is_ok());
        assert!(validate(spec(2, 1, 3), "us-east-2").is_err());
        assert!(validate(spec(0, 4, 3), "us-east-2").is_err());
        assert!(validate(spec(0, 0, 0), "us-east-2").is_err());
        let mut unknown = spec(0, 0, 1);
        unknown.instance_types = vec!["q9.huge".into()];
        assert_eq!(
            validate(unknown, "us-east-2"),
            Err(Ec2Error::InvalidInstanceType("q9.huge".into()))
        );
    }
}
