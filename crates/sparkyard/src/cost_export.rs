//! The Cost and Usage Report–shaped export (docs/cost.md): each UTC day's ended runs as CUR
//! line items (`sparkyard_cost::cur`), written to `[cost] export` in S3 as two CUR 2.0 data
//! exports — `<name>` in Parquet (snappy) and `<name>-csv` in gzip CSV — each in
//! `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-YYYY-MM-DD.<ext>`.
//!
//! A run belongs to the day it ended (UTC). Like AWS's, the export is refreshed during the
//! day: every `export-interval`, today's and yesterday's files are written again when
//! their runs changed. It writes through the S3 API as the server's bootstrap identity,
//! as any client would.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use sparkyard_cost::cur::{self, Cell, LineItem, RunIdentity};
use sparkyard_emr::{Emr, JobRunRecord, JobRunState};

/// `[cost]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CostConfig {
    /// `s3://bucket/prefix` to write the daily export to; unset: no export.
    #[serde(default)]
    pub export: Option<String>,
    /// The export's name (the folder under the prefix, and the files' stem).
    #[serde(default = "default_name")]
    pub export_name: String,
    /// How often today's and yesterday's files are refreshed, in seconds.
    #[serde(default = "default_interval")]
    pub export_interval_seconds: u64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            export: None,
            export_name: default_name(),
            export_interval_seconds: default_interval(),
        }
    }
}

fn default_name() -> String {
    "sparkyard-cur".into()
}

fn default_interval() -> u64 {
    3600
}

