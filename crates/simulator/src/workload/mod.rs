//! The workload file (YAML): the job mix and the two cluster policies to compare, parsed
//! and checked into a [`Workload`]. Every error names the field it is about
//! (`categories[2].executors.count: must be at least 1`). The format, field by field, is in
//! `docs/simulator.md`.

mod check;
mod raw;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::cron::Cron;
use crate::units::{Millis, Range, DAY, MINUTE, SECOND};

use check::{category, optional_duration, shared, transient, DEFAULT_START};
use raw::RawWorkload;

/// A workload that does not parse or does not make sense, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError {
    /// `categories[2].executors.count`; empty for errors about the whole file.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for WorkloadError {}

pub(super) fn err<T>(
    path: impl Into<String>,
    message: impl Into<String>,
) -> Result<T, WorkloadError> {
    Err(WorkloadError {
        path: path.into(),
        message: message.into(),
    })
}

/// Attaches `path` to a message from a value parser.
pub(super) trait At<T> {
    fn at(self, path: &str) -> Result<T, WorkloadError>;
}

impl<T> At<T> for Result<T, String> {
    fn at(self, path: &str) -> Result<T, WorkloadError> {
        self.map_err(|message| WorkloadError {
            path: path.to_string(),
            message,
        })
    }
}

/// A checked workload: everything the two policies need, in the simulator's units
/// (milliseconds, millicores, bytes).
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: Option<String>,
    pub seed: u64,
    /// Virtual time 0; cron schedules are evaluated in UTC from here.
    pub start: DateTime<Utc>,
    /// Jobs arrive in `[0, duration)`.
    pub duration: Millis,
    /// How long after `duration` the simulation may run to let jobs finish.
    pub drain_limit: Millis,
    pub region: String,
    pub timing: Timing,
    /// Attempts per job (EMR on EKS's `retryPolicyConfiguration.maxAttempts`): a job whose
    /// driver is lost is retried until this many attempts have failed.
    pub max_attempts: u32,
    pub transient: TransientPolicy,
    pub shared: SharedPolicy,
    pub categories: Vec<Category>,
}

/// Latencies both policies share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Submission to the driver's creation: EMR on EKS's job runner (spark-submit) before
    /// the driver pod exists; on EMR on EC2 the step's spark-submit once the cluster waits.
    pub submit: Millis,
    /// A container's start once its node has the image (JVM start, YARN container launch).
    pub container_start: Millis,
    /// The EMR image's pull on a node's first EMR pod (EKS only: node group nodes start
    /// with it cached, Karpenter's nodes pull it once).
    pub image_pull: Millis,
    /// A deleted pod's exit (preemption, eviction): until then it holds its resources.
    pub pod_exit: Millis,
}

#[derive(Debug, Clone)]
pub struct TransientPolicy {
    pub bootstrap: Range<Millis>,
    pub primary_instance_type: String,
    /// The instance fleet's candidate core types: per job the cheapest fleet that holds
    /// its driver and executors.
    pub core_instance_types: Vec<String>,
    /// The share of a core node's memory YARN offers containers.
    pub yarn_memory_fraction: f64,
    /// EMR on EC2's charge per instance-hour as a fraction of the on-demand EC2 price.
    pub emr_uplift_fraction: f64,
    /// Per-type charges that override the fraction (USD per instance-hour).
    pub emr_uplift_per_hour: BTreeMap<String, f64>,
    /// From the job's end to the instances' termination.
    pub termination: Millis,
}

impl TransientPolicy {
    /// EMR on EC2's charge per hour for one instance of `instance_type`.
    pub fn uplift_per_hour(&self, instance_type: &str, on_demand: f64) -> f64 {
        self.emr_uplift_per_hour
            .get(instance_type)
            .copied()
            .unwrap_or(on_demand * self.emr_uplift_fraction)
    }
}

#[derive(Debug, Clone)]
pub struct SharedPolicy {
    pub node_group: NodeGroup,
    /// What DaemonSets (aws-node, kube-proxy, the Container Insights agents) request on
    /// every node.
    pub daemonset_cpu_millis: i64,
    pub daemonset_memory_bytes: i64,
    /// Karpenter v1 NodePool objects, as the live cluster would be given them.
    pub node_pools: Vec<Value>,
    /// Launch to Ready for a Karpenter node.
    pub boot: Millis,
    pub spot_interruptions_per_node_hour: f64,
    /// The live provisioner's cost pass after Karpenter's first fit.
    pub right_size: bool,
    /// The EKS cluster's own fee (standard support: $0.10 an hour).
    pub control_plane_usd_per_hour: f64,
}

