//! The edges of the domain. Each port has an embedded default adapter and a
//! real-infrastructure adapter (see DESIGN.md); the domain only sees these traits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::history::{AnalysisPosts, AnalysisSummary, KeywordMood};
use crate::{
    Analysis, AnalysisRecorded, Keyword, Limit, Post, PostsSource, Prediction, Question, Scope,
};

/// Why texts could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The work queued ahead would keep this request waiting too long: retry after
    /// `retry_after`, the expected time for the queue to drain.
    #[error("the classifier is overloaded ({queued_tokens} tokens queued, about {} s of work); retry shortly", retry_after.as_secs())]
    Overloaded {
        queued_tokens: usize,
        retry_after: Duration,
    },
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

/// One analysis's place among those computed at once. It is given back when the
/// last clone is dropped: work that can outlive its caller (a blocking dump scan
/// that is told to stop but needs a moment to notice) keeps a clone, so an abandoned
/// request holds its place until its work has really stopped.
#[derive(Clone)]
pub struct WorkSlot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

impl WorkSlot {
    pub fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        WorkSlot(Arc::new(permit))
    }

    /// A slot of no bound, for callers that bound nothing (tools, tests).
    pub fn unbounded() -> Self {
        let permit = Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .expect("a fresh semaphore has a permit");
        WorkSlot::new(permit)
    }
}

/// Calls to an upstream API that every replica shares (Reddit allows 100 a minute per
/// app, however many processes use the app), counted where all replicas see them.
#[async_trait]
pub trait CallBudget: Send + Sync {
    /// Takes one call: `Ok(None)` when taken, `Ok(Some(wait))` when the budget is
    /// spent for `wait` (the call must not be made).
    async fn take(&self) -> Result<Option<Duration>, CacheError>;
    /// Adopts what the upstream says is left: `remaining` calls until `reset`.
    async fn observe(&self, remaining: u32, reset: Duration) -> Result<(), CacheError>;
}

/// What a source found newer than the posts an earlier answer had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    /// Posts not among the known ones, newest first.
    pub posts: Vec<Post>,
    /// Whether paging stopped at a known post (so everything older is known); `false`
    /// when every post fetched was new, which makes `posts` a full answer of its own.
    pub reached_known: bool,
}

/// Finds recent posts about a keyword.
#[async_trait]
pub trait PostSource: Send + Sync {
    fn kind(&self) -> PostsSource;

    /// Up to `question.limit` posts matching its keyword within its scope, newest
    /// first. A live source measures the scope's window back from now; a snapshot (the
    /// sample corpus, a dump) from the newest post it holds. Work that may go on after
    /// the caller has gone keeps a clone of `slot` until it has stopped.
    async fn search(&self, question: &Question, slot: &WorkSlot) -> Result<Vec<Post>, SourceError>;

    /// Whether [`PostSource::search_newer`] can stop early (the service keeps the
    /// keywords' known posts only for such a source).
    fn searches_newer(&self) -> bool {
        false
    }

    /// The posts newer than `known` (ids of an earlier answer), fetching no further
    /// than the first page that reaches one of them: a refresh costs a call or two
    /// instead of every page. `None` from a source that gains nothing by it (a local
    /// one, searched whole in milliseconds): the caller searches in full.
    async fn search_newer(
        &self,
        _question: &Question,
        _known: &std::collections::HashSet<String>,
        _slot: &WorkSlot,
    ) -> Result<Option<Newer>, SourceError> {
        Ok(None)
    }
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

    /// Claims, for at most `ttl`, the right to compute `key` among every process that
    /// shares this cache: `true` when this caller should compute it, `false` when
    /// another process is computing it now. A cache of one process always grants it
    /// (the service's own single flight covers one process).
    async fn claim(&self, _key: &str, _ttl: Duration) -> Result<bool, CacheError> {
        Ok(true)
    }

    /// Gives back a claim made by this process (its result is in the cache, or it failed).
    async fn release(&self, _key: &str) -> Result<(), CacheError> {
        Ok(())
    }

    /// Counts one question about `keyword` (normalized), answered from the cache or not:
    /// the popularity the warmer reads back with [`ResultCache::top_queried`].
    async fn count_query(&self, keyword: &str) -> Result<(), CacheError>;

