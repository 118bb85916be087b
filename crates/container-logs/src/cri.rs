//! The CRI container log format, as containerd and CRI-O write `/var/log/pods/…/<n>.log`:
//! one record per line of output,
//!
//! ```text
//! 2026-11-23T20:18:00.123456789Z stderr F 25/11/23 20:18:00 INFO SparkContext: Running Spark version 4.0.1
//! ```
//!
//! time (RFC 3339, nanoseconds, UTC), stream (`stdout`|`stderr`), tag (`F` a full line, `P`
//! a partial one continued by the next record of the same stream) and the content without
//! its newline. Keeping the stream per line is what lets `pods/log?stream=Stderr` (and the
//! log shipper's separate `stdout.gz`/`stderr.gz`) exist; keeping the time per line is what
//! serves `timestamps=true`, `sinceSeconds` and `sinceTime`.
//!
//! Writing: the container's stdout and stderr are pipes, each drained by a thread
//! ([`capture`]) into one shared [`Writer`], so records of both streams interleave in
//! arrival order and a record is never torn. Reading: [`Render`] turns records back into
//! the bytes the container wrote, as the kubelet's `ReadLogs` does.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Longest content of one record; a longer line is split into `P` records (the kubelet's
/// and containerd's 16 KiB).
pub const MAX_RECORD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn parse(text: &[u8]) -> Option<Stream> {
        match text {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One container's log file, shared by the threads draining its stdout and stderr.
pub struct Writer {
    file: Mutex<File>,
}

impl Writer {
    /// Opens (creating, appending) the log file.
    pub fn open(path: &Path) -> std::io::Result<Arc<Writer>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(Writer {
            file: Mutex::new(file),
        }))
    }

    /// Appends one record stamped now. `content` must not contain a newline.
    pub fn record(&self, stream: Stream, partial: bool, content: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(content.len() + 48);
        line.extend_from_slice(
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Nanos, true)
                .as_bytes(),
        );
        line.push(b' ');
        line.extend_from_slice(stream.as_str().as_bytes());
        line.extend_from_slice(if partial { b" P " } else { b" F " });
        line.extend_from_slice(content);
        line.push(b'\n');
        // One write per record under the lock: records of the two streams never interleave
        // inside a line.
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&line)
    }

    /// Copies `reader` (one of the container's pipes) into the log until end of file, a
    /// record per line. A line longer than [`MAX_RECORD`] becomes `P` records; an
    /// unterminated last line is written as a full one.
    pub fn copy(&self, stream: Stream, reader: impl Read) -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let buffer = reader.fill_buf()?;
            if buffer.is_empty() {
                if !pending.is_empty() {
                    self.record(stream, false, &pending)?;
                }
                return Ok(());
            }
            let taken = buffer.len();
            let mut rest = buffer;
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                pending.extend_from_slice(&rest[..end]);
                self.flush_long(stream, &mut pending)?;
                self.record(stream, false, &pending)?;
                pending.clear();
                rest = &rest[end + 1..];
            }
            pending.extend_from_slice(rest);
            self.flush_long(stream, &mut pending)?;
            reader.consume(taken);
        }
    }

    /// Writes whole [`MAX_RECORD`] pieces of an over-long line as partial records.
    fn flush_long(&self, stream: Stream, pending: &mut Vec<u8>) -> std::io::Result<()> {
        let mut written = 0;
        while pending.len() - written > MAX_RECORD {
            self.record(stream, true, &pending[written..written + MAX_RECORD])?;
            written += MAX_RECORD;
        }
        pending.drain(..written);
        Ok(())
    }
}

/// A container's stdout and stderr as pipes drained into its CRI log.
pub struct Capture {
    /// Give these to the container process (then drop them here).
    pub stdout: std::io::PipeWriter,
    pub stderr: std::io::PipeWriter,
    pub drained: Drained,
}

/// Signals when both pipes reached end of file, i.e. every process holding them is gone
/// and everything they wrote is in the log.
pub struct Drained {
    done: mpsc::Receiver<()>,
}

impl Drained {
    /// Waits until both pipes are drained, at most `limit` (a process that escaped the
    /// container could hold a pipe open forever).
    pub fn wait(self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if self.done.recv_timeout(left).is_err() {
                return;
            }
        }
    }
}

