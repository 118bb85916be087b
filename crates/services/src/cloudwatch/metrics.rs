//! The metric operations: `PutMetricData` (validation, then one all-or-nothing write),
//! `ListMetrics`, `GetMetricStatistics` and `GetMetricData` (metric stats from the store,
//! expressions through [`super::math`]), and the read path they and the alarm evaluator
//! share ([`fetch`]): pick the tier that covers the start time, aggregate its buckets into
//! the requested period.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Connection;

use super::codec::{CwError, Timestamp};
use super::math;
use super::model::*;
use super::store::{self, Agg, Point, SeriesKey};

pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

pub const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

const MAX_DIMENSIONS: usize = 30;
const MAX_METRIC_DATA: usize = 1000;
const MAX_VALUES: usize = 150;
const LIST_PAGE: usize = 500;
const MAX_STATISTICS_DATAPOINTS: i64 = 1440;
const DEFAULT_MAX_DATAPOINTS: i64 = 100_800;
const MAX_QUERIES: usize = 500;

/// How CloudWatch prints a number in its messages (`NaN`, `Infinity`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

/// `1440` → `1,440`, as CloudWatch's datapoint-limit message writes counts.
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// CloudWatch's accepted range for a value: finite, within ±2^360, and 0 or at least 2^-260
/// in magnitude.
fn acceptable(v: f64) -> bool {
    v.is_finite() && (v == 0.0 || (v.abs() <= 2f64.powi(360) && v.abs() >= 2f64.powi(-260)))
}

pub fn validate_namespace(
    namespace: Option<&str>,
    reserved_check: bool,
) -> Result<String, CwError> {
    let ns = namespace.ok_or_else(|| CwError::missing("Namespace"))?;
    let bad = || {
        CwError::invalid_value(format!(
            "The value {ns} for parameter Namespace is invalid."
        ))
    };
    if ns.is_empty() || ns.len() > 255 || ns.starts_with(':') || !ns.is_ascii() {
        return Err(bad());
    }
    if reserved_check && ns.starts_with("AWS/") {
        return Err(bad());
    }
    Ok(ns.to_string())
}

pub fn validate_unit(unit: Option<&str>, param: &str) -> Result<Option<String>, CwError> {
    match unit {
        None => Ok(None),
        Some(u) if UNITS.contains(&u) => Ok(Some(u.to_string())),
        Some(u) => Err(CwError::invalid_value(format!(
            "The value {u} for parameter {param} is invalid."
        ))),
    }
}

