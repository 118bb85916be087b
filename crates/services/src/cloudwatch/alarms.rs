//! Metric alarms: their configuration (`PutMetricAlarm`, checked as CloudWatch checks it),
//! the reads (`DescribeAlarms`, `DescribeAlarmsForMetric`, `DescribeAlarmHistory`), the
//! writes (`DeleteAlarms`, `SetAlarmState`, `Enable`/`DisableAlarmActions`), and the
//! evaluator the background task runs: for each alarm, the last `EvaluationPeriods` period
//! values from the store (or its metric math), decided by [`super::alarm_rules`], with a
//! `StateUpdate` history item on every transition.
//!
//! Alarm actions (SNS, Auto Scaling, EC2) are recorded but never executed: sparkyard has no
//! targets for them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::alarm_rules::{self, AlarmRule, AlarmState, Comparison, TreatMissing};
use super::codec::{self, CwError, Timestamp};
use super::metrics::{self, DataRequest, MetricSel};
use super::model::*;
use super::store;

const MAX_ACTIONS: usize = 5;
const DEFAULT_MAX_RECORDS: i64 = 50;
const DEFAULT_MAX_HISTORY: i64 = 100;

pub fn encode(alarm: &MetricAlarm) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = ciborium::ser::into_writer(alarm, &mut out) {
        tracing::error!(error = %e, "cannot encode an alarm");
    }
    out
}

pub fn decode(body: &[u8]) -> Option<MetricAlarm> {
    let value: ciborium::Value = ciborium::de::from_reader(body).ok()?;
    codec::from_value(value).ok()
}

fn now_ts(now: DateTime<Utc>) -> Timestamp {
    Timestamp(now.timestamp_millis() as f64 / 1000.0)
}

/// Alarms may use 10 s, 30 s or any multiple of 60 s.
fn alarm_period(p: Option<i64>, param: &str) -> Result<i64, CwError> {
    let p = p.ok_or_else(|| CwError::missing(param))?;
    if matches!(p, 10 | 30) || (p > 0 && p % 60 == 0) {
        Ok(p)
    } else {
        Err(CwError::invalid_value(format!(
            "The parameter {param} must be 10, 30 or a multiple of 60."
        )))
    }
}