/// Opens `log` and starts the two threads that drain a container's output into it.
pub fn capture(log: &Path) -> std::io::Result<Capture> {
    let writer = Writer::open(log)?;
    let (out_read, stdout) = std::io::pipe()?;
    let (err_read, stderr) = std::io::pipe()?;
    let (done_tx, done) = mpsc::channel();
    for (stream, pipe) in [(Stream::Stdout, out_read), (Stream::Stderr, err_read)] {
        let writer = writer.clone();
        let done_tx = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("log-{}", stream.as_str()))
            .spawn(move || {
                if let Err(e) = writer.copy(stream, pipe) {
                    // The log file is gone or the disk is full: nothing left to write to.
                    eprintln!("container log {}: {e}", stream.as_str());
                }
                let _ = done_tx.send(());
            })?;
    }
    Ok(Capture {
        stdout,
        stderr,
        drained: Drained { done },
    })
}

/// One parsed line of the log file.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `None` for a line that is not a CRI record (text written to the file directly, like
    /// the shim's own error messages).
    pub time: Option<&'a str>,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line (without its newline). Anything not in the format is stderr text.
pub fn parse(line: &[u8]) -> Record<'_> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let parsed = (|| {
        let time = std::str::from_utf8(fields.next()?).ok()?;
        let stream = Stream::parse(fields.next()?)?;
        let partial = match fields.next()? {
            b"F" => false,
            b"P" => true,
            _ => return None,
        };
        DateTime::parse_from_rfc3339(time).ok()?;
        Some(Record {
            time: Some(time),
            stream,
            partial,
            content: fields.next().unwrap_or_default(),
        })
    })();
    parsed.unwrap_or(Record {
        time: None,
        stream: Stream::Stderr,
        partial: false,
        content: line,
    })
}

/// How `pods/log` presents a log: which stream, with timestamps, from when.
#[derive(Debug, Clone, Default)]
pub struct Render {
    /// `None`: both streams, interleaved as written.
    pub stream: Option<Stream>,
    /// Prefix each line with its RFC 3339 time, as `kubectl logs --timestamps` shows.
    pub timestamps: bool,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Set while a partial line of the chosen output is open (a stateful renderer, so
    /// that following a log renders the same bytes as reading it whole).
    mid_line: bool,
}

impl Render {
    pub fn new(stream: Option<Stream>, timestamps: bool, since: Option<DateTime<Utc>>) -> Render {
        Render {
            stream,
            timestamps,
            since,
            mid_line: false,
        }
    }

    /// Renders the complete lines of `text` (up to its last newline) into `out`; returns
    /// how many bytes of `text` were consumed (a trailing incomplete line waits for more).
    pub fn render(&mut self, text: &[u8], out: &mut Vec<u8>) -> usize {
        let Some(last) = text.iter().rposition(|b| *b == b'\n') else {
            return 0;
        };
        for line in text[..last].split(|b| *b == b'\n') {
            let record = parse(line);
            if self.stream.is_some_and(|s| s != record.stream) {
                continue;
            }
            if let (Some(since), Some(time)) = (self.since, record.time) {
                let at = DateTime::parse_from_rfc3339(time).map(|t| t.with_timezone(&Utc));
                if at.is_ok_and(|at| at < since) {
                    continue;
                }
            }
            if self.timestamps && !self.mid_line {
                if let Some(time) = record.time {
                    out.extend_from_slice(time.as_bytes());
                    out.push(b' ');
                }
            }
            out.extend_from_slice(record.content);
            if record.partial {
                self.mid_line = true;
            } else {
                out.push(b'\n');
                self.mid_line = false;
            }
        }
        last + 1
    }
}

/// The output of a whole log file as `render` presents it.
pub fn render_all(text: &[u8], render: &mut Render) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let used = render.render(text, &mut out);
    if used < text.len() {
        // A last line without its newline (a writer killed mid-record): show what is there.
        let mut rest = text[used..].to_vec();
        rest.push(b'\n');
        render.render(&rest, &mut out);
    }
    out
}

