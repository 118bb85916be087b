//! The garbage collector: owner references, checked by uid.
//!
//! - **Background**: a dependent all of whose owners are gone is deleted; owners that are
//!   gone are dropped from a dependent that still has others.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion` finalizer has its
//!   dependents deleted first; the finalizer is dropped (and the owner removed) once no
//!   dependent with `blockOwnerDeletion` is left.
//! - **Orphan**: an owner with the `orphan` finalizer has itself removed from its
//!   dependents' references, then the finalizer dropped.
//!
//! `plan` is pure over a snapshot of all objects; `run` applies it periodically, so the
//! graph is rebuilt each pass rather than kept incrementally (the cluster is small).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use sparkyard_kube_apiserver::client::{Propagation, Subresource, FOREGROUND, ORPHAN};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::resources::{self, ResourceInfo};
use sparkyard_kube_apiserver::Client;

/// One stored object, as the collector sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
    pub object: Arc<Value>,
}

impl Node {
    fn uid(&self) -> &str {
        self.object["metadata"]["uid"].as_str().unwrap_or("")
    }
    fn deleting(&self) -> bool {
        !self.object["metadata"]["deletionTimestamp"].is_null()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        self.object["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x == f)
    }
    fn owner_refs(&self) -> Vec<&Value> {
        self.object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete the dependent (with the given propagation for its own dependents).
    Delete {
        resource: Resource,
        namespace: String,
        name: String,
        propagation: Propagation,
    },
    /// Remove the owner references with these uids.
    DropOwners {
        resource: Resource,
        namespace: String,
        name: String,
        uids: Vec<String>,
    },
    /// Remove a finalizer from an owner (and remove it if that completes its deletion).
    RemoveFinalizer {
        resource: Resource,
        namespace: String,
        name: String,
        finalizer: &'static str,
    },
}

/// Whether an owner reference's target namespace is the dependent's or cluster scope.
fn owner_namespace(
    reference: &Value,
    dependent_namespace: &str,
) -> (Option<&'static ResourceInfo>, String) {
    let info = resources::by_kind(
        reference["apiVersion"].as_str().unwrap_or(""),
        reference["kind"].as_str().unwrap_or(""),
    );
    let ns = match info {
        Some(i) if !i.namespaced => String::new(),
        _ => dependent_namespace.to_string(),
    };
    (info, ns)
}

pub fn plan(nodes: &[Node]) -> Vec<Action> {
    let by_uid: HashMap<&str, &Node> = nodes.iter().map(|n| (n.uid(), n)).collect();
    let mut actions = Vec::new();
    // Dependents per owner uid.
    let mut dependents: HashMap<&str, Vec<(&Node, &Value)>> = HashMap::new();
    for node in nodes {
        let refs = node.owner_refs();
        if refs.is_empty() {
            continue;
        }
        let mut gone = Vec::new();
        for reference in &refs {
            let uid = reference["uid"].as_str().unwrap_or("");
            let (info, owner_ns) = owner_namespace(reference, &node.namespace);
            // An owner is present when an object with that uid exists where the reference
            // points (a namespaced dependent cannot be owned across namespaces).
            let present = by_uid.get(uid).map(|owner| {
                owner.namespace == owner_ns
                    && info.map(|i| i.resource() == owner.resource).unwrap_or(true)
            });
            match present {
                Some(true) => dependents.entry(uid).or_default().push((node, *reference)),
                _ => gone.push(uid.to_string()),
            }
        }
        if gone.is_empty() || node.deleting() {
            continue;
        }
        if gone.len() == refs.len() {
            actions.push(Action::Delete {
                resource: node.resource,
                namespace: node.namespace.clone(),
                name: node.name.clone(),
                propagation: Propagation::Background,
            });
        } else {
            actions.push(Action::DropOwners {
                resource: node.resource,
                namespace: node.namespace.clone(),
                name: node.name.clone(),
                uids: gone,
            });
        }
    }
    for owner in nodes.iter().filter(|n| n.deleting()) {
        let deps = dependents.get(owner.uid()).cloned().unwrap_or_default();
        if owner.has_finalizer(ORPHAN) {
            for (dep, _) in &deps {
                actions.push(Action::DropOwners {
                    resource: dep.resource,
                    namespace: dep.namespace.clone(),
                    name: dep.name.clone(),
                    uids: vec![owner.uid().to_string()],
                });
            }
            actions.push(Action::RemoveFinalizer {
                resource: owner.resource,
                namespace: owner.namespace.clone(),
                name: owner.name.clone(),
                finalizer: ORPHAN,
            });
            continue;
        }
        if owner.has_finalizer(FOREGROUND) {
            for (dep, _) in &deps {
                if !dep.deleting() {
                    actions.push(Action::Delete {
                        resource: dep.resource,
                        namespace: dep.namespace.clone(),
                        name: dep.name.clone(),
                        propagation: Propagation::Foreground,
                    });
                }
            }
            let blocking = deps
                .iter()
                .any(|(_, reference)| reference["blockOwnerDeletion"] == true);
            if !blocking {
                actions.push(Action::RemoveFinalizer {
                    resource: owner.resource,
                    namespace: owner.namespace.clone(),
                    name: owner.name.clone(),
                    finalizer: FOREGROUND,
                });
            }
        }
    }
    actions
}

/// Every object of every stored resource.
pub fn snapshot(client: &Client) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut seen = HashSet::new();
    for info in resources::all().into_iter().filter(|r| !r.create_only) {
        if !seen.insert(info.resource()) {
            continue;
        }
        let (items, _) = client.list(info.resource(), None);
        for object in items {
            nodes.push(Node {
                resource: info.resource(),
                namespace: object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                name: object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                object,
            });
        }
    }
    nodes
}

pub fn apply(client: &Client, actions: &[Action]) {
    for action in actions {
        let result = match action {
            Action::Delete {
                resource,
                namespace,
                name,
                propagation,
            } => client
                .delete(*resource, namespace, name, *propagation, None)
                .map(|_| ()),
            Action::DropOwners {
                resource,
                namespace,
                name,
                uids,
            } => client
                .modify(*resource, namespace, name, Subresource::Main, |object| {
                    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| !uids.iter().any(|u| r["uid"] == u.as_str()));
                        if refs.is_empty() {
                            object["metadata"]
                                .as_object_mut()
                                .unwrap()
                                .remove("ownerReferences");
                        }
                    }
                    Ok(())
                })
                .map(|_| ()),
            Action::RemoveFinalizer {
                resource,
                namespace,
                name,
                finalizer,
            } => client.remove_finalizer(*resource, namespace, name, finalizer),
        };
        if let Err(e) = result {
            if e.code != 404 {
                tracing::debug!(?action, error = %e, "garbage collection step failed");
            }
        }
    }
}

