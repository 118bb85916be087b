//! The running embedded cluster: configuration, the handle every component shares, and
//! [`start`], which brings it all up.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{json, Value};

use sparkyard_kube_apiserver::discovery;
use sparkyard_kube_apiserver::registry::Registry;
use sparkyard_kube_apiserver::{resources, ApiServer, Client, PodMutator, TokenIssuer, ADMIN_USER};
use sparkyard_kubelet::{KubeletConfig, KubeletHandle};

/// The `[cluster]` table of sparkyard's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    /// Where the API server listens for clients on the host (kubectl, spark-submit, kube-rs).
    /// If the port is taken, a free port on the same IP is used (with a warning); the
    /// kubeconfig at `<data_dir>/cluster/kubeconfig` always names the port really bound.
    #[serde(default = "default_api_listen")]
    pub api_listen: SocketAddr,
    /// The in-cluster API address: the `kubernetes` Service's IP and port, which pods reach
    /// as `kubernetes.default.svc` (the kubelet maps that name to this IP in each pod's
    /// `/etc/hosts` and sets `KUBERNETES_SERVICE_HOST/PORT`). Any 127/8 address works on
    /// Linux without configuration. Port 443 is what Spark's driver uses by default
    /// (`https://kubernetes.default.svc`); if it cannot be bound (not root, no
    /// CAP_NET_BIND_SERVICE), the server falls back to port 6443 on the same IP, then to
    /// any free port, logs a warning, and `Cluster::service_port` says which port it got —
    /// the job controller must then pass `spark.kubernetes.driver.master` with that port.
    #[serde(default = "default_service_address")]
    pub service_address: SocketAddr,
    /// Where Services' cluster IPs come from (kube-apiserver's `--service-cluster-ip-range`):
    /// a loopback range, so kube-proxy can listen on them without root. Services stored
    /// with an address outside it (an older data directory) get a new one at start.
    #[serde(default = "default_service_cidr")]
    pub service_cidr: String,
    /// Where `NodePort` Services listen (kube-proxy's `--nodeport-addresses`): the node's
    /// InternalIP, `127.0.0.1`, so a node port is reachable from this machine only; set
    /// `0.0.0.0` to expose node ports to the network.
    #[serde(default = "default_node_port_address")]
    pub node_port_address: IpAddr,
    /// `iss` of service-account tokens, also the audience the API server accepts.
    #[serde(default = "default_issuer")]
    pub service_account_issuer: String,
    /// The nodes (`[[cluster.nodes]]`): scheduling budgets with real Kubernetes Node
    /// objects. Pods bound to a node without `simulated = true` run on this machine;
    /// pods on simulated nodes run no process. Default: the seed's node group, one EKS
    /// `m5.2xlarge` ([`sparkyard_scheduling::default_nodes`]). See `docs/scheduling.md`.
    #[serde(default = "sparkyard_scheduling::default_nodes")]
    pub nodes: Vec<sparkyard_scheduling::NodeConfig>,
    /// Kubelet (added by the kubelet work): the loopback range pod IPs come from, one per pod.
    #[serde(default = "sparkyard_kubelet::config::default_pod_cidr")]
    pub pod_cidr: String,
    /// Kubelet (added by the kubelet work): container images → local directories, the Spark
    /// distribution, Python and Java for Spark images (`[cluster.images]`).
    #[serde(default)]
    pub images: sparkyard_kubelet::config::ImagesConfig,
    /// Keep every object in `<data_dir>/cluster/registry.db` (SQLite, fsynced before the API
    /// acknowledges a write) and reload them at start, so that a restart of sparkyard —
    /// even `kill -9` — loses no object. `false` keeps them in memory only (benchmarks,
    /// throw-away clusters). See `docs/cluster.md`.
    #[serde(default = "default_persistence")]
    pub persistence: bool,
    /// Kubelet (added by the metrics work): time between two usage samples (CPU, working
    /// set) behind `metrics.k8s.io`, `kubectl top` and the kubelet's `/metrics/resource`.
    /// A Go duration (`10s`, `2s`, `1m`). See `docs/metrics.md`.
    #[serde(default = "default_usage_sample_interval")]
    pub usage_sample_interval: String,
    /// How long an Event is kept after its last write (kube-apiserver's `--event-ttl`,
    /// default `1h`). A Go duration of at least 1s.
    #[serde(default = "default_event_ttl")]
    pub event_ttl: String,
    /// Host directories hidden from every pod (an empty directory in their place), besides
    /// the cluster's own data directory, which always is: `sparkyard serve` adds its whole
    /// data directory, which holds the AWS keys, the databases and S3's objects. Not a
    /// TOML key.
    #[serde(skip)]
    pub hidden_from_pods: Vec<PathBuf>,
}

