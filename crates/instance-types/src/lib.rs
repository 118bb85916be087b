//! The AWS instance catalog and EKS's node formulas, as data and pure functions.
//!
//! **Owns:** the instance types sparkyard can launch (vCPU, memory, ENIs, bandwidth,
//! on-demand price), kept as a documented CSV in `data/instance-types.csv`; the formulas an
//! EKS node's `status.capacity` / `status.allocatable` follow (as Karpenter's AWS provider
//! computes them); spot prices per zone; the labels Karpenter derives from a type; the zones
//! of a region.
//!
//! **Must not touch:** the API, I/O, clocks, threads, async. The catalog is compiled in
//! (`include_str!`) and parsed once; everything else is arithmetic, so the live Karpenter,
//! the embedded EC2, the kubelet and a cost simulator get the same numbers.
//!
//! **Entry points:** [`catalog`], [`get`], [`zones`], and on [`InstanceType`]:
//! [`InstanceType::capacity`], [`InstanceType::allocatable`], [`InstanceType::price`],
//! [`InstanceType::labels`], [`InstanceType::apply_to`].
//!
//! | module | what |
//! |---|---|
//! | [`catalog`] | [`InstanceType`], the embedded CSV, [`catalog`], [`get`], [`zones`] |
//! | [`resources`] | [`NodeResources`]: max pods, capacity, allocatable (EKS formulas), Node quantities |
//! | [`price`] | on-demand and spot $/hour per zone |
//! | [`labels`] | well-known and `karpenter.k8s.aws/*` labels of a type |
//!
//! # The numbers
//!
//! Allocatable = capacity − kubeReserved − systemReserved (0) − eviction threshold, with
//! capacity.memory = MiB − ⌈MiB × 7.5 %⌉ (Karpenter's `--vm-memory-overhead-percent`),
//! pods = ENIs × (IPv4 per ENI − 1) + 2, kubeReserved.memory = 11 MiB × pods + 255 MiB,
//! kubeReserved.cpu = 6 % of core 1 + 1 % of core 2 + 0.5 % of cores 3–4 + 0.25 % of the
//! rest, eviction = 100Mi memory and 10 % of the 20 GiB root volume. So m5.large →
//! `1930m` / `6903Mi` / 29 pods / `17Gi`, as Karpenter's published table says (every row of
//! that table is a unit test).

pub mod catalog;
pub mod labels;
pub mod price;
pub mod resources;

pub use catalog::{catalog, get, zones, InstanceType};
pub use resources::NodeResources;