pub fn validate_dimensions(dims: &[Dimension], param: &str) -> Result<Vec<Dimension>, CwError> {
    if dims.len() > MAX_DIMENSIONS {
        return Err(CwError::invalid_value(format!(
            "The collection {param} must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    let mut seen = HashSet::new();
    for (i, d) in dims.iter().enumerate() {
        let at = format!("{param}.member.{}", i + 1);
        if d.name.is_empty() {
            return Err(CwError::missing(&format!("{at}.Name")));
        }
        if d.value.is_empty() {
            return Err(CwError::missing(&format!("{at}.Value")));
        }
        if d.name.len() > 255 || d.value.len() > 1024 {
            return Err(CwError::invalid_value(format!(
                "The value {} for parameter {at} is invalid.",
                d.name
            )));
        }
        if !seen.insert(&d.name) {
            return Err(CwError::invalid_value(format!(
                "No metric may have more than one dimension named {} ({at}.Name).",
                d.name
            )));
        }
    }
    let mut sorted = dims.to_vec();
    sorted.sort();
    Ok(sorted)
}

/// A period is 1, 5, 10, 30 (high resolution) or a multiple of 60.
pub fn valid_period(period: i64) -> bool {
    matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period % 60 == 0)
}

fn check_period(period: Option<i64>, param: &str) -> Result<i64, CwError> {
    let p = period.ok_or_else(|| CwError::missing(param))?;
    if !valid_period(p) {
        return Err(CwError::invalid_value(format!(
            "The parameter {param} must be a multiple of 60."
        )));
    }
    Ok(p)
}

fn check_range(start: Option<Timestamp>, end: Option<Timestamp>) -> Result<(i64, i64), CwError> {
    let start = start.ok_or_else(|| CwError::missing("StartTime"))?.secs();
    let end = end.ok_or_else(|| CwError::missing("EndTime"))?;
    let end = end.0.ceil() as i64;
    if start == end {
        return Err(CwError::invalid_value(
            "The parameter StartTime must not equal parameter EndTime.",
        ));
    }
    if start > end {
        return Err(CwError::invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start, end))
}

/// Checks a `PutMetricData` request and turns it into points; any invalid item fails the
/// whole request (messages of every invalid item, one per line, as CloudWatch lists them).
pub fn put_metric_data(input: PutMetricDataInput, now: i64) -> Result<Vec<Point>, CwError> {
    let namespace = validate_namespace(input.namespace.as_deref(), true)?;
    let data = input.metric_data.unwrap_or_default();
    if data.is_empty() {
        return Err(CwError::missing("MetricData"));
    }
    if data.len() > MAX_METRIC_DATA {
        return Err(CwError::invalid_value(format!(
            "The collection MetricData must not have a size greater than {MAX_METRIC_DATA}."
        )));
    }
    let mut points = Vec::new();
    let mut errors: Vec<CwError> = Vec::new();
    for (i, datum) in data.into_iter().enumerate() {
        match datum_points(
            &namespace,
            datum,
            &format!("MetricData.member.{}", i + 1),
            now,
        ) {
            Ok(mut p) => points.append(&mut p),
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.first() {
        let same: Vec<&str> = errors
            .iter()
            .filter(|e| e.code == first.code)
            .map(|e| e.message.as_str())
            .collect();
        let mut e = first.clone();
        e.message = same.join("\n");
        return Err(e);
    }
    Ok(points)
}

fn datum_points(
    namespace: &str,
    d: MetricDatum,
    at: &str,
    now: i64,
) -> Result<Vec<Point>, CwError> {
    let name = d
        .metric_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CwError::missing(&format!("{at}.MetricName")))?;
    if name.len() > 255 {
        return Err(CwError::invalid_value(format!(
            "The value {name} for parameter {at}.MetricName is invalid."
        )));
    }
    let dimensions = validate_dimensions(
        d.dimensions.as_deref().unwrap_or(&[]),
        &format!("{at}.Dimensions"),
    )?;
    let unit =
        validate_unit(d.unit.as_deref(), &format!("{at}.Unit"))?.unwrap_or_else(|| "None".into());
    let resolution = match d.storage_resolution {
        None | Some(60) => 60,
        Some(1) => 1,
        Some(r) => {
            return Err(CwError::invalid_value(format!(
                "The value {r} for parameter {at}.StorageResolution is invalid."
            )))
        }
    };
    let timestamp = match d.timestamp {
        None => now,
        Some(t) => {
            let t = t.secs();
            if t < now - 14 * 86400 {
                return Err(CwError::invalid_value(format!(
                    "The parameter {at}.Timestamp must specify a time within the past two weeks."
                )));
            }
            if t > now + 2 * 3600 {
                return Err(CwError::invalid_value(format!(
                    "The parameter {at}.Timestamp must specify a time no more than two hours in the future."
                )));
            }
            t
        }
    };
    let check = |v: f64, param: &str| {
        if acceptable(v) {
            Ok(v)
        } else {
            Err(CwError::invalid_value(format!(
                "The value {} for parameter {at}.{param} is invalid.",
                number(v)
            )))
        }
    };
    let given = [
        ("Value", d.value.is_some()),
        ("StatisticValues", d.statistic_values.is_some()),
        ("Values", d.values.is_some()),
    ];
    let set: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    if set.len() > 1 {
        return Err(CwError::combination(format!(
            "The parameters {at}.{} and {at}.{} are mutually exclusive and you have specified both.",
            set[0], set[1]
        )));
    }
    let mut aggs: Vec<Agg> = Vec::new();
    if let Some(v) = d.value {
        let v = check(v, "Value")?;
        aggs.push(Agg {
            count: 1.0,
            sum: v,
            min: v,
            max: v,
        });
    } else if let Some(s) = d.statistic_values {
        let field = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| CwError::missing(&format!("{at}.StatisticValues.{name}")))
                .and_then(|v| check(v, &format!("StatisticValues.{name}")))
        };
        let count = field(s.sample_count, "SampleCount")?;
        let sum = field(s.sum, "Sum")?;
        let min = field(s.minimum, "Minimum")?;
        let max = field(s.maximum, "Maximum")?;
        if count <= 0.0 {
            return Err(CwError::invalid_value(format!(
                "The value {} for parameter {at}.StatisticValues.SampleCount is invalid.",
                number(count)
            )));
        }
        if min > max {
            return Err(CwError::invalid_value(format!(
                "The parameter {at}.StatisticValues.Minimum must be less than or equal to the parameter {at}.StatisticValues.Maximum."
            )));
        }
        aggs.push(Agg {
            count,
            sum,
            min,
            max,
        });
    } else if let Some(values) = d.values {
        if values.len() > MAX_VALUES {
            return Err(CwError::invalid_value(format!(
                "The collection {at}.Values must not have a size greater than {MAX_VALUES}."
            )));
        }
        let counts = d.counts.unwrap_or_else(|| vec![1.0; values.len()]);
        if counts.len() != values.len() {
            return Err(CwError::invalid_value(format!(
                "The parameters {at}.Values and {at}.Counts must be of the same size."
            )));
        }
        for (j, (v, c)) in values.iter().zip(&counts).enumerate() {
            let v = check(*v, &format!("Values.member.{}", j + 1))?;
            let c = check(*c, &format!("Counts.member.{}", j + 1))?;
            if c < 0.0 {
                return Err(CwError::invalid_value(format!(
                    "The value {} for parameter {at}.Counts.member.{} is invalid.",
                    number(c),
                    j + 1
                )));
            }
            if c > 0.0 {
                aggs.push(Agg {
                    count: c,
                    sum: v * c,
                    min: v,
                    max: v,
                });
            }
        }
    } else {
        return Err(CwError::missing(&format!("{at}.Value")));
    }
    let series = SeriesKey {
        namespace: namespace.to_string(),
        metric_name: name,
        dimensions,
        unit,
    };
    Ok(aggs
        .into_iter()
        .map(|agg| Point {
            series: series.clone(),
            timestamp,
            resolution,
            agg,
        })
        .collect())
}

// ListMetrics --------------------------------------------------------------------------------

pub fn list_metrics(
    conn: &Connection,
    input: &ListMetricsInput,
    now: i64,
) -> Result<ListMetricsOutput, CwError> {
    let filters = input.dimensions.clone().unwrap_or_default();
    if filters.len() > 10 {
        return Err(CwError::invalid_value(
            "The collection Dimensions must not have a size greater than 10.",
        ));
    }
    for (i, f) in filters.iter().enumerate() {
        if f.name.as_deref().unwrap_or("").is_empty() {
            return Err(CwError::missing(&format!(
                "Dimensions.member.{}.Name",
                i + 1
            )));
        }
    }
    let recent = match input.recently_active.as_deref() {
        None => None,
        Some("PT3H") => Some(now - 3 * 3600),
        Some(other) => {
            return Err(CwError::invalid_value(format!(
                "The value {other} for parameter RecentlyActive is invalid."
            )))
        }
    };
    if let Some(ns) = &input.namespace {
        validate_namespace(Some(ns), false)?;
    }
    let rows = store::series(
        conn,
        input.namespace.as_deref(),
        input.metric_name.as_deref(),
    )
    .map_err(super::db_error)?;
    // One metric per (namespace, name, dimensions), whatever units it was put with.
    let mut metrics: BTreeMap<(String, String, String), (Vec<Dimension>, i64)> = BTreeMap::new();
    for row in rows {
        let matches = filters.iter().all(|f| {
            row.key.dimensions.iter().any(|d| {
                Some(&d.name) == f.name.as_ref() && f.value.as_ref().is_none_or(|v| *v == d.value)
            })
        });
        if !matches {
            continue;
        }
        let key = (
            row.key.namespace.clone(),
            row.key.metric_name.clone(),
            store::canonical_dimensions(&row.key.dimensions),
        );
        let entry = metrics
            .entry(key)
            .or_insert((row.key.dimensions, row.last_put));
        entry.1 = entry.1.max(row.last_put);
    }
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(decode_list_token(t).ok_or_else(|| {
            CwError::invalid_value(format!("The value {t} for parameter NextToken is invalid."))
        })?),
    };
    let mut out = Vec::new();
    let mut next = None;
    for (key, (dims, last_put)) in metrics {
        if after.as_ref().is_some_and(|a| &key <= a) {
            continue;
        }
        if recent.is_some_and(|r| last_put < r) {
            continue;
        }
        if out.len() == LIST_PAGE {
            next = out
                .last()
                .map(|(k, _): &((String, String, String), Metric)| encode_list_token(k));
            break;
        }
        let metric = Metric {
            namespace: Some(key.0.clone()),
            metric_name: Some(key.1.clone()),
            dimensions: Some(dims),
        };
        out.push((key, metric));
    }
    Ok(ListMetricsOutput {
        metrics: out.into_iter().map(|(_, m)| m).collect(),
        next_token: next,
    })
}

fn encode_list_token(key: &(String, String, String)) -> String {
    crate::s3::blob::b64(
        serde_json::to_string(&[&key.0, &key.1, &key.2])
            .unwrap_or_default()
            .as_bytes(),
    )
}

fn decode_list_token(token: &str) -> Option<(String, String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let [a, b, c]: [String; 3] = serde_json::from_slice(&bytes).ok()?;
    Some((a, b, c))
}

// Reading datapoints -------------------------------------------------------------------------

/// Which metric to read.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSel {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub unit: Option<String>,
}