fn default_event_ttl() -> String {
    "1h".into()
}

fn default_usage_sample_interval() -> String {
    "10s".into()
}

fn default_persistence() -> bool {
    true
}

fn default_api_listen() -> SocketAddr {
    "127.0.0.1:6443".parse().unwrap()
}

fn default_service_address() -> SocketAddr {
    "127.10.96.1:443".parse().unwrap()
}

fn default_service_cidr() -> String {
    sparkyard_kube_apiserver::admission::DEFAULT_SERVICE_CIDR.into()
}

fn default_node_port_address() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn default_issuer() -> String {
    sparkyard_kube_apiserver::auth::tokens::DEFAULT_ISSUER.to_string()
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            api_listen: default_api_listen(),
            service_address: default_service_address(),
            service_cidr: default_service_cidr(),
            node_port_address: default_node_port_address(),
            service_account_issuer: default_issuer(),
            nodes: sparkyard_scheduling::default_nodes(),
            pod_cidr: sparkyard_kubelet::config::default_pod_cidr(),
            images: Default::default(),
            persistence: default_persistence(),
            usage_sample_interval: default_usage_sample_interval(),
            event_ttl: default_event_ttl(),
            hidden_from_pods: Vec::new(),
        }
    }
}

/// Shared handle to the running cluster's parts.
#[derive(Clone)]
pub struct Cluster {
    pub config: Arc<ClusterConfig>,
    /// The API server; components and tests reach objects through [`Cluster::client`].
    api: ApiServer,
    /// Issues and verifies service-account tokens (projected volumes, TokenRequest, STS).
    pub tokens: Arc<TokenIssuer>,
    /// Directory for the cluster's own state (PKI, kubeconfig, pod sandboxes, logs).
    pub data_dir: PathBuf,
    /// The API URL for clients on the host, e.g. `https://127.0.0.1:6443`.
    pub api_url: String,
    /// Where the API server really listens for host clients (the port of `api_url`).
    pub api_address: SocketAddr,
    /// In-cluster API IP (`KUBERNETES_SERVICE_HOST`, the `kubernetes` Service's clusterIP).
    pub service_ip: IpAddr,
    /// In-cluster API port (`KUBERNETES_SERVICE_PORT`); 443 unless binding it failed.
    pub service_port: u16,
    /// PEM of the cluster CA (each pod's `ca.crt`, the kubeconfig's CA).
    pub ca_pem: String,
    /// `<data_dir>/kubeconfig`: cluster `sparkyard`, user `sparkyard-admin`.
    pub kubeconfig_path: PathBuf,
    /// Bearer token of the administrator (group `system:masters`).
    pub admin_token: String,
    /// Mutating admission for pods supplied by the embedding binary — the EKS pod-identity
    /// webhook (IRSA), which lives with IAM in `sparkyard-services`. Set once at start-up,
    /// before workloads arrive; like a webhook, it runs after the built-in plugins.
    pub pod_mutator: Arc<std::sync::OnceLock<Arc<dyn PodMutator>>>,
    /// The kubelet's handle (set once it has started): nodes register and go away
    /// through it (the embedded EC2's instances).
    kubelet: Option<KubeletHandle>,
}

impl Cluster {
    /// The in-process client of the API server: the one way to the cluster's objects.
    pub fn client(&self) -> Client {
        self.api.client()
    }

    /// The API server's HTTP router, for in-process callers that authenticate like any
    /// other client (a bearer token in `Authorization`): the web console, which presents
    /// its signed-in principal's EKS token.
    pub fn api_router(&self) -> axum::Router {
        self.api.router()
    }

    /// The kubelet: which nodes it serves, and the way a booted machine registers its node.
    pub fn kubelet(&self) -> KubeletHandle {
        self.kubelet
            .clone()
            .expect("the kubelet starts before start() returns the cluster")
    }

