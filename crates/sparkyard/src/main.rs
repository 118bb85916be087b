//! `sparkyard`: Amazon EMR on EKS as one open binary.

mod cli;
mod config;
mod endpoint;
mod jobs_cli;
mod serve;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPARKYARD_LOG")
                // s3s logs every client error (NoSuchKey, AccessDenied) at ERROR; those are
                // answers, not faults of the server.
                .unwrap_or_else(|_| "info,s3s=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Serve(args) => serve::run(args).await,
        cli::Command::Fetch { transfers } => sparkyard_logs::fetch::run(&transfers).await,
        cli::Command::Submit(args) => jobs_cli::submit(args).await,
        cli::Command::Runs(command) => jobs_cli::runs(command).await,
        cli::Command::Shim {
            log,
            exit_file,
            command,
        } => std::process::exit(sparkyard_cluster::kubelet::shim::main(
            &log, &exit_file, &command,
        )),
    }
}
