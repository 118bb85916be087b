//! The single-object operations: PutObject, GetObject, HeadObject, DeleteObject,
//! DeleteObjects and CopyObject. A write stores the body as a new blob first and then points
//! the object's index row at it, removing the blob it replaced; reads stream a blob (or the
//! requested range of it) from disk. GetObject and HeadObject answer the same headers, which
//! [`set_object_headers!`] fills for both, and honour the same `If-*` conditions
//! ([`conditions`](super::conditions)); PutObject honours S3's conditional writes and
//! CopyObject its source conditions.

use std::collections::BTreeMap;

use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::checksums::{declared_checksums, requested_algorithms, set_checksums};
use super::conditions::{
    not_modified, precondition_failed, ReadConditions, Verdict, WriteConditions,
};
use super::shared::{db_error, no_such_bucket, now_ms, refusal, timestamp};
use super::{blob, store, S3Store};

/// Shared by GetObject and HeadObject: answers 412 or 304 when the request's `If-*`
/// conditions say so. A 304 carries the object's ETag and Last-Modified, as S3's does.
fn check_read_conditions(conditions: ReadConditions, o: &store::Object) -> S3Result<()> {
    match conditions.evaluate(&o.etag, o.last_modified_ms) {
        Verdict::Proceed => Ok(()),
        Verdict::PreconditionFailed => Err(precondition_failed()),
        Verdict::NotModified => {
            let mut e = not_modified();
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", o.etag)) {
                headers.insert(http::header::ETAG, v);
            }
            let mut date = Vec::new();
            if timestamp(o.last_modified_ms)
                .format(TimestampFormat::HttpDate, &mut date)
                .is_ok()
            {
                if let Ok(v) = http::HeaderValue::from_bytes(&date) {
                    headers.insert(http::header::LAST_MODIFIED, v);
                }
            }
            e.set_headers(headers);
            Err(e)
        }
    }
}

/// CopyObject onto itself must change something, as S3 requires: the metadata
/// (`x-amz-metadata-directive: REPLACE`), the storage class, the website redirect or the
/// encryption.
fn check_not_a_self_copy(input: &CopyObjectInput, src_bucket: &str, src_key: &str) -> S3Result<()> {
    let same = src_bucket == input.bucket && src_key == input.key;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let changes = replace
        || input.storage_class.is_some()
        || input.website_redirect_location.is_some()
        || input.server_side_encryption.is_some()
        || input.sse_customer_algorithm.is_some()
        || input.ssekms_key_id.is_some();
    if same && !changes {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    Ok(())
}

/// Shared by GetObject and HeadObject: which checksums to reveal. S3 returns them only when
/// asked (`x-amz-checksum-mode: ENABLED`) and only for the whole object.
fn visible_checksums(
    o: &store::Object,
    mode: Option<&ChecksumMode>,
    whole: bool,
) -> BTreeMap<String, String> {
    if whole && mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED")) {
        o.checksums.clone()
    } else {
        BTreeMap::new()
    }
}

/// Shared by GetObject and HeadObject: the bytes of an object of `size` that a `Range`
/// asks for (all of them without one), and the `Content-Range` that answers it.
fn requested_bytes(
    range: Option<&Range>,
    size: u64,
) -> S3Result<(std::ops::Range<u64>, Option<String>)> {
    let Some(range) = range else {
        return Ok((0..size, None));
    };
    let bytes = range
        .check(size)
        .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
    let content_range = format!(
        "bytes {}-{}/{size}",
        bytes.start,
        bytes.end.saturating_sub(1)
    );
    Ok((bytes, Some(content_range)))
}