#[derive(Debug, Clone)]
pub struct NodeGroup {
    pub name: String,
    pub instance_type: String,
    pub count: u32,
    pub spot: bool,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub name: String,
    pub arrivals: Arrivals,
    /// Jobs per arrival.
    pub count: u32,
    pub driver: PodShape,
    pub executors: PodShape,
    pub executor_count: u32,
    /// Concurrent tasks per executor (`spark.executor.cores`).
    pub executor_cores: u32,
    pub work: Work,
}

/// One role's pods: requests, priority and placement, as a pod template would give them.
#[derive(Debug, Clone)]
pub struct PodShape {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub priority: i32,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: terms ORed, each a list of match expressions (JSON).
    pub node_affinity: Option<Vec<Vec<Value>>>,
    pub tolerations: Vec<Value>,
    /// `karpenter.sh/do-not-disrupt: "true"`.
    pub do_not_disrupt: bool,
}

impl PodShape {
    /// The pod's `spec` as Kubernetes would hold it (requests, priority, selector,
    /// affinity, tolerations): the scheduling crate reads placement from it.
    pub fn pod_spec(&self) -> Value {
        let mut spec = json!({
            "priority": self.priority,
            "containers": [{"name": "spark-kubernetes", "resources": {"requests": {
                "cpu": format!("{}m", self.cpu_millis),
                "memory": self.memory_bytes.to_string(),
            }}}],
        });
        if !self.node_selector.is_empty() {
            spec["nodeSelector"] = json!(self.node_selector);
        }
        if let Some(terms) = &self.node_affinity {
            let terms: Vec<Value> = terms
                .iter()
                .map(|t| json!({"matchExpressions": t}))
                .collect();
            spec["affinity"] = json!({"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}});
        }
        if !self.tolerations.is_empty() {
            spec["tolerations"] = json!(self.tolerations);
        }
        spec
    }
}

#[derive(Debug, Clone)]
pub enum Arrivals {
    /// One arrival per interval (drawn per arrival), from time 0.
    Every {
        interval: Range<Millis>,
        jitter: Millis,
        probability: f64,
    },
    /// One arrival per matching minute.
    Cron {
        schedule: Cron,
        jitter: Millis,
        probability: f64,
    },
    /// Arrivals at these times (from the start).
    Trace(Vec<Millis>),
}

#[derive(Debug, Clone)]
pub enum Work {
    /// Executor-seconds per job (drawn per job), cut into tasks of `chunk` executor-time
    /// that run one at a time per executor.
    ExecutorSeconds { seconds: Range<f64>, chunk: Millis },
    /// `count` tasks per job, each of a duration drawn from `seconds`, one per core.
    Tasks { count: u32, seconds: Range<f64> },
}

impl Workload {
    /// Parses and checks a workload file's text.
    pub fn parse(text: &str) -> Result<Workload, WorkloadError> {
        let raw: RawWorkload = serde_yaml::from_str(text).map_err(|e| WorkloadError {
            path: String::new(),
            message: e.to_string(),
        })?;
        let start_text = raw.start.as_deref().unwrap_or(DEFAULT_START);
        let start = DateTime::parse_from_rfc3339(start_text)
            .map_err(|_| WorkloadError {
                path: "start".into(),
                message: format!("{start_text:?} is not an RFC 3339 time (like {DEFAULT_START})"),
            })?
            .with_timezone(&Utc);
        let duration = raw.duration.duration().at("duration")?;
        if !(MINUTE..=400 * DAY).contains(&duration) {
            return err("duration", "must be between 1m and 400d");
        }
        let drain_limit = optional_duration(&raw.drain_limit, 3 * DAY, "drain_limit")?;
        let region = raw.region.clone().unwrap_or_else(|| "us-east-2".into());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return err(
                "region",
                format!("{region:?} is not a region name like us-east-2"),
            );
        }
        let timing = Timing {
            submit: optional_duration(&raw.timing.submit, 15 * SECOND, "timing.submit")?,
            container_start: optional_duration(
                &raw.timing.container_start,
                5 * SECOND,
                "timing.container_start",
            )?,
            image_pull: optional_duration(
                &raw.timing.image_pull,
                45 * SECOND,
                "timing.image_pull",
            )?,
            pod_exit: optional_duration(&raw.timing.pod_exit, 5 * SECOND, "timing.pod_exit")?,
        };
        let max_attempts = match raw.max_attempts {
            Some(0) => return err("max_attempts", "must be at least 1"),
            Some(n) => n,
            None => 1,
        };
        if raw.categories.is_empty() {
            return err("categories", "needs at least one job category");
        }
        let mut names = BTreeSet::new();
        let mut categories = Vec::new();
        for (i, c) in raw.categories.iter().enumerate() {
            let path = format!("categories[{i}]");
            if !names.insert(c.name.clone()) {
                return err(
                    format!("{path}.name"),
                    format!("{:?} appears twice", c.name),
                );
            }
            categories.push(category(c, start, &raw.priority_classes, &path)?);
        }
        let workload = Workload {
            name: raw.name,
            seed: raw.seed.unwrap_or(1),
            start,
            duration,
            drain_limit,
            region,
            timing,
            max_attempts,
            transient: transient(&raw.policies.transient)?,
            shared: shared(&raw.policies.shared)?,
            categories,
        };
        super::transient::check_fits(&workload)?;
        super::shared::check_fits(&workload)?;
        Ok(workload)
    }

    /// The same workload over another span (`--duration` on the command line): `1d` of a
    /// month's file for a quick look.
    pub fn with_duration(mut self, text: &str) -> Result<Workload, WorkloadError> {
        let duration = crate::units::parse_duration(text).at("duration")?;
        if !(MINUTE..=400 * DAY).contains(&duration) {
            return err("duration", "must be between 1m and 400d");
        }
        self.duration = duration;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tests::SMALL;

    fn error_of(text: &str) -> String {
        Workload::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_small_workload_parses_with_defaults() {
        let w = Workload::parse(SMALL).unwrap();
        assert_eq!(w.seed, 7);
        assert_eq!(w.duration, DAY);
        assert_eq!(w.region, "us-east-2");
        assert_eq!(w.max_attempts, 1);
        assert_eq!(
            w.transient.bootstrap,
            Range {
                min: 5 * MINUTE,
                max: 10 * MINUTE
            }
        );
        assert_eq!(w.categories[0].executor_cores, 2);
        assert_eq!(w.shared.node_pools[0]["metadata"]["name"], "spot");
        assert_eq!(
            w.shared.node_pools[0]["spec"]["disruption"]["consolidateAfter"],
            "30s"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let zero = SMALL.replace("count: 2, cpu: 2", "count: 0, cpu: 2");
        assert_eq!(
            error_of(&zero),
            "categories[0].executors.count: must be at least 1"
        );
        let cron = SMALL.replace("{every: 1h}", "{cron: \"61 * * * *\"}");
        assert_eq!(
            error_of(&cron),
            "categories[0].arrivals.cron: minute: 61 is outside 0-59"
        );
        let both = SMALL.replace("{every: 1h}", "{every: 1h, cron: \"* * * * *\"}");
        assert_eq!(
            error_of(&both),
            "categories[0].arrivals: needs exactly one of every, cron or trace"
        );
        let typo = SMALL.replace("driver: {cpu: 1", "driver: {cpus: 1");
        assert!(
            error_of(&typo).starts_with("categories[0].driver: unknown field `cpus`"),
            "{}",
            error_of(&typo)
        );
        let memory = SMALL.replace("memory: 2Gi", "memory: lots");
        assert!(error_of(&memory).starts_with("categories[0].driver.memory: \"lots\""));
        let class = SMALL.replace("driver: {cpu: 1,", "driver: {priority: urgent, cpu: 1,");
        assert!(error_of(&class)
            .starts_with("categories[0].driver.priority: priority class \"urgent\""));
        let op = SMALL.replace("operator: In", "operator: Within");
        assert!(error_of(&op).starts_with(
            "policies.shared.node_pools[0].template.spec.requirements[0].operator: \"Within\""
        ));
        let policy = SMALL.replace("WhenEmpty,", "Sometimes,");
        assert!(error_of(&policy)
            .starts_with("policies.shared.node_pools[0].disruption.consolidationPolicy"));
        let it = SMALL.replace("instance_type: m5.2xlarge", "instance_type: m5.huge");
        assert!(error_of(&it).starts_with("policies.shared.node_group.instance_type: \"m5.huge\""));
        let work = SMALL.replace("{executor_seconds: 600}", "{tasks: 10}");
        assert_eq!(
            error_of(&work),
            "categories[0].work: tasks needs task_seconds (a number or {min, max})"
        );
        let duration = SMALL.replace("duration: 1d", "duration: forever");
        assert!(error_of(&duration).starts_with("duration: \"forever\" is not a duration"));
    }

    #[test]
    fn pods_that_fit_nowhere_are_refused() {
        let huge = SMALL.replace(
            "count: 2, cpu: 2, memory: 4Gi",
            "count: 2, cpu: 2, memory: 900Gi",
        );
        let e = error_of(&huge);
        assert!(e.starts_with("categories[0].executors: "), "{e}");
    }
}
