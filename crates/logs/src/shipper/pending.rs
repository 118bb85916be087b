//! Containers whose shipping has begun and not finished, on disk: one file per container,
//! `<state_dir>/pending/<uid>_<container>.json`, written before shipping starts and removed
//! when it ends. A restarted sparkyard finishes what is left (see `resume_pending`).

use std::path::{Path, PathBuf};

use super::ContainerRef;

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pending")
}

fn path(state_dir: &Path, c: &ContainerRef) -> PathBuf {
    dir(state_dir).join(format!("{}_{}.json", c.uid, c.container))
}

/// Written through a rename so a crash leaves the whole record or none.
pub(super) fn record(state_dir: &Path, c: &ContainerRef) {
    let target = path(state_dir, c);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir(state_dir))?;
        let tmp = target.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(c)?)?;
        std::fs::rename(tmp, &target)
    };
    if let Err(e) = write() {
        tracing::warn!(path = %target.display(), error = %e, "cannot record a container being shipped");
    }
}

pub(super) fn remove(state_dir: &Path, c: &ContainerRef) {
    let _ = std::fs::remove_file(path(state_dir, c));
}

/// Every complete record; unreadable ones are dropped.
pub(super) fn list(state_dir: &Path) -> Vec<ContainerRef> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(c) => found.push(c),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::PodKind;

    fn container(uid: &str) -> ContainerRef {
        ContainerRef {
            namespace: "ns".into(),
            pod: "pythonpi-exec-1".into(),
            uid: uid.into(),
            container: "spark-kubernetes-executor".into(),
            service_account: "emr-containers-sa-spark".into(),
            job_id: "0000000abc".into(),
            kind: PodKind::Spark,
            is_driver: false,
            app_id: "spark-0000000abc".into(),
        }
    }

    #[test]
    fn recorded_until_removed_and_half_written_records_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).is_empty());
        let (a, b) = (container("u1"), container("u2"));
        record(dir.path(), &a);
        record(dir.path(), &b);
        let mut listed = list(dir.path());
        listed.sort_by(|x, y| x.uid.cmp(&y.uid));
        assert_eq!(listed, [a.clone(), b.clone()]);
        remove(dir.path(), &a);
        assert_eq!(list(dir.path()), vec![b.clone()]);
        std::fs::write(dir.path().join("pending/u3_x.json"), b"{\"namespace\":").unwrap();
        std::fs::write(dir.path().join("pending/u4_x.tmp"), b"{").unwrap();
        assert_eq!(list(dir.path()), [b]);
        assert!(!dir.path().join("pending/u3_x.json").exists());
    }
}
