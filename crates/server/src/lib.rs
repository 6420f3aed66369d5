//! moodwire's HTTP API: thin axum handlers that translate requests into calls
//! on [`moodwire_core::service::AnalysisService`] and its answers into JSON.

pub mod access;
mod api;
mod app;
mod dashboard;
mod error;
mod history;
pub mod observability;
mod openapi;
pub mod plot;

pub use api::{AnalyzeRequest, AnalyzeResponse, ServedFrom};
pub use app::{ops_router, router, serve, serve_with, AppState, ConnectionLimits};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use history::StoreHandle;
pub use openapi::openapi_json;