/// The tier a query reads and the start it aligns periods to: CloudWatch's rule that the
/// start time's age decides the resolution available (1 s up to 3 h, 1 min up to 15 days,
/// 5 min up to 63 days, 1 h beyond). `None`: the period does not fit that tier, and
/// CloudWatch returns no datapoints.
pub fn tier_for(start: i64, period: i64, now: i64) -> Option<(i64, i64)> {
    let age = now - start;
    let (width, _) = if period < 60 {
        (store::TIERS[0].1 >= age).then_some(store::TIERS[0])?
    } else {
        *store::TIERS[1..]
            .iter()
            .find(|(_, keep)| *keep >= age)
            .unwrap_or(&store::TIERS[3])
    };
    (period % width == 0).then_some((width, start.div_euclid(width) * width))
}

/// Period buckets `(period start, statistic set)` of `sel` in `[start, end)`, per unit
/// (one entry when `sel.unit` is set), ascending.
pub fn fetch(
    conn: &Connection,
    sel: &MetricSel,
    start: i64,
    end: i64,
    period: i64,
    now: i64,
) -> rusqlite::Result<Vec<(String, BTreeMap<i64, Agg>)>> {
    let Some((tier, aligned)) = tier_for(start, period, now) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (id, unit) in store::series_of(
        conn,
        &sel.namespace,
        &sel.metric_name,
        &sel.dimensions,
        sel.unit.as_deref(),
    )? {
        let mut buckets: BTreeMap<i64, Agg> = BTreeMap::new();
        for (ts, agg) in store::points(conn, id, tier, aligned, end)? {
            let bucket = aligned + (ts - aligned).div_euclid(period) * period;
            buckets
                .entry(bucket)
                .and_modify(|a| a.merge(&agg))
                .or_insert(agg);
        }
        if !buckets.is_empty() {
            out.push((unit, buckets));
        }
    }
    Ok(out)
}

