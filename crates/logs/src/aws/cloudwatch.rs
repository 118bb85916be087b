//! CloudWatch Logs (JSON 1.1, `X-Amz-Target: Logs_20140328.<Op>`), signed with SigV4:
//! only what the shipper needs.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};

use super::credentials::CachedCredentials;
use super::env::AwsEnv;
use crate::batch::Event;

/// An error CloudWatch answered with (`__type` without its namespace, and the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

pub struct Logs {
    http: reqwest::Client,
    url: String,
    region: String,
    credentials: Arc<CachedCredentials>,
}

impl Logs {
    pub fn new(env: &AwsEnv, http: reqwest::Client, credentials: Arc<CachedCredentials>) -> Self {
        Self {
            http,
            url: env.logs_url(),
            region: env.region.clone(),
            credentials,
        }
    }

    async fn call(
        &self,
        operation: &str,
        input: &Value,
    ) -> anyhow::Result<Result<Value, ApiError>> {
        let body = serde_json::to_vec(input)?;
        let target = format!("Logs_20140328.{operation}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let request = super::signed_request(
            &self.credentials,
            "logs",
            &self.region,
            "POST",
            &self.url,
            &headers,
            body,
        )
        .await?;
        let response = self
            .http
            .execute(request)
            .await
            .with_context(|| format!("cannot reach CloudWatch Logs at {}", self.url))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Ok(value));
        }
        let code = value["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
            .to_string();
        let message = value["message"]
            .as_str()
            .or(value["Message"].as_str())
            .unwrap_or(&text)
            .to_string();
        if code.is_empty() {
            return Err(anyhow!(
                "CloudWatch Logs {operation} failed ({status}): {message}"
            ));
        }
        Ok(Err(ApiError { code, message }))
    }

    /// Creates the group; an existing group is fine.
    pub async fn ensure_group(&self, group: &str) -> anyhow::Result<()> {
        match self
            .call("CreateLogGroup", &json!({"logGroupName": group}))
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
            Err(e) => Err(anyhow!("CreateLogGroup {group}: {e}")),
        }
    }

    /// Creates the stream (and its group when missing and permitted); an existing stream
    /// is fine.
    pub async fn ensure_stream(&self, group: &str, stream: &str) -> anyhow::Result<()> {
        let input = json!({"logGroupName": group, "logStreamName": stream});
        match self.call("CreateLogStream", &input).await? {
            Ok(_) => Ok(()),
            Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
            Err(e) if e.code == "ResourceNotFoundException" => {
                self.ensure_group(group).await?;
                match self.call("CreateLogStream", &input).await? {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
                    Err(e) => Err(anyhow!("CreateLogStream {group} {stream}: {e}")),
                }
            }
            Err(e) => Err(anyhow!("CreateLogStream {group} {stream}: {e}")),
        }
    }

    /// One `PutLogEvents` call; the events must already be a valid batch
    /// ([`crate::batch::batches`]). Returns the stream's next sequence token when
    /// CloudWatch gives one.
    pub async fn put_events(
        &self,
        group: &str,
        stream: &str,
        events: &[Event],
    ) -> anyhow::Result<Option<String>> {
        let events: Vec<Value> = events
            .iter()
            .map(|e| json!({"timestamp": e.timestamp, "message": e.message}))
            .collect();
        let input = json!({"logGroupName": group, "logStreamName": stream, "logEvents": events});
        match self.call("PutLogEvents", &input).await? {
            Ok(reply) => Ok(reply["nextSequenceToken"].as_str().map(str::to_string)),
            Err(e) => Err(anyhow!("PutLogEvents {group} {stream}: {e}")),
        }
    }

    /// The stream's `uploadSequenceToken` (`DescribeLogStreams`, which EMR on EKS's job
    /// execution role policy allows), if CloudWatch gives one.
    pub async fn upload_sequence_token(
        &self,
        group: &str,
        stream: &str,
    ) -> anyhow::Result<Option<String>> {
        let input = json!({"logGroupName": group, "logStreamNamePrefix": stream});
        let reply = match self.call("DescribeLogStreams", &input).await? {
            Ok(reply) => reply,
            Err(e) => return Err(anyhow!("DescribeLogStreams {group} {stream}: {e}")),
        };
        Ok(reply["logStreams"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["logStreamName"] == stream)
            .and_then(|s| s["uploadSequenceToken"].as_str())
            .map(str::to_string))
    }
}
