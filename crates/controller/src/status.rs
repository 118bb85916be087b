//! update status, the pure part: an emr-containers job-run state from what the cluster shows.
//!
//! The states and messages follow EMR on EKS (reference §6.1): PENDING until the job runner
//! exists, SUBMITTED while the driver is not yet running, RUNNING while it runs, then
//! COMPLETED or FAILED from the driver's exit; a runner that fails before any driver exists
//! fails the run; SUBMITTED for longer than `job-start-timeout` fails with `cluster timeout`.

use std::time::Duration;

// The states and failure reasons are the API's own (`sparkyard_emr::records`), so what the
// controller derives is exactly what DescribeJobRun shows.
pub use sparkyard_emr::{FailureReason, JobRunState};

/// What the cluster shows for the current attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The runner Job exists.
    pub runner_exists: bool,
    /// The runner Job finished with failure (`Failed` condition) — spark-submit itself failed.
    pub runner_failed: bool,
    pub driver: Option<DriverObservation>,
    /// Seconds since the attempt's runner was created (for the start timeout).
    pub since_submitted: Option<Duration>,
    /// What spark-submit said when it failed, from the runner container's termination
    /// message ([`spark_submit_error`]).
    pub runner_error: Option<String>,
}

/// The error a failed `spark-submit` printed — JVM or native, the same line: the last
/// `Exception in thread "main" …` line of the runner's termination message (its log's tail,
/// `FallbackToLogsOnError`), without that prefix.
pub fn spark_submit_error(message: &str) -> Option<String> {
    const PREFIX: &str = "Exception in thread \"main\" ";
    message
        .lines()
        .rev()
        .find_map(|line| {
            line.split_once(PREFIX)
                .map(|(_, error)| error.trim().to_string())
        })
        .filter(|error| !error.is_empty())
}

#[derive(Debug, Clone, PartialEq)]
pub enum DriverObservation {
    /// Created but not running yet (Pending / ContainerCreating).
    Pending,
    Running {
        running_for: Duration,
    },
    Succeeded {
        ran_for: Duration,
    },
    Failed {
        exit_code: Option<i32>,
        reason: Option<String>,
        ran_for: Duration,
    },
    /// The driver pod was deleted before it finished (preempted, evicted, deleted by hand).
    Deleted,
}

/// A state change to record, with EMR's `stateDetails` and `failureReason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: JobRunState,
    pub state_details: Option<String>,
    pub failure_reason: Option<FailureReason>,
}

impl Transition {
    fn to(state: JobRunState) -> Self {
        Self {
            state,
            state_details: None,
            failure_reason: None,
        }
    }

    fn failed(reason: FailureReason, details: String) -> Self {
        Self {
            state: JobRunState::Failed,
            state_details: Some(truncate(details)),
            failure_reason: Some(reason),
        }
    }
}

/// Where the logs of a run are, for messages that point at them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogLocations {
    pub s3_driver_prefix: Option<String>,
    pub cloudwatch: Option<String>,
}

