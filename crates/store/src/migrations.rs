//! Versioned schema migrations, one list per backend, numbered alike.
//!
//! `*_STEPS[i]` upgrades version `i` to `i + 1`; each step runs in its own transaction
//! together with the version bump, so a crash mid-migration leaves the previous version
//! intact. SQLite keeps the version in `PRAGMA user_version` (0 for a fresh file);
//! PostgreSQL in a one-row `schema_version` table (absent = 0), read and bumped under the
//! writers' advisory lock so two replicas starting together migrate once. Never edit a
//! released step: append a new one to both lists.

use std::path::PathBuf;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

const SQLITE_STEPS: &[&str] = &[
    // v0 -> v1: documents by (kind, id). `updated_at` helps debugging and future pruning.
    "CREATE TABLE docs (
         kind       TEXT NOT NULL,
         id         TEXT NOT NULL,
         body       TEXT NOT NULL,
         updated_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER)),
         PRIMARY KEY (kind, id)
     ) WITHOUT ROWID;",
    // v1 -> v2: revisions. Existing documents are numbered 1..n; a NULL body is a
    // tombstone; `meta.revision` is the latest revision handed out. SQLite cannot drop a
    // NOT NULL constraint in place, hence the copy.
    "CREATE TABLE docs_v2 (
         kind       TEXT NOT NULL,
         id         TEXT NOT NULL,
         body       TEXT,
         revision   INTEGER NOT NULL,
         updated_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER)),
         PRIMARY KEY (kind, id)
     ) WITHOUT ROWID;
     INSERT INTO docs_v2 (kind, id, body, revision, updated_at)
         SELECT kind, id, body, row_number() OVER (ORDER BY kind, id), updated_at FROM docs;
     DROP TABLE docs;
     ALTER TABLE docs_v2 RENAME TO docs;
     CREATE UNIQUE INDEX docs_revision ON docs (revision);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
     INSERT INTO meta (key, value) SELECT 'revision', count(*) FROM docs;",
];

/// The same schema in PostgreSQL. `id` sorts bytewise (`COLLATE "C"`) as in SQLite, so
/// `scan` orders alike on both; bodies are `text`, not `jsonb`, so they round-trip byte
/// for byte.
const PG_STEPS: &[&str] = &[
    "CREATE TABLE docs (
         kind       text NOT NULL,
         id         text COLLATE \"C\" NOT NULL,
         body       text NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (kind, id)
     );",
    "ALTER TABLE docs ALTER COLUMN body DROP NOT NULL, ADD COLUMN revision bigint;
     WITH numbered AS (
         SELECT kind, id, row_number() OVER (ORDER BY kind, id) AS rev FROM docs
     )
     UPDATE docs SET revision = numbered.rev
         FROM numbered WHERE docs.kind = numbered.kind AND docs.id = numbered.id;
     ALTER TABLE docs ALTER COLUMN revision SET NOT NULL;
     CREATE UNIQUE INDEX docs_revision ON docs (revision);
     CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
     INSERT INTO meta (key, value) SELECT 'revision', count(*) FROM docs;",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = SQLITE_STEPS.len() as i64;
const _: () = assert!(SQLITE_STEPS.len() == PG_STEPS.len());

/// Key of the PostgreSQL advisory lock that serialises writers and migrations
/// ("sparkyd" in ASCII, so it is recognisable in `pg_locks`).
pub(crate) const PG_LOCK: i64 = 0x0073_7061_726b_7964;

pub(crate) fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

pub(crate) fn migrate_sqlite(
    conn: &mut Connection,
    shown: &str,
    target: i64,
) -> Result<(), StoreError> {
    loop {
        // IMMEDIATE: a second process opening the same file waits here instead of
        // running the same step.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = version(&tx)?;
        too_new(found, shown)?;
        if found >= target {
            return Ok(());
        }
        tx.execute_batch(SQLITE_STEPS[found as usize])?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::info!(
            from = found,
            to = found + 1,
            "migrated the store schema (SQLite)"
        );
    }
}

pub(crate) fn pg_version(
    client: &mut impl postgres::GenericClient,
) -> Result<i64, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM schema_version", &[])?
        .map_or(0, |r| r.get(0)))
}

pub(crate) fn migrate_pg(
    client: &mut postgres::Client,
    shown: &str,
    target: i64,
) -> Result<(), StoreError> {
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])?;
        let found = pg_version(&mut tx)?;
        too_new(found, shown)?;
        if found >= target {
            return Ok(());
        }
        tx.batch_execute(PG_STEPS[found as usize])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL);
             DELETE FROM schema_version;",
        )?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(found + 1)],
        )?;
        tx.commit()?;
        tracing::info!(
            from = found,
            to = found + 1,
            "migrated the store schema (PostgreSQL)"
        );
    }
}

fn too_new(found: i64, shown: &str) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: PathBuf::from(shown),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}
