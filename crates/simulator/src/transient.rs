//! The **transient** policy: one EMR-on-EC2 cluster per job, as the seed's company runs
//! today.
//!
//! Per job: the cluster is requested at submission and takes the job's bootstrap time
//! (drawn from `policies.transient.bootstrap`, 5–10 minutes by default) to reach
//! `WAITING`; the step's spark-submit then starts the driver (`timing.submit` +
//! `timing.container_start`), and every executor starts one container start later. The
//! cluster is the job's alone, so nothing waits for capacity, nothing is preempted and
//! every executor runs from the start; the tasks are handed to executor slots greedily
//! (each to the slot that frees first). After the last task the cluster terminates
//! (`termination`, one minute by default).
//!
//! The fleet is sized to the job: one primary node (`primary_instance_type`) plus core
//! nodes of the candidate type (`core_instance_types`) whose fleet is cheapest per hour,
//! each core node offering YARN all its vCPUs and `yarn_memory_fraction` of its memory;
//! the driver (cluster deploy mode) and executors are packed first-fit onto them.
//!
//! Billing: each instance from the cluster request to its termination (the bootstrap
//! included: the instances run while EMR installs and configures them), per second with a
//! one-minute minimum, at the on-demand EC2 price plus EMR on EC2's charge
//! (`emr_uplift_fraction` × on-demand, 25 % by default: r5.4xlarge $0.252/h against
//! $1.008/h; or `emr_uplift_per_hour` per type). Instances are on-demand, as the seed's
//! clusters are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::arrivals::Job;
use super::metrics::PolicyRun;
use super::units::Millis;
use super::workload::{Category, PodShape, Workload, WorkloadError};

const MIB: f64 = 1024.0 * 1024.0;

/// A job's cluster: the core type and how many of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub core_type: String,
    pub core_count: u32,
    /// Primary plus core instances, EC2 and EMR, per hour.
    pub usd_per_hour: f64,
}

/// What YARN offers on one core node: millicores and bytes.
fn yarn_capacity(w: &Workload, instance_type: &str) -> (i64, i64) {
    let it = sparkyard_instance_types::get(instance_type).expect("checked instance type");
    (
        i64::from(it.vcpu) * 1000,
        (it.memory_mib as f64 * MIB * w.transient.yarn_memory_fraction) as i64,
    )
}

fn fits(pod: &PodShape, capacity: (i64, i64)) -> bool {
    pod.cpu_millis <= capacity.0 && pod.memory_bytes <= capacity.1
}

/// Core nodes of `instance_type` holding the driver and the executors (first fit).
fn core_nodes(c: &Category, capacity: (i64, i64)) -> Option<u32> {
    if !fits(&c.driver, capacity) || !fits(&c.executors, capacity) {
        return None;
    }
    let mut free: Vec<(i64, i64)> = vec![(
        capacity.0 - c.driver.cpu_millis,
        capacity.1 - c.driver.memory_bytes,
    )];
    for _ in 0..c.executor_count {
        let e = &c.executors;
        match free
            .iter_mut()
            .find(|f| f.0 >= e.cpu_millis && f.1 >= e.memory_bytes)
        {
            Some(f) => {
                f.0 -= e.cpu_millis;
                f.1 -= e.memory_bytes;
            }
            None => free.push((capacity.0 - e.cpu_millis, capacity.1 - e.memory_bytes)),
        }
    }
    Some(free.len() as u32)
}

fn hourly(w: &Workload, instance_type: &str) -> f64 {
    let it = sparkyard_instance_types::get(instance_type).expect("checked instance type");
    let ec2 = it.on_demand_usd;
    ec2 + w.transient.uplift_per_hour(instance_type, ec2)
}

/// The cheapest fleet per hour for a category's jobs (ties: fewer nodes, then the order of
/// `core_instance_types`).
pub fn fleet(w: &Workload, c: &Category) -> Option<Fleet> {
    let primary = hourly(w, &w.transient.primary_instance_type);
    let mut best: Option<Fleet> = None;
    for t in &w.transient.core_instance_types {
        let Some(n) = core_nodes(c, yarn_capacity(w, t)) else {
            continue;
        };
        let usd = primary + f64::from(n) * hourly(w, t);
        if best
            .as_ref()
            .is_none_or(|b| usd < b.usd_per_hour || (usd == b.usd_per_hour && n < b.core_count))
        {
            best = Some(Fleet {
                core_type: t.clone(),
                core_count: n,
                usd_per_hour: usd,
            });
        }
    }
    best
}

/// Every driver and executor must fit a core node of some candidate type.
pub fn check_fits(w: &Workload) -> Result<(), WorkloadError> {
    for (i, c) in w.categories.iter().enumerate() {
        if fleet(w, c).is_some() {
            continue;
        }
        let (role, pod) = if w
            .transient
            .core_instance_types
            .iter()
            .any(|t| fits(&c.driver, yarn_capacity(w, t)))
        {
            ("executors", &c.executors)
        } else {
            ("driver", &c.driver)
        };
        return Err(WorkloadError {
            path: format!("categories[{i}].{role}"),
            message: format!(
                "{}m CPU / {} MiB fits no core node of policies.transient.core_instance_types ({}) with {} of its memory for YARN",
                pod.cpu_millis,
                pod.memory_bytes >> 20,
                w.transient.core_instance_types.join(", "),
                w.transient.yarn_memory_fraction
            ),
        });
    }
    Ok(())
}

