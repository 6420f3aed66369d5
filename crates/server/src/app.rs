//! The application: what the handlers share, and the router that puts the handlers,
//! the middleware and the dashboard together.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use moodwire_core::ports::Backlog;
use moodwire_core::service::AnalysisService;

use crate::access::{self, AccessPolicy};
use crate::handlers::{
    analyze, healthz, method_not_allowed, metrics_text, not_found, openapi, readyz,
};
use crate::history::{self, StoreHandle, StoreState};
use crate::observability::{self, SequentialRequestId};
use crate::{dashboard, middleware, ApiError};
use std::sync::Arc;

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
    pub(crate) plots: moka::sync::Cache<String, Arc<str>>,
    /// API keys and rate limits (open by default).
    access: AccessPolicy,
    /// The history store for the dashboard's API, once connected.
    pub(crate) store: StoreHandle,
    /// The event log's backlog as this process's sync last saw it; `None` when no
    /// sync runs here (`--no-worker`) or none has looked yet.
    pub(crate) backlog: tokio::sync::watch::Receiver<Option<Backlog>>,
    /// Where new analyses are computed (see [`crate::compute`]); `None`: in place.
    pub(crate) analysis_runtime: Option<tokio::runtime::Handle>,
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
            store: tokio::sync::watch::channel(StoreState::Connecting(None)).1,
            backlog: tokio::sync::watch::channel(None).1,
            analysis_runtime: None,
        }
    }

    /// Serve the stored history from `store` once it holds a connection.
    pub fn with_store(mut self, store: StoreHandle) -> Self {
        self.store = store;
        self
    }

    /// Report the event log's backlog, as a sync in this process publishes it.
    pub fn with_backlog(mut self, backlog: tokio::sync::watch::Receiver<Option<Backlog>>) -> Self {
        self.backlog = backlog;
        self
    }

    /// Compute new analyses on `runtime` (a lower-priority one), answering only cache
    /// hits on the HTTP runtime.
    pub fn with_analysis_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.analysis_runtime = Some(runtime);
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
        .layer(axum::middleware::from_fn(middleware::bound_request_head))
        .layer(axum::middleware::from_fn(observability::record_request))
        .layer(axum::middleware::map_response(middleware::security_headers))
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

pub(crate) fn prometheus_text(prometheus: &PrometheusHandle) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus.render(),
    )
        .into_response()
}
