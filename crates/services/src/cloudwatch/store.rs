//! Metric series, datapoints, alarms and alarm history in SQLite.
//!
//! A series is (namespace, metric name, dimensions sorted by name, unit); its datapoints are
//! statistic sets (sample count, sum, minimum, maximum) per time bucket, kept in tiers as
//! CloudWatch keeps them: 1-second buckets (high-resolution data only) for 3 hours, 1-minute
//! for 15 days, 5-minute for 63 days, 1-hour for 455 days.
//!
//! Rollup is write-through: a datapoint is added to its bucket in every tier at least as
//! coarse as its resolution in the transaction that stores it. CloudWatch accepts timestamps
//! up to two weeks old, so a rollup run "later" would have to revisit closed buckets anyway;
//! rolling up at ingest keeps every tier complete at every instant, so a query can read the
//! one tier that fits it without stitching tiers together. The periodic job
//! ([`expire`]) only drops what is past each tier's retention.
//!
//! `cw_points` is `WITHOUT ROWID` with key (series, tier, ts): one series' range in one tier
//! is contiguous on disk, which is what every query and the expiry read.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::model::Dimension;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cw_series (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    last_put INTEGER NOT NULL,
    UNIQUE (namespace, metric_name, dimensions, unit)
);
CREATE TABLE IF NOT EXISTS cw_points (
    series INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    n REAL NOT NULL,
    total REAL NOT NULL,
    lo REAL NOT NULL,
    hi REAL NOT NULL,
    PRIMARY KEY (series, tier, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cw_alarms (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cw_alarm_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_name TEXT NOT NULL,
    ts REAL NOT NULL,
    item_type TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cw_alarm_history_by_name ON cw_alarm_history(alarm_name, ts);
";

/// Bucket width (seconds) and retention (seconds) of each tier, finest first.
pub const TIERS: [(i64, i64); 4] = [
    (1, 3 * 3600),
    (60, 15 * 86400),
    (300, 63 * 86400),
    (3600, 455 * 86400),
];

/// A statistic set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Agg {
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// `SampleCount`, `Average`, `Sum`, `Minimum` or `Maximum`.
    pub fn stat(&self, name: &str) -> Option<f64> {
        match name {
            "SampleCount" => Some(self.count),
            "Sum" => Some(self.sum),
            "Average" => (self.count > 0.0).then(|| self.sum / self.count),
            "Minimum" => Some(self.min),
            "Maximum" => Some(self.max),
            _ => None,
        }
    }
}

/// What identifies a series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name.
    pub dimensions: Vec<Dimension>,
    pub unit: String,
}

/// One validated datapoint to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub series: SeriesKey,
    /// Epoch seconds.
    pub timestamp: i64,
    /// 1 (high resolution) or 60.
    pub resolution: i64,
    pub agg: Agg,
}

/// Dimensions in canonical (sorted by name) JSON form, the series table's key.
pub fn canonical_dimensions(dims: &[Dimension]) -> String {
    let mut sorted: Vec<(&str, &str)> = dims
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str()))
        .collect();
    sorted.sort();
    serde_json::to_string(&sorted).unwrap_or_default()
}

fn parse_dimensions(text: &str) -> Vec<Dimension> {
    serde_json::from_str::<Vec<(String, String)>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| Dimension { name, value })
        .collect()
}

