//! What a policy's run produced, in the same shape for both policies: each job's outcome,
//! costs by category, disruption counts, and the node timeline (hourly buckets) the
//! report plots.

use std::collections::BTreeMap;

use super::units::{Millis, HOUR, SECOND};

/// How one job went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    pub category: usize,
    pub submit: Millis,
    /// When its (first) driver ran: the end of the job's wait.
    pub driver_running: Option<Millis>,
    /// When its last attempt ended, successfully or not.
    pub finished: Option<Millis>,
    pub failed: bool,
    pub attempts: u32,
}

impl JobOutcome {
    pub fn wait(&self) -> Option<Millis> {
        self.driver_running.map(|t| t - self.submit)
    }

    /// Submission to a successful finish.
    pub fn completion(&self) -> Option<Millis> {
        match (self.failed, self.finished) {
            (false, Some(t)) => Some(t - self.submit),
            _ => None,
        }
    }
}

/// Per-category sums (indexed like the workload's categories).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryCounts {
    /// EC2 attributed to the category's pods (shared: each pod's share of its node; transient:
    /// the whole cluster).
    pub ec2_usd: f64,
    /// EMR's charge: on EKS per pod's requested vCPU and GB; on EC2 per instance-hour.
    pub emr_usd: f64,
    /// Pods evicted by kube-scheduler's preemption.
    pub preempted_pods: u64,
    /// Pods lost to spot interruptions.
    pub interrupted_pods: u64,
    /// Pods evicted by Karpenter's disruption (emptiness, consolidation, expiry).
    pub disrupted_pods: u64,
    /// Attempts that failed and were retried (a lost driver).
    pub retries: u64,
}

/// Node count and CPU in hourly buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// (time, +n / −n nodes).
    changes: Vec<(Millis, i64)>,
    /// vCPU-milliseconds of node capacity per hour.
    capacity: Vec<f64>,
    /// vCPU-milliseconds requested by job pods per hour.
    requested: Vec<f64>,
}

/// One hour of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hour {
    pub nodes_mean: f64,
    pub nodes_max: i64,
    /// Requested vCPU over node vCPU (0 when there are no nodes).
    pub cpu_utilisation: f64,
}

fn add_interval(buckets: &mut Vec<f64>, start: Millis, end: Millis, weight: f64) {
    if end <= start {
        return;
    }
    let last = ((end - 1) / HOUR) as usize;
    if buckets.len() <= last {
        buckets.resize(last + 1, 0.0);
    }
    let mut t = start;
    while t < end {
        let hour = t / HOUR;
        let upto = ((hour + 1) * HOUR).min(end);
        buckets[hour as usize] += weight * (upto - t) as f64;
        t = upto;
    }
}

impl Timeline {
    /// `count` nodes of `vcpu` each existed from `start` to `end`.
    pub fn nodes(&mut self, start: Millis, end: Millis, count: i64, vcpu: f64) {
        if end <= start {
            return;
        }
        self.changes.push((start, count));
        self.changes.push((end, -count));
        add_interval(&mut self.capacity, start, end, vcpu * count as f64);
    }

    /// A pod requesting `vcpu` held it from `start` to `end`.
    pub fn pod(&mut self, start: Millis, end: Millis, vcpu: f64) {
        add_interval(&mut self.requested, start, end, vcpu);
    }