/// [`fetch`] with every unit merged (what `GetMetricData` and alarms without a unit see).
pub fn fetch_merged(
    conn: &Connection,
    sel: &MetricSel,
    start: i64,
    end: i64,
    period: i64,
    now: i64,
) -> rusqlite::Result<BTreeMap<i64, Agg>> {
    let mut merged: BTreeMap<i64, Agg> = BTreeMap::new();
    for (_, buckets) in fetch(conn, sel, start, end, period, now)? {
        for (ts, agg) in buckets {
            merged
                .entry(ts)
                .and_modify(|a| a.merge(&agg))
                .or_insert(agg);
        }
    }
    Ok(merged)
}

// GetMetricStatistics ------------------------------------------------------------------------

/// A checked `GetMetricStatistics` request.
pub struct StatisticsQuery {
    pub sel: MetricSel,
    pub start: i64,
    pub end: i64,
    pub period: i64,
    pub statistics: Vec<String>,
}

fn percentile_unsupported(stat: &str) -> CwError {
    CwError::invalid_value(format!(
        "The statistic {stat} is not supported here: sparkyard keeps statistic sets (count, sum, minimum, maximum), not raw values, so percentiles cannot be computed."
    ))
}

fn is_percentile_like(stat: &str) -> bool {
    let lower = stat.to_ascii_lowercase();
    ["p", "tm", "wm", "tc", "ts", "pr", "iqm"]
        .iter()
        .any(|p| lower.starts_with(p))
}

