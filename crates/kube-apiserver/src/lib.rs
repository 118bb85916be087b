//! The embedded cluster's API server: the one door to the cluster's objects.
//!
//! **Owns:** the HTTPS server (TLS, routing of Kubernetes REST paths, JSON/Table/Status and
//! protobuf encodings, chunked and WebSocket watches), authentication (admin token,
//! service-account JWTs) and RBAC, discovery and OpenAPI, and the semantics of every verb:
//! admission (validation, defaulting, priority, service accounts, LimitRanger,
//! ResourceQuota, the pod mutator),
//! patches, deletion (graceful pods, finalizers, propagation), subresources (`status`,
//! `binding`, `log`, `token`, `finalize`, `eviction`) and the review APIs. It is the only
//! writer of the registry (`sparkyard-kube-registry`).
//!
//! **Custom resources** ([`crd`]): `apiextensions.k8s.io/v1` CustomResourceDefinitions
//! add resources to routing, discovery, OpenAPI, RBAC, tables and the [`Client`], with
//! structural-schema pruning, defaulting and validation. **PodDisruptionBudgets**
//! ([`pdb`]) are served and honoured by eviction.
//!
//! **Admission hooks:** other crates validate or default objects in process, as admission
//! webhooks would, with an [`ObjectValidator`] given to [`ApiServer::add_validator`]; it
//! runs for HTTP requests and [`Client`] writes alike, after the built-in admission and
//! schema validation. Deny with [`ApiError::webhook_denied`], which words the error as
//! kube-apiserver relays a webhook's (`admission webhook "<name>" denied the request:
//! <message>`, 400, or 422 when the hook asks).
//!
//! **The one way in:** in-process components (scheduler, kubelet, controllers) use
//! [`Client`] — never the registry, never the HTTP handlers' internals (which are private
//! to this crate). See [`client`] for the verbs and what each one runs.
//!
//! **Must not touch:** processes, nodes or scheduling decisions; it knows nothing of the
//! components that call it (there is no dependency on them). Pod logs are read from the
//! files the kubelet writes ([`logs`]), standing in for the kubelet's `containerLogs`
//! endpoint.
//!
//! **Metrics API:** `metrics.k8s.io/v1beta1` and the node proxy's kubelet endpoints are
//! served from a [`MetricsSource`] given to [`ApiServer::set_metrics_source`] ([`metrics_api`]).
//!
//! **Prometheus:** [`metrics`] counts and times every HTTP request
//! (`apiserver_request_total`, `apiserver_request_duration_seconds`,
//! `apiserver_current_inflight_requests`) and counts stored objects at scrape time
//! (`apiserver_storage_objects`); [`metrics::metrics_text`] is what the binary serves.
//!
//! **IAM authentication:** EKS-style `k8s-aws-v1.` tokens are verified and mapped to users
//! through an [`auth::aws_iam::AwsTokenVerifier`] given to [`ApiServer::set_aws_token_verifier`].
//!
//! **Entry points:** [`ApiServer::new`], [`ApiServer::client`], [`ApiServer::add_validator`],
//! [`ApiServer::router`] with
//! [`serve_tls`] and [`tls_config`], [`pki`] for the certificates.

pub mod admission;
pub mod auth;
pub mod client;
pub mod conditions;
pub mod crd;
mod deletion;
pub mod discovery;
pub mod events;
mod handlers;
pub mod metrics;
pub mod metrics_api;
mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pdb;
pub mod pki;
mod pod_log;
pub mod protobuf;
mod scale;
pub mod selectors;
mod server;
pub mod tables;
mod watch;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

pub use sparkyard_container_logs as logs;
pub use sparkyard_kube_registry::{error, registry, resources};

pub use admission::{ObjectValidator, Operation, PodMutator};
pub use auth::tokens::TokenIssuer;
pub use auth::ADMIN_USER;
pub use client::{Client, Propagation, Subresource};
pub use deletion::DeleteOptions;
pub use error::ApiError;
pub use metrics_api::MetricsSource;
pub(crate) use server::{authenticate_token, error_response, table_response};
pub use server::{
    json_response, parse_resource_path, serve_tls, tls_config, wants_table, ApiRequest, Query,
    ResourcePath,
};

/// The API server's state, shared by the HTTP handlers and every [`Client`].
#[derive(Clone)]
pub struct ApiServer {
    registry: Arc<registry::Registry>,
    tokens: Arc<TokenIssuer>,
    /// PEM of the cluster CA (the `kube-root-ca.crt` ConfigMap of each namespace).
    ca_pem: Arc<str>,
    /// Bearer token of the administrator (group `system:masters`).
    admin_token: Arc<str>,
    /// Mutating admission for pods supplied by the embedding binary (the EKS pod-identity
    /// webhook); set once at start-up, runs after the built-in plugins, like a webhook.
    pod_mutator: Arc<OnceLock<Arc<dyn PodMutator>>>,
    /// Where the kubelet keeps pods (`<root>/pods/<ns>_<name>_<uid>/logs/…`), read by
    /// `pods/<name>/log`.
    pod_logs_root: PathBuf,
    /// In-process admission hooks ([`ObjectValidator`]), run like validating webhooks.
    validators: Arc<RwLock<Vec<Arc<dyn ObjectValidator>>>>,
    /// Usage behind `metrics.k8s.io` and the node proxy ([`ApiServer::set_metrics_source`]).
    metrics_source: Arc<RwLock<Option<Arc<dyn MetricsSource>>>>,
    /// EKS-style IAM authentication ([`ApiServer::set_aws_token_verifier`]).
    aws_tokens: Arc<RwLock<Option<Arc<dyn auth::aws_iam::AwsTokenVerifier>>>>,
    aws_identities: Arc<auth::aws_iam::IdentityCache>,
    /// Where Services' cluster IPs come from (`--service-cluster-ip-range`;
    /// [`ApiServer::set_service_cidr`]).
    service_cidr: Arc<RwLock<admission::Ipv4Cidr>>,
}

