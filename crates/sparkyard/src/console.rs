//! The web console (crates/console): its listener, started by `serve`, and the
//! `sparkyard console` command that signs the administrator in with a one-time link.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

/// `<data-dir>/console.addr`: the address the console really listens on.
pub const ADDR_FILE: &str = "console.addr";

/// Serves the console on `[console] listen` (a taken port falls back to a free one on the
/// same IP, named in `<data-dir>/console.addr`). `aws_api` is the AWS services behind the
/// SigV4 layer (`sparkyard_services::principal_router`): the console acts through it as
/// the signed-in principal; `kube` reaches the embedded cluster's API server.
pub async fn start(
    config: &Config,
    keyring: Arc<sparkyard_aws::auth::Keyring>,
    aws_api: axum::Router,
    kube: Option<sparkyard_console::kube::KubeAccess>,
) -> anyhow::Result<()> {
    let addr_file = config.data_dir.join(ADDR_FILE);
    if !config.console.enabled {
        let _ = std::fs::remove_file(&addr_file);
        return Ok(());
    }
    let console = sparkyard_console::Console::new(
        sparkyard_console::Settings {
            data_dir: config.data_dir.clone(),
            region: config.region.clone(),
            config: config.console.clone(),
            kube,
            cluster_name: config.services.cluster_name.clone(),
            history_url: config.history.enabled.then(|| config.history.base_url()),
        },
        keyring,
        aws_api,
    )
    .context("cannot prepare the console's directory")?;
    let wanted = config.console.listen;
    let listener = match tokio::net::TcpListener::bind(wanted).await {
        Ok(l) => l,
        Err(e) => {
            let any = std::net::SocketAddr::new(wanted.ip(), 0);
            let l = tokio::net::TcpListener::bind(any)
                .await
                .with_context(|| format!("cannot listen on {wanted} ([console] listen)"))?;
            tracing::warn!(%wanted, error = %e, got = %l.local_addr()?, "console port taken; using another");
            l
        }
    };
    let bound = listener.local_addr()?;
    std::fs::write(&addr_file, bound.to_string()).context("cannot write console.addr")?;
    let app = console.router();
    tracing::info!(address = %format!("http://{bound}"), "serving the web console (`sparkyard console` signs you in)");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the console listener stopped");
        }
    });
    Ok(())
}

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Print the sign-in link instead of opening it in a browser.
    #[arg(long)]
    pub url: bool,
    #[command(flatten)]
    pub server: crate::jobs_cli::ServerArgs,
}

/// `sparkyard console`: a one-time sign-in link for the administrator of the server
/// whose data directory this is, valid for five minutes.
pub fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let config = crate::jobs_cli::server_config(&args.server)?;
    let addr_file = config.data_dir.join(ADDR_FILE);
    let addr = std::fs::read_to_string(&addr_file).with_context(|| {
        format!(
            "no console address in {} — is `sparkyard serve --data-dir {}` running with the console enabled?",
            addr_file.display(),
            config.data_dir.display()
        )
    })?;
    let token = sparkyard_console::links::issue(&config.data_dir, chrono::Utc::now())
        .with_context(|| {
            format!(
                "cannot write a sign-in link under {}",
                sparkyard_console::links::dir(&config.data_dir).display()
            )
        })?;
    let url = format!("http://{}/signin/link?token={token}", addr.trim());
    if args.url || !open_in_browser(&url) {
        println!("{url}");
        if !args.url {
            eprintln!("Open this link in a browser to sign in (it works once, within 5 minutes).");
        }
    } else {
        eprintln!("Opened the console in your browser (the link works once, within 5 minutes).");
    }
    Ok(())
}

/// `xdg-open` (Linux) or `open` (macOS); false when neither could start.
fn open_in_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
