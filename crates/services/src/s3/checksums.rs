//! Checksums on the wire, and request bodies checked against them: which algorithms a
//! request asks for (`x-amz-sdk-checksum-algorithm`, `x-amz-checksum-*` headers, the
//! `x-amz-trailer` announcement of an `aws-chunked` body), the `checksum_*` fields of `s3s`
//! inputs and outputs, and [`S3Store::receive`], which stores a body as a blob only once its
//! `Content-MD5` and every declared checksum match. PutObject and UploadPart use it.

use std::collections::BTreeMap;

use s3s::dto::{ChecksumAlgorithm, StreamingBlob};
use s3s::{s3_error, S3Result, TrailingHeaders};

use super::{blob, S3Store};

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
pub(super) fn requested_algorithms(
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
        .collect::<::std::collections::BTreeMap<String, String>>()
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
pub(super) use {declared_checksums, set_checksums};

/// A request body stored as a blob (see [`S3Store::receive`]).
pub(super) struct Received {
    pub blob: String,
    pub size: i64,
    /// Hex, as in the ETag of a simple object or a part.
    pub md5: String,
    pub checksums: BTreeMap<String, String>,
}

impl S3Store {
    /// Streams a request body into a new blob, computing the `algorithms`' digests, and
    /// keeps it only if it matches `Content-MD5` and every checksum the client declared:
    /// `declared` from the headers, plus those of an `aws-chunked` body's trailers, known
    /// only once the body has been read.
    pub(super) async fn receive(
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
        let blob = written.persist(&self.root).await?;
        Ok(Received {
            blob,
            size,
            md5,
            checksums,
        })
    }
}
