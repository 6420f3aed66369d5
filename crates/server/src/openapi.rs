use utoipa::OpenApi;

use crate::api::{AggEntry, AnalyzeRequestBody, AnalyzeResponse, ServedFrom};
use crate::error::{ErrorBody, ErrorDetail};
use crate::handlers;
use crate::history::{
    self, KeywordsResponse, PostsResponse, TrendResponse, KEYWORDS_LIMIT, POSTS_LIMIT, TREND_POINTS,
};
use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood, ScoredPost};
use moodwire_core::{
    Emotion, EmotionShare, Examples, Keyword, Limit, PostsSource, Subreddits, Window,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "moodwire",
        description = "Real-time emotion analytics for social media posts."
    ),
    paths(
        handlers::analyze,
        handlers::healthz,
        handlers::readyz,
        handlers::metrics_text,
        history::keywords,
        history::trend,
        history::posts
    ),
    components(schemas(
        AnalyzeRequestBody,
        AnalyzeResponse,
        EmotionShare,
        AggEntry,
        Emotion,
        PostsSource,
        Window,
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
        let limit = doc
            .pointer_mut("/components/schemas/AnalyzeRequestBody/properties/limit")
            .expect("the description has the limit");
        limit["minimum"] = Limit::MIN.into();
        limit["maximum"] = Limit::MAX.into();
        limit["default"] = (Limit::DEFAULT.get() as u64).into();
        let examples = doc
            .pointer_mut("/components/schemas/AnalyzeRequestBody/properties/examples")
            .expect("the description has the examples");
        examples["minimum"] = 0.into();
        examples["maximum"] = Examples::MAX.into();
        examples["default"] = 0.into();
        let subreddits = doc
            .pointer_mut("/components/schemas/AnalyzeRequestBody/properties/subreddits")
            .expect("the description has the subreddits");
        subreddits["maxItems"] = Subreddits::MAX.into();
        subreddits["items"] = serde_json::json!({
            "type": "string",
            "pattern": Subreddits::NAME_PATTERN,
        });
        // The history routes take the names comma-separated in one query parameter.
        let name = Subreddits::NAME_PATTERN
            .trim_start_matches('^')
            .trim_end_matches('$');
        let list = format!("^({name}(,{name}){{0,{}}})?$", Subreddits::MAX - 1);
        for route in ["trend", "posts"] {
            let pointer = format!("/paths/~1api~1keywords~1{{keyword}}~1{route}/get/parameters");
            let parameters = doc
                .pointer_mut(&pointer)
                .and_then(|p| p.as_array_mut())
                .unwrap_or_else(|| panic!("the description has {pointer}"));
            let subreddits = parameters
                .iter_mut()
                .find(|p| p["name"] == "subreddits")
                .unwrap_or_else(|| panic!("{pointer} has subreddits"));
            subreddits["schema"]["pattern"] = list.clone().into();
        }
        for (path, param) in [
            (
                "/paths/~1api~1keywords/get/parameters/0/schema",
                KEYWORDS_LIMIT,
            ),
            (
                "/paths/~1api~1keywords~1{keyword}~1trend/get/parameters/1/schema",
                TREND_POINTS,
            ),
            (
                "/paths/~1api~1keywords~1{keyword}~1posts/get/parameters/1/schema",
                POSTS_LIMIT,
            ),
        ] {
            let schema = doc
                .pointer_mut(path)
                .unwrap_or_else(|| panic!("the description has {path}"));
            schema["minimum"] = 1.into();
            schema["maximum"] = param.max.into();
            schema["default"] = param.default.into();
        }
        serde_json::from_value(doc).expect("the patched description is an OpenAPI document")
    })
    .clone()
}
