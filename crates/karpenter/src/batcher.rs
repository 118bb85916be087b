//! Karpenter's batcher: the first trigger opens a window that closes after
//! `BATCH_IDLE_DURATION` (1 s) without a new trigger, or `BATCH_MAX_DURATION` (10 s) after
//! it opened, so pods created together — a Spark application's executors — are planned
//! together rather than one node each (A#1291).

use std::time::Duration;

use tokio::time::Instant;

/// When the window that opened at `opened`, last triggered at `last`, closes.
pub fn closes_at(opened: Instant, last: Instant, idle: Duration, max: Duration) -> Instant {
    (last + idle).min(opened + max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_window_slides_until_the_maximum() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(1);
        let max = Duration::from_secs(10);
        assert_eq!(closes_at(t0, t0, idle, max), t0 + idle);
        let late = t0 + Duration::from_millis(9500);
        assert_eq!(closes_at(t0, late, idle, max), t0 + max);
    }
}
