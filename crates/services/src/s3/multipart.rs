//! Multipart uploads: CreateMultipartUpload, UploadPart, ListParts, AbortMultipartUpload,
//! and CompleteMultipartUpload (UploadPartCopy is [`part_copy`](super::part_copy),
//! ListMultipartUploads [`uploads`](super::uploads)). Each part is its own blob under an
//! upload row; completing makes the chosen parts' blobs the object's (a blob list, no bytes
//! copied), computes
//! S3's multipart ETag and the upload's checksum (COMPOSITE over the parts' checksums, or
//! FULL_OBJECT over the whole), and swaps the object row in for the upload in one index
//! transaction, which also checks the conditional-write headers (`If-None-Match: *`,
//! `If-Match`).

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksums::{declared_checksums, requested_algorithms, set_checksums};
use super::conditions::WriteConditions;
use super::shared::{db_error, no_such_upload, now_ms, refusal, timestamp};
use super::{blob, store, S3Store, MIN_PART_SIZE};

pub(super) async fn create_multipart_upload(
    s3: &S3Store,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    s3.require_bucket(&input.bucket).await?;
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
    store::create_upload(&s3.db, &upload)
        .await
        .map_err(db_error)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(upload.upload_id),
        checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
        checksum_type: checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
}

pub(super) async fn upload_part(
    s3: &S3Store,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let headers = req.headers.clone();
    let trailers = req.trailing_headers.clone();
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
    let received = s3
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
    s3.commit_blob(
        &received.blob,
        store::put_part(&s3.db, &upload.upload_id, &part).await,
        |()| no_such_upload(),
    )?;
    let mut out = UploadPartOutput {
        e_tag: Some(ETag::Strong(received.md5)),
        ..Default::default()
    };
    set_checksums!(out, &received.checksums);
    Ok(S3Response::new(out))
}

pub(super) async fn list_parts(
    s3: &S3Store,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    let upload = store::get_upload(&s3.db, &input.upload_id)
        .await
        .map_err(db_error)?
        .ok_or_else(no_such_upload)?;
    let after = input.part_number_marker.unwrap_or(0) as i64;
    let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let all: Vec<store::Part> = store::list_parts(&s3.db, &upload.upload_id)
        .await
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

pub(super) async fn abort_multipart_upload(
    s3: &S3Store,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    match store::delete_upload(&s3.db, &input.upload_id)
        .await
        .map_err(db_error)?
    {
        Some(blobs) => {
            s3.remove_blobs(blobs);
            Ok(S3Response::new(AbortMultipartUploadOutput::default()))
        }
        None => Err(no_such_upload()),
    }
}

pub(super) async fn complete_multipart_upload(
    s3: &S3Store,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let upload = s3
        .require_upload(&input.upload_id, &input.bucket, &input.key)
        .await?;
    let conditions = WriteConditions {
        if_match: input.if_match.clone(),
        if_none_match: input.if_none_match.clone(),
    };
    conditions.validate()?;
    let requested = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default();
    if requested.is_empty() {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"));
    }
    let stored: BTreeMap<i64, store::Part> = store::list_parts(&s3.db, &upload.upload_id)
        .await
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
    // The list's order is checked before any part is looked up, so a list out of order
    // is InvalidPartOrder whichever of its parts exist.
    let numbers: Vec<i64> = requested
        .iter()
        .map(|p| p.part_number.unwrap_or(0) as i64)
        .collect();
    if numbers[0] < 1 || numbers.windows(2).any(|w| w[1] <= w[0]) {
        return Err(s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        ));
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (i, (part, number)) in requested.iter().zip(numbers).enumerate() {
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
    let part_blobs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
    let blob_name = blob::list(&part_blobs);
    let size: i64 = chosen.iter().map(|p| p.size).sum();
    let mut checksums = BTreeMap::new();
    if let Some(algorithm) = &upload.checksum_algorithm {
        let value = if full_object {
            let field = blob_name.clone();
            let whole = s3
                .blocking(move |root| blob::digest(root, &field, size as u64, &algorithms))
                .await?;
            whole.get(algorithm).cloned()
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
    // The object takes over the chosen parts' blobs; a refusal leaves them to the upload.
    match store::complete_upload(&s3.db, &upload, &object, &conditions)
        .await
        .map_err(db_error)?
    {
        Ok(garbage) => s3.remove_blobs(garbage),
        Err(reason) => return Err(refusal(reason, no_such_upload)),
    }
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
