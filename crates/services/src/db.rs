//! SQLite for the services' state (`<data_dir>/services.db`, `<data_dir>/s3/index.db`), kept
//! off the async runtime's worker threads.
//!
//! WAL with `synchronous=FULL`: a write is acknowledged to the client only after its commit is
//! on disk, so nothing acknowledged is lost on a crash or power cut.
//!
//! rusqlite blocks (a commit waits for an fsync, a listing scans an index), so async handlers
//! never hold a connection themselves: [`Db::write`] and [`Db::read`] run their closure on
//! tokio's blocking pool (`spawn_blocking`) and the handler awaits the result. Writes share one
//! connection behind a mutex: the services' write rates are small, and one writer keeps
//! transactions serialised without SQLITE_BUSY retries (a group-commit writer thread, as
//! `sparkyard-store` has, would pay off only at rates these services never see). Reads take a
//! connection from a small pool of their own, so under WAL they never wait for a writer's
//! fsync. Each closure runs in one transaction: a write commits when its closure returns `Ok`
//! and rolls back otherwise; a read sees one snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction};

/// Read connections kept open between reads; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

/// Handle to one database file. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (transactions roll back).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on tokio's blocking pool and waits for it without blocking the caller's thread.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> rusqlite::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        // A panic in `f` is the caller's panic, as when the call ran inline. (A blocking task
        // is cancelled only when the runtime shuts down, and then nobody awaits it.)
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies `schema` (idempotent DDL).
    /// Blocking: it runs once at start-up, before anything is served.
    pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(schema)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` in a write transaction on the blocking pool: committed (durably) when `f`
    /// returns `Ok`, rolled back when it fails. An early `Ok` that wrote nothing commits
    /// nothing.
    pub async fn write<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        off_runtime(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a read connection on the blocking pool, in one read transaction (one
    /// snapshot, whatever commits meanwhile).
    pub async fn read<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        off_runtime(move || db.read_blocking(f)).await
    }

    /// [`Db::read`] on the calling thread. Only for callers that must stay synchronous: the
    /// authorizer's policy lookup ([`RolePolicies`](crate::authz::RolePolicies)), which
    /// `sparkyard_aws::Authorize` — a synchronous trait other crates call — reaches, and
    /// start-up. It is a short indexed read on its own connection: under WAL it never waits
    /// for a writer's commit or fsync.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let out = conn.unchecked_transaction().and_then(|tx| f(&tx));
        let mut idle = lock(&self.inner.readers);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.inner.path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

    fn count(c: &Connection) -> rusqlite::Result<i64> {
        c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
    }

    #[tokio::test]
    async fn writes_commit_or_roll_back_and_reads_see_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), SCHEMA).unwrap();
        db.write(|tx| tx.execute("INSERT INTO t VALUES ('a', 1)", []))
            .await
            .unwrap();
        assert_eq!(db.read(count).await.unwrap(), 1);
        let failed = db
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES ('b', 2)", [])?;
                tx.execute("INSERT INTO t VALUES ('a', 3)", [])
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(db.read(count).await.unwrap(), 1);
        assert_eq!(db.read_blocking(count).unwrap(), 1);
        // Reads cannot write.
        assert!(db.read(|c| c.execute("DELETE FROM t", [])).await.is_err());
    }
}
