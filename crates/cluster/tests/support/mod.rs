//! Helpers the cluster crate's integration tests share.
#![allow(dead_code)]

use sparkyard_cluster::Cluster;

/// A number that differs between test processes and runs: picks loopback ranges so that
/// clusters of tests running side by side do not collide.
pub fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ (std::process::id() << 8)
}

/// A kube-rs client for the cluster's admin kubeconfig.
pub async fn kube_client(cluster: &Cluster) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&cluster.kubeconfig_path).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}
