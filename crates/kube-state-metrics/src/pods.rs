//! `kube_pod_*`: KSM's pod metrics (`internal/store/pod.go`). Every series carries
//! `namespace`, `pod` and `uid`.

use serde_json::Value;

use crate::exposition::{labels, Escaped, FamilyRows, Labels};
use crate::{prometheus_labels, resource_value, sanitize_label_name, str_at};

const PHASES: [&str; 5] = ["Pending", "Succeeded", "Failed", "Unknown", "Running"];

/// The pod families for these Pod objects (each descriptor even with no pod).
pub fn families<'a>(pods: impl Iterator<Item = &'a Value>) -> Vec<FamilyRows> {
    let mut info = FamilyRows::gauge("kube_pod_info", "Information about pod.");
    let mut owner = FamilyRows::gauge("kube_pod_owner", "Information about the Pod's owner.");
    let mut pod_labels = FamilyRows::gauge(
        "kube_pod_labels",
        "Kubernetes labels converted to Prometheus labels.",
    );
    let mut phase = FamilyRows::gauge("kube_pod_status_phase", "The pods current phase.");
    let mut requests = FamilyRows::gauge(
        "kube_pod_container_resource_requests",
        "The number of requested request resource by a container. It is recommended to use the kube_pod_resource_requests metric exposed by kube-scheduler instead, as it is more precise.",
    );
    let mut limits = FamilyRows::gauge(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container. It is recommended to use the kube_pod_resource_limits metric exposed by kube-scheduler instead, as it is more precise.",
    );
    let mut restarts = FamilyRows::counter(
        "kube_pod_container_status_restarts",
        "The number of container restarts per container.",
    );
    let mut running = FamilyRows::gauge(
        "kube_pod_container_status_running",
        "Describes whether the container is currently in running state.",
    );
    let mut waiting = FamilyRows::gauge(
        "kube_pod_container_status_waiting",
        "Describes whether the container is currently in waiting state.",
    );
    let mut terminated_reason = FamilyRows::gauge(
        "kube_pod_container_status_terminated_reason",
        "Describes the reason the container is currently in terminated state.",
    );
    for pod in pods {
        let namespace = str_at(pod, "/metadata/namespace");
        let name = str_at(pod, "/metadata/name");
        let uid = str_at(pod, "/metadata/uid");
        if name.is_empty() {
            continue;
        }
        let node = str_at(pod, "/spec/nodeName");
        let base = || labels(&[("namespace", namespace), ("pod", name), ("uid", uid)]);
        let with = |extra: &[(&str, &str)]| {
            let mut l = base();
            l.extend(labels(extra));
            l
        };

        let owners: Vec<&Value> = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let controller = owners
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
        let host_network = pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string();
        info.push(
            with(&[
                ("host_ip", str_at(pod, "/status/hostIP")),
                ("pod_ip", str_at(pod, "/status/podIP")),
                ("node", node),
                (
                    "created_by_kind",
                    controller.map_or("", |o| str_at(o, "/kind")),
                ),
                (
                    "created_by_name",
                    controller.map_or("", |o| str_at(o, "/name")),
                ),
                ("priority_class", str_at(pod, "/spec/priorityClassName")),
                ("host_network", &host_network),
            ]),
            1.0,
        );
        if owners.is_empty() {
            owner.push(
                with(&[
                    ("owner_kind", "<none>"),
                    ("owner_name", "<none>"),
                    ("owner_is_controller", "<none>"),
                ]),
                1.0,
            );
        }
        for o in &owners {
            let is_controller = o
                .get("controller")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string();
            owner.push(
                with(&[
                    ("owner_kind", str_at(o, "/kind")),
                    ("owner_name", str_at(o, "/name")),
                    ("owner_is_controller", &is_controller),
                ]),
                1.0,
            );
        }
        let mut l = base();
        l.extend(prometheus_labels(
            "label",
            pod.pointer("/metadata/labels").and_then(Value::as_object),
        ));
        pod_labels.push(l, 1.0);

        // KSM reports no phase for a pod whose status has none yet; a pod whose node was
        // lost while it was being deleted is Unknown.
        let mut current = str_at(pod, "/status/phase");
        if pod.pointer("/metadata/deletionTimestamp").is_some()
            && str_at(pod, "/status/reason") == "NodeLost"
        {
            current = "Unknown";
        }
        if !current.is_empty() {
            for p in PHASES {
                phase.push(with(&[("phase", p)]), if p == current { 1.0 } else { 0.0 });
            }
        }

        for container in pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = str_at(container, "/name");
            for (family, pointer) in [
                (&mut requests, "/resources/requests"),
                (&mut limits, "/resources/limits"),
            ] {
                for (resource, quantity) in container
                    .pointer(pointer)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if let Some((value, unit)) = resource_value(resource, quantity) {
                        family.push(
                            container_resource(base(), cname, node, resource, unit),
                            value,
                        );
                    }
                }
            }
        }

        for status in pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = str_at(status, "/name");
            let c = || with(&[("container", cname)]);
            let restart_count = status
                .get("restartCount")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            restarts.push(c(), restart_count);
            let state = |s: &str| status.pointer(&format!("/state/{s}")).is_some();
            running.push(c(), if state("running") { 1.0 } else { 0.0 });
            waiting.push(c(), if state("waiting") { 1.0 } else { 0.0 });
            let reason = str_at(status, "/state/terminated/reason");
            if !reason.is_empty() {
                terminated_reason.push(with(&[("container", cname), ("reason", reason)]), 1.0);
            }
        }
    }
    vec![
        info,
        owner,
        pod_labels,
        phase,
        requests,
        limits,
        restarts,
        running,
        waiting,
        terminated_reason,
    ]
}

