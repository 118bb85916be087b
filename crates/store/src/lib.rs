//! Durable records in SQLite (one machine) or PostgreSQL (shared between replicas).
//!
//! Owns: the documents' durability, their order (revisions), the schema and its
//! migrations, and the choice of backend by URL ([`Location`]). Must not touch: HTTP, or
//! the meaning of any document. Entry points: [`Store::open`] (a SQLite file),
//! [`Store::connect`] (`sqlite:///abs/path`, a plain path, or `postgres://…`), then
//! [`Store::commit`]/[`Store::enqueue`]/[`Store::commit_if_unchanged`] to write and
//! [`Store::get`]/[`Store::scan`]/[`Store::revision`]/[`Store::changes_since`] to read.
//! [`testing::TestPostgres`] starts a throwaway PostgreSQL for tests (this crate's and
//! others').
//!
//! The store is deliberately domain-neutral: it keeps JSON documents addressed by
//! `(kind, id)` and knows nothing about virtual clusters or job runs. The `emr` crate owns
//! the meaning of every document; the store owns only durability and ordering. Both
//! backends behave the same behind the same API; one test suite runs against both.
//!
//! Durability. SQLite runs in WAL mode with `synchronous=FULL`, so a committed transaction
//! has been fsynced before [`Store::commit`] returns. On PostgreSQL, acknowledgement means
//! `COMMIT` returned: the transaction is durable as far as the server's
//! `synchronous_commit` promises (the default, `on`, flushes the WAL locally — and waits for
//! synchronous standbys when `synchronous_standby_names` names any, which is what makes a
//! failover lose nothing). Callers acknowledge a request to their client only after
//! `commit` returned `Ok`, so every acknowledged write survives `kill -9` of sparkyard and
//! a crash of the database server. A write whose connection broke during `COMMIT` is
//! reported as failed although it may have committed; callers (emr) reload from the store
//! after any failed write, so memory never disagrees with the database.
//!
//! Throughput: one fsync per request would cap us at a few hundred writes per second. A
//! single writer thread therefore drains every queued [`Batch`] and commits them together
//! in one transaction ("group commit"); each caller awaits its own acknowledgement on a
//! oneshot channel. Under load, batches grow and the fsync cost is shared.
//!
//! Revisions (for replicas). Every put and every delete of a present document gets the
//! next store-wide revision (strictly increasing, never reused). Each document row carries
//! the revision of its last change; a delete leaves a tombstone row (`body` NULL) instead of
//! removing the row, so [`Store::changes_since`] reports deletes too. Tombstones are kept
//! for good: emr deletes little (templates, security configurations), and a replica can
//! then catch up from any revision without a full reload. Writers are serialised — SQLite
//! by `BEGIN IMMEDIATE`, PostgreSQL by `pg_advisory_xact_lock` taken first in every write
//! transaction — so revisions commit in order and no reader sees revision N+1 before N.
//! [`Store::commit_if_unchanged`] applies a batch only if no one (this process or another
//! sharing the database) committed after the revision the caller expects.
//!
//! PostgreSQL client: the synchronous `postgres` crate rather than `tokio-postgres`
//! directly, because the writer is a plain thread draining a std channel and the sync
//! client keeps it a plain loop, the same as SQLite's. Its clients live only on threads the
//! store owns (the writer, and one reader thread that serves `get`/`scan`/… requests),
//! since the sync client must never run on a caller's tokio runtime. Connections are made
//! without TLS; `sslmode=require` is refused with a readable error (not yet supported —
//! reach a managed database through a private network or a TLS-terminating proxy).

mod location;
mod migrations;
mod pg;
mod sqlite;
pub mod testing;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::Connection;

pub use location::Location;
pub use migrations::SCHEMA_VERSION;

/// A store-wide change number: every put and delete gets the next one.
pub type Revision = i64;

/// Errors the store reports. Everything is an I/O-ish failure from the caller's view, except
/// [`StoreError::Conflict`] (a conditional commit lost a race) and the configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("cannot encode document: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("invalid store URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "the database at {path} has schema version {found}, newer than this binary's {supported}"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the store changed: it is at revision {current}, the write expected {expected}")]
    Conflict {
        expected: Revision,
        current: Revision,
    },
    #[error("write failed: {0}")]
    Write(String),
    #[error("the store's writer thread has stopped")]
    WriterGone,
    #[error("the store's reader thread has stopped")]
    ReaderGone,
}

