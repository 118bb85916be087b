//! A kube-state-metrics (KSM) subset for the embedded cluster: the `kube_node_*` and
//! `kube_pod_*` series dashboards and Container Insights' PromQL equivalents read, with
//! KSM's names, labels, units and help texts, computed at scrape time from the API
//! server's current objects.
//!
//! **Owns:** turning Node and Pod objects into KSM series ([`nodes`], [`pods`]), KSM's
//! label sanitising ([`sanitize_label_name`]), and the text exposition helpers the
//! `/metrics` listener merges every source with ([`exposition`]: OpenMetrics fragments →
//! one `text/plain; version=0.0.4` document, each family once).
//!
//! **Must not touch:** the registry or the API server's internals — it reads through the
//! API server's [`Client`] only (`list` of nodes and pods, as KSM's informers would); it
//! writes nothing and keeps no state between scrapes. Serving HTTP is the binary's.
//!
//! **Entry points:** [`KubeStateMetrics::new`] (a prometheus-client
//! [`Collector`](prometheus_client::collector::Collector)), [`KubeStateMetrics::text`],
//! [`exposition::to_prometheus_text`].
//!
//! `kube_node_labels` and `kube_pod_labels` carry every label of the object (KSM run with
//! `--metric-labels-allowlist=nodes=[*],pods=[*]`); KSM's default allowlist is empty,
//! which leaves only the `node` / `namespace,pod,uid` labels. A single-machine cluster
//! has few objects, so the cardinality stays small, and Karpenter's and EKS's node labels
//! (`karpenter.sh/nodepool`, `eks.amazonaws.com/nodegroup`) are what dashboards group by.

pub mod exposition;
pub mod nodes;
pub mod pods;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;

pub use exposition::{FamilyRows, Kind};

const NODES: Resource = Resource::new("", "nodes");
const PODS: Resource = Resource::new("", "pods");

/// The KSM subset over one cluster's API server.
#[derive(Clone)]
pub struct KubeStateMetrics {
    client: Client,
}

impl std::fmt::Debug for KubeStateMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStateMetrics").finish()
    }
}

impl KubeStateMetrics {
    pub fn new(client: Client) -> KubeStateMetrics {
        KubeStateMetrics { client }
    }

    /// Every family, computed from the objects the API server holds now.
    pub fn families(&self) -> Vec<FamilyRows> {
        let (nodes, _) = self.client.list(NODES, None);
        let (pods, _) = self.client.list(PODS, None);
        let mut families = nodes::families(nodes.iter().map(|n| n.as_ref()));
        families.extend(pods::families(pods.iter().map(|p| p.as_ref())));
        families
    }

    /// The OpenMetrics text of one scrape (no `# EOF`).
    pub fn text(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        exposition::openmetrics(&registry)
    }
}

impl Collector for KubeStateMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        exposition::encode_families(&mut encoder, &self.families())
    }
}

/// KSM's `SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Kubernetes labels as Prometheus labels, as KSM's `kubeMapToPrometheusLabels` makes
/// them: `label_<sanitized key>`, sorted by key; keys that sanitise to the same name get
/// `_conflict1`, `_conflict2`… in the order of their original keys.
pub fn prometheus_labels(
    prefix: &str,
    map: Option<&serde_json::Map<String, serde_json::Value>>,
) -> exposition::Labels {
    let mut keys: Vec<(&String, &serde_json::Value)> =
        map.into_iter().flat_map(|m| m.iter()).collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: exposition::Labels = Vec::new();
    let names: Vec<String> = keys
        .iter()
        .map(|(k, _)| format!("{prefix}_{}", sanitize_label_name(k)))
        .collect();
    for (i, (_, v)) in keys.iter().enumerate() {
        let name = &names[i];
        let same = names.iter().filter(|n| *n == name).count();
        let label = if same > 1 {
            let nth = names[..=i].iter().filter(|n| *n == name).count();
            format!("{name}_conflict{nth}")
        } else {
            name.clone()
        };
        out.push((
            label,
            exposition::Escaped(v.as_str().unwrap_or_default().to_string()),
        ));
    }
    out
}

/// A quantity's value as KSM reports it: CPU in cores (`MilliValue()/1000`), everything
/// else in whole units (`Value()`); `(value, unit)` for the `unit` label, `None` for a
/// resource KSM does not report.
pub fn resource_value(name: &str, quantity: &serde_json::Value) -> Option<(f64, &'static str)> {
    use sparkyard_scheduling::quantity;
    let text = quantity::json_text(quantity)?;
    match name {
        "cpu" => Some((quantity::millis(&text).ok()? as f64 / 1000.0, "core")),
        "memory" | "storage" | "ephemeral-storage" => {
            Some((quantity::units(&text).ok()? as f64, "byte"))
        }
        "pods" => Some((quantity::units(&text).ok()? as f64, "integer")),
        n if n.starts_with("hugepages-") || n.starts_with("attachable-volumes-") => {
            Some((quantity::units(&text).ok()? as f64, "byte"))
        }
        // Extended resources: a domain outside kubernetes.io (`nvidia.com/gpu`).
        n if sparkyard_scheduling::resources::is_scalar_resource(n) => {
            Some((quantity::units(&text).ok()? as f64, "integer"))
        }
        _ => None,
    }
}

pub(crate) fn str_at<'a>(v: &'a serde_json::Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_names_are_sanitized_with_conflicts_numbered() {
        let map = json!({"app.kubernetes.io/name": "x", "app_kubernetes_io_name": "y", "b": "z"});
        let got = prometheus_labels("label", map.as_object());
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "label_app_kubernetes_io_name_conflict1",
                "label_app_kubernetes_io_name_conflict2",
                "label_b"
            ]
        );
    }

    #[test]
    fn resources_have_ksm_units() {
        assert_eq!(resource_value("cpu", &json!("250m")), Some((0.25, "core")));
        assert_eq!(
            resource_value("memory", &json!("1Gi")),
            Some((1073741824.0, "byte"))
        );
        assert_eq!(
            resource_value("pods", &json!("110")),
            Some((110.0, "integer"))
        );
        assert_eq!(
            resource_value("nvidia.com/gpu", &json!("1")),
            Some((1.0, "integer"))
        );
    }
}