impl CostConfig {
    /// The export's bucket and prefix; an error names the key and what is wrong.
    pub fn destination(&self) -> anyhow::Result<Option<(String, String)>> {
        let Some(uri) = &self.export else {
            return Ok(None);
        };
        let rest = uri
            .strip_prefix("s3://")
            .with_context(|| format!("[cost] export = {uri:?}: expected s3://bucket[/prefix]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            anyhow::bail!("[cost] export = {uri:?}: the bucket name is empty");
        }
        if self.export_name.is_empty() || self.export_name.contains('/') {
            anyhow::bail!(
                "[cost] export-name = {:?}: must be non-empty, without '/'",
                self.export_name
            );
        }
        Ok(Some((
            bucket.to_string(),
            prefix.trim_matches('/').to_string(),
        )))
    }
}

/// What the exporter needs beyond `[cost]`.
pub struct Exporter {
    pub emr: Emr,
    pub config: CostConfig,
    pub cluster_name: String,
    pub endpoint_url: String,
    pub credentials: sparkyard_logs::aws::credentials::Credentials,
}

/// Starts the export loop when `[cost] export` is set.
pub fn start(exporter: Exporter) -> anyhow::Result<()> {
    let Some((bucket, prefix)) = exporter.config.destination()? else {
        return Ok(());
    };
    let region = exporter.emr.settings().region.clone();
    let env = sparkyard_logs::aws::env::AwsEnv::single(&region, &exporter.endpoint_url);
    let credentials = sparkyard_logs::aws::credentials::CachedCredentials::new(Box::new(
        sparkyard_logs::aws::credentials::StaticCredentials(exporter.credentials.clone()),
    ));
    let store = sparkyard_logs::aws::s3::bucket(&env, &bucket, credentials)?;
    tokio::spawn(run(exporter, Arc::new(store), prefix));
    Ok(())
}

async fn run(exporter: Exporter, store: Arc<dyn ObjectStore>, prefix: String) {
    let interval = Duration::from_secs(exporter.config.export_interval_seconds.max(1));
    // What each day's files were last written from, so an unchanged day is not rewritten.
    let mut written: HashMap<NaiveDate, Vec<(String, String)>> = HashMap::new();
    loop {
        let today = Utc::now().date_naive();
        let yesterday = today.pred_opt().unwrap_or(today);
        // One scan of the ended runs serves both days.
        let mut by_day = runs_ended_since(&exporter.emr, yesterday);
        for day in [yesterday, today] {
            let runs = by_day.remove(&day).unwrap_or_default();
            let fingerprint: Vec<(String, String)> = runs
                .iter()
                .map(|r| (r.id.clone(), r.updated_at.to_rfc3339()))
                .collect();
            if runs.is_empty() || written.get(&day) == Some(&fingerprint) {
                continue;
            }
            let identity = |r: &JobRunRecord| RunIdentity {
                account_id: exporter.emr.settings().account_id.clone(),
                cluster_name: exporter.cluster_name.clone(),
                namespace: r.namespace.clone(),
                virtual_cluster_id: r.virtual_cluster_id.clone(),
                job_run_id: r.id.clone(),
                job_run_arn: r.arn.clone(),
                tags: r
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            };
            let items: Vec<LineItem> = runs
                .iter()
                .filter_map(|r| Some(cur::line_items(&identity(r), r.cost.as_ref()?)))
                .flatten()
                .collect();
            match write_day(&*store, &prefix, &exporter.config.export_name, day, &items).await {
                Ok(keys) => {
                    tracing::info!(%day, runs = runs.len(), line_items = items.len(), ?keys, "cost and usage export written");
                    written.insert(day, fingerprint);
                }
                Err(e) => {
                    tracing::warn!(%day, error = %format!("{e:#}"), "cost and usage export failed; will retry")
                }
            }
        }
        written.retain(|day, _| *day >= today.pred_opt().unwrap_or(today));
        tokio::time::sleep(interval).await;
    }
}

/// The runs with a cost record that ended on `first` (UTC) or later, by the day they
/// ended, oldest first within a day.
fn runs_ended_since(emr: &Emr, first: NaiveDate) -> HashMap<NaiveDate, Vec<JobRunRecord>> {
    use JobRunState::*;
    let mut by_day: HashMap<NaiveDate, Vec<JobRunRecord>> = HashMap::new();
    for run in emr.job_runs_in_states(&[Completed, Failed, Cancelled]) {
        let day = match run.finished_at {
            Some(t) if run.cost.is_some() && t.date_naive() >= first => t.date_naive(),
            _ => continue,
        };
        by_day.entry(day).or_default().push(run);
    }
    by_day
}

/// The S3 keys of `day`'s files: Parquet, then CSV.
pub fn keys(prefix: &str, name: &str, day: NaiveDate) -> [String; 2] {
    let period = day.format("%Y-%m");
    let key = |export: &str, ext: &str| {
        let path = format!("{export}/data/BILLING_PERIOD={period}/{export}-{day}.{ext}");
        if prefix.is_empty() {
            path
        } else {
            format!("{prefix}/{path}")
        }
    };
    [
        key(name, "snappy.parquet"),
        key(&format!("{name}-csv"), "csv.gz"),
    ]
}

async fn write_day(
    store: &dyn ObjectStore,
    prefix: &str,
    name: &str,
    day: NaiveDate,
    items: &[LineItem],
) -> anyhow::Result<[String; 2]> {
    let [parquet_key, csv_key] = keys(prefix, name, day);
    let parquet = to_parquet(items)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(cur::to_csv(items).as_bytes())?;
    let csv = gz.finish()?;
    for (key, bytes) in [(&parquet_key, parquet), (&csv_key, csv)] {
        store
            .put(&object_store::path::Path::from(key.as_str()), bytes.into())
            .await
            .with_context(|| format!("PutObject {key}"))?;
    }
    Ok([parquet_key, csv_key])
}

/// The line items as one Parquet file, snappy-compressed: text columns as UTF-8 strings,
/// numbers as doubles, times as UTC millisecond timestamps, as CUR 2.0's Parquet has them;
/// tag columns are nullable strings.
pub fn to_parquet(items: &[LineItem]) -> anyhow::Result<Vec<u8>> {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;

    let tags = cur::tag_keys(items);
    let kinds: Vec<&Cell> = match items.first() {
        Some(first) => first.cells.iter().collect(),
        None => Vec::new(),
    };
    let mut schema = String::from("message cur {\n");
    for (i, column) in cur::COLUMNS.iter().enumerate() {
        let field = match kinds.get(i) {
            Some(Cell::Number(_)) => format!("  REQUIRED DOUBLE {column};\n"),
            Some(Cell::Time(_)) => {
                format!("  REQUIRED INT64 {column} (TIMESTAMP(MILLIS,true));\n")
            }
            _ => format!("  REQUIRED BINARY {column} (STRING);\n"),
        };
        schema.push_str(&field);
    }
    for key in &tags {
        schema.push_str(&format!(
            "  OPTIONAL BINARY {} (STRING);\n",
            cur::tag_column(key)
        ));
    }
    schema.push('}');
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by("sparkyard".into())
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, properties)?;
    let mut group = writer.next_row_group()?;
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        if index < cur::COLUMNS.len() {
            let cells = items.iter().map(|i| &i.cells[index]);
            match kinds.get(index) {
                Some(Cell::Number(_)) => {
                    let values: Vec<f64> = cells
                        .map(|c| if let Cell::Number(n) = c { *n } else { 0.0 })
                        .collect();
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, None, None)?;
                }
                Some(Cell::Time(_)) => {
                    let values: Vec<i64> = cells
                        .map(|c| match c {
                            Cell::Time(t) => t.timestamp_millis(),
                            _ => 0,
                        })
                        .collect();
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    let values: Vec<ByteArray> = cells
                        .map(|c| match c {
                            Cell::Text(s) => ByteArray::from(s.as_str()),
                            _ => ByteArray::from(""),
                        })
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, None, None)?;
                }
            }
        } else {
            let key = &tags[index - cur::COLUMNS.len()];
            let present: Vec<ByteArray> = items
                .iter()
                .filter_map(|i| i.tags.get(key).map(|v| ByteArray::from(v.as_str())))
                .collect();
            let levels: Vec<i16> = items
                .iter()
                .map(|i| i16::from(i.tags.contains_key(key)))
                .collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&present, Some(&levels), None)?;
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_data_export_layout() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(
            keys("cur", "sparkyard-cur", day),
            [
                "cur/sparkyard-cur/data/BILLING_PERIOD=2026-12/sparkyard-cur-2026-12-05.snappy.parquet",
                "cur/sparkyard-cur-csv/data/BILLING_PERIOD=2026-12/sparkyard-cur-csv-2026-12-05.csv.gz",
            ]
        );
        assert!(keys("", "x", day)[0].starts_with("x/data/"));
    }

    #[test]
    fn a_bad_destination_is_named() {
        let config = |uri: &str| CostConfig {
            export: Some(uri.into()),
            ..CostConfig::default()
        };
        assert_eq!(
            config("s3://finops/cur/").destination().unwrap(),
            Some(("finops".into(), "cur".into()))
        );
        let e = config("finops/cur").destination().unwrap_err().to_string();
        assert!(e.contains("expected s3://bucket[/prefix]"), "{e}");
        assert_eq!(CostConfig::default().destination().unwrap(), None);
    }
}