/// Fills what GetObject and HeadObject both answer about the object `o` when `length` of
/// its bytes are sent (their outputs are distinct types with these same fields).
macro_rules! set_object_headers {
    ($out:expr, $o:expr, $length:expr, $content_range:expr, $checksum_mode:expr) => {{
        let o = &$o;
        let length: u64 = $length;
        $out.content_length = Some(length as i64);
        $out.content_range = $content_range;
        $out.accept_ranges = Some("bytes".into());
        $out.e_tag = Some(ETag::Strong(o.etag.clone()));
        $out.last_modified = Some(timestamp(o.last_modified_ms));
        $out.content_type = o
            .content_type
            .clone()
            .or_else(|| Some("binary/octet-stream".into()));
        $out.metadata = (!o.metadata.is_empty()).then(|| o.metadata.clone());
        $out.parts_count = o.parts_count.map(|n| n as i32);
        let visible = visible_checksums(o, $checksum_mode, length == o.size as u64);
        if !visible.is_empty() {
            $out.checksum_type = o.checksum_type.clone().map(ChecksumType::from);
        }
        set_checksums!($out, &visible);
    }};
}

pub(super) async fn put_object(
    s3: &S3Store,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let headers = req.headers.clone();
    let trailers = req.trailing_headers.clone();
    let input = req.input;
    s3.require_bucket(&input.bucket).await?;
    let conditions = WriteConditions {
        if_match: input.if_match.clone(),
        if_none_match: input.if_none_match.clone(),
    };
    conditions.validate()?;
    let body = input.body.ok_or_else(|| {
        s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        )
    })?;
    let header_checksums = declared_checksums!(input);
    let algorithms = requested_algorithms(
        input.checksum_algorithm.as_ref(),
        &header_checksums,
        &headers,
    );
    if let Some(bad) = algorithms
        .iter()
        .find(|a| !blob::ALGORITHMS.contains(&a.as_str()))
    {
        return Err(s3_error!(
            InvalidRequest,
            "Checksum algorithm {} is not supported.",
            bad
        ));
    }
    let md5 = input.content_md5.as_deref();
    let received = s3
        .receive(body, &algorithms, header_checksums, trailers, md5)
        .await?;
    let checksums = received.checksums;
    let object = store::Object {
        key: input.key.clone(),
        blob: received.blob.clone(),
        size: received.size,
        etag: received.md5.clone(),
        last_modified_ms: now_ms(),
        content_type: input.content_type,
        metadata: input.metadata.unwrap_or_default(),
        checksum_type: (!checksums.is_empty()).then(|| ChecksumType::FULL_OBJECT.to_string()),
        checksums: checksums.clone(),
        parts_count: None,
    };
    s3.commit_blob(
        &received.blob,
        store::put_object(&s3.db, &input.bucket, &object, &conditions).await,
        |r| refusal(r, || no_such_bucket(&input.bucket)),
    )?;
    let mut out = PutObjectOutput {
        e_tag: Some(ETag::Strong(received.md5)),
        checksum_type: object.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    };
    set_checksums!(out, &checksums);
    Ok(S3Response::new(out))
}

pub(super) async fn get_object(
    s3: &S3Store,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    let o = s3.require_object(&input.bucket, &input.key).await?;
    let conditions = ReadConditions {
        if_match: input.if_match,
        if_none_match: input.if_none_match,
        if_modified_since: input.if_modified_since,
        if_unmodified_since: input.if_unmodified_since,
    };
    check_read_conditions(conditions, &o)?;
    let (range, content_range) = requested_bytes(input.range.as_ref(), o.size as u64)?;
    let length = range.end - range.start;
    let stream = open_pieces(s3, &o, range).await.map_err(|e| {
        tracing::error!(error = %e, blob = %o.blob, "object blob missing");
        s3_error!(
            InternalError,
            "We encountered an internal error. Please try again."
        )
    })?;
    let mut out = GetObjectOutput {
        body: Some(StreamingBlob::wrap(stream)),
        ..Default::default()
    };
    set_object_headers!(out, o, length, content_range, input.checksum_mode.as_ref());
    Ok(S3Response::new(out))
}

