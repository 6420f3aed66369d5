//! The handlers of the API's own routes (the history's are in `history.rs`): each
//! translates a request into a call on the service and its answer into JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::Response;
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use moodwire_core::Analysis;

use crate::api::{AnalyzeRequest, AnalyzeResponse};
use crate::app::{prometheus_text, AppState, MAX_BODY_BYTES};
use crate::{compute, history, plot, ApiError};

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
        let (analysis, served) = compute::analyze(
            &state.service,
            state.analysis_runtime.as_ref(),
            &request.question,
        )
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
        request.examples,
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
/// Ready once the model is loaded. A configured cache or store that does not answer is
/// reported (`"cache": "unreachable: ..."`, `"store": "unreachable: ..."`) but does not
/// make the replica unready: requests still succeed without them, and pulling every
/// replica when Redis is down would turn a slower service into an outage. Where a sync
/// runs, the event log's backlog and the age of its oldest event are reported too.
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
    // The history store is reported but, like the cache, does not make the replica
    // unready: analyses do not need it (their events wait in the log).
    let mut ready = json!({
        "status": "ready",
        "model": state.service.model_version(),
        "cache": cache,
        "event_log": event_log,
        "store": history::store_status(&state).await,
    });
    if let Some(backlog) = *state.backlog.borrow() {
        ready["backlog"] = json!({
            "events": backlog.events,
            "oldest_age_seconds": backlog.oldest_age.map(|age| age.as_secs()),
        });
    }
    Json(ready)
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn metrics_text(State(state): State<AppState>) -> Response {
    prometheus_text(&state.prometheus)
}

pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi_json())
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
