//! `x-amzn-RequestId` on every response. (Skeleton.)

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn stamp(request: Request, next: Next) -> Response {
    next.run(request).await
}
