//! Waiting for "something changed" on a few resources: what a controller's informers give
//! it. Each controller re-reads what it needs from the `Client` after a wake-up, so a lost
//! event (a watch that fell behind and ended) costs nothing but a re-read.

use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;
use sparkyard_kube_apiserver::registry::{Event, Resource};
use sparkyard_kube_apiserver::Client;

pub struct Changes {
    client: Client,
    resources: Vec<Resource>,
    streams: SelectAll<BoxStream<'static, Event>>,
}

impl Changes {
    pub fn new(client: &Client, resources: &[Resource]) -> Changes {
        let mut changes = Changes {
            client: client.clone(),
            resources: resources.to_vec(),
            streams: SelectAll::new(),
        };
        changes.reopen();
        changes
    }

    fn reopen(&mut self) {
        let from = self.client.revision();
        self.streams = SelectAll::new();
        for r in &self.resources {
            if let Ok(s) = self.client.watch(*r, Some(from)) {
                self.streams.push(s.boxed());
            }
        }
    }

    /// Waits up to `timeout` for a change; returns the events seen (a burst is drained so
    /// one wake-up covers it). An empty result means the timeout passed.
    pub async fn wait(&mut self, timeout: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        match tokio::time::timeout(timeout, self.streams.next()).await {
            Ok(Some(e)) => events.push(e),
            Ok(None) => {
                // Every stream ended (fell behind): resume from now; callers re-read.
                self.reopen();
                return events;
            }
            Err(_) => return events,
        }
        while let Some(Some(e)) = self.streams.next().now_or_never() {
            events.push(e);
        }
        events
    }
}

use futures::FutureExt;
