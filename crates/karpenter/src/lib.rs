//! Karpenter for the embedded cluster: a provisioner that launches nodes for pods the
//! scheduler cannot place and removes them when they are no longer needed, honouring the
//! v1alpha5 `Provisioner` (the seed's) and the v1 `NodePool`/`NodeClaim`.
//!
//! **Owns:** Karpenter's CRDs ([`crds`]) and their admission rules ([`validation`],
//! [`admission`]); the controllers — provisioning (batching, simulation, NodeClaim
//! creation: [`provisioner`]), the NodeClaim lifecycle (launch, registration,
//! initialization: [`lifecycle`]), termination (taint, drain, terminate: [`termination`]),
//! disruption (emptiness, consolidation, expiry, drift: [`disruption`]), spot interruption
//! ([`interruption`]) and pool status ([`status`]); Karpenter's log lines ([`log`]) and
//! `karpenter_*` metrics ([`metrics`]).
//!
//! **Must not touch:** the registry or the API server's internals (objects go through the
//! `Client` only); processes and node registration (that is the kubelet's, reached through
//! `sparkyard-ec2` as Karpenter reaches EC2); the decisions themselves, which are pure
//! functions in `sparkyard-provisioning` so the cost simulator shares them.
//!
//! **Entry points:** [`start`] with a [`KarpenterConfig`]; [`crds::manifests`];
//! [`admission::Webhooks`].

pub mod admission;
pub mod batcher;
pub mod changes;
pub mod consolidation;
pub mod crds;
pub mod disruption;
pub mod interruption;
pub mod lifecycle;
pub mod log;
pub mod metrics;
pub mod objects;
pub mod offerings;
pub mod pools;
pub mod provisioner;
pub mod status;
pub mod termination;
pub mod validation;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sparkyard_ec2::Ec2;
use sparkyard_kube_apiserver::events::Source;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;

pub const NODECLAIMS: Resource = Resource::new("karpenter.sh", "nodeclaims");
pub const NODEPOOLS: Resource = Resource::new("karpenter.sh", "nodepools");
pub const PROVISIONERS: Resource = Resource::new("karpenter.sh", "provisioners");
pub const EC2NODECLASSES: Resource = Resource::new("karpenter.k8s.aws", "ec2nodeclasses");
pub const AWSNODETEMPLATES: Resource = Resource::new("karpenter.k8s.aws", "awsnodetemplates");
pub const NODES: Resource = Resource::new("", "nodes");
pub const PODS: Resource = Resource::new("", "pods");
pub const DAEMON_SETS: Resource = Resource::new("apps", "daemonsets");

/// The finalizer on NodeClaims that runs the termination flow.
pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";
/// The taint a node registers with until Karpenter has synced it.
pub const UNREGISTERED_TAINT: &str = "karpenter.sh/unregistered";
/// The taint that marks a node being disrupted or terminated (v1).
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
pub const LABEL_NODEPOOL: &str = "karpenter.sh/nodepool";
pub const LABEL_PROVISIONER: &str = "karpenter.sh/provisioner-name";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_REGISTERED: &str = "karpenter.sh/registered";
pub const LABEL_INITIALIZED: &str = "karpenter.sh/initialized";
/// The pod/node annotations that hold off disruption (the embedded EC2's drain honours the
/// same ones).
pub use sparkyard_ec2::{DO_NOT_DISRUPT, DO_NOT_EVICT};
pub const DO_NOT_CONSOLIDATE: &str = "karpenter.sh/do-not-consolidate";
/// Pools (Provisioner or NodePool) with this annotation `"true"` launch simulated nodes:
/// no processes, for scale tests and the cost simulator.
pub const SIMULATED_ANNOTATION: &str = "sparkyard.dev/simulated";
/// A pool's boot delay override (`"45s"`), e.g. EC2's real 45–65 s in simulations.
pub const BOOT_DELAY_ANNOTATION: &str = "sparkyard.dev/boot-delay";

