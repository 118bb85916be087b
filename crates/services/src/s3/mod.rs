//! S3 on sparkyard's endpoint, path-style (`http://<endpoint>/<bucket>/<key>`).
//!
//! The wire protocol — REST routing, XML, SigV4 in all its S3 variants (presigned URLs,
//! `aws-chunked` streaming bodies, trailing checksums) — is the `s3s` crate's; this module
//! owns the semantics and the storage: an SQLite index (`<data_dir>/s3/index.db`) over
//! blobs on disk (`<data_dir>/s3/blobs/`). Writes are acknowledged once the blob and the
//! index row are both durable.
//!
//! Layout: [`S3Store`] and its `s3s::S3` implementation live here, each operation handed to
//! its family's module — `buckets`, `listing`, `objects`, `multipart`, [`part_copy`]
//! (UploadPartCopy), [`uploads`] (ListMultipartUploads) — with what they share in `shared`
//! (errors, look-ups, blob bookkeeping), `checksums` (digests on the wire, bodies received
//! as blobs) and [`conditions`] (`If-*` and `x-amz-copy-source-if-*` headers). Storage is
//! [`store`] (the index) and [`blob`] (the bodies); [`list`] holds the pure listing rules
//! and [`access`] the SigV4 and policy hooks.

pub mod access;
pub mod blob;
mod buckets;
mod checksums;
pub mod conditions;
pub mod list;
mod listing;
mod multipart;
mod objects;
pub mod part_copy;
mod shared;
pub mod store;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};

use crate::db::Db;

/// The S3 service's state.
pub struct S3Store {
    db: Db,
    root: PathBuf,
}

/// Smallest part S3 accepts, except for the last one.
pub const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;
pub const MAX_KEYS: i32 = 1000;

impl S3Store {
    /// Opens the index and the blob directory under `data_dir/s3`. Blocking: it runs once at
    /// start-up, before anything is served.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join("s3");
        blob::prepare(&root)?;
        let db = Db::open(&root.join("index.db"), store::SCHEMA).map_err(std::io::Error::other)?;
        let this = Self { db, root };
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
}

/// Every operation sparkyard serves, each handed to its family's module.
#[async_trait::async_trait]
impl S3 for S3Store {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        buckets::create_bucket(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        buckets::delete_bucket(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        buckets::head_bucket(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        buckets::get_bucket_location(self, req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        buckets::list_buckets(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        listing::list_objects(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        listing::list_objects_v2(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        objects::put_object(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        objects::get_object(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        objects::head_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        objects::delete_object(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        objects::delete_objects(self, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        objects::copy_object(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        uploads::list_multipart_uploads(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        part_copy::upload_part_copy(self, req).await
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
