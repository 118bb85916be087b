//! The latest collection as Prometheus gauges, `sparkyard_ci_<metric>`, so the same numbers
//! CloudWatch charts can be scraped: node metrics labelled `{cluster,node}`, pod metrics
//! `{cluster,namespace,pod}`, container metrics `{cluster,namespace,pod,container}`,
//! namespace and service counts `{cluster,namespace[,service]}`, cluster counts `{cluster}`.
//! Only the catalogue's metrics are exported (the records' plain fields are not).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::catalog::{self, RecordType};
use crate::compute::Record;

type Labels = Vec<(String, String)>;

fn labels(r: &Record) -> Labels {
    let dim = |k: &str| r.dimensions.get(k).cloned().unwrap_or_default();
    let mut out = vec![("cluster".to_string(), dim("ClusterName"))];
    match r.kind {
        RecordType::Node => out.push(("node".into(), dim("NodeName"))),
        RecordType::Pod | RecordType::Container => {
            out.push(("namespace".into(), dim("Namespace")));
            out.push(("pod".into(), dim("FullPodName")));
            if r.kind == RecordType::Container {
                out.push(("container".into(), dim("ContainerName")));
            }
        }
        RecordType::ClusterNamespace => out.push(("namespace".into(), dim("Namespace"))),
        RecordType::ClusterService => {
            out.push(("namespace".into(), dim("Namespace")));
            out.push(("service".into(), dim("Service")));
        }
        RecordType::Cluster => {}
    }
    out
}

/// The text exposition of `records`' catalogue metrics.
pub fn text(records: &[Record]) -> String {
    let mut families: BTreeMap<&'static str, Family<Labels, Gauge<f64, AtomicU64>>> =
        BTreeMap::new();
    for r in records {
        for d in catalog::directives(r.kind) {
            for m in d.metrics {
                if let Some(v) = r.value(m) {
                    families
                        .entry(m)
                        .or_default()
                        .get_or_create(&labels(r))
                        .set(v);
                }
            }
        }
    }
    let mut registry = Registry::with_prefix("sparkyard_ci");
    for (name, family) in families {
        registry.register(
            name,
            format!("Container Insights {name} ({})", catalog::unit(name)),
            family,
        );
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    // The listener concatenates sources: only the last one may carry `# EOF`.
    out.strip_suffix("# EOF\n").unwrap_or(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_gauge_with_labels() {
        let r = Record {
            kind: RecordType::Node,
            node: "n1".into(),
            dimensions: BTreeMap::from([
                ("ClusterName", "eks-emr-cluster".to_string()),
                ("NodeName", "n1".to_string()),
                ("InstanceId", "i-1".to_string()),
            ]),
            values: BTreeMap::from([
                ("node_cpu_reserved_capacity", 92.5),
                ("node_cpu_request", 3700.0),
            ]),
        };
        let t = text(&[r]);
        assert!(
            t.contains("# TYPE sparkyard_ci_node_cpu_reserved_capacity gauge"),
            "{t}"
        );
        assert!(
            t.contains("sparkyard_ci_node_cpu_reserved_capacity{cluster=\"eks-emr-cluster\",node=\"n1\"} 92.5"),
            "{t}"
        );
        assert!(
            !t.contains("node_cpu_request"),
            "plain fields are not exported: {t}"
        );
        assert!(!t.contains("# EOF"));
    }
}
