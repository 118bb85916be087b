//! The catalog: `data/instance-types.csv` (sources and date in its header), parsed once.

use std::sync::OnceLock;

/// One EC2 instance type. Prices are Linux on-demand in us-east-1 / us-east-2 (equal
/// there for the families held); see [`InstanceType::price`] for spot.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    /// `m5.xlarge`
    pub name: String,
    /// `m5`
    pub family: String,
    /// `m`
    pub category: String,
    /// `5`
    pub generation: u32,
    /// `xlarge`
    pub size: String,
    pub vcpu: u32,
    pub memory_mib: u64,
    /// Network interfaces the type can attach (the VPC CNI's pod IPs come from them).
    pub enis: u32,
    pub ipv4_per_eni: u32,
    /// `amd64` (every type held is Intel x86-64).
    pub arch: String,
    pub network_bandwidth_mbps: u32,
    pub on_demand_usd: f64,
}

const DATA: &str = include_str!("../data/instance-types.csv");

/// A type with its spot factor, which lives beside (not in) the public struct.
pub(crate) struct Entry {
    pub(crate) it: InstanceType,
    pub(crate) spot_factor: f64,
}

pub(crate) fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse(DATA).unwrap_or_else(|e| panic!("instance-types.csv: {e}")))
}

/// Every instance type, in the CSV's order (family by family, small to large).
pub fn catalog() -> &'static [InstanceType] {
    static TYPES: OnceLock<Vec<InstanceType>> = OnceLock::new();
    TYPES.get_or_init(|| entries().iter().map(|e| e.it.clone()).collect())
}

/// The type called `name` (`m5.xlarge`), if the catalog has it.
pub fn get(name: &str) -> Option<&'static InstanceType> {
    catalog().iter().find(|it| it.name == name)
}

/// The zones sparkyard simulates for a region: `<region>a`, `b`, `c` (us-east-2 has
/// exactly these three; every region has at least three).
pub fn zones(region: &str) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|z| format!("{region}{z}"))
        .collect()
}

/// `m5.2xlarge` → (`m5`, `m`, 5, `2xlarge`); `m6i` → category `m`, generation 6.
pub(crate) fn split_name(name: &str) -> Option<(String, String, u32, String)> {
    let (family, size) = name.split_once('.')?;
    let category: String = family
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect();
    let digits: String = family[category.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if category.is_empty() || digits.is_empty() || size.is_empty() {
        return None;
    }
    Some((
        family.to_string(),
        category,
        digits.parse().ok()?,
        size.to_string(),
    ))
}

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 8 {
            return Err(bad("expected 8 columns"));
        }
        let (family, category, generation, size) =
            split_name(f[0]).ok_or_else(|| bad("name is not family.size"))?;
        let num = |i: usize| f[i].parse::<u64>().map_err(|_| bad("not an integer"));
        let real = |i: usize| f[i].parse::<f64>().map_err(|_| bad("not a number"));
        out.push(Entry {
            it: InstanceType {
                name: f[0].to_string(),
                family,
                category,
                generation,
                size,
                vcpu: num(1)? as u32,
                memory_mib: num(2)?,
                enis: num(3)? as u32,
                ipv4_per_eni: num(4)? as u32,
                arch: "amd64".into(),
                network_bandwidth_mbps: num(5)? as u32,
                on_demand_usd: real(6)?,
            },
            spot_factor: real(7)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_holds_the_families_and_sizes() {
        for family in ["m5", "m6i", "c5", "c6i", "r5", "r6i"] {
            for size in ["large", "xlarge", "2xlarge", "4xlarge"] {
                let it = get(&format!("{family}.{size}")).expect("type in catalog");
                assert_eq!(it.family, family);
                assert_eq!(it.size, size);
                assert_eq!(it.arch, "amd64");
            }
        }
        let m5 = get("m5.12xlarge").unwrap();
        assert_eq!(
            (m5.vcpu, m5.memory_mib, m5.enis, m5.ipv4_per_eni),
            (48, 196_608, 8, 30)
        );
        assert_eq!(m5.on_demand_usd, 2.304);
        let m6i = get("m6i.xlarge").unwrap();
        assert_eq!((m6i.category.as_str(), m6i.generation), ("m", 6));
        assert!(get("m5.metal").is_none());
        let mut names: Vec<_> = catalog().iter().map(|t| &t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), catalog().len(), "names are unique");
    }

    #[test]
    fn zones_of_a_region() {
        assert_eq!(
            zones("us-east-2"),
            ["us-east-2a", "us-east-2b", "us-east-2c"]
        );
    }

    #[test]
    fn names_split_into_family_category_generation_size() {
        assert_eq!(
            split_name("r6i.4xlarge"),
            Some(("r6i".into(), "r".into(), 6, "4xlarge".into()))
        );
        assert_eq!(split_name("m5"), None);
        assert_eq!(split_name("x.large"), None);
        assert!(parse("m5.large,2,8192").is_err());
    }
}
