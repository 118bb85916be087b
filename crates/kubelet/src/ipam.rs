//! One loopback IP per pod. Linux routes all of 127.0.0.0/8 to `lo`, so any address in
//! the pod range can be bound without configuration; pods then never collide on ports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

pub struct Ipam {
    first: u32,
    last: u32,
    state: Mutex<State>,
}

struct State {
    by_pod: BTreeMap<String, u32>,
    used: BTreeSet<u32>,
    next: u32,
}

impl Ipam {
    /// `cidr` like `127.1.0.0/16`. The network and broadcast addresses are skipped, and so
    /// is `.1` (by convention the gateway). The search starts at a random offset so that two
    /// clusters on one machine (tests) rarely hand out the same addresses.
    pub fn new(cidr: &str) -> anyhow::Result<Self> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("pod CIDR {cidr:?} needs a /prefix"))?;
        let ip: Ipv4Addr = ip.parse()?;
        let bits: u32 = bits.parse()?;
        anyhow::ensure!(
            (8..=30).contains(&bits),
            "pod CIDR prefix must be /8 to /30"
        );
        anyhow::ensure!(
            ip.octets()[0] == 127,
            "pod CIDR must be in 127.0.0.0/8 (loopback)"
        );
        let mask = u32::MAX << (32 - bits);
        let base = u32::from(ip) & mask;
        let (first, last) = (base + 2, (base | !mask) - 1);
        let span = last - first + 1;
        let next = first + rand::random::<u32>() % span;
        Ok(Self {
            first,
            last,
            state: Mutex::new(State {
                by_pod: BTreeMap::new(),
                used: BTreeSet::new(),
                next,
            }),
        })
    }

    /// The pod's address, allocated on first call (stable for the same uid).
    pub fn allocate(&self, pod_uid: &str) -> Option<Ipv4Addr> {
        let mut state = self.state.lock().unwrap();
        if let Some(ip) = state.by_pod.get(pod_uid) {
            return Some(Ipv4Addr::from(*ip));
        }
        let span = self.last - self.first + 1;
        for i in 0..span {
            let candidate = self.first + (state.next - self.first + i) % span;
            if !state.used.contains(&candidate) {
                state.used.insert(candidate);
                state.by_pod.insert(pod_uid.to_string(), candidate);
                state.next = if candidate == self.last {
                    self.first
                } else {
                    candidate + 1
                };
                return Some(Ipv4Addr::from(candidate));
            }
        }
        None
    }

    /// Gives `pod_uid` the address it already had (a pod that outlived a restart). Returns
    /// false if the address is outside the range or held by another pod.
    pub fn reserve(&self, pod_uid: &str, ip: Ipv4Addr) -> bool {
        let candidate = u32::from(ip);
        if candidate < self.first || candidate > self.last {
            return false;
        }
        let mut state = self.state.lock().unwrap();
        match state.by_pod.get(pod_uid) {
            Some(held) => return *held == candidate,
            None if state.used.contains(&candidate) => return false,
            None => {}
        }
        state.used.insert(candidate);
        state.by_pod.insert(pod_uid.to_string(), candidate);
        true
    }

    pub fn release(&self, pod_uid: &str) {
        let mut state = self.state.lock().unwrap();
        if let Some(ip) = state.by_pod.remove(pod_uid) {
            state.used.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_stable_addresses_and_reuses_released_ones() {
        let ipam = Ipam::new("127.1.0.0/30").unwrap();
        // /30: .0 network, .1 skipped, .2 usable, .3 broadcast.
        let a = ipam.allocate("a").unwrap();
        assert_eq!(a, Ipv4Addr::new(127, 1, 0, 2));
        assert_eq!(ipam.allocate("a"), Some(a));
        assert_eq!(ipam.allocate("b"), None);
        ipam.release("a");
        assert_eq!(ipam.allocate("b"), Some(a));
        let big = Ipam::new("127.1.0.0/16").unwrap();
        let x = big.allocate("x").unwrap();
        let y = big.allocate("y").unwrap();
        assert_ne!(x, y);
        assert!(Ipam::new("10.0.0.0/16").is_err());
    }
}