    /// The most-queried keywords (normalized) with their counts, most first.
    async fn top_queried(&self, n: usize) -> Result<Vec<(String, u64)>, CacheError>;

    /// The posts (with their predictions) of the keyword's latest answers, kept beside
    /// the results under `key` ([`known_posts_key`]) for refreshes. A cache that keeps
    /// none (the default) makes every refresh a full search.
    async fn known_posts(&self, _key: &str) -> Result<Option<KnownPosts>, CacheError> {
        Ok(None)
    }
    async fn put_known_posts(&self, _key: &str, _known: &KnownPosts) -> Result<(), CacheError> {
        Ok(())
    }

    /// A page of about `count` cached analyses, for recovery: start at cursor 0; a
    /// returned cursor of 0 means the scan is complete. Entries may show up twice.
    async fn scan(&self, cursor: u64, count: usize) -> Result<(u64, Vec<Analysis>), CacheError>;
}

/// The six probabilities the model gave one post's text, in [`crate::Emotion`] order.
pub type Probabilities = [f32; crate::Emotion::COUNT];

/// Remembers what the model said about each post, so a post is classified once: a
/// refresh of a keyword, an overlapping keyword and the warmer find most of their posts
/// here. Keyed by [`prediction_key`]. A failure never fails a request: callers log it
/// and classify.
#[async_trait]
pub trait PredictionCache: Send + Sync {
    /// The stored probabilities of each key, in order (`None`: not known).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Probabilities>>, CacheError>;
    async fn put_many(&self, entries: &[(String, Probabilities)]) -> Result<(), CacheError>;
}

/// The key of a post's prediction: the model version, the source's post id and a
/// digest of the text as classified, so an edited post or another model is a miss.
pub fn prediction_key(model_version: &str, post_id: &str, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{model_version}:{post_id}:{hex}")
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
    /// Entries that could not be decoded. The sync moves them to the store's dead
    /// letters and commits them with the batch, so one bad entry cannot stall the log
    /// and none is skipped silently.
    pub unreadable: Vec<DeadLetter>,
    pub position: LogPosition,
}

impl EventBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.unreadable.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len() + self.unreadable.len()
    }
}

/// An event the store cannot take: kept, with why, where it was read and when, so an
/// operator can look at it and replay it after a fix (`moodwire sync --dead-letters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The analysis, when the event could be read at all.
    pub analysis_id: Option<String>,
    /// The event as it was in the log.
    pub payload: Vec<u8>,
    /// Why it was refused.
    pub error: String,
    /// Where it was read, e.g. `journal seq 12` or `kafka moodwire.analyses/0@15`.
    pub origin: String,
}

impl DeadLetter {
    /// An event the store refused.
    pub fn refused(event: &AnalysisRecorded, error: &StoreError, origin: &str) -> Self {
        DeadLetter {
            // Kept as text beside the payload: the very bytes that made the event
            // poison must not make its dead letter poison too.
            analysis_id: Some(crate::strip_controls(event.analysis.id.clone())),
            payload: event.to_json(),
            error: error.to_string(),
            origin: origin.to_string(),
        }
    }
}

/// A dead letter as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    /// Stable for one payload (a digest of it): dead-lettering an event twice keeps one.
    pub id: String,
    pub letter: DeadLetter,
    pub dead_at: chrono::DateTime<chrono::Utc>,
    /// How many times it was tried (the first refusal and every replay since).
    pub attempts: u32,
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

/// Events waiting in the log for the store, as the sync last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub events: u64,
    /// How long the oldest of them has waited (zero when none waits; `None` until the
    /// sync has looked).
    pub oldest_age: Option<Duration>,
}

/// Why the store could not do something. The two kinds call for opposite handling:
/// retry the one, set the data aside for the other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached, or did not answer in time: retrying later can work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused the data itself (its encoding, a constraint, a value too
    /// long): the same data is refused again, whatever the retry.
    #[error("the store refused the data: {0}")]
    Rejected(String),
}

