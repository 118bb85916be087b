//! The Job controller (`batch/v1`): creates pods from the template, retries failures with
//! exponential back-off up to `backoffLimit`, enforces `activeDeadlineSeconds`, completes
//! at `completions`, and deletes finished jobs after `ttlSecondsAfterFinished`.
//!
//! `decide` is pure: job + its pods + now → what to do. `run` applies it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

use sparkyard_kube_apiserver::client::Propagation;
use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;

pub const JOBS: Resource = Resource::new("batch", "jobs");
const PODS: Resource = Resource::new("", "pods");
const BACKOFF_BASE: i64 = 10;
const BACKOFF_CAP: i64 = 360;

/// What the controller does for one job in one pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub create: usize,
    /// Pods to delete (active pods of a job that failed or completed).
    pub delete: Vec<String>,
    /// The new `status`.
    pub status: Value,
    /// When to look again even if nothing changes (back-off end, deadline, TTL).
    pub requeue_after: Option<Duration>,
    /// Finished and past its TTL: delete the job.
    pub delete_job: bool,
    /// (kind, reason, message) to record.
    pub events: Vec<(Kind, String, String)>,
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn condition_true(status: &Value, kind: &str) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// Kubernetes' pod-failure back-off: 10 s doubled per failure, at most 6 minutes.
pub fn backoff(failures: i64) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let exponent = (failures - 1).min(10) as u32;
    Duration::from_secs((BACKOFF_BASE * 2i64.pow(exponent)).min(BACKOFF_CAP) as u64)
}