    /// Accepts EKS-style IAM tokens (`aws eks get-token`) on the API server, verified and
    /// mapped through `verifier` (the binary bridges it to sparkyard's STS and EKS).
    pub fn set_aws_token_verifier(
        &self,
        verifier: Arc<dyn sparkyard_kube_apiserver::auth::aws_iam::AwsTokenVerifier>,
    ) {
        self.api.set_aws_token_verifier(verifier);
    }

    /// Resolves once every change made so far is on disk.
    pub async fn wait_durable(&self) -> Result<(), sparkyard_kube_apiserver::ApiError> {
        self.api.wait_durable().await
    }

    /// What the kubelet is told at start.
    fn kubelet_config(&self) -> KubeletConfig {
        KubeletConfig {
            nodes: self.config.nodes.clone(),
            images: self.config.images.clone(),
            pod_cidr: self.config.pod_cidr.clone(),
            data_dir: self.data_dir.clone(),
            hidden: self.config.hidden_from_pods.clone(),
            service_ip: self.service_ip,
            service_port: self.service_port,
            ca_pem: self.ca_pem.clone(),
            kubelet_version: discovery::KUBE_VERSION.to_string(),
            usage_interval: self.usage_interval(),
        }
    }

    /// `[cluster] usage-sample-interval` (checked at start).
    fn usage_interval(&self) -> std::time::Duration {
        sparkyard_scheduling::simulated::parse_duration(&self.config.usage_sample_interval)
            .and_then(|d| d.to_std().ok())
            .unwrap_or(sparkyard_kubelet::stats::DEFAULT_INTERVAL)
    }

    /// `[cluster] event-ttl` (checked at start).
    fn event_ttl(&self) -> std::time::Duration {
        parse_event_ttl(&self.config.event_ttl)
            .unwrap_or(sparkyard_kube_controllers::event_ttl::DEFAULT_TTL)
    }

    /// The URL pods use: `https://kubernetes.default.svc` (with `:port` if not 443).
    pub fn in_cluster_url(&self) -> String {
        if self.service_port == 443 {
            "https://kubernetes.default.svc".to_string()
        } else {
            format!("https://kubernetes.default.svc:{}", self.service_port)
        }
    }
}

fn parse_event_ttl(text: &str) -> Option<std::time::Duration> {
    sparkyard_scheduling::simulated::parse_duration(text)
        .and_then(|d| d.to_std().ok())
        .filter(|d| *d >= std::time::Duration::from_secs(1))
}

