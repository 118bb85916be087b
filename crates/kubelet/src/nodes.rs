//! The set of nodes this kubelet serves, and the [`KubeletHandle`] that changes it.
//!
//! On AWS every node runs its own kubelet, which registers the Node object when the
//! machine boots and stops when it goes away. Here one kubelet serves them all, so a node
//! that "boots" (a `[[cluster.nodes]]` entry at start, an EC2 instance later) is added to
//! the [`NodeTable`] and one that goes away is removed from it. The dispatcher and the
//! simulated-pod driver read the table on every pod event and are told of changes, so the
//! pods already bound to a node that registers are picked up at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use sparkyard_kube_apiserver::registry::now_rfc3339;
use sparkyard_kube_apiserver::Client;
use sparkyard_scheduling::NodeConfig;

use super::{node_object, Kubelet, NodeShape, NODES};

/// How often the node's heartbeat (`lastHeartbeatTime` of its conditions) is refreshed.
const NODE_HEARTBEAT: Duration = Duration::from_secs(40);

/// One node being served.
#[derive(Debug, Clone)]
pub struct ServedNode {
    pub config: NodeConfig,
    pub shape: NodeShape,
}

/// The nodes this kubelet serves right now, real and simulated.
#[derive(Default)]
pub struct NodeTable {
    nodes: RwLock<BTreeMap<String, ServedNode>>,
}

impl NodeTable {
    /// Whether pods bound to `name` are this kubelet's to run as processes.
    pub fn is_real(&self, name: &str) -> bool {
        self.nodes
            .read()
            .unwrap()
            .get(name)
            .is_some_and(|n| !n.config.simulated)
    }

    /// Whether pods bound to `name` are the simulated driver's.
    pub fn is_simulated(&self, name: &str) -> bool {
        self.nodes
            .read()
            .unwrap()
            .get(name)
            .is_some_and(|n| n.config.simulated)
    }

    pub fn shape(&self, name: &str) -> Option<NodeShape> {
        self.nodes.read().unwrap().get(name).map(|n| n.shape)
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.read().unwrap().keys().cloned().collect()
    }

    pub fn configs(&self) -> Vec<NodeConfig> {
        self.nodes
            .read()
            .unwrap()
            .values()
            .map(|n| n.config.clone())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.nodes.read().unwrap().contains_key(name)
    }

    fn insert(&self, node: ServedNode) {
        self.nodes
            .write()
            .unwrap()
            .insert(node.config.name.clone(), node);
    }

    fn remove(&self, name: &str) -> Option<ServedNode> {
        self.nodes.write().unwrap().remove(name)
    }
}

/// A change to the served set, told to the tasks that route pods.
#[derive(Debug, Clone)]
pub enum NodeChange {
    /// Pods already bound to it are to be picked up.
    Added(String),
    /// Its pods' processes are to be stopped, with no status written: the machine is gone.
    Removed(String),
}

/// What a node's shape is to the pod workers, or why the entry is unusable.
fn served(config: NodeConfig) -> anyhow::Result<ServedNode> {
    let info = config.node_info().map_err(|e| anyhow::anyhow!(e))?;
    Ok(ServedNode {
        shape: NodeShape {
            cpu_millis: info.allocatable.milli_cpu,
            memory: info.allocatable.memory,
        },
        config,
    })
}

/// The handle to the running kubelet: which nodes it serves. Cheap to clone.
#[derive(Clone)]
pub struct KubeletHandle {
    k: Arc<Kubelet>,
    /// To the dispatcher of real pods.
    real: mpsc::UnboundedSender<NodeChange>,
    /// To the simulated-pod driver, started with the first simulated node.
    simulated: Arc<Mutex<Option<mpsc::UnboundedSender<NodeChange>>>>,
}

impl KubeletHandle {
    pub(crate) fn new(k: Arc<Kubelet>, real: mpsc::UnboundedSender<NodeChange>) -> Self {
        Self {
            k,
            real,
            simulated: Arc::default(),
        }
    }

    /// Serves the nodes configured at start (their Node objects made if missing) and
    /// starts the simulated driver if any is simulated; nothing is announced, as the
    /// routing tasks have not made their first list yet.
    pub(crate) fn serve_initial(&self, configured: &[NodeConfig]) -> anyhow::Result<()> {
        for node in configured {
            let entry = served(node.clone())?;
            if let Err(e) = ensure_node_object(&self.k.client, node, &self.k.config.kubelet_version)
            {
                tracing::warn!(node = %node.name, error = %e, "cannot register node");
            }
            self.k.nodes.insert(entry);
        }
        if configured.iter().any(|n| n.simulated) {
            self.simulated_driver();
        }
        Ok(())
    }

