//! Container Insights' metric catalogue for EKS, as one table: which record type carries
//! which metric, under which dimension sets, in which unit.
//!
//! Each dimension set is published separately (a datum per set), as CloudWatch's
//! `ContainerInsights` namespace holds them. A set naming a dimension the record lacks
//! (`Service` on a pod no Service selects) is skipped for that record, as the agent's EMF
//! exporter drops it. The classic sets come from AWS's "Amazon EKS and Kubernetes Container
//! Insights metrics" page; the enhanced-observability additions (`FullPodName`, the
//! `*_status_*` metrics, container metrics, the node set on `node_cpu_usage_total` and its
//! siblings) from the agent's EMF declarations.

/// The `Type` field of a performance log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    Cluster,
    ClusterNamespace,
    ClusterService,
    Node,
    Pod,
    Container,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Cluster => "Cluster",
            RecordType::ClusterNamespace => "ClusterNamespace",
            RecordType::ClusterService => "ClusterService",
            RecordType::Node => "Node",
            RecordType::Pod => "Pod",
            RecordType::Container => "Container",
        }
    }
}

/// Metrics that share their dimension sets within one record type (one EMF directive).
pub struct Directive {
    pub dimension_sets: &'static [&'static [&'static str]],
    pub metrics: &'static [&'static str],
}

const NODE_SETS: &[&[&str]] = &[&["NodeName", "InstanceId", "ClusterName"], &["ClusterName"]];

const NODE: &[Directive] = &[Directive {
    dimension_sets: NODE_SETS,
    metrics: &[
        "node_cpu_utilization",
        "node_cpu_reserved_capacity",
        "node_memory_utilization",
        "node_memory_reserved_capacity",
        "node_number_of_running_pods",
        "node_number_of_running_containers",
        "node_cpu_usage_total",
        "node_cpu_limit",
        "node_memory_working_set",
        "node_memory_limit",
        "node_status_condition_ready",
        "node_status_condition_disk_pressure",
        "node_status_condition_memory_pressure",
        "node_status_condition_pid_pressure",
        "node_status_condition_network_unavailable",
        "node_status_condition_unknown",
        "node_status_capacity_pods",
        "node_status_allocatable_pods",
    ],
}];

const POD: &[Directive] = &[
    Directive {
        dimension_sets: &[
            &["PodName", "Namespace", "ClusterName"],
            &["Namespace", "ClusterName"],
            &["Service", "Namespace", "ClusterName"],
            &["ClusterName"],
            &["FullPodName", "PodName", "Namespace", "ClusterName"],
        ],
        metrics: &[
            "pod_cpu_utilization",
            "pod_memory_utilization",
            "pod_cpu_utilization_over_pod_limit",
            "pod_memory_utilization_over_pod_limit",
        ],
    },
    Directive {
        dimension_sets: &[
            &["PodName", "Namespace", "ClusterName"],
            &["ClusterName"],
            &["FullPodName", "PodName", "Namespace", "ClusterName"],
        ],
        metrics: &["pod_cpu_reserved_capacity", "pod_memory_reserved_capacity"],
    },
    Directive {
        dimension_sets: &[
            &["PodName", "Namespace", "ClusterName"],
            &["FullPodName", "PodName", "Namespace", "ClusterName"],
        ],
        metrics: &["pod_number_of_container_restarts"],
    },
    Directive {
        dimension_sets: &[
            &["PodName", "Namespace", "ClusterName"],
            &["Namespace", "ClusterName"],
            &["ClusterName"],
            &["FullPodName", "PodName", "Namespace", "ClusterName"],
        ],
        metrics: &[
            "pod_status_ready",
            "pod_status_scheduled",
            "pod_status_running",
            "pod_status_pending",
            "pod_status_failed",
            "pod_status_unknown",
            "pod_status_succeeded",
            "pod_number_of_containers",
            "pod_number_of_running_containers",
        ],
    },
];

const CONTAINER: &[Directive] = &[Directive {
    dimension_sets: &[
        &["ContainerName", "PodName", "Namespace", "ClusterName"],
        &[
            "ContainerName",
            "FullPodName",
            "PodName",
            "Namespace",
            "ClusterName",
        ],
    ],
    metrics: &[
        "container_cpu_utilization",
        "container_memory_utilization",
        "container_status_running",
        "container_status_terminated",
        "container_status_waiting",
        "container_status_waiting_reason_crashed",
    ],
}];

const CLUSTER: &[Directive] = &[Directive {
    dimension_sets: &[&["ClusterName"]],
    metrics: &[
        "cluster_node_count",
        "cluster_failed_node_count",
        "cluster_number_of_running_pods",
    ],
}];

const CLUSTER_NAMESPACE: &[Directive] = &[Directive {
    dimension_sets: &[&["Namespace", "ClusterName"], &["ClusterName"]],
    metrics: &["namespace_number_of_running_pods"],
}];

const CLUSTER_SERVICE: &[Directive] = &[Directive {
    dimension_sets: &[&["Service", "Namespace", "ClusterName"], &["ClusterName"]],
    metrics: &["service_number_of_running_pods"],
}];

/// The EMF directives of a record type.
pub fn directives(kind: RecordType) -> &'static [Directive] {
    match kind {
        RecordType::Cluster => CLUSTER,
        RecordType::ClusterNamespace => CLUSTER_NAMESPACE,
        RecordType::ClusterService => CLUSTER_SERVICE,
        RecordType::Node => NODE,
        RecordType::Pod => POD,
        RecordType::Container => CONTAINER,
    }
}

/// Every metric the agent publishes, with its record type.
pub fn all_metrics() -> impl Iterator<Item = (RecordType, &'static str)> {
    [
        RecordType::Cluster,
        RecordType::ClusterNamespace,
        RecordType::ClusterService,
        RecordType::Node,
        RecordType::Pod,
        RecordType::Container,
    ]
    .into_iter()
    .flat_map(|kind| {
        directives(kind)
            .iter()
            .flat_map(move |d| d.metrics.iter().map(move |m| (kind, *m)))
    })
}

/// CloudWatch's unit for a metric (and for the record's plain fields of the same family):
/// percentages, bytes, counts; CPU amounts are millicores, which CloudWatch has no unit for.
pub fn unit(metric: &str) -> &'static str {
    if metric.ends_with("_utilization")
        || metric.ends_with("_reserved_capacity")
        || metric.ends_with("_over_pod_limit")
    {
        "Percent"
    } else if metric.contains("_memory_") {
        "Bytes"
    } else if metric.contains("_network_") {
        "Bytes/Second"
    } else if metric.contains("_cpu_") {
        "None"
    } else {
        "Count"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_appears_once_per_record_type() {
        let mut seen = std::collections::BTreeSet::new();
        for (kind, m) in all_metrics() {
            assert!(seen.insert((kind, m)), "{m} listed twice for {kind:?}");
        }
        assert!(seen.contains(&(RecordType::Node, "node_cpu_reserved_capacity")));
    }

    #[test]
    fn units_follow_container_insights() {
        assert_eq!(unit("node_cpu_reserved_capacity"), "Percent");
        assert_eq!(unit("pod_memory_utilization_over_pod_limit"), "Percent");
        assert_eq!(unit("node_memory_working_set"), "Bytes");
        assert_eq!(unit("node_cpu_limit"), "None");
        assert_eq!(unit("cluster_node_count"), "Count");
        assert_eq!(unit("pod_number_of_container_restarts"), "Count");
    }
}