pub fn check_statistics(input: GetMetricStatisticsInput) -> Result<StatisticsQuery, CwError> {
    let namespace = validate_namespace(input.namespace.as_deref(), false)?;
    let metric_name = input
        .metric_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CwError::missing("MetricName"))?;
    let dimensions = validate_dimensions(input.dimensions.as_deref().unwrap_or(&[]), "Dimensions")?;
    let (start, end) = check_range(input.start_time, input.end_time)?;
    let period = check_period(input.period, "Period")?;
    let unit = validate_unit(input.unit.as_deref(), "Unit")?;
    let statistics = input.statistics.unwrap_or_default();
    let extended = input.extended_statistics.unwrap_or_default();
    if statistics.is_empty() && extended.is_empty() {
        return Err(CwError::combination(
            "Must specify either Statistics or ExtendedStatistics.",
        ));
    }
    if let Some(stat) = extended.first() {
        return Err(percentile_unsupported(stat));
    }
    for (i, s) in statistics.iter().enumerate() {
        if !STATISTICS.contains(&s.as_str()) {
            return Err(CwError::invalid_value(format!(
                "The parameter Statistics.member.{} must be a value in the set [ Average, Sum, SampleCount, Maximum, Minimum ].",
                i + 1
            )));
        }
    }
    let aligned = start.div_euclid(period.min(60)) * period.min(60);
    let requested = (end - aligned + period - 1) / period;
    if requested > MAX_STATISTICS_DATAPOINTS {
        return Err(CwError::combination(format!(
            "You have requested up to {} datapoints, which exceeds the limit of {}. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
            thousands(requested),
            thousands(MAX_STATISTICS_DATAPOINTS)
        )));
    }
    Ok(StatisticsQuery {
        sel: MetricSel {
            namespace,
            metric_name,
            dimensions,
            unit,
        },
        start,
        end,
        period,
        statistics,
    })
}

pub fn get_metric_statistics(
    conn: &Connection,
    q: &StatisticsQuery,
    now: i64,
) -> rusqlite::Result<GetMetricStatisticsOutput> {
    let mut datapoints = Vec::new();
    for (unit, buckets) in fetch(conn, &q.sel, q.start, q.end, q.period, now)? {
        for (ts, agg) in buckets {
            let want = |s: &str| {
                q.statistics
                    .iter()
                    .any(|x| x == s)
                    .then(|| agg.stat(s))
                    .flatten()
            };
            datapoints.push(Datapoint {
                timestamp: Timestamp::from_secs(ts),
                sample_count: want("SampleCount"),
                average: want("Average"),
                sum: want("Sum"),
                minimum: want("Minimum"),
                maximum: want("Maximum"),
                unit: unit.clone(),
            });
        }
    }
    Ok(GetMetricStatisticsOutput {
        label: q.sel.metric_name.clone(),
        datapoints,
    })
}

// GetMetricData ------------------------------------------------------------------------------