/// Checks a `PutMetricAlarm` request and builds the alarm; `existing` keeps its state (an
/// update never changes an alarm's state, as in CloudWatch).
pub fn check_alarm(
    input: PutMetricAlarmInput,
    arn: String,
    existing: Option<&MetricAlarm>,
    now: DateTime<Utc>,
) -> Result<MetricAlarm, CwError> {
    let name = input
        .alarm_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CwError::missing("AlarmName"))?;
    if name.len() > 255 {
        return Err(CwError::invalid_value(format!(
            "The value {name} for parameter AlarmName is invalid."
        )));
    }
    if input
        .alarm_description
        .as_ref()
        .is_some_and(|d| d.len() > 1024)
    {
        return Err(CwError::invalid_value(
            "The parameter AlarmDescription must be at most 1024 characters.",
        ));
    }
    let actions = |list: Option<Vec<String>>, param: &str| {
        let list = list.unwrap_or_default();
        if list.len() > MAX_ACTIONS {
            Err(CwError::invalid_value(format!(
                "The collection {param} must not have a size greater than {MAX_ACTIONS}."
            )))
        } else {
            Ok(list)
        }
    };
    let ok_actions = actions(input.ok_actions, "OKActions")?;
    let alarm_actions = actions(input.alarm_actions, "AlarmActions")?;
    let insufficient_data_actions =
        actions(input.insufficient_data_actions, "InsufficientDataActions")?;
    let evaluation_periods = input
        .evaluation_periods
        .ok_or_else(|| CwError::missing("EvaluationPeriods"))?;
    if evaluation_periods < 1 {
        return Err(CwError::invalid_value(format!(
            "The value {evaluation_periods} for parameter EvaluationPeriods is invalid."
        )));
    }
    if let Some(m) = input.datapoints_to_alarm {
        if m < 1 || m > evaluation_periods {
            return Err(CwError::validation(format!(
                "DatapointsToAlarm ({m}) must be between 1 and EvaluationPeriods ({evaluation_periods})."
            )));
        }
    }
    let comparison = input
        .comparison_operator
        .ok_or_else(|| CwError::missing("ComparisonOperator"))?;
    comparison
        .parse::<Comparison>()
        .map_err(CwError::validation)?;
    if input.threshold_metric_id.is_some() {
        return Err(CwError::invalid_value(
            "ThresholdMetricId needs an anomaly detection band, which sparkyard does not support.",
        ));
    }
    let threshold = input
        .threshold
        .ok_or_else(|| CwError::missing("Threshold"))?;
    if !threshold.is_finite() {
        return Err(CwError::invalid_value(
            "The value for parameter Threshold is invalid.",
        ));
    }
    if let Some(t) = &input.treat_missing_data {
        t.parse::<TreatMissing>().map_err(CwError::validation)?;
    }
    let single = input.metric_name.is_some()
        || input.namespace.is_some()
        || input.statistic.is_some()
        || input.extended_statistic.is_some()
        || input.dimensions.is_some()
        || input.period.is_some()
        || input.unit.is_some();
    let mut alarm = MetricAlarm {
        alarm_arn: arn,
        alarm_name: name,
        alarm_description: input.alarm_description,
        alarm_configuration_updated_timestamp: now_ts(now),
        actions_enabled: input.actions_enabled.unwrap_or(true),
        ok_actions,
        alarm_actions,
        insufficient_data_actions,
        state_value: AlarmState::InsufficientData.as_str().into(),
        state_reason: "Unchecked: Initial alarm creation".into(),
        state_reason_data: None,
        state_updated_timestamp: now_ts(now),
        evaluation_periods,
        datapoints_to_alarm: input.datapoints_to_alarm,
        threshold,
        comparison_operator: comparison,
        treat_missing_data: input.treat_missing_data,
        state_transitioned_timestamp: now_ts(now),
        ..Default::default()
    };
    match input.metrics {
        Some(metrics) if !metrics.is_empty() => {
            if single {
                return Err(CwError::combination(
                    "The parameters Metrics and MetricName, Namespace, Statistic, ExtendedStatistic, Dimensions, Period or Unit are mutually exclusive and you have specified both.",
                ));
            }
            metrics::check_queries(&metrics, "Metrics")?;
            let returning = metrics
                .iter()
                .filter(|q| q.return_data != Some(false))
                .count();
            if returning != 1 {
                return Err(CwError::validation(
                    "Exactly one element of the metrics list should return data.",
                ));
            }
            for (i, q) in metrics.iter().enumerate() {
                if let Some(stat) = &q.metric_stat {
                    alarm_period(
                        stat.period,
                        &format!("Metrics.member.{}.MetricStat.Period", i + 1),
                    )?;
                }
            }
            alarm.metrics = Some(metrics);
        }
        _ => {
            let namespace = metrics::validate_namespace(input.namespace.as_deref(), false)?;
            let metric_name = input
                .metric_name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| CwError::missing("MetricName"))?;
            match (&input.statistic, &input.extended_statistic) {
                (Some(_), Some(_)) => {
                    return Err(CwError::combination(
                        "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
                    ))
                }
                (None, None) => {
                    return Err(CwError::combination(
                        "One of the parameters Statistic or ExtendedStatistic must be specified.",
                    ))
                }
                (None, Some(p)) => {
                    return Err(CwError::invalid_value(format!(
                        "The statistic {p} is not supported here: sparkyard keeps statistic sets, not raw values, so percentiles cannot be computed."
                    )))
                }
                (Some(s), None) if !metrics::STATISTICS.contains(&s.as_str()) => {
                    return Err(CwError::validation(format!(
                        "1 validation error detected: Value '{s}' at 'statistic' failed to satisfy constraint: Member must satisfy enum value set: [Maximum, SampleCount, Sum, Minimum, Average]"
                    )))
                }
                _ => {}
            }
            let dimensions = metrics::validate_dimensions(
                input.dimensions.as_deref().unwrap_or(&[]),
                "Dimensions",
            )?;
            alarm.period = Some(alarm_period(input.period, "Period")?);
            alarm.unit = metrics::validate_unit(input.unit.as_deref(), "Unit")?;
            alarm.namespace = Some(namespace);
            alarm.metric_name = Some(metric_name);
            alarm.statistic = input.statistic;
            alarm.dimensions = Some(dimensions);
        }
    }
    if let Some(old) = existing {
        alarm.state_value = old.state_value.clone();
        alarm.state_reason = old.state_reason.clone();
        alarm.state_reason_data = old.state_reason_data.clone();
        alarm.state_updated_timestamp = old.state_updated_timestamp;
        alarm.state_transitioned_timestamp = old.state_transitioned_timestamp;
    }
    Ok(alarm)
}

