//! CRI log files (`<RFC 3339 time> <stdout|stderr> <F|P> <content>` per line), as the
//! API server's `pods/<name>/log`, the log shipper and Container Insights read them back.
//!
//! Input: raw bytes, a log file as the kubelet might have left it (including lines that are
//! not records, partial records and a last line without its newline). The first byte picks
//! the reader's options (stream filter, timestamps, `sinceTime`, tail size, follow split);
//! the rest is the file. Feeds `cri::parse` per line, `cri::render_all`, `Render::render`
//! as `follow=true` calls it (the file in two chunks) and `tail_lines`.
//!
//! Checked property (documented on `Render`): following a file in chunks renders the same
//! bytes as reading its complete lines at once.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use sparkyard_container_logs::cri::{self, Render, Stream};

fuzz_target!(|data: &[u8]| {
    let Some((&options, text)) = data.split_first() else {
        return;
    };
    let stream = match options & 3 {
        1 => Some(Stream::Stdout),
        2 => Some(Stream::Stderr),
        _ => None,
    };
    let timestamps = options & 4 != 0;
    let since = (options & 8 != 0).then(|| Utc.with_ymd_and_hms(2026, 11, 23, 19, 26, 40).unwrap());
    let tail = usize::from(options >> 4);

    for line in text.split(|b| *b == b'\n') {
        let record = cri::parse(line);
        let _ = record.stream.as_str();
    }

    let whole = cri::render_all(text, &mut Render::new(stream, timestamps, since));
    let _ = sparkyard_container_logs::tail_lines(&whole, tail);
    let _ = sparkyard_container_logs::tail_lines(text, tail);

    // Follow: render the complete lines once in one go and once in two chunks.
    let mut once = Vec::new();
    let used_once = Render::new(stream, timestamps, since).render(text, &mut once);
    let cut = (usize::from(options) * 7919) % (text.len() + 1);
    let mut follow = Render::new(stream, timestamps, since);
    let mut chunked = Vec::new();
    let used_first = follow.render(&text[..cut], &mut chunked);
    let used_second = follow.render(&text[used_first..], &mut chunked);
    assert_eq!(used_first + used_second, used_once, "consumed bytes differ");
    assert!(
        once == chunked,
        "follow rendered {:?}, whole read rendered {:?}",
        String::from_utf8_lossy(&chunked),
        String::from_utf8_lossy(&once)
    );
});