/// The next state, or `None` when the current one still holds. Terminal and cancelling
/// runs are left alone: cancellation is driven by the controller, not by what pods do.
pub fn next(
    current: JobRunState,
    observed: &Observed,
    start_timeout: Duration,
    logs: &LogLocations,
) -> Option<Transition> {
    if current.is_terminal() || current == JobRunState::CancelPending {
        return None;
    }
    let target = match &observed.driver {
        Some(DriverObservation::Succeeded { ran_for }) => Transition {
            state: JobRunState::Completed,
            state_details: Some(format!("JobRun completed successfully. It ran for {} Seconds", ran_for.as_secs())),
            failure_reason: None,
        },
        Some(DriverObservation::Failed { exit_code, reason, .. }) => {
            let exit = match (exit_code, reason) {
                (Some(code), Some(reason)) => format!("exit code {code} ({reason})"),
                (Some(code), None) => format!("exit code {code}"),
                (None, Some(reason)) => reason.clone(),
                (None, None) => "an unknown error".to_string(),
            };
            Transition::failed(FailureReason::UserError, format!("JobRun failed: the Spark driver exited with {exit}. {}", where_logs(logs)))
        }
        Some(DriverObservation::Deleted) => Transition::failed(
            FailureReason::UserError,
            format!("JobRun failed: the Spark driver pod was deleted before the application finished. {}", where_logs(logs)),
        ),
        Some(DriverObservation::Running { .. }) => Transition::to(JobRunState::Running),
        Some(DriverObservation::Pending) => Transition::to(JobRunState::Submitted),
        None if observed.runner_failed => Transition::failed(
            FailureReason::UserError,
            match &observed.runner_error {
                // Spark's own words first: they are what the user must fix.
                Some(error) => format!("JobRun submission failed: {error}"),
                None => format!("JobRun submission failed: spark-submit exited with an error before a driver was created. {}", where_logs(logs)),
            },
        ),
        None if observed.runner_exists => {
            if observed.since_submitted.is_some_and(|waited| waited >= start_timeout) {
                Transition::failed(FailureReason::ClusterUnavailable, "cluster timeout".to_string())
            } else {
                Transition::to(JobRunState::Submitted)
            }
        }
        None => return None,
    };
    (target.state != current || target.state.is_terminal()).then_some(target)
}

fn where_logs(logs: &LogLocations) -> String {
    // One location only: stateDetails holds 256 characters and an S3 prefix alone can take
    // 170 of them; S3 first, as the console links it.
    match (&logs.s3_driver_prefix, &logs.cloudwatch) {
        (Some(s3), _) => format!("Driver logs: {s3}"),
        (None, Some(cw)) => format!("Driver logs: CloudWatch Logs {cw}"),
        (None, None) => "See the driver pod's log.".to_string(),
    }
}

