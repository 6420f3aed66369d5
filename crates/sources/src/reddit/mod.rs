//! The Reddit API as a [`PostSource`]: OAuth2 application-only, `/search` (or
//! `/r/a+b/search` for some subreddits) sorted by new, pages of 100 followed by their
//! `after` cursor, one shared rate budget.
//!
//! A time window is sent as `t`, but Reddit documents `t` for `/search` without saying
//! that it applies to `sort=new` (client libraries report that it only filters the
//! top and relevance listings). So the window is also applied here: posts older than
//! it are dropped, and paging stops at the first page that reaches past it (pages
//! come newest first).

mod auth;
mod config;
mod rate_limit;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use moodwire_core::ports::{CallBudget, Newer, PostSource, SourceError, WorkSlot};
use moodwire_core::{Post, PostsSource, Question, Subreddits};

pub use config::{ConfigError, RedditConfig, Secret, UserAgent};

use crate::parse_post_value;
use auth::TokenCache;
use rate_limit::{Exhausted, RateBudget};

/// The most items Reddit returns per page.
const PAGE_SIZE: usize = 100;

pub struct RedditSource {
    config: RedditConfig,
    http: reqwest::Client,
    tokens: TokenCache,
    /// This process's view of the app's budget (fast, corrected by Reddit's headers).
    budget: RateBudget,
    /// The budget every replica shares (Redis), when there are replicas to share with.
    shared_budget: Option<Arc<dyn CallBudget>>,
}

/// One page of search results as Reddit writes it.
#[derive(Deserialize)]
struct Listing {
    data: ListingData,
}

#[derive(Deserialize)]
struct ListingData {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    children: Vec<Thing>,
}

#[derive(Deserialize)]
struct Thing {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// One page of a search listing, read.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The submissions (`t3`) with an id, a timestamp and some text, in page order.
    pub posts: Vec<Post>,
    /// Submissions without an id, a timestamp or any text, skipped.
    pub unreadable: usize,
    /// Every item of the page, whatever its kind (0: the listing has ended).
    pub items: usize,
    /// The cursor to the next page; `None` on the last one.
    pub after: Option<String>,
}

/// Reads a search listing (`GET /search` answered 200). Untrusted input: anything
/// that is not a listing is an error, never a panic.
pub fn parse_search_page(body: &[u8]) -> Result<SearchPage, SourceError> {
    let listing: Listing = serde_json::from_slice(body).map_err(|e| {
        SourceError::BadResponse(format!("Reddit search returned no readable listing: {e}"))
    })?;
    let data = listing.data;
    let items = data.children.len();
    let mut posts = Vec::with_capacity(items);
    let mut unreadable = 0;
    for thing in data.children.into_iter().filter(|t| t.kind == "t3") {
        match parse_post_value(thing.data) {
            Ok(post) => posts.push(post),
            Err(_) => unreadable += 1,
        }
    }
    Ok(SearchPage {
        posts,
        unreadable,
        items,
        after: data.after.filter(|a| !a.is_empty()),
    })
}

/// What went wrong with one attempt at a page, and whether trying again may help.
enum Attempt {
    Retry(String),
    TokenRejected,
    Fail(SourceError),
}