/// The alarm as `HistoryData` shows configurations: camelCase members.
fn config_json(alarm: &MetricAlarm) -> Value {
    fn camel(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (crate::wire::lower_first(&k), camel(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(camel).collect()),
            v => v,
        }
    }
    let mut v = camel(codec::to_json(alarm));
    // Dates as CloudWatch's history documents write them.
    if let Value::Object(m) = &mut v {
        for (k, value) in m.iter_mut() {
            if let (true, Some(secs)) = (k.ends_with("Timestamp"), value.as_f64()) {
                if let Some(t) = DateTime::<Utc>::from_timestamp_millis((secs * 1000.0) as i64) {
                    *value = json!(t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
                }
            }
        }
    }
    v
}

/// `ConfigurationUpdate` history of a create or an update.
pub fn configuration_history(old: Option<&MetricAlarm>, new: &MetricAlarm) -> (String, String) {
    match old {
        None => (
            format!("Alarm \"{}\" created", new.alarm_name),
            json!({"version": "1.0", "type": "Create", "createdAlarm": config_json(new)}).to_string(),
        ),
        Some(old) => (
            format!("Alarm \"{}\" updated", new.alarm_name),
            json!({"version": "1.0", "type": "Update", "originalAlarm": config_json(old), "updatedAlarm": config_json(new)})
                .to_string(),
        ),
    }
}

pub fn deletion_history(alarm: &MetricAlarm) -> (String, String) {
    (
        format!("Alarm \"{}\" deleted", alarm.alarm_name),
        json!({"version": "1.0", "type": "Delete", "deletedAlarm": config_json(alarm)}).to_string(),
    )
}

/// Moves `alarm` to `state`; returns the `StateUpdate` history (summary, data).
pub fn transition(
    alarm: &mut MetricAlarm,
    state: &str,
    reason: String,
    reason_data: Option<String>,
    now: DateTime<Utc>,
) -> (String, String) {
    let mut new_state = json!({"stateValue": state, "stateReason": reason});
    if let Some(data) = &reason_data {
        new_state["stateReasonData"] =
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone()));
    }
    let history = json!({
        "version": "1.0",
        "oldState": {"stateValue": alarm.state_value, "stateReason": alarm.state_reason},
        "newState": new_state,
    });
    let summary = format!("Alarm updated from {} to {state}", alarm.state_value);
    alarm.state_value = state.to_string();
    alarm.state_reason = reason;
    alarm.state_reason_data = reason_data;
    alarm.state_updated_timestamp = now_ts(now);
    alarm.state_transitioned_timestamp = now_ts(now);
    (summary, history.to_string())
}

/// `DescribeAlarms` over every alarm (sorted by name).
pub fn describe(
    all: Vec<MetricAlarm>,
    input: &DescribeAlarmsInput,
) -> Result<DescribeAlarmsOutput, CwError> {
    let names = input.alarm_names.clone().unwrap_or_default();
    if names.len() > 100 {
        return Err(CwError::invalid_value(
            "The collection AlarmNames must not have a size greater than 100.",
        ));
    }
    if !names.is_empty() && input.alarm_name_prefix.is_some() {
        return Err(CwError::combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
        ));
    }
    let state = match input.state_value.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<AlarmState>().map_err(CwError::validation)?),
    };
    for t in input.alarm_types.iter().flatten() {
        if !matches!(t.as_str(), "MetricAlarm" | "CompositeAlarm" | "LogAlarm") {
            return Err(CwError::validation(format!(
                "1 validation error detected: Value '{t}' at 'alarmTypes' failed to satisfy constraint: Member must satisfy enum value set: [CompositeAlarm, MetricAlarm, LogAlarm]"
            )));
        }
    }
    let metric_alarms_wanted = input
        .alarm_types
        .as_ref()
        .is_none_or(|t| t.is_empty() || t.iter().any(|t| t == "MetricAlarm"));
    let max = input.max_records.unwrap_or(DEFAULT_MAX_RECORDS);
    if !(1..=100).contains(&max) {
        return Err(CwError::invalid_value(format!(
            "The value {max} for parameter MaxRecords is invalid."
        )));
    }
    let after = input.next_token.as_deref().map(decode_token).transpose()?;
    let mut out = Vec::new();
    let mut next = None;
    for alarm in all {
        if !metric_alarms_wanted {
            break;
        }
        if after.as_ref().is_some_and(|a| alarm.alarm_name <= *a) {
            continue;
        }
        if !names.is_empty() && !names.contains(&alarm.alarm_name) {
            continue;
        }
        if let Some(p) = &input.alarm_name_prefix {
            if !alarm.alarm_name.starts_with(p.as_str()) {
                continue;
            }
        }
        if state.is_some_and(|s| s.as_str() != alarm.state_value) {
            continue;
        }
        if let Some(prefix) = &input.action_prefix {
            let any = alarm
                .alarm_actions
                .iter()
                .chain(&alarm.ok_actions)
                .chain(&alarm.insufficient_data_actions)
                .any(|a| a.starts_with(prefix.as_str()));
            if !any {
                continue;
            }
        }
        if out.len() as i64 == max {
            next = out
                .last()
                .map(|a: &MetricAlarm| encode_token(&a.alarm_name));
            break;
        }
        out.push(alarm);
    }
    Ok(DescribeAlarmsOutput {
        composite_alarms: Vec::new(),
        metric_alarms: out,
        next_token: next,
    })
}

