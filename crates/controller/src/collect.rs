//! Finished runs' objects: which to delete once `[controller] ttl-seconds-after-finished`
//! has passed since the run finished (pure; the controller applies the plan).
//!
//! Only the roots are deleted: the runner Jobs (their pods follow by background
//! propagation) and the driver pods, which own their executors, service and ConfigMaps —
//! the garbage collector takes those. Owned pods (runner pods, executors) are left to it,
//! so a run costs two or three deletions whatever its size. The run's spark-conf ConfigMap
//! has no owner (it exists before the Job) and is deleted by name.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sparkyard_emr::JobRunRecord;

use crate::build::LABEL_JOB_ID;

/// One finished run's objects to delete, in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collection {
    pub job_run_id: String,
    pub namespace: String,
    pub jobs: Vec<String>,
    pub pods: Vec<String>,
}

/// The runs in `jobs` and `pods` (the controller's caches) that finished at least `ttl`
/// before `now`, each with its root objects not already being deleted. `run` looks a run up
/// by id; `active` are the ids the controller is still reconciling (skipped without a
/// lookup).
pub fn plan<'a>(
    jobs: impl IntoIterator<Item = &'a Job>,
    pods: impl IntoIterator<Item = &'a Pod>,
    active: &HashSet<&str>,
    run: impl Fn(&str) -> Option<JobRunRecord>,
    now: chrono::DateTime<chrono::Utc>,
    ttl: Duration,
) -> Vec<Collection> {
    let mut by_run: BTreeMap<(String, String), Collection> = BTreeMap::new();
    for job in jobs {
        if let Some(c) = root(&mut by_run, &job.metadata, active) {
            c.jobs.extend(job.metadata.name.clone());
        }
    }
    for pod in pods {
        let owned = pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|refs| !refs.is_empty());
        if owned {
            continue;
        }
        if let Some(c) = root(&mut by_run, &pod.metadata, active) {
            c.pods.extend(pod.metadata.name.clone());
        }
    }
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    by_run
        .into_values()
        .filter(|c| {
            run(&c.job_run_id).is_some_and(|r| {
                r.state.is_terminal() && r.finished_at.is_some_and(|at| at + ttl <= now)
            })
        })
        .collect()
}

/// The collection of the run `meta` is labelled with, unless the object is already being
/// deleted, carries no run id, or belongs to an active run.
fn root<'m>(
    by_run: &'m mut BTreeMap<(String, String), Collection>,
    meta: &ObjectMeta,
    active: &HashSet<&str>,
) -> Option<&'m mut Collection> {
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let id = meta.labels.as_ref()?.get(LABEL_JOB_ID)?;
    if active.contains(id.as_str()) {
        return None;
    }
    let namespace = meta.namespace.clone()?;
    Some(
        by_run
            .entry((id.clone(), namespace.clone()))
            .or_insert_with(|| Collection {
                job_run_id: id.clone(),
                namespace,
                ..Collection::default()
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sparkyard_emr::JobRunState;

    fn meta(name: &str, run: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut m = json!({"name": name, "namespace": "ns",
                           "labels": {LABEL_JOB_ID: run}});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    }
    fn job(name: &str, run: &str) -> Job {
        serde_json::from_value(json!({"metadata": meta(name, run, json!({}))})).unwrap()
    }
    fn pod(name: &str, run: &str, extra: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": meta(name, run, extra)})).unwrap()
    }

    fn record(id: &str, state: JobRunState, finished_secs_ago: Option<i64>) -> JobRunRecord {
        let mut r = crate::dereference::tests::run(json!({ "id": id }));
        r.state = state;
        r.finished_at = finished_secs_ago.map(|s| now() - chrono::Duration::seconds(s));
        r
    }
    fn now() -> chrono::DateTime<chrono::Utc> {
        "2026-12-04T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn only_runs_finished_longer_than_the_ttl_ago_go_and_only_their_roots() {
        let jobs = [job("a-1", "a"), job("b-1", "b"), job("c-1", "c")];
        let owned = json!({"ownerReferences": [{"apiVersion": "v1", "kind": "Pod",
                            "name": "spark-a-driver", "uid": "u"}]});
        let deleting = json!({"deletionTimestamp": "2026-12-04T11:59:00Z"});
        let pods = [
            pod("spark-a-driver", "a", json!({})),
            pod("a-exec-1", "a", owned.clone()),
            pod("a-1-xyz", "a", owned),
            pod("spark-b-driver", "b", json!({})),
            pod("spark-d-driver", "d", deleting),
            pod("spark-e-driver", "e", json!({})),
        ];
        let runs = [
            record("a", JobRunState::Completed, Some(61)),
            record("b", JobRunState::Failed, Some(59)), // not yet
            record("c", JobRunState::Cancelled, Some(3600)),
            record("d", JobRunState::Completed, Some(3600)), // already being deleted
            record("e", JobRunState::Running, None),
        ];
        let lookup = |id: &str| runs.iter().find(|r| r.id == id).cloned();
        let plan = plan(
            &jobs,
            &pods,
            &HashSet::from(["e"]),
            lookup,
            now(),
            Duration::from_secs(60),
        );
        assert_eq!(
            plan,
            vec![
                Collection {
                    job_run_id: "a".into(),
                    namespace: "ns".into(),
                    jobs: vec!["a-1".into()],
                    pods: vec!["spark-a-driver".into()],
                },
                Collection {
                    job_run_id: "c".into(),
                    namespace: "ns".into(),
                    jobs: vec!["c-1".into()],
                    pods: vec![],
                },
            ]
        );
        // An unknown run (no record) and a ttl of zero: the unknown one is never touched.
        let zero = super::plan(
            &jobs,
            &pods,
            &HashSet::new(),
            |id| (id != "a").then(|| record(id, JobRunState::Completed, Some(0))),
            now(),
            Duration::ZERO,
        );
        let ids: Vec<&str> = zero.iter().map(|c| c.job_run_id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "e"]);
    }
}
