//! The kill test: a child process (this test binary, running [`burst_child`]) commits a
//! burst of batches from several tasks and prints each id once its commit returned; the
//! parent waits for enough acknowledgements on the child's stdout, `kill -9`s it mid-burst
//! and reopens the store: every acknowledged id must be there, exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use super::{put, Db};
use crate::Store;

/// The store URL the child writes to; unset in a normal run, where the child does nothing.
const CHILD_ENV: &str = "SPARKYARD_STORE_KILL_CHILD_URL";
const KIND: &str = "burst";
/// Acknowledgements to wait for before the kill: enough that group commit is in full swing.
const ACKS_BEFORE_KILL: usize = 300;

pub(super) async fn kill_9_loses_no_acknowledged_write(db: Db) {
    // Create the schema first, so the child is mid-burst (not mid-migration) when killed.
    drop(db.open());
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::kill::burst_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        match lines.next() {
            Some(line) => {
                if let Some(id) = line.unwrap().strip_prefix("ack ") {
                    acked.push(id.to_string());
                }
            }
            None => {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("the child stopped after {} acks:\n{err}", acked.len());
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements printed before the kill but not read yet count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ack ") {
            acked.push(id.to_string());
        }
    }

    let store = db.open();
    let stored = store.scan(KIND).unwrap();
    let stored_ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    for id in &acked {
        let n = stored_ids.iter().filter(|s| *s == id).count();
        assert_eq!(n, 1, "acknowledged id {id} is stored {n} times");
        let body = store.get(KIND, id).unwrap();
        assert_eq!(body, Some(serde_json::to_string(id).unwrap()), "{id}");
    }
    // The revisions survived in order: one per document, no number twice, and the
    // store's revision is the newest.
    let changes = store.changes_since(0).unwrap();
    assert_eq!(changes.len(), stored.len());
    assert!(changes.windows(2).all(|w| w[0].revision < w[1].revision));
    assert_eq!(
        store.revision().unwrap(),
        changes.last().map_or(0, |c| c.revision)
    );
    let unique: HashSet<&str> = acked.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), acked.len(), "an id was acknowledged twice");
    assert!(stored.len() >= acked.len());
}

/// The child must not outlive a failed assertion (it would write forever).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of kill_9_loses_no_acknowledged_write"]
async fn burst_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::connect(&url).unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("{task}-{i:06}");
                store.commit(put(KIND, &id, &id)).await.unwrap();
                // One write per line, flushed: the parent counts only what it read.
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {id}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
