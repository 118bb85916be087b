//! Object bodies on disk: `<root>/blobs/<uuid>`, written first to `<root>/tmp/<uuid>` while
//! hashing, fsynced, and moved into place only once the caller has checked the digests. A
//! blob is referenced by the index only after it is durable, so a crash leaves at worst an
//! unreferenced file (collected at the next start), never an index row without its bytes.
//! Blobs are immutable once persisted: a multipart object is the list of its parts' blobs
//! ([`LIST_SEPARATOR`]) and a copy is a hard link ([`link`]).

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
    if super::shared::is_storage_full(&e) {
        return super::shared::storage_full(&e);
    }
    tracing::error!(error = %e, "S3 storage I/O failure");
    s3_error!(
        InternalError,
        "We encountered an internal error. Please try again."
    )
}

impl TempBlob {
    /// Moves the file into `<root>/blobs/` under a fresh name and makes the rename durable,
    /// off the async runtime: a directory fsync on a slow disk would stall every request.
    pub async fn persist(self, root: &Path) -> S3Result<String> {
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || self.persist_blocking(&root))
            .await
            .map_err(|_| s3_error!(InternalError))?
    }

    fn persist_blocking(mut self, root: &Path) -> S3Result<String> {
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
/// fsyncs it. File writes and the fsync run on the blocking pool: on a slow disk they would
/// otherwise hold one of the runtime's few worker threads and stall unrelated requests
/// (scripts/slow-disk.py measured a Kubernetes GET at 2.9 s behind 500 ms fsyncs).
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
            (file, buffer) = off_runtime(move || {
                file.write_all(&buffer)?;
                buffer.clear();
                Ok((file, buffer))
            })
            .await?;
        }
    }
    off_runtime(move || {
        file.write_all(&buffer)?;
        file.sync_all()
    })
    .await?;
    digests.finish(&mut blob);
    Ok(blob)
}

async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> S3Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| s3_error!(InternalError))?
        .map_err(io_error)
}

/// The separator of a blob list: an object's `blob` field names one blob, or, for a
/// completed multipart upload, its parts' blobs in order joined by this. Completing an upload
/// thus keeps the parts where UploadPart wrote them instead of writing the object a second
/// time (S3A's large files and every magic-committer file are multipart).
pub const LIST_SEPARATOR: char = '+';

/// The blob names in an object's `blob` field.
pub fn names(field: &str) -> impl Iterator<Item = &str> {
    field.split(LIST_SEPARATOR)
}

/// The `blob` field for the blobs `names`, in order.
pub fn list(names: &[String]) -> String {
    names.join(&LIST_SEPARATOR.to_string())
}

/// One contiguous run of an object's bytes: `length` bytes of the file `path` from `offset`.
pub struct Piece {
    pub path: PathBuf,
    pub offset: u64,
    pub length: u64,
}

/// Where the bytes `range` of the object whose `blob` field is `field` and whose size is
/// `size` lie. A single blob needs no file system look-up; a list needs each part's size.
pub fn pieces(
    root: &Path,
    field: &str,
    size: u64,
    range: std::ops::Range<u64>,
) -> std::io::Result<Vec<Piece>> {
    let dir = root.join("blobs");
    if !field.contains(LIST_SEPARATOR) {
        return Ok(vec![Piece {
            path: dir.join(field),
            offset: range.start,
            length: range.end.min(size) - range.start,
        }]);
    }
    let mut out = Vec::new();
    let mut start = 0;
    for name in names(field) {
        let path = dir.join(name);
        let end = start + std::fs::metadata(&path)?.len();
        if end > range.start && start < range.end {
            let offset = range.start.max(start) - start;
            let length = range.end.min(end) - start - offset;
            out.push(Piece {
                path,
                offset,
                length,
            });
        }
        start = end;
    }
    Ok(out)
}

/// A blocking reader of `pieces`, in order.
fn read_pieces(pieces: Vec<Piece>) -> std::io::Result<impl std::io::Read> {
    use std::io::{Read, Seek};
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    for p in pieces {
        let mut file = std::fs::File::open(&p.path)?;
        file.seek(std::io::SeekFrom::Start(p.offset))?;
        reader = Box::new(reader.chain(file.take(p.length)));
    }
    Ok(reader)
}

