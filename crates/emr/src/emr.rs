//! [`Emr`]: the emr-containers model. It owns the in-memory state and the store, runs
//! every change through one path ([`Emr::execute`]) and exposes the small API the
//! job-execution controller will drive (see "Controller API" below).

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use sparkyard_aws::AwsError;
use sparkyard_store::{Batch, Store, StoreError};

use crate::arn::Arns;
use crate::config::{EmrConfig, ReleaseLabels};
use crate::ids::JobRunIds;
use crate::records::*;
use crate::state::State;
use crate::time::{self, Timestamp};

/// Where the service runs: region and account appear in every ARN.
#[derive(Debug, Clone)]
pub struct Settings {
    pub region: String,
    pub account_id: String,
    pub config: EmrConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot load emr-containers records: {0}")]
    Store(#[from] StoreError),
    #[error("invalid [emr] release-labels pattern: {0}")]
    ReleaseLabels(#[from] regex::Error),
}

pub(crate) struct Inner {
    pub store: Store,
    pub settings: Settings,
    pub arns: Arns,
    pub releases: ReleaseLabels,
    pub state: Mutex<State>,
    pub run_ids: JobRunIds,
    /// Bumped when a virtual cluster is created, so the controller gives its namespace
    /// EMR's RBAC right away rather than at the first job run.
    pub vc_created: tokio::sync::watch::Sender<u64>,
    /// Bumped when a job run is started or cancelled, so the controller looks at once
    /// rather than at its next resync.
    pub runs_requested: tokio::sync::watch::Sender<u64>,
}

/// The emr-containers service. Cheap to clone.
#[derive(Clone)]
pub struct Emr {
    pub(crate) inner: Arc<Inner>,
}

/// What a change handler decided.
pub(crate) enum Outcome {
    /// Nothing to write (a read, or an idempotent replay).
    Read(Value),
    /// Commit `batch`, then answer `response`, then run `after` in the background.
    Write {
        response: Value,
        batch: Batch,
        after: Option<After>,
    },
}

/// Follow-up steps that run after a change was acknowledged.
#[derive(Debug, Clone)]
pub(crate) enum After {
    /// Cancel the virtual cluster's runs and move it from TERMINATING to TERMINATED.
    TerminateVirtualCluster(String),
    /// Move a CREATING endpoint to TERMINATED_WITH_ERRORS (sparkyard cannot run one yet).
    FailEndpoint(String),
}

pub(crate) fn store_error(e: StoreError) -> AwsError {
    tracing::error!(error = %e, "store write failed");
    AwsError::internal("The request could not be stored; it was not applied. Please retry.")
}

/// `stateDetails` of an endpoint sparkyard cannot start.
pub const ENDPOINT_UNSUPPORTED_DETAILS: &str =
    "sparkyard does not run managed endpoints yet: the endpoint was recorded but no Jupyter Enterprise Gateway was started.";

/// A state change the controller applies to a job run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunTransition {
    pub state: JobRunState,
    /// `None` leaves the current value; `Some(None)` clears it.
    pub state_details: Option<Option<String>>,
    pub failure_reason: Option<Option<FailureReason>>,
    /// Defaults to now when entering a terminal state and none is given.
    pub finished_at: Option<Timestamp>,
    /// New `retryPolicyExecution.currentAttemptCount`, if it changed.
    pub attempt_count: Option<u32>,
}

impl JobRunTransition {
    pub fn to(state: JobRunState) -> Self {
        Self {
            state,
            state_details: None,
            failure_reason: None,
            finished_at: None,
            attempt_count: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransitionError {
    #[error("job run {0} does not exist")]
    NotFound(String),
    #[error("job run {id} cannot go from {from:?} to {to:?}")]
    Illegal {
        id: String,
        from: JobRunState,
        to: JobRunState,
    },
    #[error("the transition could not be stored")]
    Store,
}

/// Whether the controller may move a run from `from` to `to`. Terminal states are final;
/// CANCEL_PENDING may only end; nothing goes back to PENDING; a run may stay in its state
/// (to update details or the attempt count) and RUNNING may go back to SUBMITTED when a
/// retry attempt starts a new driver.
pub fn transition_allowed(from: JobRunState, to: JobRunState) -> bool {
    use JobRunState::*;
    if from.is_terminal() {
        return false;
    }
    if from == to {
        return true;
    }
    match from {
        CancelPending => to.is_terminal(),
        _ => to != Pending,
    }
}

impl Emr {
    /// Loads every record and finishes any step a crash interrupted (virtual clusters
    /// left TERMINATING, endpoints left CREATING).
    pub async fn open(store: Store, settings: Settings) -> Result<Emr, OpenError> {
        let releases = ReleaseLabels::from_config(&settings.config)?;
        let state = State::load(&store)?;
        let run_ids = JobRunIds::new();
        if let Some(newest) = state.runs.keys().max() {
            run_ids.observe(newest);
        }
        let pending: Vec<After> = state
            .vcs
            .values()
            .filter(|v| v.state == VirtualClusterState::Terminating)
            .map(|v| After::TerminateVirtualCluster(v.id.clone()))
            .chain(
                state
                    .endpoints
                    .values()
                    .filter(|e| e.state == EndpointState::Creating)
                    .map(|e| After::FailEndpoint(e.id.clone())),
            )
            .collect();
        let emr = Emr {
            inner: Arc::new(Inner {
                arns: Arns {
                    region: settings.region.clone(),
                    account_id: settings.account_id.clone(),
                },
                store,
                settings,
                releases,
                state: Mutex::new(state),
                run_ids,
                vc_created: tokio::sync::watch::Sender::new(0),
                runs_requested: tokio::sync::watch::Sender::new(0),
            }),
        };
        for step in pending {
            emr.run_after(step).await;
        }
        Ok(emr)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The one path for every change: decide under the lock, queue the write while still
    /// holding it (so disk order equals memory order), release the lock, and answer only
    /// once the write is durable. A failed write reloads the state from the store, so
    /// memory never keeps a change the disk does not have.
    pub(crate) async fn execute<F>(&self, decide: F) -> Result<Value, AwsError>
    where
        F: FnOnce(&mut State) -> Result<Outcome, AwsError>,
    {
        let (response, ack, after) = {
            let mut state = self.lock();
            match decide(&mut state)? {
                Outcome::Read(v) => return Ok(v),
                Outcome::Write {
                    response,
                    batch,
                    after,
                } => {
                    let ack = match self.inner.store.enqueue(batch) {
                        Ok(ack) => ack,
                        Err(e) => {
                            self.reload_locked(&mut state);
                            return Err(store_error(e));
                        }
                    };
                    (response, ack, after)
                }
            }
        };
        let result = match ack.await {
            Ok(r) => r,
            Err(_) => Err(StoreError::WriterGone),
        };
        if let Err(e) = result {
            let mut state = self.lock();
            self.reload_locked(&mut state);
            return Err(store_error(e));
        }
        if let Some(step) = after {
            tokio::spawn(self.run_after(step));
        }
        Ok(response)
    }

    fn reload_locked(&self, state: &mut State) {
        match State::load(&self.inner.store) {
            Ok(fresh) => *state = fresh,
            Err(e) => tracing::error!(error = %e, "cannot reload state after a failed write"),
        }
    }

    /// Boxed (and declared `Send`) because it is spawned from `execute`, which it also
    /// calls: the explicit type breaks the recursive future type.
    fn run_after(
        &self,
        step: After,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let emr = self.clone();
        Box::pin(async move { emr.run_after_inner(step).await })
    }

    async fn run_after_inner(&self, step: After) {
        let result = match &step {
            After::TerminateVirtualCluster(id) => {
                let id = id.clone();
                self.execute(move |st| Ok(finish_termination(st, &id)))
                    .await
            }
            After::FailEndpoint(id) => {
                let id = id.clone();
                self.execute(move |st| {
                    let Some(mut e) = st.endpoints.get(&id).cloned() else {
                        return Ok(Outcome::Read(Value::Null));
                    };
                    if e.state != EndpointState::Creating {
                        return Ok(Outcome::Read(Value::Null));
                    }
                    e.state = EndpointState::TerminatedWithErrors;
                    e.failure_reason = Some(FailureReason::InternalError);
                    e.state_details = Some(ENDPOINT_UNSUPPORTED_DETAILS.into());
                    let mut batch = Batch::new();
                    st.put_endpoint(e, &mut batch).map_err(store_error)?;
                    Ok(Outcome::Write {
                        response: Value::Null,
                        batch,
                        after: None,
                    })
                })
                .await
            }
        };
        if let Err(e) = result {
            tracing::error!(?step, error = %e, "background step failed");
        }
    }

    // ---- Controller API ------------------------------------------------------------------
    //
    // The job-execution controller (a later issue) drives runs through these calls only:
    // it lists PENDING runs, reads one (with its virtual cluster's namespace, cluster id,
    // resolved driver and overrides, submitter and retry policy), and records each state
    // change durably with `transition_job_run`.

    /// Job runs whose state is one of `states`, oldest first. Terminal states are
    /// answered from a full scan; non-terminal ones from an index.
    pub fn job_runs_in_states(&self, states: &[JobRunState]) -> Vec<JobRunRecord> {
        let st = self.lock();
        let mut out: Vec<JobRunRecord> = if states.iter().all(|s| !s.is_terminal()) {
            st.active_runs
                .iter()
                .filter_map(|id| st.runs.get(id))
                .filter(|r| states.contains(&r.state))
                .cloned()
                .collect()
        } else {
            st.runs
                .values()
                .filter(|r| states.contains(&r.state))
                .cloned()
                .collect()
        };
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One job run by id.
    pub fn job_run(&self, id: &str) -> Option<JobRunRecord> {
        self.lock().runs.get(id).cloned()
    }

    /// One virtual cluster by id (for its scheduler limits and namespace).
    pub fn virtual_cluster(&self, id: &str) -> Option<VirtualClusterRecord> {
        self.lock().vcs.get(id).cloned()
    }

    /// The RUNNING virtual clusters (the namespaces EMR may run jobs in).
    pub fn running_virtual_clusters(&self) -> Vec<VirtualClusterRecord> {
        self.lock()
            .vcs
            .values()
            .filter(|v| v.state == VirtualClusterState::Running)
            .cloned()
            .collect()
    }

    /// Changes whenever a virtual cluster is created.
    pub fn virtual_clusters_created(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.vc_created.subscribe()
    }

    /// Changes whenever a job run is started or cancelled.
    pub fn job_runs_requested(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.runs_requested.subscribe()
    }

    /// `schedulerStatus` counts of a virtual cluster.
    pub fn scheduler_counts(&self, virtual_cluster_id: &str) -> SchedulerCounts {
        self.lock().counts(virtual_cluster_id)
    }

    /// Applies a state change durably and returns the updated run. Entering a terminal
    /// state sets `finishedAt` (now, unless given). When the last active run of a
    /// TERMINATING virtual cluster ends, the cluster becomes TERMINATED in the same write.
    pub async fn transition_job_run(
        &self,
        id: &str,
        t: JobRunTransition,
    ) -> Result<JobRunRecord, TransitionError> {
        let id = id.to_string();
        let result = self
            .execute(|st| {
                let run = st
                    .runs
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| AwsError::not_found(id.clone()))?;
                if !transition_allowed(run.state, t.state) {
                    return Err(AwsError::validation(format!(
                        "{:?}->{:?}",
                        run.state, t.state
                    )));
                }
                let mut run = run;
                run.state = t.state;
                if let Some(d) = t.state_details {
                    run.state_details = d;
                }
                if let Some(r) = t.failure_reason {
                    run.failure_reason = r;
                }
                if let Some(n) = t.attempt_count {
                    run.attempt_count = n;
                }

                if t.state.is_terminal() {
                    run.finished_at = Some(t.finished_at.unwrap_or_else(time::now));
                }
                run.updated_at = time::now();
                let vc_id = run.virtual_cluster_id.clone();
                let response =
                    serde_json::to_value(&run).map_err(|e| AwsError::internal(e.to_string()))?;
                let mut batch = Batch::new();
                st.put_run(run, &mut batch).map_err(store_error)?;
                complete_termination_if_idle(st, &vc_id, &mut batch).map_err(store_error)?;
                Ok(Outcome::Write {
                    response,
                    batch,
                    after: None,
                })
            })
            .await;
        self.controller_result(id, Some(t.state), result)
    }

    /// A controller write's answer: the stored run, or why not (`to`: the state asked for;
    /// `None`, the run's own).
    fn controller_result(
        &self,
        id: String,
        to: Option<JobRunState>,
        result: Result<Value, AwsError>,
    ) -> Result<JobRunRecord, TransitionError> {
        match result {
            Ok(v) => serde_json::from_value(v).map_err(|_| TransitionError::Store),
            Err(e) if e.code == "ResourceNotFoundException" => Err(TransitionError::NotFound(id)),
            Err(e) if e.code == "ValidationException" => {
                let from = self.job_run(&id).map(|r| r.state);
                let from = from.or(to).unwrap_or(JobRunState::Pending);
                Err(TransitionError::Illegal {
                    id,
                    from,
                    to: to.unwrap_or(from),
                })
            }
            Err(_) => Err(TransitionError::Store),
        }
    }
}

impl Emr {
    /// Records the cost of an ended run (docs/cost.md); the controller writes it once the
    /// run's pods have all ended. A run that has not ended is refused.
    pub async fn record_job_run_cost(
        &self,
        id: &str,
        cost: sparkyard_cost::RunCost,
    ) -> Result<JobRunRecord, TransitionError> {
        let id = id.to_string();
        let result = self
            .execute(|st| {
                let mut run = st
                    .runs
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| AwsError::not_found(id.clone()))?;
                if !run.state.is_terminal() {
                    return Err(AwsError::validation(format!("{:?}", run.state)));
                }
                run.cost = Some(cost);
                run.updated_at = time::now();
                let response =
                    serde_json::to_value(&run).map_err(|e| AwsError::internal(e.to_string()))?;
                let mut batch = Batch::new();
                st.put_run(run, &mut batch).map_err(store_error)?;
                Ok(Outcome::Write {
                    response,
                    batch,
                    after: None,
                })
            })
            .await;
        self.controller_result(id, None, result)
    }
}

/// The background half of DeleteVirtualCluster: PENDING runs (never submitted) are
/// cancelled at once; SUBMITTED and RUNNING runs go to CANCEL_PENDING for the controller
/// to stop; open endpoints are terminated; the cluster becomes TERMINATED as soon as no
/// run is active (immediately, while job execution does not exist).
pub(crate) fn finish_termination(st: &mut State, vc_id: &str) -> Outcome {
    let Some(vc) = st.vcs.get(vc_id) else {
        return Outcome::Read(Value::Null);
    };
    if vc.state != VirtualClusterState::Terminating {
        return Outcome::Read(Value::Null);
    }
    let mut batch = Batch::new();
    let now = time::now();
    let runs: Vec<JobRunRecord> = st.active_runs_of(vc_id).into_iter().cloned().collect();
    let result: Result<(), StoreError> = (|| {
        for mut run in runs {
            match run.state {
                JobRunState::Pending => {
                    run.state = JobRunState::Cancelled;
                    run.finished_at = Some(now);
                    run.state_details = Some(format!(
                        "JobRun CANCELLED because virtual cluster {vc_id} was deleted."
                    ));
                }
                JobRunState::Submitted | JobRunState::Running => {
                    run.state = JobRunState::CancelPending
                }
                _ => continue,
            }
            run.updated_at = now;
            st.put_run(run, &mut batch)?;
        }
        let open: Vec<EndpointRecord> = st
            .endpoints
            .values()
            .filter(|e| e.virtual_cluster_id == vc_id)
            .filter(|e| {
                !matches!(
                    e.state,
                    EndpointState::Terminated | EndpointState::TerminatedWithErrors
                )
            })
            .cloned()
            .collect();
        for mut e in open {
            e.state = EndpointState::Terminated;
            st.put_endpoint(e, &mut batch)?;
        }
        complete_termination_if_idle(st, vc_id, &mut batch)
    })();
    match result {
        Ok(()) if batch.is_empty() => Outcome::Read(Value::Null),
        Ok(()) => Outcome::Write {
            response: Value::Null,
            batch,
            after: None,
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot encode termination");
            Outcome::Read(Value::Null)
        }
    }
}

fn complete_termination_if_idle(
    st: &mut State,
    vc_id: &str,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let Some(vc) = st.vcs.get(vc_id) else {
        return Ok(());
    };
    if vc.state == VirtualClusterState::Terminating && st.active_runs_of(vc_id).is_empty() {
        let mut vc = vc.clone();
        vc.state = VirtualClusterState::Terminated;
        st.put_vc(vc, batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobRunState::*;

    #[test]
    fn transitions() {
        assert!(transition_allowed(Pending, Submitted));
        assert!(transition_allowed(Submitted, Running));
        assert!(transition_allowed(Running, Completed));
        assert!(transition_allowed(Running, Submitted));
        assert!(transition_allowed(CancelPending, Cancelled));
        assert!(!transition_allowed(CancelPending, Running));
        assert!(!transition_allowed(Completed, Running));
        assert!(!transition_allowed(Running, Pending));
    }
}