/// The time to run `tasks` on `slots` slots, each task going to the slot that frees first.
pub fn makespan(tasks: &[u32], slots: u32) -> Millis {
    let mut free: BinaryHeap<Reverse<Millis>> = (0..slots.max(1)).map(|_| Reverse(0)).collect();
    let mut end = 0;
    for &t in tasks {
        let Reverse(at) = free.pop().expect("at least one slot");
        let done = at + Millis::from(t);
        end = end.max(done);
        free.push(Reverse(done));
    }
    end
}

/// Runs every job on its own cluster.
pub fn simulate(w: &Workload, jobs: &[Job]) -> PolicyRun {
    let mut run = PolicyRun::new(jobs.len(), w.categories.len());
    let fleets: Vec<Fleet> = w
        .categories
        .iter()
        .map(|c| fleet(w, c).expect("checked by check_fits"))
        .collect();
    let at = |ms: Millis| w.start + chrono::Duration::milliseconds(ms);
    let primary = sparkyard_instance_types::get(&w.transient.primary_instance_type)
        .expect("checked instance type");
    let mut horizon = w.duration;
    for job in jobs {
        let c = &w.categories[job.category];
        let fleet = &fleets[job.category];
        let core = sparkyard_instance_types::get(&fleet.core_type).expect("checked");
        let driver_running =
            job.submit + job.bootstrap + w.timing.submit + w.timing.container_start;
        let executors_running = driver_running + w.timing.container_start;
        let slots = c.executor_count * job.slots_per_executor;
        let finished = executors_running + makespan(&job.tasks, slots);
        let terminated = finished + w.transient.termination;
        horizon = horizon.max(terminated);
        let seconds = PolicyRun::bill_instance(at(job.submit), at(terminated)) as f64;
        let hours = seconds / 3600.0;
        let count = f64::from(fleet.core_count);
        let ec2 = (primary.on_demand_usd + count * core.on_demand_usd) * hours;
        let emr = (w
            .transient
            .uplift_per_hour(&primary.name, primary.on_demand_usd)
            + count * w.transient.uplift_per_hour(&core.name, core.on_demand_usd))
            * hours;
        run.ec2_usd += ec2;
        run.emr_usd += emr;
        let counts = &mut run.categories[job.category];
        counts.ec2_usd += ec2;
        counts.emr_usd += emr;
        run.node_hours += (1.0 + count) * hours;
        run.node_launches += 1 + u64::from(fleet.core_count);
        *run.launches_by_type
            .entry(primary.name.clone())
            .or_default() += 1;
        *run.launches_by_type.entry(core.name.clone()).or_default() += u64::from(fleet.core_count);
        run.timeline
            .nodes(job.submit, terminated, 1, f64::from(primary.vcpu));
        run.timeline.nodes(
            job.submit,
            terminated,
            i64::from(fleet.core_count),
            f64::from(core.vcpu),
        );
        run.timeline.pod(
            driver_running - w.timing.container_start,
            finished,
            c.driver.cpu_millis as f64 / 1000.0,
        );
        run.timeline.pod(
            executors_running - w.timing.container_start,
            finished,
            c.executors.cpu_millis as f64 * f64::from(c.executor_count) / 1000.0,
        );
        run.jobs[job.id as usize] = super::metrics::JobOutcome {
            category: job.category,
            submit: job.submit,
            driver_running: Some(driver_running),
            finished: Some(finished),
            failed: false,
            attempts: 1,
        };
    }
    run.horizon = horizon;
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::MINUTE;

    #[test]
    fn makespan_fills_slots_greedily() {
        assert_eq!(makespan(&[10, 10, 10, 10], 2), 20);
        assert_eq!(makespan(&[30, 10, 10, 10], 2), 30);
        assert_eq!(makespan(&[5], 8), 5);
        assert_eq!(makespan(&[], 3), 0);
    }

    #[test]
    fn bootstrap_adds_five_to_ten_minutes_to_every_wait() {
        let w = Workload::parse(crate::tests::SMALL).unwrap();
        let jobs = crate::arrivals::jobs(&w);
        let run = simulate(&w, &jobs);
        assert_eq!(run.jobs.len(), 24);
        let latency = w.timing.submit + w.timing.container_start;
        for (job, outcome) in jobs.iter().zip(&run.jobs) {
            let wait = outcome.wait().unwrap() - latency;
            assert!((5 * MINUTE..=10 * MINUTE).contains(&wait), "{wait}");
            assert_eq!(wait, job.bootstrap);
            // 600 executor-seconds on 2 executors: 5 minutes after they start.
            assert_eq!(
                outcome.finished.unwrap() - outcome.driver_running.unwrap(),
                w.timing.container_start + 5 * MINUTE
            );
        }
        assert!(run.ec2_usd > 0.0 && run.emr_usd > 0.0);
        // The EMR uplift is 25 % of the on-demand price.
        assert!((run.emr_usd / run.ec2_usd - 0.25).abs() < 1e-9);
    }

    #[test]
    fn fleets_are_sized_to_the_job() {
        let w = Workload::parse(crate::tests::SMALL).unwrap();
        // A 1-vCPU driver and two 2-vCPU/4Gi executors fit one m5.2xlarge core node.
        let f = fleet(&w, &w.categories[0]).unwrap();
        assert_eq!((f.core_type.as_str(), f.core_count), ("m5.2xlarge", 1));
        let mut big = w.categories[0].clone();
        big.executor_count = 10;
        let f = fleet(&w, &big).unwrap();
        // 21 vCPU: three m5.2xlarge (3 × $0.48/h with the uplift) beat two m5.4xlarge
        // (2 × $0.96/h) and three r5.2xlarge (3 × $0.63/h).
        assert_eq!((f.core_type.as_str(), f.core_count), ("m5.2xlarge", 3));
    }
}
