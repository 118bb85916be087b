//! `x-amzn-RequestId` on every response, errors included: botocore surfaces it as
//! `ResponseMetadata.RequestId`, and it ties a client-side failure to the server log.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-amzn-RequestId";

/// The id of the current request, in the request extensions for services and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// axum middleware: give the request a fresh UUID v4 id and stamp it on the response. Put it
/// outermost so that responses from the authentication layer carry it too.
pub async fn stamp(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    // Log lines emitted while serving carry the id the client sees.
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    // A service that already chose an id (e.g. one it also logged) keeps it.
    if !response.headers().contains_key(HEADER) {
        response.headers_mut().insert(
            HEADER,
            HeaderValue::from_str(&id).expect("a UUID is a valid header value"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_response_gets_a_fresh_uuid() {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(stamp));
        let mut ids = Vec::new();
        for path in ["/", "/", "/missing"] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let id = response
                .headers()
                .get(HEADER)
                .expect("x-amzn-RequestId")
                .to_str()
                .unwrap()
                .to_string();
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            ids.push(id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[tokio::test]
    async fn services_see_the_same_id_and_may_keep_their_own() {
        let app = Router::new()
            .route(
                "/",
                get(|axum::Extension(id): axum::Extension<RequestId>| async move { id.0 }),
            )
            .route("/own", get(|| async { ([(HEADER, "mine")], "x") }))
            .layer(axum::middleware::from_fn(stamp));
        let response = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response
            .headers()
            .get(HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(body, header.as_bytes());
        let response = app
            .oneshot(Request::get("/own").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers().get(HEADER).unwrap(), "mine");
    }
}
