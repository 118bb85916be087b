//! Timestamps: ISO 8601 on the wire (`2026-11-23T19:26:40Z`), millisecond precision inside.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    // Truncated to milliseconds so a value survives a JSON round trip unchanged.
    let n = Utc::now();
    Utc.timestamp_millis_opt(n.timestamp_millis())
        .single()
        .unwrap_or(n)
}

/// The wire form: whole seconds, `Z` suffix, like AWS responses.
pub fn wire(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a timestamp as botocore sends it in a query string (ISO 8601) or as epoch
/// seconds (which boto3 users sometimes pass through raw HTTP tools).
pub fn parse_timestamp(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => parse_str(s),
        Value::Number(n) => {
            let secs = n.as_f64()?;
            Utc.timestamp_millis_opt((secs * 1000.0) as i64).single()
        }
        _ => None,
    }
}

fn parse_str(s: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // ISO 8601 without an offset: read as UTC.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    s.parse::<f64>()
        .ok()
        .and_then(|secs| Utc.timestamp_millis_opt((secs * 1000.0) as i64).single())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_format() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 19, 26, 40).unwrap();
        assert_eq!(wire(&t), "2026-11-23T19:26:40Z");
    }

    #[test]
    fn parses_query_forms() {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_timestamp(&json!("2024-01-01T00:00:00Z")), Some(t));
        assert_eq!(
            parse_timestamp(&json!("2024-01-01T00:00:00+00:00")),
            Some(t)
        );
        assert_eq!(parse_timestamp(&json!("2024-01-01T00:00:00")), Some(t));
        assert_eq!(parse_timestamp(&json!("2024-01-01")), Some(t));
        assert_eq!(parse_timestamp(&json!(1704067200)), Some(t));
        assert_eq!(parse_timestamp(&json!("yesterday")), None);
    }
}