/// Creates the data dir layout and PKI, starts the HTTPS API server (host and in-cluster
/// addresses), the controllers and the kubelet, and creates the built-in objects.
pub async fn start(mut config: ClusterConfig, data_dir: &Path) -> anyhow::Result<Cluster> {
    // Entries that name an instance type and leave its shape out get the type's.
    config.nodes = sparkyard_kubelet::resolve_nodes(&config.nodes)
        .map_err(|e| anyhow::anyhow!("invalid [[cluster.nodes]]: {e}"))?;
    sparkyard_scheduling::validate_nodes(&config.nodes)
        .map_err(|e| anyhow::anyhow!("invalid [[cluster.nodes]]: {e}"))?;
    if sparkyard_scheduling::simulated::parse_duration(&config.usage_sample_interval)
        .and_then(|d| d.to_std().ok())
        .is_none_or(|d| d < std::time::Duration::from_millis(100))
    {
        anyhow::bail!(
            "invalid [cluster] usage-sample-interval {:?}: a Go duration of at least 100ms (e.g. \"10s\")",
            config.usage_sample_interval
        );
    }
    let service_cidr = sparkyard_kube_apiserver::admission::Ipv4Cidr::parse(&config.service_cidr)
        .map_err(|e| anyhow::anyhow!("invalid [cluster] service-cidr: {e}"))?;
    if parse_event_ttl(&config.event_ttl).is_none() {
        anyhow::bail!(
            "invalid [cluster] event-ttl {:?}: a Go duration of at least 1s (e.g. \"1h\")",
            config.event_ttl
        );
    }
    std::fs::create_dir_all(data_dir.join("pods")).with_context(|| {
        format!(
            "cannot create cluster data directory {}",
            data_dir.display()
        )
    })?;
    let data_dir = data_dir.canonicalize()?;

    let service_ip = config.service_address.ip();
    let mut extra_ips = vec![service_ip];
    if !config.api_listen.ip().is_unspecified() {
        extra_ips.push(config.api_listen.ip());
    }
    let pki = sparkyard_kube_apiserver::pki::load_or_create(
        &data_dir.join("pki"),
        &sparkyard_kube_apiserver::pki::serving_sans(&extra_ips),
    )
    .context("cannot create or load the cluster PKI")?;
    let admin_token =
        sparkyard_kube_apiserver::pki::read_or_create_secret(&data_dir.join("pki/admin.token"))?;
    let tokens = Arc::new(TokenIssuer::new(
        &config.service_account_issuer,
        &pki.sa_key_pem,
    )?);
    let tls = sparkyard_kube_apiserver::tls_config(&pki.serving_cert_pem, &pki.serving_key_pem)?;

    let registry = if config.persistence {
        Registry::open(&data_dir.join("registry.db"))
            .context("cannot load the cluster's objects")?
    } else {
        Registry::new()
    };
    // Pods that outlived a restart reach the API at the port they were given: when the
    // configured one is unavailable or any (0), the previous run's port comes first.
    let pod_mutator: Arc<std::sync::OnceLock<Arc<dyn PodMutator>>> = Arc::default();
    let api = ApiServer::new(
        registry,
        tokens.clone(),
        &pki.ca_pem,
        &admin_token,
        pod_mutator.clone(),
        data_dir.clone(),
    );
    api.set_service_cidr(service_cidr);
    // Karpenter's webhooks, before any request can store a Provisioner or NodePool.
    api.add_validator(Arc::new(sparkyard_karpenter::admission::Webhooks));
    let client = api.client();
    let previous_port = client
        .get(resources::ENDPOINTS.resource(), "default", "kubernetes")
        .and_then(|e| e.pointer("/subsets/0/ports/0/port").and_then(Value::as_u64))
        .and_then(|p| u16::try_from(p).ok());

    let host_listener = bind_host(config.api_listen).await?;
    let api_address = host_listener.local_addr()?;
    let service_listener = bind_in_cluster(config.service_address, previous_port).await?;
    let service_port = service_listener.local_addr()?.port();

    let host = if api_address.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        api_address.ip().to_string()
    };
    let api_url = format!("https://{host}:{}", api_address.port());
    let kubeconfig_path = data_dir.join("kubeconfig");

    let mut cluster = Cluster {
        config: Arc::new(config),
        api,
        tokens,
        data_dir: data_dir.clone(),
        api_url: api_url.clone(),
        api_address,
        service_ip,
        service_port,
        ca_pem: pki.ca_pem.clone(),
        kubeconfig_path: kubeconfig_path.clone(),
        admin_token: admin_token.clone(),
        pod_mutator,
        kubelet: None,
    };

    bootstrap(&cluster).context("cannot create the built-in objects")?;
    for (ns, name, ip) in cluster.api.repair_cluster_ips() {
        tracing::warn!(namespace = %ns, service = %name, cluster_ip = %ip, cidr = %service_cidr,
            "the Service's cluster IP was outside the service CIDR; it has a new one");
    }

    let router = cluster.api.router();
    tokio::spawn(sparkyard_kube_apiserver::serve_tls(
        host_listener,
        tls.clone(),
        router.clone(),
    ));
    tokio::spawn(sparkyard_kube_apiserver::serve_tls(
        service_listener,
        tls,
        router,
    ));

    sparkyard_kube_apiserver::pki::write_private(
        &kubeconfig_path,
        &kubeconfig(&api_url, &pki.ca_pem, &admin_token),
    )?;

    sparkyard_kube_scheduler::start(client.clone())?;
    sparkyard_kube_controllers::start(&client, &cluster.ca_pem, cluster.event_ttl());
    // Provisioned volumes live under the data directory, hidden from pods like the rest of
    // it; a pod sees only the volume it mounts.
    sparkyard_kube_controllers::storage::start(&client, data_dir.join("local-path"));
    sparkyard_kube_proxy::start(&client, cluster.config.node_port_address);
    let kubelet = sparkyard_kubelet::start(&client, cluster.kubelet_config())?;
    // metrics.k8s.io and the node proxy's kubelet endpoints read the kubelet's usage.
    cluster.api.set_metrics_source(kubelet.usage());
    cluster.kubelet = Some(kubelet);
    tracing::info!(
        api = %cluster.api_url,
        in_cluster = %format!("{}:{}", cluster.service_ip, cluster.service_port),
        kubeconfig = %kubeconfig_path.display(),
        "embedded Kubernetes API server is serving"
    );
    Ok(cluster)
}

