//! What every S3 operation family shares: S3's error replies for a failed index or a missing
//! bucket, key or upload; millisecond times on the wire; and the [`S3Store`] steps around the
//! index — looking a bucket, object or upload up (awaiting the index off the async threads)
//! and settling which blobs a committed index change made garbage.

use std::time::{Duration, SystemTime};

use s3s::dto::Timestamp;
use s3s::{s3_error, S3Error, S3Result};

use super::{blob, store, S3Store};

pub(super) fn db_error(e: rusqlite::Error) -> S3Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        return storage_full(&e);
    }
    tracing::error!(error = %e, "S3 index failure");
    s3_error!(
        InternalError,
        "We encountered an internal error. Please try again."
    )
}

/// A write refused because the data directory's disk is full. AWS's S3 never fills up, so
/// it has no code for this; S3-compatible stores answer `507 Insufficient Storage` (MinIO:
/// `XMinioStorageFull`), and so does sparkyard, with code `InsufficientStorage` and a
/// message that says what to do. Nothing of the write is kept (docs/reliability.md).
pub(super) fn storage_full(cause: &dyn std::fmt::Display) -> S3Error {
    tracing::warn!(error = %cause, "S3 write refused: the data directory is full");
    let mut error = S3Error::with_message(
        s3s::S3ErrorCode::Custom("InsufficientStorage".into()),
        "The storage backend is out of space: delete objects or give sparkyard's data directory room, then retry. Nothing of this request was stored.",
    );
    error.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    error
}

/// Whether an I/O error means the disk (or the quota) is full.
pub(super) fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
}

pub(super) fn no_such_bucket(_name: &str) -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

pub(super) fn no_such_key(_bucket: &str, _key: &str) -> S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

pub(super) fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// The error for a write the index refused: `gone()` when its bucket or upload is gone.
pub(super) fn refusal(reason: store::Refused, gone: impl FnOnce() -> S3Error) -> S3Error {
    match reason {
        store::Refused::Gone => gone(),
        store::Refused::Condition(c) => c.into_error(),
    }
}

pub(super) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl S3Store {
    pub(super) async fn require_bucket(&self, name: &str) -> S3Result<store::Bucket> {
        store::get_bucket(&self.db, name)
            .await
            .map_err(db_error)?
            .ok_or_else(|| no_such_bucket(name))
    }

    pub(super) async fn require_object(&self, bucket: &str, key: &str) -> S3Result<store::Object> {
        match store::get_object(&self.db, bucket, key)
            .await
            .map_err(db_error)?
        {
            Some(o) => Ok(o),
            None => {
                self.require_bucket(bucket).await?;
                Err(no_such_key(bucket, key))
            }
        }
    }

    /// The object a copy (CopyObject, UploadPartCopy) reads, with its bucket and key;
    /// access-point sources are not served.
    pub(super) async fn require_copy_source<'a>(
        &self,
        source: &'a s3s::dto::CopySource,
    ) -> S3Result<(&'a str, &'a str, store::Object)> {
        let s3s::dto::CopySource::Bucket { bucket, key, .. } = source else {
            return Err(s3s::s3_error!(
                NotImplemented,
                "Copying from access points is not supported."
            ));
        };
        let object = self.require_object(bucket, key).await?;
        Ok((bucket, key, object))
    }

    /// The multipart upload `upload_id`, provided it is one for `bucket`/`key`.
    pub(super) async fn require_upload(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
    ) -> S3Result<store::Upload> {
        let upload = store::get_upload(&self.db, upload_id)
            .await
            .map_err(db_error)?
            .ok_or_else(no_such_upload)?;
        if upload.bucket != bucket || upload.key != key {
            return Err(no_such_upload());
        }
        Ok(upload)
    }

    /// Runs `work` with the store's root on the blocking pool (file-system work that may
    /// read or fsync whole objects).
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&std::path::Path) -> S3Result<T> + Send + 'static,
    ) -> S3Result<T> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || work(&root))
            .await
            .map_err(|_| s3_error!(InternalError))?
    }

    pub(super) fn remove_blobs(&self, blobs: impl IntoIterator<Item = String>) {
        for b in blobs {
            blob::remove(&self.root, &b);
        }
    }

    /// Finishes a write whose index change (`indexed`) references the new blob `blob_name`:
    /// the blobs the change replaced are removed; if the index refused it (the bucket or
    /// upload is gone, or a write condition failed) the new blob is removed and the request
    /// fails with `refused`'s error for the reason.
    pub(super) fn commit_blob<G: IntoIterator<Item = String>, E>(
        &self,
        blob_name: &str,
        indexed: rusqlite::Result<Result<G, E>>,
        refused: impl FnOnce(E) -> S3Error,
    ) -> S3Result<()> {
        match indexed.map_err(db_error)? {
            Ok(replaced) => {
                self.remove_blobs(replaced);
                Ok(())
            }
            Err(reason) => {
                blob::remove(&self.root, blob_name);
                Err(refused(reason))
            }
        }
    }
}
