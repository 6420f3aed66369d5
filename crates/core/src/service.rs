//! The request path: cache -> single-flight -> source -> classifier -> aggregation -> cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::OnceCell;

use crate::ports::{
    cache_key, known_posts_key, prediction_key, Classifier, ClassifyError, EventLog, EventLogError,
    KnownPosts, PostSource, PredictionCache, Probabilities, ResultCache, SourceError, WorkSlot,
};
use crate::{
    aggregate, top_examples, Analysis, AnalysisRecorded, ClassifiedPost, Keyword, Limit,
    Prediction, Question, Timings, MAX_EVENT_BYTES,
};

/// Why an analysis could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Source(Arc<SourceError>),
    #[error(transparent)]
    Classify(Arc<ClassifyError>),
    /// As many new analyses as allowed are being computed: retry shortly. Bounding
    /// them bounds the fetches in flight and the posts they hold, not only inference.
    #[error("{limit} analyses are being computed already; retry shortly")]
    Busy { limit: usize },
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Cache,
    Inference,
}

type Flight = Arc<OnceCell<Result<Arc<Analysis>, AnalyzeError>>>;
type Flights = Mutex<HashMap<String, Flight>>;

/// A caller's place in a flight. Leaving removes the flight from the table once
/// it has landed, or when nobody else waits on it (its caller went away), so
/// abandoned keys never pile up.
struct FlightTicket<'a> {
    flights: &'a Flights,
    key: String,
    flight: Flight,
}

impl Drop for FlightTicket<'_> {
    fn drop(&mut self) {
        let mut flights = lock(self.flights);
        let ours = flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight));
        // Joining clones under this lock, so the count cannot grow while we look:
        // two references are the table's and ours.
        if ours && (self.flight.initialized() || Arc::strong_count(&self.flight) <= 2) {
            flights.remove(&self.key);
        }
    }
}

