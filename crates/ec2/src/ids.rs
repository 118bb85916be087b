//! Identifiers EC2 hands out: instance ids, private addresses, node names (pure, apart
//! from the random draw).

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// `i-` and 17 hex digits, as EC2's ids have been since 2016.
pub fn instance_id() -> String {
    let a: u64 = rand::random();
    let b: u8 = rand::random();
    format!("i-{:016x}{:x}", a, b & 0xf)
}

/// A private address in 192.168.0.0/16 not in `taken`: neither the network's first nor
/// last address of any /24 (the VPC reserves the first four of a subnet and its last;
/// staying off .0–.3 and .255 keeps names looking like EC2's).
pub fn private_ip(taken: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let usable = |n: u16| {
        let low = n & 0xff;
        (4..=254).contains(&low)
    };
    let start: u16 = rand::random();
    (0..=u16::MAX)
        .map(|i| start.wrapping_add(i))
        .filter(|n| usable(*n))
        .map(|n| Ipv4Addr::new(192, 168, (n >> 8) as u8, (n & 0xff) as u8))
        .find(|ip| !taken.contains(ip))
}

/// The node name of an instance: its private DNS name.
pub fn node_name(ip: Ipv4Addr, region: &str) -> String {
    let [_, _, c, d] = ip.octets();
    format!("ip-192-168-{c}-{d}.{region}.compute.internal")
}

pub fn provider_id(zone: &str, instance_id: &str) -> String {
    format!("aws:///{zone}/{instance_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_ec2s() {
        let id = instance_id();
        assert_eq!(id.len(), 19, "{id}");
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        let ip = Ipv4Addr::new(192, 168, 3, 17);
        assert_eq!(
            node_name(ip, "us-east-2"),
            "ip-192-168-3-17.us-east-2.compute.internal"
        );
        assert_eq!(
            provider_id("us-east-2a", "i-0123456789abcdef0"),
            "aws:///us-east-2a/i-0123456789abcdef0"
        );
    }

    #[test]
    fn addresses_are_unique_among_the_taken() {
        let mut taken = HashSet::new();
        for _ in 0..2000 {
            let ip = private_ip(&taken).unwrap();
            assert_eq!(ip.octets()[..2], [192, 168]);
            assert!((4..=254).contains(&ip.octets()[3]), "{ip}");
            assert!(taken.insert(ip), "{ip} handed out twice");
        }
    }
}