    /// Hourly points up to `horizon`, and the peak node count.
    pub fn hours(&self, horizon: Millis) -> (Vec<Hour>, i64) {
        let n = ((horizon + HOUR - 1) / HOUR).max(1) as usize;
        let mut changes = self.changes.clone();
        // At equal times, ends before starts: a node replaced at the same instant is not
        // counted twice.
        changes.sort_by_key(|&(t, d)| (t, d));
        let mut node_ms = vec![0f64; n];
        let mut max = vec![0i64; n];
        let mut count = 0i64;
        let mut peak = 0i64;
        let mut last = 0;
        let mut i = 0;
        for hour in 0..n {
            let start = hour as Millis * HOUR;
            let end = start + HOUR;
            // Changes at the hour's first instant decide the count it starts with.
            while i < changes.len() && changes[i].0 <= start {
                count += changes[i].1;
                peak = peak.max(count);
                last = last.max(changes[i].0);
                i += 1;
            }
            max[hour] = count;
            while i < changes.len() && changes[i].0 < end {
                let (t, d) = changes[i];
                let from = last.max(hour as Millis * HOUR);
                node_ms[hour] += (t - from).max(0) as f64 * count as f64;
                count += d;
                last = t;
                max[hour] = max[hour].max(count);
                peak = peak.max(count);
                i += 1;
            }
            let from = last.max(hour as Millis * HOUR);
            node_ms[hour] += (end - from).max(0) as f64 * count as f64;
            last = end;
        }
        let hours = (0..n)
            .map(|h| {
                let capacity = self.capacity.get(h).copied().unwrap_or(0.0);
                let requested = self.requested.get(h).copied().unwrap_or(0.0);
                Hour {
                    nodes_mean: node_ms[h] / HOUR as f64,
                    nodes_max: max[h],
                    cpu_utilisation: if capacity > 0.0 {
                        requested / capacity
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        (hours, peak)
    }

    /// Requested over available vCPU-time for the whole run.
    pub fn utilisation(&self) -> f64 {
        let capacity: f64 = self.capacity.iter().sum();
        if capacity > 0.0 {
            self.requested.iter().sum::<f64>() / capacity
        } else {
            0.0
        }
    }
}

/// One node of the shared cluster, from launch to termination.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLife {
    pub name: String,
    pub instance_type: String,
    pub spot: bool,
    /// NodePool name; `None` for the node group.
    pub pool: Option<String>,
    pub launched: Millis,
    pub ended: Millis,
}

/// Everything one policy's run produced.
#[derive(Debug, Clone, Default)]
pub struct PolicyRun {
    /// Indexed by job id.
    pub jobs: Vec<JobOutcome>,
    pub categories: Vec<CategoryCounts>,
    /// Every instance's EC2 bill.
    pub ec2_usd: f64,
    /// Every EMR charge.
    pub emr_usd: f64,
    /// The EKS control plane's fee over the horizon (shared only).
    pub eks_usd: f64,
    pub node_hours: f64,
    /// Of which on spot capacity.
    pub spot_node_hours: f64,
    pub node_launches: u64,
    pub launches_by_type: BTreeMap<String, u64>,
    /// Spot nodes interrupted.
    pub spot_interruptions: u64,
    /// The end of the simulated span: the last job's end, at least the workload's duration.
    pub horizon: Millis,
    /// Jobs still running when the drain limit stopped the simulation.
    pub unfinished: u64,
    pub timeline: Timeline,
    /// The shared cluster's nodes (empty for the transient policy).
    pub nodes: Vec<NodeLife>,
}

impl PolicyRun {
    pub fn new(jobs: usize, categories: usize) -> PolicyRun {
        PolicyRun {
            jobs: vec![JobOutcome::default(); jobs],
            categories: vec![CategoryCounts::default(); categories],
            ..PolicyRun::default()
        }
    }

    /// Records an instance's bill: per second with a one-minute minimum (EC2 Linux and
    /// EMR on EC2 both bill so). Returns the billed seconds.
    pub fn bill_instance(
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> u64 {
        sparkyard_cost::billed_seconds(start, end).max(60)
    }
}

/// Nearest-rank percentile (`p` in 0–100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[Millis], p: f64) -> Option<Millis> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Milliseconds as seconds with one decimal, for reports.
pub fn seconds(ms: Millis) -> f64 {
    (ms as f64 / SECOND as f64 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Millis> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn timeline_buckets_by_hour() {
        let mut t = Timeline::default();
        t.nodes(0, 2 * HOUR, 1, 4.0);
        t.nodes(HOUR / 2, HOUR, 2, 8.0);
        t.pod(0, HOUR, 2.0);
        let (hours, peak) = t.hours(2 * HOUR);
        assert_eq!(peak, 3);
        assert!((hours[0].nodes_mean - 2.0).abs() < 1e-9);
        assert_eq!(hours[0].nodes_max, 3);
        assert!((hours[1].nodes_mean - 1.0).abs() < 1e-9);
        assert_eq!(hours[1].nodes_max, 1);
        // 2 vCPU of 4 + 16×½ = 12 vCPU-hours.
        assert!((hours[0].cpu_utilisation - 2.0 / 12.0).abs() < 1e-9);
        assert_eq!(hours[1].cpu_utilisation, 0.0);
    }
}