fn container_resource(
    mut l: Labels,
    container: &str,
    node: &str,
    resource: &str,
    unit: &str,
) -> Labels {
    l.push(("container".into(), Escaped(container.into())));
    l.push(("node".into(), Escaped(node.into())));
    l.push(("resource".into(), Escaped(sanitize_label_name(resource))));
    l.push(("unit".into(), Escaped(unit.into())));
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows<'a>(f: &'a [FamilyRows], name: &str) -> &'a FamilyRows {
        f.iter().find(|x| x.name == name).unwrap()
    }

    fn get(l: &Labels, k: &str) -> String {
        l.iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.0.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_pod_as_ksm_reports_it() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"},
                "ownerReferences": [{"kind": "Job", "name": "j", "controller": true}]},
            "spec": {"nodeName": "n1", "priorityClassName": "high", "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
                {"name": "b"}
            ]},
            "status": {"phase": "Running", "podIP": "10.1.0.4", "hostIP": "10.0.0.5",
                "containerStatuses": [
                    {"name": "a", "restartCount": 2, "state": {"running": {}}},
                    {"name": "b", "restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
                ]}
        });
        let f = families([pod].iter());
        let req = rows(&f, "kube_pod_container_resource_requests");
        assert_eq!(req.rows.len(), 2);
        let cpu = req
            .rows
            .iter()
            .find(|(l, _)| get(l, "resource") == "cpu")
            .unwrap();
        assert_eq!(cpu.1, 0.25);
        assert_eq!(get(&cpu.0, "unit"), "core");
        assert_eq!(get(&cpu.0, "node"), "n1");
        assert_eq!(get(&cpu.0, "container"), "a");
        assert_eq!(rows(&f, "kube_pod_container_resource_limits").rows.len(), 1);
        let phase = rows(&f, "kube_pod_status_phase");
        assert_eq!(phase.rows.len(), 5);
        assert_eq!(
            phase
                .rows
                .iter()
                .filter(|(_, v)| *v == 1.0)
                .map(|(l, _)| get(l, "phase"))
                .collect::<Vec<_>>(),
            ["Running"]
        );
        let info = &rows(&f, "kube_pod_info").rows[0].0;
        assert_eq!(get(info, "created_by_kind"), "Job");
        assert_eq!(get(info, "priority_class"), "high");
        assert_eq!(get(info, "host_network"), "false");
        let owner = &rows(&f, "kube_pod_owner").rows[0].0;
        assert_eq!(get(owner, "owner_is_controller"), "true");
        assert_eq!(
            rows(&f, "kube_pod_container_status_restarts").rows[0].1,
            2.0
        );
        let term = rows(&f, "kube_pod_container_status_terminated_reason");
        assert_eq!(term.rows.len(), 1);
        assert_eq!(get(&term.rows[0].0, "reason"), "Completed");
        assert_eq!(
            get(&rows(&f, "kube_pod_labels").rows[0].0, "label_app"),
            "web"
        );
    }

    #[test]
    fn a_pod_without_owner_or_phase() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}});
        let f = families([pod].iter());
        assert!(rows(&f, "kube_pod_status_phase").rows.is_empty());
        let owner = &rows(&f, "kube_pod_owner").rows[0].0;
        assert_eq!(get(owner, "owner_kind"), "<none>");
    }
}
