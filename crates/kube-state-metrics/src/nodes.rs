//! `kube_node_*`: KSM's node metrics (`internal/store/node.go`).

use serde_json::Value;

use crate::exposition::{labels, Escaped, FamilyRows, Labels};
use crate::{prometheus_labels, resource_value, sanitize_label_name, str_at};

/// The node families for these Node objects (each descriptor even with no node).
pub fn families<'a>(nodes: impl Iterator<Item = &'a Value>) -> Vec<FamilyRows> {
    let mut info = FamilyRows::gauge("kube_node_info", "Information about a cluster node.");
    let mut node_labels = FamilyRows::gauge(
        "kube_node_labels",
        "Kubernetes labels converted to Prometheus labels.",
    );
    let mut unschedulable = FamilyRows::gauge(
        "kube_node_spec_unschedulable",
        "Whether a node can schedule new pods.",
    );
    let mut condition = FamilyRows::gauge(
        "kube_node_status_condition",
        "The condition of a cluster node.",
    );
    let mut capacity = FamilyRows::gauge(
        "kube_node_status_capacity",
        "The capacity for different resources of a node.",
    );
    let mut allocatable = FamilyRows::gauge(
        "kube_node_status_allocatable",
        "The allocatable for different resources of a node that are available for scheduling.",
    );
    for node in nodes {
        let name = str_at(node, "/metadata/name");
        if name.is_empty() {
            continue;
        }
        let internal_ip = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
            .filter_map(|a| a.get("address").and_then(Value::as_str))
            .next_back()
            .unwrap_or("");
        let ni = |field: &str| str_at(node, &format!("/status/nodeInfo/{field}"));
        info.push(
            labels(&[
                ("node", name),
                ("kernel_version", ni("kernelVersion")),
                ("os_image", ni("osImage")),
                ("container_runtime_version", ni("containerRuntimeVersion")),
                ("kubelet_version", ni("kubeletVersion")),
                ("kubeproxy_version", ni("kubeProxyVersion")),
                ("provider_id", str_at(node, "/spec/providerID")),
                ("pod_cidr", str_at(node, "/spec/podCIDR")),
                ("system_uuid", ni("systemUUID")),
                ("internal_ip", internal_ip),
            ]),
            1.0,
        );
        let mut l = labels(&[("node", name)]);
        l.extend(prometheus_labels(
            "label",
            node.pointer("/metadata/labels").and_then(Value::as_object),
        ));
        node_labels.push(l, 1.0);
        let cordoned = node
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        unschedulable.push(labels(&[("node", name)]), if cordoned { 1.0 } else { 0.0 });
        for c in node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = str_at(c, "/type");
            let status = str_at(c, "/status").to_lowercase();
            for s in ["true", "false", "unknown"] {
                condition.push(
                    labels(&[("node", name), ("condition", kind), ("status", s)]),
                    if status == s { 1.0 } else { 0.0 },
                );
            }
        }
        for (family, pointer) in [
            (&mut capacity, "/status/capacity"),
            (&mut allocatable, "/status/allocatable"),
        ] {
            for (resource, quantity) in node
                .pointer(pointer)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some((value, unit)) = resource_value(resource, quantity) {
                    family.push(resource_labels(name, resource, unit), value);
                }
            }
        }
    }
    vec![
        info,
        node_labels,
        unschedulable,
        condition,
        capacity,
        allocatable,
    ]
}

fn resource_labels(node: &str, resource: &str, unit: &str) -> Labels {
    vec![
        ("node".into(), Escaped(node.into())),
        ("resource".into(), Escaped(sanitize_label_name(resource))),
        ("unit".into(), Escaped(unit.into())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(f: &FamilyRows, want: &[(&str, &str)]) -> Option<f64> {
        f.rows
            .iter()
            .find(|(l, _)| {
                want.iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv.0 == *v))
            })
            .map(|(_, v)| *v)
    }

    #[test]
    fn a_node_as_ksm_reports_it() {
        let node = json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "spec": {"providerID": "aws:///us-east-1a/i-1", "podCIDR": "10.0.0.0/24", "unschedulable": true},
            "status": {
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "20Gi"},
                "allocatable": {"cpu": "7910m", "memory": "31Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "kernelVersion": "6.1"}
            }
        });
        let f = families([node].iter());
        let by = |name: &str| f.iter().find(|x| x.name == name).unwrap();
        assert_eq!(
            value(
                by("kube_node_status_allocatable"),
                &[("resource", "cpu"), ("unit", "core")]
            ),
            Some(7.91)
        );
        assert_eq!(
            value(
                by("kube_node_status_capacity"),
                &[("resource", "ephemeral_storage"), ("unit", "byte")]
            ),
            Some(20.0 * 1024.0 * 1024.0 * 1024.0)
        );
        let cond = by("kube_node_status_condition");
        assert_eq!(cond.rows.len(), 6);
        assert_eq!(
            value(cond, &[("condition", "Ready"), ("status", "true")]),
            Some(1.0)
        );
        assert_eq!(
            value(cond, &[("condition", "Ready"), ("status", "false")]),
            Some(0.0)
        );
        assert_eq!(
            value(by("kube_node_spec_unschedulable"), &[("node", "n1")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                by("kube_node_info"),
                &[("internal_ip", "10.0.0.5"), ("kubelet_version", "v1.31.0")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                by("kube_node_labels"),
                &[("label_kubernetes_io_hostname", "n1")]
            ),
            Some(1.0)
        );
    }
}
