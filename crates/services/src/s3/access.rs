//! S3's authentication and authorization hooks for `s3s`.
//!
//! `s3s` verifies S3's SigV4 variants itself (including `aws-chunked` bodies with chunk
//! signatures and trailers, which the generic middleware only passes through), asking
//! [`KeyringAuth`] for the secret. It does not know session tokens, so [`PolicyAccess`]
//! checks `x-amz-security-token` against the keyring's session and then asks the
//! [`Authorizer`](crate::authz::Authorizer) about the operation. A copy (CopyObject,
//! UploadPartCopy) also reads its source, so it needs `s3:GetObject` on the source object
//! besides `s3:PutObject` on the destination, as in S3; `s3s` names the source only once
//! the input is parsed, so that check is in the per-operation hooks.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{s3_error, S3Request, S3Result};
use sparkyard_aws::keyring::Keyring;
use sparkyard_aws::Principal;

use crate::authz::Authorizer;

pub struct KeyringAuth {
    pub keyring: Arc<Keyring>,
}

#[async_trait::async_trait]
impl S3Auth for KeyringAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keyring.lookup(access_key) {
            Some(record) => Ok(SecretKey::from(record.secret_access_key)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

pub struct PolicyAccess {
    pub keyring: Arc<Keyring>,
    pub authorizer: Authorizer,
    pub region: String,
}

/// The IAM action an S3 operation needs (pure). S3's action names differ from its
/// operation names for reads, lists and the multipart family.
pub fn iam_action(operation: &str) -> String {
    let action = match operation {
        "GetObject" | "HeadObject" => "GetObject",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "ListBucket",
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "PutObject",
        "DeleteObject" | "DeleteObjects" => "DeleteObject",
        "ListBuckets" => "ListAllMyBuckets",
        "ListParts" => "ListMultipartUploadParts",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        other => other,
    };
    format!("s3:{action}")
}

/// The resource ARN of a request path (pure). `DeleteObjects` names keys in its body, so
/// it is checked against every key of the bucket.
pub fn resource_arn(operation: &str, path: &S3Path) -> String {
    match path {
        S3Path::Root => "*".to_string(),
        S3Path::Bucket { bucket } if operation == "DeleteObjects" => {
            format!("arn:aws:s3:::{bucket}/*")
        }
        S3Path::Bucket { bucket } => format!("arn:aws:s3:::{bucket}"),
        S3Path::Object { bucket, key } => format!("arn:aws:s3:::{bucket}/{key}"),
    }
}

/// The resource ARN of a copy's source object (pure).
pub fn copy_source_arn(source: &CopySource) -> Option<String> {
    match source {
        CopySource::Bucket { bucket, key, .. } => Some(format!("arn:aws:s3:::{bucket}/{key}")),
        _ => None,
    }
}

impl PolicyAccess {
    /// Authorizes `s3:GetObject` on a copy's source for the caller that [`S3Access::check`]
    /// authenticated (it leaves the [`Principal`] in the request's extensions).
    fn authorize_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let principal = req
            .extensions
            .get::<Principal>()
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        let Some(arn) = copy_source_arn(source) else {
            return Ok(());
        };
        self.authorizer
            .authorize(principal, &iam_action("GetObject"), &arn)
            .map_err(|d| s3_error!(AccessDenied, "{}", d.message()))
    }
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    })
}

#[async_trait::async_trait]
impl S3Access for PolicyAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "Anonymous access is not allowed; sign the request."
            ));
        };
        let access_key = credentials.access_key.clone();
        let record = self.keyring.lookup(&access_key).ok_or_else(|| {
            s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )
        })?;
        let token = cx
            .headers()
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| query_param(cx.uri(), "X-Amz-Security-Token"));
        match (&record.session, token) {
            (None, None) => {}
            (Some(session), Some(token))
                if sparkyard_aws::sigv4::constant_time_eq(
                    session.token.as_bytes(),
                    token.as_bytes(),
                ) =>
            {
                if session.expiration <= chrono::Utc::now() {
                    return Err(s3_error!(ExpiredToken, "The provided token has expired."));
                }
            }
            _ => {
                return Err(s3_error!(
                    InvalidToken,
                    "The provided token is malformed or otherwise invalid."
                ))
            }
        }
        let operation = cx.s3_op().name().to_string();
        let principal = Principal {
            access_key_id: access_key,
            account_id: record.owner.account_id.clone(),
            arn: record.owner.arn.clone(),
            region: self.region.clone(),
            service: "s3".into(),
        };
        self.authorizer
            .authorize(
                &principal,
                &iam_action(&operation),
                &resource_arn(&operation, cx.s3_path()),
            )
            .map_err(|d| s3_error!(AccessDenied, "{}", d.message()))?;
        cx.extensions_mut().insert(principal);
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.authorize_copy_source(req, &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.authorize_copy_source(req, &req.input.copy_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_iam_actions() {
        assert_eq!(iam_action("HeadObject"), "s3:GetObject");
        assert_eq!(iam_action("ListObjectsV2"), "s3:ListBucket");
        assert_eq!(iam_action("UploadPart"), "s3:PutObject");
        assert_eq!(iam_action("DeleteObjects"), "s3:DeleteObject");
        assert_eq!(iam_action("ListBuckets"), "s3:ListAllMyBuckets");
        assert_eq!(iam_action("CreateBucket"), "s3:CreateBucket");
        assert_eq!(iam_action("UploadPartCopy"), "s3:PutObject");
        assert_eq!(
            iam_action("ListMultipartUploads"),
            "s3:ListBucketMultipartUploads"
        );
    }

    #[test]
    fn copy_sources_name_the_source_object() {
        let source = CopySource::Bucket {
            bucket: "src".into(),
            key: "dir/a b".into(),
            version_id: None,
        };
        assert_eq!(
            copy_source_arn(&source).as_deref(),
            Some("arn:aws:s3:::src/dir/a b")
        );
    }

    #[test]
    fn resources_from_paths() {
        assert_eq!(resource_arn("ListBuckets", &S3Path::Root), "*");
        assert_eq!(
            resource_arn("ListObjectsV2", &S3Path::Bucket { bucket: "b".into() }),
            "arn:aws:s3:::b"
        );
        assert_eq!(
            resource_arn("DeleteObjects", &S3Path::Bucket { bucket: "b".into() }),
            "arn:aws:s3:::b/*"
        );
        assert_eq!(
            resource_arn(
                "GetObject",
                &S3Path::Object {
                    bucket: "b".into(),
                    key: "k/x".into()
                }
            ),
            "arn:aws:s3:::b/k/x"
        );
    }
}
