//! CloudWatch Logs `PutLogEvents` batching, pure.
//!
//! Limits of one call (CloudWatch Logs API reference, PutLogEvents): at most 10,000
//! events; at most 1,048,576 bytes, counted as the UTF-8 message bytes plus 26 bytes per
//! event; events in chronological order; a batch spans at most 24 hours; one event is at
//! most 256 KiB (message plus the 26 bytes). Longer lines are split into several events
//! rather than truncated, so no output is lost.

/// Per-event overhead CloudWatch counts against the batch size.
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_EVENT_BYTES: usize = 262_144;
/// Longest message of one event.
pub const MAX_MESSAGE_BYTES: usize = MAX_EVENT_BYTES - EVENT_OVERHEAD;
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
    /// Offset in the container's output just past this event's line: the shipper's
    /// checkpoint once the event is delivered.
    pub end_offset: u64,
}

impl Event {
    fn cost(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD
    }
}

/// Splits a message longer than one event allows, at UTF-8 character boundaries. Only the
/// last piece carries the line's `end_offset`; the others carry the line's start, so a
/// checkpoint never claims a partly delivered line.
pub fn split_long(event: Event) -> Vec<Event> {
    if event.message.len() <= MAX_MESSAGE_BYTES {
        return vec![event];
    }
    let mut pieces = Vec::new();
    let mut rest = event.message.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(MAX_MESSAGE_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    let last = pieces.len() - 1;
    let start_offset = event
        .end_offset
        .saturating_sub(event.message.len() as u64 + 1);
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, message)| Event {
            timestamp: event.timestamp,
            message,
            end_offset: if i == last {
                event.end_offset
            } else {
                start_offset
            },
        })
        .collect()
}

/// Groups events into `PutLogEvents` calls within every limit, in chronological order
/// (stable: equal timestamps keep their output order).
pub fn batches(mut events: Vec<Event>) -> Vec<Vec<Event>> {
    events.sort_by_key(|e| e.timestamp);
    let mut out: Vec<Vec<Event>> = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut bytes = 0usize;
    for event in events.into_iter().flat_map(split_long) {
        let full = current.len() >= MAX_BATCH_EVENTS
            || bytes + event.cost() > MAX_BATCH_BYTES
            || current
                .first()
                .is_some_and(|first| event.timestamp - first.timestamp > MAX_BATCH_SPAN_MS);
        if full {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += event.cost();
        current.push(event);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(timestamp: i64, message: &str, end_offset: u64) -> Event {
        Event {
            timestamp,
            message: message.into(),
            end_offset,
        }
    }

    fn within_limits(batch: &[Event]) {
        assert!(batch.len() <= MAX_BATCH_EVENTS);
        assert!(batch.iter().map(Event::cost).sum::<usize>() <= MAX_BATCH_BYTES);
        assert!(batch.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(batch.last().unwrap().timestamp - batch[0].timestamp <= MAX_BATCH_SPAN_MS);
        assert!(batch
            .iter()
            .all(|e| e.cost() <= MAX_EVENT_BYTES && !e.message.is_empty()));
    }

    #[test]
    fn at_most_ten_thousand_events() {
        let events: Vec<_> = (0..25_001).map(|i| ev(1_000 + i, "x", i as u64)).collect();
        let out = batches(events);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            [10_000, 10_000, 5_001]
        );
        out.iter().for_each(|b| within_limits(b));
    }

    #[test]
    fn byte_limit_counts_26_bytes_per_event() {
        // 1000-byte messages cost 1026: 1022 fit in 1,048,576 (1022*1026 = 1,048,572).
        let line = "a".repeat(1000);
        let events: Vec<_> = (0..2000).map(|i| ev(5, &line, i)).collect();
        let out = batches(events);
        assert_eq!(out[0].len(), 1022);
        assert_eq!(out.iter().map(Vec::len).sum::<usize>(), 2000);
        out.iter().for_each(|b| within_limits(b));
    }

    #[test]
    fn chronological_and_stable() {
        let out = batches(vec![
            ev(3, "c", 3),
            ev(1, "a", 1),
            ev(3, "d", 4),
            ev(2, "b", 2),
        ]);
        let messages: Vec<_> = out[0].iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_batch_spans_at_most_a_day() {
        let out = batches(vec![
            ev(0, "a", 1),
            ev(MAX_BATCH_SPAN_MS, "b", 2),
            ev(MAX_BATCH_SPAN_MS + 1, "c", 3),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1][0].message, "c");
    }

    #[test]
    fn long_lines_become_several_events_at_char_boundaries() {
        let line = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let end = line.len() as u64 + 1;
        let pieces = split_long(ev(1, &line, end));
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.message.len() <= MAX_MESSAGE_BYTES));
        assert_eq!(
            pieces
                .iter()
                .map(|p| p.message.as_str())
                .collect::<String>(),
            line
        );
        assert_eq!(
            pieces[0].end_offset, 0,
            "a partly sent line is not checkpointed"
        );
        assert_eq!(pieces[1].end_offset, end);
        let out = batches(vec![ev(1, &line, end)]);
        out.iter().for_each(|b| within_limits(b));
    }
}
