//! The resource quota controller: keeps each ResourceQuota's `status.hard` equal to
//! `spec.hard` and `status.used` equal to what the namespace's objects use, as
//! kube-controller-manager's `resourcequota` controller does.
//!
//! It watches quotas and the resources their `hard` keys measure (pods, services, claims,
//! `count/<resource>` targets), and recomputes a namespace when one of its objects changes
//! — a pod finishing or going away frees its share at once. A full pass every
//! [`RESYNC`] catches what no event marks (a pod past its deletion grace period stops
//! counting with the clock). Usage is computed by the same evaluators the admission plugin
//! uses (`admission::quota`), so `kubectl describe quota` and the 403s agree.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use serde_json::json;

use sparkyard_kube_apiserver::admission::quota::{
    compute_used, list_json, parse_list, tracked_resource,
};
use sparkyard_kube_apiserver::client::Subresource;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;

const QUOTAS: Resource = Resource::new("", "resourcequotas");
/// How often every quota is recomputed even without events (kube's
/// `--resource-quota-sync-period` is 5 minutes; the clock-driven changes are rare).
pub const RESYNC: Duration = Duration::from_secs(60);

/// Recomputes the status of every quota in `ns`; returns how many were written.
pub fn sync_namespace(client: &Client, ns: &str) -> usize {
    let (quotas, _) = client.list(QUOTAS, Some(ns));
    let mut written = 0;
    for quota in quotas {
        let name = quota["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let hard = parse_list(&quota["spec"]["hard"]);
        let used = compute_used(
            &quota,
            &hard,
            None,
            |info| client.list(info.resource(), Some(ns)).0,
            Utc::now(),
        );
        let status = json!({"hard": list_json(&hard), "used": list_json(&used)});
        if quota["status"] == status {
            continue;
        }
        let uid = quota["metadata"]["uid"].clone();
        let result = client.modify(QUOTAS, ns, &name, Subresource::Status, |q| {
            if q["metadata"]["uid"] != uid {
                return Err(sparkyard_kube_apiserver::ApiError::conflict(
                    "",
                    "resourcequotas",
                    &name,
                ));
            }
            q["status"] = status.clone();
            Ok(())
        });
        if result.is_ok() {
            written += 1;
        }
    }
    written
}

/// The namespaces that have quotas, and the resources those quotas measure.
fn tracked(client: &Client) -> (BTreeSet<String>, Vec<Resource>) {
    let (quotas, _) = client.list(QUOTAS, None);
    let mut namespaces = BTreeSet::new();
    let mut watched = vec![QUOTAS];
    for quota in &quotas {
        namespaces.insert(
            quota["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        for key in quota["spec"]["hard"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if let Some(info) = tracked_resource(key) {
                if !watched.contains(&info.resource()) {
                    watched.push(info.resource());
                }
            }
        }
    }
    (namespaces, watched)
}

/// Runs the controller on the current runtime.
pub async fn run(client: Client) {
    let (mut dirty, _) = tracked(&client);
    loop {
        let revision = client.revision();
        for ns in std::mem::take(&mut dirty) {
            sync_namespace(&client, &ns);
        }
        let (namespaces, watched) = tracked(&client);
        let streams: Vec<_> = watched
            .iter()
            .filter_map(|r| client.watch(*r, Some(revision)).ok())
            .map(Box::pin)
            .collect();
        if streams.len() != watched.len() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            dirty = namespaces;
            continue;
        }
        let mut events = futures::stream::select_all(streams);
        let relevant = |event: &sparkyard_kube_apiserver::registry::Event| {
            event.resource == QUOTAS || namespaces.contains(&event.namespace)
        };
        let deadline = tokio::time::Instant::now() + RESYNC;
        // Wait for a change that concerns a quota; others are skipped without losing the
        // watches' place.
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(event)) => {
                    if relevant(&event) {
                        dirty.insert(event.namespace.clone());
                    }
                    // Take what else is already there, so a burst is one pass.
                    while let Some(Some(event)) = events.next().now_or_never() {
                        if relevant(&event) {
                            dirty.insert(event.namespace.clone());
                        }
                    }
                    if !dirty.is_empty() {
                        break;
                    }
                }
                // A watch ended (fell behind) or the resync is due: everything again.
                Ok(None) | Err(_) => {
                    dirty = namespaces.clone();
                    break;
                }
            }
        }
    }
}