impl StoreError {
    /// Whether the same request can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Rejected(_))
    }
}

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
    /// The `max` keywords with the most stored analyses, each with its latest one: one
    /// entry per keyword and scope asked.
    async fn keyword_moods(&self, max: usize) -> Result<Vec<KeywordMood>, StoreError>;
    /// The latest `points` analyses of `keyword` in exactly `scope` (a scoped analysis
    /// never mixes into the unrestricted trend, nor one scope into another), oldest first.
    async fn trend(
        &self,
        keyword: &Keyword,
        scope: &Scope,
        points: usize,
    ) -> Result<Vec<AnalysisSummary>, StoreError>;
    /// Up to `max` posts of the latest analysis of `keyword` in exactly `scope` that has
    /// its posts (not one rebuilt by recovery), least confident first; `None` when
    /// there is none.
    async fn scored_posts(
        &self,
        keyword: &Keyword,
        scope: &Scope,
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
    /// Keeps events the store refused (idempotent: one payload is kept once, and its
    /// attempts counted).
    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError>;
    /// Up to `max` dead letters, oldest first.
    async fn dead_letters(&self, max: usize) -> Result<Vec<StoredDeadLetter>, StoreError>;
    /// Forgets dead letters (replayed into the store).
    async fn forget_dead_letters(&self, ids: &[String]) -> Result<(), StoreError>;
}

/// The posts a keyword's latest answers were made of, newest first, each with its
/// prediction, as events carry them; and when the source was last searched in full.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KnownPosts {
    pub full_search_at: chrono::DateTime<chrono::Utc>,
    /// That full search found every post there was (fewer than it asked for), so the
    /// list answers any limit.
    pub complete: bool,
    pub posts: Vec<crate::ClassifiedPost>,
}

impl KnownPosts {
    /// The most posts kept for a keyword: the largest `limit`.
    pub const MAX_POSTS: usize = Limit::MAX as usize;
}

/// Where a question's known posts are kept: one list per model, keyword and scope,
/// whatever the limit.
pub fn known_posts_key(model_version: &str, question: &Question) -> String {
    let scope = question.scope.key();
    format!(
        "known:{model_version}{scope}:{}",
        question.keyword.normalized()
    )
}

/// The cache key of a question: model version + limit + scope (sorted subreddits and
/// window; nothing for an unrestricted question) + normalized keyword.
///
/// `return_plot` and `examples` are not part of it: both are rendered from the cached
/// analysis.
pub fn cache_key(model_version: &str, question: &Question) -> String {
    let (limit, scope) = (question.limit.get(), question.scope.key());
    format!(
        "{model_version}:{limit}{scope}:{}",
        question.keyword.normalized()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_ignores_keyword_case_and_spacing_but_not_limit_or_model() {
        let k = |s| Keyword::parse(s).unwrap();
        let l = |n| Limit::parse(n).unwrap();
        let cache_key = |model, keyword: &Keyword, limit| {
            cache_key(model, &Question::new(keyword.clone(), limit))
        };
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

    #[test]
    fn cache_key_holds_the_scope_sorted() {
        use crate::{Scope, Subreddits, Window};
        let question = |names: &[&str], window| {
            let keyword = Keyword::parse("Tesla").unwrap();
            Question::new(keyword, Limit::DEFAULT).within(Scope {
                subreddits: Subreddits::parse(names).unwrap(),
                window,
            })
        };
        let key = |names, window| cache_key("m1", &question(names, window));
        assert_eq!(
            key(&["stocks", "WallStreetBets"], Window::Week),
            key(&["wallstreetbets", "Stocks"], Window::Week)
        );
        assert_eq!(
            key(&["stocks", "wallstreetbets"], Window::Week),
            "m1:250/r=stocks+wallstreetbets/t=week:tesla"
        );
        assert_ne!(
            key(&["stocks"], Window::Week),
            key(&["stocks"], Window::Day)
        );
        assert_ne!(key(&["stocks"], Window::All), key(&[], Window::All));
        assert_eq!(
            key(&[], Window::All),
            "m1:250:tesla",
            "unrestricted keys are unchanged"
        );
        // A keyword that looks like a scope does not make an unrestricted key a scoped one.
        let lookalike = Keyword::parse("/r=stocks/t=week:tesla").unwrap();
        let lookalike = cache_key("m1", &Question::new(lookalike, Limit::DEFAULT));
        assert_ne!(lookalike, key(&["stocks"], Window::Week));
        let known = |names, window| known_posts_key("m1", &question(names, window));
        assert_ne!(known(&["stocks"], Window::All), known(&[], Window::All));
    }
}
