//! What a node of a type offers: EKS's max pods, `status.capacity` and
//! `status.allocatable` as Karpenter's AWS provider computes them before a real node has
//! reported (A:pkg/providers/instancetype/types.go@v1.8.0), and those numbers written into
//! a [`NodeConfig`] as the quantities a Node shows.

use sparkyard_scheduling::node::CapacityConfig;
use sparkyard_scheduling::NodeConfig;

use super::catalog::InstanceType;

const MI: i64 = 1 << 20;
const GI: i64 = 1 << 30;

/// The EBS root volume Karpenter's EC2NodeClass gives a node by default.
pub const ROOT_VOLUME_BYTES: i64 = 20 * GI;

/// One node's resources (capacity or allocatable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeResources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: u32,
    pub ephemeral_bytes: i64,
}

/// kubeReserved CPU in millicores: 6 % of the first core, 1 % of the second, 0.5 % of the
/// third and fourth, 0.25 % of each further one. Counted in quarter-millicores so the
/// 2.5m steps stay exact; truncated like Karpenter's `int64(float)`.
fn kube_reserved_cpu_millis(vcpu: u32) -> i64 {
    let v = i64::from(vcpu);
    let quarters = 4 * 60 * v.min(1)
        + 4 * 10 * (v.min(2) - 1).max(0)
        + 4 * 5 * (v.min(4) - 2).max(0)
        + 10 * (v - 4).max(0);
    quarters / 4
}

impl InstanceType {
    /// Pods the VPC CNI can give an IP: ENIs × (IPv4 per ENI − 1) + 2 (each ENI's primary
    /// address is the node's; the two host-network pods, aws-node and kube-proxy, need none).
    pub fn max_pods(&self) -> u32 {
        self.enis * self.ipv4_per_eni.saturating_sub(1) + 2
    }

    /// `status.capacity`: vCPUs; memory less the 7.5 % the hypervisor and kernel keep
    /// (`--vm-memory-overhead-percent`); ENI-limited pods; the 20 GiB root volume.
    pub fn capacity(&self) -> NodeResources {
        let mib = self.memory_mib as i64;
        let overhead_mib = (mib * 75 + 999) / 1000; // ⌈MiB × 0.075⌉
        NodeResources {
            cpu_millis: i64::from(self.vcpu) * 1000,
            memory_bytes: (mib - overhead_mib) * MI,
            pods: self.max_pods(),
            ephemeral_bytes: ROOT_VOLUME_BYTES,
        }
    }

    /// `status.allocatable`: capacity − kubeReserved − systemReserved (0) − eviction
    /// thresholds (`memory.available<100Mi`, `nodefs.available<10%`).
    pub fn allocatable(&self) -> NodeResources {
        let cap = self.capacity();
        let kube_reserved_memory = (11 * i64::from(cap.pods) + 255) * MI;
        let kube_reserved_ephemeral = GI;
        NodeResources {
            cpu_millis: cap.cpu_millis - kube_reserved_cpu_millis(self.vcpu),
            memory_bytes: cap.memory_bytes - kube_reserved_memory - 100 * MI,
            pods: cap.pods,
            ephemeral_bytes: cap.ephemeral_bytes
                - kube_reserved_ephemeral
                - (cap.ephemeral_bytes + 9) / 10, // ⌈10 %⌉
        }
    }

    /// Writes the type's shape into a node entry: `instance_type`, allocatable `cpu`,
    /// `memory`, `pods`, `ephemeral_storage`, and `capacity`, spelled as a kubelet reports
    /// them (`cpu: "4"` / `"3920m"`, memory in `Ki`, capacity storage in `Ki`, allocatable
    /// storage in bytes). Labels, zone and taints are the caller's.
    pub fn apply_to(&self, node: &mut NodeConfig) {
        let cap = self.capacity();
        let alloc = self.allocatable();
        node.instance_type = self.name.clone();
        node.cpu = cpu_quantity(alloc.cpu_millis);
        node.memory = format!("{}Ki", alloc.memory_bytes / 1024);
        node.pods = alloc.pods;
        node.ephemeral_storage = alloc.ephemeral_bytes.to_string();
        node.capacity = Some(CapacityConfig {
            cpu: Some(cpu_quantity(cap.cpu_millis)),
            memory: Some(format!("{}Ki", cap.memory_bytes / 1024)),
            pods: Some(cap.pods),
            ephemeral_storage: Some(format!("{}Ki", cap.ephemeral_bytes / 1024)),
        });
    }
}

