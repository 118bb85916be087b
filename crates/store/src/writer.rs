//! The single writer thread and its group commit.

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Batch, Op, StoreError};

/// Upper bound on batches per transaction, so one huge burst cannot delay every ack.
const MAX_GROUP: usize = 4096;

pub(crate) struct Request {
    pub batch: Batch,
    pub ack: oneshot::Sender<Result<(), StoreError>>,
}

pub(crate) fn spawn(conn: Connection) -> Result<mpsc::Sender<Request>, StoreError> {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(conn, rx))
        .map_err(|e| StoreError::Write(format!("cannot start the writer thread: {e}")))?;
    Ok(tx)
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Request>) {
    // Blocks until work arrives; ends when every Store handle (and its Sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(req) => group.push(req),
                Err(_) => break,
            }
        }
        match apply(&mut conn, group.iter().map(|r| &r.batch)) {
            Ok(()) => {
                for req in group {
                    let _ = req.ack.send(Ok(()));
                }
            }
            Err(err) if group.len() == 1 => {
                let _ = group.pop().map(|r| r.ack.send(Err(err)));
            }
            Err(_) => {
                // One bad batch must not fail its neighbours: retry each on its own.
                for req in group {
                    let res = apply(&mut conn, std::iter::once(&req.batch));
                    let _ = req.ack.send(res);
                }
            }
        }
    }
}

fn apply<'a>(
    conn: &mut Connection,
    batches: impl Iterator<Item = &'a Batch>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO docs (kind, id, body, updated_at) VALUES (?1, ?2, ?3, CAST(strftime('%s','now') AS INTEGER))
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM docs WHERE kind = ?1 AND id = ?2")?;
        for batch in batches {
            for op in &batch.ops {
                match op {
                    Op::Put { kind, id, body } => {
                        put.execute((kind, id, body))?;
                    }
                    Op::Delete { kind, id } => {
                        del.execute((kind, id))?;
                    }
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}
