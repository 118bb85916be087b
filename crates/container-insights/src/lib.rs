//! A built-in Container Insights agent: the CloudWatch agent's Kubernetes metrics and
//! fluent-bit's container-log records, for the embedded cluster or a real one.
//!
//! Every interval (60 s by default, as Container Insights) the agent reads the cluster's
//! nodes, pods, Services and the Metrics API through kube-rs, computes Container Insights'
//! metrics with its own formulas ([`compute`]), and writes them as Embedded Metric Format
//! events to `/aws/containerinsights/<cluster>/performance` (one stream per node); CloudWatch
//! extracts the `ContainerInsights` metrics from them, as it does from the real agent's.
//!
//! **Owns:** the metric catalogue (names, dimension sets, units), the formulas, the
//! `PodName` rule, EMF encoding, the agent loop and the `sparkyard_ci_*` gauges.
//!
//! **Must not touch:** the cluster's internals (it is a kube-rs client, like any agent) or
//! CloudWatch's storage (it publishes over the AWS API, so it works against real AWS).
//!
//! **Entry points:** [`agent::spawn`] with [`agent::AgentSettings`]; [`prometheus::text`]
//! of [`agent::Latest::records`]; the pure [`compute::compute`] and [`emf::event`].

pub mod agent;
pub mod application_logs;
pub mod catalog;
pub mod compute;
pub mod config;
pub mod emf;
pub mod inputs;
pub mod pod_name;
pub mod prometheus;

pub use config::{InsightsConfig, PublishTo};