/// The flight table's lock. A panic while holding it cannot leave the map
/// inconsistent (every operation is a single insert or remove), so poisoning is ignored.
fn lock(flights: &Flights) -> std::sync::MutexGuard<'_, HashMap<String, Flight>> {
    flights
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lets a repeating failure through to the log at most once per interval (with how
/// many were held back), so an outage of a dependency does not flood the log.
struct LogThrottle {
    started: Instant,
    interval: Duration,
    /// Milliseconds after `started` of the last line logged; `u64::MAX`: none yet.
    last_logged_ms: AtomicU64,
    held_back: AtomicU64,
}

impl LogThrottle {
    fn new(interval: Duration) -> Self {
        LogThrottle {
            started: Instant::now(),
            interval,
            last_logged_ms: AtomicU64::new(u64::MAX),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` when this failure should be logged.
    fn admit(&self) -> Option<u64> {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= self.interval.as_millis() as u64;
        if due
            && self
                .last_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Answers "what are the emotions about this keyword?" with cache-aside and
/// single-flight: concurrent misses for one key share one fetch and one inference.
pub struct AnalysisService {
    source: Arc<dyn PostSource>,
    classifier: Arc<dyn Classifier>,
    cache: Arc<dyn ResultCache>,
    /// What the model said about posts already seen; `None`: every post is classified.
    predictions: Option<Arc<dyn PredictionCache>>,
    recorder: Arc<Recorder>,
    in_flight: Flights,
    /// Slots for analyses computed at once (cache hits and single-flight followers
    /// take none).
    computing: Arc<tokio::sync::Semaphore>,
    max_computing: usize,
    /// How long to wait for another process computing the same question.
    follow_for: Duration,
    /// How long a keyword's answers may be refreshed from its known posts before the
    /// source is searched in full again (deleted posts drop out, edits are seen).
    full_refresh: Duration,
    cache_failures: LogThrottle,
}

/// Puts a computed analysis where it must go: the event log, then the cache. Once
/// inference is done this work is not given up when the caller goes away: an event
/// appended but not counted (or not cached, so computed again) would unbalance the
/// books of appended against stored analyses.
struct Recorder {
    events: Arc<dyn EventLog>,
    cache: Arc<dyn ResultCache>,
    event_failures: LogThrottle,
    cache_failures: LogThrottle,
    /// Why the last append to the event log failed; `None` once one succeeds again.
    event_log_failure: Mutex<Option<String>>,
}

impl AnalysisService {
    /// Default bound on analyses computed at once (see [`Self::with_max_computing`]).
    pub const DEFAULT_MAX_COMPUTING: usize = 32;
    /// How long a claim on computing a question holds: longer than any analysis takes.
    const CLAIM_TTL: Duration = Duration::from_secs(60);
    /// How often a follower looks for the claim holder's result.
    const FOLLOW_POLL: Duration = Duration::from_millis(50);
    /// Default of [`Self::with_follow_for`]: within a request's 30 s.
    pub const DEFAULT_FOLLOW_FOR: Duration = Duration::from_secs(20);
    /// Default of [`Self::with_full_refresh`]: six hours, so the hourly warmer makes
    /// five refreshes from known posts for one full search.
    pub const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(6 * 3600);

    pub fn new(
        source: Arc<dyn PostSource>,
        classifier: Arc<dyn Classifier>,
        cache: Arc<dyn ResultCache>,
        events: Arc<dyn EventLog>,
    ) -> Self {
        let recorder = Arc::new(Recorder {
            events,
            cache: Arc::clone(&cache),
            event_failures: LogThrottle::new(Duration::from_secs(10)),
            cache_failures: LogThrottle::new(Duration::from_secs(10)),
            event_log_failure: Mutex::new(None),
        });
        AnalysisService {
            source,
            classifier,
            cache,
            predictions: None,
            recorder,
            in_flight: Mutex::new(HashMap::new()),
            computing: Arc::new(tokio::sync::Semaphore::new(Self::DEFAULT_MAX_COMPUTING)),
            max_computing: Self::DEFAULT_MAX_COMPUTING,
            follow_for: Self::DEFAULT_FOLLOW_FOR,
            full_refresh: Self::DEFAULT_FULL_REFRESH,
            cache_failures: LogThrottle::new(Duration::from_secs(10)),
        }
    }

    /// At most `max` new analyses computed at once; one more is refused at once
    /// ([`AnalyzeError::Busy`]) rather than queued.
    pub fn with_max_computing(mut self, max: usize) -> Self {
        let max = max.max(1);
        self.computing = Arc::new(tokio::sync::Semaphore::new(max));
        self.max_computing = max;
        self
    }

    /// How long a question another process is computing is waited for (then computed
    /// here): a replica that died holding its claim costs its followers this much.
    pub fn with_follow_for(mut self, follow_for: Duration) -> Self {
        self.follow_for = follow_for;
        self
    }

    /// A keyword is searched in full at least this often; in between, a refresh fetches
    /// only what is newer than its known posts.
    pub fn with_full_refresh(mut self, full_refresh: Duration) -> Self {
        self.full_refresh = full_refresh;
        self
    }

    /// Classifies only the posts `predictions` does not know (and each distinct text
    /// once), and keeps what it classifies there.
    pub fn with_prediction_cache(mut self, predictions: Arc<dyn PredictionCache>) -> Self {
        self.predictions = Some(predictions);
        self
    }

    pub fn model_version(&self) -> &str {
        self.classifier.model_version()
    }

    pub async fn analyze(
        &self,
        question: &Question,
    ) -> Result<(Arc<Analysis>, Served), AnalyzeError> {
        if let Some(hit) = self.answer_from_cache(question).await {
            return Ok((hit, Served::Cache));
        }
        let computed = self.refresh(question).await?;
        Ok((computed, Served::Inference))
    }

    /// The first half of [`Self::analyze`]: the cached answer, if any, with the
    /// question counted. A caller that runs the second half ([`Self::refresh`])
    /// elsewhere, as the HTTP server does on its analysis runtime, starts here.
    pub async fn answer_from_cache(&self, question: &Question) -> Option<Arc<Analysis>> {
        let key = cache_key(self.classifier.model_version(), question);
        // Counted concurrently with the lookup, so a hit costs one round trip, not two.
        let (hit, ()) = tokio::join!(self.cached(&key), self.count_query(&question.keyword));
        hit
    }

    /// Questions being computed now (each shared by all who asked it meanwhile).
    pub fn computations_in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// The most-asked keywords (normalized), most first; none when the cache cannot say.
    pub async fn top_queried(&self, n: usize) -> Vec<String> {
        match self.cache.top_queried(n).await {
            Ok(top) => top.into_iter().map(|(keyword, _)| keyword).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the most-queried keywords");
                Vec::new()
            }
        }
    }

    async fn count_query(&self, keyword: &Keyword) {
        if let Err(e) = self.cache.count_query(&keyword.normalized()).await {
            if let Some(held_back) = self.cache_failures.admit() {
                tracing::warn!(error = %e, held_back, "cannot count the query");
            }
        }
    }

    /// What the cache holds for a question (for the warmer; a cache error reads as none).
    pub async fn cached_analysis(&self, question: &Question) -> Option<Analysis> {
        let key = cache_key(self.classifier.model_version(), question);
        self.cache.get(&key).await.ok().flatten()
    }

    /// Computes the analysis afresh and caches it, whatever the cache holds (joining
    /// a computation already in flight for the same question).
    pub async fn refresh(&self, question: &Question) -> Result<Arc<Analysis>, AnalyzeError> {
        let key = cache_key(self.classifier.model_version(), question);
        let ticket = self.join_flight(&key);
        // The first caller computes; the others wait on the same cell. If the
        // computing caller goes away, the next waiter takes over.
        ticket
            .flight
            .get_or_init(|| self.compute_and_cache(&key, question))
            .await
            .clone()
    }

    /// Whether the cache answers now; the service works without it, only slower.
    pub async fn check_cache(&self) -> Result<(), crate::ports::CacheError> {
        self.cache.check().await
    }

    /// The posts of the answer: when the question's earlier answers are known and recent
    /// enough (a full search within `full_refresh`), only what the source has newer,
    /// beside the known ones still in its window; else a full search.
    async fn gather(
        &self,
        question: &Question,
        known_key: &str,
        slot: &WorkSlot,
    ) -> Result<Gathered, AnalyzeError> {
        let source_error = |e| AnalyzeError::Source(Arc::new(e));
        let due = |k: &KnownPosts| {
            (Utc::now() - k.full_search_at)
                .to_std()
                .is_ok_and(|age| age < self.full_refresh)
        };
        let known = match self.source.searches_newer() {
            true => self.cache.known_posts(known_key).await,
            false => Ok(None),
        };
        if let Ok(Some(mut known)) = known {
            if due(&known) {
                // Posts that have aged out of the window since are no longer part of it.
                if let Some(start) = question.scope.window.start_from_now() {
                    known.posts.retain(|c| c.post.created_utc >= start);
                }
                let ids = known.posts.iter().map(|c| c.post.id.clone()).collect();
                let newer = self
                    .source
                    .search_newer(question, &ids, slot)
                    .await
                    .map_err(source_error)?;
                match newer {
                    // Nothing known was met: the posts are a full answer of their own.
                    Some(newer) if !newer.reached_known => {
                        return Ok(Gathered {
                            fresh: newer.posts,
                            previous: None,
                        })
                    }
                    Some(newer)
                        if known.complete
                            || newer.posts.len() + known.posts.len() >= question.limit.get() =>
                    {
                        metrics::counter!("moodwire_refreshes_total", "kind" => "incremental")
                            .increment(1);
                        return Ok(Gathered {
                            fresh: newer.posts,
                            previous: Some(known),
                        });
                    }
                    // Too few known posts for this limit, or a source that cannot stop early.
                    _ => {}
                }
            }
        }
        let posts = self
            .source
            .search(question, slot)
            .await
            .map_err(source_error)?;
        Ok(Gathered {
            fresh: posts,
            previous: None,
        })
    }

    /// The prediction of every post: known ones from the prediction cache, the others
    /// classified, each distinct text once (crossposts and reposts share one).
    async fn predict(&self, posts: &[crate::Post]) -> Result<Vec<Prediction>, AnalyzeError> {
        let texts: Vec<String> = posts.iter().map(|p| p.text()).collect();
        let model = self.classifier.model_version();
        let keys: Vec<String> = posts
            .iter()
            .zip(&texts)
            .map(|(post, text)| prediction_key(model, &post.id, text))
            .collect();
        let known = self.known_predictions(&keys).await;
        // Texts to classify, once each in the order of their first post, and the posts
        // each stands for.
        let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut unique: Vec<&str> = Vec::new();
        let mut probabilities: Vec<Option<Probabilities>> = known;
        for (i, text) in texts.iter().enumerate() {
            if probabilities[i].is_none() {
                let posts = by_text.entry(text.as_str()).or_default();
                if posts.is_empty() {
                    unique.push(text);
                }
                posts.push(i);
            }
        }
        let classified = if unique.is_empty() {
            Vec::new()
        } else {
            self.classifier
                .classify(unique.iter().map(|t| t.to_string()).collect())
                .await
                .map_err(|e| AnalyzeError::Classify(Arc::new(e)))?
        };
        let mut fresh = Vec::with_capacity(unique.len());
        for (text, prediction) in unique.iter().zip(classified) {
            for &i in &by_text[text] {
                probabilities[i] = Some(prediction.probabilities);
                fresh.push((keys[i].clone(), prediction.probabilities));
            }
        }
        metrics::histogram!("moodwire_analysis_classified_posts").record(unique.len() as f64);
        self.remember_predictions(&fresh).await;
        Ok(probabilities
            .into_iter()
            .map(|p| Prediction::from_probabilities(p.expect("every post is known or classified")))
            .collect())
    }

    async fn known_predictions(&self, keys: &[String]) -> Vec<Option<Probabilities>> {
        let Some(predictions) = &self.predictions else {
            return vec![None; keys.len()];
        };
        match predictions.get_many(keys).await {
            Ok(known) if known.len() == keys.len() => {
                let hits = known.iter().filter(|p| p.is_some()).count();
                let count = |result, n: usize| {
                    metrics::counter!("moodwire_prediction_cache_total", "result" => result)
                        .increment(n as u64)
                };
                count("hit", hits);
                count("miss", keys.len() - hits);
                known
            }
            Ok(_) | Err(_) => {
                metrics::counter!("moodwire_prediction_cache_total", "result" => "error")
                    .increment(keys.len() as u64);
                if let Some(held_back) = self.cache_failures.admit() {
                    tracing::warn!(
                        held_back,
                        "the prediction cache did not answer; classifying every post"
                    );
                }
                vec![None; keys.len()]
            }
        }
    }

    async fn remember_predictions(&self, fresh: &[(String, Probabilities)]) {
        let Some(predictions) = &self.predictions else {
            return;
        };
        if fresh.is_empty() {
            return;
        }
        if let Err(e) = predictions.put_many(fresh).await {
            if let Some(held_back) = self.cache_failures.admit() {
                tracing::warn!(error = %e, held_back, "cannot keep predictions; they will be computed again");
            }
        }
    }

    /// Why the last append to the event log failed, while it keeps failing: answers
    /// are still served then, but their history waits on recovery from the cache.
    pub fn event_log_failure(&self) -> Option<String> {
        self.recorder
            .event_log_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    async fn cached(&self, key: &str) -> Option<Arc<Analysis>> {
        match self.cache.get(key).await {
            Ok(Some(hit)) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "hit").increment(1);
                Some(Arc::new(hit))
            }
            Ok(None) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "miss").increment(1);
                None
            }
            Err(e) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "error")
                    .increment(1);
                if let Some(held_back) = self.cache_failures.admit() {
                    tracing::warn!(error = %e, held_back, "cache read failed; computing instead");
                }
                None
            }
        }
    }

    fn join_flight(&self, key: &str) -> FlightTicket<'_> {
        let mut flights = lock(&self.in_flight);
        FlightTicket {
            flights: &self.in_flight,
            key: key.to_string(),
            flight: Arc::clone(flights.entry(key.to_string()).or_default()),
        }
    }

    /// Computes the answer, unless another process sharing the cache is computing the
    /// same question right now: then waits (up to `follow_for`) for its result.
    async fn compute_and_cache(
        &self,
        key: &str,
        question: &Question,
    ) -> Result<Arc<Analysis>, AnalyzeError> {
        // A cache that cannot say computes here, as without a shared cache.
        if let Ok(false) = self.cache.claim(key, Self::CLAIM_TTL).await {
            if let Some(theirs) = self.follow(key).await {
                return Ok(theirs);
            }
            tracing::info!(
                key,
                "another replica's analysis did not land in time; computing it here"
            );
        }
        let computed = self.compute(key, question).await;
        if computed.is_err() {
            // Give the question back at once to whoever asks it next.
            let _ = self.cache.release(key).await;
        }
        computed
    }

    /// Another process's result for `key`, polled for up to `follow_for`.
    async fn follow(&self, key: &str) -> Option<Arc<Analysis>> {
        let deadline = Instant::now() + self.follow_for;
        while Instant::now() < deadline {
            tokio::time::sleep(Self::FOLLOW_POLL).await;
            if let Ok(Some(theirs)) = self.cache.get(key).await {
                metrics::counter!("moodwire_analyses_followed_total").increment(1);
                return Some(Arc::new(theirs));
            }
        }
        None
    }

    async fn compute(&self, key: &str, question: &Question) -> Result<Arc<Analysis>, AnalyzeError> {
        let slot = WorkSlot::new(Arc::clone(&self.computing).try_acquire_owned().map_err(
            |_| AnalyzeError::Busy {
                limit: self.max_computing,
            },
        )?);
        let started = Instant::now();
        let known_key = known_posts_key(self.classifier.model_version(), question);
        let gathered = self.gather(question, &known_key, &slot).await?;
        let fetched = Instant::now();
        let predictions = self.predict(&gathered.fresh).await?;
        let timings = Timings {
            fetch_ms: millis(fetched - started),
            inference_ms: millis(fetched.elapsed()),
        };
        // The fresh posts first: a post both fetched and known is taken as fetched.
        let mut seen = std::collections::HashSet::new();
        let mut classified: Vec<ClassifiedPost> = gathered
            .fresh
            .iter()
            .zip(predictions)
            .map(|(post, prediction)| ClassifiedPost {
                post: post.for_event(),
                prediction,
            })
            .chain(gathered.reused().cloned())
            .filter(|c| seen.insert(c.post.id.clone()))
            .collect();
        newest_first(&mut classified);
        classified.truncate(question.limit.get());
        let predictions: Vec<Prediction> =
            classified.iter().map(|c| c.prediction.clone()).collect();
        let analysis = Arc::new(Analysis {
            id: uuid::Uuid::now_v7().to_string(),
            keyword: question.keyword.as_str().to_string(),
            limit: question.limit.get() as u32,
            scope: question.scope.clone(),
            count: predictions.len() as u32,
            agg: aggregate(&predictions),
            model: self.classifier.model_version().to_string(),
            posts_source: self.source.kind(),
            analyzed_at: Utc::now(),
            examples: top_examples(&classified),
        });
        let known = self
            .source
            .searches_newer()
            .then(|| gathered.next_known(&classified, question.limit));
        let event = AnalysisRecorded::new(Analysis::clone(&analysis), classified, timings);
        let recorder = Arc::clone(&self.recorder);
        let (key, cached) = (key.to_string(), Arc::clone(&analysis));
        // A task of its own: it finishes even if this caller is dropped now.
        let recorded = tokio::spawn(async move {
            recorder.record(event, &cached, &key).await;
            if let Some(known) = known {
                recorder.keep_known(&known_key, &known).await;
            }
        });
        if let Err(e) = recorded.await {
            tracing::error!(error = %e, "recording an analysis panicked");
        }
        Ok(analysis)
    }
}

/// Posts newest first, ties by id (as the sources order them).
fn newest_first(posts: &mut [ClassifiedPost]) {
    posts.sort_by(|a, b| {
        b.post
            .created_utc
            .cmp(&a.post.created_utc)
            .then_with(|| a.post.id.cmp(&b.post.id))
    });
}

/// What an analysis is made of: posts fetched now (to classify, or find in the
/// prediction cache) and posts of earlier answers reused as they were.
struct Gathered {
    fresh: Vec<crate::Post>,
    /// The known posts this refresh builds on (reused as they are); `None` after a
    /// full search.
    previous: Option<KnownPosts>,
}

impl Gathered {
    fn reused(&self) -> impl Iterator<Item = &ClassifiedPost> {
        self.previous.iter().flat_map(|k| k.posts.iter())
    }

    /// The keyword's known posts after this analysis: after a full search, its posts
    /// alone (what was deleted since is forgotten); after a refresh, its posts and the
    /// older known ones, newest first, at most [`KnownPosts::MAX_POSTS`].
    fn next_known(&self, answer: &[ClassifiedPost], limit: Limit) -> KnownPosts {
        match &self.previous {
            None => KnownPosts {
                full_search_at: Utc::now(),
                complete: answer.len() < limit.get(),
                posts: answer.to_vec(),
            },
            Some(previous) => {
                let mut seen = std::collections::HashSet::new();
                let mut posts: Vec<ClassifiedPost> = answer
                    .iter()
                    .chain(&previous.posts)
                    .filter(|c| seen.insert(c.post.id.as_str()))
                    .cloned()
                    .collect();
                newest_first(&mut posts);
                posts.truncate(KnownPosts::MAX_POSTS);
                KnownPosts {
                    full_search_at: previous.full_search_at,
                    complete: previous.complete,
                    posts,
                }
            }
        }
    }
}

impl Recorder {
    /// Keeps the keyword's known posts for its next refresh (best effort: without
    /// them the next one searches in full).
    async fn keep_known(&self, key: &str, known: &KnownPosts) {
        if let Err(e) = self.cache.put_known_posts(key, known).await {
            if let Some(held_back) = self.cache_failures.admit() {
                tracing::warn!(error = %e, held_back, "cannot keep the known posts; the next refresh searches in full");
            }
        }
    }

    /// Appends the event for the store, in parts small enough for any log, then caches
    /// the analysis (with its examples, which the event leaves out) and releases the
    /// question's claim. A failing log does not fail the answer: the analysis is cached,
    /// recovery backfills the store from the cache, and readiness, the log and a
    /// counter say so.
    async fn record(&self, event: AnalysisRecorded, analysis: &Analysis, key: &str) {
        let parts = event.split_to_fit(MAX_EVENT_BYTES);
        let mut failure = None;
        for part in &parts {
            if let Err(e) = self.events.append(part).await {
                failure = Some(e);
                break;
            }
        }
        self.note_append(failure, &analysis.id, parts.len());
        if let Err(e) = self.cache.put(key, analysis).await {
            metrics::counter!("moodwire_cache_write_errors_total").increment(1);
            if let Some(held_back) = self.cache_failures.admit() {
                tracing::warn!(error = %e, held_back, "cache write failed; the answer is still served");
            }
        }
        // Followers in other processes find the result now; the claim can go.
        if let Err(e) = self.cache.release(key).await {
            tracing::debug!(error = %e, "cannot release the claim; it expires by itself");
        }
    }

    fn note_append(&self, failure: Option<EventLogError>, id: &str, parts: usize) {
        let mut status = self
            .event_log_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match failure {
            None => {
                metrics::counter!("moodwire_events_appended_total").increment(1);
                if parts > 1 {
                    metrics::counter!("moodwire_event_parts_appended_total")
                        .increment(parts as u64);
                }
                *status = None;
            }
            Some(e) => {
                metrics::counter!("moodwire_event_append_errors_total").increment(1);
                if let Some(held_back) = self.event_failures.admit() {
                    tracing::error!(error = %e, held_back, analysis = %id, "cannot append the analysis to the event log");
                }
                *status = Some(e.to_string());
            }
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_failure_is_logged_once_per_interval_with_a_count() {
        let throttle = LogThrottle::new(Duration::from_millis(50));
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(throttle.admit(), Some(2));
        assert_eq!(throttle.admit(), None);
    }
}