/// A checked `GetMetricData` request: the queries in evaluation order.
#[derive(Debug, Clone)]
pub struct DataRequest {
    pub queries: Vec<MetricDataQuery>,
    /// Indexes into `queries`: metric stats first, then expressions in dependency order.
    pub order: Vec<usize>,
    pub exprs: HashMap<String, math::Expr>,
    pub start: i64,
    pub end: i64,
    pub descending: bool,
    pub max_datapoints: i64,
    pub offset: usize,
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks queries (ids, metric stat or expression, periods, statistics, expression syntax,
/// references) and orders them for evaluation. `at` names the list (`MetricDataQueries` or
/// an alarm's `Metrics`).
pub fn check_queries(
    queries: &[MetricDataQuery],
    at: &str,
) -> Result<(Vec<usize>, HashMap<String, math::Expr>), CwError> {
    if queries.is_empty() {
        return Err(CwError::missing(at));
    }
    if queries.len() > MAX_QUERIES {
        return Err(CwError::invalid_value(format!(
            "The collection {at} must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let mut ids = HashSet::new();
    let mut exprs = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        let here = format!("{at}.member.{}", i + 1);
        if q.id.is_empty() {
            return Err(CwError::missing(&format!("{here}.Id")));
        }
        if !valid_id(&q.id) {
            return Err(CwError::validation(format!(
                "Invalid metric data query id {}: the Id must start with a lowercase letter and contain only letters, numbers and underscores ({here}.Id).",
                q.id
            )));
        }
        if !ids.insert(q.id.as_str()) {
            return Err(CwError::validation(format!(
                "The value {} for parameter {here}.Id is not unique.",
                q.id
            )));
        }
        match (&q.metric_stat, &q.expression) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(CwError::combination(format!(
                "Exactly one element of {here}.MetricStat and {here}.Expression must be specified."
            )))
            }
            (Some(stat), None) => {
                let metric = stat
                    .metric
                    .as_ref()
                    .ok_or_else(|| CwError::missing(&format!("{here}.MetricStat.Metric")))?;
                validate_namespace(metric.namespace.as_deref(), false)?;
                if metric.metric_name.as_deref().unwrap_or("").is_empty() {
                    return Err(CwError::missing(&format!(
                        "{here}.MetricStat.Metric.MetricName"
                    )));
                }
                validate_dimensions(
                    metric.dimensions.as_deref().unwrap_or(&[]),
                    &format!("{here}.MetricStat.Metric.Dimensions"),
                )?;
                check_period(stat.period, &format!("{here}.MetricStat.Period"))?;
                validate_unit(stat.unit.as_deref(), &format!("{here}.MetricStat.Unit"))?;
                let s = stat
                    .stat
                    .as_deref()
                    .ok_or_else(|| CwError::missing(&format!("{here}.MetricStat.Stat")))?;
                if !STATISTICS.contains(&s) {
                    if is_percentile_like(s) {
                        return Err(percentile_unsupported(s));
                    }
                    return Err(CwError::invalid_value(format!(
                        "The value {s} for parameter {here}.MetricStat.Stat is invalid."
                    )));
                }
            }
            (None, Some(expression)) => {
                if let Some(p) = q.period {
                    check_period(Some(p), &format!("{here}.Period"))?;
                }
                let expr = math::parse(expression)
                    .map_err(|e| CwError::validation(e.in_expression(&q.id)))?;
                exprs.insert(q.id.clone(), expr);
            }
        }
    }
    // Metric stats first, then expressions once everything they read is computed.
    let mut order: Vec<usize> = (0..queries.len())
        .filter(|&i| queries[i].metric_stat.is_some())
        .collect();
    let mut done: HashSet<&str> = order.iter().map(|&i| queries[i].id.as_str()).collect();
    let mut pending: Vec<usize> = (0..queries.len())
        .filter(|&i| queries[i].expression.is_some())
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|&i| {
            let id = queries[i].id.as_str();
            let expr = &exprs[id];
            // METRICS() reads the metric stats only, which are all computed first.
            let ready = expr
                .references()
                .iter()
                .all(|r| done.contains(r.as_str()) || !ids.contains(r.as_str()));
            if ready {
                order.push(i);
                done.insert(id);
            }
            !ready
        });
        if pending.len() == before {
            let id = &queries[pending[0]].id;
            return Err(CwError::validation(format!(
                "Error in expression {id}: Circular dependency between metric data queries."
            )));
        }
    }
    Ok((order, exprs))
}

pub fn check_data_request(input: GetMetricDataInput) -> Result<DataRequest, CwError> {
    let queries = input.metric_data_queries.unwrap_or_default();
    let (order, exprs) = check_queries(&queries, "MetricDataQueries")?;
    let (start, end) = check_range(input.start_time, input.end_time)?;
    let descending = match input.scan_by.as_deref() {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => {
            return Err(CwError::validation(format!(
                "1 validation error detected: Value '{other}' at 'scanBy' failed to satisfy constraint: Member must satisfy enum value set: [TimestampDescending, TimestampAscending]"
            )))
        }
    };
    let max_datapoints = match input.max_datapoints {
        None => DEFAULT_MAX_DATAPOINTS,
        Some(n) if n > 0 => n,
        Some(n) => {
            return Err(CwError::invalid_value(format!(
                "The value {n} for parameter MaxDatapoints is invalid."
            )))
        }
    };
    let offset = match &input.next_token {
        None => 0,
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| CwError::invalid_token(format!("The NextToken {t} is invalid.")))?,
    };
    Ok(DataRequest {
        queries,
        order,
        exprs,
        start,
        end,
        descending,
        max_datapoints,
        offset,
    })
}

fn metric_sel(stat: &MetricStat) -> MetricSel {
    let metric = stat.metric.clone().unwrap_or_default();
    let mut dimensions = metric.dimensions.unwrap_or_default();
    dimensions.sort();
    MetricSel {
        namespace: metric.namespace.unwrap_or_default(),
        metric_name: metric.metric_name.unwrap_or_default(),
        dimensions,
        unit: stat.unit.clone(),
    }
}

