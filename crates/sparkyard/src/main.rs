//! `sparkyard`: Amazon EMR on EKS as one open binary.

mod cli;
mod config;
mod console;
mod cost_cli;
mod cost_export;
mod ec2_cli;
mod eksctl;
mod endpoint;
mod insights;
mod jobs_cli;
mod leader;
mod nodegroups;
mod replicas;
mod serve;
mod simulate_cli;
mod spark_submit_cli;

use clap::Parser;

/// mimalloc rather than the system allocator: the API server, registry and controllers
/// copy and drop JSON objects at tens of thousands a second, and glibc's malloc spent a
/// fifth of a busy cluster's CPU in allocation, page faults and consolidation
/// (docs/benchmarks.md, the scheduler bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        cli::Command::Serve(args) => serve::run(*args).await,
        cli::Command::Fetch {
            pod_templates,
            tool_image,
            transfers,
        } => {
            sparkyard_logs::fetch::run(&transfers).await?;
            inject_fetch_into_templates(&pod_templates, &tool_image, &transfers)
        }
        cli::Command::SparkSubmit { args } => {
            let code = spark_submit_cli::run(args).await?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        cli::Command::Submit(args) => jobs_cli::submit(args).await,
        cli::Command::Runs(command) => jobs_cli::runs(command).await,
        cli::Command::Ec2(command) => ec2_cli::run(command).await,
        cli::Command::Console(args) => console::run(args),
        cli::Command::Simulate(args) => simulate_cli::run(args),
        cli::Command::Shim {
            log,
            exit_file,
            command,
        } => std::process::exit(sparkyard_cluster::kubelet::shim::main(
            &log, &exit_file, &command,
        )),
    }
}

/// The runner's part of remote inputs: after downloading, the driver and executor pod
/// templates get the same fetch step (see `sparkyard_controller::build::pod_templates`).
fn inject_fetch_into_templates(
    templates: &[std::path::PathBuf],
    tool_image: &str,
    transfers: &[String],
) -> anyhow::Result<()> {
    use anyhow::Context;
    let files: Vec<sparkyard_controller::submit::RemoteFile> = transfers
        .iter()
        .filter_map(|t| t.split_once('='))
        .map(|(uri, path)| sparkyard_controller::submit::RemoteFile {
            uri: uri.to_string(),
            local_path: path.to_string(),
        })
        .collect();
    for path in templates {
        let existing = std::fs::read_to_string(path).ok();
        let text = sparkyard_controller::build::pod_templates::with_remote_files(
            existing.as_deref(),
            tool_image,
            &files,
        )
        .with_context(|| format!("pod template {}", path.display()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("gave {} the fetch step", path.display());
    }
    Ok(())
}