/// What Karpenter is told at start.
#[derive(Debug, Clone)]
pub struct KarpenterConfig {
    pub region: String,
    pub cluster_name: String,
    /// The cluster's data directory (pod logs live under it).
    pub data_dir: PathBuf,
    /// The node the controller's mirror pod shows on (a node that never goes away).
    pub log_node: Option<String>,
    /// `BATCH_IDLE_DURATION`: the batch closes after this long without a new pod.
    pub batch_idle: Duration,
    /// `BATCH_MAX_DURATION`: the longest a batch stays open.
    pub batch_max: Duration,
    /// How often disruption checks emptiness: the precision of `ttlSecondsAfterEmpty`.
    pub disruption_poll: Duration,
}

impl KarpenterConfig {
    pub fn new(region: &str, cluster_name: &str, data_dir: PathBuf) -> Self {
        KarpenterConfig {
            region: region.to_string(),
            cluster_name: cluster_name.to_string(),
            data_dir,
            log_node: None,
            batch_idle: Duration::from_secs(1),
            batch_max: Duration::from_secs(10),
            disruption_poll: Duration::from_millis(250),
        }
    }
}

/// What every Karpenter controller shares.
pub struct Context {
    pub client: Client,
    pub ec2: Ec2,
    pub log: log::Log,
    pub metrics: Arc<metrics::Metrics>,
    pub config: KarpenterConfig,
    pub offerings: offerings::Unavailable,
    /// Nodes and claims pods were recently nominated to: not disruption candidates.
    pub nominations: Nominations,
}

/// When each node or claim was last chosen for a pending pod. Disruption leaves such a
/// target alone for `NOMINATION_WINDOW` (Karpenter's `IsNodeNominated`: max(10 s, 2 ×
/// batch max)), so a new node is not removed as empty while its pods are still in the
/// scheduler's back-off.
#[derive(Default)]
pub struct Nominations(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl Nominations {
    pub fn touch(&self, target: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(target.to_string(), std::time::Instant::now());
    }

    pub fn recent(&self, target: &str, window: Duration) -> bool {
        let mut map = self.0.lock().unwrap();
        map.retain(|_, t| t.elapsed() < window.max(Duration::from_secs(60)));
        map.get(target).is_some_and(|t| t.elapsed() < window)
    }
}

impl Context {
    pub fn source(&self) -> Source {
        Source {
            component: "karpenter",
            host: None,
        }
    }
}

/// The running controllers; `metrics()` is what `/metrics` serves.
#[derive(Clone)]
pub struct Karpenter {
    ctx: Arc<Context>,
}

impl Karpenter {
    pub fn metrics_text(&self) -> String {
        self.ctx.metrics.encode()
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
}

/// The instance behind a node or claim's `providerID`.
pub fn instance_for(ctx: &Context, provider_id: &str) -> Option<sparkyard_ec2::Instance> {
    if provider_id.is_empty() {
        return None;
    }
    ctx.ec2
        .instances()
        .into_iter()
        .find(|i| i.provider_id == provider_id)
}

/// Starts every Karpenter controller on the current tokio runtime.
pub fn start(client: &Client, ec2: Ec2, config: KarpenterConfig) -> Karpenter {
    let log = log::Log::open(client, &config.data_dir, config.log_node.as_deref());
    let ctx = Arc::new(Context {
        client: client.clone(),
        ec2,
        log,
        metrics: metrics::Metrics::new(),
        config,
        offerings: offerings::Unavailable::default(),
        nominations: Nominations::default(),
    });
    tokio::spawn(provisioner::run(ctx.clone()));
    tokio::spawn(lifecycle::run(ctx.clone()));
    tokio::spawn(disruption::run(ctx.clone()));
    tokio::spawn(interruption::run(ctx.clone()));
    tokio::spawn(status::run(ctx.clone()));
    Karpenter { ctx }
}
