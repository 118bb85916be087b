//! S3 through the real clients: the AWS CLI's multipart upload of a 100 MiB file and its
//! download (checksums verified on both sides), `sync`, and boto3 for listing, ranges,
//! checksums and errors (`python/services_s3.py`); UploadPartCopy, ListMultipartUploads and
//! conditional requests (`python/s3_conditional.py`).

mod support;

use std::io::Write;

use support::Server;

fn sha256_of(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn multipart_upload_of_100_mib_round_trips() {
    let s = Server::start();
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.bin");
    {
        // Pseudo-random, so a misplaced part cannot go unnoticed.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&chunk).unwrap();
        }
    }
    s.aws_ok(&["s3", "mb", "s3://big-bucket"]);
    // Above 8 MiB the CLI uploads in parts (CreateMultipartUpload, UploadPart ×13, Complete).
    s.aws_ok(&[
        "s3",
        "cp",
        big.to_str().unwrap(),
        "s3://big-bucket/data/big.bin",
    ]);
    let head = s.aws_json(&[
        "s3api",
        "head-object",
        "--bucket",
        "big-bucket",
        "--key",
        "data/big.bin",
    ]);
    assert_eq!(head["ContentLength"], 100 * 1024 * 1024);
    let etag = head["ETag"].as_str().unwrap();
    assert!(
        etag.trim_matches('"').ends_with("-13"),
        "multipart ETag: {etag}"
    );
    let back = work.path().join("back.bin");
    s.aws_ok(&[
        "s3",
        "cp",
        "s3://big-bucket/data/big.bin",
        back.to_str().unwrap(),
    ]);
    assert_eq!(sha256_of(&big), sha256_of(&back));

    // sync: uploads only what changed.
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "a").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "b").unwrap();
    let out = s.aws_ok(&["s3", "sync", tree.to_str().unwrap(), "s3://big-bucket/tree"]);
    assert_eq!(out.matches("upload:").count(), 2, "{out}");
    let out = s.aws_ok(&["s3", "sync", tree.to_str().unwrap(), "s3://big-bucket/tree"]);
    assert_eq!(out.matches("upload:").count(), 0, "{out}");
    let listing = s.aws_ok(&["s3", "ls", "s3://big-bucket/", "--recursive"]);
    assert!(
        listing.contains("tree/sub/b.txt") && listing.contains("data/big.bin"),
        "{listing}"
    );

    s.aws_ok(&["s3", "rb", "s3://big-bucket", "--force"]);
    assert_eq!(s.aws_ok(&["s3", "ls"]).trim(), "");
    // Nothing is left on disk once the objects are gone.
    let blobs = std::fs::read_dir(s.data_dir.path().join("s3/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

#[test]
fn boto3_listing_ranges_checksums_and_errors() {
    let s = Server::start();
    assert_eq!(s.python("services_s3.py", &[]).trim(), "ok");
}

/// What Hadoop's S3A connector needs beyond plain reads and writes: UploadPartCopy,
/// ListMultipartUploads, conditional reads, copies and writes, the self-copy refusal and
/// the copy source's IAM check (`python/s3_conditional.py`).
#[test]
fn boto3_part_copy_upload_listing_and_conditions() {
    let s = Server::start();
    assert_eq!(s.python("s3_conditional.py", &[]).trim(), "ok");
}
