use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use moodwire_core::service::AnalysisService;
use moodwire_core::Analysis;

use crate::access::{self, AccessPolicy};
use crate::api::{AnalyzeRequest, AnalyzeResponse};
use crate::history::{self, StoreHandle};
use crate::observability::{self, SequentialRequestId};
use crate::{dashboard, plot, ApiError};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<AnalysisService>,
    /// The longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    pub prometheus: PrometheusHandle,
    /// Rendered charts by analysis: a cache hit then costs no rendering.
    plots: moka::sync::Cache<String, Arc<str>>,
    /// API keys and rate limits (open by default).
    access: AccessPolicy,
    /// The history store for the dashboard's API, once connected.
    pub(crate) store: StoreHandle,
}

impl AppState {
    /// Charts are ~30 KB of base64; 2,000 of them bound this memo to ~60 MB.
    const MAX_PLOTS: u64 = 2_000;

    pub fn new(service: Arc<AnalysisService>, request_timeout: Duration) -> Self {
        let prometheus = observability::prometheus();
        // The Prometheus "info" idiom: which model this replica serves.
        metrics::gauge!("moodwire_model_info", "version" => service.model_version().to_string())
            .set(1.0);
        AppState {
            service,
            request_timeout,
            prometheus,
            plots: moka::sync::Cache::builder()
                .max_capacity(Self::MAX_PLOTS)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            access: AccessPolicy::default(),
            store: tokio::sync::watch::channel(None).1,
        }
    }

    /// Serve the stored history from `store` once it holds a connection.
    pub fn with_store(mut self, store: StoreHandle) -> Self {
        self.store = store;
        self
    }

    pub fn with_access(mut self, access: AccessPolicy) -> Self {
        self.access = access;
        self
    }
}

pub fn router(state: AppState) -> Router {
    let access = state.access.clone();
    Router::new()
        .route("/analyze", post(analyze).fallback(method_not_allowed))
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/readyz", get(readyz).fallback(method_not_allowed))
        .route("/metrics", get(metrics_text).fallback(method_not_allowed))
        .route("/openapi.json", get(openapi).fallback(method_not_allowed))
        .route("/api/keywords", get(history::keywords).fallback(method_not_allowed))
        .route(
            "/api/keywords/{keyword}/trend",
            get(history::trend).fallback(method_not_allowed),
        )
        .route(
            "/api/keywords/{keyword}/posts",
            get(history::posts).fallback(method_not_allowed),
        )
        .merge(dashboard::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(access, access::enforce))
        .layer(axum::middleware::from_fn(bound_request_head))
        .layer(axum::middleware::from_fn(observability::record_request))
        .layer(axum::middleware::map_response(dashboard::security_headers))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
        }))
        .layer(axum::middleware::from_fn(observability::scope_request_id))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(SequentialRequestId::default()))
}

/// What one client connection may cost the server. Bodies are bounded per route
/// (`MAX_BODY_BYTES`) and handlers by the request timeout; these bound the rest.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A client must send a request's whole header within this, or the connection is
    /// closed: a slow-loris client cannot hold a connection open by trickling bytes.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); a larger one is answered 431
    /// with the JSON error `headers_too_large`. The HTTP parser buffers at most twice
    /// this and answers a head past that (or one of over 100 headers) with a bare 431.
    pub max_header_bytes: usize,
    /// Most open connections; a new one past it is closed at once.
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed (a client that
    /// connects and says nothing gets only `header_read_timeout`).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a connection is doing, for its idle timeout: requests in flight, and when the
/// last one ended. Counting requests rather than bytes means HTTP/2 pings (which
/// keep a dead peer from holding a connection) do not keep an idle one open.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    opened: Instant,
    /// Milliseconds after `opened` when the last request ended (0: none yet).
    last_ended_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: 0.into(),
            opened: Instant::now(),
            last_ended_ms: 0.into(),
        }
    }

    fn begin(&self) {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn end(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ended_ms
            .store(now.max(1), std::sync::atomic::Ordering::SeqCst);
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the connection has been idle past its limit: `first` before any request,
    /// `between` after one.
    fn expired(&self, first: Duration, between: Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        if self.in_flight.load(SeqCst) > 0 {
            return false;
        }
        match self.last_ended_ms.load(SeqCst) {
            0 => self.opened.elapsed() >= first,
            ended => {
                self.opened
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ended))
                    >= between
            }
        }
    }
}

/// Ends a request's activity when its response future finishes or is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Serves until `shutdown` resolves, then stops accepting connections and gives
/// in-flight requests up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, grace, ConnectionLimits::default()).await
}

/// [`serve`] with explicit connection limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        // Pings find a peer that went away without closing (its streams are freed).
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(
            u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        );
    let head_limit = HeadLimit(limits.max_header_bytes);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept:
                    // pause briefly rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            metrics::counter!("moodwire_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let activity = Arc::new(Activity::new());
        let tracked = Arc::clone(&activity);
        // The peer address is what per-IP rate limits key on.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            request.extensions_mut().insert(head_limit);
            tracked.begin();
            let in_flight = InFlight(Arc::clone(&tracked));
            let response = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // The idle watchdog also covers what hyper's own timeouts do not: the bytes
            // before HTTP/1-vs-2 detection, and an HTTP/2 connection left open.
            let check = limits.header_read_timeout.min(limits.idle_timeout) / 4;
            tokio::pin!(connection);
            loop {
                tokio::select! {
                    ended = &mut connection => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep(check) => {
                        if activity.expired(limits.header_read_timeout, limits.idle_timeout) {
                            metrics::counter!("moodwire_connections_idle_closed_total").increment(1);
                            break;
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: finishing in-flight requests"
    );
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests did not finish within the grace period; stopping anyway"
        );
    }
    Ok(())
}

