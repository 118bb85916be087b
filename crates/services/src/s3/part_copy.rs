//! UploadPartCopy: a multipart upload's part copied from (a byte range of) an existing
//! object instead of sent in the body. S3A copies objects of at least
//! `fs.s3a.multipart.threshold` this way, which is every large rename, so every large file
//! the classic FileOutputCommitter commits. The part is stored like an uploaded one: its own
//! blob (the bytes are copied, never shared), its MD5 as ETag and the upload's checksum.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksums::set_checksums;
use super::conditions::ReadConditions;
use super::shared::{no_such_upload, now_ms, timestamp};
use super::{blob, store, S3Store};

/// Why an `x-amz-copy-source-range` was refused (pure; see [`source_range`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    /// Not `bytes=first-last` with `first <= last`.
    Malformed,
    /// `first` is past the end of the source.
    StartsPastEnd,
    /// `last` is past the end of the source.
    EndsPastEnd,
}

/// The bytes an `x-amz-copy-source-range` names in a source of `size` bytes. Stricter than
/// GetObject's `Range`: both ends are required (no suffix or open ranges) and `last` must
/// lie inside the source (S3 does not clamp it).
pub fn source_range(header: &str, size: u64) -> Result<std::ops::Range<u64>, RangeError> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    let (first, last) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RangeError::Malformed);
        }
        s.parse::<u64>().map_err(|_| RangeError::Malformed)
    };
    let (first, last) = (number(first)?, number(last)?);
    if first > last {
        return Err(RangeError::Malformed);
    }
    if first >= size {
        return Err(RangeError::StartsPastEnd);
    }
    if last >= size {
        return Err(RangeError::EndsPastEnd);
    }
    Ok(first..last + 1)
}

/// S3's replies to a refused range.
fn range_error(e: RangeError, size: u64) -> s3s::S3Error {
    match e {
        RangeError::Malformed => s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        ),
        RangeError::StartsPastEnd => s3_error!(
            InvalidRequest,
            "The specified copy range is invalid for the source object size"
        ),
        RangeError::EndsPastEnd => s3_error!(
            InvalidArgument,
            "Range specified is not valid for source object of size: {}",
            size
        ),
    }
}

/// The largest part S3 accepts (5 GiB).
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub(super) async fn upload_part_copy(
    s3: &S3Store,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let upload = s3
        .require_upload(&input.upload_id, &input.bucket, &input.key)
        .await?;
    if !(1..=10_000).contains(&input.part_number) {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ));
    }
    let (_, _, src) = s3.require_copy_source(&input.copy_source).await?;
    let conditions = ReadConditions {
        if_match: input.copy_source_if_match,
        if_none_match: input.copy_source_if_none_match,
        if_modified_since: input.copy_source_if_modified_since,
        if_unmodified_since: input.copy_source_if_unmodified_since,
    };
    conditions.check_copy_source(&src.etag, src.last_modified_ms)?;
    let size = src.size as u64;
    let range = match &input.copy_source_range {
        Some(header) => source_range(header, size).map_err(|e| range_error(e, size))?,
        None => 0..size,
    };
    if range.end - range.start > MAX_PART_SIZE {
        return Err(s3_error!(
            InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
        ));
    }
    let algorithms: Vec<String> = upload.checksum_algorithm.iter().cloned().collect();
    let src_blob = src.blob.clone();
    let copied = s3
        .blocking(move |root| blob::copy_range(root, &src_blob, size, range, &algorithms))
        .await?;
    let md5 = hex::encode(copied.md5);
    let checksums = copied.checksums.clone();
    let blob_size = copied.size as i64;
    let blob_name = copied.persist(&s3.root).await?;
    let part = store::Part {
        part_number: input.part_number as i64,
        blob: blob_name.clone(),
        size: blob_size,
        md5: md5.clone(),
        checksums: checksums.clone(),
        last_modified_ms: now_ms(),
    };
    s3.commit_blob(
        &blob_name,
        store::put_part(&s3.db, &upload.upload_id, &part).await,
        |()| no_such_upload(),
    )?;
    let mut result = CopyPartResult {
        e_tag: Some(ETag::Strong(md5)),
        last_modified: Some(timestamp(part.last_modified_ms)),
        ..Default::default()
    };
    set_checksums!(result, &checksums);
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(result),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(source_range("bytes=0-9", 10), Ok(0..10));
        assert_eq!(source_range("bytes=3-3", 10), Ok(3..4));
        for bad in [
            "bytes=-5",
            "bytes=5-",
            "bytes=5",
            "5-6",
            "bytes=6-5",
            "bytes=a-b",
            "bytes=1-2,4-5",
            "bytes=+1-2",
        ] {
            assert_eq!(source_range(bad, 10), Err(RangeError::Malformed), "{bad}");
        }
        assert_eq!(
            source_range("bytes=10-12", 10),
            Err(RangeError::StartsPastEnd)
        );
        assert_eq!(source_range("bytes=0-10", 10), Err(RangeError::EndsPastEnd));
        assert_eq!(source_range("bytes=0-0", 0), Err(RangeError::StartsPastEnd));
    }
}