impl RedditSource {
    pub fn new(config: RedditConfig) -> Result<Self, SourceError> {
        let calls_per_minute = config.calls_per_minute;
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.as_str())
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| SourceError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        if config.api_url.cannot_be_a_base() {
            return Err(SourceError::Unavailable(
                "REDDIT_API_URL cannot be a base URL".into(),
            ));
        }
        Ok(RedditSource {
            config,
            http,
            tokens: TokenCache::new(),
            budget: RateBudget::new(calls_per_minute),
            shared_budget: None,
        })
    }

    /// `/search`, or `/r/a+b/search` for a question limited to subreddits.
    fn search_url(&self, subreddits: &Subreddits) -> Url {
        let mut url = self.config.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            if !subreddits.is_all() {
                path.push("r").push(&subreddits.joined("+"));
            }
            path.push("search");
        }
        url
    }

    /// Counts calls in `budget` too, which every replica of the app shares: N replicas
    /// together stay within Reddit's budget.
    pub fn with_shared_budget(mut self, budget: Arc<dyn CallBudget>) -> Self {
        self.shared_budget = Some(budget);
        self
    }

    /// Takes one call from the shared budget; a budget that cannot be reached leaves
    /// only this process's own (which Reddit's headers keep honest).
    async fn take_shared(&self) -> Result<(), SourceError> {
        let Some(shared) = &self.shared_budget else {
            return Ok(());
        };
        match shared.take().await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => {
                metrics::counter!("moodwire_reddit_requests_total", "outcome" => "budget_spent")
                    .increment(1);
                Err(SourceError::RateLimited {
                    retry_after: Some(wait.max(Duration::from_secs(1))),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "the shared Reddit budget cannot be read; counting this process's calls only");
                Ok(())
            }
        }
    }

    /// Tells the shared budget what Reddit says is left.
    async fn observe_shared(&self, remaining: u32, reset: Duration) {
        if let Some(shared) = &self.shared_budget {
            if let Err(e) = shared.observe(remaining, reset).await {
                tracing::debug!(error = %e, "cannot update the shared Reddit budget");
            }
        }
    }

    /// Fetches a token now, so bad credentials are reported at start, not on the first request.
    pub async fn check_credentials(&self) -> Result<(), SourceError> {
        self.tokens
            .get(&self.http, &self.config, None)
            .await
            .map(drop)
    }

    /// Pages newest first until `limit` posts are found, the listing ends, a page
    /// reaches past the window, or (with `known`) a page holds a known post: what
    /// follows it is known already.
    async fn fetch(
        &self,
        question: &Question,
        known: Option<&HashSet<String>>,
    ) -> Result<Newer, SourceError> {
        let wanted = question.limit.get();
        let window_start = question.scope.window.start_from_now();
        let mut past_window = false;
        let mut posts = Vec::with_capacity(wanted);
        let mut seen = HashSet::new();
        let mut unreadable = 0usize;
        let mut after: Option<String> = None;
        let mut reached_known = false;
        let mut calls = 0u32;
        // Removed posts and duplicates can make pages come up short; a few extra pages
        // make up for them, and the cap stops a cursor that never ends.
        let max_pages = wanted.div_ceil(PAGE_SIZE) + 5;
        for _ in 0..max_pages {
            let page = self.page(question, after.as_deref()).await?;
            calls += 1;
            unreadable += page.unreadable;
            for post in page.posts {
                if known.is_some_and(|known| known.contains(&post.id)) {
                    reached_known = true;
                    break;
                }
                if window_start.is_some_and(|start| post.created_utc < start) {
                    past_window = true;
                    continue;
                }
                if question.scope.subreddits.admits(&post.subreddit) && seen.insert(post.id.clone())
                {
                    posts.push(post);
                }
            }
            after = page.after;
            if reached_known
                || past_window
                || posts.len() >= wanted
                || after.is_none()
                || page.items == 0
            {
                break;
            }
        }
        metrics::histogram!("moodwire_reddit_calls_per_search").record(f64::from(calls));
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "skipped Reddit items without an id, a timestamp or any text"
            );
            metrics::counter!("moodwire_reddit_items_skipped_total").increment(unreadable as u64);
        }
        tracing::info!(
            calls,
            posts = posts.len(),
            reached_known,
            past_window,
            "searched Reddit"
        );
        posts.truncate(wanted);
        posts.sort_by_key(|p| std::cmp::Reverse(p.created_utc));
        Ok(Newer {
            posts,
            reached_known,
        })
    }

    /// A whole search, bounded by the fetch timeout.
    async fn fetch_within(
        &self,
        question: &Question,
        known: Option<&HashSet<String>>,
    ) -> Result<Newer, SourceError> {
        let deadline = self.config.fetch_timeout;
        tokio::time::timeout(deadline, self.fetch(question, known))
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::Unavailable(format!(
                    "Reddit did not answer within {deadline:?}"
                )))
            })
    }

    /// One page, with a token refresh on 401 and bounded, jittered retries on 5xx and timeouts.
    async fn page(
        &self,
        question: &Question,
        after: Option<&str>,
    ) -> Result<SearchPage, SourceError> {
        let mut retries = 0;
        let mut rejected_token = None;
        loop {
            let token = self
                .tokens
                .get(&self.http, &self.config, rejected_token.as_ref())
                .await?;
            self.budget.acquire().map_err(|Exhausted(wait)| {
                metrics::counter!("moodwire_reddit_requests_total", "outcome" => "budget_spent")
                    .increment(1);
                SourceError::RateLimited {
                    retry_after: Some(wait),
                }
            })?;
            self.take_shared().await?;
            match self.attempt(&token, question, after).await {
                Ok(page) => return Ok(page),
                Err(Attempt::TokenRejected) if rejected_token.is_none() => {
                    rejected_token = Some(token);
                }
                Err(Attempt::TokenRejected) => {
                    return Err(SourceError::AuthFailed(
                        "Reddit rejected a fresh token: check the app's REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET".into(),
                    ))
                }
                Err(Attempt::Retry(why)) if retries < self.config.max_retries => {
                    retries += 1;
                    let wait = backoff(self.config.retry_base_delay, retries);
                    tracing::warn!(%why, retry = retries, ?wait, "Reddit search failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(Attempt::Retry(why)) => {
                    return Err(SourceError::Unavailable(format!(
                        "Reddit search failed {} times; last: {why}",
                        retries + 1
                    )))
                }
                Err(Attempt::Fail(error)) => return Err(error),
            }
        }
    }

    async fn attempt(
        &self,
        token: &Secret,
        question: &Question,
        after: Option<&str>,
    ) -> Result<SearchPage, Attempt> {
        let page_size = PAGE_SIZE.to_string();
        let scope = &question.scope;
        let restrict_sr = if scope.subreddits.is_all() {
            "false"
        } else {
            "1"
        };
        let mut query = vec![
            ("q", question.keyword.as_str()),
            ("sort", "new"),
            ("limit", page_size.as_str()),
            ("type", "link"),
            ("restrict_sr", restrict_sr),
            ("t", scope.window.as_str()),
            ("raw_json", "1"),
        ];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let sent = self
            .http
            .get(self.search_url(&scope.subreddits))
            .query(&query)
            .bearer_auth(token.expose())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                count("network_error");
                return Err(Attempt::Retry(format!("request failed: {e}")));
            }
        };
        if let Some((remaining, reset)) = self.budget.observe(response.headers()) {
            self.observe_shared(remaining, reset).await;
        }
        let status = response.status();
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                count("unauthorized");
                return Err(Attempt::TokenRejected);
            }
            StatusCode::TOO_MANY_REQUESTS => {
                count("rate_limited");
                let wait = retry_after(response.headers()).unwrap_or(rate_limit::WINDOW);
                self.budget.exhaust_for(wait);
                self.observe_shared(0, wait).await;
                return Err(Attempt::Fail(SourceError::RateLimited {
                    retry_after: Some(wait),
                }));
            }
            s if s.is_server_error() => {
                count("server_error");
                return Err(Attempt::Retry(format!("Reddit answered {s}")));
            }
            s => {
                count("unexpected_status");
                return Err(Attempt::Fail(SourceError::BadResponse(format!(
                    "Reddit search answered {s}"
                ))));
            }
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                count("network_error");
                return Err(Attempt::Retry(format!("the response broke off: {e}")));
            }
        };
        count("ok");
        parse_search_page(&body).map_err(Attempt::Fail)
    }
}

