//! The kubelet: runs each container of a pod bound to one of its nodes as a host process
//! in a bubblewrap sandbox, and reports pod and node status. Every non-simulated node —
//! a `[[cluster.nodes]]` entry, or an embedded EC2 instance that booted — is served by
//! this one kubelet (all its pods run on this machine; the node is a scheduling budget);
//! pods on simulated nodes are the `simulated` module's. The set of nodes changes at run
//! time through the [`KubeletHandle`] `start` returns: a machine that boots registers its
//! node, one that goes away deregisters it.
//!
//! Mirror pods (`kubernetes.io/config.mirror`: the API's copy of a static control-plane
//! pod) are never run: their real process is not this kubelet's.
//!
//! **Owns:** node registration and heartbeats, sandboxes, container shims (containerd's
//! role: processes that outlive sparkyard and are re-adopted), images as local
//! directories, volumes, pod IPs, each pod's `/etc/hosts` (the cluster DNS records of
//! Services and StatefulSet pods), container probes, container logs (written in the
//! CRI format, `sparkyard-container-logs`) and pod status.
//!
//! **Must not touch:** the registry or the API server's internals: it reads, watches and
//! writes through the API server's `Client` only (`pods/status`, `nodes/status`, the final
//! `DELETE` of a stopped pod, TokenRequest for projected tokens), as a real kubelet does.
//! It makes no scheduling decisions.
//!
//! **Entry points:** [`start`] with a [`KubeletConfig`], returning the [`KubeletHandle`]
//! (`register_node`, `deregister_node`, `nodes`); [`resolve_nodes`] (a configured node's
//! shape from its instance type); [`shim::main`] (the shim process).
//!
//! - `nodes`: the served set, registration and heartbeats; `machine`: instance types.
//! - `pod`: the per-pod worker (volumes, containers, restarts, graceful deletion).
//! - `sandbox`: the bwrap command line (pure); `process`: spawning and signals.
//! - `env`, `entrypoint`, `volumes`, `status`, `hosts`: pure builders the worker uses.
//! - `ipam`: one loopback IP per pod.
//! - `probe`: startup, liveness and readiness probes (`httpGet`, `tcpSocket`, `exec`)
//!   against the pod IP, and their thresholds.
//! - `simulated`: pods on `simulated = true` nodes: no process, status from the clock.
//! - `stats`: usage accounting (process trees in `/proc`, the simulated-node model), the
//!   sampler and its store ([`KubeletHandle::usage`]), the `/metrics/resource`,
//!   `/metrics/cadvisor` and `/stats/summary` endpoints.

pub mod config;
pub mod entrypoint;
pub mod env;
pub mod hosts;
pub mod ipam;
pub mod machine;
pub mod nodes;
mod pod;
pub mod probe;
pub mod process;
pub mod sandbox;
pub mod shim;
pub mod simulated;
pub mod stats;
pub mod status;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use machine::resolve_nodes;
pub use nodes::KubeletHandle;

use config::{builtin_rules, glob_match, EntrypointKind, HostRuntime, ImageRule, UnknownImages};
use sparkyard_kube_apiserver::events::Source;
use sparkyard_kube_apiserver::registry::{EventType, Resource};
use sparkyard_kube_apiserver::Client;
use sparkyard_scheduling::NodeConfig;

pub use sparkyard_container_logs as logs;

/// What the kubelet is told at start: its nodes, how images map to this machine, and how
/// pods reach the API server.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The nodes served from the start (`[[cluster.nodes]]`): this kubelet registers them
    /// all, runs pods on the real ones and simulates the rest. More come and go through
    /// the [`KubeletHandle`].
    pub nodes: Vec<NodeConfig>,
    pub images: config::ImagesConfig,
    /// The loopback range pod IPs come from.
    pub pod_cidr: String,
    /// The root of pod sandboxes and their logs (`<data_dir>/pods/<ns>_<name>_<uid>`).
    /// Hidden from every pod: other pods' files, the cluster's keys and its store are here.
    pub data_dir: PathBuf,
    /// More host directories hidden from every pod (the embedding program's own data).
    pub hidden: Vec<PathBuf>,
    /// The in-cluster API address pods use (`KUBERNETES_SERVICE_HOST`/`_PORT`).
    pub service_ip: std::net::IpAddr,
    pub service_port: u16,
    /// The cluster CA, for pods' service-account volumes.
    pub ca_pem: String,
    /// The kubelet version its Node objects report.
    pub kubelet_version: String,
    /// Time between two usage samples ([`stats`]; `[cluster] usage-sample-interval`).
    pub usage_interval: Duration,
}

