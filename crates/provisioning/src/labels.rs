//! The labels Karpenter puts on a node it launched (reference §3 "Node labels (v1)").

use std::collections::BTreeMap;

use sparkyard_instance_types::InstanceType;
use sparkyard_scheduling::node::CapacityType;

use super::pool::{NodePoolSpec, PoolApi};
use super::requirements::{
    Requirement, Requirements, LABEL_CAPACITY_TYPE, LABEL_NODECLASS, LABEL_REGION, LABEL_ZONE,
};

/// Labels of the node launched for a claim with `claim_requirements`, as `instance_type`
/// in `zone` bought as `capacity_type`, from `pool`: the pool's template labels, the
/// claim's single-valued requirements, the pool label (`karpenter.sh/nodepool`, or
/// `karpenter.sh/provisioner-name` for a v1alpha5 Provisioner), the node class (v1),
/// the instance type's labels, zone, region and `karpenter.sh/capacity-type`.
/// Never `eks.amazonaws.com/*`: those belong to managed node groups.
pub fn node_labels(
    claim_requirements: &[Requirement],
    instance_type: &InstanceType,
    zone: &str,
    capacity_type: CapacityType,
    pool: &NodePoolSpec,
) -> BTreeMap<String, String> {
    let mut labels = pool.labels.clone();
    labels.extend(Requirements::from_list(claim_requirements).labels());
    labels.insert(pool.pool_label().to_string(), pool.name.clone());
    if pool.api == PoolApi::V1 {
        if let Some(class) = &pool.node_class {
            labels.insert(LABEL_NODECLASS.to_string(), class.clone());
        }
    }
    labels.extend(instance_type.labels());
    labels.insert(LABEL_ZONE.to_string(), zone.to_string());
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    labels.insert(LABEL_REGION.to_string(), region.to_string());
    labels.insert(
        LABEL_CAPACITY_TYPE.to_string(),
        capacity_type.karpenter().to_string(),
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirements::Operator;

    #[test]
    fn labels_of_a_launched_node() {
        let it = sparkyard_instance_types::get("m5.xlarge").unwrap();
        let mut pool = NodePoolSpec {
            name: "emr".into(),
            node_class: Some("default".into()),
            ..Default::default()
        };
        pool.labels.insert("intent".into(), "emr-job".into());
        let reqs = vec![
            Requirement::new("team", Operator::In, &["spark"]),
            Requirement::new(LABEL_CAPACITY_TYPE, Operator::In, &["spot", "on-demand"]),
            Requirement::new("kubernetes.io/hostname", Operator::In, &["placeholder"]),
        ];
        let l = node_labels(&reqs, it, "us-east-2b", CapacityType::Spot, &pool);
        assert_eq!(l["karpenter.sh/nodepool"], "emr");
        assert_eq!(l["karpenter.k8s.aws/ec2nodeclass"], "default");
        assert_eq!(l["intent"], "emr-job");
        assert_eq!(l["team"], "spark");
        assert_eq!(l["karpenter.sh/capacity-type"], "spot");
        assert_eq!(l["topology.kubernetes.io/zone"], "us-east-2b");
        assert_eq!(l["topology.kubernetes.io/region"], "us-east-2");
        assert_eq!(l["node.kubernetes.io/instance-type"], "m5.xlarge");
        assert_eq!(l["karpenter.k8s.aws/instance-family"], "m5");
        assert!(!l.contains_key("kubernetes.io/hostname"));
        assert!(l.keys().all(|k| !k.starts_with("eks.amazonaws.com/")));

        let alpha = NodePoolSpec {
            api: PoolApi::V1Alpha5,
            ..pool
        };
        let l = node_labels(&[], it, "us-east-2a", CapacityType::OnDemand, &alpha);
        assert_eq!(l["karpenter.sh/provisioner-name"], "emr");
        assert!(!l.contains_key("karpenter.sh/nodepool"));
        assert!(!l.contains_key("karpenter.k8s.aws/ec2nodeclass"));
        assert_eq!(l["karpenter.sh/capacity-type"], "on-demand");
    }
}
