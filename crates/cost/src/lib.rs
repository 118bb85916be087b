//! What a job run costs, as AWS would bill it: EMR on EKS's charge on each pod's requested
//! vCPU and memory, and the pod's share of the EC2 instance it ran on.
//!
//! **Owns:** the EMR on EKS rates by region ([`rates`]), the billing rules (per second,
//! rounded up, from the pod's start to its end, on *requested* resources), the EC2 share of
//! a pod (its dominant resource's fraction of the node, times the node's price for its
//! capacity type and zone), and the per-run totals ([`cost_of_run`]).
//!
//! **Must not touch:** the API, I/O, clocks, threads, async — the caller gathers the pods'
//! times, requests and nodes (from the cluster, or from the simulator's virtual clock) and
//! gets numbers back, so the live cost records and the simulator agree to the cent.
//!
//! **Entry points:** [`cost_of_pod`], [`cost_of_run`], [`rates::emr_on_eks`],
//! [`NodeShape::from_labels`]; [`cur::line_items`] and [`cur::to_csv`] for the Cost and
//! Usage Report–shaped export.

pub mod cur;
pub mod rates;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sparkyard_scheduling::node::{
    CapacityType, LABEL_EKS_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_KARPENTER_CAPACITY_TYPE,
    LABEL_ZONE,
};

pub use rates::{Rates, Source};

/// GiB, the unit AWS's "GB-hour" of pod memory is counted in.
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The node a pod ran on, as its cost needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeShape {
    pub name: String,
    pub instance_type: String,
    pub capacity_type: CapacityType,
    pub zone: String,
    /// The instance's vCPUs and memory (not allocatable: the whole instance is paid for).
    pub vcpu: f64,
    pub memory_bytes: f64,
    /// USD per hour of the instance, for its capacity type and zone.
    pub price_per_hour: f64,
}

impl NodeShape {
    /// The catalog's shape and price of `instance_type`; `None` for a type it does not have.
    pub fn from_catalog(
        name: &str,
        instance_type: &str,
        capacity_type: CapacityType,
        zone: &str,
    ) -> Option<NodeShape> {
        let it = sparkyard_instance_types::get(instance_type)?;
        Some(NodeShape {
            name: name.to_string(),
            instance_type: instance_type.to_string(),
            capacity_type,
            zone: zone.to_string(),
            vcpu: f64::from(it.vcpu),
            memory_bytes: it.memory_mib as f64 * 1024.0 * 1024.0,
            price_per_hour: it.price(zone, capacity_type),
        })
    }

    /// A Kubernetes node's shape and price from its well-known labels: the instance type
    /// (`node.kubernetes.io/instance-type`), the capacity type (Karpenter's
    /// `karpenter.sh/capacity-type`, else a managed node group's `eks.amazonaws.com/capacityType`,
    /// else on-demand) and the zone. `None` when the type is missing or not in the catalog —
    /// such a node has no EC2 price (Fargate, a laptop).
    pub fn from_labels(name: &str, labels: &BTreeMap<String, String>) -> Option<NodeShape> {
        let instance_type = labels
            .get(LABEL_INSTANCE_TYPE)
            .or_else(|| labels.get("beta.kubernetes.io/instance-type"))?;
        let spot = labels
            .get(LABEL_KARPENTER_CAPACITY_TYPE)
            .map(String::as_str)
            == Some("spot")
            || labels.get(LABEL_EKS_CAPACITY_TYPE).map(String::as_str) == Some("SPOT");
        let capacity_type = if spot {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        };
        let zone = labels
            .get(LABEL_ZONE)
            .or_else(|| labels.get("failure-domain.beta.kubernetes.io/zone"))
            .map(String::as_str)
            .unwrap_or_default();
        NodeShape::from_catalog(name, instance_type, capacity_type, zone)
    }
}

/// One pod of a run: when it ran, what it asked for, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUsage {
    pub name: String,
    /// `job-runner`, `driver` or `executor` (EMR's `emr-containers.amazonaws.com/component`).
    pub role: String,
    /// From the start of its first container's image pull (EMR bills from the image
    /// download) to its end (termination, or now for a pod still running).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Requested vCPU and memory (the pod's effective requests: the larger of its init
    /// containers' and the sum of its containers').
    pub vcpu: f64,
    pub memory_bytes: f64,
    pub node: Option<NodeShape>,
}

