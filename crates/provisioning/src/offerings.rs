//! Offerings: where and how each instance type can be bought — (zone, capacity type,
//! price, available) — for one region, from the catalog. Unavailable offerings (the
//! live controller's insufficient-capacity cache) are passed in, so this stays pure.

use sparkyard_instance_types::{self as catalog, InstanceType, NodeResources};
use sparkyard_scheduling::node::CapacityType;

use super::requirements::{Requirements, ValueSet, LABEL_CAPACITY_TYPE, LABEL_REGION, LABEL_ZONE};

#[derive(Debug, Clone, PartialEq)]
pub struct Offering {
    pub zone: String,
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    pub available: bool,
}

/// An instance type as the provisioner sees it: its labels as requirements, its
/// allocatable and capacity, and its offerings.
#[derive(Debug, Clone)]
pub struct InstanceOption {
    pub instance_type: InstanceType,
    /// Its labels, plus region, and zone / capacity type `In` what is offered.
    pub requirements: Requirements,
    pub allocatable: NodeResources,
    pub capacity: NodeResources,
    pub offerings: Vec<Offering>,
}

/// An offering `(instance type, zone, capacity type)` that is out of capacity.
pub type Unavailable = (String, String, CapacityType);

impl InstanceOption {
    pub fn new(it: &InstanceType, region: &str, unavailable: &[Unavailable]) -> InstanceOption {
        let zones = catalog::zones(region);
        let mut offerings = Vec::new();
        for ct in [CapacityType::Spot, CapacityType::OnDemand] {
            for zone in &zones {
                let available = !unavailable
                    .iter()
                    .any(|(t, z, c)| *t == it.name && z == zone && *c == ct);
                offerings.push(Offering {
                    zone: zone.clone(),
                    capacity_type: ct,
                    price: it.price(zone, ct),
                    available,
                });
            }
        }
        let mut requirements = Requirements::from_labels(&it.labels());
        requirements.add(LABEL_REGION, ValueSet::only([region.to_string()]));
        requirements.add(LABEL_ZONE, ValueSet::only(zones.iter().cloned()));
        requirements.add(LABEL_CAPACITY_TYPE, ValueSet::only(["spot", "on-demand"]));
        InstanceOption {
            instance_type: it.clone(),
            requirements,
            allocatable: it.allocatable(),
            capacity: it.capacity(),
            offerings,
        }
    }

    /// The cheapest available offering whose zone and capacity type `reqs` allow
    /// (optionally of one capacity type).
    pub fn cheapest(&self, reqs: &Requirements, only: Option<CapacityType>) -> Option<&Offering> {
        self.offerings
            .iter()
            .filter(|o| {
                o.available
                    && only.is_none_or(|c| c == o.capacity_type)
                    && reqs.allows(LABEL_ZONE, &o.zone)
                    && reqs.allows(LABEL_CAPACITY_TYPE, o.capacity_type.karpenter())
            })
            .min_by(|a, b| {
                a.price
                    .total_cmp(&b.price)
                    .then_with(|| a.zone.cmp(&b.zone))
            })
    }
}

/// Every catalog type with its offerings in `region`.
pub fn instance_options(region: &str, unavailable: &[Unavailable]) -> Vec<InstanceOption> {
    catalog::catalog()
        .iter()
        .map(|it| InstanceOption::new(it, region, unavailable))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offerings_cover_zones_and_capacity_types() {
        let gone = vec![(
            "m5.large".to_string(),
            "us-east-2a".to_string(),
            CapacityType::Spot,
        )];
        let opts = instance_options("us-east-2", &gone);
        let m5 = opts
            .iter()
            .find(|o| o.instance_type.name == "m5.large")
            .unwrap();
        assert_eq!(m5.offerings.len(), 6);
        assert_eq!(m5.offerings.iter().filter(|o| !o.available).count(), 1);
        let any = Requirements::new();
        let c = m5.cheapest(&any, None).unwrap();
        assert_eq!(c.capacity_type, CapacityType::Spot);
        assert_ne!(c.zone, "us-east-2a");
        let mut od = Requirements::new();
        od.add(LABEL_CAPACITY_TYPE, ValueSet::only(["on-demand"]));
        assert_eq!(m5.cheapest(&od, None).unwrap().price, 0.096);
        assert!(m5.requirements.allows(LABEL_REGION, "us-east-2"));
    }
}
