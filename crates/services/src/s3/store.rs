//! The S3 index in SQLite (`<data_dir>/s3/index.db`): buckets, objects (pointing at blobs),
//! multipart uploads and their parts.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection, OptionalExtension};

use super::conditions::{WriteConditions, WriteRefused};
use crate::db::Db;

/// Why the index refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The bucket (or, completing, the upload) is gone.
    Gone,
    /// A conditional write's condition did not hold against the current object.
    Condition(WriteRefused),
}

/// Checks `conditions` against the object `bucket`/`key` as the transaction sees it.
fn check_conditions(
    conn: &Connection,
    bucket: &str,
    key: &str,
    conditions: &WriteConditions,
) -> rusqlite::Result<Result<(), Refused>> {
    let current: Option<String> = conn
        .query_row(
            "SELECT etag FROM objects WHERE bucket = ?1 AND key = ?2",
            [bucket, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(conditions
        .check(current.as_deref())
        .map_err(Refused::Condition))
}

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    content_type TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    checksums TEXT NOT NULL DEFAULT '{}',
    checksum_type TEXT,
    parts_count INTEGER,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    initiated_ms INTEGER NOT NULL,
    content_type TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    checksum_algorithm TEXT,
    checksum_type TEXT
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    checksums TEXT NOT NULL DEFAULT '{}',
    last_modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    pub region: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object {
    pub key: String,
    pub blob: String,
    pub size: i64,
    /// Without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
    /// Base64 digests by algorithm (`CRC32` → …); multipart composites end in `-N`.
    pub checksums: BTreeMap<String, String>,
    pub checksum_type: Option<String>,
    pub parts_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub part_number: i64,
    pub blob: String,
    pub size: i64,
    pub md5: String,
    pub checksums: BTreeMap<String, String>,
    pub last_modified_ms: i64,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
    serde_json::from_str(&s).unwrap_or_default()
}

pub async fn create_bucket(db: &Db, name: &str, region: &str, now: i64) -> rusqlite::Result<bool> {
    let (name, region) = (name.to_string(), region.to_string());
    db.write(move |tx| {
        let n = tx.execute(
            "INSERT OR IGNORE INTO buckets (name, region, created_ms) VALUES (?1, ?2, ?3)",
            params![name, region, now],
        )?;
        Ok(n == 1)
    })
    .await
}

fn row_to_bucket(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        name: r.get(0)?,
        region: r.get(1)?,
        created_ms: r.get(2)?,
    })
}

pub async fn get_bucket(db: &Db, name: &str) -> rusqlite::Result<Option<Bucket>> {
    let name = name.to_string();
    db.read(move |c| {
        c.query_row(
            "SELECT name, region, created_ms FROM buckets WHERE name = ?1",
            [name],
            row_to_bucket,
        )
        .optional()
    })
    .await
}

pub async fn list_buckets(db: &Db) -> rusqlite::Result<Vec<Bucket>> {
    db.read(|c| {
        let mut stmt = c.prepare("SELECT name, region, created_ms FROM buckets ORDER BY name")?;
        let rows = stmt.query_map([], row_to_bucket)?;
        rows.collect()
    })
    .await
}

fn bucket_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM buckets WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn upload_exists(conn: &Connection, upload_id: &str) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM uploads WHERE upload_id = ?1",
        [upload_id],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The blob names `sql` selects for `key`.
fn blobs(conn: &Connection, sql: &str, key: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([key], |r| r.get(0))?;
    rows.collect()
}

fn part_blobs(conn: &Connection, upload_id: &str) -> rusqlite::Result<Vec<String>> {
    blobs(
        conn,
        "SELECT blob FROM parts WHERE upload_id = ?1",
        upload_id,
    )
}

/// The blob of the object `bucket`/`key`, if there is one.
fn object_blob(conn: &Connection, bucket: &str, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2",
        [bucket, key],
        |r| r.get(0),
    )
    .optional()
}

/// Inserts or replaces the object row of `o` in `bucket`.
fn write_object(conn: &Connection, bucket: &str, o: &Object) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO objects (bucket, {OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            bucket,
            o.key,
            o.blob,
            o.size,
            o.etag,
            o.last_modified_ms,
            o.content_type,
            json(&o.metadata),
            json(&o.checksums),
            o.checksum_type,
            o.parts_count
        ],
    )?;
    Ok(())
}

pub enum DeleteBucket {
    Deleted,
    NotFound,
    NotEmpty,
}

