//! Durable records in an embedded SQLite database.
//!
//! The store is deliberately domain-neutral: it keeps JSON documents addressed by
//! `(kind, id)` and knows nothing about virtual clusters or job runs. The `emr` crate owns
//! the meaning of every document; the store owns only durability and ordering.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a committed
//! transaction has been fsynced before [`Store::commit`] returns. Callers acknowledge a
//! request to their client only after `commit` returned `Ok`, so every acknowledged write
//! survives `kill -9` (and power loss, as far as the disk honours fsync).
//!
//! Throughput: one fsync per request would cap us at a few hundred writes per second. A
//! single writer thread therefore drains every queued [`Batch`] and commits them together
//! in one transaction ("group commit"); each caller awaits its own acknowledgement on a
//! oneshot channel. Under load, batches grow and the fsync cost is shared.

mod migrations;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use migrations::SCHEMA_VERSION;

/// Errors the store reports. Everything is an I/O-ish failure from the caller's view.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot encode document: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "the database at {path} has schema version {found}, newer than this binary's {supported}"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("write failed: {0}")]
    Write(String),
    #[error("the store's writer thread has stopped")]
    WriterGone,
}

/// One change inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace the document `(kind, id)`.
    Put {
        kind: String,
        id: String,
        body: String,
    },
    /// Remove the document `(kind, id)`, if present.
    Delete { kind: String, id: String },
}

/// A set of changes applied atomically: either all of them are durable or none is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` serialized as JSON.
    pub fn put<T: serde::Serialize>(
        &mut self,
        kind: &str,
        id: &str,
        value: &T,
    ) -> Result<&mut Self, StoreError> {
        let body = serde_json::to_string(value)?;
        self.ops.push(Op::Put {
            kind: kind.into(),
            id: id.into(),
            body,
        });
        Ok(self)
    }

    pub fn delete(&mut self, kind: &str, id: &str) -> &mut Self {
        self.ops.push(Op::Delete {
            kind: kind.into(),
            id: id.into(),
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

struct Inner {
    path: PathBuf,
    /// Queue to the writer thread. `std::sync::mpsc` because the writer is a plain thread.
    writes: Mutex<mpsc::Sender<writer::Request>>,
    /// Reads use their own connection; WAL lets them run beside the writer.
    reader: Mutex<Connection>,
}

/// Handle to the database; cheap to clone, all clones share one writer thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL: readers do not block the writer; FULL: the WAL is fsynced at every commit,
    // which is what makes an acknowledged write survive a crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to
    /// [`SCHEMA_VERSION`] and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer_conn = Connection::open(path)?;
        configure(&writer_conn)?;
        migrations::migrate(&mut writer_conn, path)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&reader)?;
        let sender = writer::spawn(writer_conn)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writes: Mutex::new(sender),
                reader: Mutex::new(reader),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies `batch` atomically and returns once it is durable (committed and fsynced).
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rx = self.enqueue(batch)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `batch` and returns the receiver of its acknowledgement. Writes are applied
    /// in the order they were queued, so a caller that queues while holding its own lock
    /// gets the same order on disk as in memory.
    pub fn enqueue(
        &self,
        batch: Batch,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = self.inner.writes.lock().unwrap_or_else(|e| e.into_inner());
        sender
            .send(writer::Request { batch, ack: tx })
            .map_err(|_| StoreError::WriterGone)?;
        Ok(rx)
    }

    /// Every document of `kind`, ordered by id.
    pub fn scan(&self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.inner.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt =
            conn.prepare_cached("SELECT id, body FROM docs WHERE kind = ?1 ORDER BY id")?;
        let rows = stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every document of `kind`, decoded from JSON.
    pub fn scan_as<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.scan(kind)?
            .into_iter()
            .map(|(_, body)| serde_json::from_str(&body).map_err(StoreError::from))
            .collect()
    }

    /// One document, if present.
    pub fn get(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.inner.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached("SELECT body FROM docs WHERE kind = ?1 AND id = ?2")?;
        let mut rows = stmt.query([kind, id])?;
        match rows.next()? {
            Some(row) => Ok(Some(row.get(0)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
