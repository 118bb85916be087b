//! Events expire: kube-apiserver keeps each Event for `--event-ttl` (default one hour) after
//! its last write, through an etcd lease. Here a pass deletes the Events whose last write is
//! older than the TTL, so a busy cluster's events do not grow without bound.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use sparkyard_kube_apiserver::client::Propagation;
use sparkyard_kube_apiserver::events::EVENTS;
use sparkyard_kube_apiserver::Client;

/// kube-apiserver's `--event-ttl` default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// When an Event was last written: the newest of `lastTimestamp`, `series.lastObservedTime`,
/// `eventTime` and `metadata.creationTimestamp` (each set by some recorder, none by all).
pub fn last_write(event: &Value) -> Option<DateTime<Utc>> {
    [
        &event["lastTimestamp"],
        &event["series"]["lastObservedTime"],
        &event["eventTime"],
        &event["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .filter_map(|v| v.as_str())
    .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
    .map(|t| t.with_timezone(&Utc))
    .max()
}

/// Whether `event` has outlived `ttl` at `now`. An Event without any time never expires
/// here (nothing says how old it is).
pub fn expired(event: &Value, now: DateTime<Utc>, ttl: Duration) -> bool {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    last_write(event).is_some_and(|at| at + ttl <= now)
}

/// Deletes expired Events every tenth of the TTL (between 1 s and a minute).
pub async fn run(client: Client, ttl: Duration) {
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        let now = Utc::now();
        let (events, _) = client.list(EVENTS, None);
        for event in events.iter().filter(|e| expired(e, now, ttl)) {
            let meta = &event["metadata"];
            let (ns, name) = (
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap_or(""),
            );
            // Gone already (deleted with its namespace) is fine.
            let _ = client.delete(EVENTS, ns, name, Propagation::Background, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_write_counts_and_timeless_events_stay() {
        let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let old = json!({"metadata": {"creationTimestamp": "2026-12-04T10:00:00Z"},
                         "lastTimestamp": "2026-12-04T10:59:59Z"});
        assert!(expired(&old, now, hour));
        // Created long ago, but seen again recently (a repeated event): kept.
        let repeated = json!({"metadata": {"creationTimestamp": "2026-12-04T09:00:00Z"},
                              "lastTimestamp": "2026-12-04T11:30:00Z"});
        assert!(!expired(&repeated, now, hour));
        let series = json!({"eventTime": "2026-12-04T09:00:00.000000Z",
                            "series": {"count": 3, "lastObservedTime": "2026-12-04T11:59:00.000000Z"}});
        assert!(!expired(&series, now, hour));
        assert!(expired(&series, now, Duration::from_secs(30)));
        assert!(!expired(&json!({"metadata": {}}), now, Duration::ZERO));
    }
}
