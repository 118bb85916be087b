//! The single writer thread, its group commit, and the revision numbering both backends
//! share.

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::{Batch, Op, Revision, StoreError};

/// Upper bound on batches per transaction, so one huge burst cannot delay every ack.
const MAX_GROUP: usize = 4096;

pub(crate) struct Request {
    pub batch: Batch,
    /// `commit_if_unchanged`: apply only if the store is at this revision.
    pub expect: Option<Revision>,
    pub ack: Ack,
}

/// Where a request's outcome goes: `commit`/`enqueue` want `()`, a conditional commit the
/// revision reached.
pub(crate) enum Ack {
    Done(oneshot::Sender<Result<(), StoreError>>),
    Revision(oneshot::Sender<Result<Revision, StoreError>>),
}

impl Ack {
    fn send(self, result: Result<Revision, StoreError>) {
        // A dropped receiver means the caller stopped waiting; the write stands regardless.
        match self {
            Ack::Done(tx) => {
                let _ = tx.send(result.map(|_| ()));
            }
            Ack::Revision(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// A batch and the revision it expects, as handed to a backend.
pub(crate) type Entry<'a> = (&'a Batch, Option<Revision>);

/// A backend's write side.
pub(crate) trait Target: Send + 'static {
    /// Applies `group` in one transaction with [`assign`]. `Err`: nothing committed, or
    /// (see [`StoreError::rolled_back`]) the outcome is unknown.
    fn apply(
        &mut self,
        group: &[Entry<'_>],
    ) -> Result<Vec<Result<Revision, StoreError>>, StoreError>;
}

/// Numbers the operations of `group` from `start + 1` on, calling `write(op, revision)`
/// for each; `write` says whether the op changed anything (a delete of an absent document
/// does not, and takes no revision). A batch that expects another revision than the one
/// reached so far is skipped with a conflict; its neighbours still apply. Returns the last
/// revision handed out and each batch's outcome (the revision after it).
pub(crate) fn assign(
    start: Revision,
    group: &[Entry<'_>],
    mut write: impl FnMut(&Op, Revision) -> Result<bool, StoreError>,
) -> Result<(Revision, Vec<Result<Revision, StoreError>>), StoreError> {
    let mut rev = start;
    let mut results = Vec::with_capacity(group.len());
    for (batch, expect) in group {
        if let Some(expected) = *expect {
            if expected != rev {
                results.push(Err(StoreError::Conflict {
                    expected,
                    current: rev,
                }));
                continue;
            }
        }
        for op in &batch.ops {
            if write(op, rev + 1)? {
                rev += 1;
            }
        }
        results.push(Ok(rev));
    }
    Ok((rev, results))
}

/// Starts the writer thread. `connect` runs on it (a PostgreSQL client must live on the
/// thread that uses it); its error is returned here.
pub(crate) fn spawn<T: Target>(
    connect: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<mpsc::Sender<Request>, StoreError> {
    let (tx, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || match connect() {
            Ok(target) => {
                let _ = ready_tx.send(Ok(()));
                run(target, rx)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|e| StoreError::Write(format!("cannot start the writer thread: {e}")))?;
    ready_rx.recv().map_err(|_| StoreError::WriterGone)??;
    Ok(tx)
}

fn run(mut target: impl Target, rx: mpsc::Receiver<Request>) {
    // Blocks until work arrives; ends when every Store handle (and its Sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(req) => group.push(req),
                Err(_) => break,
            }
        }
        let entries: Vec<Entry<'_>> = group.iter().map(|r| (&r.batch, r.expect)).collect();
        match target.apply(&entries) {
            Ok(results) => {
                for (req, result) in group.into_iter().zip(results) {
                    req.ack.send(result);
                }
            }
            Err(err) if group.len() == 1 => {
                let _ = group.pop().map(|r| r.ack.send(Err(err)));
            }
            Err(err) if err.rolled_back() => {
                // One bad batch must not fail its neighbours: retry each on its own.
                for req in group {
                    let result = target
                        .apply(&[(&req.batch, req.expect)])
                        .and_then(|mut r| r.pop().ok_or(StoreError::WriterGone)?);
                    req.ack.send(result);
                }
            }
            Err(err) => {
                // The connection broke: the group may or may not have committed, so a
                // retry could apply it twice. Everyone is told it failed; callers reload.
                let message = err.to_string();
                for req in group {
                    req.ack.send(Err(StoreError::Write(message.clone())));
                }
            }
        }
    }
}
