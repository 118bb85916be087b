//! The `PodName` dimension: Container Insights reports a controller-owned pod under its
//! workload's name, so a Deployment's pods share one series across rollouts.
//!
//! The rules of the agent's pod store (`addPodOwnersAndPodName`): a ReplicaSet's pod is
//! named for its Deployment (the ReplicaSet name without its hash suffix), a Job's for the
//! Job name's prefix (text before the first `-` or `.`) — or its CronJob's name when the
//! Job is a CronJob's run — a DaemonSet's or ReplicationController's for the owner, and a
//! StatefulSet's pod and any other pod under its own name. EMR's job-runner pod (owner
//! `Job/<jobRunId>`) is thus `PodName=<jobRunId>`; the driver (no controller owner) is
//! `spark-<jobRunId>-driver`; executors (owned by the driver Pod) keep their own names.

/// A pod's owner reference, as far as the rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// The `PodName` dimension of a pod named `pod` with these owners (in order).
pub fn pod_name(pod: &str, owners: &[Owner]) -> String {
    for owner in owners {
        if owner.kind.is_empty() || owner.name.is_empty() {
            continue;
        }
        match owner.kind.as_str() {
            "StatefulSet" => return pod.to_string(),
            "ReplicaSet" => return deployment_of(&owner.name).unwrap_or(&owner.name).into(),
            "Job" => {
                return match cron_job_of(&owner.name) {
                    Some(cron) => cron.to_string(),
                    None => job_prefix(&owner.name).to_string(),
                }
            }
            "DaemonSet" | "ReplicationController" => return owner.name.clone(),
            _ => {}
        }
    }
    pod.to_string()
}

/// `web-5d8f9c7b6d` → `web`: a Deployment names its ReplicaSets `<deployment>-<pod-template-hash>`.
fn deployment_of(replica_set: &str) -> Option<&str> {
    let (name, hash) = replica_set.rsplit_once('-')?;
    let looks_like_hash =
        !hash.is_empty() && hash.len() <= 10 && hash.chars().all(|c| c.is_ascii_alphanumeric());
    (looks_like_hash && !name.is_empty()).then_some(name)
}

/// `backup-28934560` → `backup`: a CronJob names its Jobs `<cronjob>-<scheduled minutes>`.
fn cron_job_of(job: &str) -> Option<&str> {
    let (name, stamp) = job.rsplit_once('-')?;
    (stamp.len() >= 8 && stamp.chars().all(|c| c.is_ascii_digit()) && !name.is_empty())
        .then_some(name)
}

fn job_prefix(job: &str) -> &str {
    job.split(['-', '.']).next().unwrap_or(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(kind: &str, name: &str) -> Vec<Owner> {
        vec![Owner {
            kind: kind.into(),
            name: name.into(),
        }]
    }

    #[test]
    fn emr_pods() {
        assert_eq!(
            pod_name(
                "000000030mq3vadqab3-xk2lp",
                &owner("Job", "000000030mq3vadqab3")
            ),
            "000000030mq3vadqab3"
        );
        assert_eq!(
            pod_name("spark-000000030mq3vadqab3-driver", &[]),
            "spark-000000030mq3vadqab3-driver"
        );
        assert_eq!(
            pod_name(
                "spark-pi-1a2b-exec-1",
                &owner("Pod", "spark-000000030mq3vadqab3-driver")
            ),
            "spark-pi-1a2b-exec-1"
        );
    }

    #[test]
    fn workloads() {
        assert_eq!(
            pod_name(
                "web-5d8f9c7b6d-abcde",
                &owner("ReplicaSet", "web-5d8f9c7b6d")
            ),
            "web"
        );
        assert_eq!(
            pod_name("fluentd-x1", &owner("DaemonSet", "fluentd")),
            "fluentd"
        );
        assert_eq!(pod_name("db-0", &owner("StatefulSet", "db")), "db-0");
        assert_eq!(
            pod_name("backup-28934560-q", &owner("Job", "backup-28934560")),
            "backup"
        );
        assert_eq!(pod_name("pi-xyz", &owner("Job", "pi.calc-1")), "pi");
    }
}
