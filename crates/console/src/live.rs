//! Live updates and the console's one script file.
//!
//! Pages stay server-rendered and complete without JavaScript. A page that changes
//! while it is open marks its moving parts `data-live` (each with an `id`); the script
//! fetches the same URL again every few seconds while the tab is visible and swaps those
//! elements for their fresh render. One code path renders a page for the first load and
//! for every update, so an update can never disagree with a reload. Polling rather than
//! a push channel: every page is already an authorized read of current state, a fetch
//! every 3 s of a page rendered in a few milliseconds costs nothing, and it survives
//! server restarts and proxies without reconnect logic (docs/console.md, "Live updates").

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `/assets/console.js`: live updates, then the charts' read-outs.
const SCRIPT: &str = concat!(
    include_str!("../assets/live.js"),
    include_str!("../assets/charts.js"),
);

pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}