/// The metric stats' series, read in one snapshot: id → points ascending.
pub fn fetch_stats(
    conn: &Connection,
    req: &DataRequest,
    now: i64,
) -> rusqlite::Result<HashMap<String, Vec<(i64, f64)>>> {
    let mut out = HashMap::new();
    for q in &req.queries {
        let Some(stat) = &q.metric_stat else { continue };
        let period = stat.period.unwrap_or(60);
        let name = stat.stat.as_deref().unwrap_or("Average");
        let buckets = fetch_merged(conn, &metric_sel(stat), req.start, req.end, period, now)?;
        let points = buckets
            .into_iter()
            .filter_map(|(ts, agg)| agg.stat(name).map(|v| (ts, v)))
            .collect();
        out.insert(q.id.clone(), points);
    }
    Ok(out)
}

struct Ctx<'a> {
    values: &'a HashMap<String, math::Value>,
    metric_ids: Vec<String>,
    period: i64,
    timestamps: Vec<i64>,
}

impl math::MathContext for Ctx<'_> {
    fn value(&self, id: &str) -> Option<math::Value> {
        self.values.get(id).cloned()
    }
    fn metric_ids(&self) -> Vec<String> {
        self.metric_ids.clone()
    }
    fn period(&self) -> i64 {
        self.period
    }
    fn timestamps(&self) -> Vec<i64> {
        self.timestamps.clone()
    }
}

/// One evaluated query: its series (an expression may give several).
pub struct Evaluated {
    pub id: String,
    pub series: Vec<math::Series>,
}

/// Evaluates every query (expressions over the fetched metric stats), in request order.
pub fn evaluate(
    req: &DataRequest,
    stats: HashMap<String, Vec<(i64, f64)>>,
    now: i64,
) -> Result<Vec<Evaluated>, CwError> {
    let stat_period = req
        .queries
        .iter()
        .filter_map(|q| q.metric_stat.as_ref().and_then(|s| s.period))
        .min()
        .unwrap_or(60);
    let mut values: HashMap<String, math::Value> = HashMap::new();
    let mut results: HashMap<String, Vec<math::Series>> = HashMap::new();
    let metric_ids: Vec<String> = req
        .queries
        .iter()
        .filter(|q| q.metric_stat.is_some())
        .map(|q| q.id.clone())
        .collect();
    for &i in &req.order {
        let q = &req.queries[i];
        if let Some(stat) = &q.metric_stat {
            let label = q
                .label
                .clone()
                .unwrap_or_else(|| metric_sel(stat).metric_name);
            let series = math::Series::new(label, stats.get(&q.id).cloned().unwrap_or_default());
            values.insert(q.id.clone(), math::Value::Series(series.clone()));
            results.insert(q.id.clone(), vec![series]);
            continue;
        }
        let period = q.period.unwrap_or(stat_period);
        let aligned = tier_for(req.start, period, now)
            .map(|t| t.1)
            .unwrap_or(req.start);
        let timestamps: Vec<i64> = (0..)
            .map(|k| aligned + k * period)
            .take_while(|t| *t < req.end)
            .take(DEFAULT_MAX_DATAPOINTS as usize)
            .collect();
        let ctx = Ctx {
            values: &values,
            metric_ids: metric_ids.clone(),
            period,
            timestamps: timestamps.clone(),
        };
        let value = math::evaluate(&req.exprs[&q.id], &ctx)
            .map_err(|e| CwError::validation(e.in_expression(&q.id)))?;
        let label = q.label.clone().unwrap_or_else(|| q.id.clone());
        let series = match &value {
            math::Value::Scalar(v) => vec![math::Series::new(
                label,
                timestamps.iter().map(|t| (*t, *v)).collect(),
            )],
            math::Value::Series(s) => vec![math::Series::new(label, s.points.clone())],
            math::Value::Array(items) => items
                .iter()
                .map(|s| {
                    let l = if q.label.is_some() {
                        format!("{label} {}", s.label)
                    } else {
                        s.label.clone()
                    };
                    math::Series::new(l, s.points.clone())
                })
                .collect(),
        };
        values.insert(q.id.clone(), value);
        results.insert(q.id.clone(), series);
    }
    Ok(req
        .queries
        .iter()
        .map(|q| Evaluated {
            id: q.id.clone(),
            series: results.remove(&q.id).unwrap_or_default(),
        })
        .collect())
}

