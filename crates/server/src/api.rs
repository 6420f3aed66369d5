//! The wire format of `POST /analyze`: parsing the request into domain types
//! (so handlers only ever see valid input) and shaping the response.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use moodwire_core::history::ScoredPost;
use moodwire_core::service::Served;
use moodwire_core::{
    Analysis, EmotionShare, Examples, Keyword, Limit, PostsSource, Question, Scope, Subreddits,
    Window,
};

use crate::ApiError;

/// A valid `POST /analyze` request.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeRequest {
    /// The keyword, limit, subreddits and window: what is computed and cached.
    pub question: Question,
    pub return_plot: bool,
    pub examples: Examples,
}

/// The request body as documented in the OpenAPI description (unknown fields are
/// refused: a misspelt `limt` must not silently mean the default).
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only: parsing goes through `AnalyzeRequest::parse`
pub struct AnalyzeRequestBody {
    /// What to analyse: 1 to 100 characters after trimming, not blank, no control or
    /// format characters (the bounds are set from the domain in `openapi_json`).
    #[schema(example = "AI")]
    keyword: String,
    /// How many recent posts to analyse (bounds set from the domain in `openapi_json`).
    limit: Option<u32>,
    /// Whether to include the pie chart as a base64 PNG.
    #[schema(default = true)]
    return_plot: Option<bool>,
    /// How many of its most confident posts each `agg` entry carries (bounds set from
    /// the domain in `openapi_json`); none when 0.
    examples: Option<u32>,
    /// Only posts of these subreddits (names as after r/, any case; bounds set from
    /// the domain in `openapi_json`); all of Reddit when empty.
    #[schema(example = json!(["stocks", "wallstreetbets"]))]
    subreddits: Option<Vec<String>>,
    /// Only posts created within the last hour, day, week, month (30 days) or year
    /// (365 days); `all` by default. The sample corpus and dumps are snapshots: their
    /// window ends at the newest post they hold.
    #[schema(default = "all")]
    window: Option<Window>,
}

impl AnalyzeRequest {
    const FIELDS: [&'static str; 6] = [
        "keyword",
        "limit",
        "return_plot",
        "examples",
        "subreddits",
        "window",
    ];

    /// Bodies come as `application/json` (parameters such as a charset allowed).
    pub fn check_content_type(
        content_type: Option<&axum::http::HeaderValue>,
    ) -> Result<(), ApiError> {
        let essence = content_type
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        match essence {
            Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
            _ => Err(ApiError::UnsupportedMediaType),
        }
    }

    /// Parses a JSON body; every failure names the field at fault.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(ApiError::NotAnObject);
        };
        if let Some(unknown) = fields.keys().find(|k| !Self::FIELDS.contains(&k.as_str())) {
            return Err(ApiError::UnknownField(unknown.clone()));
        }
        let keyword = match present(&fields, "keyword") {
            None => return Err(ApiError::MissingField("keyword")),
            Some(Value::String(s)) => Keyword::parse(s)?,
            Some(_) => return Err(wrong_type("keyword", "a string")),
        };
        let limit = match integer(&fields, "limit")? {
            None => Limit::default(),
            Some(i) => Limit::parse(i)?,
        };
        let examples = match integer(&fields, "examples")? {
            None => Examples::default(),
            Some(i) => Examples::parse(i)?,
        };
        let return_plot = match present(&fields, "return_plot") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(wrong_type("return_plot", "a boolean")),
        };
        let subreddits = match present(&fields, "subreddits") {
            None => Subreddits::all(),
            Some(Value::Array(names)) => {
                let names: Option<Vec<&str>> = names.iter().map(Value::as_str).collect();
                let names = names.ok_or_else(|| wrong_type("subreddits", "an array of strings"))?;
                Subreddits::parse(&names)?
            }
            Some(_) => return Err(wrong_type("subreddits", "an array of strings")),
        };
        let window = match present(&fields, "window") {
            None => Window::default(),
            Some(Value::String(name)) => Window::parse(name)?,
            Some(_) => return Err(wrong_type("window", "a string")),
        };
        let scope = Scope { subreddits, window };
        Ok(AnalyzeRequest {
            question: Question::new(keyword, limit).within(scope),
            return_plot,
            examples,
        })
    }
}

/// A field that is there and not null (null means "use the default").
fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

