//! Karpenter on the Compute tab: v1 NodePools and NodeClaims, and v1alpha5 Provisioners
//! where the API still serves them — found by discovery, each list read once.

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::Value;

use super::capacity::label;
use super::format::{self, age};
use super::{kube_note, Reader};
use crate::pages::{self, text};

/// A Karpenter pool's `requirements` as `key In a,b; key Gt 2`.
fn requirements(list: Option<&Value>) -> String {
    list.and_then(Value::as_array)
        .map(|reqs| {
            reqs.iter()
                .map(|r| {
                    let values: Vec<String> = r["values"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    format!(
                        "{} {} {}",
                        text(r, "/key"),
                        text(r, "/operator"),
                        values.join(",")
                    )
                    .trim()
                    .to_string()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// A `limits` map as `cpu: 1000, memory: 1000Gi`.
fn limits(map: Option<&Value>) -> String {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A condition's status (`True`, `False`, `Unknown`; empty when not reported).
fn condition(object: &Value, kind: &str) -> String {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .map(|c| text(c, "/status"))
        .unwrap_or_default()
}

pub(super) struct PoolRow {
    pub name: String,
    pub node_class: String,
    pub limits: String,
    pub requirements: String,
    pub nodes: usize,
    pub ready: String,
    pub age: String,
    pub href: String,
}

pub(super) struct ClaimRow {
    pub name: String,
    pub instance_type: String,
    pub capacity_type: String,
    pub zone: String,
    pub node: String,
    pub ready: String,
    pub nodepool: String,
    pub age: String,
    pub href: String,
}

pub(super) struct Karpenter {
    pub installed: bool,
    pub error: String,
    pub nodepools: Vec<PoolRow>,
    pub nodepools_error: String,
    pub nodeclaims: Vec<ClaimRow>,
    pub nodeclaims_error: String,
    pub provisioners: Option<Vec<PoolRow>>,
}

/// Karpenter's objects, found by discovery: v1 NodePools and NodeClaims, and v1alpha5
/// Provisioners only where the API still serves them.
pub(super) async fn karpenter(reader: &Reader<'_>, now: DateTime<Utc>) -> Karpenter {
    let mut k = Karpenter {
        installed: false,
        error: String::new(),
        nodepools: Vec::new(),
        nodepools_error: String::new(),
        nodeclaims: Vec::new(),
        nodeclaims_error: String::new(),
        provisioners: None,
    };
    let versions: Vec<String> = match reader.kube_get("/apis/karpenter.sh").await {
        Ok(g) => g["versions"]
            .as_array()
            .map(|v| v.iter().map(|v| text(v, "/version")).collect())
            .unwrap_or_default(),
        Err(e) if e.status == StatusCode::NOT_FOUND => return k,
        Err(e) => {
            k.error = kube_note("discover Karpenter's API", &e);
            return k;
        }
    };
    k.installed = true;
    let v1 = versions.iter().any(|v| v == "v1");
    let v1alpha5 = versions.iter().any(|v| v == "v1alpha5");
    let (pools, claims, provisioners) = tokio::join!(
        async {
            if v1 {
                Some(reader.kube_list("/apis/karpenter.sh/v1/nodepools").await)
            } else {
                None
            }
        },
        async {
            if v1 {
                Some(reader.kube_list("/apis/karpenter.sh/v1/nodeclaims").await)
            } else {
                None
            }
        },
        async {
            if v1alpha5 {
                Some(
                    reader
                        .kube_list("/apis/karpenter.sh/v1alpha5/provisioners")
                        .await,
                )
            } else {
                None
            }
        },
    );
    match pools {
        Some(Ok(items)) => {
            k.nodepools = items
                .iter()
                .map(|p| PoolRow {
                    name: text(p, "/metadata/name"),
                    node_class: pages::or_dash(text(p, "/spec/template/spec/nodeClassRef/name")),
                    limits: pages::or_dash(limits(p.pointer("/spec/limits"))),
                    requirements: pages::or_dash(requirements(
                        p.pointer("/spec/template/spec/requirements"),
                    )),
                    nodes: 0,
                    ready: pages::or_dash(condition(p, "Ready")),
                    age: age(pages::timestamp(p, "/metadata/creationTimestamp"), now),
                    href: format::object_href(
                        "karpenter.sh/v1",
                        "NodePool",
                        "",
                        &text(p, "/metadata/name"),
                    ),
                })
                .collect()
        }
        Some(Err(e)) => k.nodepools_error = kube_note("list NodePools", &e),
        None => {}
    }
    match claims {
        Some(Ok(items)) => {
            let mut rows: Vec<ClaimRow> = items
                .iter()
                .map(|c| ClaimRow {
                    name: text(c, "/metadata/name"),
                    instance_type: pages::or_dash(label(c, "node.kubernetes.io/instance-type")),
                    capacity_type: pages::or_dash(label(c, "karpenter.sh/capacity-type")),
                    zone: pages::or_dash(label(c, "topology.kubernetes.io/zone")),
                    node: text(c, "/status/nodeName"),
                    ready: pages::or_dash(condition(c, "Ready")),
                    nodepool: pages::or_dash(label(c, "karpenter.sh/nodepool")),
                    age: age(pages::timestamp(c, "/metadata/creationTimestamp"), now),
                    href: format::object_href(
                        "karpenter.sh/v1",
                        "NodeClaim",
                        "",
                        &text(c, "/metadata/name"),
                    ),
                })
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            k.nodeclaims = rows;
        }
        Some(Err(e)) => k.nodeclaims_error = kube_note("list NodeClaims", &e),
        None => {}
    }
    // Provisioners are an old API: shown when served and readable, skipped otherwise.
    if let Some(Ok(items)) = provisioners {
        k.provisioners = Some(
            items
                .iter()
                .map(|p| PoolRow {
                    name: text(p, "/metadata/name"),
                    node_class: pages::or_dash(text(p, "/spec/providerRef/name")),
                    limits: pages::or_dash(limits(p.pointer("/spec/limits/resources"))),
                    requirements: pages::or_dash(requirements(p.pointer("/spec/requirements"))),
                    nodes: 0,
                    ready: pages::or_dash(condition(p, "Ready")),
                    age: age(pages::timestamp(p, "/metadata/creationTimestamp"), now),
                    href: format::object_href(
                        "karpenter.sh/v1alpha5",
                        "Provisioner",
                        "",
                        &text(p, "/metadata/name"),
                    ),
                })
                .collect(),
        );
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn karpenter_summaries() {
        let reqs = json!([{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                          {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]}]);
        assert_eq!(
            requirements(Some(&reqs)),
            "karpenter.sh/capacity-type In spot,on-demand; karpenter.k8s.aws/instance-generation Gt 2"
        );
        assert_eq!(
            limits(Some(&json!({"cpu": "1000", "memory": "1000Gi"}))),
            "cpu: 1000, memory: 1000Gi"
        );
    }
}
