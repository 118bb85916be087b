//! `sparkyard serve`: open the store, load or create the keys, and serve the AWS endpoint.

use std::sync::{Arc, Mutex};

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::endpoint;
use anyhow::Context;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    secure_data_dir(&config.data_dir)?;

    // The embedded Kubernetes cluster (kubeconfig at <data_dir>/cluster/kubeconfig). Its
    // containers run under `sparkyard shim`, so they outlive a restart of this process.
    if let Ok(exe) = std::env::current_exe() {
        sparkyard_cluster::kubelet::shim::use_executable(exe);
    }
    let cluster = if args.no_cluster {
        None
    } else {
        // Pods see the host's file system read-only, so the whole data directory (keys,
        // databases, S3's objects), not only the cluster's part of it, is hidden from them.
        let mut cluster_config = config.cluster.clone();
        cluster_config
            .hidden_from_pods
            .push(config.data_dir.canonicalize()?);
        Some(
            sparkyard_cluster::start(cluster_config, &config.data_dir.join("cluster"))
                .await
                .context("cannot start the embedded Kubernetes cluster")?,
        )
    };
    // The Prometheus listener, always: what exists is served (`--no-cluster`: job runs
    // and whatever is added later). Sources are read at each scrape, so components
    // started below add theirs with `metrics.add(…)`.
    let metrics = MetricsSources::default();
    if let Some(cluster) = &cluster {
        add_cluster_metrics(&metrics, cluster);
    }
    if !args.cluster_only {
        metrics.add(
            "job-runs",
            Arc::new(sparkyard_controller::metrics::metrics_text),
        );
    }
    start_metrics_listener(&config, &metrics, cluster.as_ref()).await?;
    if args.cluster_only {
        return serve_cluster_only(config.listen).await;
    }

    // One of several replicas: serve (forwarding to the leader) and wait to lead before
    // opening the state; only the leader does the work (crates/sparkyard/src/replicas.rs).
    let replica = if args.election.leader_elect {
        Some(crate::replicas::start(&config, &args.election, || Box::pin(shutdown_signal())).await?)
    } else {
        None
    };

    // The embedded EC2: its instances boot as nodes of the embedded cluster. EKS node
    // groups are its Auto Scaling groups; Karpenter launches through it too.
    let ec2 = match &cluster {
        Some(cluster) => Some(start_ec2(&config, cluster)?),
        None => None,
    };

    let location = config.store_location()?;
    let store = sparkyard_store::Store::connect_to(location.clone())
        .with_context(|| format!("cannot open the store at {location}"))?;
    let keyring = Arc::new(
        sparkyard_aws::auth::Keyring::load_or_bootstrap_with(
            &config.data_dir,
            &config.account_id,
            given_bootstrap_key()?,
        )
        .context("cannot load or create access keys")?,
    );
    let endpoint_url = format!("http://{}", config.listen);
    let profile = sparkyard_aws::profile::write_cli_profile(
        &config.data_dir,
        keyring.bootstrap(),
        &config.region,
        &endpoint_url,
    )
    .context("cannot write the AWS CLI profile")?;
    if let Some(cluster) = &cluster {
        endpoint::install_pod_identity(cluster, &config.region, &profile.endpoint);
    }

    let emr = sparkyard_emr::Emr::open(
        store,
        sparkyard_emr::Settings {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            config: config.emr.clone(),
        },
    )
    .await
    .context("cannot load emr-containers state")?;

    // S3, Logs, IAM, STS, EKS. STS AssumeRoleWithWebIdentity (IRSA) verifies tokens with
    // the embedded cluster's service-account issuer, which EKS DescribeCluster reports.
    let aws = sparkyard_services::Services::open(
        sparkyard_services::Settings {
            data_dir: config.data_dir.clone(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            config: config.services.clone(),
            cluster_endpoint: cluster.as_ref().map(|c| c.api_url.clone()),
            cluster_ca_pem: cluster.as_ref().map(|c| c.ca_pem.clone()),
            nodegroup_backend: ec2.clone().map(|ec2| {
                Arc::new(crate::nodegroups::Ec2NodeGroups { ec2 })
                    as Arc<dyn sparkyard_services::eks::nodegroups::NodeGroupBackend>
            }),
            ec2_backend: ec2.clone().map(|ec2| {
                Arc::new(crate::nodegroups::Ec2Instances { ec2 })
                    as Arc<dyn sparkyard_services::ec2::Ec2Backend>
            }),
        },
        keyring.clone(),
        cluster
            .as_ref()
            .map(|c| endpoint::web_identity_verifier(c.tokens.clone())),
    )
    .context("cannot open the S3/Logs/IAM/STS/EKS state")?;
    create_node_groups(&config, &aws).await?;
    // `aws eks get-token` tokens on the embedded API server (docs/access.md).
    if let Some(cluster) = &cluster {
        let creator = keyring
            .lookup(&keyring.bootstrap().access_key_id)
            .map(|k| k.owner.arn)
            .unwrap_or_else(|| format!("arn:aws:iam::{}:root", config.account_id));
        endpoint::install_aws_iam(
            cluster,
            &aws,
            &config.services.cluster_name,
            &profile.endpoint,
            &creator,
        );
    }

    // Karpenter launches through the same EC2.
    if let (Some(cluster), Some(ec2)) = (&cluster, ec2) {
        if config.autoscaling.karpenter {
            let karpenter = start_karpenter(&config, cluster, ec2)?;
            metrics.add("karpenter", Arc::new(move || karpenter.metrics_text()));
        }
    }

    // Pods reach sparkyard's S3 at the endpoint their IRSA environment names.
    let s3 = sparkyard_controller::s3a::S3Settings {
        endpoint: Some(profile.endpoint.clone()),
        region: config.region.clone(),
    };

    // The job-run controller (crates/controller), on the embedded cluster unless
    // `[controller] kubeconfig` names another.
    if !args.no_controller {
        sparkyard_controller::spawn(
            emr.clone(),
            sparkyard_controller::Settings {
                config: config.controller.clone(),
                default_kubeconfig: Some(config.data_dir.join("cluster/kubeconfig")),
                default_master: cluster.as_ref().map(|c| c.in_cluster_url()),
                event_logs: config.history.enabled.then(|| {
                    match (
                        config.history.s3_event_log_dir(),
                        config.history.event_log_dir(&config.data_dir),
                    ) {
                        (Some(uri), _) => sparkyard_logs::EventLogSettings::S3(uri),
                        (None, dir) => sparkyard_logs::EventLogSettings::HostDir(
                            dir.unwrap_or_default().display().to_string(),
                        ),
                    }
                }),
                s3: Some(s3.clone()),
                spark_runtime: embedded_spark_has_runtime(&config),
            },
        );
    }

    // sparkyard's own identity as an AWS client (the CLI profile's key).
    let bootstrap_credentials = sparkyard_logs::aws::credentials::Credentials {
        access_key_id: keyring.bootstrap().access_key_id.clone(),
        secret_access_key: keyring.bootstrap().secret_access_key.clone(),
        session_token: None,
        expires_at: None,
    };
    // The log shipper and the Spark History Server (crates/logs).
    // The History Server reads event logs in S3 as sparkyard's own CLI profile.
    let history_s3 = sparkyard_logs::history::S3Access {
        properties: sparkyard_controller::s3a::confs_with(&s3, sparkyard_controller::s3a::PROFILE),
        env: vec![
            ("AWS_PROFILE".into(), profile.name.clone()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                profile.credentials_file.display().to_string(),
            ),
            (
                "AWS_CONFIG_FILE".into(),
                profile.config_file.display().to_string(),
            ),
        ],
        credentials: Some(bootstrap_credentials.clone()),
    };
    start_logs(
        &config,
        &endpoint_url,
        emr.clone(),
        cluster.as_ref(),
        history_s3,
    );
    // The daily Cost and Usage Report–shaped export of the runs' cost records.
    crate::cost_export::start(crate::cost_export::Exporter {
        emr: emr.clone(),
        config: config.cost.clone(),
        cluster_name: config.services.cluster_name.clone(),
        endpoint_url: endpoint_url.clone(),
        credentials: bootstrap_credentials,
    })?;

    // The web console (crates/console) acts through the same AWS services and IAM
    // authorizer as SigV4 callers, and on the cluster with the principal's EKS token.
    let console_api = sparkyard_services::principal_router(
        aws.clone(),
        sparkyard_emr::router_with(
            emr.clone(),
            Some(Arc::new(aws.authorizer()) as Arc<dyn sparkyard_aws::Authorize>),
        ),
    );
    let console_kube = cluster.as_ref().and_then(|c| {
        let sts_host = profile
            .endpoint
            .parse::<http::Uri>()
            .ok()?
            .authority()?
            .to_string();
        Some(sparkyard_console::kube::KubeAccess {
            router: c.api_router(),
            cluster_name: config.services.cluster_name.clone(),
            sts_host,
        })
    });
    crate::console::start(&config, keyring.clone(), console_api, console_kube).await?;

    let app = endpoint::router(endpoint::Services {
        keyring: keyring.clone(),
        emr,
        aws,
    });

    if let Some(replica) = replica {
        tracing::info!(endpoint = %endpoint_url, "sparkyard leads and is serving");
        replica.endpoint.serve_as_leader(app);
        return replica.wait().await;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(endpoint = %endpoint_url, data_dir = %config.data_dir.display(), "sparkyard is serving");
    eprintln!("{}", profile.usage());
    // Container Insights publishes to the endpoint just bound (crates/container-insights);
    // its latest figures are also `sparkyard_ci_*` gauges. Started beside serving, so a
    // slow cluster connection never holds up the endpoint.
    {
        let (config, endpoint_url, admin) = (
            config.clone(),
            endpoint_url.clone(),
            keyring.bootstrap().clone(),
        );
        let cluster = cluster.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            match crate::insights::start(&config, &endpoint_url, &admin, cluster.as_ref()).await {
                Ok(Some(insights)) => metrics.add(
                    "container-insights",
                    Arc::new(move || {
                        sparkyard_container_insights::prometheus::text(&insights.records())
                    }),
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "Container Insights did not start"),
            }
        });
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Karpenter on the embedded cluster; its `karpenter_*` metrics are served by the
/// Prometheus listener ([`MetricsSources`]).
fn start_karpenter(
    config: &Config,
    cluster: &sparkyard_cluster::Cluster,
    ec2: sparkyard_ec2::Ec2,
) -> anyhow::Result<sparkyard_karpenter::Karpenter> {
    use crate::config::AutoscalingConfig as A;
    let scaling = &config.autoscaling;
    let mut k = sparkyard_karpenter::KarpenterConfig::new(
        &config.region,
        &config.services.cluster_name,
        config.data_dir.join("cluster"),
    );
    k.batch_idle = A::duration("batch-idle", &scaling.batch_idle)?;
    k.batch_max = A::duration("batch-max", &scaling.batch_max)?;
    // The controller's mirror pod shows on a node that never scales away: the first
    // configured node (the control plane's when a ClusterConfig gave the node groups).
    k.log_node = config.cluster.nodes.first().map(|n| n.name.clone());
    Ok(sparkyard_karpenter::start(&cluster.client(), ec2, k))
}

/// A source of Prometheus text for `GET /metrics`: OpenMetrics as prometheus-client
/// writes it (`encode_registry`, with or without `# EOF`) or the classic 0.0.4 format.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// What `GET /metrics` serves, in order: each source is called at every scrape and the
/// results merged into one `text/plain; version=0.0.4` document, each family once (the
/// first source to write a family wins). A component adds its metrics with one call:
///
/// ```ignore
/// metrics.add("container-insights", Arc::new(move || insights.metrics_text()));
/// ```
#[derive(Clone, Default)]
pub struct MetricsSources(Arc<Mutex<Vec<(String, MetricsSource)>>>);

impl MetricsSources {
    /// Adds (or, for a name already added, replaces) a source.
    pub fn add(&self, name: &str, source: MetricsSource) {
        let mut sources = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match sources.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = source,
            None => sources.push((name.to_string(), source)),
        }
    }

    /// One scrape: every source's text, merged.
    pub fn render(&self) -> String {
        let sources: Vec<MetricsSource> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        sparkyard_kube_state_metrics::exposition::to_prometheus_text(sources.iter().map(|s| s()))
    }
}

