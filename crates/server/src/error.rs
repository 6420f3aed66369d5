//! Every error the API answers with, mapped to its HTTP status and stable code
//! in exactly one place.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use moodwire_core::ports::{ClassifyError, SourceError, StoreError};
use moodwire_core::service::AnalyzeError;
use moodwire_core::InputError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body must be sent with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the request line and headers are larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request took longer than {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Analyze(#[from] AnalyzeError),
    #[error("a valid API key is required: `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("too many requests from this client; retry in {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("the history store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::StoreUnavailable(e.to_string())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable snake_case code.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's `X-Request-Id`: what to quote to an operator, who finds the
    /// details of a server-side failure in the log under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// How long an overloaded client should wait before retrying.
const RETRY_OVERLOADED: Duration = Duration::from_secs(1);
/// How long to wait for a store that does not answer (the worker reconnects by itself).
const RETRY_STORE: Duration = Duration::from_secs(5);

impl ApiError {
    /// (status, code, field, Retry-After): the one table of the API's errors.
    fn parts(&self) -> (StatusCode, &'static str, Option<String>, Option<Duration>) {
        use ApiError::*;
        match self {
            Input(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                Some(e.field().into()),
                None,
            ),
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json", None, None),
            NotAnObject => (StatusCode::BAD_REQUEST, "invalid_json", None, None),
            MissingField(f) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_field",
                Some((*f).into()),
                None,
            ),
            WrongType { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
                Some((*field).into()),
                None,
            ),
            UnknownField(f) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
                Some(f.clone()),
                None,
            ),
            BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None, None),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
                None,
            ),
            HeadTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                None,
                None,
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None, None),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                None,
                None,
            ),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None, None),
            RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                None,
                Some(*retry_after),
            ),
            Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                None,
                Some(RETRY_OVERLOADED),
            ),
            Analyze(AnalyzeError::Classify(e)) => match e.as_ref() {
                ClassifyError::Overloaded { retry_after, .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    None,
                    Some((*retry_after).max(RETRY_OVERLOADED)),
                ),
                ClassifyError::Cancelled => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    None,
                    Some(RETRY_OVERLOADED),
                ),
                ClassifyError::Inference(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "inference_failed",
                    None,
                    None,
                ),
            },
            Analyze(AnalyzeError::Busy { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                None,
                Some(RETRY_OVERLOADED),
            ),
            Analyze(AnalyzeError::Source(e)) => match e.as_ref() {
                SourceError::RateLimited { retry_after } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_rate_limited",
                    None,
                    *retry_after,
                ),
                SourceError::Unavailable(_) => {
                    (StatusCode::BAD_GATEWAY, "upstream_unavailable", None, None)
                }
                SourceError::BadResponse(_) => {
                    (StatusCode::BAD_GATEWAY, "upstream_bad_response", None, None)
                }
                SourceError::AuthFailed(_) => {
                    (StatusCode::BAD_GATEWAY, "upstream_auth_failed", None, None)
                }
            },
            StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
                Some(RETRY_STORE),
            ),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None, None),
        }
    }
}

/// What a client is told of a server-side failure: what happened and what to do,
/// never the details (database errors, paths, upstream URLs), which go to the log.
fn public_message(code: &str) -> &'static str {
    match code {
        "overloaded" => "the server is at capacity; retry after the Retry-After delay",
        "timeout" => "the request took too long; retry after the Retry-After delay",
        "shutting_down" => "the server is shutting down; retry shortly",
        "upstream_rate_limited" => {
            "the post source's rate limit is spent; retry after the Retry-After delay"
        }
        "upstream_unavailable" => "the post source is unavailable; retry later",
        "upstream_bad_response" => "the post source answered with something unreadable",
        "upstream_auth_failed" => "the post source refused this server's credentials",
        "store_unavailable" => {
            "the history store is unavailable; retry after the Retry-After delay"
        }
        "inference_failed" => "the classifier failed",
        _ => "internal error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field, retry_after) = self.parts();
        let message = if status.is_server_error() {
            // Shedding load and stopping are the server working as designed: an operator
            // alerting on ERROR must not be paged for them.
            if matches!(code, "overloaded" | "shutting_down") {
                tracing::warn!(error = %self, code, "request refused");
            } else {
                tracing::error!(error = %self, code, "request failed");
            }
            public_message(code).to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
                request_id: crate::observability::current_request_id(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = retry_after {
            let secs = wait.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
