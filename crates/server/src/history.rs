//! `GET /api/keywords…`: the stored history the dashboard draws, translated from
//! query strings into [`History`] calls. Everything here reads what the idle sync has
//! stored, so a fresh analysis shows up once the sync has run.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood, RowLimit};
use moodwire_core::ports::{History, Store};
use moodwire_core::{Keyword, Scope, Subreddits, Window};

use crate::app::AppState;
use crate::ApiError;

/// Where the connection to the store stands: the server starts without waiting for
/// it, and the analysis path never needs it.
#[derive(Clone)]
pub enum StoreState {
    /// Still being reached; the last attempt's error, once there was one.
    Connecting(Option<String>),
    Connected(Arc<dyn Store>),
}

/// The store's state as the connecting task publishes it.
pub type StoreHandle = tokio::sync::watch::Receiver<StoreState>;

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeywordsResponse {
    /// Most analysed first.
    pub keywords: Vec<KeywordMood>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TrendResponse {
    /// The normalized keyword.
    pub keyword: String,
    /// The scope of the analyses: these subreddits (empty: all of Reddit) ...
    pub subreddits: Vec<String>,
    /// ... and this window. Analyses of other scopes are another trend.
    pub window: Window,
    /// One point per stored analysis, oldest first.
    pub points: Vec<AnalysisSummary>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PostsResponse {
    /// The normalized keyword.
    pub keyword: String,
    /// The scope of the analysis: these subreddits (empty: all of Reddit) ...
    pub subreddits: Vec<String>,
    /// ... and this window.
    pub window: Window,
    /// The latest stored analysis with posts, least confident posts first; null when
    /// none is stored yet.
    pub analysis: Option<AnalysisPosts>,
}

/// The keyword a history route is about, from its path.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeywordPath {
    /// The keyword, as asked (case and spacing do not matter): 1 to 100 characters, not blank, no control or format characters
    keyword: String,
}

/// The scope of a keyword's history: its analyses limited to exactly these subreddits
/// and this window (the unrestricted ones when neither is given).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: parsing goes through `scope_params`
pub(crate) struct ScopeParams {
    /// Subreddit names, comma-separated (any order and case): `stocks,wallstreetbets`
    subreddits: Option<String>,
    /// hour, day, week, month, year or all (the default)
    window: Option<Window>,
}

/// What a keyword's history route answers when it cannot answer with the history.
/// It only describes those answers for the API description: `ApiError` makes them.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub(crate) enum KeywordRouteErrors {
    /// The keyword or a query parameter is invalid
    #[response(status = 422)]
    Invalid(crate::ErrorBody),
    /// The store is not reachable yet
    #[response(status = 503)]
    StoreUnreachable(crate::ErrorBody),
}

/// Keywords in the store with the emotion shares of their latest analysis.
#[utoipa::path(
    get,
    path = "/api/keywords",
    params(("limit" = Option<u32>, Query, description = "How many keywords")),
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
    let limit = KEYWORDS_LIMIT.parse(query.as_deref())?;
    let keywords = history(&state)?.keyword_moods(limit.get()).await?;
    Ok(Json(KeywordsResponse { keywords }))
}

