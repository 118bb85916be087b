//! Object bodies on disk: `<root>/blobs/<uuid>`, written first to `<root>/tmp/<uuid>` while
//! hashing, fsynced, and moved into place only once the caller has checked the digests. A
//! blob is referenced by the index only after it is durable, so a crash leaves at worst an
//! unreferenced file (collected at the next start), never an index row without its bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Result};

/// The checksum algorithms S3 supports, by their wire names.
pub const ALGORITHMS: &[&str] = &["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// One running digest per requested algorithm.
pub enum Digest {
    Crc32(Crc32),
    Crc32c(Crc32c),
    Crc64(Crc64Nvme),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Digest {
    pub fn new(algorithm: &str) -> Option<Self> {
        Some(match algorithm {
            "CRC32" => Self::Crc32(Crc32::new()),
            "CRC32C" => Self::Crc32c(Crc32c::new()),
            "CRC64NVME" => Self::Crc64(Crc64Nvme::new()),
            "SHA1" => Self::Sha1(Sha1::new()),
            "SHA256" => Self::Sha256(Sha256::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(d) => d.update(data),
            Self::Crc32c(d) => d.update(data),
            Self::Crc64(d) => d.update(data),
            Self::Sha1(d) => d.update(data),
            Self::Sha256(d) => d.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            Self::Crc32(d) => d.finalize().to_vec(),
            Self::Crc32c(d) => d.finalize().to_vec(),
            Self::Crc64(d) => d.finalize().to_vec(),
            Self::Sha1(d) => d.finalize().as_ref().to_vec(),
            Self::Sha256(d) => d.finalize().as_ref().to_vec(),
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A body written to a temporary file, with its digests. Dropped without
/// [`persist`](Self::persist), the file is removed.
pub struct TempBlob {
    path: PathBuf,
    pub size: u64,
    pub md5: [u8; 16],
    /// Base64 digests by algorithm name.
    pub checksums: BTreeMap<String, String>,
    kept: bool,
}

fn io_error(e: std::io::Error) -> s3s::S3Error {
    tracing::error!(error = %e, "S3 storage I/O failure");
    s3_error!(
        InternalError,
        "We encountered an internal error. Please try again."
    )
}

impl TempBlob {
    /// Moves the file into `<root>/blobs/` under a fresh name and makes the rename durable.
    pub fn persist(mut self, root: &Path) -> S3Result<String> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let dir = root.join("blobs");
        std::fs::rename(&self.path, dir.join(&name)).map_err(io_error)?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error)?;
        self.kept = true;
        Ok(name)
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates an empty temporary blob and the file to write it through.
fn create_temp(root: &Path) -> S3Result<(TempBlob, std::fs::File)> {
    let path = root
        .join("tmp")
        .join(uuid::Uuid::new_v4().simple().to_string());
    let file = std::fs::File::create(&path).map_err(io_error)?;
    let blob = TempBlob {
        path,
        size: 0,
        md5: [0; 16],
        checksums: BTreeMap::new(),
        kept: false,
    };
    Ok((blob, file))
}

/// The running digests of a blob being written: MD5 always, plus the requested algorithms'.
struct Digests {
    md5: Md5,
    requested: Vec<(String, Digest)>,
}

impl Digests {
    fn new(algorithms: &[String]) -> Self {
        Self {
            md5: Md5::new(),
            requested: algorithms
                .iter()
                .filter_map(|a| Digest::new(a).map(|d| (a.clone(), d)))
                .collect(),
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        for (_, d) in &mut self.requested {
            d.update(data);
        }
    }

    /// Records the final digests on `blob`.
    fn finish(self, blob: &mut TempBlob) {
        blob.md5 = self.md5.finalize().as_ref().try_into().unwrap_or([0; 16]);
        blob.checksums = self
            .requested
            .into_iter()
            .map(|(a, d)| (a, b64(&d.finalize())))
            .collect();
    }
}

/// Streams `body` into a temporary file, computing MD5 and the `algorithms`' digests, and
/// fsyncs it.
pub async fn write(
    root: &Path,
    mut body: StreamingBlob,
    algorithms: &[String],
) -> S3Result<TempBlob> {
    let (mut blob, mut file) = create_temp(root)?;
    let mut digests = Digests::new(algorithms);
    // Batches writes so each small chunk does not become a syscall.
    let mut buffer = Vec::with_capacity(1 << 20);
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| s3_error!(IncompleteBody, "The request body could not be read: {e}"))?;
        digests.update(&chunk);
        blob.size += chunk.len() as u64;
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= 1 << 20 {
            file.write_all(&buffer).map_err(io_error)?;
            buffer.clear();
        }
    }
    file.write_all(&buffer).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    digests.finish(&mut blob);
    Ok(blob)
}

/// Concatenates `parts` (blob names under `<root>/blobs/`) into a temporary file, computing
/// MD5 and the `algorithms`' digests of the whole. Blocking: run off the async runtime.
pub fn concat(root: &Path, parts: &[String], algorithms: &[String]) -> S3Result<TempBlob> {
    let (mut blob, mut out) = create_temp(root)?;
    let mut digests = Digests::new(algorithms);
    for part in parts {
        let input = std::fs::File::open(root.join("blobs").join(part)).map_err(io_error)?;
        append(input, &mut out, &mut digests, &mut blob)?;
    }
    out.sync_all().map_err(io_error)?;
    digests.finish(&mut blob);
    Ok(blob)
}

/// Copies the bytes `range` of the blob `name` into a temporary file, with their MD5 and
/// the `algorithms`' digests (UploadPartCopy's part). Blocking: run off the async runtime.
pub fn copy_range(
    root: &Path,
    name: &str,
    range: std::ops::Range<u64>,
    algorithms: &[String],
) -> S3Result<TempBlob> {
    use std::io::{Read, Seek};
    let (mut blob, mut out) = create_temp(root)?;
    let mut digests = Digests::new(algorithms);
    let mut input = std::fs::File::open(root.join("blobs").join(name)).map_err(io_error)?;
    input
        .seek(std::io::SeekFrom::Start(range.start))
        .map_err(io_error)?;
    append(
        input.take(range.end - range.start),
        &mut out,
        &mut digests,
        &mut blob,
    )?;
    out.sync_all().map_err(io_error)?;
    digests.finish(&mut blob);
    Ok(blob)
}

/// Appends all of `input` to `out`, digesting it and counting it into `blob`'s size.
fn append(
    mut input: impl std::io::Read,
    out: &mut std::fs::File,
    digests: &mut Digests,
    blob: &mut TempBlob,
) -> S3Result<()> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buffer).map_err(io_error)?;
        if n == 0 {
            return Ok(());
        }
        digests.update(&buffer[..n]);
        out.write_all(&buffer[..n]).map_err(io_error)?;
        blob.size += n as u64;
    }
}

pub fn remove(root: &Path, name: &str) {
    if let Err(e) = std::fs::remove_file(root.join("blobs").join(name)) {
        tracing::warn!(blob = name, error = %e, "cannot remove an unreferenced S3 blob");
    }
}

/// Creates the layout and removes leftovers of interrupted writes.
pub fn prepare(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("blobs"))?;
    let _ = std::fs::remove_dir_all(root.join("tmp"));
    std::fs::create_dir_all(root.join("tmp"))
}

/// S3's multipart ETag: MD5 of the parts' binary MD5s, `-<number of parts>`.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut md5 = Md5::new();
    for m in part_md5s {
        md5.update(m);
    }
    format!(
        "{}-{}",
        hex::encode(md5.finalize().as_ref()),
        part_md5s.len()
    )
}

/// S3's COMPOSITE checksum of a multipart object: the algorithm over the parts' binary
/// checksums, base64, `-<number of parts>`.
pub fn composite_checksum(algorithm: &str, part_checksums: &[String]) -> Option<String> {
    let mut digest = Digest::new(algorithm)?;
    for c in part_checksums {
        digest.update(&unb64(c)?);
    }
    Some(format!(
        "{}-{}",
        b64(&digest.finalize()),
        part_checksums.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_of_multipart_objects() {
        // Two parts "a" and "b": md5(md5("a") || md5("b")).
        let a: [u8; 16] = Md5::checksum(b"a").as_ref().try_into().unwrap();
        let b: [u8; 16] = Md5::checksum(b"b").as_ref().try_into().unwrap();
        let mut whole = Md5::new();
        whole.update(&a);
        whole.update(&b);
        assert_eq!(
            multipart_etag(&[a, b]),
            format!("{}-2", hex::encode(whole.finalize().as_ref()))
        );
    }

    #[test]
    fn crc32_matches_the_known_vector() {
        let mut d = Digest::new("CRC32").unwrap();
        d.update(b"123456789");
        assert_eq!(hex::encode(d.finalize()), "cbf43926");
        assert!(composite_checksum("CRC32", &[b64(&[0, 0, 0, 1])])
            .unwrap()
            .ends_with("-1"));
        assert!(Digest::new("MD5").is_none());
    }

    #[tokio::test]
    async fn temp_blobs_are_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path()).unwrap();
        let body = StreamingBlob::wrap(futures::stream::iter(vec![Ok::<_, std::io::Error>(
            bytes::Bytes::from_static(b"hello"),
        )]));
        let blob = write(dir.path(), body, &["SHA256".to_string()])
            .await
            .unwrap();
        assert_eq!(blob.size, 5);
        assert_eq!(hex::encode(blob.md5), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            blob.checksums["SHA256"],
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        drop(blob);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
