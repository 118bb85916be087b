//! What has been delivered for one stream of one container, on disk, so a restarted
//! sparkyard neither sends CloudWatch events twice nor loses a finished container.
//!
//! S3 needs no offset: objects are rewritten whole from the start of the output, with the
//! same names (rotation cuts are deterministic), which is idempotent.
//!
//! CloudWatch is not idempotent: a `PutLogEvents` that landed just before sparkyard was
//! killed, and before the checkpoint moved, would be sent again. So a batch is recorded as
//! *in flight* before it is sent, with the stream's upload sequence token at that moment;
//! every delivered batch moves the token (CloudWatch appends the events and counts the
//! upload in one transaction). After a restart, a token that moved means the batch landed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Output offset up to which lines are in CloudWatch.
    pub cloudwatch_offset: u64,
    /// Everything delivered; the container has exited.
    pub done: bool,
    /// The stream's upload sequence token after the last batch known delivered, when
    /// CloudWatch gives one (`nextSequenceToken`, `uploadSequenceToken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_token: Option<String>,
    /// A batch sent and not yet known delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// The checkpoint's offset once the batch is delivered.
    pub end_offset: u64,
    /// The stream's upload sequence token before the batch was sent.
    pub token_before: String,
}

/// One file per stream: `<state_dir>/<namespace>_<pod>_<uid>_<container>_<stream>.json`.
pub fn path(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
    stream: &str,
) -> PathBuf {
    state_dir.join(format!("{namespace}_{pod}_{uid}_{container}_{stream}.json"))
}

pub fn load(path: &Path) -> Checkpoint {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Written through a rename so a crash leaves the old or the new checkpoint, never half.
pub fn store(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(checkpoint)?)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "ns", "pod", "uid", "c", "stdout");
        assert_eq!(load(&p), Checkpoint::default());
        let c = Checkpoint {
            cloudwatch_offset: 42,
            done: true,
            sequence_token: Some("7".into()),
            in_flight: Some(InFlight {
                end_offset: 50,
                token_before: "7".into(),
            }),
        };
        store(&p, &c).unwrap();
        assert_eq!(load(&p), c);
    }

    #[test]
    fn checkpoints_written_before_the_in_flight_record_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "ns", "pod", "uid", "c", "stderr");
        std::fs::write(&p, br#"{"cloudwatch_offset":9,"done":false}"#).unwrap();
        assert_eq!(
            load(&p),
            Checkpoint {
                cloudwatch_offset: 9,
                ..Checkpoint::default()
            }
        );
    }
}
