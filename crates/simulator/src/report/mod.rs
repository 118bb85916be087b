//! The report: both policies' totals, per-category costs and latency percentiles,
//! disruption counts and the hourly node timeline — one [`Report`] rendered as JSON (for
//! scripts), Markdown, HTML with inline SVG plots (for people), and a short stdout table.
//!
//! Numbers are rounded once, here (dollars to 1/10,000, seconds to 1/10, ratios to
//! 1/10,000), and every collection is ordered, so the JSON of a workload and seed is
//! byte-identical from run to run.

mod html;
mod markdown;
mod svg;

use std::collections::BTreeMap;

use serde::Serialize;

use super::arrivals::Job;
use super::metrics::{percentile, seconds, PolicyRun};
use super::units::{format_duration, Millis, HOUR};
use super::workload::Workload;

pub use html::html;
pub use markdown::markdown;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub workload: WorkloadSummary,
    pub assumptions: Assumptions,
    /// `transient` then `shared`.
    pub policies: Vec<PolicyReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkloadSummary {
    pub name: Option<String>,
    pub seed: u64,
    pub start: String,
    pub duration: String,
    pub duration_seconds: f64,
    pub region: String,
    pub jobs: usize,
    pub categories: Vec<CategorySummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategorySummary {
    pub name: String,
    pub jobs: usize,
    pub executors: u32,
    pub driver_priority: i32,
    pub executor_priority: i32,
    /// Mean work per job in executor-slot hours.
    pub work_hours_mean: f64,
}

/// The figures the models assumed, for the reader of a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assumptions {
    pub emr_on_eks_usd_per_vcpu_hour: f64,
    pub emr_on_eks_usd_per_gb_hour: f64,
    /// `published` (AWS's price list) or `assumed` (US East's rates for a region without one).
    pub emr_on_eks_rates: String,
    pub transient_bootstrap_seconds: [f64; 2],
    pub transient_emr_uplift_fraction: f64,
    pub transient_primary_instance_type: String,
    pub transient_core_instance_types: Vec<String>,
    pub shared_node_group: String,
    pub shared_node_pools: Vec<String>,
    pub shared_boot_seconds: f64,
    pub shared_control_plane_usd_per_hour: f64,
    pub shared_spot_interruptions_per_node_hour: f64,
    pub submit_seconds: f64,
    pub container_start_seconds: f64,
    pub image_pull_seconds: f64,
    pub pod_exit_seconds: f64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    fn of(mut values: Vec<Millis>) -> Percentiles {
        values.sort_unstable();
        let p = |q| percentile(&values, q).map(seconds);
        Percentiles {
            p50: p(50.0),
            p90: p(90.0),
            p99: p(99.0),
            max: values.last().copied().map(seconds),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyReport {
    pub policy: String,
    pub totals: Totals,
    pub categories: Vec<CategoryReport>,
    pub launches_by_instance_type: BTreeMap<String, u64>,
    pub hourly: Vec<HourReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    /// EC2 + EMR + EKS.
    pub cost_usd: f64,
    pub ec2_usd: f64,
    pub emr_usd: f64,
    /// The EKS cluster's fee (the shared policy's control plane).
    pub eks_usd: f64,
    /// EC2 that no pod's share accounts for: idle capacity, daemons, the transient
    /// clusters' primary node (0 for the transient policy, whose clusters are the jobs').
    pub unattributed_ec2_usd: f64,
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
    pub unfinished: usize,
    pub retries: u64,
    pub preempted_pods: u64,
    pub interrupted_pods: u64,
    pub disrupted_pods: u64,
    pub spot_interruptions: u64,
    pub node_launches: u64,
    pub node_hours: f64,
    pub spot_node_hours: f64,
    pub peak_nodes: i64,
    pub mean_nodes: f64,
    pub cpu_utilisation: f64,
    /// Submission to the (first) driver running, seconds.
    pub wait_seconds: Percentiles,
    /// Submission to a successful end, seconds.
    pub completion_seconds: Percentiles,
    pub horizon_seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryReport {
    pub name: String,
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
    pub unfinished: usize,
    pub cost_usd: f64,
    pub ec2_usd: f64,
    pub emr_usd: f64,
    pub cost_per_job_usd: f64,
    pub wait_seconds: Percentiles,
    pub completion_seconds: Percentiles,
    pub preempted_pods: u64,
    pub interrupted_pods: u64,
    pub disrupted_pods: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct HourReport {
    pub hour: usize,
    pub nodes_mean: f64,
    pub nodes_max: i64,
    pub cpu_utilisation: f64,
}

fn usd(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn ratio(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn policy_report(name: &str, w: &Workload, run: &PolicyRun) -> PolicyReport {
    let (hours, peak) = run.timeline.hours(run.horizon);
    let categories: Vec<CategoryReport> = w
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let jobs: Vec<_> = run.jobs.iter().filter(|j| j.category == i).collect();
            let counts = &run.categories[i];
            let cost = counts.ec2_usd + counts.emr_usd;
            let completed = jobs.iter().filter(|j| j.completion().is_some()).count();
            let failed = jobs.iter().filter(|j| j.failed).count();
            CategoryReport {
                name: c.name.clone(),
                jobs: jobs.len(),
                completed,
                failed,
                unfinished: jobs.len() - completed - failed,
                cost_usd: usd(cost),
                ec2_usd: usd(counts.ec2_usd),
                emr_usd: usd(counts.emr_usd),
                cost_per_job_usd: usd(if jobs.is_empty() {
                    0.0
                } else {
                    cost / jobs.len() as f64
                }),
                wait_seconds: Percentiles::of(jobs.iter().filter_map(|j| j.wait()).collect()),
                completion_seconds: Percentiles::of(
                    jobs.iter().filter_map(|j| j.completion()).collect(),
                ),
                preempted_pods: counts.preempted_pods,
                interrupted_pods: counts.interrupted_pods,
                disrupted_pods: counts.disrupted_pods,
                retries: counts.retries,
            }
        })
        .collect();
    let attributed: f64 = run.categories.iter().map(|c| c.ec2_usd).sum();
    let sum = |f: fn(&CategoryReport) -> u64| categories.iter().map(f).sum::<u64>();
    let completed = categories.iter().map(|c| c.completed).sum();
    let failed = categories.iter().map(|c| c.failed).sum();
    let horizon_hours = run.horizon as f64 / HOUR as f64;
    PolicyReport {
        policy: name.to_string(),
        totals: Totals {
            cost_usd: usd(run.ec2_usd + run.emr_usd + run.eks_usd),
            ec2_usd: usd(run.ec2_usd),
            emr_usd: usd(run.emr_usd),
            eks_usd: usd(run.eks_usd),
            unattributed_ec2_usd: usd((run.ec2_usd - attributed).max(0.0)),
            jobs: run.jobs.len(),
            completed,
            failed,
            unfinished: run.jobs.len() - completed - failed,
            retries: sum(|c| c.retries),
            preempted_pods: sum(|c| c.preempted_pods),
            interrupted_pods: sum(|c| c.interrupted_pods),
            disrupted_pods: sum(|c| c.disrupted_pods),
            spot_interruptions: run.spot_interruptions,
            node_launches: run.node_launches,
            node_hours: usd(run.node_hours),
            spot_node_hours: usd(run.spot_node_hours),
            peak_nodes: peak,
            mean_nodes: ratio(if horizon_hours > 0.0 {
                run.node_hours / horizon_hours
            } else {
                0.0
            }),
            cpu_utilisation: ratio(run.timeline.utilisation()),
            wait_seconds: Percentiles::of(run.jobs.iter().filter_map(|j| j.wait()).collect()),
            completion_seconds: Percentiles::of(
                run.jobs.iter().filter_map(|j| j.completion()).collect(),
            ),
            horizon_seconds: seconds(run.horizon),
        },
        categories,
        launches_by_instance_type: run.launches_by_type.clone(),
        hourly: hours
            .iter()
            .enumerate()
            .map(|(hour, h)| HourReport {
                hour,
                nodes_mean: ratio(h.nodes_mean),
                nodes_max: h.nodes_max,
                cpu_utilisation: ratio(h.cpu_utilisation),
            })
            .collect(),
    }
}

/// Assembles the report of both policies' runs.
pub fn build(w: &Workload, jobs: &[Job], transient: &PolicyRun, shared: &PolicyRun) -> Report {
    let (rates, source) = sparkyard_cost::rates::emr_on_eks(&w.region);
    let categories = w
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mine: Vec<&Job> = jobs.iter().filter(|j| j.category == i).collect();
            let work: u64 = mine.iter().map(|j| j.work()).sum();
            CategorySummary {
                name: c.name.clone(),
                jobs: mine.len(),
                executors: c.executor_count,
                driver_priority: c.driver.priority,
                executor_priority: c.executors.priority,
                work_hours_mean: ratio(if mine.is_empty() {
                    0.0
                } else {
                    work as f64 / mine.len() as f64 / HOUR as f64
                }),
            }
        })
        .collect();
    let g = &w.shared.node_group;
    Report {
        workload: WorkloadSummary {
            name: w.name.clone(),
            seed: w.seed,
            start: w.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            duration: format_duration(w.duration),
            duration_seconds: seconds(w.duration),
            region: w.region.clone(),
            jobs: jobs.len(),
            categories,
        },
        assumptions: Assumptions {
            emr_on_eks_usd_per_vcpu_hour: rates.vcpu_hour,
            emr_on_eks_usd_per_gb_hour: rates.gb_hour,
            emr_on_eks_rates: match source {
                sparkyard_cost::rates::Source::Published => "published".into(),
                sparkyard_cost::rates::Source::Assumed => "assumed".into(),
            },
            transient_bootstrap_seconds: [
                seconds(w.transient.bootstrap.min),
                seconds(w.transient.bootstrap.max),
            ],
            transient_emr_uplift_fraction: w.transient.emr_uplift_fraction,
            transient_primary_instance_type: w.transient.primary_instance_type.clone(),
            transient_core_instance_types: w.transient.core_instance_types.clone(),
            shared_node_group: format!(
                "{} × {} ({})",
                g.count,
                g.instance_type,
                if g.spot { "spot" } else { "on-demand" }
            ),
            shared_node_pools: w
                .shared
                .node_pools
                .iter()
                .map(|p| {
                    p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
            shared_boot_seconds: seconds(w.shared.boot),
            shared_control_plane_usd_per_hour: w.shared.control_plane_usd_per_hour,
            shared_spot_interruptions_per_node_hour: w.shared.spot_interruptions_per_node_hour,
            submit_seconds: seconds(w.timing.submit),
            container_start_seconds: seconds(w.timing.container_start),
            image_pull_seconds: seconds(w.timing.image_pull),
            pod_exit_seconds: seconds(w.timing.pod_exit),
            max_attempts: w.max_attempts,
        },
        policies: vec![
            policy_report("transient", w, transient),
            policy_report("shared", w, shared),
        ],
    }
}

/// The report as pretty-printed JSON (ends with a newline).
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
    text.push('\n');
    text
}

/// `1234.5` → `1,234.50`.
pub(crate) fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let (whole, frac) = (cents.abs() / 100, cents.abs() % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{grouped}.{frac:02}", if cents < 0 { "-" } else { "" })
}

/// Seconds for people: `42s`, `7.5m`, `3.2h`.
pub(crate) fn span(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.1}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

/// The short table `sparkyard simulate` prints: each policy's totals.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let w = &report.workload;
    out.push_str(&format!(
        "{} jobs over {} (seed {}, {})\n\n",
        w.jobs, w.duration, w.seed, w.region
    ));
    let head = [
        "policy",
        "cost USD",
        "EC2 USD",
        "EMR USD",
        "EKS USD",
        "completed",
        "failed",
        "wait p50",
        "wait p90",
        "done p90",
        "nodes",
        "preempted",
    ];
    let rows: Vec<Vec<String>> = report
        .policies
        .iter()
        .map(|p| {
            let t = &p.totals;
            vec![
                p.policy.clone(),
                money(t.cost_usd),
                money(t.ec2_usd),
                money(t.emr_usd),
                money(t.eks_usd),
                t.completed.to_string(),
                (t.failed + t.unfinished).to_string(),
                span(t.wait_seconds.p50),
                span(t.wait_seconds.p90),
                span(t.completion_seconds.p90),
                t.peak_nodes.to_string(),
                t.preempted_pods.to_string(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        format!("{}\n", text.join("  "))
    };
    out.push_str(&line(head.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    if let [transient, shared] = report.policies.as_slice() {
        let (a, b) = (transient.totals.cost_usd, shared.totals.cost_usd);
        if a > 0.0 {
            out.push_str(&format!(
                "\nshared costs {:.1}% {} than transient ({} USD)\n",
                ((a - b) / a * 100.0).abs(),
                if b <= a { "less" } else { "more" },
                money((a - b).abs())
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_spans_read_well() {
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(0.004), "0.00");
        assert_eq!(money(1_000_000.0), "1,000,000.00");
        assert_eq!(money(-12.345), "-12.35");
        assert_eq!(span(Some(42.0)), "42s");
        assert_eq!(span(Some(450.0)), "7.5m");
        assert_eq!(span(Some(3.0 * 3600.0)), "3.0h");
        assert_eq!(span(None), "–");
    }
}
