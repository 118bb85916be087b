//! Log groups, streams and events in SQLite. Events are ordered by `(timestamp, id)`: the
//! id (insertion order) breaks ties so paging tokens are exact positions.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::db::Db;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs_groups (
    name TEXT PRIMARY KEY,
    creation_time INTEGER NOT NULL,
    retention_days INTEGER
);
CREATE TABLE IF NOT EXISTS logs_streams (
    group_name TEXT NOT NULL REFERENCES logs_groups(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    first_event INTEGER,
    last_event INTEGER,
    last_ingestion INTEGER,
    uploads INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_name, name)
);
CREATE TABLE IF NOT EXISTS logs_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message TEXT NOT NULL,
    FOREIGN KEY (group_name, stream_name) REFERENCES logs_streams(group_name, name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS logs_events_by_stream ON logs_events(group_name, stream_name, timestamp, id);
CREATE INDEX IF NOT EXISTS logs_events_by_group ON logs_events(group_name, timestamp, id);
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub creation_time: i64,
    pub retention_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub name: String,
    pub creation_time: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub uploads: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    pub stream: String,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

impl Event {
    pub fn key(&self) -> (i64, i64) {
        (self.timestamp, self.id)
    }
}

pub async fn create_group(db: &Db, name: &str, now: i64) -> rusqlite::Result<bool> {
    let name = name.to_string();
    db.write(move |tx| {
        let n = tx.execute(
            "INSERT OR IGNORE INTO logs_groups (name, creation_time) VALUES (?1, ?2)",
            params![name, now],
        )?;
        Ok(n == 1)
    })
    .await
}

pub async fn delete_group(db: &Db, name: &str) -> rusqlite::Result<bool> {
    let name = name.to_string();
    db.write(move |tx| {
        // Explicit deletes: the cascade would do it, but this way the indexes are used in order.
        tx.execute("DELETE FROM logs_events WHERE group_name = ?1", [&name])?;
        tx.execute("DELETE FROM logs_streams WHERE group_name = ?1", [&name])?;
        let n = tx.execute("DELETE FROM logs_groups WHERE name = ?1", [&name])?;
        Ok(n == 1)
    })
    .await
}

fn row_to_group(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        name: r.get(0)?,
        creation_time: r.get(1)?,
        retention_days: r.get(2)?,
    })
}

pub async fn get_group(db: &Db, name: &str) -> rusqlite::Result<Option<Group>> {
    let name = name.to_string();
    db.read(move |c| {
        c.query_row(
            "SELECT name, creation_time, retention_days FROM logs_groups WHERE name = ?1",
            [name],
            row_to_group,
        )
        .optional()
    })
    .await
}

/// Groups by name after `after`, at most `limit + 1` (so callers can tell whether more follow).
pub async fn list_groups(
    db: &Db,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Group>> {
    let (prefix, after) = (prefix.to_string(), after.unwrap_or("").to_string());
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT name, creation_time, retention_days FROM logs_groups
             WHERE substr(name, 1, length(?1)) = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![prefix, after, (limit + 1) as i64], row_to_group)?;
        rows.collect()
    })
    .await
}

pub async fn set_retention(db: &Db, name: &str, days: Option<i64>) -> rusqlite::Result<bool> {
    let name = name.to_string();
    db.write(move |tx| {
        let n = tx.execute(
            "UPDATE logs_groups SET retention_days = ?2 WHERE name = ?1",
            params![name, days],
        )?;
        Ok(n == 1)
    })
    .await
}

pub enum CreateStream {
    Created,
    Exists,
    NoGroup,
}

pub async fn create_stream(
    db: &Db,
    group: &str,
    name: &str,
    now: i64,
) -> rusqlite::Result<CreateStream> {
    let (group, name) = (group.to_string(), name.to_string());
    db.write(move |tx| {
        let has_group: i64 = tx.query_row(
            "SELECT COUNT(*) FROM logs_groups WHERE name = ?1",
            [&group],
            |r| r.get(0),
        )?;
        if has_group == 0 {
            return Ok(CreateStream::NoGroup);
        }
        let n = tx.execute(
            "INSERT OR IGNORE INTO logs_streams (group_name, name, creation_time) VALUES (?1, ?2, ?3)",
            params![group, name, now],
        )?;
        Ok(if n == 1 {
            CreateStream::Created
        } else {
            CreateStream::Exists
        })
    })
    .await
}

pub async fn delete_stream(db: &Db, group: &str, name: &str) -> rusqlite::Result<bool> {
    let (group, name) = (group.to_string(), name.to_string());
    db.write(move |tx| {
        tx.execute(
            "DELETE FROM logs_events WHERE group_name = ?1 AND stream_name = ?2",
            params![group, name],
        )?;
        let n = tx.execute(
            "DELETE FROM logs_streams WHERE group_name = ?1 AND name = ?2",
            params![group, name],
        )?;
        Ok(n == 1)
    })
    .await
}

