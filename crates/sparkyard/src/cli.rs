use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "sparkyard",
    version,
    about = "Amazon EMR on EKS as open software"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the AWS endpoint (emr-containers) and the embedded Kubernetes cluster.
    Serve(Box<ServeArgs>),
    /// Download s3:// objects to local paths with the environment's AWS role (IRSA) and
    /// endpoint; what the runner's and Spark pods' init containers run.
    Fetch {
        /// A driver or executor pod template (fetched or not) to give this same fetch step,
        /// so Spark's pods get the inputs too; created when missing. Repeatable.
        #[arg(long = "pod-template", value_name = "PATH")]
        pod_templates: Vec<std::path::PathBuf>,
        /// The image of that fetch step in the pod templates.
        #[arg(long, default_value = "sparkyard/tools:latest")]
        tool_image: String,
        /// `s3://bucket/key=/local/path`, one or more.
        #[arg(required = true, value_name = "URI=PATH")]
        transfers: Vec<String>,
    },
    /// Spark's cluster-mode submission without a JVM: takes `spark-submit`'s arguments,
    /// creates the driver's Pod, Service and ConfigMaps as Spark 4.0.1 does and follows the
    /// driver; runs the real `$SPARK_HOME/bin/spark-submit` for anything it has not been
    /// proven to build (docs/job-runs.md).
    #[command(name = "spark-submit", disable_help_flag = true)]
    SparkSubmit {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start a job run from a start-job-run --cli-input-json file.
    Submit(crate::jobs_cli::SubmitArgs),
    /// List, describe and read the logs of job runs.
    #[command(subcommand)]
    Runs(crate::jobs_cli::RunsCommand),
    /// The embedded EC2 of a running server: spot interruptions.
    #[command(subcommand)]
    Ec2(crate::ec2_cli::Ec2Command),
    /// Sign in to the web console of a running server: opens (or, with --url, prints) a
    /// one-time sign-in link for the administrator, valid for five minutes.
    Console(crate::console::ConsoleArgs),
    /// Replay a job mix in virtual time on one transient EMR-on-EC2 cluster per job and on
    /// one shared EKS cluster with Karpenter; print both policies' totals and write
    /// report.md, report.html and report.json (docs/simulator.md).
    Simulate(crate::simulate_cli::SimulateArgs),
    /// The embedded cluster's container supervisor (like containerd-shim): runs one
    /// container's sandbox, writes its output to the log and its exit to `--exit-file`.
    /// Started by the kubelet; not for users.
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        exit_file: PathBuf,
        /// The sandbox command line.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the AWS endpoint (emr-containers and, later, S3/Logs/IAM/STS/EKS).
    #[arg(long, env = "SPARKYARD_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the database, keys, certificates and generated client configs.
    #[arg(long, env = "SPARKYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the emr-containers records live: `sqlite:///abs/path.db` (or a plain path) or
    /// `postgres://user:password@host:port/database` (`store-url`; default: the SQLite file
    /// `<data-dir>/sparkyard.db`).
    #[arg(long, env = "SPARKYARD_STORE_URL", value_name = "URL")]
    pub store_url: Option<String>,
    /// TOML configuration file; command-line flags win over it.
    #[arg(long, env = "SPARKYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve only the embedded Kubernetes cluster (no AWS endpoint); `--listen` then
    /// answers `GET /healthz` once the cluster is up.
    #[arg(long, conflicts_with = "no_cluster")]
    pub cluster_only: bool,
    /// An eksctl ClusterConfig (`eksctl.io/v1alpha5`): the cluster's name, region, version
    /// and tags, and its managed node groups, created at start (docs/autoscaling.md).
    #[arg(long, env = "SPARKYARD_CLUSTER_CONFIG", value_name = "FILE")]
    pub cluster_config: Option<PathBuf>,
    /// Do not start the embedded Kubernetes cluster (jobs run on an external cluster).
    #[arg(long)]
    pub no_cluster: bool,
    /// Do not run the job-run controller (API only: runs stay PENDING).
    #[arg(long)]
    pub no_controller: bool,
    /// Address of the embedded cluster's API server for host clients
    /// (`[cluster] api-listen`, default 127.0.0.1:6443).
    #[arg(long, env = "SPARKYARD_CLUSTER_LISTEN")]
    pub cluster_listen: Option<std::net::SocketAddr>,
    /// In-cluster API address pods reach as kubernetes.default.svc
    /// (`[cluster] service-address`, default 127.10.96.1:443).
    #[arg(long, env = "SPARKYARD_CLUSTER_SERVICE_ADDRESS")]
    pub cluster_service_address: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub election: LeaderElectionArgs,
}

/// Running as one of several replicas (docs/install-on-kubernetes.md): the flags and
/// defaults of kube-controller-manager's leader election.
#[derive(Args, Debug, Clone)]
pub struct LeaderElectionArgs {
    /// Elect a leader among replicas with a Lease; only the leader runs job runs and
    /// serves the API, the others pass requests to it. Needs `--no-cluster` and a shared
    /// `--store-url` (PostgreSQL).
    #[arg(long, requires = "no_cluster")]
    pub leader_elect: bool,
    /// How long a follower waits, after seeing the Lease last renewed, before taking it.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub leader_elect_lease_duration: std::time::Duration,
    /// How long a leader keeps trying to renew before it gives up (and exits).
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub leader_elect_renew_deadline: std::time::Duration,
    /// How often to try to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub leader_elect_retry_period: std::time::Duration,
    /// The Lease's name.
    #[arg(long, default_value = "sparkyard-controller")]
    pub leader_elect_resource_name: String,
    /// The Lease's namespace (in a pod: its own, from `POD_NAMESPACE`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_elect_resource_namespace: String,
    /// Where the other replicas reach this one's endpoint (default: `--listen`).
    #[arg(long, env = "SPARKYARD_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    sparkyard_karpenter::lifecycle::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as \"15s\" or \"1m\""))
}
