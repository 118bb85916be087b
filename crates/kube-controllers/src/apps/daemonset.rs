//! The DaemonSet controller: one pod per node the template may run on (node selector,
//! required node affinity, taints — with the tolerations kube adds to every daemon pod),
//! including nodes that appear later (Karpenter's, node groups'); pods on nodes that no
//! longer qualify or no longer exist are deleted; `RollingUpdate` replaces outdated pods
//! `maxUnavailable` at a time (`OnDelete` only when they are deleted).
//!
//! Each pod is pinned to its node with a required node affinity on `metadata.name` and
//! placed by the scheduler, as kube does since 1.12.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use sparkyard_kube_apiserver::events::Source;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;
use sparkyard_scheduling::filter::static_filter;
use sparkyard_scheduling::node::NodeInfo;
use sparkyard_scheduling::requirements::PlacementConstraints;

use super::replicaset::write_status;
use super::statefulset::REVISION_LABEL;
use super::*;

/// The tolerations kube's DaemonSet controller adds to every daemon pod
/// (`util.AddOrUpdateDaemonPodTolerations`).
pub fn daemon_tolerations() -> Vec<Value> {
    let mut t = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
    ];
    for key in [
        "disk-pressure",
        "memory-pressure",
        "pid-pressure",
        "unschedulable",
    ] {
        t.push(json!({"key": format!("node.kubernetes.io/{key}"), "operator": "Exists", "effect": "NoSchedule"}));
    }
    t
}

/// The template's pod spec with the daemon tolerations, as placement sees it.
fn daemon_spec(ds: &Value) -> Value {
    let mut spec = ds["spec"]["template"]["spec"].clone();
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for t in daemon_tolerations() {
        if !tolerations
            .iter()
            .any(|x| x["key"] == t["key"] && x["effect"] == t["effect"])
        {
            tolerations.push(t);
        }
    }
    spec["tolerations"] = json!(tolerations);
    spec
}

/// Whether a daemon pod of `ds` belongs on `node`.
pub fn should_run(ds: &Value, node: &Value) -> bool {
    if deleting(node) {
        return false;
    }
    let Ok(info) = NodeInfo::from_node(node) else {
        return false;
    };
    let placement = PlacementConstraints::from_pod_spec(&daemon_spec(ds));
    static_filter(&placement, &info).is_none()
}

#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Nodes to create a pod on.
    pub create: Vec<String>,
    pub delete: Vec<String>,
}

/// Pods by node → what to create and delete. `eligible` are the nodes that should run one.
pub fn decide(
    ds: &Value,
    eligible: &[String],
    pods: &[Arc<Value>],
    revision: &str,
    now: DateTime<Utc>,
) -> Decision {
    let mut decision = Decision::default();
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let mut by_node: BTreeMap<&str, Vec<&Arc<Value>>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| !deleting(p)) {
        by_node.entry(node_of(pod)).or_default().push(pod);
    }
    for (node, list) in &by_node {
        if !eligible.iter().any(|n| n == node) {
            decision
                .delete
                .extend(list.iter().map(|p| name(p).to_string()));
            continue;
        }
        // Failed daemon pods are replaced; extra pods on one node are removed.
        let mut live: Vec<&&Arc<Value>> = list.iter().filter(|p| is_active(p)).collect();
        decision.delete.extend(
            list.iter()
                .filter(|p| !is_active(p))
                .map(|p| name(p).to_string()),
        );
        live.sort_by_key(|p| {
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string()
        });
        decision
            .delete
            .extend(live.iter().skip(1).map(|p| name(p).to_string()));
    }
    for node in eligible {
        let has_live = by_node
            .get(node.as_str())
            .is_some_and(|list| list.iter().any(|p| is_active(p)));
        if !has_live && !pods.iter().any(|p| deleting(p) && node_of(p) == node) {
            decision.create.push(node.clone());
        }
    }
    // Rolling update: outdated pods go while fewer than maxUnavailable are unavailable.
    if ds["spec"]["updateStrategy"]["type"] != "OnDelete" {
        let desired = eligible.len() as i64;
        let max_unavailable = int_or_percent(
            &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            true,
            1,
        )
        .max(1);
        let unavailable = eligible
            .iter()
            .filter(|n| {
                !pods.iter().any(|p| {
                    node_of(p) == n.as_str() && is_active(p) && is_available(p, min_ready, now)
                })
            })
            .count() as i64;
        let mut budget = max_unavailable - unavailable;
        let mut outdated: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| is_active(p) && eligible.iter().any(|n| n == node_of(p)))
            .filter(|p| p["metadata"]["labels"][REVISION_LABEL] != revision)
            .filter(|p| !decision.delete.iter().any(|d| d == name(p)))
            .collect();
        // Unavailable outdated pods first: replacing them costs no availability.
        outdated.sort_by_key(|p| is_available(p, min_ready, now));
        for pod in outdated {
            let available = is_available(pod, min_ready, now);
            if available && budget <= 0 {
                break;
            }
            decision.delete.push(name(pod).to_string());
            if available {
                budget -= 1;
            }
        }
    }
    decision
}