/// What one pod cost, with the usage it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCost {
    #[serde(flatten)]
    pub usage: PodUsage,
    /// Billed seconds: the pod's running time rounded up to a whole second.
    pub seconds: u64,
    pub vcpu_hours: f64,
    pub gb_hours: f64,
    /// The pod's share of its instance (0–1): its larger fraction of vCPU or memory.
    pub node_share: f64,
    pub ec2_usd: f64,
    pub emr_usd: f64,
}

/// A run's cost record: its pods and totals, and the rates they were charged at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCost {
    pub region: String,
    pub rates: Rates,
    /// Whether the region's EMR on EKS rates are AWS's published ones.
    pub rates_source: Source,
    pub pods: Vec<PodCost>,
    pub vcpu_hours: f64,
    pub gb_hours: f64,
    pub ec2_usd: f64,
    pub emr_usd: f64,
}

impl RunCost {
    pub fn total_usd(&self) -> f64 {
        self.ec2_usd + self.emr_usd
    }
}

/// EMR on EKS's rule: "from the time you start to download your EMR application image until
/// the Amazon EKS pod terminates, rounded up to the nearest second".
pub fn billed_seconds(start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    let millis = (end - start).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000)
}

/// The cost of one pod at `rates`.
pub fn cost_of_pod(pod: &PodUsage, rates: &Rates) -> PodCost {
    let seconds = billed_seconds(pod.start, pod.end);
    let hours = seconds as f64 / 3600.0;
    let vcpu_hours = pod.vcpu * hours;
    let gb_hours = pod.memory_bytes / GIB * hours;
    let (node_share, ec2_usd) = match &pod.node {
        Some(node) if node.vcpu > 0.0 && node.memory_bytes > 0.0 => {
            // The dominant resource: what the pod keeps others from using.
            let share = (pod.vcpu / node.vcpu)
                .max(pod.memory_bytes / node.memory_bytes)
                .min(1.0);
            (share, node.price_per_hour * share * hours)
        }
        _ => (0.0, 0.0),
    };
    PodCost {
        usage: pod.clone(),
        seconds,
        vcpu_hours,
        gb_hours,
        node_share,
        ec2_usd,
        emr_usd: vcpu_hours * rates.vcpu_hour + gb_hours * rates.gb_hour,
    }
}

