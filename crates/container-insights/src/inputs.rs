//! What one collection reads, reduced to what Container Insights' formulas use: nodes (with
//! capacity and conditions), pods (requests, limits, container states, owners), the Services
//! that select them, and usage from the Metrics API (`metrics.k8s.io/v1beta1`, which the
//! embedded kubelet's sampler and a real cluster's metrics-server both serve).
//!
//! The conversions from Kubernetes objects are here so the formulas stay pure functions of
//! plain data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use serde::Deserialize;
use serde_json::Value;
use sparkyard_scheduling::quantity;

use crate::pod_name::Owner;

/// CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_millicores: f64,
    pub memory_bytes: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInput {
    pub name: String,
    /// The EC2 instance id from `spec.providerID` (`aws:///<zone>/<id>`); a node with none
    /// reports its name.
    pub instance_id: String,
    pub instance_type: Option<String>,
    /// Capacity, not allocatable: Container Insights' denominators.
    pub cpu_capacity_millicores: f64,
    pub memory_capacity_bytes: f64,
    pub pods_capacity: f64,
    pub pods_allocatable: f64,
    /// `conditions[].type` → `status` ("True", "False", "Unknown").
    pub conditions: BTreeMap<String, String>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    Running,
    Waiting {
        reason: Option<String>,
    },
    Terminated,
    /// No status yet.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInput {
    pub name: String,
    pub cpu_request_millicores: Option<f64>,
    pub cpu_limit_millicores: Option<f64>,
    pub memory_request_bytes: Option<f64>,
    pub memory_limit_bytes: Option<f64>,
    pub state: ContainerState,
    pub restart_count: i64,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodInput {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub phase: String,
    pub owners: Vec<Owner>,
    pub ready: bool,
    pub scheduled: bool,
    /// App containers only: init containers do not enter Container Insights' requests.
    pub containers: Vec<ContainerInput>,
    /// Names of the Services in the pod's namespace whose selector matches it.
    pub services: Vec<String>,
    pub usage: Option<Usage>,
}

/// A Metrics API object's `usage` (`cpu`, `memory` quantities).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiUsage {
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
}

impl ApiUsage {
    pub fn usage(&self) -> Usage {
        Usage {
            cpu_millicores: self.cpu.as_deref().map(cpu_millicores).unwrap_or(0.0),
            memory_bytes: self.memory.as_deref().map(bytes).unwrap_or(0.0),
        }
    }
}

/// `NodeMetrics` of `metrics.k8s.io/v1beta1`.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeMetrics {
    pub metadata: NamedMeta,
    pub usage: ApiUsage,
}

