//! update status, the observing half: what the runner Job and the driver pod of the current
//! attempt show, turned into [`status::Observed`](crate::status::Observed); and the
//! scheduling rules around it (queue slots, retry backoff). All pure.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sparkyard_emr::{JobRunState, JobRunTransition};

use crate::status::{DriverObservation, Observed, Transition};

/// Spark's driver container name.
pub const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";

/// The observation of one attempt. `now_ms` is the wall clock in Unix milliseconds.
pub fn observe(
    current: JobRunState,
    runner: Option<&Job>,
    driver: Option<&Pod>,
    now_ms: i64,
) -> Observed {
    let runner_condition = |kind: &str| {
        runner
            .and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    let runner_failed = runner_condition("Failed")
        || runner
            .and_then(|j| j.status.as_ref())
            .and_then(|s| s.failed)
            .is_some_and(|n| n > 0);
    let runner_done = runner_failed || runner_condition("Complete");
    let since_submitted = runner
        .and_then(|j| j.metadata.creation_timestamp.as_ref())
        .map(|t| elapsed(t, now_ms));
    let driver = match driver {
        Some(pod) => Some(driver_observation(pod, now_ms)),
        // The driver was there (the run was RUNNING) or spark-submit has finished without
        // one being visible: it was deleted (preempted, evicted, removed by hand).
        None if current == JobRunState::Running || (runner_done && !runner_failed) => {
            Some(DriverObservation::Deleted)
        }
        None => None,
    };
    Observed {
        runner_exists: runner.is_some(),
        runner_failed,
        driver,
        since_submitted,
        runner_error: None,
    }
}

fn driver_observation(pod: &Pod, now_ms: i64) -> DriverObservation {
    let status = pod.status.as_ref();
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.name == DRIVER_CONTAINER)
                .or_else(|| cs.first())
        });
    let state: Option<&ContainerState> = container.and_then(|c| c.state.as_ref());
    let started = |s: Option<&Time>| s.map(|t| elapsed(t, now_ms)).unwrap_or_default();
    let ran_for = || {
        state
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| {
                let start = t.started_at.as_ref()?.0.as_millisecond();
                let end = t.finished_at.as_ref()?.0.as_millisecond();
                Some(Duration::from_millis((end - start).max(0) as u64))
            })
            .unwrap_or_default()
    };
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => DriverObservation::Succeeded { ran_for: ran_for() },
        Some("Failed") => {
            let terminated = state.and_then(|s| s.terminated.as_ref());
            DriverObservation::Failed {
                exit_code: terminated.map(|t| t.exit_code),
                reason: terminated
                    .and_then(|t| t.reason.clone())
                    .or_else(|| status.and_then(|s| s.reason.clone())),
                ran_for: ran_for(),
            }
        }
        Some("Running") => DriverObservation::Running {
            running_for: started(
                state
                    .and_then(|s| s.running.as_ref())
                    .and_then(|r| r.started_at.as_ref()),
            ),
        },
        _ => DriverObservation::Pending,
    }
}

fn elapsed(since: &Time, now_ms: i64) -> Duration {
    Duration::from_millis((now_ms - since.0.as_millisecond()).max(0) as u64)
}

/// The API call for a derived transition.
pub fn to_emr(t: &Transition) -> JobRunTransition {
    JobRunTransition {
        state: t.state,
        state_details: Some(t.state_details.clone()),
        failure_reason: Some(t.failure_reason),
        finished_at: None,
        attempt_count: None,
    }
}

/// Kubernetes Job back-off between attempts: 10 s, 20 s, 40 s, … capped at 6 minutes.
/// `failed_attempts` counts the attempts that failed so far (≥ 1).
pub fn retry_delay(failed_attempts: u32) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(16);
    Duration::from_secs((10u64 << exponent).min(360))
}

/// Of a virtual cluster's PENDING runs (oldest first), how many may start now:
/// `maxConcurrentJobRuns` minus the runs already submitted. No limit: all of them.
pub fn free_slots(max_concurrent: Option<u64>, submitted_or_running: u64) -> Option<u64> {
    max_concurrent.map(|max| max.saturating_sub(submitted_or_running))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_100_000;

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "r", "creationTimestamp": "2027-01-15T08:00:00Z"},
            "status": status,
        }))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "d"}, "status": status})).unwrap()
    }

    #[test]
    fn driver_phases_map_to_observations() {
        let running = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2027-01-15T08:00:00Z"}}}]}));
        assert!(matches!(
            observe(
                JobRunState::Submitted,
                Some(&job(json!({}))),
                Some(&running),
                NOW
            )
            .driver,
            Some(DriverObservation::Running { .. })
        ));
        let failed = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "spark-kubernetes-driver", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": "2027-01-15T08:00:00Z", "finishedAt": "2027-01-15T08:00:07Z"}}}]}));
        assert_eq!(
            observe(JobRunState::Running, None, Some(&failed), NOW).driver,
            Some(DriverObservation::Failed {
                exit_code: Some(1),
                reason: Some("Error".into()),
                ran_for: Duration::from_secs(7)
            })
        );
        let pending = pod(json!({"phase": "Pending"}));
        assert_eq!(
            observe(JobRunState::Submitted, None, Some(&pending), NOW).driver,
            Some(DriverObservation::Pending)
        );
    }

    #[test]
    fn runner_outcomes_and_lost_drivers() {
        let failed =
            job(json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}));
        let o = observe(JobRunState::Submitted, Some(&failed), None, NOW);
        assert!(o.runner_failed && o.driver.is_none());
        let done =
            job(json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}));
        assert_eq!(
            observe(JobRunState::Submitted, Some(&done), None, NOW).driver,
            Some(DriverObservation::Deleted)
        );
        assert_eq!(
            observe(JobRunState::Running, Some(&job(json!({}))), None, NOW).driver,
            Some(DriverObservation::Deleted)
        );
        let waiting = observe(JobRunState::Submitted, Some(&job(json!({}))), None, NOW);
        assert_eq!(waiting.driver, None);
        assert!(waiting.since_submitted.unwrap() > Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_up_to_six_minutes() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 360, 360]);
        assert_eq!(retry_delay(100).as_secs(), 360);
    }

    #[test]
    fn slots_are_the_limit_minus_submitted_runs() {
        assert_eq!(free_slots(None, 5), None);
        assert_eq!(free_slots(Some(2), 1), Some(1));
        assert_eq!(free_slots(Some(2), 3), Some(0));
    }
}
