//! Delivery of one output stream (`stdout` or `stderr`) of one container to its S3 object
//! and its CloudWatch stream.
//!
//! S3: the output accumulates in memory as the current segment and is uploaded gzip'd when
//! the container exits (and, with rotation, each time a segment fills). CloudWatch: lines
//! are queued as events and sent every flush interval, and the checkpoint advances only after
//! a call succeeded. A batch that was in flight when sparkyard stopped is not sent again if
//! it landed (see [`super::checkpoint`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;

use super::checkpoint::{self, Checkpoint, InFlight};
use crate::aws::cloudwatch::Logs;
use crate::batch::{batches, Event};
use crate::lines::LineSplitter;
use crate::rotation;
use crate::run_config::Rotation;

pub struct S3Target {
    pub store: Arc<AmazonS3>,
    /// `…/stdout.gz`.
    pub key: String,
    pub rotation: Option<Rotation>,
}

pub struct CloudWatchTarget {
    pub logs: Arc<Logs>,
    pub group: String,
    pub stream: String,
}

pub struct Sink {
    pub label: String,
    s3: Option<S3Target>,
    segment: Vec<u8>,
    segments_done: u64,
    cw: Option<CloudWatchTarget>,
    cw_ready: bool,
    splitter: LineSplitter,
    pending: Vec<Event>,
    checkpoint_path: PathBuf,
    checkpoint: Checkpoint,
}

/// Attempts per AWS call before a piece of output is given up (and logged as lost).
const ATTEMPTS: u32 = 5;

impl Sink {
    pub fn new(
        label: String,
        s3: Option<S3Target>,
        cw: Option<CloudWatchTarget>,
        checkpoint_path: PathBuf,
    ) -> Self {
        let checkpoint = checkpoint::load(&checkpoint_path);
        Self {
            label,
            s3,
            segment: Vec::new(),
            segments_done: 0,
            cw,
            cw_ready: false,
            splitter: LineSplitter::new(),
            pending: Vec::new(),
            checkpoint_path,
            checkpoint,
        }
    }

    pub fn already_done(&self) -> bool {
        self.checkpoint.done
    }

    /// New output.
    pub async fn push(&mut self, chunk: &[u8]) {
        if self.cw.is_some() {
            let sent = self.checkpoint.cloudwatch_offset;
            let events = self.splitter.push(chunk, now_ms());
            self.pending
                .extend(events.into_iter().filter(|e| e.end_offset > sent));
        }
        if self.s3.is_some() {
            self.segment.extend_from_slice(chunk);
            self.rotate().await;
        }
    }

    /// Uploads full segments when rotation is on.
    async fn rotate(&mut self) {
        let Some(target) = &self.s3 else { return };
        let Some(rot) = target.rotation else { return };
        while let Some(cut) = rotation::cut_point(&self.segment, rot.size_bytes) {
            let data: Vec<u8> = self.segment.drain(..cut).collect();
            self.segments_done += 1;
            let seq = self.segments_done;
            if !rotation::keeps_segments(rot) {
                continue;
            }
            let key = rotation::segment_key(&target.key, rotation::segment_slot(rot, seq));
            put(&target.store, &key, rotation::gzip(&data), &self.label).await;
        }
    }