pub const PODS: Resource = Resource::new("", "pods");
pub const NODES: Resource = Resource::new("", "nodes");
pub const SERVICES: Resource = Resource::new("", "services");
pub const CONFIGMAPS: Resource = Resource::new("", "configmaps");
pub const SECRETS: Resource = Resource::new("", "secrets");
pub const SERVICE_ACCOUNTS: Resource = Resource::new("", "serviceaccounts");

/// Annotation of a mirror pod: the API's copy of a static pod that another kubelet (here:
/// the control plane itself) runs.
pub const ANNOTATION_MIRROR: &str = "kubernetes.io/config.mirror";

/// Whether a pod is a mirror pod, which no kubelet here runs.
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_MIRROR))
        .is_some()
}

/// A container image resolved to local content.
#[derive(Debug, Clone)]
pub struct Image {
    /// (host directory, in-image path)
    pub mounts: Vec<(PathBuf, String)>,
    pub entrypoint: EntrypointKind,
    pub working_dir: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// What a pod's worker needs of its node: allocatable CPU and memory (the downward API's
/// value for an unset limit).
#[derive(Debug, Clone, Copy)]
pub struct NodeShape {
    pub cpu_millis: i64,
    pub memory: i64,
}

pub struct Kubelet {
    pub client: Client,
    pub config: Arc<KubeletConfig>,
    /// The nodes served now, real and simulated.
    pub nodes: nodes::NodeTable,
    pub host_ip: String,
    pub ipam: ipam::Ipam,
    pub host: HostRuntime,
    pub rules: Vec<ImageRule>,
    pub unknown: UnknownImages,
    pub bwrap: PathBuf,
    pub hosts: HostsBook,
    /// Whether pods get a private `/root` (hiding the host's). Not when the host's Python,
    /// Java or Spark live under `/root` (pyenv, sdkman…), which pods must be able to run.
    pub private_root_home: bool,
    /// Usage samples, and the running containers the pod workers report for them.
    pub stats: Arc<stats::UsageStore>,
}

impl Kubelet {
    pub fn new(client: &Client, config: &Arc<KubeletConfig>) -> anyhow::Result<Arc<Self>> {
        let mut rules = config.images.rules.clone();
        rules.extend(builtin_rules());
        let bwrap = which("bwrap").unwrap_or_else(|| PathBuf::from("bwrap"));
        let host = HostRuntime::discover(&config.images);
        match &host.spark_home {
            Some(home) => tracing::info!(spark_home = %home.display(), python = %host.python.display(), "Spark images map to this Spark distribution"),
            None => tracing::warn!(
                "no Spark distribution found ([cluster.images] spark-home, SPARK_HOME, a .venv above the working directory or binary, or {}): Spark images will fail with ErrImagePull",
                config::runtime_link().map_or("the runtime link".into(), |p| p.display().to_string())
            ),
        }
        let under_root = |p: &Option<PathBuf>| {
            p.as_ref()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .map(|p| p.starts_with("/root"))
                .unwrap_or(false)
        };
        let private_root_home = !(under_root(&Some(host.python.clone()))
            || under_root(&host.java_home)
            || under_root(&host.spark_home));
        Ok(Arc::new(Self {
            client: client.clone(),
            config: config.clone(),
            nodes: nodes::NodeTable::default(),
            host_ip: "127.0.0.1".into(),
            ipam: ipam::Ipam::new(&config.pod_cidr)?,
            host,
            rules,
            unknown: config.images.unknown,
            bwrap,
            hosts: HostsBook::default(),
            private_root_home,
            stats: Arc::new(stats::UsageStore::new(config.usage_interval)),
        }))
    }

