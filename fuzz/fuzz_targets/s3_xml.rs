//! S3 XML request bodies: decoded as the `s3s` protocol layer decodes them
//! (`xml::Deserializer`, then end of input), then handed to sparkyard's S3 implementation
//! (`S3Store`, through the `s3s::S3` trait, as the service calls it after SigV4 and
//! authorization) against a real index and blob directory.
//!
//! Input (bytes): `<selector byte> <XML body>`. The selector picks the operation:
//! - 0: CompleteMultipartUpload (`<CompleteMultipartUpload><Part>…`) on a live upload of
//!   bucket `fuzz`, key `obj`, with parts 1 (`part-one`) and 2 (`part-two`); a completed
//!   upload is replaced by a fresh one with the same parts;
//! - 1: DeleteObjects (`<Delete><Object><Key>…`) in bucket `fuzz`;
//! - 2: CreateBucket (`<CreateBucketConfiguration>…`, body optional) of bucket
//!   `fuzz-created`, deleted again when created;
//! - others: bodies of operations sparkyard leaves to the `s3s` default (Tagging, ACLs,
//!   lifecycle, CORS, versioning), decoded only, as `s3s` does before answering
//!   NotImplemented.
#![no_main]

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http::{Extensions, HeaderMap, Method, Uri};
use libfuzzer_sys::fuzz_target;
use s3s::dto::*;
use s3s::xml;
use s3s::{S3Request, S3};
use sparkyard_services::s3::S3Store;

const BUCKET: &str = "fuzz";
const KEY: &str = "obj";
const PARTS: [&[u8]; 2] = [b"part-one", b"part-two"];

struct World {
    rt: tokio::runtime::Runtime,
    store: S3Store,
    upload_id: Mutex<String>,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn request<T>(input: T) -> S3Request<T> {
    S3Request {
        input,
        method: Method::POST,
        uri: Uri::from_static("/"),
        headers: HeaderMap::new(),
        extensions: Extensions::new(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    }
}

/// Creates an upload of `fuzz/obj` with both parts uploaded; returns its id.
async fn fresh_upload(store: &S3Store) -> String {
    let input = CreateMultipartUploadInput::builder()
        .bucket(BUCKET.into())
        .key(KEY.into())
        .build()
        .unwrap();
    let upload = store
        .create_multipart_upload(request(input))
        .await
        .expect("create upload")
        .output
        .upload_id
        .expect("upload id");
    for (i, body) in PARTS.iter().enumerate() {
        let input = UploadPartInput::builder()
            .bucket(BUCKET.into())
            .key(KEY.into())
            .upload_id(upload.clone())
            .part_number(i as i32 + 1)
            .body(Some(StreamingBlob::from(s3s::Body::from(
                Bytes::from_static(body),
            ))))
            .build()
            .unwrap();
        store
            .upload_part(request(input))
            .await
            .expect("upload part");
    }
    upload
}

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // TMPDIR points at a tmpfs in scripts/fuzz.sh: the index fsyncs every commit.
        let dir = std::env::temp_dir().join(format!("sparkyard-fuzz-s3-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = S3Store::open(&dir).expect("open S3 store");
        let upload_id = rt.block_on(async {
            let input = CreateBucketInput::builder()
                .bucket(BUCKET.into())
                .build()
                .unwrap();
            store
                .create_bucket(request(input))
                .await
                .expect("create bucket");
            fresh_upload(&store).await
        });
        World {
            rt,
            store,
            upload_id: Mutex::new(upload_id),
        }
    })
}

/// As `s3s::http::de::deserialize_xml`: the document, then nothing but the end.
/// Bad input is the client's fault: S3 answers it with a 4xx code, never a 5xx.
fn assert_client_error<T>(result: &s3s::S3Result<T>) {
    if let Err(e) = result {
        let status = e.status_code().unwrap_or_default();
        assert!(
            !status.is_server_error(),
            "{:?} answered {status}: {:?}",
            e.code(),
            e.message()
        );
    }
}

fn decode<T: for<'xml> xml::Deserialize<'xml>>(body: &[u8]) -> Option<T> {
    let mut d = xml::Deserializer::new(body);
    let value = T::deserialize(&mut d).ok()?;
    d.expect_eof().ok()?;
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let w = world();
    match selector {
        0 => {
            let Some(parts) = decode::<CompletedMultipartUpload>(body) else {
                return;
            };
            let upload_id = w.upload_id.lock().unwrap().clone();
            let input = CompleteMultipartUploadInput::builder()
                .bucket(BUCKET.into())
                .key(KEY.into())
                .upload_id(upload_id)
                .multipart_upload(Some(parts))
                .build()
                .unwrap();
            let done =
                w.rt.block_on(w.store.complete_multipart_upload(request(input)));
            assert_client_error(&done);
            if debug() {
                eprintln!(
                    "CompleteMultipartUpload -> {:?}",
                    done.as_ref().map(|r| &r.output)
                );
            }
            if done.is_ok() {
                let id = w.rt.block_on(fresh_upload(&w.store));
                *w.upload_id.lock().unwrap() = id;
            }
        }
        1 => {
            let Some(delete) = decode::<Delete>(body) else {
                return;
            };
            let input = DeleteObjectsInput::builder()
                .bucket(BUCKET.into())
                .delete(delete)
                .build()
                .unwrap();
            let done = w.rt.block_on(w.store.delete_objects(request(input)));
            assert_client_error(&done);
            if debug() {
                eprintln!("DeleteObjects -> {:?}", done.map(|r| r.output));
            }
        }
        2 => {
            // CreateBucket's body is optional: empty means none.
            let config = if body.is_empty() {
                None
            } else {
                let Some(c) = decode::<CreateBucketConfiguration>(body) else {
                    return;
                };
                Some(c)
            };
            let input = CreateBucketInput::builder()
                .bucket("fuzz-created".into())
                .create_bucket_configuration(config)
                .build()
                .unwrap();
            let created = w.rt.block_on(w.store.create_bucket(request(input)));
            assert_client_error(&created);
            if debug() {
                eprintln!("CreateBucket -> {:?}", created.as_ref().map(|r| &r.output));
            }
            if created.is_ok() {
                let input = GetBucketLocationInput::builder()
                    .bucket("fuzz-created".into())
                    .build()
                    .unwrap();
                let _ = w.rt.block_on(w.store.get_bucket_location(request(input)));
                let input = DeleteBucketInput::builder()
                    .bucket("fuzz-created".into())
                    .build()
                    .unwrap();
                w.rt.block_on(w.store.delete_bucket(request(input)))
                    .expect("delete the empty bucket just created");
            }
        }
        _ => {
            let _ = decode::<Tagging>(body);
            let _ = decode::<AccessControlPolicy>(body);
            let _ = decode::<BucketLifecycleConfiguration>(body);
            let _ = decode::<CORSConfiguration>(body);
            let _ = decode::<VersioningConfiguration>(body);
        }
    }
});

/// `FUZZ_DEBUG=1`: print each operation's outcome (for writing seeds).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}
