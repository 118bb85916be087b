//! The object listings: ListObjects (V1) and ListObjectsV2. Both read one page through
//! [`read_page`], which takes a bucket's objects from the index and applies S3's listing rules
//! (prefix, delimiter, start position, page size: the pure [`list`](super::list) module); the
//! two differ only in how a client names where to resume.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::list::{self, Cursor, Entry};
use super::shared::{db_error, timestamp};
use super::{store, S3Store, MAX_KEYS};

/// One page of a bucket listing (V1 and V2 share it).
async fn read_page(
    s3: &S3Store,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&Cursor>,
    max: i32,
) -> S3Result<(Vec<Object>, Vec<CommonPrefix>, Option<Cursor>)> {
    s3.require_bucket(bucket).await?;
    if max < 0 {
        return Err(s3_error!(
            InvalidArgument,
            "max-keys must be a non-negative integer"
        ));
    }
    let objects = store::scan_objects(&s3.db, bucket, prefix, "")
        .await
        .map_err(db_error)?;
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

pub(super) async fn list_objects(
    s3: &S3Store,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = input.max_keys.unwrap_or(MAX_KEYS);
    let after = input.marker.as_deref().map(Cursor::after_key);
    let (contents, prefixes, next) = read_page(
        s3,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        after.as_ref(),
        max,
    )
    .await?;
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

pub(super) async fn list_objects_v2(
    s3: &S3Store,
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
    let (contents, prefixes, next) = read_page(
        s3,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        after.as_ref(),
        max,
    )
    .await?;
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