/// The cost of a run's pods in `region` (preempted and retried ones included: each was
/// billed).
pub fn cost_of_run(pods: &[PodUsage], region: &str) -> RunCost {
    let (rates, rates_source) = rates::emr_on_eks(region);
    let pods: Vec<PodCost> = pods.iter().map(|p| cost_of_pod(p, &rates)).collect();
    RunCost {
        region: region.to_string(),
        rates,
        rates_source,
        vcpu_hours: pods.iter().map(|p| p.vcpu_hours).sum(),
        gb_hours: pods.iter().map(|p| p.gb_hours).sum(),
        ec2_usd: pods.iter().map(|p| p.ec2_usd).sum(),
        emr_usd: pods.iter().map(|p| p.emr_usd).sum(),
        pods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, millis * 1_000_000)
            .unwrap()
    }

    fn pod(role: &str, vcpu: f64, gib: f64, seconds: i64, node: Option<NodeShape>) -> PodUsage {
        PodUsage {
            name: format!("{role}-pod"),
            role: role.into(),
            start: at(0, 0),
            end: at(seconds, 0),
            vcpu,
            memory_bytes: gib * GIB,
            node,
        }
    }

    #[test]
    fn seconds_round_up_and_never_go_negative() {
        assert_eq!(billed_seconds(at(0, 0), at(10, 0)), 10);
        assert_eq!(billed_seconds(at(0, 0), at(10, 1)), 11);
        assert_eq!(billed_seconds(at(0, 500), at(0, 600)), 1);
        assert_eq!(billed_seconds(at(5, 0), at(0, 0)), 0);
    }

    #[test]
    fn emr_charges_requested_vcpu_and_memory_by_the_second() {
        let rates = rates::emr_on_eks("us-east-1").0;
        // One hour of 1 vCPU + 4 GiB: $0.01012 + 4 × $0.00111125 = $0.014565.
        let cost = cost_of_pod(&pod("executor", 1.0, 4.0, 3600, None), &rates);
        assert_eq!(cost.seconds, 3600);
        assert!((cost.vcpu_hours - 1.0).abs() < 1e-12);
        assert!((cost.gb_hours - 4.0).abs() < 1e-12);
        assert!((cost.emr_usd - 0.014565).abs() < 1e-12, "{}", cost.emr_usd);
        assert_eq!(cost.ec2_usd, 0.0);
    }

    #[test]
    fn the_ec2_share_is_the_dominant_resource_of_the_node() {
        let node = NodeShape::from_catalog("n", "m5.xlarge", CapacityType::OnDemand, "us-east-1a")
            .unwrap();
        assert_eq!(node.vcpu, 4.0);
        let price = node.price_per_hour;
        // 1 vCPU of 4 and 8 GiB of 16: memory dominates, half the node for an hour.
        let cost = cost_of_pod(&pod("driver", 1.0, 8.0, 3600, Some(node.clone())), &NO_EMR);
        assert!((cost.node_share - 0.5).abs() < 1e-9);
        assert!((cost.ec2_usd - price / 2.0).abs() < 1e-9);
        // Spot is cheaper for the same share.
        let spot =
            NodeShape::from_catalog("n", "m5.xlarge", CapacityType::Spot, "us-east-1a").unwrap();
        let on_spot = cost_of_pod(&pod("executor", 1.0, 8.0, 3600, Some(spot)), &NO_EMR);
        assert!(on_spot.ec2_usd < cost.ec2_usd);
    }

    #[test]
    fn a_run_sums_its_pods() {
        let pods = vec![
            pod("job-runner", 0.1, 0.25, 60, None),
            pod("driver", 1.0, 1.4, 50, None),
            pod("executor", 1.0, 1.4, 40, None),
            pod("executor", 1.0, 1.4, 40, None),
        ];
        let run = cost_of_run(&pods, "us-east-1");
        assert_eq!(run.rates_source, Source::Published);
        let vcpu_hours = (0.1 * 60.0 + 50.0 + 40.0 + 40.0) / 3600.0;
        assert!((run.vcpu_hours - vcpu_hours).abs() < 1e-12);
        assert_eq!(run.pods.len(), 4);
        assert!((run.total_usd() - run.emr_usd).abs() < 1e-12);
    }

    #[test]
    fn nodes_are_priced_from_their_labels() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let karpenter = labels(&[
            (LABEL_INSTANCE_TYPE, "m5.xlarge"),
            (LABEL_KARPENTER_CAPACITY_TYPE, "spot"),
            (LABEL_ZONE, "us-east-2a"),
        ]);
        let node = NodeShape::from_labels("ip-10-0-1-1", &karpenter).unwrap();
        assert_eq!(node.capacity_type, CapacityType::Spot);
        assert_eq!(node.zone, "us-east-2a");
        let node_group = labels(&[
            (LABEL_INSTANCE_TYPE, "m5.xlarge"),
            (LABEL_EKS_CAPACITY_TYPE, "ON_DEMAND"),
        ]);
        let node = NodeShape::from_labels("ng", &node_group).unwrap();
        assert_eq!(node.capacity_type, CapacityType::OnDemand);
        assert!(node.price_per_hour > 0.0);
        assert_eq!(NodeShape::from_labels("laptop", &labels(&[])), None);
        let unknown = labels(&[(LABEL_INSTANCE_TYPE, "x9.huge")]);
        assert_eq!(NodeShape::from_labels("x", &unknown), None);
    }

    /// Rates of zero: the EC2 share alone.
    const NO_EMR: Rates = Rates {
        vcpu_hour: 0.0,
        gb_hour: 0.0,
    };
}
