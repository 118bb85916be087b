//! A server started from an eksctl ClusterConfig (node groups, Karpenter tests).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{free_port, Server};

pub const CLUSTER: &str = "eks-emr-cluster";

/// The seed's step 3 cluster, with simulated nodes (no pod here needs a process).
pub fn cluster_config(dir: &Path, group: &str) -> PathBuf {
    let path = dir.join("cluster.yaml");
    let text = format!(
        "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  name: {CLUSTER}\n  region: us-east-2\n  version: \"1.32\"\n  tags:\n    karpenter.sh/discovery: {CLUSTER}\niam:\n  withOIDC: true\nmanagedNodeGroups:\n{group}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub const SEED_GROUP: &str = "  - name: eks-emr-cluster-ng\n    instanceType: m5.2xlarge\n    desiredCapacity: 1\n    minSize: 1\n    maxSize: 10\n    tags:\n      sparkyard.dev/simulated: \"true\"\n";

/// A loopback in-cluster address no other test uses.
pub fn service_address() -> String {
    let n = uuid::Uuid::new_v4().as_bytes()[0] as u32 + std::process::id();
    format!("127.13.{}.{}:0", (n >> 8) % 250 + 1, n % 250 + 1)
}

pub fn start(config: &Path) -> Server {
    let listen = format!("127.0.0.1:{}", free_port());
    let service = service_address();
    Server::start_with(&[
        "--cluster-listen",
        &listen,
        "--cluster-service-address",
        &service,
        "--cluster-config",
        config.to_str().unwrap(),
    ])
}

pub fn kubeconfig(s: &Server) -> PathBuf {
    s.data_dir.path().join("cluster/kubeconfig")
}

/// Polls until `check` gives a value; each look reads state, nothing waits on a timer
/// for its own sake. The bound only turns a hang into a failure with the server's log.
pub fn until<T>(s: &Server, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > Duration::from_secs(180) {
            panic!("{what} never happened; server log:\n{}", s.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
