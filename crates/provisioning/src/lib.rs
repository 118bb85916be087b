//! Karpenter's decisions as pure functions: which pending pods need new nodes, of which
//! instance types, bought how; and which nodes to take away.
//!
//! **Owns:** the provisioning simulation (reference §3: pod order, state nodes, in-flight
//! claims, pools by weight, instance-type filtering, limits, the launch choice, Karpenter's
//! error texts), requirement sets, the normalized pool ([`NodePoolSpec`], parsed from a
//! v1alpha5 Provisioner or a v1 NodePool), offerings, node labels, and the disruption
//! decisions (reference §4: candidates, budgets, emptiness, consolidation, expiry, drift).
//!
//! **Must not touch:** the API, I/O, clocks (times come in as arguments), threads, async.
//! It links only `sparkyard-scheduling` (filters, pod requirements) and
//! `sparkyard-instance-types` (the catalog), so the live Karpenter controller and an
//! offline cost simulator take the same decisions.
//!
//! **Entry points:** [`schedule`] with [`ScheduleInput`]; [`is_provisionable`];
//! [`NodePoolSpec::from_provisioner`] / [`NodePoolSpec::from_nodepool`]; [`instance_options`];
//! [`node_labels`]; [`pool_hash`]; [`disruption`]: [`disruption::emptiness`],
//! [`disruption::consolidation`], [`disruption::expired`], [`disruption::drifted`],
//! [`disruption::allowed_disruptions`].
//!
//! | module | what |
//! |---|---|
//! | [`requirements`] | [`Requirement`], [`Requirements`]: label-value sets, compatibility, Karpenter's wording |
//! | [`pool`] | [`NodePoolSpec`], limits, budgets, parsers, [`pool_hash`] |
//! | [`offerings`] | [`InstanceOption`]: a catalog type with its (zone, capacity type, price, available) offerings |
//! | [`schedule`] | the simulation: [`schedule`], [`NewClaim`], [`Launch`] |
//! | `rightsize` | the optional cost pass after the simulation |
//! | [`labels`] | [`node_labels`] of a launched node |
//! | [`pods`] | [`is_provisionable`] |
//! | [`disruption`] | candidates, budgets, emptiness, consolidation, expiry, drift |
//! | [`format`] | resource lists as Karpenter prints them |

//!
//! # Performance and cost
//!
//! `cargo bench -p sparkyard-provisioning --bench provisioning` (2-core development
//! machine, other builds running): 1,000 pending pods (250m–4 CPU, 512Mi–16Gi; 3 % select
//! on-demand, 5 % a zone, 5 % the r family, 10 % carry tolerations) against one pool
//! allowing spot and on-demand c/m/r, no existing capacity:
//!
//! | | `schedule` | nodes | $/h | × lower bound | × selector-aware estimate |
//! |---|---|---|---|---|---|
//! | Karpenter's first fit (`right_size: false`) | 31 ms | 53 (33 spot) | 54.79 | 2.08 | 1.97 |
//! | with right-sizing (`right_size: true`) | 51 ms | 106 (102 spot) | 30.23 | 1.15 | 1.09 |
//!
//! First fit loses twice: claims grow to the largest types (m5.12xlarge, r*.4xlarge), and
//! a pod that demands on-demand narrows the shared claim it joins, so 20 of 53 nodes
//! launch on-demand for 30 such pods. The bound and the right-sizing pass are described in
//! the bench and in `rightsize`.

pub mod bound;
pub mod disruption;
pub mod format;
pub mod labels;
pub mod offerings;
pub mod pods;
pub mod pool;
pub mod requirements;
mod rightsize;
pub mod schedule;

pub use bound::cost_lower_bound;
pub use labels::node_labels;
pub use offerings::{instance_options, InstanceOption, Offering};
pub use pods::is_provisionable;
pub use pool::{
    pool_hash, Budget, ConsolidationPolicy, DisruptionReason, Limits, NodePoolSpec, PoolApi, Usage,
};
pub use requirements::{Operator, Requirement, Requirements};
pub use schedule::{
    launch_for, schedule, ExistingPlacement, Launch, NewClaim, PodError, ScheduleInput,
    ScheduleResults, StateNode,
};

#[cfg(test)]
mod tests;
