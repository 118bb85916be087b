//! Checks of the workload's parts, each turning the file's form into the simulator's and
//! naming the field at fault.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::raw::*;
use super::{
    err, Arrivals, At, Category, NodeGroup, PodShape, SharedPolicy, TransientPolicy, Work,
    WorkloadError,
};
use crate::cron::Cron;
use crate::units::{Millis, Range, Scalar, MINUTE, SECOND};

pub(super) const DEFAULT_START: &str = "2026-03-02T00:00:00Z";
const OPERATORS: [&str; 6] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];
const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn instance_type(name: &str, path: &str) -> Result<(), WorkloadError> {
    if sparkyard_instance_types::get(name).is_none() {
        let known: Vec<&str> = sparkyard_instance_types::catalog()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        return err(
            path,
            format!(
                "{name:?} is not in the instance catalog (known: {})",
                known.join(", ")
            ),
        );
    }
    Ok(())
}

fn expressions(list: &[RawExpression], path: &str) -> Result<Vec<Value>, WorkloadError> {
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let path = format!("{path}[{i}]");
            if e.key.is_empty() {
                return err(format!("{path}.key"), "must not be empty");
            }
            if !OPERATORS.contains(&e.operator.as_str()) {
                return err(
                    format!("{path}.operator"),
                    format!("{:?} is not one of {}", e.operator, OPERATORS.join(", ")),
                );
            }
            let values: Vec<String> = e.values.iter().map(Scalar::text).collect();
            let wanted = match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => Some("needs at least one value"),
                "Exists" | "DoesNotExist" if !values.is_empty() => Some("takes no values"),
                "Gt" | "Lt" if values.len() != 1 || values[0].parse::<i64>().is_err() => {
                    Some("takes exactly one integer value")
                }
                _ => None,
            };
            if let Some(w) = wanted {
                return err(format!("{path}.values"), format!("{} {w}", e.operator));
            }
            Ok(json!({"key": e.key, "operator": e.operator, "values": values}))
        })
        .collect()
}

fn taints(list: &[RawTaint], path: &str) -> Result<Vec<Value>, WorkloadError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            if t.key.is_empty() {
                return err(format!("{path}[{i}].key"), "must not be empty");
            }
            if !EFFECTS.contains(&t.effect.as_str()) {
                return err(
                    format!("{path}[{i}].effect"),
                    format!("{:?} is not one of {}", t.effect, EFFECTS.join(", ")),
                );
            }
            Ok(json!({"key": t.key, "value": t.value, "effect": t.effect}))
        })
        .collect()
}

