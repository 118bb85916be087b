//! S3 on sparkyard's endpoint, path-style (`http://<endpoint>/<bucket>/<key>`).
//!
//! The wire protocol — REST routing, XML, SigV4 in all its S3 variants (presigned URLs,
//! `aws-chunked` streaming bodies, trailing checksums) — is the `s3s` crate's; this module
//! owns the semantics and the storage: an SQLite index (`<data_dir>/s3/index.db`) over
//! blobs on disk (`<data_dir>/s3/blobs/`). Writes are acknowledged once the blob and the
//! index row are both durable.

pub mod access;
pub mod blob;
pub mod list;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, TrailingHeaders, S3};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::db::Db;
use list::{Cursor, Entry};

/// The S3 service's state.
pub struct S3Store {
    db: Arc<Db>,
    root: PathBuf,
}

fn db_error(e: rusqlite::Error) -> S3Error {
    tracing::error!(error = %e, "S3 index failure");
    s3_error!(
        InternalError,
        "We encountered an internal error. Please try again."
    )
}

fn no_such_bucket(_name: &str) -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

fn no_such_key(_bucket: &str, _key: &str) -> S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Smallest part S3 accepts, except for the last one.
pub const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;
pub const MAX_KEYS: i32 = 1000;

/// Checksums sent as trailers of an `aws-chunked` body.
fn trailer_checksums(trailers: Option<&http::HeaderMap>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(trailers) = trailers {
        for algorithm in blob::ALGORITHMS {
            let name = format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase());
            if let Some(v) = trailers.get(&name).and_then(|v| v.to_str().ok()) {
                out.insert(algorithm.to_string(), v.to_string());
            }
        }
    }
    out
}

