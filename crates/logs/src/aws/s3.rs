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

/// Makes `s3a://bucket/prefix` a directory as S3A sees one: the bucket (created when
/// missing) and the zero-byte `prefix/` marker `hadoop fs -mkdir` writes. Spark's event-log
/// writer and History Server both refuse a directory that does not exist, and in S3 a
/// prefix exists only once something is under it.
pub async fn ensure_directory(
    env: &AwsEnv,
    http: &reqwest::Client,
    credentials: &CachedCredentials,
    uri: &str,
) -> anyhow::Result<()> {
    let rest = ["s3://", "s3a://", "s3n://"]
        .iter()
        .find_map(|scheme| uri.strip_prefix(scheme))
        .ok_or_else(|| anyhow::anyhow!("{uri} is not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let base = env
        .s3_endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", env.region));
    let base = base.trim_end_matches('/');
    let call = |method: &'static str, url: String, body: Vec<u8>| async move {
        let request =
            super::signed_request(credentials, "s3", &env.region, method, &url, &[], body).await?;
        let response = http.execute(request).await?;
        anyhow::Ok((response.status(), response.text().await.unwrap_or_default()))
    };
    let (status, _) = call("HEAD", format!("{base}/{bucket}"), Vec::new()).await?;
    if status == reqwest::StatusCode::NOT_FOUND {
        // Outside us-east-1, S3 wants the region in the request body.
        let body = if env.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                env.region
            )
            .into_bytes()
        };
        let (status, text) = call("PUT", format!("{base}/{bucket}"), body).await?;
        if !status.is_success() && !text.contains("BucketAlreadyOwnedByYou") {
            anyhow::bail!("CreateBucket {bucket}: {status} {text}");
        }
        tracing::info!(%bucket, "created the bucket of the Spark event logs");
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        let (status, text) = call("PUT", format!("{base}/{bucket}/{prefix}/"), Vec::new()).await?;
        if !status.is_success() {
            anyhow::bail!("PutObject {bucket}/{prefix}/: {status} {text}");
        }
    }
    Ok(())
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