/// Analyse the emotions of recent posts about a keyword.
#[utoipa::path(
    post,
    path = "/analyze",
    request_body = crate::api::AnalyzeRequestBody,
    responses(
        (status = 200, description = "The emotion breakdown", body = AnalyzeResponse),
        (status = 400, description = "The body is not JSON", body = crate::ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = crate::ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`", body = crate::ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type or out of range", body = crate::ErrorBody),
        (status = 502, description = "The post source failed", body = crate::ErrorBody),
        (status = 401, description = "API keys are required (MOODWIRE_API_KEYS) and none valid was presented", body = crate::ErrorBody),
        (status = 429, description = "This client's rate limit is spent; see Retry-After", body = crate::ErrorBody),
        (status = 503, description = "Overloaded, rate limited or timed out; see Retry-After", body = crate::ErrorBody),
    )
)]
pub(crate) async fn analyze(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<AnalyzeResponse>, ApiError> {
    let started = Instant::now();
    // A browser sends `text/plain` across origins without asking first: requiring JSON
    // keeps other web pages from making a visitor's browser call a key-less server.
    AnalyzeRequest::check_content_type(headers.get(header::CONTENT_TYPE))?;
    let bytes = read_body(body).await?;
    let request = AnalyzeRequest::parse(&bytes)?;
    let answer = tokio::time::timeout(state.request_timeout, async {
        let (analysis, served) = state
            .service
            .analyze(&request.keyword, request.limit)
            .await?;
        let plot = if request.return_plot {
            Some(plot_of(&state, &analysis).await?)
        } else {
            None
        };
        Ok::<_, ApiError>((analysis, served, plot))
    })
    .await
    .map_err(|_| ApiError::Timeout(state.request_timeout))?;
    let (analysis, served, plot) = answer?;
    Ok(Json(AnalyzeResponse::new(
        &analysis,
        served,
        plot.map(|p| p.to_string()),
        started.elapsed().as_secs_f64(),
    )))
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        })
}

/// The chart of an analysis, rendered once per analysis. Rendering takes
/// milliseconds of CPU, so it runs off the async workers.
async fn plot_of(state: &AppState, analysis: &Arc<Analysis>) -> Result<Arc<str>, ApiError> {
    // An analysis is identified by what was asked and when it was computed.
    let key = format!(
        "{}|{}|{}|{}",
        analysis.model,
        analysis.keyword,
        analysis.count,
        analysis
            .analyzed_at
            .timestamp_nanos_opt()
            .unwrap_or_default()
    );
    if let Some(hit) = state.plots.get(&key) {
        return Ok(hit);
    }
    let source = Arc::clone(analysis);
    let png = tokio::task::spawn_blocking(move || plot::render_png(&source))
        .await
        .map_err(|e| ApiError::Internal(format!("chart task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let encoded: Arc<str> = base64::engine::general_purpose::STANDARD.encode(png).into();
    state.plots.insert(key, Arc::clone(&encoded));
    Ok(encoded)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive")))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the model is loaded and the configured backends are reachable.
///
/// Ready once the model is loaded. A configured cache that does not answer is reported
/// (`"cache": "unreachable: ..."`) but does not make the replica unready: requests still
/// succeed without it, and pulling every replica when Redis is down would turn a slower
/// service into an outage.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Ready to serve, with the state of each backend")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let cache = match state.service.check_cache().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    // Answers are still served while the event log fails, but their history waits on
    // recovery from the cache: an operator must see it.
    let event_log = match state.service.event_log_failure() {
        None => "ok".to_string(),
        Some(e) => format!("failing: {e}"),
    };
    Json(json!({
        "status": "ready",
        "model": state.service.model_version(),
        "cache": cache,
        "event_log": event_log,
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn metrics_text(State(state): State<AppState>) -> Response {
    prometheus_text(&state.prometheus)
}

/// `/metrics` and `/healthz` alone, for a process without the API (`moodwire worker`):
/// its sync backlog, last sync and warmer figures are scraped here.
pub fn ops_router(prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route(
            "/metrics",
            get(move || async move { prometheus_text(&prometheus) }).fallback(method_not_allowed),
        )
        .fallback(not_found)
}

fn prometheus_text(prometheus: &PrometheusHandle) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus.render(),
    )
        .into_response()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi_json())
}

/// The request-head bound of the connection a request came on (set by [`serve_with`]).
#[derive(Debug, Clone, Copy)]
struct HeadLimit(usize);

/// Answers a request whose head is over its connection's bound with a JSON 431, so
/// that, short of the parser's own hard cap, a client learns what was wrong.
async fn bound_request_head(request: Request<Body>, next: axum::middleware::Next) -> Response {
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

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