#[async_trait]
impl PostSource for RedditSource {
    fn kind(&self) -> PostsSource {
        PostsSource::Reddit
    }

    async fn search(&self, question: &Question, _: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        Ok(self.fetch_within(question, None).await?.posts)
    }

    fn searches_newer(&self) -> bool {
        true
    }

    /// Search is `sort=new`: pages come newest first, so paging stops at the first
    /// page that reaches a post of an earlier answer. A refresh with nothing new costs
    /// one call.
    async fn search_newer(
        &self,
        question: &Question,
        known: &HashSet<String>,
        _: &WorkSlot,
    ) -> Result<Option<Newer>, SourceError> {
        self.fetch_within(question, Some(known)).await.map(Some)
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("moodwire_reddit_requests_total", "outcome" => outcome).increment(1);
}

/// How long a 429 asks us to wait: `Retry-After`, else `X-Ratelimit-Reset`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    ["retry-after", "x-ratelimit-reset"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.clamp(1.0, 3600.0)))
        })
}

/// Exponential backoff with jitter in [50 %, 100 %], so retrying replicas spread out.
fn backoff(base: Duration, retry: u32) -> Duration {
    let full = base.saturating_mul(1 << retry.saturating_sub(1).min(10));
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(100);
        for retry in 1..=4 {
            let full = base * (1 << (retry - 1));
            let wait = backoff(base, retry);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
    }

    #[test]
    fn retry_after_prefers_the_standard_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-reset", "30".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&Default::default()), None);
    }
}