/// Deletes an empty bucket; its abandoned multipart uploads go with it. Returns the part
/// blobs to remove.
pub async fn delete_bucket(db: &Db, name: &str) -> rusqlite::Result<(DeleteBucket, Vec<String>)> {
    let name = name.to_string();
    db.write(move |tx| {
        if !bucket_exists(tx, &name)? {
            return Ok((DeleteBucket::NotFound, vec![]));
        }
        let objects: i64 = tx.query_row(
            "SELECT COUNT(*) FROM objects WHERE bucket = ?1",
            [&name],
            |r| r.get(0),
        )?;
        if objects > 0 {
            return Ok((DeleteBucket::NotEmpty, vec![]));
        }
        let part_blobs = blobs(
            tx,
            "SELECT p.blob FROM parts p JOIN uploads u USING (upload_id) WHERE u.bucket = ?1",
            &name,
        )?;
        tx.execute("DELETE FROM uploads WHERE bucket = ?1", [&name])?;
        tx.execute("DELETE FROM buckets WHERE name = ?1", [&name])?;
        Ok((DeleteBucket::Deleted, part_blobs))
    })
    .await
}

const OBJECT_COLUMNS: &str =
    "key, blob, size, etag, last_modified_ms, content_type, metadata, checksums, checksum_type, parts_count";

fn row_to_object(r: &rusqlite::Row<'_>) -> rusqlite::Result<Object> {
    Ok(Object {
        key: r.get(0)?,
        blob: r.get(1)?,
        size: r.get(2)?,
        etag: r.get(3)?,
        last_modified_ms: r.get(4)?,
        content_type: r.get(5)?,
        metadata: from_json(r.get(6)?),
        checksums: from_json(r.get(7)?),
        checksum_type: r.get(8)?,
        parts_count: r.get(9)?,
    })
}

pub async fn get_object(db: &Db, bucket: &str, key: &str) -> rusqlite::Result<Option<Object>> {
    let (bucket, key) = (bucket.to_string(), key.to_string());
    db.read(move |c| {
        c.query_row(
            &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2"),
            [bucket, key],
            row_to_object,
        )
        .optional()
    })
    .await
}

/// Objects of `bucket` whose key starts with `prefix` and sorts after `after`, by key.
pub async fn scan_objects(
    db: &Db,
    bucket: &str,
    prefix: &str,
    after: &str,
) -> rusqlite::Result<Vec<Object>> {
    let params = [bucket.to_string(), prefix.to_string(), after.to_string()];
    db.read(move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key >= ?2 AND key > ?3
               AND substr(key, 1, length(?2)) = ?2 ORDER BY key"
        ))?;
        let rows = stmt.query_map(params, row_to_object)?;
        rows.collect()
    })
    .await
}

/// Inserts or replaces an object if `conditions` hold. Returns the replaced object's blob
/// (to remove), or why it was refused.
pub async fn put_object(
    db: &Db,
    bucket: &str,
    o: &Object,
    conditions: &WriteConditions,
) -> rusqlite::Result<Result<Option<String>, Refused>> {
    let (bucket, o, conditions) = (bucket.to_string(), o.clone(), conditions.clone());
    db.write(move |tx| {
        if !bucket_exists(tx, &bucket)? {
            return Ok(Err(Refused::Gone));
        }
        if let Err(refused) = check_conditions(tx, &bucket, &o.key, &conditions)? {
            return Ok(Err(refused));
        }
        let old = object_blob(tx, &bucket, &o.key)?;
        write_object(tx, &bucket, &o)?;
        Ok(Ok(old))
    })
    .await
}

/// Deletes an object; returns its blob if it existed.
pub async fn delete_object(db: &Db, bucket: &str, key: &str) -> rusqlite::Result<Option<String>> {
    let (bucket, key) = (bucket.to_string(), key.to_string());
    db.write(move |tx| {
        let old = object_blob(tx, &bucket, &key)?;
        tx.execute(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
            [&bucket, &key],
        )?;
        Ok(old)
    })
    .await
}

pub async fn create_upload(db: &Db, u: &Upload) -> rusqlite::Result<()> {
    let u = u.clone();
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO uploads (upload_id, bucket, key, initiated_ms, content_type, metadata, checksum_algorithm, checksum_type)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![u.upload_id, u.bucket, u.key, u.initiated_ms, u.content_type, json(&u.metadata), u.checksum_algorithm, u.checksum_type],
        )?;
        Ok(())
    })
    .await
}

const UPLOAD_COLUMNS: &str =
    "upload_id, bucket, key, initiated_ms, content_type, metadata, checksum_algorithm, checksum_type";

fn row_to_upload(r: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        upload_id: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        initiated_ms: r.get(3)?,
        content_type: r.get(4)?,
        metadata: from_json(r.get(5)?),
        checksum_algorithm: r.get(6)?,
        checksum_type: r.get(7)?,
    })
}

pub async fn get_upload(db: &Db, upload_id: &str) -> rusqlite::Result<Option<Upload>> {
    let upload_id = upload_id.to_string();
    db.read(move |c| {
        c.query_row(
            &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1"),
            [upload_id],
            row_to_upload,
        )
        .optional()
    })
    .await
}

