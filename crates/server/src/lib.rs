//! moodwire's HTTP API: thin axum handlers that translate requests into calls
//! on [`moodwire_core::service::AnalysisService`] and its answers into JSON.

pub mod access;
mod api;
mod app;
mod compute;
mod connection;
mod dashboard;
mod error;
mod handlers;
mod history;
mod middleware;
pub mod observability;
mod openapi;
pub mod plot;

pub use api::{AnalyzeRequest, AnalyzeResponse, ServedFrom};
pub use app::{ops_router, router, AppState};
pub use connection::{serve, serve_with, ConnectionLimits};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use history::{StoreHandle, StoreState};
pub use openapi::openapi_json;
