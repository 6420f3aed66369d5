//! Events flattened into the store's rows, shared by the PostgreSQL and SQLite adapters.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use moodwire_core::{AnalysisRecorded, Emotion, PostsSource, Scope};

pub(crate) struct KeywordRow {
    pub keyword: String,
    pub display: String,
    pub first_analyzed_at: DateTime<Utc>,
    pub last_analyzed_at: DateTime<Utc>,
}

pub(crate) struct AnalysisRow {
    pub analysis_id: String,
    pub keyword: String,
    pub display: String,
    pub post_limit: i32,
    /// The scope's subreddits, lowercase, sorted and `+`-joined; empty: all of Reddit.
    pub subreddits: String,
    pub time_window: &'static str,
    pub post_count: i32,
    pub model_version: String,
    pub posts_source: &'static str,
    pub analyzed_at: DateTime<Utc>,
    pub fetch_ms: f64,
    pub inference_ms: f64,
    pub recovered: bool,
}

pub(crate) struct EmotionRow {
    pub analysis_id: String,
    pub label: &'static str,
    pub post_count: i32,
    pub pct: f64,
    pub avg_score: f64,
}

pub(crate) struct PostRow {
    pub post_id: String,
    pub source: &'static str,
    pub subreddit: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub title: String,
    pub body: String,
    pub score: i64,
    pub permalink: String,
}

pub(crate) struct PredictionRow {
    pub analysis_id: String,
    pub post_id: String,
    pub label: &'static str,
    pub score: f64,
    /// Indexed by [`Emotion::index`].
    pub probabilities: [f64; Emotion::COUNT],
}

/// All rows of a batch of events. Keywords and posts appear once each (a multi-row
/// upsert may not touch one row twice); events without an id are left out.
#[derive(Default)]
pub(crate) struct Rows {
    pub keywords: Vec<KeywordRow>,
    pub analyses: Vec<AnalysisRow>,
    pub emotions: Vec<EmotionRow>,
    pub posts: Vec<PostRow>,
    pub predictions: Vec<PredictionRow>,
}

/// Between the names of a scope's subreddits in `analyses.subreddits` (Reddit's
/// multireddit form, `stocks+wallstreetbets`; empty: all of Reddit).
pub(crate) const SUBREDDIT_SEPARATOR: &str = "+";

/// A scope's subreddits as `analyses.subreddits` holds them.
pub(crate) fn subreddits_column(scope: &Scope) -> String {
    scope.subreddits.joined(SUBREDDIT_SEPARATOR)
}

pub(crate) fn source_name(source: PostsSource) -> &'static str {
    match source {
        PostsSource::Reddit => "reddit",
        PostsSource::Sample => "sample",
        PostsSource::Dump => "dump",
    }
}

impl Rows {
    pub fn from_events(events: &[AnalysisRecorded]) -> Rows {
        let mut rows = Rows::default();
        let mut keywords: BTreeMap<String, KeywordRow> = BTreeMap::new();
        let mut seen_analyses = HashSet::new();
        let mut seen_posts = HashSet::new();
        for event in events {
            let a = &event.analysis;
            if a.id.is_empty() || !seen_analyses.insert(a.id.clone()) {
                continue;
            }
            let keyword = event.keyword_key();
            let entry = keywords.entry(keyword.clone()).or_insert(KeywordRow {
                keyword: keyword.clone(),
                display: a.keyword.clone(),
                first_analyzed_at: a.analyzed_at,
                last_analyzed_at: a.analyzed_at,
            });
            entry.first_analyzed_at = entry.first_analyzed_at.min(a.analyzed_at);
            if a.analyzed_at >= entry.last_analyzed_at {
                entry.last_analyzed_at = a.analyzed_at;
                entry.display = a.keyword.clone();
            }
            let source = source_name(a.posts_source);
            rows.analyses.push(AnalysisRow {
                analysis_id: a.id.clone(),
                keyword,
                display: a.keyword.clone(),
                post_limit: a.limit as i32,
                subreddits: subreddits_column(&a.scope),
                time_window: a.scope.window.as_str(),
                post_count: a.count as i32,
                model_version: a.model.clone(),
                posts_source: source,
                analyzed_at: a.analyzed_at,
                fetch_ms: event.timings.fetch_ms,
                inference_ms: event.timings.inference_ms,
                recovered: event.recovered,
            });
            rows.emotions.extend(a.agg.iter().map(|share| EmotionRow {
                analysis_id: a.id.clone(),
                label: share.label.as_str(),
                post_count: share.count as i32,
                pct: share.pct,
                avg_score: share.avg_score,
            }));
            let mut posts_of_analysis = HashSet::new();
            for classified in &event.posts {
                let post = &classified.post;
                if !posts_of_analysis.insert(post.id.as_str()) {
                    continue;
                }
                if seen_posts.insert(post.id.clone()) {
                    rows.posts.push(PostRow {
                        post_id: post.id.clone(),
                        source,
                        subreddit: post.subreddit.clone(),
                        author: post.author.clone(),
                        created_at: DateTime::from_timestamp(post.created_utc, 0)
                            .unwrap_or_default(),
                        title: post.title.clone(),
                        body: post.selftext.clone(),
                        score: post.score,
                        permalink: post.permalink.clone(),
                    });
                }
                let p = &classified.prediction;
                rows.predictions.push(PredictionRow {
                    analysis_id: a.id.clone(),
                    post_id: post.id.clone(),
                    label: p.label.as_str(),
                    score: f64::from(p.score),
                    probabilities: p.probabilities.map(f64::from),
                });
            }
        }
        rows.keywords = keywords.into_values().collect();
        rows
    }

    /// Analyses per keyword among `inserted` (ids of analyses new to the store).
    pub fn new_analyses_per_keyword(&self, inserted: &HashSet<String>) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for a in self
            .analyses
            .iter()
            .filter(|a| inserted.contains(&a.analysis_id))
        {
            *counts.entry(a.keyword.clone()).or_insert(0) += 1;
        }
        counts
    }
}
