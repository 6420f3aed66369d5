use utoipa::OpenApi;

use crate::api::{AnalyzeRequestBody, AnalyzeResponse, ServedFrom};
use crate::app;
use crate::error::{ErrorBody, ErrorDetail};
use moodwire_core::{Emotion, EmotionShare, PostsSource};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "moodwire",
        description = "Real-time emotion analytics for social media posts."
    ),
    paths(app::analyze, app::healthz, app::readyz, app::metrics_text),
    components(schemas(
        AnalyzeRequestBody,
        AnalyzeResponse,
        EmotionShare,
        Emotion,
        PostsSource,
        ServedFrom,
        ErrorBody,
        ErrorDetail
    ))
)]
struct ApiDoc;

/// The OpenAPI 3 description served at `/openapi.json`.
pub fn openapi_json() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