pub fn decide(job: &Value, pods: &[Arc<Value>], now: DateTime<Utc>) -> Decision {
    let spec = &job["spec"];
    let mut status = if job["status"].is_object() {
        job["status"].clone()
    } else {
        json!({})
    };
    let mut decision = Decision::default();
    let phase = |p: &Value| p["status"]["phase"].as_str().unwrap_or("").to_string();
    let active: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && !matches!(phase(p).as_str(), "Succeeded" | "Failed")
        })
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| {
            !p["metadata"]["deletionTimestamp"].is_null()
                && !matches!(phase(p).as_str(), "Succeeded" | "Failed")
        })
        .count();
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
    let succeeded = succeeded.max(status["succeeded"].as_i64().unwrap_or(0));
    let failed = failed.max(status["failed"].as_i64().unwrap_or(0));
    let ready = active
        .iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count();

    let finished = condition_true(&status, "Complete") || condition_true(&status, "Failed");
    if finished {
        // Only the TTL is left to act on.
        if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
            let done_at = time(&status["completionTime"]).or_else(|| {
                status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| time(&c["lastTransitionTime"]))
                    .max()
            });
            if let Some(done_at) = done_at {
                let expiry = done_at + chrono::Duration::seconds(ttl);
                if now >= expiry {
                    decision.delete_job = true;
                } else {
                    decision.requeue_after = (expiry - now).to_std().ok();
                }
            }
        }
        status["active"] = json!(active.len());
        status["ready"] = json!(ready);
        status["terminating"] = json!(terminating);
        decision.status = status;
        return decision;
    }
    if spec["suspend"] == true {
        status["active"] = json!(active.len());
        decision.delete = active.iter().map(|p| name_of(p)).collect();
        decision.status = status;
        return decision;
    }
    let start = time(&status["startTime"]).unwrap_or(now);
    status["startTime"] = json!(fmt(start));

    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let completions = spec["completions"].as_i64();
    let mut failure: Option<(&str, String)> = None;
    if failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit".into(),
        ));
    } else if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64() {
        let end = start + chrono::Duration::seconds(deadline);
        if now >= end {
            failure = Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline".into(),
            ));
        } else {
            decision.requeue_after = (end - now).to_std().ok();
        }
    }
    let complete = match completions {
        Some(c) => succeeded >= c,
        // Work-queue jobs: done once any pod succeeded and none is left running.
        None => succeeded > 0 && active.is_empty(),
    };

    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let mut conditions: Vec<Value> = conditions;
    let mut add = |kind: &str, reason: &str, message: &str| {
        if !conditions.iter().any(|c| c["type"] == kind) {
            conditions.push(
                json!({"type": kind, "status": "True", "reason": reason, "message": message,
                                   "lastProbeTime": fmt(now), "lastTransitionTime": fmt(now)}),
            );
        }
    };
    if let Some((reason, message)) = &failure {
        add("FailureTarget", reason, message);
        add("Failed", reason, message);
        decision.delete = active.iter().map(|p| name_of(p)).collect();
        decision
            .events
            .push((Kind::Warning, reason.to_string(), message.clone()));
        decision.requeue_after = None;
    } else if complete {
        add(
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        );
        add(
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        );
        status["completionTime"] = json!(fmt(now));
        decision.delete = active.iter().map(|p| name_of(p)).collect();
        decision
            .events
            .push((Kind::Normal, "Completed".into(), "Job completed".into()));
        decision.requeue_after = spec["ttlSecondsAfterFinished"]
            .as_i64()
            .map(|t| Duration::from_secs(t.max(0) as u64));
    } else {
        let wanted = match completions {
            Some(c) => parallelism.min(c - succeeded).max(0),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let missing = (wanted - active.len() as i64 - terminating as i64).max(0) as usize;
        if missing > 0 {
            // Back-off counts from the newest pod failure.
            let last_failure = pods
                .iter()
                .filter(|p| phase(p) == "Failed")
                .filter_map(|p| {
                    p["status"]["containerStatuses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| time(&c["state"]["terminated"]["finishedAt"]))
                        .max()
                        .or_else(|| time(&p["metadata"]["creationTimestamp"]))
                })
                .max();
            let wait = backoff(failed);
            match last_failure {
                Some(at) if failed > 0 && now < at + chrono::Duration::from_std(wait).unwrap() => {
                    let until = (at + chrono::Duration::from_std(wait).unwrap() - now)
                        .to_std()
                        .unwrap_or(Duration::from_secs(1));
                    decision.requeue_after = Some(
                        decision
                            .requeue_after
                            .map(|r| r.min(until))
                            .unwrap_or(until),
                    );
                }
                _ => decision.create = missing,
            }
        }
    }
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    let remaining_active = if failure.is_some() || complete {
        0
    } else {
        active.len() + decision.create
    };
    status["active"] = json!(remaining_active);
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed);
    status["ready"] = json!(ready);
    status["terminating"] = json!(
        terminating
            + if failure.is_some() || complete {
                active.len()
            } else {
                0
            }
    );
    // Zero counts are omitted, as the API's omitempty does.
    for key in ["active", "succeeded", "failed"] {
        if status[key] == 0 {
            status.as_object_mut().unwrap().remove(key);
        }
    }
    decision.status = status;
    decision
}

fn name_of(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap_or("").to_string()
}

/// A pod for the job: the template, the job's selector labels, the owner reference, and
/// the name `<job>-<5 random characters>` (generateName's alphabet).
pub fn pod_for(job: &Value) -> Value {
    let meta = &job["metadata"];
    let job_name = meta["name"].as_str().unwrap_or("job");
    let uid = meta["uid"].as_str().unwrap_or("");
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", job_name),
        ("controller-uid", uid),
        ("job-name", job_name),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| json!(v));
    }
    let mut pod_meta = template["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    pod_meta.insert(
        "name".into(),
        json!(format!("{}-{}", truncate(job_name, 57), random_suffix())),
    );
    pod_meta.insert("generateName".into(), json!(format!("{job_name}-")));
    pod_meta.insert("labels".into(), Value::Object(labels));
    pod_meta.remove("namespace");
    pod_meta.insert(
        "ownerReferences".into(),
        json!([{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
    );
    let mut spec = template["spec"].clone();
    if spec["restartPolicy"].is_null() {
        spec["restartPolicy"] = json!("Never");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec})
}

/// The first `n` characters of `s` (generated names are cut to fit their 63).
pub(crate) fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Five characters from the alphabet Kubernetes uses for generated names.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[(rand::random::<u32>() as usize) % ALPHABET.len()] as char)
        .collect()
}