/// The uploads in progress in `bucket` whose key starts with `prefix`, in S3's listing
/// order: by key, then by initiation (the upload id breaking ties).
pub async fn scan_uploads(db: &Db, bucket: &str, prefix: &str) -> rusqlite::Result<Vec<Upload>> {
    let params = [bucket.to_string(), prefix.to_string()];
    db.read(move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = ?1 AND key >= ?2
               AND substr(key, 1, length(?2)) = ?2 ORDER BY key, initiated_ms, upload_id"
        ))?;
        let rows = stmt.query_map(params, row_to_upload)?;
        rows.collect()
    })
    .await
}

/// Records a part; returns the blob of the part it replaces, or `Err(())` if the upload is
/// gone.
pub async fn put_part(
    db: &Db,
    upload_id: &str,
    p: &Part,
) -> rusqlite::Result<Result<Option<String>, ()>> {
    let (upload_id, p) = (upload_id.to_string(), p.clone());
    db.write(move |tx| {
        if !upload_exists(tx, &upload_id)? {
            return Ok(Err(()));
        }
        let old: Option<String> = tx
            .query_row(
                "SELECT blob FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                params![upload_id, p.part_number],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO parts (upload_id, part_number, blob, size, md5, checksums, last_modified_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![upload_id, p.part_number, p.blob, p.size, p.md5, json(&p.checksums), p.last_modified_ms],
        )?;
        Ok(Ok(old))
    })
    .await
}

pub async fn list_parts(db: &Db, upload_id: &str) -> rusqlite::Result<Vec<Part>> {
    let upload_id = upload_id.to_string();
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT part_number, blob, size, md5, checksums, last_modified_ms FROM parts WHERE upload_id = ?1 ORDER BY part_number",
        )?;
        let rows = stmt.query_map([upload_id], |r| {
            Ok(Part {
                part_number: r.get(0)?,
                blob: r.get(1)?,
                size: r.get(2)?,
                md5: r.get(3)?,
                checksums: from_json(r.get(4)?),
                last_modified_ms: r.get(5)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// Removes an upload; returns its parts' blobs.
pub async fn delete_upload(db: &Db, upload_id: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let upload_id = upload_id.to_string();
    db.write(move |tx| {
        let blobs = part_blobs(tx, &upload_id)?;
        let n = tx.execute("DELETE FROM uploads WHERE upload_id = ?1", [&upload_id])?;
        Ok((n == 1).then_some(blobs))
    })
    .await
}

/// Completes an upload atomically if `conditions` hold: the object row replaces any
/// previous one and the upload and its part rows go; the object's blob list is made of the
/// chosen parts' blobs. Returns the blobs no longer referenced (old object, parts not
/// chosen), or why it was refused (`Gone`: the upload was completed or aborted, or a chosen
/// part replaced, concurrently). A refused condition leaves the upload in place, to retry.
pub async fn complete_upload(
    db: &Db,
    upload: &Upload,
    o: &Object,
    conditions: &WriteConditions,
) -> rusqlite::Result<Result<Vec<String>, Refused>> {
    let (upload, o, conditions) = (upload.clone(), o.clone(), conditions.clone());
    db.write(move |tx| {
        if !upload_exists(tx, &upload.upload_id)? {
            return Ok(Err(Refused::Gone));
        }
        if let Err(refused) = check_conditions(tx, &upload.bucket, &o.key, &conditions)? {
            return Ok(Err(refused));
        }
        let parts = part_blobs(tx, &upload.upload_id)?;
        let chosen: std::collections::HashSet<&str> = super::blob::names(&o.blob).collect();
        if !chosen.iter().all(|c| parts.iter().any(|p| p == c)) {
            return Ok(Err(Refused::Gone));
        }
        let mut garbage: Vec<String> = parts
            .iter()
            .filter(|p| !chosen.contains(p.as_str()))
            .cloned()
            .collect();
        garbage.extend(object_blob(tx, &upload.bucket, &o.key)?);
        write_object(tx, &upload.bucket, &o)?;
        tx.execute(
            "DELETE FROM uploads WHERE upload_id = ?1",
            [&upload.upload_id],
        )?;
        Ok(Ok(garbage))
    })
    .await
}

/// Every blob the index references (for collecting orphans at start-up). Blocking: start-up
/// runs before anything is served (see `Db::read_blocking`).
pub fn referenced_blobs(db: &Db) -> rusqlite::Result<std::collections::HashSet<String>> {
    db.read_blocking(|c| {
        let mut out = std::collections::HashSet::new();
        for sql in ["SELECT blob FROM objects", "SELECT blob FROM parts"] {
            let mut stmt = c.prepare(sql)?;
            for field in stmt.query_map([], |r| r.get::<_, String>(0))? {
                out.extend(super::blob::names(&field?).map(str::to_string));
            }
        }
        Ok(out)
    })
}
