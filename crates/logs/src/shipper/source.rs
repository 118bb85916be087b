//! Container output through the Kubernetes API: `GET pods/<name>/log?follow=true` per
//! container, which works the same on the embedded cluster and on a real one.
//!
//! Separate stdout/stderr: the `stream=Stdout|Stderr` parameter (Kubernetes 1.32+, feature
//! gate `PodLogsQuerySplitStreams`, always served by sparkyard's cluster). Servers without
//! it return both streams interleaved, so the shipper asks for it only from sparkyard's
//! cluster or when configured to (`[logs] split-streams`), and ships the combined output as
//! `stdout` otherwise.

use futures::{AsyncBufReadExt, AsyncReadExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::core::Request;

use crate::layout::Stream;

/// A follow request for one container (and stream, when split).
pub fn follow_request(
    namespace: &str,
    pod: &str,
    container: &str,
    stream: Option<Stream>,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let url = <Pod as kube::Resource>::url_path(&(), Some(namespace));
    let params = LogParams {
        container: Some(container.to_string()),
        follow: true,
        ..LogParams::default()
    };
    let mut request = Request::new(url).logs(pod, &params)?;
    if let Some(stream) = stream {
        let uri = format!("{}&stream={}", request.uri(), stream_param(stream));
        *request.uri_mut() = uri.parse()?;
    }
    Ok(request)
}

fn stream_param(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "Stdout",
        Stream::Stderr => "Stderr",
    }
}

/// Why a log could not be followed.
pub enum OpenError {
    /// The pod (or its log) is gone from the API: 404.
    Gone,
    Other(anyhow::Error),
}

/// Opens the follow stream.
pub async fn open(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
) -> Result<impl futures::AsyncBufRead + Unpin, OpenError> {
    match client.request_stream(request).await {
        Ok(reader) => Ok(reader),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(OpenError::Gone),
        Err(e) => Err(OpenError::Other(e.into())),
    }
}

/// Reads what is available (up to 64 KiB); `Ok(empty)` at the end.
pub async fn read_chunk(
    reader: &mut (impl futures::AsyncBufRead + Unpin),
) -> std::io::Result<Vec<u8>> {
    let buffered = reader.fill_buf().await?;
    let n = buffered.len().min(64 * 1024);
    let mut chunk = vec![0; n];
    reader.read_exact(&mut chunk).await?;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_requests() {
        let r = follow_request(
            "monthly-batch",
            "spark-x-driver",
            "spark-kubernetes-driver",
            None,
        )
        .unwrap();
        let uri = r.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/monthly-batch/pods/spark-x-driver/log?"),
            "{uri}"
        );
        assert!(
            uri.contains("container=spark-kubernetes-driver") && uri.contains("follow=true"),
            "{uri}"
        );
        assert!(!uri.contains("stream="));
        let r = follow_request("ns", "p", "c", Some(Stream::Stderr)).unwrap();
        assert!(r.uri().to_string().ends_with("&stream=Stderr"));
    }
}
