//! Resource ids (reference §5).
//!
//! | resource | length | form |
//! |---|---|---|
//! | virtual cluster | 25 | random `[0-9a-z]` |
//! | job run | 19 | time-ordered `^0{7}[0-9a-z]{12}$` |
//! | managed endpoint | 13 | random `[0-9a-z]` |
//! | job template | 17 | random `[0-9a-z]` (AWS length unobserved; emulators use 13–17) |
//! | security configuration | 17 | random `[0-9a-z]` (same) |

use std::sync::Mutex;

use rand::RngExt;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

pub const VIRTUAL_CLUSTER_ID_LEN: usize = 25;
pub const JOB_RUN_ID_LEN: usize = 19;
pub const ENDPOINT_ID_LEN: usize = 13;
pub const JOB_TEMPLATE_ID_LEN: usize = 17;
pub const SECURITY_CONFIGURATION_ID_LEN: usize = 17;

pub fn random_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..36)] as char)
        .collect()
}

pub fn virtual_cluster_id() -> String {
    random_id(VIRTUAL_CLUSTER_ID_LEN)
}
pub fn endpoint_id() -> String {
    random_id(ENDPOINT_ID_LEN)
}
pub fn job_template_id() -> String {
    random_id(JOB_TEMPLATE_ID_LEN)
}
pub fn security_configuration_id() -> String {
    random_id(SECURITY_CONFIGURATION_ID_LEN)
}

/// Bits of the job-run value below the millisecond timestamp. 36^12 ≈ 2^62, and
/// milliseconds since 1970 need 41 bits for the next ~60 years, so 20 low bits leave the
/// id at 12 base-36 digits (7 leading zeros, like AWS's ids) until the year 2039; after
/// that ids grow to a 13th digit and stay ordered only numerically. A counter (rather
/// than pure randomness) in the low bits keeps ids unique and increasing within one
/// millisecond: 2^20 ids per millisecond per process.
const JOB_RUN_LOW_BITS: u32 = 20;

/// Generates job-run ids that increase lexically with time, unique within this process.
pub struct JobRunIds {
    last: Mutex<u64>,
}

impl Default for JobRunIds {
    fn default() -> Self {
        Self::new()
    }
}

impl JobRunIds {
    pub fn new() -> Self {
        Self {
            last: Mutex::new(0),
        }
    }

    /// Starts after `id` (e.g. the newest id in the store) so that ids stay increasing
    /// across restarts even if the clock went back.
    pub fn observe(&self, id: &str) {
        if let Some(v) = decode_base36(id) {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            *last = (*last).max(v);
        }
    }

    pub fn next(&self, now_ms: u64) -> String {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Start each millisecond at a random offset in the lower half of the counter
        // space, so ids are not trivially guessable yet leave room for a burst.
        let jitter = rand::rng().random_range(0..(1u64 << (JOB_RUN_LOW_BITS - 1)));
        let candidate = (now_ms << JOB_RUN_LOW_BITS) | jitter;
        let value = if candidate > *last {
            candidate
        } else {
            *last + 1
        };
        *last = value;
        encode_job_run_id(value)
    }
}

pub fn encode_job_run_id(mut value: u64) -> String {
    let mut digits = Vec::with_capacity(JOB_RUN_ID_LEN);
    while value > 0 {
        digits.push(ALPHABET[(value % 36) as usize]);
        value /= 36;
    }
    while digits.len() < JOB_RUN_ID_LEN {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii")
}

fn decode_base36(s: &str) -> Option<u64> {
    s.chars().try_fold(0u64, |acc, c| {
        acc.checked_mul(36)?.checked_add(c.to_digit(36)? as u64)
    })
}

/// Whether `id` has the shape of a job-run id (19 alphanumerics); AWS answers
/// "Invalid job run short id" otherwise.
pub fn is_job_run_id(id: &str) -> bool {
    id.len() == JOB_RUN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_right_shape() {
        for (id, len) in [
            (virtual_cluster_id(), 25),
            (endpoint_id(), 13),
            (job_template_id(), 17),
            (security_configuration_id(), 17),
        ] {
            assert_eq!(id.len(), len);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
    }

    #[test]
    fn job_run_ids_are_time_ordered_and_unique() {
        let gen = JobRunIds::new();
        let re = regex::Regex::new("^0{7}[0-9a-z]{12}$").unwrap();
        let now = 1_795_000_000_000u64; // 2026-11
        let mut prev = String::new();
        // Many ids inside one millisecond, then later milliseconds.
        for ms in [now, now, now, now + 1, now + 1000, now + 86_400_000] {
            for _ in 0..1000 {
                let id = gen.next(ms);
                assert!(re.is_match(&id), "{id}");
                assert!(id > prev, "{id} <= {prev}");
                prev = id;
            }
        }
    }

    #[test]
    fn clock_going_back_keeps_order() {
        let gen = JobRunIds::new();
        let a = gen.next(2_000_000_000_000);
        let b = gen.next(1_000_000_000_000);
        assert!(b > a);
        let other = JobRunIds::new();
        other.observe(&b);
        assert!(other.next(1_000_000_000_000) > b);
    }

    #[test]
    fn short_id_check() {
        assert!(is_job_run_id("0000000306pd7cjc3s5"));
        assert!(!is_job_run_id("0000000306pd7cjc3s"));
        assert!(!is_job_run_id("0000000306PD7cjc3s5"));
    }
}
