//! The labels a node of a type carries: the well-known ones and Karpenter's
//! `karpenter.k8s.aws/instance-*` (values as the instance-types doc lists them). Zone,
//! region and capacity type depend on the launch, not the type, and are the caller's.

use std::collections::BTreeMap;

use super::catalog::InstanceType;

impl InstanceType {
    /// Whether the type encrypts traffic between instances (6th-generation Intel and later
    /// in the families held; the 5th generation does not).
    pub fn encryption_in_transit(&self) -> bool {
        self.generation >= 6
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let aws = |k: &str| format!("karpenter.k8s.aws/instance-{k}");
        [
            (
                "node.kubernetes.io/instance-type".to_string(),
                self.name.clone(),
            ),
            ("kubernetes.io/arch".into(), self.arch.clone()),
            ("kubernetes.io/os".into(), "linux".into()),
            (aws("category"), self.category.clone()),
            (aws("family"), self.family.clone()),
            (aws("generation"), self.generation.to_string()),
            (aws("size"), self.size.clone()),
            (aws("cpu"), self.vcpu.to_string()),
            (aws("memory"), self.memory_mib.to_string()),
            (
                aws("network-bandwidth"),
                self.network_bandwidth_mbps.to_string(),
            ),
            (aws("hypervisor"), "nitro".into()),
            (aws("cpu-manufacturer"), "intel".into()),
            (
                aws("encryption-in-transit-supported"),
                self.encryption_in_transit().to_string(),
            ),
        ]
        .into_iter()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::get;

    #[test]
    fn labels_of_c6i_xlarge() {
        let l = get("c6i.xlarge").unwrap().labels();
        let want = [
            ("node.kubernetes.io/instance-type", "c6i.xlarge"),
            ("kubernetes.io/arch", "amd64"),
            ("kubernetes.io/os", "linux"),
            ("karpenter.k8s.aws/instance-category", "c"),
            ("karpenter.k8s.aws/instance-family", "c6i"),
            ("karpenter.k8s.aws/instance-generation", "6"),
            ("karpenter.k8s.aws/instance-size", "xlarge"),
            ("karpenter.k8s.aws/instance-cpu", "4"),
            ("karpenter.k8s.aws/instance-memory", "8192"),
            ("karpenter.k8s.aws/instance-network-bandwidth", "1562"),
            ("karpenter.k8s.aws/instance-hypervisor", "nitro"),
            ("karpenter.k8s.aws/instance-cpu-manufacturer", "intel"),
            (
                "karpenter.k8s.aws/instance-encryption-in-transit-supported",
                "true",
            ),
        ];
        assert_eq!(l.len(), want.len());
        for (k, v) in want {
            assert_eq!(l[k], v, "{k}");
        }
        assert_eq!(
            get("m5.large").unwrap().labels()
                ["karpenter.k8s.aws/instance-encryption-in-transit-supported"],
            "false"
        );
    }
}
