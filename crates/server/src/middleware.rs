//! Middleware every response passes: security headers, and the JSON 431 for a
//! request head over its connection's bound.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Request};
use axum::response::{IntoResponse, Response};

use crate::connection::HeadLimit;
use crate::ApiError;

/// Scripts and styles only from this server, no inline code, no framing, no plugins:
/// post texts are untrusted, and even a slip into markup could not run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Security headers on every response, the API's JSON included.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Answers a request whose head is over its connection's bound with a JSON 431, so
/// that, short of the parser's own hard cap, a client learns what was wrong.
pub(crate) async fn bound_request_head(
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    match request.extensions().get::<HeadLimit>() {
        Some(&HeadLimit(limit)) if head_bytes(&request) > limit => {
            ApiError::HeadTooLarge { limit }.into_response()
        }
        _ => next.run(request).await,
    }
}

/// The size of a request's head as an HTTP/1.1 client sends it.
fn head_bytes(request: &Request<Body>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": \r\n".len() + value.len())
        .sum();
    line + headers + "\r\n".len()
}
