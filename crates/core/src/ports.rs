//! The edges of the domain. Each port has an embedded default adapter and a
//! real-infrastructure adapter (see DESIGN.md); the domain only sees these traits.

use std::time::Duration;

use async_trait::async_trait;

use crate::history::{AnalysisPosts, AnalysisSummary, KeywordMood};
use crate::{Analysis, AnalysisRecorded, Keyword, Limit, Post, PostsSource, Prediction};

/// Why texts could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The inference queue is full: the caller should retry later.
    #[error("the classifier is overloaded ({queued_tokens} tokens queued); retry shortly")]
    Overloaded { queued_tokens: usize },
    /// The caller went away or the process is shutting down.
    #[error("classification was cancelled")]
    Cancelled,
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Turns texts into emotion predictions.
#[async_trait]
pub trait Classifier: Send + Sync {
    /// Identifies the model that made the predictions (part of every cache key).
    fn model_version(&self) -> &str;

    /// One prediction per text, in the order given.
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError>;
}

/// Why posts could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The upstream rate limit is spent; `retry_after` when the upstream says.
    #[error("the post source is rate limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the post source is unavailable: {0}")]
    Unavailable(String),
    #[error("the post source answered with something unreadable: {0}")]
    BadResponse(String),
    /// The upstream refused our credentials: a configuration problem, not a transient one.
    #[error("the post source rejected our credentials: {0}")]
    AuthFailed(String),
}

/// Finds recent posts about a keyword.
#[async_trait]
pub trait PostSource: Send + Sync {
    fn kind(&self) -> PostsSource;

    /// Up to `limit` posts matching `keyword`, newest first.
    async fn search(&self, keyword: &Keyword, limit: Limit) -> Result<Vec<Post>, SourceError>;
}

#[derive(Debug, thiserror::Error)]
#[error("cache error: {0}")]
pub struct CacheError(pub String);

/// Keeps computed analyses for a while, keyed by [`cache_key`].
///
/// A cache failure never fails a request: callers log it and take the miss path.
#[async_trait]
pub trait ResultCache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError>;
    async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError>;

    /// Whether the cache answers now (for readiness). In-process caches always do.
    async fn check(&self) -> Result<(), CacheError> {
        Ok(())
    }

    /// Counts one question about `keyword` (normalized), answered from the cache or not:
    /// the popularity the warmer reads back with [`ResultCache::top_queried`].
    async fn count_query(&self, keyword: &str) -> Result<(), CacheError>;

    /// The most-queried keywords (normalized) with their counts, most first.
    async fn top_queried(&self, n: usize) -> Result<Vec<(String, u64)>, CacheError>;

    /// A page of about `count` cached analyses, for recovery: start at cursor 0; a
    /// returned cursor of 0 means the scan is complete. Entries may show up twice.
    async fn scan(&self, cursor: u64, count: usize) -> Result<(u64, Vec<Analysis>), CacheError>;
}

#[derive(Debug, thiserror::Error)]
#[error("event log error: {0}")]
pub struct EventLogError(pub String);

/// Where computed analyses are appended for the store (Kafka, or a local journal).
///
/// An append is durable when it returns: the event survives a crash of this process.
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn append(&self, event: &AnalysisRecorded) -> Result<(), EventLogError>;
}

/// A position in the log to commit once a batch is safely stored: for each
/// partition, the offset of the next event to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPosition(pub Vec<(i32, i64)>);

/// Events read from the log but not yet committed.
#[derive(Debug, Default)]
pub struct EventBatch {
    pub events: Vec<AnalysisRecorded>,
    /// Entries that could not be decoded: logged by the reader, counted by the sync, and
    /// committed with the batch so one bad entry cannot stall the log.
    pub rejected: usize,
    pub position: LogPosition,
}

impl EventBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejected == 0
    }
}

/// One reader of the event log (a consumer-group member for Kafka). Delivery is
/// at-least-once: what is not committed is read again, by this reader or another.
#[async_trait]
pub trait EventFeed: Send {
    /// Up to `max` events; waits at most `wait` for the first one.
    async fn next_batch(&mut self, max: usize, wait: Duration)
        -> Result<EventBatch, EventLogError>;
    /// Marks everything up to the batch as done (only after it is stored).
    async fn commit(&mut self, position: &LogPosition) -> Result<(), EventLogError>;
    /// Goes back to the last commit, so a batch that could not be stored is read again.
    async fn rewind(&mut self) -> Result<(), EventLogError>;
    /// Events appended but not yet committed, when the log can tell.
    async fn backlog(&mut self) -> Result<u64, EventLogError>;
}

#[derive(Debug, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(pub String);

/// What saving a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Analyses new to the store (the others were already there: redelivery).
    pub inserted: usize,
    pub already_stored: usize,
}

/// Reads of the stored history, for the dashboard.
#[async_trait]
pub trait History: Send + Sync {
    /// The `max` keywords with the most stored analyses, each with its latest one.
    async fn keyword_moods(&self, max: usize) -> Result<Vec<KeywordMood>, StoreError>;
    /// The latest `points` analyses of `keyword`, oldest first.
    async fn trend(
        &self,
        keyword: &Keyword,
        points: usize,
    ) -> Result<Vec<AnalysisSummary>, StoreError>;
    /// Up to `max` posts of the latest analysis of `keyword` that has its posts (not
    /// one rebuilt by recovery), least confident first; `None` when there is none.
    async fn scored_posts(
        &self,
        keyword: &Keyword,
        max: usize,
    ) -> Result<Option<AnalysisPosts>, StoreError>;
}

/// The history of every computed analysis (PostgreSQL, or a SQLite file).
#[async_trait]
pub trait Store: History {
    /// Saves the events in one transaction. Idempotent: saving an event twice changes
    /// nothing the second time.
    async fn save(&self, events: &[AnalysisRecorded]) -> Result<SaveReport, StoreError>;
    /// Which of these analysis ids the store does not have.
    async fn missing(&self, analysis_ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// The keywords (normalized) with the most analyses, most first.
    async fn top_keywords(&self, n: usize) -> Result<Vec<String>, StoreError>;
    /// Texts of stored posts created in `[since, until)` (Unix seconds), newest first.
    async fn post_texts(
        &self,
        since: i64,
        until: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Whether the store answers now (for readiness).
    async fn check(&self) -> Result<(), StoreError>;
}

/// The cache key of a question: model version + normalized keyword + limit.
///
/// `return_plot` is not part of it: the plot is rendered from the cached analysis.
pub fn cache_key(model_version: &str, keyword: &Keyword, limit: Limit) -> String {
    format!("{model_version}:{}:{}", limit.get(), keyword.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_ignores_keyword_case_and_spacing_but_not_limit_or_model() {
        let k = |s| Keyword::parse(s).unwrap();
        let l = |n| Limit::parse(n).unwrap();
        assert_eq!(
            cache_key("m1", &k(" AI "), l(10)),
            cache_key("m1", &k("ai"), l(10))
        );
        assert_ne!(
            cache_key("m1", &k("ai"), l(10)),
            cache_key("m1", &k("ai"), l(11))
        );
        assert_ne!(
            cache_key("m1", &k("ai"), l(10)),
            cache_key("m2", &k("ai"), l(10))
        );
    }
}
