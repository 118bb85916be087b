//! Cost records: what each pod of a run used, gathered from the pod watch while the run is
//! active and priced by `sparkyard_cost` when the run ends (docs/cost.md).
//!
//! The record cannot be read from the cluster at the end: Spark deletes executors as they
//! finish, the scheduler deletes preempted ones and a retried attempt's pods are gone by
//! then. So the ledger keeps every pod it saw, by uid, with the last state it saw, and the
//! node it ran on as that node's labels described it at the time (Karpenter may have
//! removed the node before the run ends).
//!
//! The record is written once every pod of the ended run has ended too — the runner's pod
//! outlives the driver by a moment, and EMR bills a pod until it terminates — or
//! [`SETTLE_LIMIT`] after the run ended, with what is still running counted to then.
//!
//! What is not seen is not billed: pods that came and went while no controller was
//! watching (this process restarted, or another replica led) are missing from the record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use sparkyard_cost::{NodeShape, PodUsage, RunCost};

use crate::build::LABEL_JOB_ID;

/// How long after a run ends its record waits for pods still running.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// Every pod seen of every active run, and of ended runs until their record is written.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<String, BTreeMap<String, PodUsageSoFar>>,
    /// Ended runs whose record is not written yet, with when they ended.
    ended: HashMap<String, DateTime<Utc>>,
}

/// One pod as last seen: `start`/`end` fill in as the pod runs and terminates.
#[derive(Debug, Clone, PartialEq)]
struct PodUsageSoFar {
    name: String,
    role: String,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    vcpu: f64,
    memory_bytes: f64,
    node: Option<NodeShape>,
    /// Deleted (a pod that never started is done once it is gone).
    gone: bool,
}