/// The `algorithms`' digests of the whole object stored as `field` (a FULL_OBJECT checksum
/// of a multipart upload). Reads without writing. Blocking: run off the async runtime.
pub fn digest(
    root: &Path,
    field: &str,
    size: u64,
    algorithms: &[String],
) -> S3Result<BTreeMap<String, String>> {
    use std::io::Read;
    let mut input = pieces(root, field, size, 0..size)
        .and_then(read_pieces)
        .map_err(io_error)?;
    let mut digests: Vec<(String, Digest)> = algorithms
        .iter()
        .filter_map(|a| Digest::new(a).map(|d| (a.clone(), d)))
        .collect();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buffer).map_err(io_error)?;
        if n == 0 {
            break;
        }
        for (_, d) in &mut digests {
            d.update(&buffer[..n]);
        }
    }
    Ok(digests
        .into_iter()
        .map(|(a, d)| (a, b64(&d.finalize())))
        .collect())
}

/// A new `blob` field with the same bytes as `field` (CopyObject): each blob is hard-linked
/// under a fresh name, so no byte is copied and deleting either object leaves the other's
/// bytes in place (a blob file goes when its last name does). Blocking.
pub fn link(root: &Path, field: &str) -> S3Result<String> {
    let dir = root.join("blobs");
    let mut linked: Vec<String> = Vec::new();
    for name in names(field) {
        let copy = uuid::Uuid::new_v4().simple().to_string();
        if let Err(e) = std::fs::hard_link(dir.join(name), dir.join(&copy)) {
            for l in &linked {
                remove(root, l);
            }
            return Err(io_error(e));
        }
        linked.push(copy);
    }
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error)?;
    Ok(list(&linked))
}

/// Copies the bytes `range` of the object stored as `field` (of `size` bytes) into a
/// temporary file, with their MD5 and the `algorithms`' digests (UploadPartCopy's part).
/// Blocking: run off the async runtime.
pub fn copy_range(
    root: &Path,
    field: &str,
    size: u64,
    range: std::ops::Range<u64>,
    algorithms: &[String],
) -> S3Result<TempBlob> {
    let (mut blob, mut out) = create_temp(root)?;
    let mut digests = Digests::new(algorithms);
    let input = pieces(root, field, size, range)
        .and_then(read_pieces)
        .map_err(io_error)?;
    append(input, &mut out, &mut digests, &mut blob)?;
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

/// Removes the blob, or every blob of the list, `field`.
pub fn remove(root: &Path, field: &str) {
    for name in names(field) {
        if let Err(e) = std::fs::remove_file(root.join("blobs").join(name)) {
            tracing::warn!(blob = name, error = %e, "cannot remove an unreferenced S3 blob");
        }
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

    /// Writes `parts` as blobs and returns their list field.
    fn stored(root: &Path, parts: &[&[u8]]) -> String {
        let names: Vec<String> = parts
            .iter()
            .map(|bytes| {
                let name = uuid::Uuid::new_v4().simple().to_string();
                std::fs::write(root.join("blobs").join(&name), bytes).unwrap();
                name
            })
            .collect();
        list(&names)
    }

    fn read(root: &Path, field: &str, size: u64, range: std::ops::Range<u64>) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        read_pieces(pieces(root, field, size, range).unwrap())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn ranges_span_the_parts_of_a_blob_list() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path()).unwrap();
        let field = stored(dir.path(), &[b"abc", b"defg", b"h"]);
        assert_eq!(names(&field).count(), 3);
        assert_eq!(read(dir.path(), &field, 8, 0..8), b"abcdefgh");
        assert_eq!(read(dir.path(), &field, 8, 2..5), b"cde");
        assert_eq!(read(dir.path(), &field, 8, 3..7), b"defg");
        assert_eq!(read(dir.path(), &field, 8, 7..8), b"h");
        assert_eq!(read(dir.path(), &field, 8, 4..4), b"");
        let single = stored(dir.path(), &[b"hello"]);
        assert_eq!(read(dir.path(), &single, 5, 1..4), b"ell");
        let sha = digest(dir.path(), &single, 5, &["SHA256".to_string()]).unwrap();
        assert_eq!(
            sha["SHA256"],
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
    }

    #[test]
    fn a_linked_copy_outlives_its_source() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path()).unwrap();
        let source = stored(dir.path(), &[b"ab", b"cd"]);
        let copy = link(dir.path(), &source).unwrap();
        assert!(names(&copy).all(|c| names(&source).all(|s| s != c)));
        remove(dir.path(), &source);
        assert_eq!(read(dir.path(), &copy, 4, 0..4), b"abcd");
        remove(dir.path(), &copy);
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
    }
}
