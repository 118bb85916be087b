//! Node groups and their updates in `services.db`, one JSON document per row: the records
//! are small, read whole and written whole.

use rusqlite::{params, Connection, OptionalExtension};

use super::model::{NodeGroupRecord, UpdateRecord};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS eks_nodegroups (
    cluster TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (cluster, name)
);
CREATE TABLE IF NOT EXISTS eks_updates (
    cluster TEXT NOT NULL,
    id TEXT NOT NULL,
    nodegroup TEXT NOT NULL,
    created INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (cluster, id)
);
CREATE INDEX IF NOT EXISTS eks_updates_by_nodegroup ON eks_updates(cluster, nodegroup, created);
";

fn decode<T: serde::de::DeserializeOwned>(text: String) -> rusqlite::Result<T> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialize")
}

pub fn get(c: &Connection, cluster: &str, name: &str) -> rusqlite::Result<Option<NodeGroupRecord>> {
    let text: Option<String> = c
        .query_row(
            "SELECT record FROM eks_nodegroups WHERE cluster = ?1 AND name = ?2",
            params![cluster, name],
            |r| r.get(0),
        )
        .optional()?;
    text.map(decode).transpose()
}

/// All groups of a cluster (every cluster when `None`), by name.
pub fn list(c: &Connection, cluster: Option<&str>) -> rusqlite::Result<Vec<NodeGroupRecord>> {
    let mut stmt = c.prepare(
        "SELECT record FROM eks_nodegroups WHERE ?1 IS NULL OR cluster = ?1 ORDER BY cluster, name",
    )?;
    let rows = stmt.query_map(params![cluster], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.and_then(decode)).collect()
}

/// Inserts a new group; `false` when one of that name exists.
pub fn insert(c: &Connection, r: &NodeGroupRecord) -> rusqlite::Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO eks_nodegroups (cluster, name, record) VALUES (?1, ?2, ?3)",
        params![r.cluster, r.name, encode(r)],
    )?;
    Ok(n == 1)
}

pub fn put(c: &Connection, r: &NodeGroupRecord) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO eks_nodegroups (cluster, name, record) VALUES (?1, ?2, ?3)",
        params![r.cluster, r.name, encode(r)],
    )?;
    Ok(())
}

/// Removes a group and its updates (EKS forgets both).
pub fn remove(c: &Connection, cluster: &str, name: &str) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM eks_nodegroups WHERE cluster = ?1 AND name = ?2",
        params![cluster, name],
    )?;
    c.execute(
        "DELETE FROM eks_updates WHERE cluster = ?1 AND nodegroup = ?2",
        params![cluster, name],
    )?;
    Ok(())
}

pub fn put_update(c: &Connection, u: &UpdateRecord) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO eks_updates (cluster, id, nodegroup, created, record) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![u.cluster, u.id, u.nodegroup, u.created_at.timestamp_millis(), encode(u)],
    )?;
    Ok(())
}

pub fn get_update(
    c: &Connection,
    cluster: &str,
    id: &str,
) -> rusqlite::Result<Option<UpdateRecord>> {
    let text: Option<String> = c
        .query_row(
            "SELECT record FROM eks_updates WHERE cluster = ?1 AND id = ?2",
            params![cluster, id],
            |r| r.get(0),
        )
        .optional()?;
    text.map(decode).transpose()
}

/// A group's update ids, oldest first.
pub fn update_ids(c: &Connection, cluster: &str, nodegroup: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT id FROM eks_updates WHERE cluster = ?1 AND nodegroup = ?2 ORDER BY created, id",
    )?;
    let rows = stmt.query_map(params![cluster, nodegroup], |r| r.get::<_, String>(0))?;
    rows.collect()
}