fn row_to_stream(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stream> {
    Ok(Stream {
        name: r.get(0)?,
        creation_time: r.get(1)?,
        first_event: r.get(2)?,
        last_event: r.get(3)?,
        last_ingestion: r.get(4)?,
        uploads: r.get(5)?,
    })
}

pub async fn get_stream(db: &Db, group: &str, name: &str) -> rusqlite::Result<Option<Stream>> {
    let key = [group.to_string(), name.to_string()];
    db.read(move |c| {
        c.query_row(
            "SELECT name, creation_time, first_event, last_event, last_ingestion, uploads FROM logs_streams
             WHERE group_name = ?1 AND name = ?2",
            key,
            row_to_stream,
        )
        .optional()
    })
    .await
}

/// Every stream of `group` whose name starts with `prefix`, by name.
pub async fn list_streams(db: &Db, group: &str, prefix: &str) -> rusqlite::Result<Vec<Stream>> {
    let (group, prefix) = (group.to_string(), prefix.to_string());
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT name, creation_time, first_event, last_event, last_ingestion, uploads FROM logs_streams
             WHERE group_name = ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![group, prefix], row_to_stream)?;
        rows.collect()
    })
    .await
}

/// Appends `events` (timestamp, message) to a stream in one transaction and updates the
/// stream's summary. Returns the stream's new upload count (the sequence token's basis).
pub async fn append(
    db: &Db,
    group: &str,
    stream: &str,
    events: &[(i64, &str)],
    now: i64,
) -> rusqlite::Result<i64> {
    let (group, stream) = (group.to_string(), stream.to_string());
    let events: Vec<(i64, String)> = events.iter().map(|(t, m)| (*t, m.to_string())).collect();
    db.write(move |tx| {
        insert_events(tx, &group, &stream, &events, now)?;
        tx.query_row(
            "UPDATE logs_streams SET uploads = uploads + 1,
                first_event = CASE WHEN ?3 IS NULL THEN first_event WHEN first_event IS NULL OR ?3 < first_event THEN ?3 ELSE first_event END,
                last_event = CASE WHEN ?4 IS NULL THEN last_event WHEN last_event IS NULL OR ?4 > last_event THEN ?4 ELSE last_event END,
                last_ingestion = ?5
             WHERE group_name = ?1 AND name = ?2 RETURNING uploads",
            params![
                group,
                stream,
                events.iter().map(|e| e.0).min(),
                events.iter().map(|e| e.0).max(),
                now
            ],
            |r| r.get(0),
        )
    })
    .await
}

fn insert_events(
    tx: &Transaction<'_>,
    group: &str,
    stream: &str,
    events: &[(i64, String)],
    now: i64,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO logs_events (group_name, stream_name, timestamp, ingestion_time, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (timestamp, message) in events {
        stmt.execute(params![group, stream, timestamp, now, message])?;
    }
    Ok(())
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub group: String,
    /// `None`: every stream of the group; otherwise these streams.
    pub streams: Option<Vec<String>>,
    pub start_time: Option<i64>,
    /// Exclusive.
    pub end_time: Option<i64>,
    /// Only events strictly after this `(timestamp, id)`.
    pub after: Option<(i64, i64)>,
    /// Only events strictly before this `(timestamp, id)`.
    pub before: Option<(i64, i64)>,
    pub descending: bool,
}

/// The first `limit` events of `q`, in its order, that `keep` accepts, and whether another
/// accepted event follows them.
pub async fn find_events(
    db: &Db,
    q: EventQuery,
    limit: usize,
    keep: impl Fn(&Event) -> bool + Send + 'static,
) -> rusqlite::Result<(Vec<Event>, bool)> {
    db.read(move |c| {
        let mut events = Vec::new();
        let mut more = false;
        scan_events(c, &q, |e| {
            if !keep(&e) {
                return true;
            }
            if events.len() == limit {
                more = true;
                return false;
            }
            events.push(e);
            true
        })?;
        Ok((events, more))
    })
    .await
}

/// Calls `visit` with events in order until it returns `false`.
fn scan_events(
    conn: &Connection,
    q: &EventQuery,
    mut visit: impl FnMut(Event) -> bool,
) -> rusqlite::Result<()> {
    let order = if q.descending { "DESC" } else { "ASC" };
    let (after_ts, after_id) = q.after.unwrap_or((i64::MIN, i64::MIN));
    let (before_ts, before_id) = q.before.unwrap_or((i64::MAX, i64::MAX));
    let sql = format!(
        "SELECT id, stream_name, timestamp, ingestion_time, message FROM logs_events
         WHERE group_name = ?1 AND timestamp >= ?2 AND timestamp < ?3
           AND (timestamp > ?4 OR (timestamp = ?4 AND id > ?5))
           AND (timestamp < ?6 OR (timestamp = ?6 AND id < ?7))
         ORDER BY timestamp {order}, id {order}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![
        q.group,
        q.start_time.unwrap_or(i64::MIN),
        q.end_time.unwrap_or(i64::MAX),
        after_ts,
        after_id,
        before_ts,
        before_id
    ])?;
    while let Some(row) = rows.next()? {
        let event = Event {
            id: row.get(0)?,
            stream: row.get(1)?,
            timestamp: row.get(2)?,
            ingestion_time: row.get(3)?,
            message: row.get(4)?,
        };
        if q.streams
            .as_ref()
            .is_some_and(|s| !s.contains(&event.stream))
        {
            continue;
        }
        if !visit(event) {
            break;
        }
    }
    Ok(())
}