/// Binds the host API address. When its port is taken (another sparkyard, a test running
/// beside this one), a free port on the same IP is used instead, with a warning: the
/// kubeconfig always names the port really bound.
async fn bind_host(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && address.port() != 0 => {
            let listener = tokio::net::TcpListener::bind(SocketAddr::new(address.ip(), 0))
                .await
                .with_context(|| {
                    format!("cannot listen on {} (cluster api-listen)", address.ip())
                })?;
            tracing::warn!(wanted = %address, got = %listener.local_addr()?, "cluster API port is in use; serving on a free port (see the kubeconfig)");
            Ok(listener)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot listen on {address} (cluster api-listen)"))
        }
    }
}

/// Binds the in-cluster address, falling back from a privileged port (see
/// [`ClusterConfig::service_address`]).
async fn bind_in_cluster(
    address: SocketAddr,
    previous_port: Option<u16>,
) -> anyhow::Result<tokio::net::TcpListener> {
    let previous = previous_port.filter(|p| *p != 0 && *p != address.port());
    if address.port() == 0 {
        // Any port will do: the one running pods already use, if it is free.
        if let Some(port) = previous {
            if let Ok(listener) =
                tokio::net::TcpListener::bind(SocketAddr::new(address.ip(), port)).await
            {
                return Ok(listener);
            }
        }
    }
    match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(first) => {
            for port in previous.into_iter().chain([6443, 0]) {
                let fallback = SocketAddr::new(address.ip(), port);
                if let Ok(listener) = tokio::net::TcpListener::bind(fallback).await {
                    tracing::warn!(
                        wanted = %address,
                        got = %listener.local_addr()?,
                        error = %first,
                        "cannot bind the in-cluster API address; pods must use https://kubernetes.default.svc:<port> \
                         (run as root or grant CAP_NET_BIND_SERVICE to serve port 443)"
                    );
                    return Ok(listener);
                }
            }
            Err(first)
                .with_context(|| format!("cannot listen on the in-cluster API address {address}"))
        }
    }
}

/// The kubeconfig for the administrator (pure).
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sparkyard\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {ADMIN_USER}\n  user:\n    token: {token}\ncontexts:\n- name: sparkyard\n  context:\n    cluster: sparkyard\n    user: {ADMIN_USER}\n    namespace: default\ncurrent-context: sparkyard\npreferences: {{}}\n"
    )
}

/// The built-in objects a fresh cluster has, created through the API server like any
/// other object.
fn bootstrap(cluster: &Cluster) -> anyhow::Result<()> {
    use sparkyard_kube_apiserver::resources::*;
    use sparkyard_kube_apiserver::Subresource;
    let client = cluster.client();
    let create = |info: &'static ResourceInfo, ns: &str, object: Value| -> anyhow::Result<()> {
        // Loaded from disk (a restart): kept as it is, not created again. Checked before
        // admission, which would reject e.g. a second claim on the Service's clusterIP.
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if client.get(info.resource(), ns, name).is_some() {
            return Ok(());
        }
        match client.create(info.resource(), ns, object) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(anyhow::anyhow!(
                "creating built-in {} failed: {}",
                info.plural,
                e.message
            )),
        }
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create(&NAMESPACES, "", json!({"metadata": {"name": ns}}))?;
    }
    for (name, rules) in sparkyard_kube_apiserver::auth::rbac::default_cluster_roles() {
        create(
            &CLUSTER_ROLES,
            "",
            json!({"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}, "rules": rules}),
        )?;
    }
    create(
        &CLUSTER_ROLE_BINDINGS,
        "",
        json!({"metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]}),
    )?;
    create(
        &SERVICES,
        "default",
        json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"type": "ClusterIP", "clusterIP": cluster.service_ip.to_string(),
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cluster.service_port}]}}),
    )?;
    create(
        &ENDPOINTS,
        "default",
        json!({"metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
               "subsets": [{"addresses": [{"ip": cluster.service_ip.to_string()}],
                            "ports": [{"name": "https", "port": cluster.service_port, "protocol": "TCP"}]}]}),
    )?;
    // kube-apiserver's built-in priority classes (the scheduling.k8s.io bootstrap).
    for (name, value, description) in [
        ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ] {
        create(
            &PRIORITY_CLASSES,
            "",
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                   "metadata": {"name": name}, "value": value, "description": description,
                   "preemptionPolicy": "PreemptLowerPriority"}),
        )?;
    }
    // The default StorageClass (local-path, as k3s and kind have it). Created only when
    // absent: an administrator's changes to it (say, dropping its default annotation for
    // another class) survive a restart; a deleted one comes back, as in k3s.
    create(
        &STORAGE_CLASSES,
        "",
        sparkyard_kube_controllers::storage::default_storage_class(),
    )?;
    for node in &cluster.config.nodes {
        create(
            &NODES,
            "",
            sparkyard_kubelet::node_object(node, discovery::KUBE_VERSION)?,
        )?;
    }
    install_crds(&client)?;
    // Loaded from a previous run: the in-cluster address may have moved.
    let (ip, port) = (cluster.service_ip.to_string(), cluster.service_port);
    // (The clusterIP is immutable through the API; the registry's copy of a built-in
    // object is the apiserver's to repair, as kube-apiserver's own bootstrap controller
    // reconciles the `kubernetes` Service.)
    let _ = cluster.api.repair_kubernetes_service(&ip, port);
    let _ = client.modify(
        ENDPOINTS.resource(),
        "default",
        "kubernetes",
        Subresource::Main,
        |endpoints| {
            endpoints["subsets"][0]["addresses"][0]["ip"] = json!(ip);
            endpoints["subsets"][0]["ports"][0]["port"] = json!(port);
            Ok(())
        },
    );
    Ok(())
}

