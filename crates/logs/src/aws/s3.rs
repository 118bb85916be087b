//! S3 through `object_store`: one store per bucket, path-style against a custom endpoint,
//! credentials from [`CachedCredentials`].

use std::sync::Arc;

use async_trait::async_trait;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::CredentialProvider;

use super::credentials::CachedCredentials;
use super::env::AwsEnv;

/// `s3://bucket/key` → `(bucket, key)`.
pub fn parse_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri
        .strip_prefix("s3://")
        .or_else(|| uri.strip_prefix("s3a://"))?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

#[derive(Debug)]
struct Provider(Arc<CachedCredentials>);

#[async_trait]
impl CredentialProvider for Provider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let c = self
            .0
            .get()
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: e.into(),
            })?;
        Ok(Arc::new(AwsCredential {
            key_id: c.access_key_id,
            secret_key: c.secret_access_key,
            token: c.session_token,
        }))
    }
}

/// A store for one bucket.
pub fn bucket(
    env: &AwsEnv,
    bucket: &str,
    credentials: Arc<CachedCredentials>,
) -> object_store::Result<AmazonS3> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&env.region)
        .with_credentials(Arc::new(Provider(credentials)));
    if let Some(endpoint) = &env.s3_endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(parse_uri("s3://b/dir/app.py"), Some(("b", "dir/app.py")));
        assert_eq!(parse_uri("s3a://b/x"), Some(("b", "x")));
        assert_eq!(parse_uri("s3://b/"), None);
        assert_eq!(parse_uri("s3://b"), None);
        assert_eq!(parse_uri("https://b/x"), None);
    }
}
