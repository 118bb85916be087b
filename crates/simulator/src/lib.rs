//! The cost simulator: a job mix replayed in virtual time on two cluster policies — one
//! transient EMR-on-EC2 cluster per job, as the seed's company runs today, and one shared
//! EKS cluster with a managed node group and Karpenter — with what each costs and how
//! long jobs wait and take.
//!
//! **Owns:** the workload file format and its checks ([`Workload`]), job arrivals (cron,
//! intervals, traces) and work ([`arrivals`]), the transient policy's model
//! ([`transient`]), the shared policy's event loop ([`shared`]), the outcome
//! ([`metrics`]) and the reports ([`report`]: JSON, Markdown, HTML with SVG plots).
//!
//! **Must not touch:** scheduling, provisioning or billing decisions of its own — the
//! shared policy calls `sparkyard_scheduling` (the live scheduler's [`Snapshot`], queue
//! order, preemption), `sparkyard_provisioning` (Karpenter's `schedule`, `disruption`) and
//! `sparkyard_cost` (EMR on EKS's rates and billing) exactly as the embedded cluster and
//! the live cost records do; I/O, clocks, threads, async (times are virtual, randomness
//! seeded: same file and seed, byte-identical JSON). The CLI (`sparkyard simulate`) reads
//! the file and writes the reports.
//!
//! **Entry points:** [`Workload::parse`], [`simulate`], then [`report::json`],
//! [`report::markdown`], [`report::html`], [`report::summary`].
//!
//! | module | what |
//! |---|---|
//! | [`workload`] | the YAML format, checks with the failing field's path |
//! | [`units`] | durations, quantities, `{min, max}` ranges |
//! | [`cron`] | five-field cron schedules |
//! | [`arrivals`] | the jobs: when, how much work, the transient bootstrap; seeded streams |
//! | [`transient`] | one EMR-on-EC2 cluster per job |
//! | [`shared`] | the shared EKS cluster: event loop, kube-scheduler passes, Karpenter |
//! | [`metrics`] | job outcomes, costs and counts by category, the hourly node timeline |
//! | [`report`] | the [`Report`] and its JSON, Markdown, HTML/SVG and stdout forms |
//!
//! Model, assumptions and the format: `docs/simulator.md`. Speed: `cargo bench -p
//! sparkyard-simulator --bench month` (`docs/benchmarks.md`).
//!
//! [`Snapshot`]: sparkyard_scheduling::Snapshot

pub mod arrivals;
pub mod cron;
pub mod metrics;
pub mod report;
pub mod shared;
pub mod transient;
pub mod units;
pub mod workload;

pub use report::Report;
pub use workload::{Workload, WorkloadError};

/// Runs both policies on the workload's jobs and reports.
pub fn simulate(w: &Workload) -> Report {
    let jobs = arrivals::jobs(w);
    let transient = transient::simulate(w, &jobs);
    let shared = shared::simulate(w, &jobs);
    report::build(w, &jobs, &transient, &shared)
}

#[cfg(test)]
mod tests;