/// Creates Karpenter's CRDs, or updates them to this binary's manifests when a previous
/// run stored older ones, so `kubectl get nodepools` answers from the first request.
fn install_crds(client: &sparkyard_kube_apiserver::Client) -> anyhow::Result<()> {
    use sparkyard_kube_apiserver::resources::CUSTOM_RESOURCE_DEFINITIONS;
    use sparkyard_kube_apiserver::Subresource;
    let crds = CUSTOM_RESOURCE_DEFINITIONS.resource();
    for mut manifest in sparkyard_karpenter::crds::manifests() {
        // Defaulted as the API server stores it, so an unchanged CRD writes nothing.
        sparkyard_kube_apiserver::crd::definition::default_crd(&mut manifest);
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let failed = |e: sparkyard_kube_apiserver::ApiError| {
            anyhow::anyhow!("installing CRD {name} failed: {}", e.message)
        };
        if client.get(crds, "", &name).is_none() {
            client.create(crds, "", manifest.clone()).map_err(failed)?;
            continue;
        }
        client
            .modify(crds, "", &name, Subresource::Main, |stored| {
                stored["spec"] = manifest["spec"].clone();
                Ok(())
            })
            .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_cluster_user_and_embeds_the_ca() {
        let text = kubeconfig("https://127.0.0.1:6443", "PEM", "tok");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["clusters"][0]["name"].as_str(), Some("sparkyard"));
        assert_eq!(doc["users"][0]["name"].as_str(), Some("sparkyard-admin"));
        assert_eq!(doc["users"][0]["user"]["token"].as_str(), Some("tok"));
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"].as_str(),
            Some("UEVN")
        );
    }

    #[test]
    fn config_defaults_and_keys() {
        let config: ClusterConfig = toml::from_str("service-address = \"127.10.0.5:443\"").unwrap();
        assert_eq!(config.api_listen.to_string(), "127.0.0.1:6443");
        assert_eq!(config.service_address.to_string(), "127.10.0.5:443");
        assert!(toml::from_str::<ClusterConfig>("nope = 1").is_err());
        assert_eq!(config.nodes, sparkyard_scheduling::default_nodes());
        assert_eq!(config.usage_sample_interval, "10s");
        assert_eq!(config.service_cidr, "127.10.96.0/20");
        assert_eq!(config.node_port_address.to_string(), "127.0.0.1");
        assert!(
            toml::from_str::<ClusterConfig>("node-cpu = \"8\"").is_err(),
            "the single-node keys are gone: [[cluster.nodes]] replaces them"
        );
        let two: ClusterConfig = toml::from_str(
            "[[nodes]]\nname = \"a\"\ncpu = \"2\"\n[[nodes]]\nname = \"b\"\nsimulated = true\n",
        )
        .unwrap();
        assert_eq!(two.nodes.len(), 2);
        assert!(two.nodes[1].simulated);
    }
}
