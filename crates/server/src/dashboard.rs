//! The dashboard at `GET /`: a page, its script and style, and the vendored charting
//! library (Chart.js, see scripts/vendor_chartjs.sh), all embedded in the binary so
//! the server needs no front-end build, no files beside it and no CDN.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
const CHART_JS: &str = include_str!("../assets/vendor/chart.umd.min.js");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| asset(INDEX_HTML, "text/html; charset=utf-8", false)),
        )
        .route(
            "/assets/dashboard.js",
            get(|| asset(DASHBOARD_JS, "text/javascript; charset=utf-8", false)),
        )
        .route(
            "/assets/dashboard.css",
            get(|| asset(DASHBOARD_CSS, "text/css; charset=utf-8", false)),
        )
        .route(
            "/assets/chart.umd.min.js",
            get(|| asset(CHART_JS, "text/javascript; charset=utf-8", true)),
        )
}

/// The paths of the static shell (no data behind them).
pub(crate) fn is_static(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The vendored library is pinned, so browsers may keep it; our own files change
/// with every release and are revalidated.
async fn asset(body: &'static str, content_type: &'static str, immutable: bool) -> Response {
    let cache = if immutable {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}
