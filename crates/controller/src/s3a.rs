//! EMRFS-like defaults for `s3://` data: every job run's `spark-defaults` send `s3://`,
//! `s3a://` and `s3n://` to Hadoop's S3A connector (installed with Spark by
//! `scripts/setup.sh`, docs/data.md), pointed at sparkyard's S3 when the run's cluster is
//! the embedded one, with the credentials of the pod's IRSA web identity — the run's
//! execution role, never the administrator's key.
//!
//! Each is a default: a user's `spark-defaults` (or `emrfs-site`/`core-site` mapped by
//! Spark) for the same key wins, and `--conf` in `sparkSubmitParameters` wins over both.

/// Where S3 is, as the run's pods reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `http://127.0.0.1:4750` for sparkyard's S3; `None` for AWS's own (S3A's default).
    pub endpoint: Option<String>,
    /// The region signatures are scoped to.
    pub region: String,
}

/// S3A's file system class, and the AbstractFileSystem one for `FileContext` users.
const S3A: &str = "org.apache.hadoop.fs.s3a.S3AFileSystem";
const S3A_ABSTRACT: &str = "org.apache.hadoop.fs.s3a.S3A";
/// S3A's committer factory: `fs.s3a.committer.name` picks `file` (the default: Spark's classic
/// rename committer), `directory`, `partitioned` or `magic`.
const S3A_COMMITTERS: &str = "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory";
/// The AWS SDK v2 provider that reads `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`
/// (set by the pod-identity webhook for the run's service account), calls STS
/// `AssumeRoleWithWebIdentity` at `AWS_ENDPOINT_URL(_STS)` and refreshes before expiry.
const WEB_IDENTITY: &str =
    "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider";

/// The AWS SDK v2 provider that reads a named profile (`AWS_PROFILE`,
/// `AWS_SHARED_CREDENTIALS_FILE`): how sparkyard's History Server reads event logs in S3 with
/// sparkyard's own CLI profile.
pub const PROFILE: &str = "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider";

/// The `spark-defaults` entries (`spark.hadoop.*`, which Spark copies into the Hadoop
/// configuration of the driver and every executor).
pub fn confs(settings: &S3Settings) -> Vec<(String, String)> {
    confs_with(settings, WEB_IDENTITY)
}

/// [`confs`] less what the run's configuration already sets: the same key in its
/// `spark-defaults`, or the Hadoop key in its `core-site` or `emrfs-site` (which a
/// `spark.hadoop.*` default would otherwise override, Spark applying those last).
pub fn run_defaults(
    settings: &S3Settings,
    resolved: &crate::classifications::ResolvedConfiguration,
) -> Vec<(String, String)> {
    confs(settings)
        .into_iter()
        .filter(|(key, _)| {
            let hadoop_key = key.strip_prefix("spark.hadoop.").unwrap_or(key);
            let in_site_file = ["core-site.xml", "emrfs-site.xml"].iter().any(|file| {
                resolved
                    .site_files
                    .get(file)
                    .is_some_and(|props| props.contains_key(hadoop_key))
            });
            !in_site_file && !resolved.spark_defaults.contains_key(key)
        })
        .collect()
}

/// [`confs`] with another credentials provider class, for JVMs that are not the run's pods.
pub fn confs_with(settings: &S3Settings, credentials_provider: &str) -> Vec<(String, String)> {
    let mut confs: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| {
        confs.push((format!("spark.hadoop.{key}"), value.to_string()));
    };
    for scheme in ["s3", "s3a", "s3n"] {
        set(&format!("fs.{scheme}.impl"), S3A);
        set(
            &format!("fs.AbstractFileSystem.{scheme}.impl"),
            S3A_ABSTRACT,
        );
        // Hadoop maps only `s3a` to S3A's committers; without this, `s3://` output would
        // ignore `fs.s3a.committer.name` (the magic committer) and always rename.
        set(
            &format!("mapreduce.outputcommitter.factory.scheme.{scheme}"),
            S3A_COMMITTERS,
        );
    }
    set("fs.s3a.aws.credentials.provider", credentials_provider);
    set("fs.s3a.endpoint.region", &settings.region);
    if let Some(endpoint) = &settings.endpoint {
        set("fs.s3a.endpoint", endpoint);
        // sparkyard's S3 serves buckets as paths, not virtual hosts under its address.
        set("fs.s3a.path.style.access", "true");
        set(
            "fs.s3a.connection.ssl.enabled",
            if endpoint.starts_with("https://") {
                "true"
            } else {
                "false"
            },
        );
    }
    confs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_own_settings_win_over_the_defaults() {
        let resolved = crate::classifications::resolve(
            &serde_json::from_value::<Vec<crate::classifications::Configuration>>(serde_json::json!([
                {"classification": "spark-defaults",
                 "properties": {"spark.hadoop.fs.s3a.path.style.access": "false"}},
                {"classification": "core-site", "properties": {"fs.s3a.endpoint": "http://mine"}},
                {"classification": "emrfs-site",
                 "properties": {"fs.s3a.aws.credentials.provider": "com.example.Mine"}}
            ]))
            .unwrap(),
        )
        .unwrap();
        let settings = S3Settings {
            endpoint: Some("http://127.0.0.1:4750".into()),
            region: "us-east-2".into(),
        };
        let defaults = run_defaults(&settings, &resolved);
        for mine in [
            "spark.hadoop.fs.s3a.path.style.access",
            "spark.hadoop.fs.s3a.endpoint",
            "spark.hadoop.fs.s3a.aws.credentials.provider",
        ] {
            assert_eq!(get(&defaults, mine), None, "{mine}");
        }
        assert_eq!(get(&defaults, "spark.hadoop.fs.s3.impl"), Some(S3A));
    }

    fn get<'a>(confs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        confs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_s3_scheme_goes_to_s3a_with_the_pods_web_identity() {
        let confs = confs(&S3Settings {
            endpoint: Some("http://127.0.0.1:4750".into()),
            region: "us-east-2".into(),
        });
        for scheme in ["s3", "s3a", "s3n"] {
            assert_eq!(
                get(&confs, &format!("spark.hadoop.fs.{scheme}.impl")),
                Some(S3A)
            );
        }
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.aws.credentials.provider"),
            Some(WEB_IDENTITY)
        );
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.endpoint"),
            Some("http://127.0.0.1:4750")
        );
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.path.style.access"),
            Some("true")
        );
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.connection.ssl.enabled"),
            Some("false")
        );
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.endpoint.region"),
            Some("us-east-2")
        );
    }

    #[test]
    fn against_aws_only_the_schemes_credentials_and_region_are_set() {
        let confs = confs(&S3Settings {
            endpoint: None,
            region: "eu-west-1".into(),
        });
        assert_eq!(get(&confs, "spark.hadoop.fs.s3a.endpoint"), None);
        assert_eq!(get(&confs, "spark.hadoop.fs.s3a.path.style.access"), None);
        assert_eq!(get(&confs, "spark.hadoop.fs.s3.impl"), Some(S3A));
        assert_eq!(
            get(&confs, "spark.hadoop.fs.s3a.endpoint.region"),
            Some("eu-west-1")
        );
    }
}