fn encode_token(name: &str) -> String {
    crate::s3::blob::b64(name.as_bytes())
}

fn decode_token(token: &str) -> Result<String, CwError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| CwError::invalid_token(format!("The NextToken {token} is invalid.")))
}

/// `DescribeAlarmsForMetric`: single-metric alarms on this metric, narrowed by whatever
/// else the request names.
pub fn for_metric(
    all: Vec<MetricAlarm>,
    input: &DescribeAlarmsForMetricInput,
) -> Result<DescribeAlarmsForMetricOutput, CwError> {
    let namespace = metrics::validate_namespace(input.namespace.as_deref(), false)?;
    let name = input
        .metric_name
        .clone()
        .ok_or_else(|| CwError::missing("MetricName"))?;
    let dims = input.dimensions.as_ref().map(|d| {
        let mut d = d.clone();
        d.sort();
        d
    });
    let metric_alarms = all
        .into_iter()
        .filter(|a| a.namespace.as_deref() == Some(&namespace))
        .filter(|a| a.metric_name.as_deref() == Some(&name))
        .filter(|a| input.statistic.is_none() || a.statistic == input.statistic)
        .filter(|a| {
            input.extended_statistic.is_none() || a.extended_statistic == input.extended_statistic
        })
        .filter(|a| input.period.is_none() || a.period == input.period)
        .filter(|a| input.unit.is_none() || a.unit == input.unit)
        .filter(|a| {
            dims.as_ref().is_none_or(|d| {
                let mut own = a.dimensions.clone().unwrap_or_default();
                own.sort();
                own == *d
            })
        })
        .collect();
    Ok(DescribeAlarmsForMetricOutput { metric_alarms })
}

/// `DescribeAlarmHistory` over the filtered rows (already in scan order).
pub fn history_page(
    rows: Vec<store::HistoryRow>,
    input: &DescribeAlarmHistoryInput,
) -> Result<DescribeAlarmHistoryOutput, CwError> {
    let max = input.max_records.unwrap_or(DEFAULT_MAX_HISTORY);
    if !(1..=100).contains(&max) {
        return Err(CwError::invalid_value(format!(
            "The value {max} for parameter MaxRecords is invalid."
        )));
    }
    let after: Option<i64> = match &input.next_token {
        None => None,
        Some(t) => Some(
            decode_token(t)?
                .parse()
                .map_err(|_| CwError::invalid_token(format!("The NextToken {t} is invalid.")))?,
        ),
    };
    let rows: Vec<store::HistoryRow> = match after {
        None => rows,
        Some(id) => rows
            .into_iter()
            .skip_while(|r| r.id != id)
            .skip(1)
            .collect(),
    };
    let more = rows.len() as i64 > max;
    let page: Vec<store::HistoryRow> = rows.into_iter().take(max as usize).collect();
    let next_token = if more {
        page.last().map(|r| encode_token(&r.id.to_string()))
    } else {
        None
    };
    Ok(DescribeAlarmHistoryOutput {
        alarm_history_items: page
            .into_iter()
            .map(|r| AlarmHistoryItem {
                alarm_name: r.alarm_name,
                alarm_type: "MetricAlarm".into(),
                timestamp: Timestamp(r.ts),
                history_item_type: r.item_type,
                history_summary: r.summary,
                history_data: r.data,
            })
            .collect(),
        next_token,
    })
}

