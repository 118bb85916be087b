//! Container output → CloudWatch events: one event per line, stamped when the line is seen
//! (the log API gives no per-line time on every cluster), with the byte offset just past
//! it so delivery can be checkpointed and resumed without duplicates.
//!
//! Empty lines are dropped: CloudWatch refuses empty messages. Invalid UTF-8 is replaced
//! (U+FFFD), since CloudWatch messages are strings.

use crate::batch::Event;

#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    /// Offset of the first byte of `pending` in the whole output.
    pending_start: u64,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of output seen so far.
    pub fn offset(&self) -> u64 {
        self.pending_start + self.pending.len() as u64
    }

    /// Appends output; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8], timestamp: i64) -> Vec<Event> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(newline) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + newline;
            let end_offset = self.pending_start + end as u64 + 1;
            if let Some(event) = event(&self.pending[start..end], timestamp, end_offset) {
                events.push(event);
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        self.pending_start += start as u64;
        events
    }

    /// The last line when output ended without a newline.
    pub fn finish(&mut self, timestamp: i64) -> Option<Event> {
        let end_offset = self.offset();
        let line = std::mem::take(&mut self.pending);
        self.pending_start = end_offset;
        event(&line, timestamp, end_offset)
    }
}

fn event(line: &[u8], timestamp: i64, end_offset: u64) -> Option<Event> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    Some(Event {
        timestamp,
        message: String::from_utf8_lossy(line).into_owned(),
        end_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_chunks_with_offsets() {
        let mut s = LineSplitter::new();
        assert!(s.push(b"Pi is ro", 1).is_empty());
        let e = s.push(b"ughly 3.14\n\nnext\r\nhalf", 2);
        assert_eq!(
            e.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["Pi is roughly 3.14", "next"]
        );
        assert_eq!(e[0].end_offset, 19);
        assert_eq!(e[1].end_offset, 26);
        assert_eq!(s.offset(), 30);
        let last = s.finish(3).unwrap();
        assert_eq!((last.message.as_str(), last.end_offset), ("half", 30));
        assert!(s.finish(4).is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut s = LineSplitter::new();
        let e = s.push(b"a\xffb\n", 1);
        assert_eq!(e[0].message, "a\u{fffd}b");
    }
}
