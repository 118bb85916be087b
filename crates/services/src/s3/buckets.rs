//! The bucket operations: CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation and
//! ListBuckets. A bucket is an index row with its region; deleting one takes its abandoned
//! multipart uploads (and their part blobs) with it, and is refused while objects remain.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::shared::{db_error, no_such_bucket, now_ms, timestamp};
use super::{store, S3Store};

pub(super) async fn create_bucket(
    s3: &S3Store,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let input = req.input;
    let region = input
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|l| l.as_str().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    if !store::create_bucket(&s3.db, &input.bucket, &region, now_ms())
        .await
        .map_err(db_error)?
    {
        return Err(s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ));
    }
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", input.bucket)),
    }))
}

pub(super) async fn delete_bucket(
    s3: &S3Store,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let bucket = req.input.bucket;
    let (outcome, blobs) = store::delete_bucket(&s3.db, &bucket)
        .await
        .map_err(db_error)?;
    match outcome {
        store::DeleteBucket::Deleted => {
            s3.remove_blobs(blobs);
            Ok(S3Response::new(DeleteBucketOutput {}))
        }
        store::DeleteBucket::NotFound => Err(no_such_bucket(&bucket)),
        store::DeleteBucket::NotEmpty => Err(s3_error!(
            BucketNotEmpty,
            "The bucket you tried to delete is not empty"
        )),
    }
}

pub(super) async fn head_bucket(
    s3: &S3Store,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let bucket = s3.require_bucket(&req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(bucket.region),
        ..Default::default()
    }))
}

pub(super) async fn get_bucket_location(
    s3: &S3Store,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let bucket = s3.require_bucket(&req.input.bucket).await?;
    // us-east-1 is reported as an empty constraint, as S3 does.
    let location =
        (bucket.region != "us-east-1").then(|| BucketLocationConstraint::from(bucket.region));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: location,
    }))
}

pub(super) async fn list_buckets(
    s3: &S3Store,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = store::list_buckets(&s3.db).await.map_err(db_error)?;
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