    /// The node a pod of this kubelet is bound to (an unknown name gets a 1-CPU, 1 GiB
    /// shape: the dispatcher never hands such a pod over).
    pub fn shape(&self, node: &str) -> NodeShape {
        self.nodes.shape(node).unwrap_or(NodeShape {
            cpu_millis: 1000,
            memory: 1 << 30,
        })
    }

    /// Events about a pod are reported by the kubelet of its node.
    pub fn event_source(&self, node: &str) -> Source {
        Source {
            component: "kubelet",
            host: Some(node.to_string()),
        }
    }

    pub fn resolve_image(&self, image: &str) -> Result<Image, String> {
        let Some(rule) = self.rules.iter().find(|r| glob_match(&r.pattern, image)) else {
            return match self.unknown {
                UnknownImages::Host => Ok(Image {
                    mounts: vec![],
                    entrypoint: EntrypointKind::None,
                    working_dir: None,
                    env: BTreeMap::new(),
                }),
                UnknownImages::Error => Err(format!(
                    "image {image:?} maps to no local directory ([cluster.images] rules)"
                )),
            };
        };
        let mut env = rule.env.clone();
        let dir = match &rule.dir {
            Some(dir) => dir.clone(),
            None if rule.entrypoint == EntrypointKind::Sparkyard => {
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot locate the sparkyard binary for {image:?}: {e}"))?;
                let name = exe.file_name().unwrap_or_default().to_string_lossy().to_string();
                env.insert("SPARKYARD_BIN".into(), format!("{}/{name}", config::SPARKYARD_BIN_DIR));
                exe.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            None => self.host.spark_home.clone().ok_or_else(|| {
                format!("image {image:?} is a Spark image but no Spark distribution was found (set [cluster.images] spark-home or SPARK_HOME)")
            })?,
        };
        Ok(Image {
            mounts: rule
                .mount_at
                .iter()
                .map(|target| (dir.clone(), target.clone()))
                .collect(),
            entrypoint: rule.entrypoint,
            working_dir: rule.working_dir.clone(),
            env,
        })
    }

    /// `imageID` as the status shows it: where the image's content comes from.
    pub fn image_id(&self, image: &str) -> String {
        match self.resolve_image(image) {
            Ok(resolved) => match resolved.mounts.first() {
                Some((dir, _)) => format!("sparkyard-local://{}", dir.display()),
                None => "sparkyard-local:///".into(),
            },
            Err(_) => String::new(),
        }
    }
}

/// Starts the kubelet of the configured nodes (and the simulated nodes' pod driver) and
/// returns the handle through which nodes register and go away.
pub fn start(client: &Client, config: KubeletConfig) -> anyhow::Result<KubeletHandle> {
    let config = Arc::new(config);
    let kubelet = Kubelet::new(client, &config)?;
    let (changes, changes_rx) = mpsc::unbounded_channel();
    let handle = KubeletHandle::new(kubelet.clone(), changes);
    // The configured nodes are served before any task routes a pod, so each task's first
    // full list covers them (no per-node announcement: thousands of simulated nodes
    // would mean thousands of lists).
    handle.serve_initial(&config.nodes)?;
    reserve_running_ips(&kubelet, None);
    tokio::spawn(dispatch(kubelet.clone(), changes_rx));
    tokio::spawn(keep_hosts_current(kubelet.clone()));
    tokio::spawn(nodes::heartbeat(kubelet.clone()));
    tokio::spawn(stats::sampler::run(kubelet.clone()));
    Ok(handle)
}

/// After a restart (or when a node registers): pods that kept running keep their
/// addresses, so none is handed out again before their workers reclaim them. `node`
/// limits it to the pods of one node.
fn reserve_running_ips(k: &Kubelet, node: Option<&str>) {
    let (pods, _) = k.client.list(PODS, None);
    for pod in pods {
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let bound = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let mine = match node {
            Some(node) => bound == node,
            None => k.nodes.is_real(bound),
        };
        if !mine || phase == "Succeeded" || phase == "Failed" {
            continue;
        }
        if let (Some(uid), Some(ip)) = (
            pod["metadata"]["uid"].as_str(),
            pod["status"]["podIP"]
                .as_str()
                .and_then(|ip| ip.parse().ok()),
        ) {
            k.ipam.reserve(uid, ip);
        }
    }
}

/// A pod worker as the dispatcher knows it.
struct WorkerSlot {
    node: String,
    tx: watch::Sender<Option<Arc<Value>>>,
}

type Workers = HashMap<String, WorkerSlot>;

/// Watches pods and hands each one bound to one of this kubelet's real nodes to its
/// worker; picks up the pods of a node that registers and stops those of one that goes.
async fn dispatch(k: Arc<Kubelet>, mut changes: mpsc::UnboundedReceiver<nodes::NodeChange>) {
    let mut workers: Workers = HashMap::new();
    loop {
        let (pods, revision) = k.client.list(PODS, None);
        let live: std::collections::HashSet<String> = pods
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(String::from))
            .collect();
        // Pods removed while the watch was down.
        workers.retain(|uid, w| {
            if live.contains(uid) {
                true
            } else {
                let _ = w.tx.send(None);
                false
            }
        });
        for pod in pods {
            route(&k, &mut workers, pod);
        }
        let Ok(stream) = k.client.watch(PODS, Some(revision)) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut stream = Box::pin(stream);
        loop {
            tokio::select! {
                event = stream.next() => {
                    let Some(event) = event else { break };
                    match event.event_type {
                        EventType::Deleted => {
                            if let Some(uid) = event.object["metadata"]["uid"].as_str() {
                                if let Some(w) = workers.remove(uid) {
                                    let _ = w.tx.send(None);
                                }
                            }
                        }
                        _ => route(&k, &mut workers, event.object.clone()),
                    }
                }
                Some(change) = changes.recv() => on_node_change(&k, &mut workers, change),
            }
            workers.retain(|_, w| !w.tx.is_closed());
        }
    }
}

fn on_node_change(k: &Arc<Kubelet>, workers: &mut Workers, change: nodes::NodeChange) {
    match change {
        nodes::NodeChange::Added(node) => {
            reserve_running_ips(k, Some(&node));
            let (pods, _) = k.client.list(PODS, None);
            for pod in pods {
                if pod["spec"]["nodeName"] == node.as_str() {
                    route(k, workers, pod);
                }
            }
        }
        nodes::NodeChange::Removed(node) => {
            // The machine is gone: `None` makes each worker kill its processes and clean
            // up without posting anything.
            workers.retain(|_, w| {
                if w.node == node {
                    let _ = w.tx.send(None);
                    false
                } else {
                    true
                }
            });
        }
    }
}

fn route(k: &Arc<Kubelet>, workers: &mut Workers, pod: Arc<Value>) {
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if !k.nodes.is_real(node) || is_mirror_pod(&pod) {
        return;
    }
    let node = node.to_string();
    let Some(uid) = pod["metadata"]["uid"].as_str().map(String::from) else {
        return;
    };
    if let Some(w) = workers.get(&uid) {
        let _ = w.tx.send(Some(pod));
        return;
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        // Finished before this kubelet saw it (or by a previous run): only its deletion
        // is left to complete.
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
            let _ = k.client.finish_pod(ns, name, uid);
        }
        return;
    }
    let (tx, rx) = watch::channel(Some(pod.clone()));
    workers.insert(uid, WorkerSlot { node, tx });
    tokio::spawn(pod::run(k.clone(), pod, rx));
}

