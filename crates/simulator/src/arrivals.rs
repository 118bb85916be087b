//! The job mix, expanded: every job of every category with its submission time, its work
//! (task durations) and its transient cluster's bootstrap time, drawn once so that both
//! policies run exactly the same jobs.
//!
//! Randomness is seeded per purpose — a category's arrivals, a job's draws — from the
//! workload's seed, so adding a category or changing one job's shape does not reshuffle
//! every other draw.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::units::{Millis, Range, MINUTE};
use super::workload::{Arrivals, Category, Work, Workload};

/// One job as both policies run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Index in submission order.
    pub id: u32,
    pub category: usize,
    pub submit: Millis,
    /// Task durations in milliseconds, in the order the driver hands them out.
    pub tasks: Vec<u32>,
    /// Tasks one executor runs at once (1 for executor-seconds work, else its cores).
    pub slots_per_executor: u32,
    /// How long its transient EMR-on-EC2 cluster takes to start.
    pub bootstrap: Millis,
}

impl Job {
    /// The job's work in executor-slot milliseconds.
    pub fn work(&self) -> u64 {
        self.tasks.iter().map(|&t| u64::from(t)).sum()
    }
}

/// Purposes of the seeded streams.
const ARRIVALS: u64 = 1;
const JOB: u64 = 2;
/// Used by the shared policy: spot interruptions per node.
pub const SPOT: u64 = 3;

