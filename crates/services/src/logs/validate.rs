//! CloudWatch Logs input rules (pure): names, retention values, and the PutLogEvents batch
//! limits exactly as AWS enforces them.

/// Largest batch: the sum of UTF-8 message sizes plus [`EVENT_OVERHEAD`] per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes AWS adds to each event when sizing a batch.
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// A batch may not span more than 24 hours.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Events more than 14 days old are rejected as too old …
pub const TOO_OLD_MS: i64 = 14 * 24 * 3600 * 1000;
/// … and events more than 2 hours in the future as too new.
pub const TOO_NEW_MS: i64 = 2 * 3600 * 1000;

/// Retention values `PutRetentionPolicy` accepts.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// `1 validation error detected: …`, the message InvalidParameterException carries for
/// constraint violations.
pub fn constraint(value: &str, member: &str, constraint: &str) -> String {
    format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}")
}

pub fn log_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 512 {
        return Err(constraint(
            name,
            "logGroupName",
            "Member must have length less than or equal to 512",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c))
    {
        return Err(constraint(
            name,
            "logGroupName",
            "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
        ));
    }
    Ok(())
}

pub fn log_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 512 {
        return Err(constraint(
            name,
            "logStreamName",
            "Member must have length less than or equal to 512",
        ));
    }
    if name.contains(':') || name.contains('*') {
        return Err(constraint(
            name,
            "logStreamName",
            "Member must satisfy regular expression pattern: [^:*]*",
        ));
    }
    Ok(())
}

pub fn retention_days(days: i64) -> Result<(), String> {
    if RETENTION_DAYS.contains(&days) {
        Ok(())
    } else {
        Err(constraint(
            &days.to_string(),
            "retentionInDays",
            &format!(
                "Member must satisfy enum value set: [{}]",
                RETENTION_DAYS
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// Events of a PutLogEvents batch that are rejected rather than stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Events before this index are too old (exclusive end).
    pub too_old_end: Option<usize>,
    /// Events before this index are older than the group's retention (exclusive end).
    pub expired_end: Option<usize>,
    /// Events from this index on are too new (inclusive start).
    pub too_new_start: Option<usize>,
}

impl Rejected {
    /// The index range of events to store.
    pub fn accepted(&self, len: usize) -> std::ops::Range<usize> {
        let start = self
            .too_old_end
            .unwrap_or(0)
            .max(self.expired_end.unwrap_or(0));
        let end = self.too_new_start.unwrap_or(len);
        start..end.max(start)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks a batch (timestamps and message sizes, in request order) at `now_ms` for a group
/// with `retention_days`. An `Err` refuses the whole batch with InvalidParameterException's
/// message; `Ok` says which events, if any, are rejected individually.
pub fn check_batch(
    events: &[(i64, usize)],
    now_ms: i64,
    retention_days: Option<i64>,
) -> Result<Rejected, String> {
    if events.is_empty() {
        return Err(constraint(
            "[]",
            "logEvents",
            "Member must have length greater than or equal to 1",
        ));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(constraint(
            &format!("[{} events]", events.len()),
            "logEvents",
            &format!("Member must have length less than or equal to {MAX_BATCH_EVENTS}"),
        ));
    }
    let size: usize = events.iter().map(|(_, len)| len + EVENT_OVERHEAD).sum();
    if size > MAX_BATCH_BYTES {
        return Err(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        ));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(
            "Log events in a single PutLogEvents request must be in chronological order.".into(),
        );
    }
    let (first, last) = (events[0].0, events[events.len() - 1].0);
    if last - first > MAX_BATCH_SPAN_MS {
        return Err("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into());
    }
    let count_before = |limit: i64| events.iter().take_while(|(t, _)| *t < limit).count();
    let mut rejected = Rejected::default();
    let too_old = count_before(now_ms - TOO_OLD_MS);
    if too_old > 0 {
        rejected.too_old_end = Some(too_old);
    }
    if let Some(days) = retention_days {
        let expired = count_before(now_ms - days * 24 * 3600 * 1000);
        if expired > 0 {
            rejected.expired_end = Some(expired);
        }
    }
    let too_new = count_before(now_ms + TOO_NEW_MS + 1);
    if too_new < events.len() {
        rejected.too_new_start = Some(too_new);
    }
    Ok(rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn names() {
        log_group_name("/emr-on-eks/eks-emr-cluster/realtime-batch").unwrap();
        assert!(log_group_name("bad name").is_err());
        assert!(log_group_name("").is_err());
        log_stream_name("pi/abc/spark-driver/stdout").unwrap();
        assert!(log_stream_name("a:b").is_err());
        retention_days(7).unwrap();
        assert!(retention_days(8)
            .unwrap_err()
            .contains("enum value set: [1, 3, 5"));
    }

    #[test]
    fn batch_limits() {
        assert!(check_batch(&[], NOW, None).is_err());
        let many = vec![(NOW, 1); MAX_BATCH_EVENTS + 1];
        assert!(check_batch(&many, NOW, None)
            .unwrap_err()
            .contains("less than or equal to 10000"));
        assert!(check_batch(&vec![(NOW, 1); MAX_BATCH_EVENTS], NOW, None)
            .unwrap()
            .is_empty());
        // Exactly at the byte limit passes; one more byte fails.
        let exact = [(NOW, MAX_BATCH_BYTES - 2 * EVENT_OVERHEAD - 10), (NOW, 10)];
        check_batch(&exact, NOW, None).unwrap();
        let over = [(NOW, MAX_BATCH_BYTES - 2 * EVENT_OVERHEAD - 9), (NOW, 10)];
        assert_eq!(
            check_batch(&over, NOW, None).unwrap_err(),
            "Upload too large: 1048577 bytes exceeds limit of 1048576"
        );
    }

    #[test]
    fn order_and_span() {
        assert!(check_batch(&[(NOW, 1), (NOW - 1, 1)], NOW, None)
            .unwrap_err()
            .contains("chronological order"));
        check_batch(&[(NOW - MAX_BATCH_SPAN_MS, 1), (NOW, 1)], NOW, None).unwrap();
        assert!(
            check_batch(&[(NOW - MAX_BATCH_SPAN_MS - 1, 1), (NOW, 1)], NOW, None)
                .unwrap_err()
                .contains("24 hours")
        );
    }

    #[test]
    fn too_old_too_new_expired() {
        // A one-day retention expires what is older than a day …
        let batch = [(NOW - 86_400_000 - 1, 1), (NOW - 1000, 1)];
        let r = check_batch(&batch, NOW, Some(1)).unwrap();
        assert_eq!(r.expired_end, Some(1));
        assert_eq!(r.accepted(2), 1..2);
        // … and more than two hours ahead is too new.
        let batch = [(NOW, 1), (NOW + TOO_NEW_MS, 1), (NOW + TOO_NEW_MS + 1, 1)];
        let r = check_batch(&batch, NOW, None).unwrap();
        assert_eq!(r.too_new_start, Some(2));
        assert_eq!(r.too_old_end, None);
        assert_eq!(r.accepted(3), 0..2);
        let batch = [(NOW - TOO_OLD_MS - 1, 1), (NOW - TOO_OLD_MS + 1, 1)];
        let r = check_batch(&batch, NOW, None).unwrap();
        assert_eq!(r.too_old_end, Some(1));
        assert_eq!(r.accepted(2), 1..2);
    }
}
