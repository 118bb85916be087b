//! The kubelet: runs each container of a scheduled pod as a sandboxed host process.

use crate::cluster::Cluster;

pub fn start(_cluster: &Cluster) -> anyhow::Result<()> {
    Ok(())
}