/// The bytes `range` of `o`, streamed from its blob or, for a multipart object, across its
/// parts' blobs. Every file is opened before the first byte is sent, so a missing blob is an
/// error reply rather than a truncated body.
async fn open_pieces(
    s3: &S3Store,
    o: &store::Object,
    range: std::ops::Range<u64>,
) -> std::io::Result<impl futures::Stream<Item = std::io::Result<bytes::Bytes>>> {
    let (root, field, size) = (s3.root.clone(), o.blob.clone(), o.size as u64);
    let pieces = tokio::task::spawn_blocking(move || blob::pieces(&root, &field, size, range))
        .await
        .map_err(std::io::Error::other)??;
    let mut readers = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let mut file = tokio::fs::File::open(&piece.path).await?;
        file.seek(std::io::SeekFrom::Start(piece.offset)).await?;
        readers.push(tokio_util::io::ReaderStream::with_capacity(
            file.take(piece.length),
            256 * 1024,
        ));
    }
    Ok(futures::stream::iter(readers).flatten())
}

pub(super) async fn head_object(
    s3: &S3Store,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    let o = s3.require_object(&input.bucket, &input.key).await?;
    let conditions = ReadConditions {
        if_match: input.if_match,
        if_none_match: input.if_none_match,
        if_modified_since: input.if_modified_since,
        if_unmodified_since: input.if_unmodified_since,
    };
    check_read_conditions(conditions, &o)?;
    let (range, content_range) = requested_bytes(input.range.as_ref(), o.size as u64)?;
    let mut out = HeadObjectOutput::default();
    let length = range.end - range.start;
    set_object_headers!(out, o, length, content_range, input.checksum_mode.as_ref());
    Ok(S3Response::new(out))
}

pub(super) async fn delete_object(
    s3: &S3Store,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = req.input;
    s3.require_bucket(&input.bucket).await?;
    // Deleting a missing key succeeds, as in S3.
    s3.remove_blobs(
        store::delete_object(&s3.db, &input.bucket, &input.key)
            .await
            .map_err(db_error)?,
    );
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub(super) async fn delete_objects(
    s3: &S3Store,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    s3.require_bucket(&input.bucket).await?;
    if input.delete.objects.len() > 1000 {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    for id in input.delete.objects {
        s3.remove_blobs(
            store::delete_object(&s3.db, &input.bucket, &id.key)
                .await
                .map_err(db_error)?,
        );
        if !quiet {
            deleted.push(DeletedObject {
                key: Some(id.key),
                ..Default::default()
            });
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        ..Default::default()
    }))
}

pub(super) async fn copy_object(
    s3: &S3Store,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let (src_bucket, src_key, src) = s3.require_copy_source(&input.copy_source).await?;
    s3.require_bucket(&input.bucket).await?;
    let conditions = ReadConditions {
        if_match: input.copy_source_if_match.clone(),
        if_none_match: input.copy_source_if_none_match.clone(),
        if_modified_since: input.copy_source_if_modified_since.clone(),
        if_unmodified_since: input.copy_source_if_unmodified_since.clone(),
    };
    conditions.check_copy_source(&src.etag, src.last_modified_ms)?;
    check_not_a_self_copy(&input, src_bucket, src_key)?;
    // The copy has the source's bytes, ETag and checksums; its blobs are hard links, so
    // deleting either object leaves the other whole.
    let src_blob = src.blob.clone();
    let blob_name = s3.blocking(move |root| blob::link(root, &src_blob)).await?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let object = store::Object {
        key: input.key.clone(),
        blob: blob_name.clone(),
        last_modified_ms: now_ms(),
        content_type: if replace {
            input.content_type.clone()
        } else {
            src.content_type.clone()
        },
        metadata: if replace {
            input.metadata.clone().unwrap_or_default()
        } else {
            src.metadata.clone()
        },
        ..src
    };
    s3.commit_blob(
        &blob_name,
        store::put_object(&s3.db, &input.bucket, &object, &WriteConditions::default()).await,
        |r| refusal(r, || no_such_bucket(&input.bucket)),
    )?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(object.etag.clone())),
            last_modified: Some(timestamp(object.last_modified_ms)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