/// The `GetMetricData` answer: returned queries in request order, points in scan order,
/// cut at `MaxDatapoints` with a `NextToken` to go on from.
pub fn data_output(req: &DataRequest, evaluated: Vec<Evaluated>) -> GetMetricDataOutput {
    let mut results = Vec::new();
    let mut skip = req.offset;
    let mut room = req.max_datapoints.max(0) as usize;
    let mut truncated = false;
    for (q, e) in req.queries.iter().zip(evaluated) {
        if q.return_data == Some(false) {
            continue;
        }
        for series in e.series {
            let mut points = series.points;
            if req.descending {
                points.reverse();
            }
            let dropped = skip.min(points.len());
            skip -= dropped;
            let rest = &points[dropped..];
            let taken = rest.len().min(room);
            room -= taken;
            let partial = taken < rest.len();
            truncated |= partial;
            results.push(MetricDataResult {
                id: e.id.clone(),
                label: series.label,
                timestamps: rest[..taken]
                    .iter()
                    .map(|p| Timestamp::from_secs(p.0))
                    .collect(),
                values: rest[..taken].iter().map(|p| p.1).collect(),
                status_code: if partial { "PartialData" } else { "Complete" }.into(),
                messages: Vec::new(),
            });
        }
    }
    let returned = req.max_datapoints.max(0) as usize - room;
    GetMetricDataOutput {
        metric_data_results: results,
        next_token: truncated.then(|| format!("o{}", req.offset + returned)),
        messages: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_start_age() {
        let now = 10_000_000;
        assert_eq!(tier_for(now - 600, 1, now), Some((1, now - 600)));
        assert_eq!(tier_for(now - 4 * 3600, 10, now), None);
        assert_eq!(tier_for(now - 4 * 3600 - 30, 60, now).unwrap().0, 60);
        assert_eq!(tier_for(now - 20 * 86400, 300, now).unwrap().0, 300);
        assert_eq!(tier_for(now - 20 * 86400, 60, now), None);
        assert_eq!(tier_for(now - 100 * 86400, 3600, now).unwrap().0, 3600);
    }

    #[test]
    fn datapoint_limit_message() {
        let err = check_statistics(GetMetricStatisticsInput {
            namespace: Some("App".into()),
            metric_name: Some("m".into()),
            start_time: Some(Timestamp(0.0)),
            end_time: Some(Timestamp(86400.0 * 2.0)),
            period: Some(60),
            statistics: Some(vec!["Sum".into()]),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(err.code, "InvalidParameterCombination");
        assert!(
            err.message.starts_with(
                "You have requested up to 2,880 datapoints, which exceeds the limit of 1,440."
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn put_is_all_or_nothing_and_checks_values() {
        let now = 1_700_000_000;
        let datum = |v: f64| MetricDatum {
            metric_name: Some("m".into()),
            value: Some(v),
            ..Default::default()
        };
        let err = put_metric_data(
            PutMetricDataInput {
                namespace: Some("App".into()),
                metric_data: Some(vec![datum(1.0), datum(f64::NAN)]),
            },
            now,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.message,
            "The value NaN for parameter MetricData.member.2.Value is invalid."
        );
        let err = put_metric_data(
            PutMetricDataInput {
                namespace: Some("AWS/EC2".into()),
                metric_data: Some(vec![datum(1.0)]),
            },
            now,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.message,
            "The value AWS/EC2 for parameter Namespace is invalid."
        );
        let points = put_metric_data(
            PutMetricDataInput {
                namespace: Some("App".into()),
                metric_data: Some(vec![MetricDatum {
                    metric_name: Some("m".into()),
                    values: Some(vec![1.0, 2.0]),
                    counts: Some(vec![2.0, 0.0]),
                    ..Default::default()
                }]),
            },
            now,
        )
        .unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(
            points[0].agg,
            Agg {
                count: 2.0,
                sum: 2.0,
                min: 1.0,
                max: 1.0
            }
        );
    }

    #[test]
    fn circular_expressions_are_refused() {
        let q = |id: &str, e: &str| MetricDataQuery {
            id: id.into(),
            expression: Some(e.into()),
            ..Default::default()
        };
        let err = check_queries(&[q("e1", "e2 + 1"), q("e2", "e1 * 2")], "MetricDataQueries")
            .err()
            .unwrap();
        assert_eq!(err.code, "ValidationError");
        assert!(check_queries(&[q("E1", "1")], "MetricDataQueries").is_err());
    }
}
