use utoipa::OpenApi;

use crate::api::{AnalyzeRequestBody, AnalyzeResponse, ServedFrom};
use crate::app;
use crate::error::{ErrorBody, ErrorDetail};
use crate::history::{self, KeywordsResponse, PostsResponse, TrendResponse};
use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood, ScoredPost};
use moodwire_core::{Emotion, EmotionShare, PostsSource};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "moodwire",
        description = "Real-time emotion analytics for social media posts."
    ),
    paths(
        app::analyze,
        app::healthz,
        app::readyz,
        app::metrics_text,
        history::keywords,
        history::trend,
        history::posts
    ),
    components(schemas(
        AnalyzeRequestBody,
        AnalyzeResponse,
        EmotionShare,
        Emotion,
        PostsSource,
        ServedFrom,
        ErrorBody,
        ErrorDetail,
        KeywordsResponse,
        TrendResponse,
        PostsResponse,
        KeywordMood,
        AnalysisSummary,
        AnalysisPosts,
        ScoredPost
    ))
)]
struct ApiDoc;

/// The OpenAPI 3 description served at `/openapi.json`.
pub fn openapi_json() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
