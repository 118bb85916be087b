//! Prices in USD per hour. On-demand is the catalog's price in every zone. Spot is
//! on-demand × the type's spot factor (a column of the CSV, 0.35–0.45; see its header)
//! × a per-zone jitter within ±3 %, derived from a hash of type and zone, so the
//! cheapest zone differs from type to type as it does on AWS, yet every run sees the
//! same prices. Rounded to 1/10,000 $ as EC2's spot price history is.

use sparkyard_scheduling::node::CapacityType;

use super::catalog::{entries, InstanceType};

/// Used for a type built outside the catalog: the middle of the band.
const DEFAULT_SPOT_FACTOR: f64 = 0.40;

/// FNV-1a: stable across runs and platforms (std's hasher is seeded per process).
fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A multiplier in [0.97, 1.03] for (type, zone).
fn zone_jitter(name: &str, zone: &str) -> f64 {
    let step = (fnv(&format!("{name}/{zone}")) % 61) as f64; // 0..=60
    1.0 + (step - 30.0) / 1000.0
}

impl InstanceType {
    /// The spot price as a fraction of on-demand before the zone's jitter.
    pub fn spot_factor(&self) -> f64 {
        entries()
            .iter()
            .find(|e| e.it.name == self.name)
            .map_or(DEFAULT_SPOT_FACTOR, |e| e.spot_factor)
    }

    /// USD per hour of one instance in `zone` (`us-east-2b`) bought as `capacity_type`.
    pub fn price(&self, zone: &str, capacity_type: CapacityType) -> f64 {
        match capacity_type {
            CapacityType::OnDemand => self.on_demand_usd,
            CapacityType::Spot => {
                let p = self.on_demand_usd * self.spot_factor() * zone_jitter(&self.name, zone);
                (p * 10_000.0).round() / 10_000.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, get, zones};

    #[test]
    fn on_demand_is_the_catalog_price_everywhere() {
        let it = get("m5.2xlarge").unwrap();
        for z in zones("us-east-2") {
            assert_eq!(it.price(&z, CapacityType::OnDemand), 0.384);
        }
    }

    #[test]
    fn spot_is_a_deterministic_discount_that_varies_by_zone() {
        let mut cheapest_zones = std::collections::BTreeSet::new();
        for it in catalog() {
            let zs = zones("us-east-2");
            let prices: Vec<f64> = zs.iter().map(|z| it.price(z, CapacityType::Spot)).collect();
            for p in &prices {
                let ratio = p / it.on_demand_usd;
                assert!((0.33..=0.47).contains(&ratio), "{}: {ratio}", it.name);
            }
            assert_eq!(prices[0], it.price(&zs[0], CapacityType::Spot), "stable");
            let min = prices.iter().cloned().fold(f64::MAX, f64::min);
            cheapest_zones.insert(prices.iter().position(|p| *p == min).unwrap());
        }
        assert!(
            cheapest_zones.len() > 1,
            "the cheapest zone is not always the same"
        );
    }
}