/// Algorithms to compute for a body: those named by `x-amz-sdk-checksum-algorithm`, by
/// checksum headers, and by the `x-amz-trailer` announcement.
fn requested_algorithms(
    algorithm: Option<&ChecksumAlgorithm>,
    declared: &BTreeMap<String, String>,
    headers: &http::HeaderMap,
) -> Vec<String> {
    let mut out: Vec<String> = declared.keys().cloned().collect();
    if let Some(a) = algorithm {
        out.push(a.as_str().to_ascii_uppercase());
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        for name in trailer.split(',') {
            if let Some(a) = name
                .trim()
                .to_ascii_lowercase()
                .strip_prefix("x-amz-checksum-")
            {
                out.push(a.to_ascii_uppercase());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn verify_digests(
    blob: &blob::TempBlob,
    content_md5: Option<&str>,
    declared: &BTreeMap<String, String>,
) -> S3Result<()> {
    if let Some(md5) = content_md5 {
        if blob::unb64(md5).as_deref() != Some(&blob.md5[..]) {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
    }
    for (algorithm, value) in declared {
        if blob.checksums.get(algorithm) != Some(value) {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                algorithm
            ));
        }
    }
    Ok(())
}

/// The checksums an input declares in its `checksum_*` fields (`x-amz-checksum-*` headers),
/// by algorithm: the inverse of `set_checksums!`.
macro_rules! declared_checksums {
    ($input:expr) => {{
        [
            ("CRC32", &$input.checksum_crc32),
            ("CRC32C", &$input.checksum_crc32c),
            ("CRC64NVME", &$input.checksum_crc64nvme),
            ("SHA1", &$input.checksum_sha1),
            ("SHA256", &$input.checksum_sha256),
        ]
        .into_iter()
        .filter_map(|(a, v)| v.as_ref().map(|v| (a.to_string(), v.clone())))
        .collect::<BTreeMap<String, String>>()
    }};
}

/// Fills the `checksum_*` fields of an output from a digest map.
macro_rules! set_checksums {
    ($out:expr, $map:expr) => {{
        let map = $map;
        $out.checksum_crc32 = map.get("CRC32").cloned();
        $out.checksum_crc32c = map.get("CRC32C").cloned();
        $out.checksum_crc64nvme = map.get("CRC64NVME").cloned();
        $out.checksum_sha1 = map.get("SHA1").cloned();
        $out.checksum_sha256 = map.get("SHA256").cloned();
    }};
}

impl S3Store {
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join("s3");
        blob::prepare(&root)?;
        let db = Db::open(&root.join("index.db"), store::SCHEMA).map_err(std::io::Error::other)?;
        let this = Self {
            db: Arc::new(db),
            root,
        };
        this.collect_orphans()?;
        Ok(this)
    }

    /// Removes blobs that no index row references: left by a crash between writing a
    /// blob and committing its row, or between a commit and the old blob's removal.
    fn collect_orphans(&self) -> std::io::Result<()> {
        let referenced = store::referenced_blobs(&self.db).map_err(std::io::Error::other)?;
        for entry in std::fs::read_dir(self.root.join("blobs"))? {
            let name = entry?.file_name().to_string_lossy().to_string();
            if !referenced.contains(&name) {
                blob::remove(&self.root, &name);
            }
        }
        Ok(())
    }

    fn require_bucket(&self, name: &str) -> S3Result<store::Bucket> {
        store::get_bucket(&self.db, name)
            .map_err(db_error)?
            .ok_or_else(|| no_such_bucket(name))
    }

    fn require_object(&self, bucket: &str, key: &str) -> S3Result<store::Object> {
        match store::get_object(&self.db, bucket, key).map_err(db_error)? {
            Some(o) => Ok(o),
            None => {
                self.require_bucket(bucket)?;
                Err(no_such_key(bucket, key))
            }
        }
    }

    fn remove_blobs(&self, blobs: impl IntoIterator<Item = String>) {
        for b in blobs {
            blob::remove(&self.root, &b);
        }
    }

    /// The multipart upload `upload_id`, provided it is one for `bucket`/`key`.
    fn require_upload(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<store::Upload> {
        let upload = store::get_upload(&self.db, upload_id)
            .map_err(db_error)?
            .ok_or_else(no_such_upload)?;
        if upload.bucket != bucket || upload.key != key {
            return Err(no_such_upload());
        }
        Ok(upload)
    }

    /// Streams a request body into a new blob, computing the `algorithms`' digests, and
    /// keeps it only if it matches `Content-MD5` and every checksum the client declared:
    /// `declared` from the headers, plus those of an `aws-chunked` body's trailers, known
    /// only once the body has been read.
    async fn receive(
        &self,
        body: StreamingBlob,
        algorithms: &[String],
        mut declared: BTreeMap<String, String>,
        trailers: Option<TrailingHeaders>,
        content_md5: Option<&str>,
    ) -> S3Result<Received> {
        let written = blob::write(&self.root, body, algorithms).await?;
        let trailer_map = trailers.and_then(|t| t.take());
        declared.extend(trailer_checksums(trailer_map.as_ref()));
        verify_digests(&written, content_md5, &declared)?;
        let md5 = hex::encode(written.md5);
        let checksums = written.checksums.clone();
        let size = written.size as i64;
        let blob = written.persist(&self.root)?;
        Ok(Received {
            blob,
            size,
            md5,
            checksums,
        })
    }

    /// Finishes a write whose index change (`indexed`) references the new blob `blob_name`:
    /// the blobs the change replaced are removed; if the index refused it (`Err(())`: the
    /// bucket or upload is gone) the new blob is removed and the request fails with `gone`.
    fn commit_blob<G: IntoIterator<Item = String>>(
        &self,
        blob_name: &str,
        indexed: rusqlite::Result<Result<G, ()>>,
        gone: impl FnOnce() -> S3Error,
    ) -> S3Result<()> {
        match indexed.map_err(db_error)? {
            Ok(replaced) => {
                self.remove_blobs(replaced);
                Ok(())
            }
            Err(()) => {
                blob::remove(&self.root, blob_name);
                Err(gone())
            }
        }
    }

    /// One page of a bucket listing (V1 and V2 share it).
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&Cursor>,
        max: i32,
    ) -> S3Result<(Vec<Object>, Vec<CommonPrefix>, Option<Cursor>)> {
        self.require_bucket(bucket)?;
        if max < 0 {
            return Err(s3_error!(
                InvalidArgument,
                "max-keys must be a non-negative integer"
            ));
        }
        let objects = store::scan_objects(&self.db, bucket, prefix, "").map_err(db_error)?;
        let page = list::page(
            objects.into_iter().map(|o| (o.key.clone(), o)),
            prefix,
            delimiter,
            after,
            max.min(MAX_KEYS) as usize,
        );
        let mut contents = Vec::new();
        let mut prefixes = Vec::new();
        for entry in page.entries {
            match entry {
                Entry::Object(o) => contents.push(Object {
                    key: Some(o.key),
                    size: Some(o.size),
                    e_tag: Some(ETag::Strong(o.etag)),
                    last_modified: Some(timestamp(o.last_modified_ms)),
                    storage_class: Some(ObjectStorageClass::from_static(
                        ObjectStorageClass::STANDARD,
                    )),
                    checksum_algorithm: (!o.checksums.is_empty()).then(|| {
                        o.checksums
                            .keys()
                            .map(|a| ChecksumAlgorithm::from(a.clone()))
                            .collect()
                    }),
                    checksum_type: o.checksum_type.clone().map(ChecksumType::from),
                    ..Default::default()
                }),
                Entry::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
            }
        }
        Ok((contents, prefixes, page.next))
    }
}

/// A request body stored as a blob (see [`S3Store::receive`]).
struct Received {
    blob: String,
    size: i64,
    /// Hex, as in the ETag of a simple object or a part.
    md5: String,
    checksums: BTreeMap<String, String>,
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

#[async_trait::async_trait]
impl S3 for S3Store {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        let region = input
            .create_bucket_configuration
            .and_then(|c| c.location_constraint)
            .map(|l| l.as_str().to_string())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "us-east-1".to_string());
        if !store::create_bucket(&self.db, &input.bucket, &region, now_ms()).map_err(db_error)? {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        let (outcome, blobs) = store::delete_bucket(&self.db, &bucket).map_err(db_error)?;
        match outcome {
            store::DeleteBucket::Deleted => {
                self.remove_blobs(blobs);
                Ok(S3Response::new(DeleteBucketOutput {}))
            }
            store::DeleteBucket::NotFound => Err(no_such_bucket(&bucket)),
            store::DeleteBucket::NotEmpty => Err(s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            )),
        }
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = self.require_bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(bucket.region),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = self.require_bucket(&req.input.bucket)?;
        // us-east-1 is reported as an empty constraint, as S3 does.
        let location =
            (bucket.region != "us-east-1").then(|| BucketLocationConstraint::from(bucket.region));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: location,
        }))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = store::list_buckets(&self.db).map_err(db_error)?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: Some(b.region),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("sparkyard".into()),
                id: Some("sparkyard".into()),
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = input.max_keys.unwrap_or(MAX_KEYS);
        let after = input.marker.as_deref().map(Cursor::after_key);
        let (contents, prefixes, next) = self.list(
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            after.as_ref(),
            max,
        )?;
        // V1's NextMarker is only returned with a delimiter; clients use the last key otherwise.
        let next_marker = next
            .as_ref()
            .filter(|_| input.delimiter.is_some())
            .map(|c| c.key.clone());
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            marker: input.marker,
            max_keys: Some(max),
            delimiter: input.delimiter,
            is_truncated: Some(next.is_some()),
            next_marker,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = input.max_keys.unwrap_or(MAX_KEYS);
        let after = match (&input.continuation_token, &input.start_after) {
            (Some(token), _) => Some(Cursor::decode(token).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "The continuation token provided is incorrect"
                )
            })?),
            (None, Some(start)) => Some(Cursor::after_key(start)),
            (None, None) => None,
        };
        let (contents, prefixes, next) = self.list(
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            after.as_ref(),
            max,
        )?;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max),
            key_count: Some((contents.len() + prefixes.len()) as i32),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            delimiter: input.delimiter,
            is_truncated: Some(next.is_some()),
            next_continuation_token: next.map(|c| c.encode()),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let headers = req.headers.clone();
        let trailers = req.trailing_headers.clone();
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header."))?;
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
        let received = self
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
        self.commit_blob(
            &received.blob,
            store::put_object(&self.db, &input.bucket, &object),
            || no_such_bucket(&input.bucket),
        )?;
        let mut out = PutObjectOutput {
            e_tag: Some(ETag::Strong(received.md5)),
            checksum_type: object.checksum_type.clone().map(ChecksumType::from),
            ..Default::default()
        };
        set_checksums!(out, &checksums);
        Ok(S3Response::new(out))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let o = self.require_object(&input.bucket, &input.key)?;
        let (range, content_range) = requested_bytes(input.range.as_ref(), o.size as u64)?;
        let mut file = tokio::fs::File::open(self.root.join("blobs").join(&o.blob))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, blob = %o.blob, "object blob missing");
                s3_error!(
                    InternalError,
                    "We encountered an internal error. Please try again."
                )
            })?;
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(|_| s3_error!(InternalError))?;
        let length = range.end - range.start;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(length), 256 * 1024);
        let mut out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            ..Default::default()
        };
        set_object_headers!(out, o, length, content_range, input.checksum_mode.as_ref());
        Ok(S3Response::new(out))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let o = self.require_object(&input.bucket, &input.key)?;
        let (range, content_range) = requested_bytes(input.range.as_ref(), o.size as u64)?;
        let mut out = HeadObjectOutput::default();
        let length = range.end - range.start;
        set_object_headers!(out, o, length, content_range, input.checksum_mode.as_ref());
        Ok(S3Response::new(out))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        // Deleting a missing key succeeds, as in S3.
        if let Some(blob) =
            store::delete_object(&self.db, &input.bucket, &input.key).map_err(db_error)?
        {
            blob::remove(&self.root, &blob);
        }
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        for id in input.delete.objects {
            if let Some(blob) =
                store::delete_object(&self.db, &input.bucket, &id.key).map_err(db_error)?
            {
                blob::remove(&self.root, &blob);
            }
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

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Copying from access points is not supported."
            ));
        };
        let src = self.require_object(src_bucket, src_key)?;
        self.require_bucket(&input.bucket)?;
        // Copy the bytes: blobs are never shared, so deleting one object cannot affect another.
        let root = self.root.clone();
        let parts = vec![src.blob.clone()];
        let algorithms: Vec<String> = src
            .checksums
            .keys()
            .filter(|_| src.parts_count.is_none())
            .cloned()
            .collect();
        let copied = tokio::task::spawn_blocking(move || blob::concat(&root, &parts, &algorithms))
            .await
            .map_err(|_| s3_error!(InternalError))??;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let blob_name = copied.persist(&self.root)?;
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
        self.commit_blob(
            &blob_name,
            store::put_object(&self.db, &input.bucket, &object),
            || no_such_bucket(&input.bucket),
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

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase());
        if let Some(a) = &algorithm {
            if !blob::ALGORITHMS.contains(&a.as_str()) {
                return Err(s3_error!(
                    InvalidRequest,
                    "Checksum algorithm {} is not supported.",
                    a
                ));
            }
        }
        // S3's default for a multipart checksum: COMPOSITE, except CRC64NVME which is
        // always FULL_OBJECT.
        let checksum_type = algorithm.as_ref().map(|a| {
            match input.checksum_type.as_ref().map(|t| t.as_str().to_string()) {
                Some(t) => t,
                None if a == "CRC64NVME" => ChecksumType::FULL_OBJECT.to_string(),
                None => ChecksumType::COMPOSITE.to_string(),
            }
        });
        let upload = store::Upload {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            content_type: input.content_type,
            metadata: input.metadata.unwrap_or_default(),
            checksum_algorithm: algorithm.clone(),
            checksum_type: checksum_type.clone(),
        };
        store::create_upload(&self.db, &upload).map_err(db_error)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
            checksum_type: checksum_type.map(ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let headers = req.headers.clone();
        let trailers = req.trailing_headers.clone();
        let input = req.input;
        let upload = self.require_upload(&input.upload_id, &input.bucket, &input.key)?;
        if !(1..=10_000).contains(&input.part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
        let header_checksums = declared_checksums!(input);
        let mut algorithms = requested_algorithms(
            input.checksum_algorithm.as_ref(),
            &header_checksums,
            &headers,
        );
        if let Some(a) = &upload.checksum_algorithm {
            algorithms.push(a.clone());
            algorithms.dedup();
        }
        let md5 = input.content_md5.as_deref();
        let received = self
            .receive(body, &algorithms, header_checksums, trailers, md5)
            .await?;
        let part = store::Part {
            part_number: input.part_number as i64,
            blob: received.blob.clone(),
            size: received.size,
            md5: received.md5.clone(),
            checksums: received.checksums.clone(),
            last_modified_ms: now_ms(),
        };
        self.commit_blob(
            &received.blob,
            store::put_part(&self.db, &upload.upload_id, &part),
            no_such_upload,
        )?;
        let mut out = UploadPartOutput {
            e_tag: Some(ETag::Strong(received.md5)),
            ..Default::default()
        };
        set_checksums!(out, &received.checksums);
        Ok(S3Response::new(out))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let upload = store::get_upload(&self.db, &input.upload_id)
            .map_err(db_error)?
            .ok_or_else(no_such_upload)?;
        let after = input.part_number_marker.unwrap_or(0) as i64;
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let all: Vec<store::Part> = store::list_parts(&self.db, &upload.upload_id)
            .map_err(db_error)?
            .into_iter()
            .filter(|p| p.part_number > after)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<Part> = all
            .into_iter()
            .take(max)
            .map(|p| {
                let mut part = Part {
                    part_number: Some(p.part_number as i32),
                    size: Some(p.size),
                    e_tag: Some(ETag::Strong(p.md5)),
                    last_modified: Some(timestamp(p.last_modified_ms)),
                    ..Default::default()
                };
                set_checksums!(part, &p.checksums);
                part
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            is_truncated: Some(truncated),
            next_part_number_marker: if truncated {
                page.last().and_then(|p| p.part_number)
            } else {
                None
            },
            max_parts: Some(max as i32),
            checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
            checksum_type: upload.checksum_type.map(ChecksumType::from),
            parts: Some(page),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        match store::delete_upload(&self.db, &input.upload_id).map_err(db_error)? {
            Some(blobs) => {
                self.remove_blobs(blobs);
                Ok(S3Response::new(AbortMultipartUploadOutput::default()))
            }
            None => Err(no_such_upload()),
        }
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let upload = self.require_upload(&input.upload_id, &input.bucket, &input.key)?;
        let requested = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
        }
        let stored: BTreeMap<i64, store::Part> = store::list_parts(&self.db, &upload.upload_id)
            .map_err(db_error)?
            .into_iter()
            .map(|p| (p.part_number, p))
            .collect();
        let invalid_part = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let mut chosen = Vec::with_capacity(requested.len());
        let mut previous = 0;
        for (i, part) in requested.iter().enumerate() {
            let number = part.part_number.unwrap_or(0) as i64;
            if number <= previous {
                return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number."));
            }
            previous = number;
            let p = stored.get(&number).ok_or_else(invalid_part)?;
            if let Some(etag) = &part.e_tag {
                if etag.value().trim_matches('"') != p.md5 {
                    return Err(invalid_part());
                }
            }
            if i + 1 < requested.len() && p.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
            chosen.push(p.clone());
        }
        let md5s: Vec<[u8; 16]> = chosen
            .iter()
            .map(|p| {
                hex::decode(&p.md5)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .unwrap_or([0; 16])
            })
            .collect();
        let etag = blob::multipart_etag(&md5s);
        let full_object = upload.checksum_type.as_deref() == Some(ChecksumType::FULL_OBJECT);
        let algorithms: Vec<String> = upload
            .checksum_algorithm
            .iter()
            .filter(|_| full_object)
            .cloned()
            .collect();
        let root = self.root.clone();
        let part_blobs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        let assembled =
            tokio::task::spawn_blocking(move || blob::concat(&root, &part_blobs, &algorithms))
                .await
                .map_err(|_| s3_error!(InternalError))??;
        let mut checksums = BTreeMap::new();
        if let Some(algorithm) = &upload.checksum_algorithm {
            let value = if full_object {
                assembled.checksums.get(algorithm).cloned()
            } else {
                let parts: Option<Vec<String>> = chosen
                    .iter()
                    .map(|p| p.checksums.get(algorithm).cloned())
                    .collect();
                parts.and_then(|p| blob::composite_checksum(algorithm, &p))
            };
            if let Some(value) = value {
                checksums.insert(algorithm.clone(), value);
            }
        }
        // A full-object checksum the client declares must match what we assembled.
        let declared = declared_checksums!(input);
        for (algorithm, value) in &declared {
            if let Some(ours) = checksums.get(algorithm) {
                if ours != value && !value.contains('-') {
                    return Err(s3_error!(
                        BadDigest,
                        "The {} you specified did not match the calculated checksum.",
                        algorithm
                    ));
                }
            }
        }
        let size = assembled.size as i64;
        let blob_name = assembled.persist(&self.root)?;
        let object = store::Object {
            key: upload.key.clone(),
            blob: blob_name.clone(),
            size,
            etag: etag.clone(),
            last_modified_ms: now_ms(),
            content_type: upload.content_type.clone(),
            metadata: upload.metadata.clone(),
            checksums: checksums.clone(),
            checksum_type: upload
                .checksum_type
                .clone()
                .filter(|_| !checksums.is_empty()),
            parts_count: Some(chosen.len() as i64),
        };
        self.commit_blob(
            &blob_name,
            store::complete_upload(&self.db, &upload, &object),
            no_such_upload,
        )?;
        let mut out = CompleteMultipartUploadOutput {
            bucket: Some(upload.bucket.clone()),
            key: Some(upload.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", upload.bucket, upload.key)),
            checksum_type: object.checksum_type.clone().map(ChecksumType::from),
            ..Default::default()
        };
        set_checksums!(out, &checksums);
        Ok(S3Response::new(out))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        // Uploads are listed empty-handed: sparkyard aborts nothing on its own, but the
        // listing is only used by clean-up tools that then abort what they find.
        let bucket = self.require_bucket(&req.input.bucket)?;
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(bucket.name),
            is_truncated: Some(false),
            uploads: Some(vec![]),
            ..Default::default()
        }))
    }
}

/// The `s3s` service: protocol, SigV4 (keys from the keyring) and per-request authorization.
pub fn service(
    store: S3Store,
    keyring: Arc<sparkyard_aws::keyring::Keyring>,
    authorizer: crate::authz::Authorizer,
    region: &str,
) -> s3s::service::S3Service {
    let mut builder = s3s::service::S3ServiceBuilder::new(store);
    builder.set_auth(access::KeyringAuth {
        keyring: keyring.clone(),
    });
    builder.set_access(access::PolicyAccess {
        keyring,
        authorizer,
        region: region.to_string(),
    });
    builder.build()
}
