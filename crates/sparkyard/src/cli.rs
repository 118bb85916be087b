use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "sparkyard", version, about = "Amazon EMR on EKS as open software")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the AWS endpoint (emr-containers) and the embedded Kubernetes cluster.
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the AWS endpoint (emr-containers and, later, S3/Logs/IAM/STS/EKS).
    #[arg(long, env = "SPARKYARD_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the database, keys, certificates and generated client configs.
    #[arg(long, env = "SPARKYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file; command-line flags win over it.
    #[arg(long, env = "SPARKYARD_CONFIG")]
    pub config: Option<PathBuf>,
}