pub async fn run(client: Client) {
    let source = Source {
        component: "job-controller",
        host: None,
    };
    loop {
        let revision = client.revision();
        let next = reconcile_all(&client, &source);
        let (Ok(jobs), Ok(pods)) = (
            client.watch(JOBS, Some(revision)),
            client.watch(PODS, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Only pods a Job controls can change a Job's decision; other pods (Spark's
        // drivers and executors, thousands at scale) must not trigger a pass.
        let pods = pods.filter(|event| std::future::ready(controlled_by_a_job(&event.object)));
        let mut merged = futures::stream::select(Box::pin(jobs), Box::pin(pods));
        let wait = next
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(100));
        let _ = tokio::time::timeout(wait, merged.next()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The uid of the Job controlling `pod`, if one does.
fn job_controller(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true && o["kind"] == "Job")
        .and_then(|o| o["uid"].as_str())
}

fn controlled_by_a_job(pod: &Value) -> bool {
    job_controller(pod).is_some()
}

/// One pass over all jobs; returns the soonest requeue.
pub fn reconcile_all(client: &Client, source: &Source) -> Option<Duration> {
    let (jobs, _) = client.list(JOBS, None);
    if jobs.is_empty() {
        return None;
    }
    let (pods, _) = client.list(PODS, None);
    // Pods by controlling Job, once per pass: a pass stays linear in jobs + pods.
    let mut pods_of: HashMap<&str, Vec<Arc<Value>>> = HashMap::new();
    for pod in &pods {
        if let Some(uid) = job_controller(pod) {
            pods_of.entry(uid).or_default().push(pod.clone());
        }
    }
    let mut soonest: Option<Duration> = None;
    for job in jobs {
        if !job["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let uid = job["metadata"]["uid"].as_str().unwrap_or("");
        let ns = job["metadata"]["namespace"].as_str().unwrap_or("");
        let name = job["metadata"]["name"].as_str().unwrap_or("");
        let owned: Vec<Arc<Value>> = pods_of
            .get(uid)
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["namespace"] == ns)
            .cloned()
            .collect();
        let decision = decide(&job, &owned, Utc::now());
        if let Some(after) = decision.requeue_after {
            soonest = Some(soonest.map(|s| s.min(after)).unwrap_or(after));
        }
        let mut involved = (*job).clone();
        involved["kind"] = json!("Job");
        involved["apiVersion"] = json!("batch/v1");
        for pod_name in &decision.delete {
            let _ = client.delete(PODS, ns, pod_name, Propagation::Background, None);
        }
        for _ in 0..decision.create {
            let pod = pod_for(&job);
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
            match client.create(PODS, ns, pod) {
                Ok(_) => events::record(
                    client,
                    &involved,
                    Kind::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {pod_name}"),
                    source,
                ),
                Err(e) => events::record(
                    client,
                    &involved,
                    Kind::Warning,
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                    source,
                ),
            }
        }
        let new_status = decision.status.clone();
        if new_status != job["status"] {
            let _ = client.update_status(JOBS, ns, name, |j| {
                if j["metadata"]["uid"] != uid {
                    return Err(sparkyard_kube_apiserver::ApiError::conflict(
                        "batch", "jobs", name,
                    ));
                }
                j["status"] = new_status.clone();
                Ok(())
            });
        }
        for (kind, reason, message) in &decision.events {
            let already = !job["status"]["conditions"].is_null()
                && (condition_true(&job["status"], "Complete")
                    || condition_true(&job["status"], "Failed"));
            if !already {
                events::record(client, &involved, *kind, reason, message, source);
            }
        }
        if decision.delete_job {
            let _ = client.delete(JOBS, ns, name, Propagation::Foreground, None);
        }
    }
    soonest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value) -> Value {
        json!({"metadata": {"name": "pi", "namespace": "ns", "uid": "job-uid"}, "spec": spec, "status": {}})
    }

    fn failed_pod(finished: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": "pi-x", "creationTimestamp": finished}, "status": {"phase": "Failed",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]}}),
        )
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_six_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(360));
        assert_eq!(backoff(30), Duration::from_secs(360));
    }

    #[test]
    fn creates_the_first_pod_then_waits_out_the_backoff_then_fails() {
        let j =
            job(json!({"backoffLimit": 1, "template": {"spec": {"containers": [{"name": "c"}]}}}));
        let d = decide(&j, &[], at("2024-01-01T00:00:00Z"));
        assert_eq!(d.create, 1);
        assert_eq!(d.status["active"], 1);
        assert!(d.status["startTime"].is_string());

        let pods = vec![failed_pod("2024-01-01T00:00:05Z")];
        let d = decide(&j, &pods, at("2024-01-01T00:00:07Z"));
        assert_eq!(d.create, 0, "inside the 10 s back-off");
        assert_eq!(d.requeue_after, Some(Duration::from_secs(8)));
        let d = decide(&j, &pods, at("2024-01-01T00:00:16Z"));
        assert_eq!(d.create, 1);

        let pods = vec![
            failed_pod("2024-01-01T00:00:05Z"),
            failed_pod("2024-01-01T00:00:30Z"),
        ];
        let d = decide(&j, &pods, at("2024-01-01T00:00:31Z"));
        assert_eq!(d.create, 0);
        let failed = d.status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Failed")
            .unwrap()
            .clone();
        assert_eq!(failed["reason"], "BackoffLimitExceeded");
        assert_eq!(
            failed["message"],
            "Job has reached the specified backoff limit"
        );
        assert_eq!(d.status["failed"], 2);
        assert!(d.status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "FailureTarget"));
    }

    #[test]
    fn completes_at_completions_and_expires_after_ttl() {
        let j = job(
            json!({"completions": 2, "parallelism": 2, "ttlSecondsAfterFinished": 5, "template": {"spec": {}}}),
        );
        let ok = Arc::new(json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}));
        let d = decide(&j, &[], at("2024-01-01T00:00:00Z"));
        assert_eq!(d.create, 2);
        let d = decide(&j, &[ok.clone(), ok.clone()], at("2024-01-01T00:01:00Z"));
        assert!(d.status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete"));
        assert_eq!(d.status["completionTime"], "2024-01-01T00:01:00Z");
        let mut done = j.clone();
        done["status"] = d.status.clone();
        assert!(!decide(&done, &[], at("2024-01-01T00:01:03Z")).delete_job);
        assert!(decide(&done, &[], at("2024-01-01T00:01:05Z")).delete_job);
    }

    #[test]
    fn deadline_fails_the_job_and_deletes_active_pods() {
        let j = job(json!({"activeDeadlineSeconds": 10, "template": {"spec": {}}}));
        let mut started = j.clone();
        started["status"]["startTime"] = json!("2024-01-01T00:00:00Z");
        let running =
            Arc::new(json!({"metadata": {"name": "pi-abcde"}, "status": {"phase": "Running"}}));
        let d = decide(&started, &[running], at("2024-01-01T00:00:11Z"));
        assert_eq!(d.delete, ["pi-abcde"]);
        let failed = d.status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Failed")
            .unwrap()
            .clone();
        assert_eq!(failed["reason"], "DeadlineExceeded");
    }

    #[test]
    fn pods_carry_labels_owner_and_a_generated_name() {
        let j = job(
            json!({"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {"containers": []}}}),
        );
        let pod = pod_for(&j);
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("pi-") && name.len() == 8);
        assert_eq!(pod["metadata"]["labels"]["app"], "pi");
        assert_eq!(pod["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
    }
}