    /// Sends queued CloudWatch events.
    pub async fn flush(&mut self) {
        let Some(cw) = &self.cw else { return };
        if self.pending.is_empty() {
            return;
        }
        if !self.cw_ready {
            match retry(|| cw.logs.ensure_stream(&cw.group, &cw.stream)).await {
                Ok(()) => self.cw_ready = true,
                Err(e) => {
                    tracing::warn!(stream = %self.label, error = %format!("{e:#}"), "cannot create the CloudWatch log stream; will retry");
                    return;
                }
            }
            self.settle_in_flight().await;
            let sent = self.checkpoint.cloudwatch_offset;
            self.pending.retain(|e| e.end_offset > sent);
        }
        let Some(cw) = &self.cw else { return };
        for batch in batches(std::mem::take(&mut self.pending)) {
            let end = batch.iter().map(|e| e.end_offset).max().unwrap_or(0);
            if let Some(token_before) = self.checkpoint.sequence_token.clone() {
                self.checkpoint.in_flight = Some(InFlight {
                    end_offset: end,
                    token_before,
                });
                self.save();
            }
            let result = retry(|| cw.logs.put_events(&cw.group, &cw.stream, &batch)).await;
            self.checkpoint.in_flight = None;
            match result {
                Ok(next_token) => {
                    self.checkpoint.cloudwatch_offset = self.checkpoint.cloudwatch_offset.max(end);
                    self.checkpoint.sequence_token = next_token;
                }
                Err(e) => {
                    // An attempt may have landed without its answer: the token is unknown
                    // until the next delivered batch.
                    self.checkpoint.sequence_token = None;
                    tracing::error!(stream = %self.label, error = %format!("{e:#}"), events = batch.len(), "CloudWatch events lost")
                }
            }
            self.save();
        }
    }

    /// Once per sink, before its first batch: learns the stream's sequence token and, when
    /// the last sparkyard stopped with a batch in flight, whether that batch landed.
    async fn settle_in_flight(&mut self) {
        let Some(cw) = &self.cw else { return };
        let token = match retry(|| cw.logs.upload_sequence_token(&cw.group, &cw.stream)).await {
            Ok(token) => token,
            Err(e) => {
                tracing::debug!(stream = %self.label, error = %format!("{e:#}"), "cannot read the CloudWatch stream's sequence token");
                None
            }
        };
        if let Some(in_flight) = self.checkpoint.in_flight.take() {
            match &token {
                Some(now) if *now != in_flight.token_before => {
                    tracing::info!(stream = %self.label, offset = in_flight.end_offset, "the CloudWatch batch in flight at the last stop was delivered; not sending it again");
                    self.checkpoint.cloudwatch_offset =
                        self.checkpoint.cloudwatch_offset.max(in_flight.end_offset);
                }
                Some(_) => {}
                None => {
                    tracing::warn!(stream = %self.label, "cannot tell whether the CloudWatch batch in flight at the last stop was delivered; sending it again (its events may appear twice)")
                }
            }
        }
        self.checkpoint.sequence_token = token;
        self.save();
    }

    /// The container exited: deliver the rest and remember it.
    pub async fn finish(&mut self) {
        if self.cw.is_some() {
            let sent = self.checkpoint.cloudwatch_offset;
            if let Some(last) = self
                .splitter
                .finish(now_ms())
                .filter(|e| e.end_offset > sent)
            {
                self.pending.push(last);
            }
            self.flush().await;
        }
        if let Some(target) = &self.s3 {
            let data = std::mem::take(&mut self.segment);
            put(
                &target.store,
                &target.key,
                rotation::gzip(&data),
                &self.label,
            )
            .await;
        }
        self.checkpoint.done = true;
        self.save();
    }

    fn save(&self) {
        if let Err(e) = checkpoint::store(&self.checkpoint_path, &self.checkpoint) {
            tracing::warn!(path = %self.checkpoint_path.display(), error = %e, "cannot write a log checkpoint");
        }
    }
}

async fn put(store: &AmazonS3, key: &str, gz: Vec<u8>, label: &str) {
    let path = ObjectPath::from(key);
    let result = retry(|| async {
        store
            .put(&path, gz.clone().into())
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })
    .await;
    match result {
        Ok(()) => tracing::debug!(stream = %label, %key, "log object uploaded"),
        Err(e) => {
            tracing::error!(stream = %label, %key, error = %format!("{e:#}"), "cannot upload a log object")
        }
    }
}

async fn retry<T, F, Fut>(mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), attempt, "retrying an AWS call");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
