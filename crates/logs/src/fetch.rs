//! `sparkyard fetch s3://bucket/key=/local/path …`: what the job runner's and the Spark
//! pods' init containers run to bring a run's `s3://` inputs (entry point, py-files, pod
//! templates) into the pod, with the pod's own role (IRSA) and endpoint from the
//! environment — the same code against sparkyard's S3 and real S3.
//!
//! Lives in `sparkyard-logs` with the shipper because both are the AWS client side of
//! sparkyard (credentials, S3); the binary only parses the arguments.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use object_store::ObjectStoreExt;

use crate::aws::{self, credentials, env::AwsEnv, s3};

/// One `uri=path` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub bucket: String,
    pub key: String,
    pub path: PathBuf,
}

/// Parses `s3://bucket/key=/abs/path`. The local path is absolute, so the split is at the
/// first `=/` (keys may contain `=`).
pub fn parse_transfer(arg: &str) -> anyhow::Result<Transfer> {
    let split = arg
        .find("=/")
        .ok_or_else(|| anyhow!("expected s3://bucket/key=/absolute/path, got {arg:?}"))?;
    let (uri, path) = (&arg[..split], &arg[split + 1..]);
    let (bucket, key) =
        s3::parse_uri(uri).ok_or_else(|| anyhow!("not an s3://bucket/key URI: {uri:?}"))?;
    Ok(Transfer {
        bucket: bucket.into(),
        key: key.into(),
        path: path.into(),
    })
}

/// Downloads every transfer; fails on the first error, naming it.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if args.is_empty() {
        bail!("nothing to fetch: give s3://bucket/key=/local/path arguments");
    }
    let transfers = args
        .iter()
        .map(|a| parse_transfer(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    aws::install_crypto_provider();
    let env = AwsEnv::from_env();
    let http = reqwest::Client::new();
    let creds = credentials::from_env(&env, http)?;
    for t in &transfers {
        let store = s3::bucket(&env, &t.bucket, creds.clone())?;
        download(&store, t).await.with_context(|| {
            format!(
                "cannot fetch s3://{}/{} to {}",
                t.bucket,
                t.key,
                t.path.display()
            )
        })?;
        eprintln!(
            "fetched s3://{}/{} to {}",
            t.bucket,
            t.key,
            t.path.display()
        );
    }
    Ok(())
}

async fn download(store: &impl ObjectStoreExt, t: &Transfer) -> anyhow::Result<()> {
    let bytes = store
        .get(&object_store::path::Path::from(t.key.as_str()))
        .await?
        .bytes()
        .await?;
    write_atomically(&t.path, &bytes).await
}

/// Writes through a temporary file and a rename, so a half-written input is never seen.
async fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("sparkyard-partial");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uri_path_pairs() {
        let t = parse_transfer("s3://jobs/a=b/app.py=/var/sparkyard/remote/0/app.py").unwrap();
        assert_eq!((t.bucket.as_str(), t.key.as_str()), ("jobs", "a=b/app.py"));
        assert_eq!(t.path, PathBuf::from("/var/sparkyard/remote/0/app.py"));
        assert!(parse_transfer("s3://jobs/app.py").is_err());
        assert!(parse_transfer("s3://jobs/app.py=relative").is_err());
        assert!(parse_transfer("https://x/y=/p").is_err());
    }
}