/// Reads `path` from `offset` to its end.
pub fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Seek;
    let mut file = File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(stream: Stream, input: &[u8]) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let writer = Writer::open(&path).unwrap();
        writer.copy(stream, input).unwrap();
        let text = std::fs::read(&path).unwrap();
        (dir, text)
    }

    #[test]
    fn records_carry_time_stream_and_tag() {
        let (_dir, text) = log_of(Stream::Stderr, b"one\ntwo\n");
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 2);
        let first = parse(lines[0]);
        assert_eq!(first.stream, Stream::Stderr);
        assert!(!first.partial);
        assert_eq!(first.content, b"one");
        let time = first.time.unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    }

    #[test]
    fn long_lines_become_partial_records_and_render_back_whole() {
        let long = vec![b'x'; MAX_RECORD * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nend");
        let (_dir, text) = log_of(Stream::Stdout, &input);
        let records: Vec<Record> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse)
            .collect();
        assert_eq!(
            records.iter().map(|r| r.partial).collect::<Vec<_>>(),
            [true, true, false, false]
        );
        let mut expected = long;
        expected.extend_from_slice(b"\nend\n");
        assert_eq!(render_all(&text, &mut Render::default()), expected);
    }

    #[test]
    fn streams_are_filtered_and_interleaving_kept() {
        let text = b"2026-11-23T10:00:00.000000001Z stdout F out 1\n\
2026-11-23T10:00:01.000000000Z stderr F err 1\n\
2026-11-23T10:00:02.000000000Z stdout P out \n\
2026-11-23T10:00:02.500000000Z stdout F 2\n\
sparkyard shim: no such file\n";
        let all = render_all(text, &mut Render::default());
        assert_eq!(
            all,
            b"out 1\nerr 1\nout 2\nsparkyard shim: no such file\n".to_vec()
        );
        let out = render_all(text, &mut Render::new(Some(Stream::Stdout), false, None));
        assert_eq!(out, b"out 1\nout 2\n".to_vec());
        let err = render_all(text, &mut Render::new(Some(Stream::Stderr), false, None));
        assert_eq!(err, b"err 1\nsparkyard shim: no such file\n".to_vec());
        let stamped = render_all(text, &mut Render::new(Some(Stream::Stdout), true, None));
        assert_eq!(
            stamped,
            b"2026-11-23T10:00:00.000000001Z out 1\n2026-11-23T10:00:02.000000000Z out 2\n"
                .to_vec()
        );
        let since = DateTime::parse_from_rfc3339("2026-11-23T10:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        let recent = render_all(text, &mut Render::new(None, false, Some(since)));
        assert_eq!(
            recent,
            b"err 1\nout 2\nsparkyard shim: no such file\n".to_vec()
        );
    }

    #[test]
    fn following_renders_what_reading_whole_renders() {
        let text = b"2026-11-23T10:00:00Z stdout P a\n2026-11-23T10:00:00Z stdout F b\n2026-11-23T10:00:01Z stderr F c\n";
        let whole = render_all(text, &mut Render::new(None, true, None));
        let mut render = Render::new(None, true, None);
        let mut followed = Vec::new();
        let mut offset = 0;
        for end in [5, 33, 40, text.len()] {
            offset += render.render(&text[offset..end], &mut followed);
        }
        assert_eq!(offset, text.len());
        assert_eq!(followed, whole);
        assert_eq!(
            whole,
            b"2026-11-23T10:00:00Z ab\n2026-11-23T10:00:01Z c\n".to_vec()
        );
    }

    #[test]
    fn capture_drains_both_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let capture = capture(&path).unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "echo to-out; echo to-err >&2; printf tail"])
            .stdout(capture.stdout)
            .stderr(capture.stderr)
            .status()
            .unwrap();
        assert!(status.success());
        capture.drained.wait(Duration::from_secs(5));
        let text = std::fs::read(&path).unwrap();
        let out = render_all(&text, &mut Render::new(Some(Stream::Stdout), false, None));
        let err = render_all(&text, &mut Render::new(Some(Stream::Stderr), false, None));
        assert_eq!(out, b"to-out\ntail\n".to_vec());
        assert_eq!(err, b"to-err\n".to_vec());
    }
}
