//! The in-memory view of every record, loaded from the store at open and kept in step
//! with it: each change is applied here and added to a [`Batch`] that the caller commits
//! (under the same lock, so memory and disk see changes in the same order).

use std::collections::{BTreeSet, HashMap};

use sparkyard_store::{Batch, Store, StoreError};

use crate::idempotency::{self, TokenRecord};
use crate::records::*;

#[derive(Default)]
pub struct State {
    pub vcs: HashMap<String, VirtualClusterRecord>,
    pub runs: HashMap<String, JobRunRecord>,
    /// Job-run ids per virtual cluster; ids are time-ordered, so this is creation order.
    pub runs_by_vc: HashMap<String, BTreeSet<String>>,
    /// Non-terminal job runs by id, for the controller's "runs in state" queries.
    pub active_runs: BTreeSet<String>,
    pub counts: HashMap<String, SchedulerCounts>,
    pub endpoints: HashMap<String, EndpointRecord>,
    pub templates: HashMap<String, JobTemplateRecord>,
    pub security_configurations: HashMap<String, SecurityConfigurationRecord>,
    pub tokens: HashMap<String, TokenRecord>,
}

impl State {
    pub fn load(store: &Store) -> Result<State, StoreError> {
        let mut s = State::default();
        for vc in store.scan_as::<VirtualClusterRecord>(kind::VIRTUAL_CLUSTER)? {
            s.vcs.insert(vc.id.clone(), vc);
        }
        for run in store.scan_as::<JobRunRecord>(kind::JOB_RUN)? {
            s.index_run(None, &run);
            s.runs.insert(run.id.clone(), run);
        }
        for e in store.scan_as::<EndpointRecord>(kind::ENDPOINT)? {
            s.endpoints.insert(e.id.clone(), e);
        }
        for t in store.scan_as::<JobTemplateRecord>(kind::JOB_TEMPLATE)? {
            s.templates.insert(t.id.clone(), t);
        }
        for c in store.scan_as::<SecurityConfigurationRecord>(kind::SECURITY_CONFIGURATION)? {
            s.security_configurations.insert(c.id.clone(), c);
        }
        for t in store.scan_as::<TokenRecord>(kind::CLIENT_TOKEN)? {
            s.tokens.insert(idempotency::key(&t.operation, &t.token), t);
        }
        Ok(s)
    }

    pub fn counts(&self, vc: &str) -> SchedulerCounts {
        self.counts.get(vc).copied().unwrap_or_default()
    }

    fn index_run(&mut self, old: Option<JobRunState>, run: &JobRunRecord) {
        if old.is_none() {
            self.runs_by_vc
                .entry(run.virtual_cluster_id.clone())
                .or_default()
                .insert(run.id.clone());
        }
        let c = self
            .counts
            .entry(run.virtual_cluster_id.clone())
            .or_default();
        if let Some(old) = old {
            if old.is_queued() {
                c.in_queue -= 1;
            }
            if old == JobRunState::Running {
                c.running -= 1;
            }
        }
        if run.state.is_queued() {
            c.in_queue += 1;
        }
        if run.state == JobRunState::Running {
            c.running += 1;
        }
        if run.state.is_terminal() {
            self.active_runs.remove(&run.id);
        } else {
            self.active_runs.insert(run.id.clone());
        }
    }

    pub fn put_vc(
        &mut self,
        vc: VirtualClusterRecord,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        batch.put(kind::VIRTUAL_CLUSTER, &vc.id, &vc)?;
        self.vcs.insert(vc.id.clone(), vc);
        Ok(())
    }

    pub fn put_run(&mut self, run: JobRunRecord, batch: &mut Batch) -> Result<(), StoreError> {
        batch.put(kind::JOB_RUN, &run.id, &run)?;
        let old = self.runs.get(&run.id).map(|r| r.state);
        self.index_run(old, &run);
        self.runs.insert(run.id.clone(), run);
        Ok(())
    }

    pub fn put_endpoint(&mut self, e: EndpointRecord, batch: &mut Batch) -> Result<(), StoreError> {
        batch.put(kind::ENDPOINT, &e.id, &e)?;
        self.endpoints.insert(e.id.clone(), e);
        Ok(())
    }

    pub fn put_template(
        &mut self,
        t: JobTemplateRecord,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        batch.put(kind::JOB_TEMPLATE, &t.id, &t)?;
        self.templates.insert(t.id.clone(), t);
        Ok(())
    }

    pub fn delete_template(&mut self, id: &str, batch: &mut Batch) {
        batch.delete(kind::JOB_TEMPLATE, id);
        self.templates.remove(id);
    }

    pub fn put_security_configuration(
        &mut self,
        c: SecurityConfigurationRecord,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        batch.put(kind::SECURITY_CONFIGURATION, &c.id, &c)?;
        self.security_configurations.insert(c.id.clone(), c);
        Ok(())
    }

    pub fn delete_security_configuration(&mut self, id: &str, batch: &mut Batch) {
        batch.delete(kind::SECURITY_CONFIGURATION, id);
        self.security_configurations.remove(id);
    }

    pub fn put_token(&mut self, t: TokenRecord, batch: &mut Batch) -> Result<(), StoreError> {
        let key = idempotency::key(&t.operation, &t.token);
        batch.put(kind::CLIENT_TOKEN, &key, &t)?;
        self.tokens.insert(key, t);
        Ok(())
    }

    /// Non-terminal runs of a virtual cluster (PENDING, SUBMITTED, RUNNING, CANCEL_PENDING).
    pub fn active_runs_of(&self, vc: &str) -> Vec<&JobRunRecord> {
        self.runs_by_vc
            .get(vc)
            .into_iter()
            .flatten()
            .filter_map(|id| self.runs.get(id))
            .filter(|r| !r.state.is_terminal())
            .collect()
    }

    /// Whether an active (not TERMINATED) virtual cluster already uses this namespace.
    pub fn namespace_taken(&self, cluster_id: &str, namespace: &str) -> bool {
        self.vcs.values().any(|vc| {
            vc.state != VirtualClusterState::Terminated
                && vc.cluster_id == cluster_id
                && vc.namespace == namespace
        })
    }
}
