//! CloudWatch metric alarm evaluation: given an alarm's rule and its most recent period
//! values, the "M out of N" decision with the alarm's missing-data treatment, and the
//! `StateReason` / `StateReasonData` CloudWatch records with the result. Pure code: the
//! CloudWatch service (`super`) fetches the datapoints, runs this on a schedule, and stores
//! the new state (and the reason only when the state changes, as CloudWatch does).
//!
//! Missing data follows "Configuring how CloudWatch alarms treat missing data":
//! - `breaching` / `notBreaching`: each missing period of the last N counts as breaching /
//!   not breaching; ALARM when at least M breach, otherwise OK.
//! - `missing`: only real datapoints count. With none, INSUFFICIENT_DATA. CloudWatch uses the
//!   most recent real datapoints of the evaluation range (which may reach further back than N
//!   periods; pass those older periods too and they are used). ALARM when M of them breach,
//!   or when there are fewer than M real datapoints and all of them breach; otherwise OK.
//! - `ignore`: as `missing`, except that with no real datapoints, or with fewer than M that
//!   all breach, the current state is kept.
//!
//! Anomaly-detection comparisons (`LessThanLowerOrGreaterThanUpperThreshold` and friends) are
//! rejected by [`Comparison::from_str`]: sparkyard has no anomaly detection models.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlarmState {
    /// CloudWatch's validation message for `StateValue`.
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OK" => Ok(AlarmState::Ok),
            "ALARM" => Ok(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
            _ => Err(format!(
                "1 validation error detected: Value '{s}' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// How CloudWatch's state reasons spell the comparison.
    pub fn phrase(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Comparison {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GreaterThanOrEqualToThreshold" => Ok(Comparison::GreaterThanOrEqualToThreshold),
            "GreaterThanThreshold" => Ok(Comparison::GreaterThanThreshold),
            "LessThanThreshold" => Ok(Comparison::LessThanThreshold),
            "LessThanOrEqualToThreshold" => Ok(Comparison::LessThanOrEqualToThreshold),
            "LessThanLowerOrGreaterThanUpperThreshold"
            | "LessThanLowerThreshold"
            | "GreaterThanUpperThreshold" => Err(format!(
                "ComparisonOperator {s} needs an anomaly detection band, which sparkyard does not support"
            )),
            _ => Err(format!(
                "1 validation error detected: Value '{s}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [LessThanLowerOrGreaterThanUpperThreshold, LessThanOrEqualToThreshold, LessThanLowerThreshold, LessThanThreshold, GreaterThanOrEqualToThreshold, GreaterThanUpperThreshold, GreaterThanThreshold]"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreatMissing {
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl TreatMissing {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissing::Missing => "missing",
            TreatMissing::Ignore => "ignore",
            TreatMissing::Breaching => "breaching",
            TreatMissing::NotBreaching => "notBreaching",
        }
    }

    /// The bracketed word in "missing datapoints were treated as [...]".
    fn reason_word(self) -> &'static str {
        match self {
            TreatMissing::Missing => "Missing",
            TreatMissing::Ignore => "Ignore",
            TreatMissing::Breaching => "Breaching",
            TreatMissing::NotBreaching => "NonBreaching",
        }
    }
}

impl fmt::Display for TreatMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TreatMissing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "missing" => Ok(TreatMissing::Missing),
            "ignore" => Ok(TreatMissing::Ignore),
            "breaching" => Ok(TreatMissing::Breaching),
            "notBreaching" => Ok(TreatMissing::NotBreaching),
            _ => Err(format!(
                "Option {s} is not supported. Supported options for parameter TreatMissingData are: missing, ignore, breaching, notBreaching."
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRule {
    pub comparison: Comparison,
    pub threshold: f64,
    pub evaluation_periods: u32,
    /// M of "M out of N"; 0 (not set) means `evaluation_periods`.
    pub datapoints_to_alarm: u32,
    pub treat_missing: TreatMissing,
    /// Seconds.
    pub period: i64,
    /// `Maximum`, `p99`, …; empty for metric math alarms (then left out of the reason data).
    pub statistic: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: AlarmState,
    /// `StateReason`.
    pub reason: String,
    /// `StateReasonData`, a JSON document (serialize it to a string for the API).
    pub reason_data: Value,
}

/// Evaluates the alarm. `points`: the last `evaluation_periods` periods, oldest first:
/// (period start, epoch seconds; the value, or `None` when there is no datapoint). More
/// (older) periods may be passed: they are the evaluation range CloudWatch looks back over for
/// real datapoints when missing data is treated as `missing` or `ignore`. Fewer are padded
/// with missing periods before them.
pub fn evaluate_alarm(
    rule: &AlarmRule,
    points: &[(i64, Option<f64>)],
    current: AlarmState,
    now: DateTime<Utc>,
) -> Evaluation {
    let n = rule.evaluation_periods.max(1) as usize;
    let m = match rule.datapoints_to_alarm {
        0 => n,
        m => (m as usize).min(n),
    };
    let period = rule.period.max(1);
    let range = padded(points, n, period, now);
    let window = &range[range.len() - n..];
    let breaches = |v: f64| rule.comparison.breaches(v, rule.threshold);
    let treat = rule.treat_missing;
    let window_missing = window.iter().filter(|p| p.1.is_none()).count();

    // Datapoints the decision looks at, (timestamp, value), oldest first.
    let evaluated: Vec<(i64, Option<f64>)>;
    let state;
    let reason;
    match treat {
        TreatMissing::Breaching | TreatMissing::NotBreaching => {
            evaluated = window.to_vec();
            let missing_breach = treat == TreatMissing::Breaching;
            let breaching = window
                .iter()
                .filter(|p| p.1.map_or(missing_breach, breaches))
                .count();
            state = if breaching >= m {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            // Missing datapoints are only worth a mention when they pushed the way it went.
            let missing_mentioned = if (state == AlarmState::Alarm) == missing_breach {
                window_missing
            } else {
                0
            };
            reason = Reasons {
                rule,
                current,
                n,
                m,
            }
            .for_state(state, breaching, window, missing_mentioned);
        }
        TreatMissing::Missing | TreatMissing::Ignore => {
            let real: Vec<(i64, f64)> = range
                .iter()
                .filter_map(|&(t, v)| v.map(|v| (t, v)))
                .collect();
            let selected = &real[real.len().saturating_sub(n)..];
            let mut merged: Vec<(i64, Option<f64>)> = window.to_vec();
            for &(t, v) in selected {
                if !merged.iter().any(|p| p.0 == t) {
                    merged.push((t, Some(v)));
                }
            }
            merged.sort_by_key(|p| p.0);
            evaluated = merged;
            let breaching = selected.iter().filter(|p| breaches(p.1)).count();
            let unfilled = n - selected.len();
            let reasons = Reasons {
                rule,
                current,
                n,
                m,
            };
            if selected.is_empty() {
                state = if treat == TreatMissing::Missing {
                    AlarmState::InsufficientData
                } else {
                    current
                };
                reason = reasons.no_datapoints(n, treat);
            } else {
                let as_options: Vec<(i64, Option<f64>)> =
                    selected.iter().map(|&(t, v)| (t, Some(v))).collect();
                // Too few real datapoints to reach M, but every one breaches: `missing` alarms;
                // `ignore` waits for more data.
                let too_few_all_breach = selected.len() < m && breaching == selected.len();
                state = if breaching >= m || (too_few_all_breach && treat == TreatMissing::Missing)
                {
                    AlarmState::Alarm
                } else if too_few_all_breach {
                    current
                } else {
                    AlarmState::Ok
                };
                let shown = if breaching >= m || too_few_all_breach {
                    AlarmState::Alarm
                } else {
                    AlarmState::Ok
                };
                let mentioned = if shown == AlarmState::Alarm {
                    unfilled
                } else {
                    0
                };
                reason = reasons.for_state(shown, breaching, &as_options, mentioned);
            }
        }
    }

    Evaluation {
        state,
        reason,
        reason_data: reason_data(rule, &evaluated, now),
    }
}

/// `points` with missing periods added before them until there are at least `n`; with no
/// points at all, the `n` whole periods before `now`.
fn padded(
    points: &[(i64, Option<f64>)],
    n: usize,
    period: i64,
    now: DateTime<Utc>,
) -> Vec<(i64, Option<f64>)> {
    let mut out = points.to_vec();
    if out.len() >= n {
        return out;
    }
    let first = match out.first() {
        Some(p) => p.0,
        None => now.timestamp().div_euclid(period) * period,
    };
    let missing = n - out.len();
    let mut pad: Vec<(i64, Option<f64>)> = (1..=missing as i64)
        .rev()
        .map(|k| (first - k * period, None))
        .collect();
    pad.append(&mut out);
    pad
}

struct Reasons<'a> {
    rule: &'a AlarmRule,
    current: AlarmState,
    n: usize,
    m: usize,
}

impl Reasons<'_> {
    fn no_datapoints(&self, missing: usize, treat: TreatMissing) -> String {
        format!(
            "Threshold Crossed: no datapoints were received for {missing} {} and {missing} missing {} {} treated as [{}].",
            plural(missing, "period", "periods"),
            plural(missing, "datapoint", "datapoints"),
            plural(missing, "was", "were"),
            treat.reason_word()
        )
    }

    /// The reason for `state` (ALARM or OK) given the datapoints considered (`points`, oldest
    /// first, `None` = missing), `breaching` of which breach (missing ones included), and
    /// `missing` missing datapoints that counted towards the result.
    fn for_state(
        &self,
        state: AlarmState,
        breaching: usize,
        points: &[(i64, Option<f64>)],
        missing: usize,
    ) -> String {
        let rule = self.rule;
        let alarm = state == AlarmState::Alarm;
        // The datapoints that made the decision, most recent first as CloudWatch lists them.
        let listed: Vec<(i64, f64)> = points
            .iter()
            .rev()
            .filter_map(|&(t, v)| v.map(|v| (t, v)))
            .filter(|&(_, v)| rule.comparison.breaches(v, rule.threshold) == alarm)
            .collect();
        let treat = rule.treat_missing;
        if listed.is_empty() && missing > 0 {
            return self.no_datapoints(missing, treat);
        }
        let list = listed
            .iter()
            .map(|&(t, v)| format!("{} ({})", java_double(v), reason_time(t)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut text = if alarm {
            format!(
                "Threshold Crossed: {breaching} out of the last {} datapoints [{list}] {} {} the threshold ({}) (minimum {} {} for {} -> ALARM transition).",
                self.n,
                plural(breaching, "was", "were"),
                rule.comparison.phrase(),
                java_double(rule.threshold),
                self.m,
                plural(self.m, "datapoint", "datapoints"),
                self.current.as_str(),
            )
        } else {
            format!(
                "Threshold Crossed: {} {} [{list}] {} not {} the threshold ({}).",
                listed.len(),
                plural(listed.len(), "datapoint", "datapoints"),
                plural(listed.len(), "was", "were"),
                rule.comparison.phrase(),
                java_double(rule.threshold),
            )
        };
        if missing > 0 {
            text.push_str(&format!(
                " {missing} missing {} {} treated as [{}].",
                plural(missing, "datapoint", "datapoints"),
                plural(missing, "was", "were"),
                treat.reason_word()
            ));
        }
        text
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `StateReasonData`: what CloudWatch evaluated, as JSON.
fn reason_data(rule: &AlarmRule, evaluated: &[(i64, Option<f64>)], now: DateTime<Utc>) -> Value {
    let mut data = Map::new();
    data.insert("version".into(), json!("1.0"));
    data.insert("queryDate".into(), json!(iso(now)));
    if let Some(&(start, _)) = evaluated.first() {
        data.insert("startDate".into(), json!(iso_epoch(start)));
    }
    if !rule.statistic.is_empty() {
        data.insert("statistic".into(), json!(rule.statistic));
    }
    data.insert("period".into(), json!(rule.period));
    let recent: Vec<f64> = evaluated.iter().filter_map(|p| p.1).collect();
    data.insert("recentDatapoints".into(), json!(recent));
    data.insert("threshold".into(), json!(rule.threshold));
    // Most recent first, as CloudWatch lists them; a missing datapoint has no value.
    let points: Vec<Value> = evaluated
        .iter()
        .rev()
        .map(|&(t, v)| {
            let mut p = Map::new();
            p.insert("timestamp".into(), json!(iso_epoch(t)));
            if let Some(v) = v {
                p.insert("value".into(), json!(v));
            }
            Value::Object(p)
        })
        .collect();
    data.insert("evaluatedDatapoints".into(), Value::Array(points));
    Value::Object(data)
}

/// `2026-12-04T09:41:12.345+0000`, the form `StateReasonData` dates take.
fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn iso_epoch(t: i64) -> String {
    iso(Utc.timestamp_opt(t, 0).single().unwrap_or_default())
}

/// `dd/MM/yy HH:mm:ss`, the form datapoint times take in `StateReason`.
fn reason_time(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .unwrap_or_default()
        .format("%d/%m/%y %H:%M:%S")
        .to_string()
}

/// A number the way Java's `Double.toString` prints it (CloudWatch is a Java service):
/// `95.0`, `0.5`, `1.0E7`, `1.5E-4`.
fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_377_200; // 2026-12-04T09:40:00Z

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(T0 + 72, 345_000_000).unwrap()
    }

    fn rule(n: u32, m: u32, treat: TreatMissing) -> AlarmRule {
        AlarmRule {
            comparison: Comparison::GreaterThanThreshold,
            threshold: 90.0,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            treat_missing: treat,
            period: 60,
            statistic: "Maximum".into(),
        }
    }

    /// Builds periods ending at T0 from a pattern like the docs' tables: `X` breaching (95),
    /// `0` not breaching (10), `-` missing.
    fn pattern(p: &str) -> Vec<(i64, Option<f64>)> {
        let len = p.len() as i64;
        p.chars()
            .enumerate()
            .map(|(i, c)| {
                let t = T0 - (len - 1 - i as i64) * 60;
                let v = match c {
                    'X' => Some(95.0),
                    '0' => Some(10.0),
                    _ => None,
                };
                (t, v)
            })
            .collect()
    }

    fn state(r: &AlarmRule, p: &str, current: AlarmState) -> AlarmState {
        evaluate_alarm(r, &pattern(p), current, now()).state
    }

    #[test]
    fn one_of_one_alarm_reason_and_data() {
        let e = evaluate_alarm(
            &rule(1, 1, TreatMissing::Missing),
            &[(T0, Some(95.0))],
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::Alarm);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [95.0 (04/12/26 09:40:00)] was greater than the threshold (90.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
        assert_eq!(
            serde_json::to_string(&e.reason_data).unwrap(),
            r#"{"version":"1.0","queryDate":"2026-12-04T09:41:12.345+0000","startDate":"2026-12-04T09:40:00.000+0000","statistic":"Maximum","period":60,"recentDatapoints":[95.0],"threshold":90.0,"evaluatedDatapoints":[{"timestamp":"2026-12-04T09:40:00.000+0000","value":95.0}]}"#
        );
    }

    #[test]
    fn one_of_one_ok_reason() {
        let e = evaluate_alarm(
            &rule(1, 1, TreatMissing::Missing),
            &[(T0, Some(10.0))],
            AlarmState::Alarm,
            now(),
        );
        assert_eq!(e.state, AlarmState::Ok);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 datapoint [10.0 (04/12/26 09:40:00)] was not greater than the threshold (90.0)."
        );
    }

    #[test]
    fn no_data_with_missing_is_insufficient_data() {
        let e = evaluate_alarm(
            &rule(1, 1, TreatMissing::Missing),
            &[(T0, None)],
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::InsufficientData);
        assert_eq!(
            e.reason,
            "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Missing]."
        );
        assert_eq!(e.reason_data["recentDatapoints"], json!([]));
        assert_eq!(
            e.reason_data["evaluatedDatapoints"],
            json!([{"timestamp": "2026-12-04T09:40:00.000+0000"}])
        );
    }

    #[test]
    fn no_points_at_all_are_padded_before_now() {
        let e = evaluate_alarm(
            &rule(2, 2, TreatMissing::Breaching),
            &[],
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::Alarm);
        assert_eq!(
            e.reason,
            "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching]."
        );
        assert_eq!(
            e.reason_data["startDate"],
            json!("2026-12-04T09:39:00.000+0000")
        );
    }

    /// The docs' table: 3 evaluation periods, 3 datapoints to alarm, the evaluation range
    /// showing 5 periods (oldest first).
    #[test]
    fn docs_missing_data_table() {
        use AlarmState::*;
        use TreatMissing::*;
        let rows: [(&str, [AlarmState; 4]); 5] = [
            ("0-X-X", [Ok, Ok, Alarm, Ok]),
            ("----0", [Ok, Ok, Ok, Ok]),
            ("-----", [InsufficientData, Ok, Alarm, Ok]),
            ("0XX-X", [Alarm, Alarm, Alarm, Ok]),
            ("--X--", [Alarm, Ok, Alarm, Ok]),
        ];
        for (p, expected) in rows {
            for (treat, want) in [Missing, Ignore, Breaching, NotBreaching]
                .into_iter()
                .zip(expected)
            {
                // `ignore` keeps the current state where the table says so; OK is current here.
                assert_eq!(state(&rule(3, 3, treat), p, Ok), want, "{p} {treat}");
            }
        }
        // `ignore` really keeps whatever the state was.
        assert_eq!(state(&rule(3, 3, Ignore), "-----", Alarm), Alarm);
        assert_eq!(
            state(&rule(3, 3, Ignore), "--X--", InsufficientData),
            InsufficientData
        );
        assert_eq!(
            state(&rule(3, 3, Ignore), "-----", InsufficientData),
            InsufficientData
        );
    }

    #[test]
    fn m_out_of_n() {
        let r = rule(5, 3, TreatMissing::Missing);
        assert_eq!(state(&r, "X0X0X", AlarmState::Ok), AlarmState::Alarm);
        assert_eq!(state(&r, "X000X", AlarmState::Ok), AlarmState::Ok);
        assert_eq!(state(&r, "XXX00", AlarmState::Ok), AlarmState::Alarm);
        let e = evaluate_alarm(&r, &pattern("X0X0X"), AlarmState::Ok, now());
        assert_eq!(
            e.reason,
            "Threshold Crossed: 3 out of the last 5 datapoints [95.0 (04/12/26 09:40:00), 95.0 (04/12/26 09:38:00), 95.0 (04/12/26 09:36:00)] were greater than the threshold (90.0) (minimum 3 datapoints for OK -> ALARM transition)."
        );
        assert_eq!(
            e.reason_data["recentDatapoints"],
            json!([95.0, 10.0, 95.0, 10.0, 95.0])
        );
        assert_eq!(
            e.reason_data["evaluatedDatapoints"][0]["timestamp"],
            json!("2026-12-04T09:40:00.000+0000")
        );
        assert_eq!(
            e.reason_data["startDate"],
            json!("2026-12-04T09:36:00.000+0000")
        );
        let ok = evaluate_alarm(&r, &pattern("X000X"), AlarmState::Alarm, now());
        assert_eq!(
            ok.reason,
            "Threshold Crossed: 3 datapoints [10.0 (04/12/26 09:39:00), 10.0 (04/12/26 09:38:00), 10.0 (04/12/26 09:37:00)] were not greater than the threshold (90.0)."
        );
    }

    #[test]
    fn datapoints_to_alarm_zero_means_n() {
        let r = rule(3, 0, TreatMissing::Missing);
        assert_eq!(state(&r, "XX0", AlarmState::Ok), AlarmState::Ok);
        assert_eq!(state(&r, "XXX", AlarmState::Ok), AlarmState::Alarm);
    }

    #[test]
    fn only_the_last_n_periods_count_for_breaching_and_not_breaching() {
        let r = rule(2, 2, TreatMissing::NotBreaching);
        assert_eq!(state(&r, "XX0X", AlarmState::Ok), AlarmState::Ok);
        assert_eq!(state(&r, "00XX", AlarmState::Ok), AlarmState::Alarm);
    }

    #[test]
    fn each_comparison() {
        let cases = [
            (
                Comparison::GreaterThanOrEqualToThreshold,
                [false, true, true],
                "greater than or equal to",
            ),
            (
                Comparison::GreaterThanThreshold,
                [false, false, true],
                "greater than",
            ),
            (
                Comparison::LessThanThreshold,
                [true, false, false],
                "less than",
            ),
            (
                Comparison::LessThanOrEqualToThreshold,
                [true, true, false],
                "less than or equal to",
            ),
        ];
        for (cmp, want, phrase) in cases {
            assert_eq!(cmp.phrase(), phrase);
            for (value, breach) in [89.0, 90.0, 91.0].into_iter().zip(want) {
                let r = AlarmRule {
                    comparison: cmp,
                    ..rule(1, 1, TreatMissing::Missing)
                };
                let e = evaluate_alarm(
                    &r,
                    &[(T0, Some(value))],
                    AlarmState::InsufficientData,
                    now(),
                );
                let v = java_double(value);
                if breach {
                    assert_eq!(e.state, AlarmState::Alarm, "{cmp} {value}");
                    assert_eq!(e.reason, format!("Threshold Crossed: 1 out of the last 1 datapoints [{v} (04/12/26 09:40:00)] was {phrase} the threshold (90.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."));
                } else {
                    assert_eq!(e.state, AlarmState::Ok, "{cmp} {value}");
                    assert_eq!(e.reason, format!("Threshold Crossed: 1 datapoint [{v} (04/12/26 09:40:00)] was not {phrase} the threshold (90.0)."));
                }
            }
        }
    }

    #[test]
    fn breaching_missing_mentioned_in_reason() {
        let e = evaluate_alarm(
            &rule(3, 3, TreatMissing::Breaching),
            &pattern("X-X"),
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::Alarm);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 3 out of the last 3 datapoints [95.0 (04/12/26 09:40:00), 95.0 (04/12/26 09:38:00)] were greater than the threshold (90.0) (minimum 3 datapoints for OK -> ALARM transition). 1 missing datapoint was treated as [Breaching]."
        );
        assert_eq!(
            e.reason_data["evaluatedDatapoints"][1],
            json!({"timestamp": "2026-12-04T09:39:00.000+0000"})
        );
    }

    #[test]
    fn not_breaching_all_missing_reason() {
        let e = evaluate_alarm(
            &rule(1, 1, TreatMissing::NotBreaching),
            &[(T0, None)],
            AlarmState::Alarm,
            now(),
        );
        assert_eq!(e.state, AlarmState::Ok);
        assert_eq!(
            e.reason,
            "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching]."
        );
    }

    #[test]
    fn not_breaching_partial_missing_reason() {
        let e = evaluate_alarm(
            &rule(3, 2, TreatMissing::NotBreaching),
            &pattern("0X-"),
            AlarmState::Alarm,
            now(),
        );
        assert_eq!(e.state, AlarmState::Ok);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 datapoint [10.0 (04/12/26 09:38:00)] was not greater than the threshold (90.0). 1 missing datapoint was treated as [NonBreaching]."
        );
    }

    #[test]
    fn missing_with_too_few_datapoints_all_breaching_alarms() {
        let e = evaluate_alarm(
            &rule(3, 3, TreatMissing::Missing),
            &pattern("-X-"),
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::Alarm);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 out of the last 3 datapoints [95.0 (04/12/26 09:39:00)] was greater than the threshold (90.0) (minimum 3 datapoints for OK -> ALARM transition). 2 missing datapoints were treated as [Missing]."
        );
        assert_eq!(e.reason_data["recentDatapoints"], json!([95.0]));
    }

    #[test]
    fn ignore_with_too_few_datapoints_keeps_state_with_a_reason() {
        let e = evaluate_alarm(
            &rule(3, 3, TreatMissing::Ignore),
            &pattern("-X-"),
            AlarmState::Ok,
            now(),
        );
        assert_eq!(e.state, AlarmState::Ok);
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 out of the last 3 datapoints [95.0 (04/12/26 09:39:00)] was greater than the threshold (90.0) (minimum 3 datapoints for OK -> ALARM transition). 2 missing datapoints were treated as [Ignore]."
        );
    }

    #[test]
    fn missing_uses_older_real_datapoints_from_the_range() {
        // 2 of 2 over a range of 4: the two most recent real datapoints are X (09:37) and 0.
        let r = rule(2, 2, TreatMissing::Missing);
        assert_eq!(state(&r, "X0--", AlarmState::Alarm), AlarmState::Ok);
        assert_eq!(state(&r, "XX--", AlarmState::Ok), AlarmState::Alarm);
        let e = evaluate_alarm(&r, &pattern("XX--"), AlarmState::Ok, now());
        assert_eq!(
            e.reason_data["startDate"],
            json!("2026-12-04T09:37:00.000+0000")
        );
        assert_eq!(e.reason_data["recentDatapoints"], json!([95.0, 95.0]));
    }

    #[test]
    fn fewer_points_than_periods_are_padded_as_missing() {
        let r = rule(3, 1, TreatMissing::Breaching);
        let e = evaluate_alarm(&r, &[(T0, Some(10.0))], AlarmState::Ok, now());
        assert_eq!(e.state, AlarmState::Alarm);
        assert_eq!(
            e.reason_data["evaluatedDatapoints"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            e.reason_data["startDate"],
            json!("2026-12-04T09:38:00.000+0000")
        );
    }

    #[test]
    fn statistic_omitted_when_empty() {
        let r = AlarmRule {
            statistic: String::new(),
            ..rule(1, 1, TreatMissing::Missing)
        };
        let e = evaluate_alarm(&r, &[(T0, Some(1.0))], AlarmState::Ok, now());
        assert!(e.reason_data.get("statistic").is_none());
    }

    #[test]
    fn parse_and_print_enums() {
        for s in ["OK", "ALARM", "INSUFFICIENT_DATA"] {
            assert_eq!(s.parse::<AlarmState>().unwrap().as_str(), s);
        }
        assert!("ok"
            .parse::<AlarmState>()
            .unwrap_err()
            .contains("enum value set"));
        for s in [
            "GreaterThanOrEqualToThreshold",
            "GreaterThanThreshold",
            "LessThanThreshold",
            "LessThanOrEqualToThreshold",
        ] {
            assert_eq!(s.parse::<Comparison>().unwrap().as_str(), s);
        }
        assert!("LessThanLowerOrGreaterThanUpperThreshold"
            .parse::<Comparison>()
            .unwrap_err()
            .contains("anomaly detection"));
        assert!("Bigger"
            .parse::<Comparison>()
            .unwrap_err()
            .contains("comparisonOperator"));
        for s in ["missing", "ignore", "breaching", "notBreaching"] {
            assert_eq!(s.parse::<TreatMissing>().unwrap().as_str(), s);
        }
        assert_eq!(
            "zero".parse::<TreatMissing>().unwrap_err(),
            "Option zero is not supported. Supported options for parameter TreatMissingData are: missing, ignore, breaching, notBreaching."
        );
    }

    #[test]
    fn java_number_format() {
        assert_eq!(java_double(95.0), "95.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(-3.25), "-3.25");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e-4), "1.5E-4");
        assert_eq!(java_double(1234567.0), "1234567.0");
    }
}
