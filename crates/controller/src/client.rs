//! The kube-rs client: from a kubeconfig file, or in-cluster when sparkyard runs in a pod.
//! Nothing here knows whether the cluster is the embedded one or a real one.

use std::path::Path;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client for `kubeconfig` if that file exists; otherwise the pod's service account when
/// running inside a cluster (`KUBERNETES_SERVICE_HOST` set); otherwise an error.
pub async fn connect(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    // Both rustls crypto providers are in the dependency graph, so rustls cannot pick one by
    // itself; choosing ring here is idempotent (a later call just fails harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match kubeconfig {
        Some(path) if path.exists() => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        _ if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            Config::incluster().context("cannot use the in-cluster service account")?
        }
        Some(path) => anyhow::bail!(
            "kubeconfig {} does not exist (is the embedded cluster running, or is [controller] kubeconfig wrong?)",
            path.display()
        ),
        None => anyhow::bail!("no kubeconfig configured and not running inside a cluster"),
    };
    Client::try_from(config).context("cannot create the Kubernetes client")
}
