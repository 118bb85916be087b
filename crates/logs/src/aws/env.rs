//! Region and endpoints from the environment, as the AWS SDKs read them.

/// Where to reach each service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsEnv {
    pub region: String,
    /// `None`: AWS's own endpoint for the region.
    pub s3_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
}

impl AwsEnv {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// `AWS_REGION` > `AWS_DEFAULT_REGION` > `us-east-1`; per service
    /// `AWS_ENDPOINT_URL_<S3|STS|CLOUDWATCH_LOGS>` > `AWS_ENDPOINT_URL`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let general = get("AWS_ENDPOINT_URL");
        let service =
            |name: &str| get(&format!("AWS_ENDPOINT_URL_{name}")).or_else(|| general.clone());
        Self {
            region,
            s3_endpoint: service("S3"),
            sts_endpoint: service("STS"),
            logs_endpoint: service("CLOUDWATCH_LOGS"),
        }
    }

    /// All services at one endpoint (sparkyard's).
    pub fn single(region: &str, endpoint: &str) -> Self {
        Self {
            region: region.to_string(),
            s3_endpoint: Some(endpoint.to_string()),
            sts_endpoint: Some(endpoint.to_string()),
            logs_endpoint: Some(endpoint.to_string()),
        }
    }

    pub fn sts_url(&self) -> String {
        self.sts_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region))
    }

    pub fn logs_url(&self) -> String {
        self.logs_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://logs.{}.amazonaws.com", self.region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> AwsEnv {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AwsEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn service_specific_endpoints_win() {
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4750"),
            ("AWS_ENDPOINT_URL_S3", "http://s3.local"),
            ("AWS_DEFAULT_REGION", "us-east-2"),
        ]);
        assert_eq!(e.region, "us-east-2");
        assert_eq!(e.s3_endpoint.as_deref(), Some("http://s3.local"));
        assert_eq!(e.sts_url(), "http://127.0.0.1:4750");
    }

    #[test]
    fn real_aws_by_default() {
        let e = env(&[("AWS_REGION", "eu-west-1")]);
        assert_eq!(e.s3_endpoint, None);
        assert_eq!(e.sts_url(), "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(e.logs_url(), "https://logs.eu-west-1.amazonaws.com");
    }
}