/// The shortest time between two rewrites of the pods' hosts files.
const HOSTS_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Rewrites pods' hosts files when services or pods change (debounced).
async fn keep_hosts_current(k: Arc<Kubelet>) {
    loop {
        let revision = k.client.revision();
        let (Ok(pods), Ok(services)) = (
            k.client.watch(PODS, Some(revision)),
            k.client.watch(SERVICES, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        k.hosts.refresh(&k);
        // Either stream ends (`None`) when it falls behind: start over rather than carry
        // on with only the other one.
        let ended = || futures::stream::once(async { None });
        let mut merged = futures::stream::select(
            Box::pin(pods.map(Some).chain(ended())),
            Box::pin(services.map(Some).chain(ended())),
        );
        'watch: while let Some(Some(_)) = merged.next().await {
            // Coalesce a burst of changes into one rewrite, and rewrite at most every
            // HOSTS_MIN_INTERVAL: every pod's file lists every Service, so on a busy node
            // (hundreds of drivers starting a second) rewriting on each change would cost
            // more than everything else the node does. Cluster DNS has the same lag (CoreDNS
            // caches answers for seconds).
            tokio::time::sleep(HOSTS_MIN_INTERVAL).await;
            loop {
                match futures::FutureExt::now_or_never(merged.next()) {
                    Some(Some(Some(_))) => continue,
                    Some(_) => {
                        k.hosts.refresh(&k);
                        break 'watch;
                    }
                    None => break,
                }
            }
            k.hosts.refresh(&k);
        }
    }
}

/// The hosts files of this node's running pods.
#[derive(Default)]
pub struct HostsBook {
    entries: Mutex<BTreeMap<String, HostsEntry>>,
}

struct HostsEntry {
    namespace: String,
    /// The lines about the pod itself ([`hosts::own_lines`]).
    own: String,
    path: PathBuf,
    written: String,
}

impl HostsBook {
    /// Adds a pod's hosts file and writes it at once (only this one: the others change
    /// when the pod gets its IP, and the hosts watcher rewrites them). `own` are the lines
    /// about the pod itself ([`hosts::own_lines`]).
    pub fn register(&self, k: &Kubelet, uid: &str, namespace: &str, own: String, path: PathBuf) {
        let mut entry = HostsEntry {
            namespace: namespace.into(),
            own,
            path,
            written: String::new(),
        };
        let block =
            hosts::services_block(namespace, &k.config.service_ip.to_string(), &service_ips(k));
        entry.write(entry.own.clone() + &block);
        self.entries.lock().unwrap().insert(uid.to_string(), entry);
    }

    pub fn unregister(&self, uid: &str) {
        self.entries.lock().unwrap().remove(uid);
    }

    /// Recomputes every registered file and rewrites the changed ones in place (a bind
    /// mount pins the inode, so no rename). The Services' part is rendered once per
    /// namespace.
    pub fn refresh(&self, k: &Kubelet) {
        let mut entries = self.entries.lock().unwrap();
        if entries.is_empty() {
            return;
        }
        let ips = service_ips(k);
        let api_ip = k.config.service_ip.to_string();
        let mut blocks: HashMap<String, String> = HashMap::new();
        for entry in entries.values_mut() {
            let block = blocks
                .entry(entry.namespace.clone())
                .or_insert_with(|| hosts::services_block(&entry.namespace, &api_ip, &ips));
            let text = entry.own.clone() + block;
            if text != entry.written {
                entry.write(text);
            }
        }
    }
}

/// Rewrites `path` without ever leaving it empty: a process resolving a name while
/// `std::fs::write` has truncated the file would find no `kubernetes.default.svc` (seen as
/// "Name or service not known" in job runners under load). The new text is written over the
/// old from the start, then the file is cut to its length; the first lines (the pod itself,
/// the API server) are the same in every version, so a reader always finds them.
fn write_in_place(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(text, 0)?;
    file.set_len(text.len() as u64)
}

fn service_ips(k: &Kubelet) -> hosts::ServiceIps {
    let (services, _) = k.client.list(SERVICES, None);
    let (pods, _) = k.client.list(PODS, None);
    hosts::service_ips(&services, &pods)
}

impl HostsEntry {
    fn write(&mut self, text: String) {
        match write_in_place(&self.path, text.as_bytes()) {
            Ok(()) => self.written = text,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot write hosts file")
            }
        }
    }
}

/// The Node object of a configured node as its kubelet registers it (every node's
/// InternalIP is this machine's loopback address: all pods run here).
pub fn node_object(node: &NodeConfig, kubelet_version: &str) -> anyhow::Result<Value> {
    let env = sparkyard_scheduling::NodeEnvironment {
        internal_ip: "127.0.0.1".into(),
        kubelet_version: kubelet_version.into(),
        now: chrono::Utc::now(),
    };
    sparkyard_scheduling::node_object(node, &env).map_err(|e| anyhow::anyhow!(e))
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.exists())
}