/// The server's own words for a refused statement (the client's `Display` says only
/// "db error"), or the client's error and its cause.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl StoreError {
    /// Whether the transaction that failed certainly did not commit (the database refused
    /// a statement), as opposed to a broken connection where the outcome is unknown.
    pub(crate) fn rolled_back(&self) -> bool {
        match self {
            StoreError::Sqlite(_) | StoreError::Encode(_) => true,
            StoreError::Postgres(e) => e.as_db_error().is_some(),
            _ => false,
        }
    }
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

/// One entry of [`Store::changes_since`]: the latest change of a document. `body` is
/// `None` for a delete (a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: Revision,
    pub kind: String,
    pub id: String,
    pub body: Option<String>,
}

enum Reader {
    /// WAL lets reads use their own connection beside the writer.
    Sqlite(Mutex<Connection>),
    Postgres(pg::Reader),
}

struct Inner {
    location: Location,
    /// Queue to the writer thread. `std::sync::mpsc` because the writer is a plain thread.
    writes: Mutex<mpsc::Sender<writer::Request>>,
    reader: Reader,
}

/// Handle to the database; cheap to clone, all clones share one writer thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.inner.location.to_string())
            .finish()
    }
}

type Ack<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, migrates it to
    /// [`SCHEMA_VERSION`] and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::connect_to(Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the store a URL names: `sqlite:///abs/path.db` or a plain path (SQLite), or
    /// `postgres://user:pass@host:port/db` / `postgresql://…` (also `?host=/socket/dir`).
    /// The PostgreSQL database must exist; the tables are created and migrated here.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_to(Location::parse(url)?)
    }

    /// Opens the store at an already parsed [`Location`].
    pub fn connect_to(location: Location) -> Result<Store, StoreError> {
        let (writes, reader) = match &location {
            Location::Sqlite(path) => {
                let (writes, reader) = sqlite::open(path)?;
                (writes, Reader::Sqlite(Mutex::new(reader)))
            }
            Location::Postgres(target) => {
                let writes = pg::open_writer(target)?;
                (writes, Reader::Postgres(pg::Reader::start(target)?))
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                location,
                writes: Mutex::new(writes),
                reader,
            }),
        })
    }

    /// Where the store is (a PostgreSQL location is shown without its password).
    pub fn location(&self) -> &Location {
        &self.inner.location
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
    pub fn enqueue(&self, batch: Batch) -> Result<Ack<()>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(batch, None, writer::Ack::Done(tx))?;
        Ok(rx)
    }

    /// Applies `batch` only if the store is still at `expected` (no write by anyone since),
    /// and returns the revision it reached; otherwise nothing is written and the answer is
    /// [`StoreError::Conflict`]. An empty batch just checks.
    pub async fn commit_if_unchanged(
        &self,
        expected: Revision,
        batch: Batch,
    ) -> Result<Revision, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(batch, Some(expected), writer::Ack::Revision(tx))?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    fn send(
        &self,
        batch: Batch,
        expect: Option<Revision>,
        ack: writer::Ack,
    ) -> Result<(), StoreError> {
        let sender = self.inner.writes.lock().unwrap_or_else(|e| e.into_inner());
        sender
            .send(writer::Request { batch, expect, ack })
            .map_err(|_| StoreError::WriterGone)
    }

    /// Every document of `kind`, ordered by id (bytewise).
    pub fn scan(&self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(conn) => sqlite::scan(&lock(conn), kind),
            Reader::Postgres(r) => r.scan(kind),
        }
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
        match &self.inner.reader {
            Reader::Sqlite(conn) => sqlite::get(&lock(conn), kind, id),
            Reader::Postgres(r) => r.get(kind, id),
        }
    }

    /// The latest committed revision (0 for an empty store).
    pub fn revision(&self) -> Result<Revision, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(conn) => sqlite::revision(&lock(conn)),
            Reader::Postgres(r) => r.revision(),
        }
    }

    /// The latest change of every document changed after `revision`, oldest first. A
    /// document changed twice since appears once, at its newest revision.
    pub fn changes_since(&self, revision: Revision) -> Result<Vec<Change>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(conn) => sqlite::changes_since(&lock(conn), revision),
            Reader::Postgres(r) => r.changes_since(revision),
        }
    }
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
