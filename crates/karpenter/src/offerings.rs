//! Offerings — (instance type, zone, capacity type) with a price — and the launch choice
//! the AWS provider makes from a NodeClaim's requirements: capacity type spot before
//! on-demand when both are allowed, then the cheapest available offering. Offerings that
//! failed (insufficient capacity, a spot interruption) are unavailable for 3 minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
pub use sparkyard_provisioning::Launch;
use sparkyard_provisioning::{self as provisioning, Requirement, Requirements};
use sparkyard_scheduling::node::CapacityType;

/// How long a failed offering stays unavailable (Karpenter's ICE cache TTL).
pub const UNAVAILABLE_FOR: Duration = Duration::from_secs(180);

#[derive(Default)]
pub struct Unavailable {
    until: Mutex<HashMap<(String, String, CapacityType), Instant>>,
}

impl Unavailable {
    pub fn mark(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.until.lock().unwrap().insert(
            (instance_type.to_string(), zone.to_string(), capacity_type),
            Instant::now() + UNAVAILABLE_FOR,
        );
    }

    pub fn is_unavailable(
        &self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> bool {
        let mut map = self.until.lock().unwrap();
        let key = (instance_type.to_string(), zone.to_string(), capacity_type);
        match map.get(&key) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                map.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Every unavailable offering now (for the pure scheduler's input).
    pub fn snapshot(&self) -> Vec<(String, String, CapacityType)> {
        let now = Instant::now();
        let mut map = self.until.lock().unwrap();
        map.retain(|_, t| *t > now);
        map.keys().cloned().collect()
    }
}

/// The cheapest available offering a NodeClaim's requirements allow, spot first: the
/// provisioning core's launch choice, over the catalogue minus the unavailable offerings.
pub fn choose(requirements: &Value, region: &str, unavailable: &Unavailable) -> Option<Launch> {
    let reqs = Requirements::from_list(&Requirement::list_from_json(requirements));
    let types = provisioning::instance_options(region, &unavailable.snapshot());
    provisioning::launch_for(&types, &reqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sparkyard_instance_types as catalog;

    #[test]
    fn spot_first_then_cheapest() {
        let reqs = json!([
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge", "m5.large"]}
        ]);
        let u = Unavailable::default();
        let l = choose(&reqs, "us-east-2", &u).unwrap();
        assert_eq!(l.capacity_type, CapacityType::Spot);
        assert_eq!(l.instance_type, "m5.large");
        // Every spot offering of m5.large gone: the next cheapest spot offering.
        for zone in catalog::zones("us-east-2") {
            u.mark("m5.large", &zone, CapacityType::Spot);
        }
        let l = choose(&reqs, "us-east-2", &u).unwrap();
        assert_eq!(
            (l.instance_type.as_str(), l.capacity_type),
            ("m5.xlarge", CapacityType::Spot)
        );
    }

    #[test]
    fn on_demand_only_when_spot_is_not_allowed() {
        let reqs = json!([{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            {"key": "node.kubernetes.io/instance-type", "operator": "NotIn", "values": ["m5.large"]}]);
        let l = choose(&reqs, "us-east-2", &Unavailable::default()).unwrap();
        assert_eq!(l.capacity_type, CapacityType::OnDemand);
        assert_ne!(l.instance_type, "m5.large");
    }
}
