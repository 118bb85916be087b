//! `containerLogRotationConfiguration` for the S3 copy, pure: where output is cut into
//! segments and what the segments are called.
//!
//! Naming (EMR does not document its rotated names; these are sparkyard's): the segment
//! being written is always `<stream>.gz` (`stdout.gz`), so the documented path holds the
//! newest output. Completed segments rotate through the slots `<stream>.1.gz` …
//! `<stream>.<maxFilesToKeep - 1>.gz`: segment `n` (from 1) is written to slot
//! `((n - 1) mod (maxFilesToKeep - 1)) + 1`, overwriting the oldest kept segment. So at most
//! `maxFilesToKeep` objects exist per stream, `<stream>.gz` included, using only
//! `s3:PutObject` — the seed's job role has no `s3:DeleteObject` — and a restarted shipper
//! rewrites the same names. The newest completed segment is the slot written last
//! (`LastModified`).

use std::io::Write;

use crate::run_config::Rotation;

/// The S3 key of segment slot `slot`, from the stream's key: `…/stdout.gz` →
/// `…/stdout.<slot>.gz`.
pub fn segment_key(key: &str, slot: u64) -> String {
    match key.strip_suffix(".gz") {
        Some(stem) => format!("{stem}.{slot}.gz"),
        None => format!("{key}.{slot}"),
    }
}

/// The slot (1-based, `<stream>.<slot>.gz`) completed segment `seq` (1-based) is written to.
pub fn segment_slot(rotation: Rotation, seq: u64) -> u64 {
    let slots = u64::from(rotation.max_files.saturating_sub(1)).max(1);
    (seq.saturating_sub(1) % slots) + 1
}

/// Whether completed segments are uploaded at all (`maxFilesToKeep: 1` keeps only the
/// current one).
pub fn keeps_segments(rotation: Rotation) -> bool {
    rotation.max_files > 1
}

/// Where to cut a segment holding `buffer`: at the last newline within `size` bytes, or at
/// `size` when a single line is longer. `None` while the buffer is below `size`.
pub fn cut_point(buffer: &[u8], size: u64) -> Option<usize> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if buffer.len() < size {
        return None;
    }
    match buffer[..size].iter().rposition(|b| *b == b'\n') {
        Some(newline) => Some(newline + 1),
        None => Some(size),
    }
}

/// gzip of `data` (one member, as `gzip`/`zcat` and S3 consoles expect).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn segment_names() {
        assert_eq!(
            segment_key("vc/jobs/j/containers/p/stdout.gz", 3),
            "vc/jobs/j/containers/p/stdout.3.gz"
        );
    }

    #[test]
    fn keeps_max_files_including_the_current_one() {
        let r = Rotation {
            size_bytes: 2048,
            max_files: 3,
        };
        let slots: Vec<u64> = (1..=5).map(|seq| segment_slot(r, seq)).collect();
        assert_eq!(slots, [1, 2, 1, 2, 1]);
        let two = Rotation {
            size_bytes: 2048,
            max_files: 2,
        };
        assert_eq!(segment_slot(two, 7), 1);
        assert!(!keeps_segments(Rotation {
            size_bytes: 2048,
            max_files: 1
        }));
    }

    #[test]
    fn cuts_at_line_boundaries() {
        assert_eq!(cut_point(b"abc", 4), None);
        assert_eq!(cut_point(b"ab\ncd\nef", 7), Some(6));
        assert_eq!(cut_point(b"abcdefgh", 4), Some(4));
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"Pi is roughly 3.14\n".repeat(100);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&data)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