fn node_of(pod: &Value) -> &str {
    // The node a daemon pod is for: where it runs, else what its affinity pins it to.
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()).unwrap_or_else(|| {
        pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
            .and_then(Value::as_str)
            .unwrap_or("")
    })
}

/// The daemon pod for `node`.
pub fn pod_for(ds: &Value, node: &str, revision: &str) -> Value {
    let generation = ds["metadata"]["generation"]
        .as_i64()
        .unwrap_or(1)
        .to_string();
    let mut pod = pod_from_template(
        ds,
        "DaemonSet",
        &ds["spec"]["template"],
        None,
        &format!("{}-", name(ds)),
        &[
            (REVISION_LABEL, revision),
            ("pod-template-generation", &generation),
        ],
    );
    pod["spec"] = daemon_spec(ds);
    if pod["spec"]["restartPolicy"].is_null() {
        pod["spec"]["restartPolicy"] = json!("Always");
    }
    // kube replaces the node-affinity terms with one that selects this node by name.
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    });
    pod
}

pub fn status(
    ds: &Value,
    eligible: &[String],
    pods: &[Arc<Value>],
    revision: &str,
    now: DateTime<Utc>,
) -> Value {
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| is_active(p)).collect();
    let on = |n: &String| {
        active
            .iter()
            .filter(|p| node_of(p) == n.as_str())
            .collect::<Vec<_>>()
    };
    let scheduled = eligible.iter().filter(|n| !on(n).is_empty()).count();
    let ready = eligible
        .iter()
        .filter(|n| on(n).iter().any(|p| is_ready(p)))
        .count();
    let available = eligible
        .iter()
        .filter(|n| on(n).iter().any(|p| is_available(p, min_ready, now)))
        .count();
    let updated = eligible
        .iter()
        .filter(|n| {
            on(n)
                .iter()
                .any(|p| p["metadata"]["labels"][REVISION_LABEL] == revision)
        })
        .count();
    let misscheduled = active
        .iter()
        .filter(|p| !eligible.iter().any(|n| n == node_of(p)))
        .count();
    let mut status = json!({
        "currentNumberScheduled": scheduled,
        "desiredNumberScheduled": eligible.len(),
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": eligible.len() - available,
        "updatedNumberScheduled": updated,
        "observedGeneration": ds["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    omit_zeros(
        &mut status,
        &[
            "numberAvailable",
            "numberUnavailable",
            "updatedNumberScheduled",
        ],
    );
    status
}

const SOURCE: Source = Source {
    component: "daemonset-controller",
    host: None,
};

fn relevant(kind: &Resource, object: &Value) -> bool {
    *kind != PODS || controlled_by(object, "DaemonSet")
}

pub async fn run(client: Client) {
    control_loop(client, &[DAEMON_SETS, PODS, NODES], relevant, reconcile_all).await
}

pub fn reconcile_all(client: &Client) -> Option<Duration> {
    let (sets, _) = client.list(DAEMON_SETS, None);
    if sets.is_empty() {
        return None;
    }
    let (nodes, _) = client.list(NODES, None);
    let now = Utc::now();
    let mut soonest: Option<Duration> = None;
    for ds in sets.iter().filter(|d| !deleting(d)) {
        let ns = namespace(ds);
        let involved = involved(ds, "DaemonSet");
        let revision = template_hash(
            &ds["spec"]["template"],
            ds["status"]["collisionCount"].as_i64().unwrap_or(0),
        );
        let (revisions, _) = client.list(CONTROLLER_REVISIONS, Some(ns));
        let revisions = owned_by(ds, &revisions);
        if !revisions
            .iter()
            .any(|r| r["metadata"]["labels"]["controller.kubernetes.io/hash"] == revision.as_str())
        {
            let number = revisions
                .iter()
                .filter_map(|r| r["revision"].as_i64())
                .max()
                .unwrap_or(0)
                + 1;
            let mut cr = super::statefulset::controller_revision(ds, &revision, number);
            cr["metadata"]["ownerReferences"] = json!([owner_reference(ds, "DaemonSet")]);
            let _ = client.create(CONTROLLER_REVISIONS, ns, cr);
        }
        let eligible: Vec<String> = nodes
            .iter()
            .filter(|n| should_run(ds, n))
            .map(|n| name(n).to_string())
            .collect();
        let (pods, _) = client.list(PODS, Some(ns));
        let owned = owned_by(ds, &pods);
        let decision = decide(ds, &eligible, &owned, &revision, now);
        for node in &decision.create {
            if create_pod(client, &involved, &SOURCE, pod_for(ds, node, &revision)).is_err() {
                soonest = Some(Duration::from_secs(5));
            }
        }
        for pod_name in &decision.delete {
            delete_pod(client, &involved, &SOURCE, pod_name);
        }
        let (pods, _) = client.list(PODS, Some(ns));
        let owned = owned_by(ds, &pods);
        write_status(
            client,
            DAEMON_SETS,
            ds,
            status(ds, &eligible, &owned, &revision, now),
        );
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if let Some(after) = owned
            .iter()
            .filter_map(|p| available_in(p, min_ready, now))
            .min()
        {
            soonest = Some(soonest.map_or(after, |s| s.min(after)));
        }
    }
    soonest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
    }

    fn ds(spec: Value) -> Value {
        json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "u", "generation": 1}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}})
    }

    fn pod(name: &str, node: &str, revision: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name, "labels": {REVISION_LABEL: revision}}, "spec": {"nodeName": node}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        )
    }

    #[test]
    fn runs_on_nodes_the_template_selects_and_tolerates() {
        let d = ds(json!({"nodeSelector": {"role": "spark"}, "containers": []}));
        assert!(should_run(
            &d,
            &node("a", json!({"role": "spark"}), json!([]))
        ));
        assert!(!should_run(
            &d,
            &node("b", json!({"role": "web"}), json!([]))
        ));
        // Cordoned nodes keep their daemons; a custom NoSchedule taint needs a toleration.
        let mut cordoned = node("c", json!({"role": "spark"}), json!([]));
        cordoned["spec"]["unschedulable"] = json!(true);
        assert!(should_run(&d, &cordoned));
        let tainted = node(
            "d",
            json!({"role": "spark"}),
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
        );
        assert!(!should_run(&d, &tainted));
    }

    #[test]
    fn one_pod_per_eligible_node_and_none_elsewhere() {
        let d = ds(json!({"containers": []}));
        let eligible = vec!["a".to_string(), "b".to_string()];
        let pods = vec![pod("agent-1", "a", "r"), pod("agent-2", "gone", "r")];
        let out = decide(&d, &eligible, &pods, "r", Utc::now());
        assert_eq!(out.create, vec!["b".to_string()]);
        assert_eq!(out.delete, vec!["agent-2".to_string()]);
    }

    #[test]
    fn rolling_update_replaces_max_unavailable_at_a_time() {
        let d = ds(json!({"containers": []}));
        let eligible = vec!["a".to_string(), "b".to_string()];
        let pods = vec![pod("agent-1", "a", "old"), pod("agent-2", "b", "old")];
        let out = decide(&d, &eligible, &pods, "new", Utc::now());
        assert_eq!(out.delete.len(), 1);
        assert!(out.create.is_empty());
    }

    #[test]
    fn pods_are_pinned_to_their_node() {
        let p = pod_for(&ds(json!({"containers": []})), "node-7", "r");
        assert_eq!(node_of(&p), "node-7");
        assert!(p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unschedulable"));
    }
}
