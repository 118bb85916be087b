//! The Compute tab: EKS managed node groups (with a Scale form: UpdateNodegroupConfig),
//! Karpenter's NodePools, NodeClaims and v1alpha5 Provisioners, and the nodes with what
//! is requested of them, what they can give and what they use.
//!
//! Requests are summed from ONE pod list for all nodes (the sum `kubectl describe node`
//! prints under "Allocated resources"), usage from ONE metrics.k8s.io node list: a page
//! costs the same few calls for 3 nodes or 300.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Value};

use super::capacity::{label, node_rows, usage_by_node, NodeRow};
use super::karpenter::{karpenter, ClaimRow, PoolRow};
use super::{api_note, kube_note, Reader};
use crate::pages::{self, page, see_other, session_or_redirect, signed_in_post, text};
use crate::views::Nav;
use crate::Console;

pub(super) struct NodeGroupRow {
    pub name: String,
    pub status: String,
    pub instance_types: String,
    pub capacity_type: String,
    pub ami_type: String,
    pub min: String,
    pub desired: String,
    pub max: String,
    pub nodes: usize,
    pub note: String,
}

#[derive(Template)]
#[template(path = "eks_compute.html")]
struct ComputePage {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    csrf: String,
    notice: String,
    error: String,
    node_groups: Vec<NodeGroupRow>,
    node_groups_error: String,
    karpenter: bool,
    karpenter_error: String,
    nodepools: Vec<PoolRow>,
    nodepools_error: String,
    nodeclaims: Vec<ClaimRow>,
    nodeclaims_error: String,
    /// v1alpha5 Provisioners, when the API serves them.
    provisioners: Option<Vec<PoolRow>>,
    nodes: Vec<NodeRow>,
    nodes_error: String,
    pods_error: String,
    metrics_error: String,
}

#[derive(serde::Deserialize, Default)]
pub(super) struct ComputeQuery {
    #[serde(default)]
    scaled: Option<String>,
    #[serde(default)]
    update: Option<String>,
}