impl ApiServer {
    pub fn new(
        registry: Arc<registry::Registry>,
        tokens: Arc<TokenIssuer>,
        ca_pem: &str,
        admin_token: &str,
        pod_mutator: Arc<OnceLock<Arc<dyn PodMutator>>>,
        pod_logs_root: PathBuf,
    ) -> Self {
        let server = Self {
            registry,
            tokens,
            ca_pem: ca_pem.into(),
            admin_token: admin_token.into(),
            pod_mutator,
            pod_logs_root,
            validators: Arc::default(),
            metrics_source: Arc::default(),
            aws_tokens: Arc::default(),
            aws_identities: Arc::default(),
            service_cidr: Arc::default(),
        };
        // The stored CRDs' resources are served from the first request on.
        crd::load(&server);
        server
    }

    /// Registers an in-process admission hook for every create and update (HTTP and
    /// [`Client`] alike), run after the built-in admission and schema validation, like a
    /// validating admission webhook. Hooks run in the order they were added.
    pub fn add_validator(&self, validator: Arc<dyn ObjectValidator>) {
        self.validators.write().unwrap().push(validator);
    }

    /// Registers where `metrics.k8s.io` (NodeMetrics, PodMetrics) and the node proxy's
    /// kubelet endpoints get their data — the kubelet's usage store, as metrics-server and
    /// the kubelets stand behind them on a real cluster ([`metrics_api`]). Replaces any
    /// earlier source.
    pub fn set_metrics_source(&self, source: Arc<dyn MetricsSource>) {
        *self.metrics_source.write().unwrap() = Some(source);
    }

    pub(crate) fn metrics_source(&self) -> Option<Arc<dyn MetricsSource>> {
        self.metrics_source.read().unwrap().clone()
    }

    /// Accepts EKS-style IAM bearer tokens (`aws eks get-token`), verified and mapped through
    /// `verifier` — sparkyard's STS and EKS access entries, installed by the binary
    /// ([`auth::aws_iam`]). Replaces any earlier verifier.
    pub fn set_aws_token_verifier(&self, verifier: Arc<dyn auth::aws_iam::AwsTokenVerifier>) {
        *self.aws_tokens.write().unwrap() = Some(verifier);
    }

    pub(crate) fn aws_token_verifier(&self) -> Option<Arc<dyn auth::aws_iam::AwsTokenVerifier>> {
        self.aws_tokens.read().unwrap().clone()
    }

    /// The in-process client: the one way in for every component.
    pub fn client(&self) -> Client {
        Client::new(self.clone())
    }

    /// The HTTP router (serve it with [`serve_tls`]). A write is acknowledged only once
    /// the registry has it on disk.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Points the `default/kubernetes` Service at the in-cluster address this run bound
    /// (it may move between restarts). `spec.clusterIP` is immutable through the API, so
    /// this is the API server's own repair of its Service, as kube-apiserver's bootstrap
    /// controller reconciles it.
    pub fn repair_kubernetes_service(&self, ip: &str, port: u16) -> Result<(), ApiError> {
        self.registry.modify(
            resources::SERVICES.resource(),
            "default",
            "kubernetes",
            |service| {
                service["spec"]["clusterIP"] = serde_json::json!(ip);
                service["spec"]["ports"][0]["targetPort"] = serde_json::json!(port);
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Sets the range Services' cluster IPs are allocated from (`[cluster] service-cidr`,
    /// kube-apiserver's `--service-cluster-ip-range`; default
    /// [`admission::DEFAULT_SERVICE_CIDR`]). Set once at start, before requests arrive.
    pub fn set_service_cidr(&self, cidr: admission::Ipv4Cidr) {
        *self.service_cidr.write().unwrap() = cidr;
    }

    pub(crate) fn service_cidr(&self) -> admission::Ipv4Cidr {
        *self.service_cidr.read().unwrap()
    }

    /// Gives every Service whose cluster IP lies outside the service CIDR (stored by a run
    /// with another range) a fresh address in it; returns the (namespace, name, IP) moved.
    /// Like [`ApiServer::repair_kubernetes_service`], a repair of immutable fields that is
    /// the API server's own (kube-apiserver's ClusterIP repair controller only reports such
    /// addresses; here kube-proxy could not bind them at all).
    pub fn repair_cluster_ips(&self) -> Vec<(String, String, String)> {
        let repairs = admission::out_of_range_repairs(self);
        let mut done = Vec::new();
        for (ns, name, ip) in repairs {
            let result =
                self.registry
                    .modify(resources::SERVICES.resource(), &ns, &name, |service| {
                        service["spec"]["clusterIP"] = serde_json::json!(ip);
                        service["spec"]["clusterIPs"] = serde_json::json!([ip]);
                        Ok(())
                    });
            if result.is_ok() {
                done.push((ns, name, ip));
            }
        }
        done
    }

    /// Resolves once every change made so far is durable (shutdown, tests).
    pub async fn wait_durable(&self) -> Result<(), ApiError> {
        self.registry.wait_durable(self.registry.revision()).await
    }
}
