//! Versioned schema migrations.
//!
//! The schema version lives in `PRAGMA user_version` (0 for a fresh file). `STEPS[i]`
//! upgrades version `i` to `i + 1`; each step runs in its own transaction together with
//! the version bump, so a crash mid-migration leaves the previous version intact.
//! Never edit a released step: append a new one.

use std::path::Path;

use rusqlite::Connection;

use crate::StoreError;

const STEPS: &[&str] = &[
    // v0 -> v1: documents by (kind, id). `updated_at` helps debugging and future pruning.
    "CREATE TABLE docs (
         kind       TEXT NOT NULL,
         id         TEXT NOT NULL,
         body       TEXT NOT NULL,
         updated_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER)),
         PRIMARY KEY (kind, id)
     ) WITHOUT ROWID;",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

pub(crate) fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.into(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, step) in STEPS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
        tracing::info!(from, to = from + 1, "migrated the store schema");
    }
    Ok(())
}