pub(super) async fn page_handler(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(q): Query<ComputeQuery>,
) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The notice is composed here from checked names: a link cannot make the page say
    // anything else.
    let notice = match (q.scaled.as_deref(), q.update.as_deref()) {
        (Some(ng), update) if valid_nodegroup(ng) => {
            let update = update
                .filter(|u| {
                    u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .map(|u| format!(" (update {u})"))
                .unwrap_or_default();
            format!("Scaling configuration of node group {ng} updated{update}.")
        }
        _ => String::new(),
    };
    render(
        &Reader::new(&console, &session),
        StatusCode::OK,
        notice,
        String::new(),
    )
    .await
}

/// The scale form's URL answers GET with the Compute page too, so a refused form's page
/// (rendered at that URL) keeps updating live.
pub(super) async fn scale_page(
    state: State<Console>,
    headers: HeaderMap,
    _ng: Path<String>,
) -> Response {
    page_handler(state, headers, Query(ComputeQuery::default())).await
}

/// EKS node group names: letters, digits, `-` and `_`, up to 63.
fn valid_nodegroup(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The scale form's fields as UpdateNodegroupConfig's `scalingConfig` (blank fields are
/// left out: EKS keeps their values), or what is wrong with them.
pub(super) fn scaling_config(form: &HashMap<String, String>) -> Result<Value, String> {
    let mut config = serde_json::Map::new();
    for (field, member) in [
        ("minSize", "minSize"),
        ("desiredSize", "desiredSize"),
        ("maxSize", "maxSize"),
    ] {
        let raw = form.get(field).map(|s| s.trim()).unwrap_or_default();
        if raw.is_empty() {
            continue;
        }
        let n: u32 = raw
            .parse()
            .map_err(|_| format!("{member} must be a whole number, not \u{201c}{raw}\u{201d}."))?;
        config.insert(member.into(), json!(n));
    }
    if config.is_empty() {
        return Err("Enter at least one of minimum, desired and maximum size.".into());
    }
    Ok(json!({ "scalingConfig": config }))
}

/// UpdateNodegroupConfig from the Scale form: on success back to the Compute page with
/// a notice, otherwise the page with the API's refusal.
pub(super) async fn scale(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(ng): Path<String>,
    body: Bytes,
) -> Response {
    let (session, form) = match signed_in_post(&console, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    if !valid_nodegroup(&ng) {
        return render(
            &reader,
            StatusCode::BAD_REQUEST,
            String::new(),
            "Not a node group name.".into(),
        )
        .await;
    }
    let body = match scaling_config(&form) {
        Ok(b) => b,
        Err(e) => return render(&reader, StatusCode::BAD_REQUEST, String::new(), e).await,
    };
    let path = format!(
        "/clusters/{}/node-groups/{ng}/update-config",
        reader.cluster_name()
    );
    match reader.eks(Method::POST, &path, Some(&body)).await {
        Ok(v) => see_other(&format!(
            "/eks/compute?scaled={ng}&update={}",
            form_urlencoded::byte_serialize(text(&v, "/update/id").as_bytes()).collect::<String>()
        )),
        Err(e) => {
            let status = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::BAD_GATEWAY
            };
            let note = format!("{}: {}", e.code, e.message);
            render(
                &reader,
                status,
                String::new(),
                format!("Node group {ng} was not scaled. {note}"),
            )
            .await
        }
    }
}

async fn render(
    reader: &Reader<'_>,
    status: StatusCode,
    notice: String,
    error: String,
) -> Response {
    let now = Utc::now();
    let cluster = reader.cluster_name().to_string();
    let (node_groups, karpenter, nodes, pods, metrics) = tokio::join!(
        node_groups(reader),
        karpenter(reader, now),
        reader.kube_list("/api/v1/nodes"),
        reader.kube_list("/api/v1/pods"),
        reader.kube_list("/apis/metrics.k8s.io/v1beta1/nodes"),
    );
    let (mut node_groups, node_groups_error) = node_groups;
    let (nodes, nodes_error) = match nodes {
        Ok(n) => (n, String::new()),
        Err(e) => (Vec::new(), kube_note("list nodes", &e)),
    };
    let (pods, pods_error) = match pods {
        Ok(p) => (p, String::new()),
        Err(e) => (
            Vec::new(),
            kube_note("list pods in all namespaces (requests are not shown)", &e),
        ),
    };
    let (metrics, metrics_error) = match metrics {
        Ok(m) => (m, String::new()),
        Err(e) => (
            Vec::new(),
            kube_note("read node metrics (usage is not shown)", &e),
        ),
    };
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        *per_group
            .entry(label(node, "eks.amazonaws.com/nodegroup"))
            .or_default() += 1;
    }
    for g in &mut node_groups {
        g.nodes = per_group.get(&g.name).copied().unwrap_or(0);
    }
    let usage = usage_by_node(&metrics);
    let node_rows = node_rows(&nodes, &pods, &usage, now);
    let mut k = karpenter;
    for pool in k.nodepools.iter_mut() {
        pool.nodes = nodes
            .iter()
            .filter(|n| label(n, "karpenter.sh/nodepool") == pool.name)
            .count();
    }
    if let Some(provisioners) = k.provisioners.as_mut() {
        for p in provisioners.iter_mut() {
            p.nodes = nodes
                .iter()
                .filter(|n| label(n, "karpenter.sh/provisioner-name") == p.name)
                .count();
        }
    }
    page(
        status,
        &ComputePage {
            nav: reader.nav(),
            title: format!("EKS · {cluster} · Compute"),
            tab: "compute",
            cluster_name: cluster,
            csrf: reader.session.csrf.clone(),
            notice,
            error,
            node_groups,
            node_groups_error,
            karpenter: k.installed,
            karpenter_error: k.error,
            nodepools: k.nodepools,
            nodepools_error: k.nodepools_error,
            nodeclaims: k.nodeclaims,
            nodeclaims_error: k.nodeclaims_error,
            provisioners: k.provisioners,
            nodes: node_rows,
            nodes_error,
            pods_error,
            metrics_error,
        },
    )
}

/// ListNodegroups, then DescribeNodegroup of each (as the EKS console does).
async fn node_groups(reader: &Reader<'_>) -> (Vec<NodeGroupRow>, String) {
    let base = format!("/clusters/{}/node-groups", reader.cluster_name());
    let names = match reader.eks(Method::GET, &base, None).await {
        Ok(v) => v["nodegroups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
        Err(e) => return (Vec::new(), api_note("list node groups", &e)),
    };
    let mut rows = Vec::new();
    for name in names.into_iter().filter(|n| valid_nodegroup(n)) {
        let row = match reader
            .eks(Method::GET, &format!("{base}/{name}"), None)
            .await
        {
            Ok(v) => {
                let g = &v["nodegroup"];
                let types: Vec<&str> = g["instanceTypes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                NodeGroupRow {
                    status: pages::or_dash(text(g, "/status")),
                    instance_types: pages::or_dash(types.join(", ")),
                    capacity_type: pages::or_dash(text(g, "/capacityType")),
                    ami_type: pages::or_dash(text(g, "/amiType")),
                    min: text(g, "/scalingConfig/minSize"),
                    desired: text(g, "/scalingConfig/desiredSize"),
                    max: text(g, "/scalingConfig/maxSize"),
                    nodes: 0,
                    note: String::new(),
                    name,
                }
            }
            Err(e) => NodeGroupRow {
                status: "—".into(),
                instance_types: "—".into(),
                capacity_type: "—".into(),
                ami_type: "—".into(),
                min: String::new(),
                desired: String::new(),
                max: String::new(),
                nodes: 0,
                note: api_note("describe this node group", &e),
                name,
            },
        };
        rows.push(row);
    }
    (rows, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_form_becomes_a_scaling_config() {
        assert!(valid_nodegroup("eks-emr-cluster-ng"));
        assert!(!valid_nodegroup("../x"));
        let f = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(
            scaling_config(&f(&[
                ("desiredSize", "3"),
                ("minSize", ""),
                ("maxSize", " 10 ")
            ]))
            .unwrap(),
            json!({"scalingConfig": {"desiredSize": 3, "maxSize": 10}})
        );
        assert!(scaling_config(&f(&[("desiredSize", "-1")])).is_err());
        assert!(scaling_config(&f(&[])).is_err());
    }
}
