//! `sparkyard submit` and `sparkyard runs …`: job runs for people.
//!
//! These commands are clients of a running `sparkyard serve`: they call its AWS endpoint
//! (emr-containers, SigV4-signed with the profile the server wrote into its data directory)
//! and, for logs, its Kubernetes API — never the database, which belongs to the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::Config;

/// Where the server is: the same `--data-dir` / `--config` as `sparkyard serve`.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's data directory (its AWS profile and kubeconfig live there).
    #[arg(long, env = "SPARKYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML configuration file (for `[controller] kubeconfig`).
    #[arg(long, env = "SPARKYARD_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// A StartJobRun request as `aws emr-containers start-job-run --cli-input-json` takes it.
    pub file: PathBuf,
    /// Follow the run until it ends; exit 0 only if it COMPLETED.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Job runs, newest first.
    List {
        #[arg(long)]
        virtual_cluster_id: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// One job run, as DescribeJobRun returns it.
    Describe {
        id: String,
        #[arg(long)]
        virtual_cluster_id: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The Spark driver's log, read through the Kubernetes API.
    Logs {
        id: String,
        #[arg(long)]
        virtual_cluster_id: Option<String>,
        /// Keep printing as the driver writes.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// What a run cost (its pods' vCPU and GB-hours, EC2 share and EMR on EKS charge), or
    /// with no id, the runs of a virtual cluster (or all) since a time, and their totals.
    Cost(crate::cost_cli::CostArgs),
    /// The run's Spark UI in the Spark History Server (the application id is the one Spark
    /// chose, read from the driver pod's `spark-app-selector` label).
    Ui {
        id: String,
        #[arg(long)]
        virtual_cluster_id: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl RunsCommand {
    fn server(&self) -> &ServerArgs {
        match self {
            RunsCommand::List { server, .. }
            | RunsCommand::Describe { server, .. }
            | RunsCommand::Logs { server, .. }
            | RunsCommand::Ui { server, .. } => server,
            RunsCommand::Cost(args) => &args.server,
        }
    }
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let config = server_config(&args.server)?;
    let api = EmrClient::new(&config.data_dir)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut request: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let body = request
        .as_object_mut()
        .context("the request must be a JSON object")?;
    let vc = body
        .remove("virtualClusterId")
        .and_then(|v| v.as_str().map(str::to_string))
        .context("the request has no virtualClusterId")?;
    // As the AWS CLI does: an idempotency token when none is given.
    body.entry("clientToken")
        .or_insert_with(|| json!(format!("sparkyard-{}", unique_suffix())));
    let started = api
        .call(
            "POST",
            &format!("/virtualclusters/{vc}/jobruns"),
            Some(&request),
        )
        .await?;
    let id = started["id"]
        .as_str()
        .context("no id in the response")?
        .to_string();
    if !args.wait {
        println!("{}", serde_json::to_string_pretty(&started)?);
        return Ok(());
    }
    println!("job run {id} on virtual cluster {vc}");
    let run = wait(&api, &vc, &id).await?;
    let state = run["state"].as_str().unwrap_or_default();
    println!("final state: {state}");
    if let Some(details) = run["stateDetails"].as_str() {
        println!("details:     {details}");
    }
    if let Some(reason) = run["failureReason"].as_str() {
        println!("reason:      {reason}");
    }
    for line in log_locations(&run) {
        println!("logs:        {line}");
    }
    println!("driver log:  sparkyard runs logs {id}");
    let namespace = api.namespace_of(&run).await?;
    match spark_ui(&config, &namespace, &id).await {
        Ok(url) => println!("spark ui:    {url}"),
        Err(e) => println!("spark ui:    none ({e:#})"),
    }
    if state != "COMPLETED" {
        std::process::exit(1);
    }
    Ok(())
}

/// Polls DescribeJobRun, printing each new state with the time since submission.
async fn wait(api: &EmrClient, vc: &str, id: &str) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let run = api.describe_run(vc, id).await?;
        let state = run["state"].as_str().unwrap_or("?").to_string();
        if state != last {
            let attempt = run["retryPolicyExecution"]["currentAttemptCount"]
                .as_u64()
                .map(|n| format!(" (attempt {n})"))
                .unwrap_or_default();
            println!("{:>6}s  {state}{attempt}", started.elapsed().as_secs());
            last = state.clone();
        }
        if matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED") {
            return Ok(run);
        }
        // Often enough to show SUBMITTED, which natively submitted runs leave within a
        // second or two; a state shorter than this is not printed.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn log_locations(run: &Value) -> Vec<String> {
    let monitoring = &run["configurationOverrides"]["monitoringConfiguration"];
    let (id, vc) = (
        run["id"].as_str().unwrap_or_default(),
        run["virtualClusterId"].as_str().unwrap_or_default(),
    );
    let mut out = Vec::new();
    if let Some(uri) = monitoring["s3MonitoringConfiguration"]["logUri"].as_str() {
        out.push(format!(
            "{}/{vc}/jobs/{id}/containers/",
            uri.trim_end_matches('/')
        ));
    }
    if let Some(group) = monitoring["cloudWatchMonitoringConfiguration"]["logGroupName"].as_str() {
        let prefix = monitoring["cloudWatchMonitoringConfiguration"]["logStreamNamePrefix"]
            .as_str()
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        out.push(format!(
            "CloudWatch Logs {group}, streams {prefix}{vc}/jobs/{id}/containers/…"
        ));
    }
    out
}

pub async fn runs(command: RunsCommand) -> anyhow::Result<()> {
    let config = server_config(command.server())?;
    let api = EmrClient::new(&config.data_dir)?;
    match command {
        RunsCommand::List {
            virtual_cluster_id, ..
        } => {
            let vcs = match virtual_cluster_id {
                Some(vc) => vec![vc],
                None => api.virtual_cluster_ids().await?,
            };
            let mut runs = Vec::new();
            for vc in vcs {
                runs.extend(api.job_runs(&vc).await?);
            }
            runs.sort_by(|a, b| b["id"].as_str().cmp(&a["id"].as_str()));
            println!(
                "{:<19}  {:<25}  {:<14}  {:<20}  NAME",
                "ID", "VIRTUAL CLUSTER", "STATE", "CREATED"
            );
            for run in runs {
                println!(
                    "{:<19}  {:<25}  {:<14}  {:<20}  {}",
                    run["id"].as_str().unwrap_or_default(),
                    run["virtualClusterId"].as_str().unwrap_or_default(),
                    run["state"].as_str().unwrap_or_default(),
                    run["createdAt"].as_str().unwrap_or_default(),
                    run["name"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        RunsCommand::Describe {
            id,
            virtual_cluster_id,
            ..
        } => {
            let run = api.find_run(&id, virtual_cluster_id.as_deref()).await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
            Ok(())
        }
        RunsCommand::Logs {
            id,
            virtual_cluster_id,
            follow,
            ..
        } => {
            let namespace = api
                .run_namespace(&id, virtual_cluster_id.as_deref())
                .await?;
            driver_logs(&config, &namespace, &id, follow).await
        }
        RunsCommand::Cost(args) => crate::cost_cli::run(&api, args).await,
        RunsCommand::Ui {
            id,
            virtual_cluster_id,
            ..
        } => {
            let namespace = api
                .run_namespace(&id, virtual_cluster_id.as_deref())
                .await?;
            println!("{}", spark_ui(&config, &namespace, &id).await?);
            Ok(())
        }
    }
}

/// The run's newest driver pod (with retries there is one per attempt).
async fn newest_driver(
    config: &Config,
    namespace: &str,
    id: &str,
) -> anyhow::Result<(
    kube::Api<k8s_openapi::api::core::v1::Pod>,
    k8s_openapi::api::core::v1::Pod,
)> {
    use kube::api::{Api, ListParams};
    let kubeconfig = kubeconfig_path(config);
    let client = sparkyard_controller::client::connect(Some(&kubeconfig)).await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, namespace);
    let selector = format!(
        "{}={id},spark-role=driver",
        sparkyard_controller::build::LABEL_JOB_ID
    );
    let mut drivers = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    drivers.sort_by_key(|p| p.metadata.creation_timestamp.clone());
    let Some(driver) = drivers.pop() else {
        bail!("job run {id} has no driver pod in namespace {namespace} (not started yet, or cancelled)");
    };
    Ok((pods, driver))
}

/// The History Server page of the run's Spark application.
async fn spark_ui(config: &Config, namespace: &str, id: &str) -> anyhow::Result<String> {
    let history = &config.history;
    if !history.enabled {
        bail!("the persistent app UI is off ([history] enabled = false)");
    }
    let (_, driver) = newest_driver(config, namespace, id).await?;
    let app = driver
        .metadata
        .labels
        .unwrap_or_default()
        .remove("spark-app-selector")
        .context("the driver pod has no spark-app-selector label")?;
    Ok(sparkyard_logs::event_log::history_url(
        &history.base_url(),
        &app,
    ))
}

/// Prints the newest driver pod's log.
async fn driver_logs(
    config: &Config,
    namespace: &str,
    id: &str,
    follow: bool,
) -> anyhow::Result<()> {
    use futures::{AsyncBufReadExt, TryStreamExt};
    use kube::api::LogParams;

    let (pods, driver) = newest_driver(config, namespace, id).await?;
    let name = driver.metadata.name.unwrap_or_default();
    eprintln!("# {namespace}/{name}");
    let params = LogParams {
        follow,
        container: Some(sparkyard_controller::update_status::DRIVER_CONTAINER.to_string()),
        ..LogParams::default()
    };
    let mut lines = pods.log_stream(&name, &params).await?.lines();
    while let Some(line) = lines.try_next().await? {
        println!("{line}");
    }
    Ok(())
}

/// `[controller] kubeconfig` of the server's configuration, else the embedded cluster's.
fn kubeconfig_path(config: &Config) -> PathBuf {
    config
        .controller
        .kubeconfig
        .clone()
        .unwrap_or_else(|| config.data_dir.join("cluster/kubeconfig"))
}

/// The server's configuration, read the way `sparkyard serve` reads it. Each command reads
/// it once and passes it on.
pub(crate) fn server_config(server: &ServerArgs) -> anyhow::Result<Config> {
    use clap::Parser;
    let mut argv = vec!["sparkyard".to_string(), "serve".to_string()];
    if let Some(dir) = &server.data_dir {
        argv.extend(["--data-dir".into(), dir.display().to_string()]);
    }
    if let Some(file) = &server.config {
        argv.extend(["--config".into(), file.display().to_string()]);
    }
    match crate::cli::Cli::try_parse_from(argv)?.command {
        crate::cli::Command::Serve(args) => Config::load(&args),
        _ => unreachable!("parsed a serve command"),
    }
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{:x}", std::process::id())
}

/// A SigV4-signing client for the server's AWS endpoint (emr-containers, and the
/// query-protocol services through [`EmrClient::send`]).
pub(crate) struct EmrClient {
    endpoint: String,
    region: String,
    identity: aws_smithy_runtime_api::client::identity::Identity,
    http: reqwest::Client,
}

impl EmrClient {
    /// The client of the server whose data directory (with its AWS profile) is `data_dir`.
    pub(crate) fn new(data_dir: &Path) -> anyhow::Result<Self> {
        let aws = data_dir.join("aws");
        let credentials = read_ini(&aws.join("credentials"))?;
        let config = read_ini(&aws.join("config"))?;
        let profile = credentials.get("sparkyard").with_context(|| {
            format!(
                "no [sparkyard] profile in {} — has `sparkyard serve --data-dir {}` run?",
                aws.join("credentials").display(),
                data_dir.display()
            )
        })?;
        let settings = config.get("profile sparkyard").cloned().unwrap_or_default();
        let endpoint = settings
            .get("endpoint_url")
            .cloned()
            .context("no endpoint_url in the sparkyard profile")?;
        let key = |k: &str| {
            profile
                .get(k)
                .cloned()
                .with_context(|| format!("no {k} in the sparkyard profile"))
        };
        let identity = aws_credential_types::Credentials::new(
            key("aws_access_key_id")?,
            key("aws_secret_access_key")?,
            profile.get("aws_session_token").cloned(),
            None,
            "sparkyard-cli",
        )
        .into();
        Ok(EmrClient {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: settings
                .get("region")
                .cloned()
                .unwrap_or_else(|| "us-east-1".into()),
            identity,
            http: reqwest::Client::new(),
        })
    }

    /// One signed emr-containers call; AWS errors become messages with their code.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()?
            .unwrap_or_default();
        let content_type = body.is_some().then_some("application/json");
        let (status, text) = self
            .send("emr-containers", method, path, content_type, bytes)
            .await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value["__type"]
                .as_str()
                .or(value["code"].as_str())
                .unwrap_or("Error");
            let message = value["message"]
                .as_str()
                .or(value["Message"].as_str())
                .unwrap_or(&text);
            bail!("{code}: {message}");
        }
        Ok(value)
    }

    /// One request signed for `service`; the status and body as they came.
    pub(crate) async fn send(
        &self,
        service: &str,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use aws_sigv4::sign::v4;

        let url = format!("{}{path}", self.endpoint);
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = match content_type {
            Some(t) => vec![("content-type", t)],
            None => Vec::new(),
        };
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(&bytes),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(bytes.clone())?;
        for (name, value) in &headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_str(value)?);
        }
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request)?;
        let response = self.http.execute(request).await.with_context(|| {
            format!(
                "cannot reach sparkyard at {} — is `sparkyard serve` running?",
                self.endpoint
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, text))
    }

    /// Every page of a List call; `path` may carry a query of its own.
    pub(crate) async fn paginate(&self, path: &str, key: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let join = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = match &token {
                Some(t) => format!("{path}{join}nextToken={}", urlencode(t)),
                None => path.to_string(),
            };
            let page = self.call("GET", &url, None).await?;
            out.extend(page[key].as_array().cloned().unwrap_or_default());
            match page["nextToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) async fn virtual_cluster_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .paginate("/virtualclusters", "virtualClusters")
            .await?
            .iter()
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect())
    }

    async fn job_runs(&self, vc: &str) -> anyhow::Result<Vec<Value>> {
        self.paginate(&format!("/virtualclusters/{vc}/jobruns"), "jobRuns")
            .await
    }

    /// DescribeJobRun: the run's `jobRun`.
    async fn describe_run(&self, vc: &str, id: &str) -> anyhow::Result<Value> {
        let found = self
            .call("GET", &format!("/virtualclusters/{vc}/jobruns/{id}"), None)
            .await?;
        Ok(found["jobRun"].clone())
    }

    /// DescribeJobRun, looking the virtual cluster up when it is not given.
    pub(crate) async fn find_run(&self, id: &str, vc: Option<&str>) -> anyhow::Result<Value> {
        let vcs = match vc {
            Some(vc) => vec![vc.to_string()],
            None => self.virtual_cluster_ids().await?,
        };
        for vc in vcs {
            match self.describe_run(&vc, id).await {
                Ok(run) => return Ok(run),
                Err(e) if e.to_string().starts_with("ResourceNotFoundException") => continue,
                Err(e) => return Err(e),
            }
        }
        bail!("job run {id} does not exist")
    }

    /// The namespace of run `id`'s virtual cluster, finding the run as [`Self::find_run`] does.
    async fn run_namespace(&self, id: &str, vc: Option<&str>) -> anyhow::Result<String> {
        let run = self.find_run(id, vc).await?;
        self.namespace_of(&run).await
    }

    /// The namespace of the run's virtual cluster (DescribeVirtualCluster).
    async fn namespace_of(&self, run: &Value) -> anyhow::Result<String> {
        let vc = run["virtualClusterId"].as_str().unwrap_or_default();
        let vc = self
            .call("GET", &format!("/virtualclusters/{vc}"), None)
            .await?;
        Ok(
            vc["virtualCluster"]["containerProvider"]["info"]["eksInfo"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        )
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The AWS CLI's INI files: `[section]` and `key = value` lines.
fn read_ini(path: &Path) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(out)
}
