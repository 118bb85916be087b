//! What the usage sampler (`crate::stats`) needs of this pod: which containers run now and
//! the pid of each one's sandbox, the root of its process tree. Reported after every
//! status change (`publish`); the pod is forgotten when its worker ends.

use super::Worker;
use crate::stats::{RunningContainer, RunningPod};

impl Worker {
    pub(super) fn report_usage(&self) {
        let containers = self
            .slots
            .iter()
            .filter_map(|slot| {
                let proc = slot.proc.as_ref()?;
                Some(RunningContainer {
                    name: slot.view.name.clone(),
                    pid: proc.pid,
                    container_id: proc.container_id.clone(),
                    image: slot.spec["image"].as_str().unwrap_or("").to_string(),
                    started_at: proc.started_at.clone(),
                })
            })
            .collect();
        self.k.stats.report(RunningPod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            node: self.node().to_string(),
            start_time: self.start_time.clone(),
            containers,
        });
    }
}