impl PodUsageSoFar {
    fn done(&self) -> bool {
        self.end.is_some() || self.gone
    }
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watch event for `pod` (labelled with its run's id): `deleted` when the pod is gone,
    /// observed at `now`. `node_labels` looks a node's labels up by name.
    pub fn observe(
        &self,
        pod: &Pod,
        deleted: bool,
        now: DateTime<Utc>,
        node_labels: impl Fn(&str) -> Option<BTreeMap<String, String>>,
    ) {
        let (Some(run), Some(uid)) = (pod.labels().get(LABEL_JOB_ID), pod.uid()) else {
            return;
        };
        let mut inner = self.lock();
        let pods = inner.runs.entry(run.clone()).or_default();
        let seen = pods.entry(uid).or_insert_with(|| first_sighting(pod));
        update(seen, pod, deleted, now, node_labels);
    }

    /// The run ended at `at`: its record is due once its pods are done.
    pub fn ended(&self, run_id: &str, at: DateTime<Utc>) {
        self.lock().ended.entry(run_id.to_string()).or_insert(at);
    }

    /// The ended runs whose record is due at `now`: every pod done, or the settle limit
    /// passed. Each is taken out of the ledger with its record (`None`: no pod started).
    pub fn take_due(&self, region: &str, now: DateTime<Utc>) -> Vec<(String, Option<RunCost>)> {
        let mut inner = self.lock();
        let limit = chrono::Duration::from_std(SETTLE_LIMIT).unwrap_or_default();
        let due: Vec<String> = inner
            .ended
            .iter()
            .filter(|(run, at)| {
                now - **at >= limit
                    || inner
                        .runs
                        .get(*run)
                        .is_none_or(|pods| pods.values().all(PodUsageSoFar::done))
            })
            .map(|(run, _)| run.clone())
            .collect();
        due.into_iter()
            .map(|run| {
                let record = record_of(inner.runs.get(&run), region, now);
                inner.ended.remove(&run);
                inner.runs.remove(&run);
                (run, record)
            })
            .collect()
    }

    /// The record `run_id` would get at `now` (pods still running counted to `now`);
    /// the tests' look at a ledger without taking from it.
    #[cfg(test)]
    fn record(&self, run_id: &str, region: &str, now: DateTime<Utc>) -> Option<RunCost> {
        record_of(self.lock().runs.get(run_id), region, now)
    }

    /// Forgets the runs neither `active` nor waiting for their record, except those
    /// `ended_without_record` says ended lately and have no record (what a restarted
    /// controller finds): it returns when they ended, and their record becomes due.
    pub fn retain(
        &self,
        active: &HashSet<&str>,
        ended_without_record: impl Fn(&str) -> Option<DateTime<Utc>>,
    ) {
        let mut inner = self.lock();
        let Inner { runs, ended } = &mut *inner;
        runs.retain(|run, _| {
            if active.contains(run.as_str()) || ended.contains_key(run) {
                return true;
            }
            match ended_without_record(run) {
                Some(at) => {
                    ended.insert(run.clone(), at);
                    true
                }
                None => false,
            }
        });
    }
}

fn record_of(
    pods: Option<&BTreeMap<String, PodUsageSoFar>>,
    region: &str,
    now: DateTime<Utc>,
) -> Option<RunCost> {
    let usage: Vec<PodUsage> = pods?
        .values()
        .filter_map(|p| {
            let start = p.start?;
            Some(PodUsage {
                name: p.name.clone(),
                role: p.role.clone(),
                start,
                end: p.end.unwrap_or(now).max(start),
                vcpu: p.vcpu,
                memory_bytes: p.memory_bytes,
                node: p.node.clone(),
            })
        })
        .collect();
    if usage.is_empty() {
        return None;
    }
    Some(sparkyard_cost::cost_of_run(&usage, region))
}

fn first_sighting(pod: &Pod) -> PodUsageSoFar {
    let (vcpu, memory_bytes) = requests(pod);
    PodUsageSoFar {
        name: pod.name_any(),
        role: role(pod).to_string(),
        start: None,
        end: None,
        vcpu,
        memory_bytes,
        node: None,
        gone: false,
    }
}

fn update(
    seen: &mut PodUsageSoFar,
    pod: &Pod,
    deleted: bool,
    now: DateTime<Utc>,
    node_labels: impl Fn(&str) -> Option<BTreeMap<String, String>>,
) {
    seen.gone |= deleted;
    let status = pod.status.as_ref();
    if seen.start.is_none() {
        // `status.startTime`: the kubelet took the pod, before it pulled any image — where
        // EMR on EKS starts billing ("from the time you start to download your image").
        seen.start = status.and_then(|s| s.start_time.as_ref()).and_then(utc);
    }
    if seen.node.is_none() {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        seen.node = node.and_then(|n| NodeShape::from_labels(n, &node_labels(n)?));
    }
    if seen.end.is_none() {
        seen.end = terminated_at(pod);
        if seen.end.is_none() && deleted && seen.start.is_some() {
            // Gone without a final status (deleted while running): it ran until the
            // deletion we just saw.
            seen.end = Some(now);
        }
    }
}

/// When the pod's last container terminated, once every container has.
fn terminated_at(pod: &Pod) -> Option<DateTime<Utc>> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    if statuses.is_empty() {
        return None;
    }
    statuses
        .iter()
        .map(|c| {
            utc(c
                .state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()?)
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max()
}

fn utc(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

/// EMR's roles: the runner Job's pod, Spark's driver and executors (`spark-role`).
fn role(pod: &Pod) -> &'static str {
    match pod.labels().get("spark-role").map(String::as_str) {
        Some("driver") => "driver",
        Some("executor") => "executor",
        _ => "job-runner",
    }
}

/// The pod's effective requests in vCPU and bytes, as the scheduler counts them.
fn requests(pod: &Pod) -> (f64, f64) {
    let value = serde_json::to_value(pod).unwrap_or_default();
    match sparkyard_scheduling::PodRequirements::from_pod(&value) {
        Ok(r) => (
            r.requests.milli_cpu as f64 / 1000.0,
            r.requests.memory as f64,
        ),
        Err(_) => (0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(phase: &str, extra_status: serde_json::Value) -> Pod {
        let mut status = json!({"phase": phase, "startTime": "2026-12-05T10:00:00Z"});
        status
            .as_object_mut()
            .unwrap()
            .extend(extra_status.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "metadata": {"name": "pi-exec-1", "namespace": "spark", "uid": "u1",
                "labels": {LABEL_JOB_ID: "run1", "spark-role": "executor"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "spark-kubernetes-executor",
                "resources": {"requests": {"cpu": "1", "memory": "1408Mi"}}}]},
            "status": status,
        }))
        .unwrap()
    }

    fn labels(_: &str) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(
            "node.kubernetes.io/instance-type".to_string(),
            "m5.2xlarge".to_string(),
        )]))
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_pod_is_billed_from_its_start_time_to_its_containers_end() {
        let ledger = Ledger::default();
        ledger.observe(
            &pod("Running", json!({})),
            false,
            at("2026-12-05T10:00:05Z"),
            labels,
        );
        let done = pod(
            "Succeeded",
            json!({"containerStatuses": [{"name": "spark-kubernetes-executor", "image": "i",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0,
                    "startedAt": "2026-12-05T10:00:02Z", "finishedAt": "2026-12-05T10:01:00Z"}}}]}),
        );
        ledger.observe(&done, false, at("2026-12-05T10:01:01Z"), labels);
        // Deleted later (Spark's deleteOnTermination): the end stays the containers' end.
        ledger.observe(&done, true, at("2026-12-05T10:05:00Z"), labels);
        let cost = ledger
            .record("run1", "us-east-1", at("2026-12-05T11:00:00Z"))
            .unwrap();
        assert_eq!(cost.pods.len(), 1);
        let p = &cost.pods[0];
        assert_eq!((p.usage.role.as_str(), p.seconds), ("executor", 60));
        assert_eq!(p.usage.vcpu, 1.0);
        assert_eq!(p.usage.memory_bytes, 1408.0 * 1024.0 * 1024.0);
        assert_eq!(p.usage.node.as_ref().unwrap().instance_type, "m5.2xlarge");
        assert!((cost.vcpu_hours - 60.0 / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn a_pod_deleted_while_running_ends_at_its_deletion_and_others_run_to_now() {
        let ledger = Ledger::default();
        ledger.observe(
            &pod("Running", json!({})),
            true,
            at("2026-12-05T10:00:30Z"),
            labels,
        );
        let cost = ledger
            .record("run1", "us-east-1", at("2026-12-05T11:00:00Z"))
            .unwrap();
        assert_eq!(cost.pods[0].seconds, 30);

        let ledger = Ledger::default();
        ledger.observe(
            &pod("Running", json!({})),
            false,
            at("2026-12-05T10:00:30Z"),
            labels,
        );
        let cost = ledger
            .record("run1", "us-east-1", at("2026-12-05T10:02:00Z"))
            .unwrap();
        assert_eq!(cost.pods[0].seconds, 120);
        assert_eq!(
            ledger.record("other", "us-east-1", at("2026-12-05T10:02:00Z")),
            None
        );
        ledger.retain(&HashSet::new(), |_| None);
        assert_eq!(
            ledger.record("run1", "us-east-1", at("2026-12-05T10:02:00Z")),
            None
        );
    }

    #[test]
    fn an_ended_runs_record_waits_for_its_pods_or_the_settle_limit() {
        let ledger = Ledger::default();
        let t0 = at("2026-12-05T10:01:00Z");
        ledger.observe(&pod("Running", json!({})), false, t0, labels);
        ledger.ended("run1", t0);
        // Kept while waiting, even though the run is no longer active.
        ledger.retain(&HashSet::new(), |_| None);
        assert!(ledger.take_due("us-east-1", t0).is_empty());
        ledger.observe(
            &pod("Running", json!({})),
            true,
            at("2026-12-05T10:01:10Z"),
            labels,
        );
        let due = ledger.take_due("us-east-1", at("2026-12-05T10:01:11Z"));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.as_ref().unwrap().pods[0].seconds, 70);
        assert!(ledger
            .take_due("us-east-1", at("2026-12-05T10:01:12Z"))
            .is_empty());

        // A pod that never ends: billed to the settle limit.
        let ledger = Ledger::default();
        ledger.observe(&pod("Running", json!({})), false, t0, labels);
        ledger.ended("run1", t0);
        let limit = chrono::Duration::from_std(SETTLE_LIMIT).unwrap();
        assert!(ledger
            .take_due("us-east-1", t0 + limit - chrono::Duration::seconds(1))
            .is_empty());
        let due = ledger.take_due("us-east-1", t0 + limit);
        assert_eq!(due[0].1.as_ref().unwrap().pods[0].seconds, 60 + 300);

        // A restarted controller finds an ended run without a record through `retain`.
        let ledger = Ledger::default();
        ledger.observe(&pod("Running", json!({})), true, t0, labels);
        ledger.retain(&HashSet::new(), |run| (run == "run1").then_some(t0));
        assert_eq!(ledger.take_due("us-east-1", t0).len(), 1);
    }
}