/// Stores `points` (all of them, or none if anything fails), rolling each up into the
/// coarser tiers; `now` is the series' `last_put`.
pub fn put(tx: &Transaction<'_>, points: &[Point], now: i64) -> rusqlite::Result<()> {
    let mut ids: HashMap<&SeriesKey, i64> = HashMap::new();
    {
        let mut find = tx.prepare_cached(
            "SELECT id FROM cw_series WHERE namespace = ?1 AND metric_name = ?2 AND dimensions = ?3 AND unit = ?4",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO cw_series (namespace, metric_name, dimensions, unit, last_put) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut touch = tx.prepare_cached("UPDATE cw_series SET last_put = ?2 WHERE id = ?1")?;
        for p in points {
            if ids.contains_key(&p.series) {
                continue;
            }
            let k = &p.series;
            let dims = canonical_dimensions(&k.dimensions);
            let id = match find
                .query_row(params![k.namespace, k.metric_name, dims, k.unit], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
            {
                Some(id) => {
                    touch.execute(params![id, now])?;
                    id
                }
                None => {
                    insert.execute(params![k.namespace, k.metric_name, dims, k.unit, now])?;
                    tx.last_insert_rowid()
                }
            };
            ids.insert(k, id);
        }
    }
    // Aggregate the batch first: many datapoints of one request share coarse buckets.
    let mut buckets: BTreeMap<(i64, i64, i64), Agg> = BTreeMap::new();
    for p in points {
        let id = ids[&p.series];
        for &(width, _) in TIERS.iter().filter(|(w, _)| *w >= p.resolution) {
            let ts = p.timestamp.div_euclid(width) * width;
            buckets
                .entry((id, width, ts))
                .and_modify(|a| a.merge(&p.agg))
                .or_insert(p.agg);
        }
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO cw_points (series, tier, ts, n, total, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (series, tier, ts) DO UPDATE SET
           n = n + excluded.n, total = total + excluded.total,
           lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)",
    )?;
    for ((id, tier, ts), a) in buckets {
        upsert.execute(params![id, tier, ts, a.count, a.sum, a.min, a.max])?;
    }
    Ok(())
}

/// A series as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    pub id: i64,
    pub key: SeriesKey,
    pub last_put: i64,
}

/// Every series, optionally of one namespace and metric name.
pub fn series(
    conn: &Connection,
    namespace: Option<&str>,
    metric_name: Option<&str>,
) -> rusqlite::Result<Vec<SeriesRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, namespace, metric_name, dimensions, unit, last_put FROM cw_series
         WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR metric_name = ?2)",
    )?;
    let rows = stmt.query_map(params![namespace, metric_name], |r| {
        Ok(SeriesRow {
            id: r.get(0)?,
            key: SeriesKey {
                namespace: r.get(1)?,
                metric_name: r.get(2)?,
                dimensions: parse_dimensions(&r.get::<_, String>(3)?),
                unit: r.get(4)?,
            },
            last_put: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The series of exactly this metric (all units, or one).
pub fn series_of(
    conn: &Connection,
    namespace: &str,
    metric_name: &str,
    dimensions: &[Dimension],
    unit: Option<&str>,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, unit FROM cw_series WHERE namespace = ?1 AND metric_name = ?2 AND dimensions = ?3
         AND (?4 IS NULL OR unit = ?4) ORDER BY unit",
    )?;
    let rows = stmt.query_map(
        params![
            namespace,
            metric_name,
            canonical_dimensions(dimensions),
            unit
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.collect()
}

/// The buckets of one series in one tier with `start <= ts < end`, ascending.
pub fn points(
    conn: &Connection,
    series: i64,
    tier: i64,
    start: i64,
    end: i64,
) -> rusqlite::Result<Vec<(i64, Agg)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts, n, total, lo, hi FROM cw_points WHERE series = ?1 AND tier = ?2 AND ts >= ?3 AND ts < ?4 ORDER BY ts",
    )?;
    let rows = stmt.query_map(params![series, tier, start, end], |r| {
        Ok((
            r.get(0)?,
            Agg {
                count: r.get(1)?,
                sum: r.get(2)?,
                min: r.get(3)?,
                max: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// Drops buckets past their tier's retention, and series with no datapoints left in any
/// tier (CloudWatch stops listing a metric once it has no data). Returns rows deleted.
pub fn expire(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<usize> {
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM cw_series")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut deleted = 0;
    let mut delete =
        tx.prepare_cached("DELETE FROM cw_points WHERE series = ?1 AND tier = ?2 AND ts < ?3")?;
    for &id in &ids {
        for (width, keep) in TIERS {
            deleted += delete.execute(params![id, width, now - keep])?;
        }
    }
    deleted += tx.execute(
        "DELETE FROM cw_series WHERE NOT EXISTS (SELECT 1 FROM cw_points WHERE series = cw_series.id)",
        [],
    )?;
    Ok(deleted)
}

// Alarms -------------------------------------------------------------------------------------

pub fn get_alarm(conn: &Connection, name: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT body FROM cw_alarms WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

pub fn put_alarm(tx: &Transaction<'_>, name: &str, body: &[u8]) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO cw_alarms (name, body) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET body = excluded.body",
        params![name, body],
    )?;
    Ok(())
}

pub fn delete_alarm(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute("DELETE FROM cw_alarms WHERE name = ?1", [name])? == 1)
}

/// Every alarm, by name.
pub fn alarms(conn: &Connection) -> rusqlite::Result<Vec<(String, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached("SELECT name, body FROM cw_alarms ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub id: i64,
    pub alarm_name: String,
    pub ts: f64,
    pub item_type: String,
    pub summary: String,
    pub data: String,
}

pub fn add_history(
    tx: &Transaction<'_>,
    alarm_name: &str,
    ts: f64,
    item_type: &str,
    summary: &str,
    data: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO cw_alarm_history (alarm_name, ts, item_type, summary, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![alarm_name, ts, item_type, summary, data],
    )?;
    Ok(())
}

/// History items, filtered, in `(ts, id)` order (descending when `descending`).
pub fn history(
    conn: &Connection,
    alarm_name: Option<&str>,
    item_type: Option<&str>,
    start: Option<f64>,
    end: Option<f64>,
    descending: bool,
) -> rusqlite::Result<Vec<HistoryRow>> {
    let order = if descending { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare(&format!(
        "SELECT id, alarm_name, ts, item_type, summary, data FROM cw_alarm_history
         WHERE (?1 IS NULL OR alarm_name = ?1) AND (?2 IS NULL OR item_type = ?2)
         AND (?3 IS NULL OR ts >= ?3) AND (?4 IS NULL OR ts <= ?4)
         ORDER BY ts {order}, id {order}"
    ))?;
    let rows = stmt.query_map(params![alarm_name, item_type, start, end], |r| {
        Ok(HistoryRow {
            id: r.get(0)?,
            alarm_name: r.get(1)?,
            ts: r.get(2)?,
            item_type: r.get(3)?,
            summary: r.get(4)?,
            data: r.get(5)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            namespace: "App".into(),
            metric_name: name.into(),
            dimensions: vec![Dimension {
                name: "Host".into(),
                value: "a".into(),
            }],
            unit: "Count".into(),
        }
    }

    fn one(v: f64) -> Agg {
        Agg {
            count: 1.0,
            sum: v,
            min: v,
            max: v,
        }
    }

    #[test]
    fn points_roll_up_into_every_coarser_tier_and_expire() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let now = 1_000_000_020;
        let tx = conn.transaction().unwrap();
        put(
            &tx,
            &[
                Point {
                    series: key("m"),
                    timestamp: now - 5,
                    resolution: 1,
                    agg: one(2.0),
                },
                Point {
                    series: key("m"),
                    timestamp: now - 4,
                    resolution: 1,
                    agg: one(4.0),
                },
                Point {
                    series: key("m"),
                    timestamp: now - 100_000,
                    resolution: 60,
                    agg: one(10.0),
                },
            ],
            now,
        )
        .unwrap();
        tx.commit().unwrap();
        let ids = series_of(&conn, "App", "m", &key("m").dimensions, None).unwrap();
        assert_eq!(ids.len(), 1);
        let id = ids[0].0;
        assert_eq!(points(&conn, id, 1, 0, i64::MAX).unwrap().len(), 2);
        let minute = points(&conn, id, 60, now - 60, now + 60).unwrap();
        assert_eq!(minute.len(), 1);
        assert_eq!(
            minute[0].1,
            Agg {
                count: 2.0,
                sum: 6.0,
                min: 2.0,
                max: 4.0
            }
        );
        assert_eq!(points(&conn, id, 3600, 0, i64::MAX).unwrap().len(), 2);
        // Four hours on, the 1-second tier is gone but the minute tier is kept.
        let tx = conn.transaction().unwrap();
        expire(&tx, now + 4 * 3600).unwrap();
        tx.commit().unwrap();
        assert!(points(&conn, id, 1, 0, i64::MAX).unwrap().is_empty());
        assert_eq!(points(&conn, id, 60, 0, i64::MAX).unwrap().len(), 2);
        // After 456 days nothing is left, not even the series.
        let tx = conn.transaction().unwrap();
        expire(&tx, now + 456 * 86400).unwrap();
        tx.commit().unwrap();
        assert!(series(&conn, None, None).unwrap().is_empty());
    }
}
