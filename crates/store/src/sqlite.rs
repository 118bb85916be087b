//! The SQLite backend: one file, WAL, a writer connection on the writer thread and a
//! reader connection beside it.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::migrations::{self, SCHEMA_VERSION};
use crate::writer::{self, Entry, Target};
use crate::{Change, Op, Revision, StoreError};

pub(crate) fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // WAL: readers do not block the writer; FULL: the WAL is fsynced at every commit,
    // which is what makes an acknowledged write survive a crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Opens, migrates and starts the writer; returns its queue and a reader connection.
pub(crate) fn open(path: &Path) -> Result<(mpsc::Sender<writer::Request>, Connection), StoreError> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    migrations::migrate_sqlite(&mut conn, &path.display().to_string(), SCHEMA_VERSION)?;
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&reader)?;
    let writes = writer::spawn(move || Ok(Writer(conn)))?;
    Ok((writes, reader))
}

struct Writer(Connection);

impl Target for Writer {
    fn apply(
        &mut self,
        group: &[Entry<'_>],
    ) -> Result<Vec<Result<Revision, StoreError>>, StoreError> {
        // IMMEDIATE takes the write lock before reading the revision, so another process
        // writing the same file cannot hand out the same numbers.
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let start = revision(&tx)?;
        let results = {
            let mut put = tx.prepare_cached(
                "INSERT INTO docs (kind, id, body, revision, updated_at)
                 VALUES (?1, ?2, ?3, ?4, CAST(strftime('%s','now') AS INTEGER))
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body,
                     revision = excluded.revision, updated_at = excluded.updated_at",
            )?;
            let mut del = tx.prepare_cached(
                "UPDATE docs SET body = NULL, revision = ?3,
                     updated_at = CAST(strftime('%s','now') AS INTEGER)
                 WHERE kind = ?1 AND id = ?2 AND body IS NOT NULL",
            )?;
            let (end, results) = writer::assign(start, group, |op, rev| {
                Ok(match op {
                    Op::Put { kind, id, body } => put.execute((kind, id, body, rev))? > 0,
                    Op::Delete { kind, id } => del.execute((kind, id, rev))? > 0,
                })
            })?;
            if end != start {
                tx.execute("UPDATE meta SET value = ?1 WHERE key = 'revision'", [end])?;
            }
            results
        };
        tx.commit()?;
        Ok(results)
    }
}

pub(crate) fn revision(conn: &Connection) -> Result<Revision, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'revision'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub(crate) fn scan(conn: &Connection, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM docs WHERE kind = ?1 AND body IS NOT NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn get(conn: &Connection, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT body FROM docs WHERE kind = ?1 AND id = ?2")?;
    let body: Option<Option<String>> = stmt.query_row([kind, id], |r| r.get(0)).optional()?;
    Ok(body.flatten())
}

pub(crate) fn changes_since(conn: &Connection, since: Revision) -> Result<Vec<Change>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT revision, kind, id, body FROM docs WHERE revision > ?1 ORDER BY revision",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok(Change {
            revision: r.get(0)?,
            kind: r.get(1)?,
            id: r.get(2)?,
            body: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
