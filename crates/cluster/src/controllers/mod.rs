//! Controllers: Job, garbage collection, namespace deletion, and the simple scheduler.

use crate::cluster::Cluster;

pub fn start(_cluster: &Cluster) -> anyhow::Result<()> {
    Ok(())
}