pub async fn run(client: Client) {
    let mut last = 0;
    loop {
        let revision = client.revision();
        let mut pause = Duration::from_millis(300);
        if revision != last {
            last = revision;
            let started = std::time::Instant::now();
            let actions = plan(&snapshot(&client));
            apply(&client, &actions);
            // A pass rebuilds the graph from every object: at most 5 % of a core, so
            // that a cluster of 100,000 objects under a write burst is not slowed by it
            // (its passes then come every ~2 s; dependents go that much later).
            pause = pause.max(started.elapsed() * 19);
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PODS: Resource = Resource::new("", "pods");
    const SERVICES: Resource = Resource::new("", "services");

    fn node(resource: Resource, name: &str, uid: &str, extra: Value) -> Node {
        let mut object = json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}});
        for (k, v) in extra.as_object().unwrap() {
            object["metadata"][k] = v.clone();
        }
        Node {
            resource,
            namespace: "ns".into(),
            name: name.into(),
            object: Arc::new(object),
        }
    }

    fn owned_by(uid: &str) -> Value {
        json!({"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "driver", "uid": uid, "controller": true}]})
    }

    #[test]
    fn dependents_of_a_vanished_owner_are_deleted() {
        let nodes = vec![
            node(PODS, "exec-1", "e1", owned_by("drv")),
            node(SERVICES, "drv-svc", "s1", owned_by("drv")),
            node(PODS, "other", "o1", owned_by("live")),
            node(PODS, "live-owner", "live", json!({})),
        ];
        let actions = plan(&nodes);
        assert_eq!(actions.len(), 2);
        assert!(actions.iter().all(
            |a| matches!(a, Action::Delete { name, .. } if name == "exec-1" || name == "drv-svc")
        ));
    }

    #[test]
    fn an_owner_recreated_under_the_same_name_is_not_the_owner() {
        // Same name "driver" but a different uid: the dependent is still an orphan.
        let nodes = vec![
            node(PODS, "driver", "new-uid", json!({})),
            node(PODS, "exec-1", "e1", owned_by("old-uid")),
        ];
        assert!(matches!(&plan(&nodes)[..], [Action::Delete { name, .. }] if name == "exec-1"));
    }

    #[test]
    fn foreground_deletes_dependents_first_and_releases_when_none_block() {
        let owner = node(
            PODS,
            "driver",
            "drv",
            json!({"deletionTimestamp": "t", "finalizers": [FOREGROUND]}),
        );
        let mut blocking = owned_by("drv");
        blocking["ownerReferences"][0]["blockOwnerDeletion"] = json!(true);
        let nodes = vec![owner.clone(), node(PODS, "exec-1", "e1", blocking)];
        let actions = plan(&nodes);
        assert_eq!(
            actions,
            vec![Action::Delete {
                resource: PODS,
                namespace: "ns".into(),
                name: "exec-1".into(),
                propagation: Propagation::Foreground
            }]
        );
        let actions = plan(&[owner]);
        assert!(matches!(
            &actions[..],
            [Action::RemoveFinalizer {
                finalizer: FOREGROUND,
                ..
            }]
        ));
    }

    #[test]
    fn orphan_strips_references_then_the_finalizer() {
        let owner = node(
            PODS,
            "driver",
            "drv",
            json!({"deletionTimestamp": "t", "finalizers": [ORPHAN]}),
        );
        let actions = plan(&[owner, node(PODS, "exec-1", "e1", owned_by("drv"))]);
        assert!(
            matches!(&actions[0], Action::DropOwners { name, uids, .. } if name == "exec-1" && uids == &["drv"])
        );
        assert!(matches!(
            &actions[1],
            Action::RemoveFinalizer {
                finalizer: ORPHAN,
                ..
            }
        ));
    }
}
