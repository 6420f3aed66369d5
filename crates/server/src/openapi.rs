use utoipa::OpenApi;

use crate::api::{AnalyzeRequestBody, AnalyzeResponse, ServedFrom};
use crate::app;
use crate::error::{ErrorBody, ErrorDetail};
use crate::history::{self, KeywordsResponse, PostsResponse, TrendResponse};
use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood, ScoredPost};
use moodwire_core::{Emotion, EmotionShare, Keyword, PostsSource};

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

/// The OpenAPI 3 description served at `/openapi.json`. What a keyword may be comes
/// from the domain ([`Keyword::schema_pattern`], [`Keyword::MAX_CHARS`]), not from
/// literals repeated in attributes.
pub fn openapi_json() -> utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the description is JSON");
        let keyword = serde_json::json!({
            "type": "string",
            "minLength": 1,
            "maxLength": Keyword::MAX_CHARS,
            "pattern": Keyword::schema_pattern(),
        });
        for pointer in [
            "/components/schemas/AnalyzeRequestBody/properties/keyword",
            "/paths/~1api~1keywords~1{keyword}~1trend/get/parameters/0/schema",
            "/paths/~1api~1keywords~1{keyword}~1posts/get/parameters/0/schema",
        ] {
            let slot = doc
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("the description has {pointer}"));
            let example = slot.get("example").cloned();
            *slot = keyword.clone();
            if let Some(example) = example {
                slot["example"] = example;
            }
        }
        serde_json::from_value(doc).expect("the patched description is an OpenAPI document")
    })
    .clone()
}