/// `PodMetrics` of `metrics.k8s.io/v1beta1`.
#[derive(Debug, Clone, Deserialize)]
pub struct PodMetrics {
    pub metadata: NamedMeta,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    pub usage: ApiUsage,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedMeta {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// CPU quantity in millicores, keeping the Metrics API's nanocore precision (`"250000n"`).
pub fn cpu_millicores(text: &str) -> f64 {
    if let Some(n) = text.strip_suffix('n') {
        if let Ok(n) = n.parse::<f64>() {
            return n / 1e6;
        }
    }
    if let Some(u) = text.strip_suffix('u') {
        if let Ok(u) = u.parse::<f64>() {
            return u / 1e3;
        }
    }
    quantity::millis(text).map(|m| m as f64).unwrap_or(0.0)
}

pub fn bytes(text: &str) -> f64 {
    quantity::units(text).map(|b| b as f64).unwrap_or(0.0)
}

fn resource(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    name: &str,
) -> Option<f64> {
    let q = list?.get(name)?;
    Some(if name == "cpu" {
        cpu_millicores(&q.0)
    } else {
        bytes(&q.0)
    })
}

impl NodeInput {
    pub fn from_node(node: &Node, usage: Option<Usage>) -> NodeInput {
        let name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let instance_id = spec
            .and_then(|s| s.provider_id.as_deref())
            .and_then(|p| p.rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| name.clone());
        let labels = node.metadata.labels.as_ref();
        let instance_type = labels.and_then(|l| {
            l.get("node.kubernetes.io/instance-type")
                .or_else(|| l.get("beta.kubernetes.io/instance-type"))
                .cloned()
        });
        let capacity = status.and_then(|s| s.capacity.as_ref());
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        let conditions = status
            .and_then(|s| s.conditions.as_ref())
            .map(|c| {
                c.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect()
            })
            .unwrap_or_default();
        NodeInput {
            instance_id,
            instance_type,
            cpu_capacity_millicores: resource(capacity, "cpu").unwrap_or(0.0),
            memory_capacity_bytes: resource(capacity, "memory").unwrap_or(0.0),
            pods_capacity: resource(capacity, "pods").unwrap_or(0.0),
            pods_allocatable: resource(allocatable, "pods").unwrap_or(0.0),
            conditions,
            usage,
            name,
        }
    }
}

impl PodInput {
    /// `metrics`: the pod's PodMetrics, when the Metrics API has a sample for it.
    pub fn from_pod(pod: &Pod, services: &[Service], metrics: Option<&PodMetrics>) -> PodInput {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let statuses = status
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let container_usage = |name: &str| {
            metrics.and_then(|m| {
                m.containers
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.usage.usage())
            })
        };
        let containers = spec
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let resources = c.resources.as_ref();
                let requests = resources.and_then(|r| r.requests.as_ref());
                let limits = resources.and_then(|r| r.limits.as_ref());
                let st = statuses.iter().find(|s| s.name == c.name);
                let state = match st.and_then(|s| s.state.as_ref()) {
                    Some(s) if s.running.is_some() => ContainerState::Running,
                    Some(s) if s.terminated.is_some() => ContainerState::Terminated,
                    Some(s) => ContainerState::Waiting {
                        reason: s.waiting.as_ref().and_then(|w| w.reason.clone()),
                    },
                    None => ContainerState::None,
                };
                ContainerInput {
                    name: c.name.clone(),
                    cpu_request_millicores: resource(requests, "cpu"),
                    cpu_limit_millicores: resource(limits, "cpu"),
                    memory_request_bytes: resource(requests, "memory"),
                    memory_limit_bytes: resource(limits, "memory"),
                    state,
                    restart_count: st.map(|s| i64::from(s.restart_count)).unwrap_or(0),
                    usage: container_usage(&c.name),
                }
            })
            .collect::<Vec<_>>();
        let usage = metrics.map(|m| {
            m.containers.iter().fold(Usage::default(), |mut sum, c| {
                let u = c.usage.usage();
                sum.cpu_millicores += u.cpu_millicores;
                sum.memory_bytes += u.memory_bytes;
                sum
            })
        });
        let labels = meta.labels.clone().unwrap_or_default();
        let services = services
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|s| {
                let selector = s.spec.as_ref().and_then(|s| s.selector.as_ref());
                selector.is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
            })
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        let condition = |t: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == t && c.status == "True"))
        };
        PodInput {
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into()),
            owners: meta
                .owner_references
                .as_ref()
                .map(|o| {
                    o.iter()
                        .map(|o| Owner {
                            kind: o.kind.clone(),
                            name: o.name.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ready: condition("Ready"),
            scheduled: condition("PodScheduled"),
            containers,
            services,
            usage,
            namespace,
        }
    }
}

/// Reads a Metrics API list (`items`) leniently: an absent API yields nothing.
pub fn metrics_items<T: for<'de> Deserialize<'de>>(list: &Value) -> Vec<T> {
    list.get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| serde_json::from_value(i.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_millicores("250000n"), 0.25);
        assert_eq!(cpu_millicores("1500m"), 1500.0);
        assert_eq!(cpu_millicores("2"), 2000.0);
        assert_eq!(bytes("1Ki"), 1024.0);
        assert_eq!(bytes("1234Ki"), 1234.0 * 1024.0);
    }

    #[test]
    fn node_from_object() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ip-10-0-1-1", "labels": {"node.kubernetes.io/instance-type": "m5.xlarge"}},
            "spec": {"providerID": "aws:///us-east-2a/i-0abc"},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "58"},
                       "allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "58"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let n = NodeInput::from_node(&node, None);
        assert_eq!(n.instance_id, "i-0abc");
        assert_eq!(n.instance_type.as_deref(), Some("m5.xlarge"));
        assert_eq!(n.cpu_capacity_millicores, 4000.0);
        assert_eq!(n.pods_allocatable, 58.0);
        assert_eq!(n.conditions["Ready"], "True");
    }

    #[test]
    fn pod_from_object() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}}},
                {"name": "c2"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "c1", "ready": true, "restartCount": 2, "image": "i", "imageID": "", "state": {"running": {}}},
                {"name": "c2", "ready": false, "restartCount": 0, "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }))
        .unwrap();
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns"}, "spec": {"selector": {"app": "a"}}
        }))
        .unwrap();
        let metrics: PodMetrics = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "containers": [{"name": "c1", "usage": {"cpu": "100000000n", "memory": "1024Ki"}}]
        }))
        .unwrap();
        let p = PodInput::from_pod(&pod, &[svc], Some(&metrics));
        assert_eq!(p.services, vec!["s"]);
        assert_eq!(p.containers[0].cpu_request_millicores, Some(500.0));
        assert_eq!(p.containers[0].cpu_limit_millicores, Some(1000.0));
        assert_eq!(p.containers[1].cpu_limit_millicores, None);
        assert_eq!(
            p.containers[1].state,
            ContainerState::Waiting {
                reason: Some("CrashLoopBackOff".into())
            }
        );
        assert_eq!(p.usage.unwrap().cpu_millicores, 100.0);
        assert_eq!(p.containers[0].restart_count, 2);
    }
}