/// `4000` → `"4"`, `3920` → `"3920m"` (Kubernetes' canonical form).
fn cpu_quantity(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::get;

    /// Karpenter's published table (reference §5): size, pods, allocatable cpu (m); the
    /// allocatable memory (Mi) per category and size follows.
    const TABLE: &[(&str, u32, i64)] = &[
        ("large", 29, 1930),
        ("xlarge", 58, 3920),
        ("2xlarge", 58, 7910),
        ("4xlarge", 234, 15890),
    ];
    const MEMORY_MI: &[(&str, [i64; 4])] = &[
        ("m", [6903, 14162, 29317, 57691]),
        ("c", [3114, 6584, 14162, 27381]),
        ("r", [14481, 29317, 59627, 118312]),
    ];

    #[test]
    fn allocatable_matches_karpenters_table_for_every_row() {
        for (category, mems) in MEMORY_MI {
            for family in [format!("{category}5"), format!("{category}6i")] {
                for (i, (size, pods, cpu)) in TABLE.iter().enumerate() {
                    let it = get(&format!("{family}.{size}")).unwrap();
                    let a = it.allocatable();
                    assert_eq!(a.cpu_millis, *cpu, "{} cpu", it.name);
                    assert_eq!(a.memory_bytes, mems[i] * MI, "{} memory", it.name);
                    assert_eq!(a.pods, *pods, "{} pods", it.name);
                    assert_eq!(it.max_pods(), *pods);
                    assert_eq!(a.ephemeral_bytes, 17 * GI, "{} storage", it.name);
                }
            }
        }
    }

    #[test]
    fn the_check_in_the_reference_spelled_out() {
        // m5.large: 8192 − 615 − (11·29 + 255 = 574) − 100 = 6903Mi; 2000 − 70 = 1930m.
        let it = get("m5.large").unwrap();
        assert_eq!(it.capacity().memory_bytes, (8192 - 615) * MI);
        assert_eq!(it.capacity().cpu_millis, 2000);
        assert_eq!(it.capacity().ephemeral_bytes, 20 * GI);
        // Big m5s: 80m for 4 cores + 2.5m for each further one.
        assert_eq!(
            get("m5.8xlarge").unwrap().allocatable().cpu_millis,
            32000 - 150
        );
        assert_eq!(
            get("m5.12xlarge").unwrap().allocatable().cpu_millis,
            48000 - 190
        );
        assert_eq!(get("m5.12xlarge").unwrap().max_pods(), 234);
        assert_eq!(kube_reserved_cpu_millis(1), 60);
        assert_eq!(kube_reserved_cpu_millis(5), 82); // 82.5 truncated
    }

    #[test]
    fn apply_to_writes_node_quantities() {
        let mut node = NodeConfig::default();
        get("m5.xlarge").unwrap().apply_to(&mut node);
        assert_eq!(node.instance_type, "m5.xlarge");
        assert_eq!(node.cpu, "3920m");
        assert_eq!(node.memory, format!("{}Ki", 14162 * 1024));
        assert_eq!(node.pods, 58);
        assert_eq!(node.ephemeral_storage, (17 * GI).to_string());
        let cap = node.capacity.clone().unwrap();
        assert_eq!(cap.cpu.as_deref(), Some("4"));
        assert_eq!(cap.memory, Some(format!("{}Ki", (16384 - 1229) * 1024)));
        assert_eq!(cap.ephemeral_storage.as_deref(), Some("20971520Ki"));
        let info = node.node_info().unwrap();
        assert_eq!(info.allocatable.milli_cpu, 3920);
        assert_eq!(info.allocatable.memory, 14162 * MI);
        assert_eq!(info.allowed_pods, 58);
    }
}
