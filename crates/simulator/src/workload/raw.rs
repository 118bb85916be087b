//! The workload file as written: serde's view, every field optional where the format
//! has a default, unknown fields refused (a typo is an error, not a silent default).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::units::{RangeSpec, Scalar};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) name: Option<String>,
    pub(super) seed: Option<u64>,
    pub(super) start: Option<String>,
    pub(super) duration: Scalar,
    pub(super) drain_limit: Option<Scalar>,
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) timing: RawTiming,
    pub(super) max_attempts: Option<u32>,
    #[serde(default)]
    pub(super) priority_classes: BTreeMap<String, i32>,
    pub(super) policies: RawPolicies,
    pub(super) categories: Vec<RawCategory>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTiming {
    pub(super) submit: Option<Scalar>,
    pub(super) container_start: Option<Scalar>,
    pub(super) image_pull: Option<Scalar>,
    pub(super) pod_exit: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicies {
    #[serde(default)]
    pub(super) transient: RawTransient,
    pub(super) shared: RawShared,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransient {
    pub(super) bootstrap: Option<RangeSpec>,
    pub(super) primary_instance_type: Option<String>,
    pub(super) core_instance_types: Option<Vec<String>>,
    pub(super) yarn_memory_fraction: Option<f64>,
    pub(super) emr_uplift_fraction: Option<f64>,
    #[serde(default)]
    pub(super) emr_uplift_per_hour: BTreeMap<String, f64>,
    pub(super) termination: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShared {
    pub(super) node_group: Option<RawNodeGroup>,
    pub(super) daemonset: Option<RawResources>,
    #[serde(default)]
    pub(super) node_pools: Vec<RawNodePool>,
    pub(super) boot: Option<Scalar>,
    pub(super) spot_interruptions_per_node_hour: Option<f64>,
    pub(super) right_size: Option<bool>,
    pub(super) control_plane_usd_per_hour: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResources {
    pub(super) cpu: Scalar,
    pub(super) memory: Scalar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodeGroup {
    pub(super) name: Option<String>,
    pub(super) instance_type: String,
    pub(super) count: u32,
    pub(super) capacity_type: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) taints: Vec<RawTaint>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTaint {
    pub(super) key: String,
    #[serde(default)]
    pub(super) value: String,
    pub(super) effect: String,
}

/// A Karpenter v1 NodePool's `spec`, plus its name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodePool {
    pub(super) name: String,
    pub(super) weight: Option<i32>,
    #[serde(default)]
    pub(super) template: RawTemplate,
    #[serde(default)]
    pub(super) disruption: RawDisruption,
    #[serde(default)]
    pub(super) limits: BTreeMap<String, Scalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
    #[serde(default)]
    pub(super) metadata: RawTemplateMetadata,
    #[serde(default)]
    pub(super) spec: RawTemplateSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplateMetadata {
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTemplateSpec {
    #[serde(default)]
    pub(super) requirements: Vec<RawExpression>,
    #[serde(default)]
    pub(super) taints: Vec<RawTaint>,
    pub(super) expire_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDisruption {
    pub(super) consolidation_policy: Option<String>,
    pub(super) consolidate_after: Option<String>,
    #[serde(default)]
    pub(super) budgets: Vec<RawBudget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) nodes: String,
    #[serde(default)]
    pub(super) reasons: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpression {
    pub(super) key: String,
    pub(super) operator: String,
    #[serde(default)]
    pub(super) values: Vec<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    pub(super) name: String,
    pub(super) arrivals: RawArrivals,
    pub(super) count: Option<u32>,
    pub(super) priority: Option<RawPriority>,
    pub(super) driver: RawPod,
    pub(super) executors: RawPod,
    pub(super) work: RawWork,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawPriority {
    Value(i32),
    Class(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPod {
    pub(super) count: Option<u32>,
    pub(super) cpu: Scalar,
    pub(super) memory: Scalar,
    pub(super) cores: Option<u32>,
    pub(super) priority: Option<RawPriority>,
    #[serde(default)]
    pub(super) node_selector: BTreeMap<String, String>,
    pub(super) node_affinity: Option<Vec<Vec<RawExpression>>>,
    #[serde(default)]
    pub(super) tolerations: Vec<RawToleration>,
    #[serde(default)]
    pub(super) do_not_disrupt: bool,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToleration {
    pub(super) key: Option<String>,
    pub(super) operator: Option<String>,
    pub(super) value: Option<String>,
    pub(super) effect: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArrivals {
    pub(super) every: Option<RangeSpec>,
    pub(super) cron: Option<String>,
    pub(super) trace: Option<Vec<Scalar>>,
    pub(super) jitter: Option<Scalar>,
    pub(super) probability: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWork {
    pub(super) executor_seconds: Option<RangeSpec>,
    pub(super) chunk: Option<Scalar>,
    pub(super) tasks: Option<u32>,
    pub(super) task_seconds: Option<RangeSpec>,
}