/// The embedded cluster's metrics: the API server's, the scheduler's, kube-scheduler's
/// `kube_pod_resource_*` and the kube-state-metrics subset.
fn add_cluster_metrics(metrics: &MetricsSources, cluster: &sparkyard_cluster::Cluster) {
    let client = cluster.client();
    metrics.add(
        "apiserver",
        Arc::new(move || sparkyard_kube_apiserver::metrics::metrics_text(Some(&client))),
    );
    metrics.add(
        "scheduler",
        Arc::new(sparkyard_kube_scheduler::metrics::metrics_text),
    );
    let resources = sparkyard_kube_scheduler::metrics::PodResources::new(cluster.client());
    metrics.add("scheduler-resources", Arc::new(move || resources.text()));
    let ksm = sparkyard_kube_state_metrics::KubeStateMetrics::new(cluster.client());
    metrics.add("kube-state-metrics", Arc::new(move || ksm.text()));
}

/// The Prometheus listener on `[metrics] listen` (else `[autoscaling] metrics-listen`):
/// `GET /metrics` serves every source; `GET /metrics/resources` kube-scheduler's
/// `kube_pod_resource_request`/`_limit` alone, as kube-scheduler serves them.
async fn start_metrics_listener(
    config: &Config,
    metrics: &MetricsSources,
    cluster: Option<&sparkyard_cluster::Cluster>,
) -> anyhow::Result<()> {
    let wanted = config.metrics_listen();
    // A taken port falls back to a free one on the same IP (as the API server's does);
    // `<data-dir>/metrics.addr` names the address really bound.
    let listener = match tokio::net::TcpListener::bind(wanted).await {
        Ok(l) => l,
        Err(e) => {
            let any = std::net::SocketAddr::new(wanted.ip(), 0);
            let l = tokio::net::TcpListener::bind(any).await.with_context(|| {
                format!(
                    "cannot listen on {wanted} ([metrics] listen / [autoscaling] metrics-listen)"
                )
            })?;
            tracing::warn!(%wanted, error = %e, got = %l.local_addr()?, "metrics port taken; using another");
            l
        }
    };
    let bound = listener.local_addr()?;
    std::fs::write(config.data_dir.join("metrics.addr"), bound.to_string())
        .context("cannot write metrics.addr")?;
    let resources = MetricsSources::default();
    if let Some(cluster) = cluster {
        let pods = sparkyard_kube_scheduler::metrics::PodResources::new(cluster.client());
        resources.add("scheduler-resources", Arc::new(move || pods.text()));
    }
    let text = |sources: MetricsSources| async move {
        // Listing every node and pod is CPU work: off the async workers.
        let body = tokio::task::spawn_blocking(move || sources.render())
            .await
            .unwrap_or_default();
        (
            [(
                axum::http::header::CONTENT_TYPE,
                sparkyard_kube_state_metrics::exposition::CONTENT_TYPE,
            )],
            body,
        )
    };
    let all = metrics.clone();
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(move || text(all.clone())))
        .route(
            "/metrics/resources",
            axum::routing::get(move || text(resources.clone())),
        );
    tracing::info!(address = %bound, "serving Prometheus metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// The embedded EC2 on the embedded cluster's kubelet; its instances and groups are kept
/// in `<data_dir>/ec2/state.json` across restarts.
fn start_ec2(
    config: &Config,
    cluster: &sparkyard_cluster::Cluster,
) -> anyhow::Result<sparkyard_ec2::Ec2> {
    let dir = config.data_dir.join("ec2");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut ec2_config = sparkyard_ec2::Ec2Config::new(
        &config.region,
        &config.services.cluster_name,
        dir.join("state.json"),
    );
    use crate::config::AutoscalingConfig as A;
    ec2_config.boot_delay = A::duration("boot-delay", &config.autoscaling.boot_delay)?;
    ec2_config.spot_notice = A::duration("spot-notice", &config.autoscaling.spot_notice)?;
    sparkyard_ec2::Ec2::new(cluster.client(), cluster.kubelet(), ec2_config)
        .map_err(|e| anyhow::anyhow!("cannot start the embedded EC2: {e}"))
}

/// The ClusterConfig's managed node groups, through the same path as `CreateNodegroup`.
/// A group that exists (a restart) is kept as it is: its size may have been changed since.
async fn create_node_groups(
    config: &Config,
    aws: &sparkyard_services::Services,
) -> anyhow::Result<()> {
    let Some(eks) = &config.eksctl else {
        return Ok(());
    };
    for (i, ng) in eks.node_groups.iter().enumerate() {
        let body = ng.create_body(eks, &config.account_id, &config.region);
        match aws.nodegroups().ensure(&body).await {
            Ok(true) => {
                tracing::info!(nodegroup = %ng.name, desired = ng.desired, "created managed node group from the cluster config")
            }
            Ok(false) => {
                tracing::info!(nodegroup = %ng.name, "managed node group exists; kept as it is")
            }
            Err(e) => anyhow::bail!("cluster config: managedNodeGroups[{i}] ({}): {e}", ng.name),
        }
    }
    Ok(())
}

/// Container logs to S3/CloudWatch with each run's role, and the persistent app UI.
fn start_logs(
    config: &Config,
    endpoint_url: &str,
    emr: sparkyard_emr::Emr,
    cluster: Option<&sparkyard_cluster::Cluster>,
    history_s3: sparkyard_logs::history::S3Access,
) {
    let runs: sparkyard_logs::shipper::RunLookup = Arc::new(move |id: &str| {
        emr.job_run(id).map(|r| {
            sparkyard_logs::RunLogConfig::from_overrides(
                &r.virtual_cluster_id,
                &r.execution_role_arn,
                r.configuration_overrides.as_ref(),
            )
        })
    });
    let local_log: Option<sparkyard_logs::shipper::LocalLog> = cluster.map(|c| {
        use sparkyard_cluster::logs::{self, cri};
        let dir = c.data_dir.clone();
        Arc::new(
            move |ns: &str,
                  pod: &str,
                  uid: &str,
                  container: &str,
                  stream: Option<sparkyard_logs::layout::Stream>| {
                let path = logs::pod_log_path(&dir, ns, pod, uid, container, 0);
                let stream = stream.map(|s| match s {
                    sparkyard_logs::layout::Stream::Stdout => cri::Stream::Stdout,
                    sparkyard_logs::layout::Stream::Stderr => cri::Stream::Stderr,
                });
                logs::read_output(&path, stream)
            },
        ) as sparkyard_logs::shipper::LocalLog
    });
    let runtime = sparkyard_cluster::kubelet::config::HostRuntime::discover(&config.cluster.images);
    sparkyard_logs::service::start(sparkyard_logs::service::ServeSettings {
        data_dir: config.data_dir.clone(),
        region: config.region.clone(),
        endpoint_url: Some(endpoint_url.to_string()),
        kubeconfig: config
            .controller
            .kubeconfig
            .clone()
            .unwrap_or_else(|| config.data_dir.join("cluster/kubeconfig")),
        logs: config.logs.clone(),
        history: config.history.clone(),
        runs,
        local_log,
        spark_home: runtime.spark_home,
        java_home: runtime.java_home,
        history_s3,
    });
}

/// Whether runs go to the embedded cluster and its Spark (the host's, mapped into pods) has
/// sparkyard's spark-runtime jar, installed by scripts/setup.sh: then runs get EMR's
/// `spark-<jobRunId>` application ids. Another cluster's images may lack the class, and a
/// missing feature step would fail every submission, so it is not assumed there.
fn embedded_spark_has_runtime(config: &Config) -> bool {
    config.controller.kubeconfig.is_none()
        && sparkyard_cluster::kubelet::config::HostRuntime::discover(&config.cluster.images)
            .spark_home
            .is_some_and(|home| home.join("jars/sparkyard-spark-runtime.jar").exists())
}

/// The data directory holds every secret sparkyard keeps (IAM secret keys, Kubernetes
/// Secrets and signing keys, S3 data), so, like etcd's, it is `0700`: created so, and an
/// existing one owned by this user is narrowed to it (a shared directory with the sticky
/// bit, such as `/tmp`, is left alone with a warning).
fn secure_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let meta = std::fs::metadata(dir)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() == me && mode & 0o1000 == 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict data directory {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), from = format!("{mode:o}"), "data directory narrowed to 0700: it holds keys and secrets");
    } else {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the data directory is readable by other users and holds keys and secrets; use a directory of your own");
    }
    Ok(())
}

/// The bootstrap key from `SPARKYARD_BOOTSTRAP_ACCESS_KEY_ID` and
/// `SPARKYARD_BOOTSTRAP_SECRET_ACCESS_KEY` (both or neither), as the Helm chart passes
/// one Secret to every replica.
fn given_bootstrap_key() -> anyhow::Result<Option<sparkyard_aws::auth::AccessKey>> {
    let id = std::env::var("SPARKYARD_BOOTSTRAP_ACCESS_KEY_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("SPARKYARD_BOOTSTRAP_SECRET_ACCESS_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(sparkyard_aws::auth::AccessKey {
            access_key_id,
            secret_access_key,
        })),
        (None, None) => Ok(None),
        _ => anyhow::bail!(
            "SPARKYARD_BOOTSTRAP_ACCESS_KEY_ID and SPARKYARD_BOOTSTRAP_SECRET_ACCESS_KEY go together: set both or neither"
        ),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// `--cluster-only`: no AWS endpoint; `listen` answers `/healthz` so supervisors (and the
/// test harness) can tell the cluster is up.
async fn serve_cluster_only(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(%listen, "serving the embedded cluster only");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