/// The emotion shares of a keyword's stored analyses in one scope over time.
#[utoipa::path(get, path = "/api/keywords/{keyword}/trend",
    params(KeywordPath, ("points" = Option<u32>, Query, description = "How many of the latest analyses"), ScopeParams),
    responses((status = 200, description = "The latest analyses, oldest first", body = TrendResponse), KeywordRouteErrors)
)]
pub(crate) async fn trend(
    State(state): State<AppState>,
    keyword: Result<Path<KeywordPath>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<TrendResponse>, ApiError> {
    let route = keyword_route(&state, keyword, query, &TREND_POINTS)?;
    let points = route
        .history
        .trend(&route.keyword, &route.scope, route.rows)
        .await?;
    let Scope { subreddits, window } = route.scope;
    Ok(Json(TrendResponse {
        keyword: route.keyword.normalized(),
        subreddits: subreddits.into(),
        window,
        points,
    }))
}

/// The posts of a keyword's latest stored analysis in one scope with each one's confidence.
#[utoipa::path(get, path = "/api/keywords/{keyword}/posts",
    params(KeywordPath, ("limit" = Option<u32>, Query, description = "How many posts"), ScopeParams),
    responses((status = 200, description = "The posts, least confident first", body = PostsResponse), KeywordRouteErrors)
)]
pub(crate) async fn posts(
    State(state): State<AppState>,
    keyword: Result<Path<KeywordPath>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<PostsResponse>, ApiError> {
    let route = keyword_route(&state, keyword, query, &POSTS_LIMIT)?;
    let analysis = route
        .history
        .scored_posts(&route.keyword, &route.scope, route.rows)
        .await?;
    let Scope { subreddits, window } = route.scope;
    Ok(Json(PostsResponse {
        keyword: route.keyword.normalized(),
        subreddits: subreddits.into(),
        window,
        analysis,
    }))
}

/// What a keyword route asks: the history, the keyword, its scope and how many rows.
struct KeywordRoute {
    history: Arc<dyn History>,
    keyword: Keyword,
    scope: Scope,
    rows: usize,
}

fn keyword_route(
    state: &AppState,
    keyword: Result<Path<KeywordPath>, PathRejection>,
    query: Option<String>,
    rows: &RowParam,
) -> Result<KeywordRoute, ApiError> {
    let keyword = path_keyword(keyword)?;
    let scope = scope_params(query.as_deref())?;
    let rows = rows.parse(query.as_deref())?;
    Ok(KeywordRoute {
        history: history(state)?,
        keyword,
        scope,
        rows: rows.get(),
    })
}

/// The `subreddits` (comma-separated; repeated parameters add up) and `window`
/// query parameters.
fn scope_params(query: Option<&str>) -> Result<Scope, ApiError> {
    let params: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let names: Vec<&str> = params
        .iter()
        .filter(|(key, _)| key == "subreddits")
        .flat_map(|(_, value)| value.split(','))
        .filter(|name| !name.is_empty())
        .collect();
    let window = match params.iter().rev().find(|(key, _)| key == "window") {
        Some((_, name)) => Window::parse(name)?,
        None => Window::default(),
    };
    Ok(Scope {
        subreddits: Subreddits::parse(&names)?,
        window,
    })
}

/// A row-count query parameter of the history routes: its name, default and bound
/// (the API description takes them from here too).
pub(crate) struct RowParam {
    pub name: &'static str,
    pub default: u32,
    pub max: u32,
}

pub(crate) const KEYWORDS_LIMIT: RowParam = RowParam {
    name: "limit",
    default: 20,
    max: 200,
};
pub(crate) const TREND_POINTS: RowParam = RowParam {
    name: "points",
    default: 100,
    max: 500,
};
pub(crate) const POSTS_LIMIT: RowParam = RowParam {
    name: "limit",
    default: 1000,
    max: 1000,
};

impl RowParam {
    fn parse(&self, query: Option<&str>) -> Result<RowLimit, ApiError> {
        let raw = int_param(query, self.name)?;
        Ok(RowLimit::parse(self.name, raw, self.default, self.max)?)
    }
}

fn history(state: &AppState) -> Result<Arc<dyn History>, ApiError> {
    match &*state.store.borrow() {
        StoreState::Connected(store) => Ok(Arc::clone(store) as Arc<dyn History>),
        StoreState::Connecting(_) => Err(ApiError::StoreUnavailable(
            "the store is still being connected".into(),
        )),
    }
}

/// The store's state for readiness: `ok`, or why it is not reachable. A store that
/// does not answer within a second counts as unreachable.
pub(crate) async fn store_status(state: &AppState) -> String {
    let store = match &*state.store.borrow() {
        StoreState::Connected(store) => Arc::clone(store),
        StoreState::Connecting(None) => return "unreachable: connecting".into(),
        StoreState::Connecting(Some(e)) => return format!("unreachable: {e}"),
    };
    match tokio::time::timeout(std::time::Duration::from_secs(1), store.check()).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("unreachable: {e}"),
        Err(_) => "unreachable: no answer within 1 s".into(),
    }
}

fn path_keyword(raw: Result<Path<KeywordPath>, PathRejection>) -> Result<Keyword, ApiError> {
    let Path(KeywordPath { keyword: raw }) = raw.map_err(|_| ApiError::WrongType {
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

    #[test]
    fn scope_parameters_name_the_subreddits_and_window() {
        assert_eq!(scope_params(None).unwrap(), Scope::unrestricted());
        let scope = scope_params(Some("subreddits=Stocks,wallstreetbets&window=week")).unwrap();
        assert_eq!(scope.subreddits.names(), ["stocks", "wallstreetbets"]);
        assert_eq!(scope.window, Window::Week);
        let repeated =
            scope_params(Some("subreddits=stocks&subreddits=investing&points=3")).unwrap();
        assert_eq!(repeated.subreddits.names(), ["investing", "stocks"]);
        let bad = |query| match scope_params(Some(query)).unwrap_err() {
            ApiError::Input(e) => e.field(),
            other => panic!("{query}: {other:?}"),
        };
        assert_eq!(bad("subreddits=a"), "subreddits");
        assert_eq!(bad("window=fortnight"), "window");
    }
}
