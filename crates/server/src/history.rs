//! `GET /api/keywords…`: the stored history the dashboard draws, translated from
//! query strings into [`History`] calls. Everything here reads what the idle sync has
//! stored, so a fresh analysis shows up once the sync has run.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Serialize;

use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood, RowLimit};
use moodwire_core::ports::{History, Store};
use moodwire_core::Keyword;

use crate::app::AppState;
use crate::ApiError;

/// The store once connected; `None` while it is still being reached (the server
/// starts without waiting for it, and the analysis path never needs it).
pub type StoreHandle = tokio::sync::watch::Receiver<Option<Arc<dyn Store>>>;

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeywordsResponse {
    /// Most analysed first.
    pub keywords: Vec<KeywordMood>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TrendResponse {
    /// The normalized keyword.
    pub keyword: String,
    /// One point per stored analysis, oldest first.
    pub points: Vec<AnalysisSummary>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PostsResponse {
    /// The normalized keyword.
    pub keyword: String,
    /// The latest stored analysis with posts, least confident posts first; null when
    /// none is stored yet.
    pub analysis: Option<AnalysisPosts>,
}

/// Keywords in the store with the emotion shares of their latest analysis.
#[utoipa::path(
    get,
    path = "/api/keywords",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "How many keywords (default 20)")),
    responses(
        (status = 200, description = "Keywords, most analysed first", body = KeywordsResponse),
        (status = 422, description = "A query parameter is out of range or not an integer", body = crate::ErrorBody),
        (status = 503, description = "The store is not reachable yet", body = crate::ErrorBody),
    )
)]
pub(crate) async fn keywords(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<KeywordsResponse>, ApiError> {
    let limit = RowLimit::parse("limit", int_param(query.as_deref(), "limit")?, 20, 200)?;
    let keywords = history(&state)?.keyword_moods(limit.get()).await?;
    Ok(Json(KeywordsResponse { keywords }))
}

/// The emotion shares of a keyword's stored analyses over time.
#[utoipa::path(
    get,
    path = "/api/keywords/{keyword}/trend",
    params(
        ("keyword" = String, Path, description = "The keyword, as asked (case and spacing do not matter): 1 to 100 characters, not blank, no control or format characters"),
        ("points" = Option<u32>, Query, minimum = 1, maximum = 500, description = "How many of the latest analyses (default 100)"),
    ),
    responses(
        (status = 200, description = "The latest analyses, oldest first", body = TrendResponse),
        (status = 422, description = "The keyword or a query parameter is invalid", body = crate::ErrorBody),
        (status = 503, description = "The store is not reachable yet", body = crate::ErrorBody),
    )
)]
pub(crate) async fn trend(
    State(state): State<AppState>,
    keyword: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<TrendResponse>, ApiError> {
    let keyword = path_keyword(keyword)?;
    let points = RowLimit::parse("points", int_param(query.as_deref(), "points")?, 100, 500)?;
    let points = history(&state)?.trend(&keyword, points.get()).await?;
    Ok(Json(TrendResponse {
        keyword: keyword.normalized(),
        points,
    }))
}

/// The posts of a keyword's latest stored analysis with each one's confidence.
#[utoipa::path(
    get,
    path = "/api/keywords/{keyword}/posts",
    params(
        ("keyword" = String, Path, description = "The keyword, as asked (case and spacing do not matter): 1 to 100 characters, not blank, no control or format characters"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "How many posts (default 1000)"),
    ),
    responses(
        (status = 200, description = "The posts, least confident first", body = PostsResponse),
        (status = 422, description = "The keyword or a query parameter is invalid", body = crate::ErrorBody),
        (status = 503, description = "The store is not reachable yet", body = crate::ErrorBody),
    )
)]
pub(crate) async fn posts(
    State(state): State<AppState>,
    keyword: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<PostsResponse>, ApiError> {
    let keyword = path_keyword(keyword)?;
    let limit = RowLimit::parse("limit", int_param(query.as_deref(), "limit")?, 1000, 1000)?;
    let analysis = history(&state)?.scored_posts(&keyword, limit.get()).await?;
    Ok(Json(PostsResponse {
        keyword: keyword.normalized(),
        analysis,
    }))
}

fn history(state: &AppState) -> Result<Arc<dyn History>, ApiError> {
    let store = state.store.borrow().clone();
    store
        .map(|store| store as Arc<dyn History>)
        .ok_or_else(|| ApiError::StoreUnavailable("the store is still being connected".into()))
}

fn path_keyword(raw: Result<Path<String>, PathRejection>) -> Result<Keyword, ApiError> {
    let Path(raw) = raw.map_err(|_| ApiError::WrongType {
        field: "keyword",
        expected: "percent-encoded UTF-8 text",
    })?;
    Ok(Keyword::parse(&raw)?)
}

/// The integer query parameter `name`, if given; the last one wins when repeated.
fn int_param(query: Option<&str>, name: &'static str) -> Result<Option<i64>, ApiError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let Some(raw) = form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value)
        .last()
    else {
        return Ok(None);
    };
    raw.trim()
        .parse()
        .map(Some)
        .map_err(|_| ApiError::WrongType {
            field: name,
            expected: "an integer",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_parameters_are_parsed_or_named_when_wrong() {
        assert_eq!(int_param(None, "limit").unwrap(), None);
        assert_eq!(int_param(Some("points=3"), "limit").unwrap(), None);
        assert_eq!(
            int_param(Some("limit=5&limit=7"), "limit").unwrap(),
            Some(7)
        );
        let err = int_param(Some("limit=many"), "limit").unwrap_err();
        assert!(matches!(err, ApiError::WrongType { field: "limit", .. }));
    }
}
