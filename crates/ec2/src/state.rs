//! What survives a restart: instances and groups, as one JSON file replaced atomically
//! (written beside it, fsynced, renamed over it, directory fsynced), so a `kill -9` at
//! any point leaves either the old state or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{Ec2Error, GroupSpec, Instance, InstanceState};

/// How long terminated instances stay visible (EC2 shows them for about an hour).
const TERMINATED_RETENTION_MINUTES: i64 = 60;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    pub spec: Option<GroupSpec>,
    /// `delete_group` was called.
    #[serde(default)]
    pub deleting: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub instances: BTreeMap<String, Instance>,
    pub groups: BTreeMap<String, Group>,
}

impl State {
    pub fn load(path: &Path) -> Result<State, Ec2Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(err(path, e)),
        }
    }

    pub fn save(&mut self, path: &Path) -> Result<(), Ec2Error> {
        let horizon = Utc::now() - Duration::minutes(TERMINATED_RETENTION_MINUTES);
        self.instances
            .retain(|_, i| i.state != InstanceState::Terminated || i.state_changed_at > horizon);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| err(path, e))?;
        write_atomically(path, &bytes).map_err(|e| err(path, e))
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> Ec2Error {
    Ec2Error::State {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable only once the directory is.
    if let Some(dir) = dir {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ec2/state.json");
        assert!(State::load(&path).unwrap().instances.is_empty());
        let mut state = State::default();
        state.groups.insert(
            "g".into(),
            Group {
                spec: None,
                deleting: true,
            },
        );
        state.save(&path).unwrap();
        assert!(State::load(&path).unwrap().groups["g"].deleting);
        assert!(!dir.path().join("ec2/state.json.tmp").exists());
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(State::load(&path), Err(Ec2Error::State { .. })));
    }
}