pub fn check_history_input(input: &DescribeAlarmHistoryInput) -> Result<bool, CwError> {
    if let Some(t) = &input.history_item_type {
        if !matches!(
            t.as_str(),
            "ConfigurationUpdate"
                | "StateUpdate"
                | "Action"
                | "AlarmContributorStateUpdate"
                | "AlarmContributorAction"
        ) {
            return Err(CwError::validation(format!(
                "1 validation error detected: Value '{t}' at 'historyItemType' failed to satisfy constraint: Member must satisfy enum value set: [ConfigurationUpdate, StateUpdate, Action, AlarmContributorStateUpdate, AlarmContributorAction]"
            )));
        }
    }
    match input.scan_by.as_deref() {
        None | Some("TimestampDescending") => Ok(true),
        Some("TimestampAscending") => Ok(false),
        Some(other) => Err(CwError::validation(format!(
            "1 validation error detected: Value '{other}' at 'scanBy' failed to satisfy constraint: Member must satisfy enum value set: [TimestampDescending, TimestampAscending]"
        ))),
    }
}

// Evaluation ---------------------------------------------------------------------------------

/// The rule [`alarm_rules::evaluate_alarm`] applies, and the period values it reads.
pub fn rule_of(alarm: &MetricAlarm) -> Option<AlarmRule> {
    let period = alarm.period.or_else(|| {
        alarm
            .metrics
            .iter()
            .flatten()
            .filter_map(|q| q.metric_stat.as_ref().and_then(|s| s.period).or(q.period))
            .min()
    })?;
    Some(AlarmRule {
        comparison: alarm.comparison_operator.parse().ok()?,
        threshold: alarm.threshold,
        evaluation_periods: alarm.evaluation_periods.max(1) as u32,
        datapoints_to_alarm: alarm.datapoints_to_alarm.unwrap_or(0).max(0) as u32,
        treat_missing: alarm
            .treat_missing_data
            .as_deref()
            .unwrap_or("missing")
            .parse()
            .ok()?,
        period,
        statistic: alarm.statistic.clone().unwrap_or_default(),
    })
}

/// The last `evaluation_periods` complete period values of the alarm's metric (or metric
/// math), oldest first. The period `now` falls in is still filling, and judging it would
/// flip every alarm to missing data at each period boundary.
pub fn alarm_points(
    conn: &rusqlite::Connection,
    alarm: &MetricAlarm,
    rule: &AlarmRule,
    now: i64,
) -> Result<Vec<(i64, Option<f64>)>, CwError> {
    let p = rule.period;
    let newest = now.div_euclid(p) * p - p;
    let start = newest - (rule.evaluation_periods as i64 - 1) * p;
    let end = newest + p;
    let series: HashMap<i64, f64> = match &alarm.metrics {
        None => {
            let sel = MetricSel {
                namespace: alarm.namespace.clone().unwrap_or_default(),
                metric_name: alarm.metric_name.clone().unwrap_or_default(),
                dimensions: alarm.dimensions.clone().unwrap_or_default(),
                unit: alarm.unit.clone(),
            };
            metrics::fetch_merged(conn, &sel, start, end, p, now)
                .map_err(super::db_error)?
                .into_iter()
                .filter_map(|(t, agg)| agg.stat(&rule.statistic).map(|v| (t, v)))
                .collect()
        }
        Some(queries) => {
            let (order, exprs) = metrics::check_queries(queries, "Metrics")?;
            let req = DataRequest {
                queries: queries.clone(),
                order,
                exprs,
                start,
                end,
                descending: false,
                max_datapoints: i64::MAX,
                offset: 0,
            };
            let stats = metrics::fetch_stats(conn, &req, now).map_err(super::db_error)?;
            let evaluated = metrics::evaluate(&req, stats, now)?;
            queries
                .iter()
                .zip(evaluated)
                .find(|(q, _)| q.return_data != Some(false))
                .and_then(|(_, e)| e.series.into_iter().next())
                .map(|s| s.points.into_iter().collect())
                .unwrap_or_default()
        }
    };
    Ok((0..rule.evaluation_periods as i64)
        .map(|k| {
            let t = start + k * p;
            (t, series.get(&t).copied())
        })
        .collect())
}

/// Evaluates one alarm; `Some((state, reason, reason data))` when its state changes.
pub fn evaluate_one(
    conn: &rusqlite::Connection,
    alarm: &MetricAlarm,
    now: DateTime<Utc>,
) -> Option<(String, String, String)> {
    let rule = rule_of(alarm)?;
    let current: AlarmState = alarm.state_value.parse().ok()?;
    let points = match alarm_points(conn, alarm, &rule, now.timestamp()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(alarm = %alarm.alarm_name, error = %e, "alarm evaluation failed");
            return None;
        }
    };
    let evaluation = alarm_rules::evaluate_alarm(&rule, &points, current, now);
    (evaluation.state != current).then(|| {
        (
            evaluation.state.as_str().to_string(),
            evaluation.reason,
            evaluation.reason_data.to_string(),
        )
    })
}