/// A generator for one purpose: the seed and the parts mixed with SplitMix64's finalizer,
/// so nearby inputs give unrelated streams. Xoshiro256++ is rand's portable generator:
/// the same seed gives the same numbers on every platform and rand release.
pub fn stream(seed: u64, parts: &[u64]) -> Xoshiro256PlusPlus {
    let mut h = seed ^ 0x5851_f42d_4c95_7f2d;
    for &p in parts {
        h = mix(h ^ mix(p.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    }
    Xoshiro256PlusPlus::seed_from_u64(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn draw_millis(rng: &mut Xoshiro256PlusPlus, r: Range<Millis>) -> Millis {
    if r.min == r.max {
        r.min
    } else {
        rng.random_range(r.min..=r.max)
    }
}

pub fn draw_f64(rng: &mut Xoshiro256PlusPlus, r: Range<f64>) -> f64 {
    if r.min == r.max {
        r.min
    } else {
        rng.random_range(r.min..=r.max)
    }
}

/// When a category's jobs arrive (before `count` multiplies them), in `[0, duration)`.
pub fn arrival_times(w: &Workload, index: usize, c: &Category) -> Vec<Millis> {
    let mut rng = stream(w.seed, &[ARRIVALS, index as u64]);
    let mut times = Vec::new();
    let mut keep = |rng: &mut Xoshiro256PlusPlus, at: Millis, jitter: Millis, p: f64| {
        // Both draws are made for every candidate, kept or not, so the stream stays aligned.
        let delay = if jitter > 0 {
            rng.random_range(0..jitter)
        } else {
            0
        };
        let coin = p >= 1.0 || rng.random_bool(p);
        if coin && at + delay < w.duration {
            times.push(at + delay);
        }
    };
    match &c.arrivals {
        Arrivals::Every {
            interval,
            jitter,
            probability,
        } => {
            let mut at = 0;
            while at < w.duration {
                keep(&mut rng, at, *jitter, *probability);
                at += draw_millis(&mut rng, *interval);
            }
        }
        Arrivals::Cron {
            schedule,
            jitter,
            probability,
        } => {
            for minute in 0..(w.duration + MINUTE - 1) / MINUTE {
                let at = minute * MINUTE;
                if schedule.matches(w.start + chrono::Duration::milliseconds(at)) {
                    keep(&mut rng, at, *jitter, *probability);
                }
            }
        }
        Arrivals::Trace(list) => times.extend(list.iter().copied().filter(|t| *t < w.duration)),
    }
    times.sort_unstable();
    times
}

fn tasks_of(rng: &mut Xoshiro256PlusPlus, work: &Work) -> Vec<u32> {
    match work {
        Work::ExecutorSeconds { seconds, chunk } => {
            let total = (draw_f64(rng, *seconds) * 1000.0).round().max(1.0) as i64;
            let chunk = *chunk;
            let mut tasks = vec![chunk as u32; (total / chunk) as usize];
            if total % chunk > 0 {
                tasks.push((total % chunk) as u32);
            }
            tasks
        }
        Work::Tasks { count, seconds } => (0..*count)
            .map(|_| (draw_f64(rng, *seconds) * 1000.0).round().max(1.0) as u32)
            .collect(),
    }
}

/// Every job of the workload, in submission order (ties: category order, then arrival).
pub fn jobs(w: &Workload) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (ci, c) in w.categories.iter().enumerate() {
        let slots = match c.work {
            Work::ExecutorSeconds { .. } => 1,
            Work::Tasks { .. } => c.executor_cores,
        };
        for (ai, at) in arrival_times(w, ci, c).into_iter().enumerate() {
            for k in 0..c.count {
                let mut rng = stream(w.seed, &[JOB, ci as u64, ai as u64, u64::from(k)]);
                let bootstrap = draw_millis(&mut rng, w.transient.bootstrap);
                jobs.push(Job {
                    id: 0,
                    category: ci,
                    submit: at,
                    tasks: tasks_of(&mut rng, &c.work),
                    slots_per_executor: slots,
                    bootstrap,
                });
            }
        }
    }
    // Stable: equal times keep category and arrival order.
    jobs.sort_by_key(|j| j.submit);
    for (i, j) in jobs.iter_mut().enumerate() {
        j.id = i as u32;
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{DAY, HOUR};

    fn workload(arrivals: &str, work: &str) -> Workload {
        Workload::parse(&format!(
            r#"
seed: 3
duration: 2d
policies: {{shared: {{node_group: {{instance_type: m5.2xlarge, count: 2}}}}}}
categories:
  - name: c
    arrivals: {arrivals}
    count: 2
    driver: {{cpu: 1, memory: 2Gi}}
    executors: {{count: 2, cpu: 2, memory: 4Gi}}
    work: {work}
"#
        ))
        .unwrap()
    }

    #[test]
    fn cron_arrivals_follow_the_calendar() {
        // 2026-03-02 is a Monday: two weekdays, 13 hours each.
        let w = workload("{cron: \"0 7-19 * * mon-fri\"}", "{executor_seconds: 600}");
        let jobs = jobs(&w);
        assert_eq!(jobs.len(), 2 * 13 * 2);
        assert_eq!(jobs[0].submit, 7 * HOUR);
        assert_eq!(jobs[1].submit, 7 * HOUR, "count: 2 jobs per arrival");
        assert!(jobs.windows(2).all(|p| p[0].submit <= p[1].submit));
        assert!(jobs.iter().all(|j| j.submit < 2 * DAY));
        // 600 executor-seconds in 60 s chunks.
        assert_eq!(jobs[0].tasks, vec![60_000; 10]);
        assert_eq!(jobs[0].slots_per_executor, 1);
    }

    #[test]
    fn every_with_a_range_draws_intervals_and_stays_reproducible() {
        let w = workload(
            "{every: {min: 2m, max: 5m}}",
            "{tasks: 20, task_seconds: {min: 5, max: 30}}",
        );
        let a = jobs(&w);
        let per_day = a.len() as f64 / 2.0 / 2.0;
        assert!(
            (24.0 * 60.0 / 5.0..=24.0 * 60.0 / 2.0).contains(&per_day),
            "{per_day}"
        );
        assert!(
            a.iter()
                .all(|j| j.tasks.len() == 20
                    && j.tasks.iter().all(|&t| (5_000..=30_000).contains(&t)))
        );
        assert!(a
            .iter()
            .all(|j| (5 * MINUTE..=10 * MINUTE).contains(&j.bootstrap)));
        assert_eq!(a, jobs(&w), "same seed, same jobs");
        assert_eq!(a[0].slots_per_executor, 2, "tasks run one per core");
    }

    #[test]
    fn traces_and_probabilities() {
        let w = workload(
            "{trace: [1h, \"2026-03-02T05:00:00Z\", 3d]}",
            "{executor_seconds: 90}",
        );
        let t: Vec<Millis> = jobs(&w).iter().map(|j| j.submit).collect();
        assert_eq!(
            t,
            vec![HOUR, HOUR, 5 * HOUR, 5 * HOUR],
            "3d is past the duration"
        );
        assert_eq!(jobs(&w)[0].tasks, vec![60_000, 30_000]);
        let half = workload(
            "{every: 1m, probability: 0.5, jitter: 30s}",
            "{executor_seconds: 60}",
        );
        let n = jobs(&half).len() as f64 / 2.0;
        assert!((2880.0 * 0.45..2880.0 * 0.55).contains(&n), "{n}");
    }
}