/// `stateDetails` holds at most 256 characters.
fn truncate(details: String) -> String {
    if details.chars().count() <= 256 {
        details
    } else {
        details.chars().take(253).collect::<String>() + "..."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(900);

    fn observe(driver: Option<DriverObservation>) -> Observed {
        Observed {
            runner_exists: true,
            runner_failed: false,
            driver,
            since_submitted: Some(Duration::from_secs(5)),
            runner_error: None,
        }
    }

    #[test]
    fn a_failed_submission_carries_spark_submits_error() {
        let message = "26/12/04 20:10:01 INFO X: starting\nException in thread \"main\" java.lang.NumberFormatException: Size must be specified as bytes (b)\n\tat org.apache.spark.network.util.JavaUtils.byteStringAs(JavaUtils.java:331)\n";
        let error = spark_submit_error(message).unwrap();
        assert_eq!(
            error,
            "java.lang.NumberFormatException: Size must be specified as bytes (b)"
        );
        assert_eq!(spark_submit_error("no exception here\n"), None);
        let observed = Observed {
            runner_failed: true,
            runner_error: Some(error),
            ..observe(None)
        };
        let failed = next(
            JobRunState::Submitted,
            &observed,
            TIMEOUT,
            &LogLocations::default(),
        )
        .unwrap();
        assert_eq!(failed.state, JobRunState::Failed);
        assert_eq!(
            failed.state_details.as_deref(),
            Some("JobRun submission failed: java.lang.NumberFormatException: Size must be specified as bytes (b)")
        );
    }

    #[test]
    fn happy_path_walks_emr_states() {
        let logs = LogLocations::default();
        assert_eq!(
            next(JobRunState::Pending, &Observed::default(), TIMEOUT, &logs),
            None
        );
        assert_eq!(
            next(JobRunState::Pending, &observe(None), TIMEOUT, &logs)
                .unwrap()
                .state,
            JobRunState::Submitted
        );
        assert_eq!(
            next(
                JobRunState::Submitted,
                &observe(Some(DriverObservation::Pending)),
                TIMEOUT,
                &logs
            ),
            None
        );
        let running = observe(Some(DriverObservation::Running {
            running_for: Duration::from_secs(1),
        }));
        assert_eq!(
            next(JobRunState::Submitted, &running, TIMEOUT, &logs)
                .unwrap()
                .state,
            JobRunState::Running
        );
        assert_eq!(next(JobRunState::Running, &running, TIMEOUT, &logs), None);
        let done = next(
            JobRunState::Running,
            &observe(Some(DriverObservation::Succeeded {
                ran_for: Duration::from_secs(41),
            })),
            TIMEOUT,
            &logs,
        )
        .unwrap();
        assert_eq!(done.state, JobRunState::Completed);
        assert_eq!(
            done.state_details.unwrap(),
            "JobRun completed successfully. It ran for 41 Seconds"
        );
    }

    #[test]
    fn a_failing_driver_is_a_user_error_pointing_at_the_logs() {
        let logs = LogLocations {
            s3_driver_prefix: Some(
                "s3://logs/vc/jobs/id/containers/spark-id/spark-id-driver/".into(),
            ),
            cloudwatch: None,
        };
        let failed = observe(Some(DriverObservation::Failed {
            exit_code: Some(1),
            reason: Some("Error".into()),
            ran_for: Duration::from_secs(3),
        }));
        let t = next(JobRunState::Running, &failed, TIMEOUT, &logs).unwrap();
        assert_eq!(t.state, JobRunState::Failed);
        assert_eq!(t.failure_reason, Some(FailureReason::UserError));
        assert!(t
            .state_details
            .unwrap()
            .contains("s3://logs/vc/jobs/id/containers/spark-id/spark-id-driver/"));
    }

    #[test]
    fn no_driver_within_the_start_timeout_fails_the_run() {
        let mut waiting = observe(None);
        waiting.since_submitted = Some(TIMEOUT);
        let t = next(
            JobRunState::Submitted,
            &waiting,
            TIMEOUT,
            &LogLocations::default(),
        )
        .unwrap();
        assert_eq!(
            (t.state, t.failure_reason),
            (JobRunState::Failed, Some(FailureReason::ClusterUnavailable))
        );
        assert_eq!(t.state_details.as_deref(), Some("cluster timeout"));
    }

    #[test]
    fn terminal_and_cancelling_runs_do_not_move() {
        let running = observe(Some(DriverObservation::Running {
            running_for: Duration::ZERO,
        }));
        for state in [
            JobRunState::Completed,
            JobRunState::Failed,
            JobRunState::Cancelled,
            JobRunState::CancelPending,
        ] {
            assert_eq!(
                next(state, &running, TIMEOUT, &LogLocations::default()),
                None
            );
        }
    }

    #[test]
    fn a_realistic_driver_failure_keeps_the_whole_s3_prefix() {
        let prefix = "s3://monthly-batch-logs-123456789012-us-east-1/ad6ifz9zx82jmokb12i4x3ywk/jobs/0000000eaxo9wv9tj8f/containers/spark-0000000eaxo9wv9tj8f/spark-0000000eaxo9wv9tj8f-driver/";
        let logs = LogLocations {
            s3_driver_prefix: Some(prefix.into()),
            cloudwatch: Some("/emr-on-eks/eks-emr-cluster/monthly-batch stream pi/x".into()),
        };
        let failed = observe(Some(DriverObservation::Failed {
            exit_code: Some(3),
            reason: Some("Error".into()),
            ran_for: Duration::from_secs(3),
        }));
        let details = next(JobRunState::Running, &failed, TIMEOUT, &logs)
            .unwrap()
            .state_details
            .unwrap();
        assert!(details.ends_with(prefix), "{details}");
    }

    #[test]
    fn details_fit_in_256_characters() {
        let long = LogLocations {
            s3_driver_prefix: Some("s3://".to_string() + &"x".repeat(400)),
            cloudwatch: None,
        };
        let failed = observe(Some(DriverObservation::Deleted));
        let details = next(JobRunState::Running, &failed, TIMEOUT, &long)
            .unwrap()
            .state_details
            .unwrap();
        assert_eq!(details.chars().count(), 256);
    }
}