    /// A machine booted: its Node object is registered (created with `node`'s labels and
    /// taints — the register-with-taints, e.g. `karpenter.sh/unregistered:NoExecute` — or,
    /// when one of that name exists, adopted as it is, as a kubelet restarting on the same
    /// machine does), then the pods bound to it are served. Idempotent.
    pub fn register_node(&self, node: NodeConfig) -> anyhow::Result<()> {
        let name = node.name.clone();
        let simulated = node.simulated;
        let entry = served(node)?;
        if self.k.nodes.contains(&name) {
            return Ok(());
        }
        // Served before its Node object appears, so whoever sees the Node sees it served.
        let config = entry.config.clone();
        self.k.nodes.insert(entry);
        let version = &self.k.config.kubelet_version;
        if let Err(e) = ensure_node_object(&self.k.client, &config, version) {
            self.k.nodes.remove(&name);
            return Err(e);
        }
        tracing::info!(node = %name, simulated, "node registered");
        if simulated {
            self.simulated_driver().send(NodeChange::Added(name))
        } else {
            self.real.send(NodeChange::Added(name))
        }
        .map_err(|_| anyhow::anyhow!("the kubelet is not running"))
    }

    /// The machine went away: its pods' processes are killed (no status is posted, as
    /// nothing is left to post it) and the node is never re-registered. The Node object
    /// stays: deleting it is the cloud layer's job (the cloud-node-lifecycle
    /// controller's). Returns whether the node was being served.
    pub fn deregister_node(&self, name: &str) -> bool {
        let Some(gone) = self.k.nodes.remove(name) else {
            return false;
        };
        tracing::info!(node = %name, "node deregistered");
        let change = NodeChange::Removed(name.to_string());
        if gone.config.simulated {
            if let Some(tx) = self.simulated.lock().unwrap().as_ref() {
                let _ = tx.send(change);
            }
        } else {
            let _ = self.real.send(change);
        }
        true
    }

    /// The nodes served now.
    pub fn nodes(&self) -> Vec<NodeConfig> {
        self.k.nodes.configs()
    }

    /// Whether `name` is served now.
    pub fn serves(&self, name: &str) -> bool {
        self.k.nodes.contains(name)
    }

    /// The usage store: the latest samples of every served node, pod and container
    /// ([`crate::stats`]); also the API server's `metrics.k8s.io` source.
    pub fn usage(&self) -> Arc<crate::stats::UsageStore> {
        self.k.stats.clone()
    }

    fn simulated_driver(&self) -> mpsc::UnboundedSender<NodeChange> {
        let mut slot = self.simulated.lock().unwrap();
        slot.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(super::simulated::run(
                self.k.client.clone(),
                self.k.clone(),
                rx,
            ));
            tx
        })
        .clone()
    }
}

/// Creates `node`'s Node object unless one of that name exists.
fn ensure_node_object(client: &Client, node: &NodeConfig, version: &str) -> anyhow::Result<()> {
    if client.get(NODES, "", &node.name).is_some() {
        return Ok(());
    }
    match client.create(NODES, "", node_object(node, version)?) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot register node {}: {}",
            node.name,
            e.message
        )),
    }
}

/// Keeps every served node's status fresh (simulated ones too): the conditions'
/// `lastHeartbeatTime`, as a kubelet posts it, and re-registers a served node whose Node
/// object was deleted (a real kubelet does). The scheduler ignores these updates (its view
/// of a node does not change), so thousands of simulated nodes cost little.
pub(crate) async fn heartbeat(k: Arc<Kubelet>) {
    loop {
        tokio::time::sleep(NODE_HEARTBEAT).await;
        let now = now_rfc3339();
        for (i, node) in k.nodes.configs().iter().enumerate() {
            // Gone from the table since the snapshot: not ours to touch any more.
            if !k.nodes.contains(&node.name) {
                continue;
            }
            if let Err(e) = ensure_node_object(&k.client, node, &k.config.kubelet_version) {
                tracing::warn!(node = %node.name, error = %e, "cannot re-register node");
            }
            let _ = k.client.update_status(NODES, "", &node.name, |object| {
                for condition in object["status"]["conditions"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    condition["lastHeartbeatTime"] = json!(now);
                }
                Ok(())
            });
            // Let other tasks run between chunks of a large node list.
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
    }
}