fn priority(
    p: &RawPriority,
    classes: &BTreeMap<String, i32>,
    path: &str,
) -> Result<i32, WorkloadError> {
    match p {
        RawPriority::Value(v) => Ok(*v),
        RawPriority::Class(name) => classes.get(name).copied().ok_or_else(|| WorkloadError {
            path: path.to_string(),
            message: format!(
                "priority class {name:?} is not in priority_classes ({})",
                classes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

fn nodepool_duration(text: &Option<String>, path: &str) -> Result<(), WorkloadError> {
    if let Some(t) = text {
        sparkyard_provisioning::pool::parse_duration(t).at(path)?;
    }
    Ok(())
}

fn node_pool(p: &RawNodePool, path: &str) -> Result<Value, WorkloadError> {
    if !dns_label(&p.name) {
        return err(
            format!("{path}.name"),
            format!(
                "{:?} must be lower-case letters, digits and '-' (at most 40)",
                p.name
            ),
        );
    }
    if let Some(w) = p.weight {
        if !(1..=100).contains(&w) {
            return err(format!("{path}.weight"), "must be 1-100");
        }
    }
    let spec = &p.template.spec;
    let requirements = expressions(
        &spec.requirements,
        &format!("{path}.template.spec.requirements"),
    )?;
    let taints = taints(&spec.taints, &format!("{path}.template.spec.taints"))?;
    nodepool_duration(
        &spec.expire_after,
        &format!("{path}.template.spec.expireAfter"),
    )?;
    let d = &p.disruption;
    if let Some(policy) = &d.consolidation_policy {
        if policy != "WhenEmpty" && policy != "WhenEmptyOrUnderutilized" {
            return err(
                format!("{path}.disruption.consolidationPolicy"),
                format!("{policy:?} is not WhenEmpty or WhenEmptyOrUnderutilized"),
            );
        }
    }
    nodepool_duration(
        &d.consolidate_after,
        &format!("{path}.disruption.consolidateAfter"),
    )?;
    let mut budgets = Vec::new();
    for (i, b) in d.budgets.iter().enumerate() {
        let nodes_ok = match b.nodes.strip_suffix('%') {
            Some(pct) => pct.parse::<u32>().is_ok_and(|v| v <= 100),
            None => b.nodes.parse::<u32>().is_ok(),
        };
        if !nodes_ok {
            return err(
                format!("{path}.disruption.budgets[{i}].nodes"),
                format!("{:?} is not a count or a percentage", b.nodes),
            );
        }
        for r in &b.reasons {
            if !["Empty", "Underutilized", "Drifted"].contains(&r.as_str()) {
                return err(
                    format!("{path}.disruption.budgets[{i}].reasons"),
                    format!("{r:?} is not Empty, Underutilized or Drifted"),
                );
            }
        }
        budgets.push(json!({"nodes": b.nodes, "reasons": b.reasons}));
    }
    let mut limits = serde_json::Map::new();
    for (k, v) in &p.limits {
        let lpath = format!("{path}.limits.{k}");
        match k.as_str() {
            "cpu" => {
                v.millicores().at(&lpath)?;
            }
            "memory" | "nodes" => {
                v.bytes().at(&lpath)?;
            }
            _ => return err(lpath, "only cpu, memory and nodes limits are simulated"),
        }
        limits.insert(k.clone(), json!(v.text()));
    }
    let mut disruption = serde_json::Map::new();
    if let Some(policy) = &d.consolidation_policy {
        disruption.insert("consolidationPolicy".into(), json!(policy));
    }
    if let Some(after) = &d.consolidate_after {
        disruption.insert("consolidateAfter".into(), json!(after));
    }
    if !budgets.is_empty() {
        disruption.insert("budgets".into(), json!(budgets));
    }
    let mut template_spec = json!({
        "requirements": requirements,
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
    });
    if !taints.is_empty() {
        template_spec["taints"] = json!(taints);
    }
    if let Some(e) = &spec.expire_after {
        template_spec["expireAfter"] = json!(e);
    }
    let mut nodepool_spec = json!({
        "template": {"metadata": {"labels": p.template.metadata.labels}, "spec": template_spec},
        "disruption": disruption,
    });
    if let Some(w) = p.weight {
        nodepool_spec["weight"] = json!(w);
    }
    if !limits.is_empty() {
        nodepool_spec["limits"] = Value::Object(limits);
    }
    Ok(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": p.name},
        "spec": nodepool_spec,
    }))
}

fn pod_shape(
    raw: &RawPod,
    default_priority: i32,
    classes: &BTreeMap<String, i32>,
    path: &str,
) -> Result<PodShape, WorkloadError> {
    let cpu_millis = raw.cpu.millicores().at(&format!("{path}.cpu"))?;
    if cpu_millis <= 0 {
        return err(format!("{path}.cpu"), "must be above 0");
    }
    let memory_bytes = raw.memory.bytes().at(&format!("{path}.memory"))?;
    if memory_bytes <= 0 {
        return err(format!("{path}.memory"), "must be above 0");
    }
    let priority = match &raw.priority {
        Some(p) => priority(p, classes, &format!("{path}.priority"))?,
        None => default_priority,
    };
    let node_affinity = match &raw.node_affinity {
        None => None,
        Some(terms) if terms.is_empty() => {
            return err(
                format!("{path}.node_affinity"),
                "needs at least one term (a list of match expressions)",
            )
        }
        Some(terms) => Some(
            terms
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.is_empty() {
                        return err(
                            format!("{path}.node_affinity[{i}]"),
                            "a term needs at least one match expression",
                        );
                    }
                    expressions(t, &format!("{path}.node_affinity[{i}]"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let tolerations = raw
        .tolerations
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = format!("{path}.tolerations[{i}]");
            if let Some(op) = &t.operator {
                if op != "Equal" && op != "Exists" {
                    return err(
                        format!("{p}.operator"),
                        format!("{op:?} is not Equal or Exists"),
                    );
                }
            }
            if let Some(e) = &t.effect {
                if !EFFECTS.contains(&e.as_str()) {
                    return err(
                        format!("{p}.effect"),
                        format!("{e:?} is not one of {}", EFFECTS.join(", ")),
                    );
                }
            }
            let mut v = serde_json::Map::new();
            for (k, field) in [
                ("key", &t.key),
                ("operator", &t.operator),
                ("value", &t.value),
                ("effect", &t.effect),
            ] {
                if let Some(x) = field {
                    v.insert(k.into(), json!(x));
                }
            }
            Ok(Value::Object(v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PodShape {
        cpu_millis,
        memory_bytes,
        priority,
        node_selector: raw.node_selector.clone(),
        node_affinity,
        tolerations,
        do_not_disrupt: raw.do_not_disrupt,
    })
}

fn probability(p: Option<f64>, path: &str) -> Result<f64, WorkloadError> {
    match p {
        None => Ok(1.0),
        Some(p) if p > 0.0 && p <= 1.0 => Ok(p),
        Some(_) => err(path, "must be above 0 and at most 1"),
    }
}

fn arrivals(
    raw: &RawArrivals,
    start: DateTime<Utc>,
    path: &str,
) -> Result<Arrivals, WorkloadError> {
    let jitter = match &raw.jitter {
        Some(j) => j.duration().at(&format!("{path}.jitter"))?,
        None => 0,
    };
    let probability = probability(raw.probability, &format!("{path}.probability"))?;
    let given = [raw.every.is_some(), raw.cron.is_some(), raw.trace.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return err(path, "needs exactly one of every, cron or trace");
    }
    if let Some(every) = &raw.every {
        let interval = every.durations().at(&format!("{path}.every"))?;
        if interval.min < SECOND {
            return err(format!("{path}.every"), "must be at least 1s");
        }
        return Ok(Arrivals::Every {
            interval,
            jitter,
            probability,
        });
    }
    if let Some(cron) = &raw.cron {
        let schedule = Cron::parse(cron).at(&format!("{path}.cron"))?;
        return Ok(Arrivals::Cron {
            schedule,
            jitter,
            probability,
        });
    }
    if raw.jitter.is_some() || raw.probability.is_some() {
        return err(path, "a trace takes no jitter or probability");
    }
    let trace = raw.trace.as_deref().unwrap_or_default();
    let mut times = Vec::with_capacity(trace.len());
    for (i, t) in trace.iter().enumerate() {
        let p = format!("{path}.trace[{i}]");
        let text = t.text();
        let at = match DateTime::parse_from_rfc3339(&text) {
            Ok(ts) => (ts.with_timezone(&Utc) - start).num_milliseconds(),
            Err(_) => t.duration().map_err(|_| WorkloadError {
                path: p.clone(),
                message: format!(
                    "{text:?} is neither an RFC 3339 time nor an offset from the start (like 3h)"
                ),
            })?,
        };
        if at < 0 {
            return err(p, format!("{text:?} is before the start"));
        }
        times.push(at);
    }
    times.sort_unstable();
    Ok(Arrivals::Trace(times))
}

fn work(raw: &RawWork, path: &str) -> Result<Work, WorkloadError> {
    match (&raw.executor_seconds, raw.tasks) {
        (Some(seconds), None) => {
            if raw.task_seconds.is_some() {
                return err(
                    format!("{path}.task_seconds"),
                    "goes with tasks, not executor_seconds",
                );
            }
            let seconds = seconds.numbers().at(&format!("{path}.executor_seconds"))?;
            if seconds.min <= 0.0 {
                return err(format!("{path}.executor_seconds"), "must be above 0");
            }
            let chunk = match &raw.chunk {
                Some(c) => c.duration().at(&format!("{path}.chunk"))?,
                None => MINUTE,
            };
            if chunk < SECOND {
                return err(format!("{path}.chunk"), "must be at least 1s");
            }
            Ok(Work::ExecutorSeconds { seconds, chunk })
        }
        (None, Some(count)) => {
            if raw.chunk.is_some() {
                return err(
                    format!("{path}.chunk"),
                    "goes with executor_seconds, not tasks",
                );
            }
            if count == 0 {
                return err(format!("{path}.tasks"), "must be at least 1");
            }
            let Some(ts) = &raw.task_seconds else {
                return err(path, "tasks needs task_seconds (a number or {min, max})");
            };
            let seconds = ts.numbers().at(&format!("{path}.task_seconds"))?;
            if seconds.min <= 0.0 {
                return err(format!("{path}.task_seconds"), "must be above 0");
            }
            Ok(Work::Tasks { count, seconds })
        }
        _ => err(path, "needs exactly one of executor_seconds or tasks"),
    }
}

pub(super) fn category(
    raw: &RawCategory,
    start: DateTime<Utc>,
    classes: &BTreeMap<String, i32>,
    path: &str,
) -> Result<Category, WorkloadError> {
    if !dns_label(&raw.name) {
        return err(
            format!("{path}.name"),
            format!(
                "{:?} must be lower-case letters, digits and '-' (at most 40)",
                raw.name
            ),
        );
    }
    let default_priority = match &raw.priority {
        Some(p) => priority(p, classes, &format!("{path}.priority"))?,
        None => 0,
    };
    if raw.driver.count.is_some() {
        return err(format!("{path}.driver.count"), "a job has one driver");
    }
    if raw.driver.cores.is_some() {
        return err(format!("{path}.driver.cores"), "only executors run tasks");
    }
    let driver = pod_shape(
        &raw.driver,
        default_priority,
        classes,
        &format!("{path}.driver"),
    )?;
    let executors = pod_shape(
        &raw.executors,
        default_priority,
        classes,
        &format!("{path}.executors"),
    )?;
    let executor_count = match raw.executors.count {
        None => return err(format!("{path}.executors.count"), "is required"),
        Some(0) => return err(format!("{path}.executors.count"), "must be at least 1"),
        Some(n) => n,
    };
    let executor_cores = match raw.executors.cores {
        Some(0) => return err(format!("{path}.executors.cores"), "must be at least 1"),
        Some(c) => c,
        None => ((executors.cpu_millis / 1000).max(1)) as u32,
    };
    let count = match raw.count {
        Some(0) => return err(format!("{path}.count"), "must be at least 1"),
        Some(n) => n,
        None => 1,
    };
    Ok(Category {
        name: raw.name.clone(),
        arrivals: arrivals(&raw.arrivals, start, &format!("{path}.arrivals"))?,
        count,
        driver,
        executors,
        executor_count,
        executor_cores,
        work: work(&raw.work, &format!("{path}.work"))?,
    })
}

pub(super) fn transient(raw: &RawTransient) -> Result<TransientPolicy, WorkloadError> {
    let path = "policies.transient";
    let bootstrap = match &raw.bootstrap {
        Some(b) => b.durations().at(&format!("{path}.bootstrap"))?,
        None => Range {
            min: 5 * MINUTE,
            max: 10 * MINUTE,
        },
    };
    let primary = raw
        .primary_instance_type
        .clone()
        .unwrap_or_else(|| "m5.xlarge".into());
    instance_type(&primary, &format!("{path}.primary_instance_type"))?;
    let core = raw.core_instance_types.clone().unwrap_or_else(|| {
        ["m5.2xlarge", "m5.4xlarge", "r5.2xlarge", "r5.4xlarge"]
            .map(String::from)
            .to_vec()
    });
    if core.is_empty() {
        return err(
            format!("{path}.core_instance_types"),
            "needs at least one instance type",
        );
    }
    for (i, t) in core.iter().enumerate() {
        instance_type(t, &format!("{path}.core_instance_types[{i}]"))?;
    }
    let yarn = raw.yarn_memory_fraction.unwrap_or(0.75);
    if !(yarn > 0.0 && yarn <= 1.0) {
        return err(
            format!("{path}.yarn_memory_fraction"),
            "must be above 0 and at most 1",
        );
    }
    let uplift = raw.emr_uplift_fraction.unwrap_or(0.25);
    if !(0.0..=10.0).contains(&uplift) {
        return err(format!("{path}.emr_uplift_fraction"), "must be 0-10");
    }
    for (t, v) in &raw.emr_uplift_per_hour {
        instance_type(t, &format!("{path}.emr_uplift_per_hour.{t}"))?;
        if !(*v >= 0.0 && v.is_finite()) {
            return err(
                format!("{path}.emr_uplift_per_hour.{t}"),
                "must be a non-negative USD amount",
            );
        }
    }
    let termination = match &raw.termination {
        Some(t) => t.duration().at(&format!("{path}.termination"))?,
        None => MINUTE,
    };
    Ok(TransientPolicy {
        bootstrap,
        primary_instance_type: primary,
        core_instance_types: core,
        yarn_memory_fraction: yarn,
        emr_uplift_fraction: uplift,
        emr_uplift_per_hour: raw.emr_uplift_per_hour.clone(),
        termination,
    })
}

pub(super) fn shared(raw: &RawShared) -> Result<SharedPolicy, WorkloadError> {
    let path = "policies.shared";
    let node_group = match &raw.node_group {
        None => NodeGroup {
            name: "eks-emr-cluster-ng".into(),
            instance_type: "m5.2xlarge".into(),
            count: 0,
            spot: false,
            labels: BTreeMap::new(),
            taints: Vec::new(),
        },
        Some(g) => {
            let gp = format!("{path}.node_group");
            let name = g
                .name
                .clone()
                .unwrap_or_else(|| "eks-emr-cluster-ng".into());
            if !dns_label(&name) {
                return err(
                    format!("{gp}.name"),
                    format!("{name:?} must be lower-case letters, digits and '-' (at most 40)"),
                );
            }
            instance_type(&g.instance_type, &format!("{gp}.instance_type"))?;
            let spot = match g.capacity_type.as_deref() {
                None | Some("on-demand") => false,
                Some("spot") => true,
                Some(other) => {
                    return err(
                        format!("{gp}.capacity_type"),
                        format!("{other:?} is not on-demand or spot"),
                    )
                }
            };
            NodeGroup {
                name,
                instance_type: g.instance_type.clone(),
                count: g.count,
                spot,
                labels: g.labels.clone(),
                taints: taints(&g.taints, &format!("{gp}.taints"))?,
            }
        }
    };
    let (daemonset_cpu_millis, daemonset_memory_bytes) = match &raw.daemonset {
        None => (200, 256 << 20),
        Some(d) => (
            d.cpu.millicores().at(&format!("{path}.daemonset.cpu"))?,
            d.memory.bytes().at(&format!("{path}.daemonset.memory"))?,
        ),
    };
    let mut names = BTreeSet::new();
    let mut node_pools = Vec::new();
    for (i, p) in raw.node_pools.iter().enumerate() {
        let pp = format!("{path}.node_pools[{i}]");
        if !names.insert(p.name.clone()) {
            return err(format!("{pp}.name"), format!("{:?} appears twice", p.name));
        }
        node_pools.push(node_pool(p, &pp)?);
    }
    if node_pools.is_empty() && node_group.count == 0 {
        return err(
            path,
            "has no capacity: give node_group.count above 0 or at least one node_pools entry",
        );
    }
    let boot = match &raw.boot {
        Some(b) => b.duration().at(&format!("{path}.boot"))?,
        None => MINUTE,
    };
    let rate = raw.spot_interruptions_per_node_hour.unwrap_or(0.001);
    if !(0.0..=60.0).contains(&rate) {
        return err(
            format!("{path}.spot_interruptions_per_node_hour"),
            "must be 0-60",
        );
    }
    let fee = raw.control_plane_usd_per_hour.unwrap_or(0.10);
    if !(fee >= 0.0 && fee.is_finite()) {
        return err(
            format!("{path}.control_plane_usd_per_hour"),
            "must be a non-negative USD amount",
        );
    }
    Ok(SharedPolicy {
        node_group,
        daemonset_cpu_millis,
        daemonset_memory_bytes,
        node_pools,
        boot,
        spot_interruptions_per_node_hour: rate,
        right_size: raw.right_size.unwrap_or(true),
        control_plane_usd_per_hour: fee,
    })
}

pub(super) fn optional_duration(
    v: &Option<Scalar>,
    default: Millis,
    path: &str,
) -> Result<Millis, WorkloadError> {
    match v {
        Some(s) => s.duration().at(path),
        None => Ok(default),
    }
}
