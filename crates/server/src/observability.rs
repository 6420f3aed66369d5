//! Prometheus metrics and per-request tracing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), &sizes))
                .and_then(|b| b.install_recorder())
                .unwrap_or_else(|e| {
                    // Another recorder is installed (only possible in embedding programs):
                    // keep serving with a detached one rather than failing.
                    tracing::warn!(error = %e, "Prometheus recorder not installed; /metrics will be empty");
                    PrometheusBuilder::new().build_recorder().handle()
                })
        })
        .clone()
}

/// The label of a request's method: the standard ones by name, any other as `other`,
/// so that invented methods cannot grow the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

tokio::task_local! {
    /// The id of the request being handled, for error bodies.
    static REQUEST_ID: Option<String>;
}

/// Runs the rest of the stack with the request's id at hand (see [`current_request_id`]).
pub async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    REQUEST_ID.scope(id, next.run(request)).await
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// Counts requests and their latency by route, method and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method()).to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("moodwire_http_requests_total", &labels).increment(1);
    metrics::histogram!("moodwire_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Request ids: a per-process random prefix and a counter, cheap and unique enough to follow one request in the logs.
#[derive(Clone)]
pub struct SequentialRequestId {
    prefix: u32,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for SequentialRequestId {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        SequentialRequestId {
            prefix: nanos ^ std::process::id(),
            next: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:08x}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Registers the help text of the metrics this crate records (call once, after the
/// recorder is installed).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "moodwire_http_requests_total",
        "HTTP requests answered, by route, method (standard ones, else other) and status."
    );
    describe_histogram!(
        "moodwire_http_request_duration_seconds",
        "Seconds from a request's arrival to its answer, by route, method and status."
    );
    describe_counter!("moodwire_access_denied_total", "Requests refused by the access policy, by reason: unauthorized, rate_limited, auth_failures.");
    describe_counter!(
        "moodwire_connections_refused_total",
        "Client connections closed at once because MOODWIRE_MAX_CONNECTIONS were open."
    );
    describe_counter!(
        "moodwire_connections_idle_closed_total",
        "Client connections closed for sending nothing, or no request, within their timeout."
    );
    describe_gauge!(
        "moodwire_model_info",
        "The model this process serves (label version); always 1."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        for invented in ["FOO1", "FOO2", "PROPFIND"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other");
        }
    }
}