/// An integer field, if given. As in JSON Schema, `149.0` is the integer 149; `2.5`
/// and integers beyond i64 are not counts.
fn integer(fields: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, ApiError> {
    // Below 2^53 every integer is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match present(fields, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < EXACT)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| wrong_type(name, "an integer")),
        Some(_) => Err(wrong_type(name, "an integer")),
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> ApiError {
    ApiError::WrongType { field, expected }
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServedFrom {
    Inference,
    Cache,
}

impl From<Served> for ServedFrom {
    fn from(s: Served) -> Self {
        match s {
            Served::Cache => ServedFrom::Cache,
            Served::Inference => ServedFrom::Inference,
        }
    }
}

/// `POST /analyze`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnalyzeResponse {
    /// The analysis' id in the store (a cached answer keeps the id it was computed with).
    pub analysis_id: String,
    pub keyword: String,
    /// The subreddits the posts were limited to (lowercase, sorted); empty: all of Reddit.
    pub subreddits: Vec<String>,
    /// How far back the posts go.
    pub window: Window,
    /// Posts analysed.
    pub count: u32,
    /// Exactly six entries, one per emotion, sorted by `pct` descending.
    pub agg: Vec<AggEntry>,
    /// The pie chart as a base64 PNG; null when `return_plot` is false.
    pub plot_base64: Option<String>,
    pub source: ServedFrom,
    /// Seconds spent serving this request.
    pub time: f64,
    /// The model that classified the posts.
    pub model: String,
    pub posts_source: PostsSource,
    pub analyzed_at: DateTime<Utc>,
}

/// One emotion's part of an answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AggEntry {
    #[serde(flatten)]
    pub share: EmotionShare,
    /// Its most confident posts, most confident first; only when `examples` was asked
    /// for (fewer when fewer posts were read as this emotion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples: Option<Vec<ScoredPost>>,
}

impl AnalyzeResponse {
    pub fn new(
        analysis: &Analysis,
        served: Served,
        plot_base64: Option<String>,
        seconds: f64,
        examples: Examples,
    ) -> Self {
        let agg = analysis
            .agg
            .iter()
            .map(|share| AggEntry {
                share: share.clone(),
                examples: (examples.get() > 0).then(|| analysis.examples_of(share.label, examples)),
            })
            .collect();
        AnalyzeResponse {
            analysis_id: analysis.id.clone(),
            keyword: analysis.keyword.clone(),
            subreddits: analysis.scope.subreddits.names().to_vec(),
            window: analysis.scope.window,
            count: analysis.count,
            agg,
            plot_base64,
            source: served.into(),
            time: (seconds * 1e6).round() / 1e6,
            model: analysis.model.clone(),
            posts_source: analysis.posts_source,
            analyzed_at: analysis.analyzed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply() {
        let r = AnalyzeRequest::parse(br#"{"keyword": " AI "}"#).unwrap();
        assert_eq!(r.question.keyword.as_str(), "AI");
        assert_eq!(r.question.limit, Limit::default());
        assert_eq!(r.question.scope, Scope::unrestricted());
        assert!(r.return_plot);
        let r = AnalyzeRequest::parse(
            br#"{"keyword": "x", "limit": null, "return_plot": false, "subreddits": null, "window": null}"#,
        )
        .unwrap();
        assert_eq!(r.question.limit.get(), 250);
        assert_eq!(r.question.scope, Scope::unrestricted());
        assert!(!r.return_plot);
        assert_eq!(r.examples, Examples::default());
        let r =
            AnalyzeRequest::parse(br#"{"keyword": "x", "examples": 5, "limit": 149.0}"#).unwrap();
        assert_eq!(
            (r.examples.get(), r.question.limit.get()),
            (5, 149),
            "149.0 is an integer"
        );
    }

    #[test]
    fn subreddits_and_window_parse_into_a_scope() {
        let r = AnalyzeRequest::parse(
            br#"{"keyword": "tesla", "subreddits": ["WallStreetBets", "stocks"], "window": "week"}"#,
        )
        .unwrap();
        assert_eq!(
            r.question.scope.subreddits.names(),
            ["stocks", "wallstreetbets"]
        );
        assert_eq!(r.question.scope.window, Window::Week);
    }

    #[test]
    fn only_json_bodies_are_taken() {
        use axum::http::HeaderValue;
        for ok in ["application/json", "Application/JSON; charset=utf-8"] {
            AnalyzeRequest::check_content_type(Some(&HeaderValue::from_static(ok))).unwrap();
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "",
        ] {
            let err = AnalyzeRequest::check_content_type(Some(&HeaderValue::from_static(bad)));
            assert!(matches!(err, Err(ApiError::UnsupportedMediaType)), "{bad}");
        }
        assert!(AnalyzeRequest::check_content_type(None).is_err());
    }

    #[test]
    fn every_bad_input_names_its_field() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("{", None),
            ("[1]", None),
            (r#"{}"#, Some("keyword")),
            (r#"{"keyword": 5}"#, Some("keyword")),
            (r#"{"keyword": "   "}"#, Some("keyword")),
            (r#"{"keyword": "ai", "limit": 0}"#, Some("limit")),
            (r#"{"keyword": "ai", "limit": 1001}"#, Some("limit")),
            (r#"{"keyword": "ai", "limit": 2.5}"#, Some("limit")),
            (r#"{"keyword": "ai", "limit": "10"}"#, Some("limit")),
            (
                r#"{"keyword": "ai", "limit": 99999999999999999999999}"#,
                Some("limit"),
            ),
            (
                r#"{"keyword": "ai", "return_plot": "yes"}"#,
                Some("return_plot"),
            ),
            (r#"{"keyword": "ai", "limt": 10}"#, Some("limt")),
            (r#"{"keyword": "ai", "examples": 6}"#, Some("examples")),
            (r#"{"keyword": "ai", "examples": -1}"#, Some("examples")),
            (r#"{"keyword": "ai", "examples": 1.5}"#, Some("examples")),
            (r#"{"keyword": "ai", "examples": "3"}"#, Some("examples")),
        ];
        for (body, field) in cases {
            let err = AnalyzeRequest::parse(body.as_bytes()).expect_err(body);
            let named = match &err {
                ApiError::Input(e) => Some(e.field().to_string()),
                ApiError::MissingField(f) | ApiError::WrongType { field: f, .. } => {
                    Some(f.to_string())
                }
                ApiError::UnknownField(f) => Some(f.clone()),
                _ => None,
            };
            assert_eq!(named.as_deref(), *field, "body {body}: {err}");
        }
    }
}
