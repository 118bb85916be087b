//! The workload file's scalar values: durations (`30d`, `1h30m`, `90s`, or a number of
//! seconds), resource quantities (`2Gi`, `500m`, `4`), and ranges of either
//! (`{min: 5m, max: 10m}` — a value drawn uniformly per use — or one fixed value).

use serde::Deserialize;

/// Milliseconds: the simulator's clock unit.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// A duration as written: `30d`, `12h`, `5m`, `90s`, `250ms`, concatenations (`1h30m`),
/// or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration (examples: 30d, 1h30m, 90s)");
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = t.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok((seconds * 1000.0).round() as Millis);
        }
        return Err(bad());
    }
    let mut rest = t;
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ms" => 1,
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(bad()),
        };
        total += value * scale as f64;
        rest = &rest[unit_end..];
    }
    Ok(total.round() as Millis)
}

/// `90061000` → `1d 1h 1m 1s`, for messages and reports.
pub fn format_duration(ms: Millis) -> String {
    let mut s = ms / SECOND;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= size {
            parts.push(format!("{}{unit}", s / size));
            s %= size;
        }
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// A scalar as YAML gives it: a string or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(f64),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(t) => t.clone(),
            Scalar::Number(n) => format!("{n}"),
        }
    }

    pub fn duration(&self) -> Result<Millis, String> {
        match self {
            Scalar::Text(t) => parse_duration(t),
            Scalar::Number(n) if n.is_finite() && *n >= 0.0 => Ok((n * 1000.0).round() as Millis),
            Scalar::Number(n) => Err(format!("{n} is not a duration")),
        }
    }

    pub fn number(&self) -> Result<f64, String> {
        match self {
            Scalar::Number(n) if n.is_finite() => Ok(*n),
            Scalar::Text(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("{t:?} is not a number")),
            Scalar::Number(n) => Err(format!("{n} is not a number")),
        }
    }

    /// A CPU quantity (`500m`, `2`, `1.5`) in millicores.
    pub fn millicores(&self) -> Result<i64, String> {
        sparkyard_scheduling::quantity::millis(&self.text())
            .map_err(|e| format!("{:?} is not a CPU quantity ({})", self.text(), e.why))
    }

    /// A memory quantity (`4Gi`, `512Mi`, `2G`) in bytes.
    pub fn bytes(&self) -> Result<i64, String> {
        sparkyard_scheduling::quantity::units(&self.text())
            .map_err(|e| format!("{:?} is not a memory quantity ({})", self.text(), e.why))
    }
}

/// `{min, max}` or one value.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RangeSpec {
    Bounds { min: Scalar, max: Scalar },
    One(Scalar),
}

/// A closed range `[min, max]`; drawn uniformly, or fixed when `min == max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

impl<T: Copy + PartialOrd + std::fmt::Debug> Range<T> {
    pub fn fixed(v: T) -> Range<T> {
        Range { min: v, max: v }
    }

    fn from_spec(
        spec: &RangeSpec,
        parse: impl Fn(&Scalar) -> Result<T, String>,
    ) -> Result<Range<T>, String> {
        let r = match spec {
            RangeSpec::One(v) => Range::fixed(parse(v)?),
            RangeSpec::Bounds { min, max } => Range {
                min: parse(min).map_err(|e| format!("min: {e}"))?,
                max: parse(max).map_err(|e| format!("max: {e}"))?,
            },
        };
        if r.min > r.max {
            return Err(format!("min {:?} is above max {:?}", r.min, r.max));
        }
        Ok(r)
    }
}

impl RangeSpec {
    pub fn durations(&self) -> Result<Range<Millis>, String> {
        Range::from_spec(self, Scalar::duration)
    }

    pub fn numbers(&self) -> Result<Range<f64>, String> {
        Range::from_spec(self, Scalar::number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_the_docs_say() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * DAY);
        assert_eq!(parse_duration("1h30m").unwrap(), 90 * MINUTE);
        assert_eq!(parse_duration("90").unwrap(), 90 * SECOND);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-3s").is_err());
        assert_eq!(format_duration(DAY + HOUR + MINUTE + SECOND), "1d 1h 1m 1s");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn ranges_are_ordered() {
        let r: RangeSpec = serde_yaml::from_str("{min: 5m, max: 10m}").unwrap();
        assert_eq!(
            r.durations().unwrap(),
            Range {
                min: 5 * MINUTE,
                max: 10 * MINUTE
            }
        );
        let one: RangeSpec = serde_yaml::from_str("300").unwrap();
        assert_eq!(one.numbers().unwrap(), Range::fixed(300.0));
        let bad: RangeSpec = serde_yaml::from_str("{min: 10m, max: 5m}").unwrap();
        assert!(bad.durations().unwrap_err().contains("above max"));
    }
}
