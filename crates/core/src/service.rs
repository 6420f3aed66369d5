//! The request path: cache -> single-flight -> source -> classifier -> aggregation -> cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::OnceCell;

use crate::ports::{
    cache_key, Classifier, ClassifyError, EventLog, PostSource, ResultCache, SourceError,
};
use crate::{aggregate, Analysis, AnalysisRecorded, ClassifiedPost, Keyword, Limit, Timings};

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
    events: Arc<dyn EventLog>,
    in_flight: Flights,
    /// Slots for analyses computed at once (cache hits and single-flight followers
    /// take none).
    computing: tokio::sync::Semaphore,
    max_computing: usize,
    cache_failures: LogThrottle,
    event_failures: LogThrottle,
}

impl AnalysisService {
    /// Default bound on analyses computed at once (see [`Self::with_max_computing`]).
    pub const DEFAULT_MAX_COMPUTING: usize = 32;

    pub fn new(
        source: Arc<dyn PostSource>,
        classifier: Arc<dyn Classifier>,
        cache: Arc<dyn ResultCache>,
        events: Arc<dyn EventLog>,
    ) -> Self {
        AnalysisService {
            source,
            classifier,
            cache,
            events,
            in_flight: Mutex::new(HashMap::new()),
            computing: tokio::sync::Semaphore::new(Self::DEFAULT_MAX_COMPUTING),
            max_computing: Self::DEFAULT_MAX_COMPUTING,
            cache_failures: LogThrottle::new(Duration::from_secs(10)),
            event_failures: LogThrottle::new(Duration::from_secs(10)),
        }
    }

    /// At most `max` new analyses computed at once; one more is refused at once
    /// ([`AnalyzeError::Busy`]) rather than queued.
    pub fn with_max_computing(mut self, max: usize) -> Self {
        let max = max.max(1);
        self.computing = tokio::sync::Semaphore::new(max);
        self.max_computing = max;
        self
    }

    pub fn model_version(&self) -> &str {
        self.classifier.model_version()
    }

    pub async fn analyze(
        &self,
        keyword: &Keyword,
        limit: Limit,
    ) -> Result<(Arc<Analysis>, Served), AnalyzeError> {
        let key = cache_key(self.classifier.model_version(), keyword, limit);
        // Counted concurrently with the lookup, so a hit costs one round trip, not two.
        let (hit, ()) = tokio::join!(self.cached(&key), self.count_query(keyword));
        if let Some(hit) = hit {
            return Ok((hit, Served::Cache));
        }
        let ticket = self.join_flight(&key);
        // The first caller computes; the others wait on the same cell. If the
        // computing caller goes away, the next waiter takes over.
        let result = ticket
            .flight
            .get_or_init(|| self.compute_and_cache(&key, keyword, limit))
            .await
            .clone();
        result.map(|analysis| (analysis, Served::Inference))
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
    pub async fn cached_analysis(&self, keyword: &Keyword, limit: Limit) -> Option<Analysis> {
        let key = cache_key(self.classifier.model_version(), keyword, limit);
        self.cache.get(&key).await.ok().flatten()
    }

    /// Computes the analysis afresh and caches it, whatever the cache holds (joining
    /// a computation already in flight for the same question).
    pub async fn refresh(
        &self,
        keyword: &Keyword,
        limit: Limit,
    ) -> Result<Arc<Analysis>, AnalyzeError> {
        let key = cache_key(self.classifier.model_version(), keyword, limit);
        let ticket = self.join_flight(&key);
        ticket
            .flight
            .get_or_init(|| self.compute_and_cache(&key, keyword, limit))
            .await
            .clone()
    }

    /// Whether the cache answers now; the service works without it, only slower.
    pub async fn check_cache(&self) -> Result<(), crate::ports::CacheError> {
        self.cache.check().await
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

    async fn compute_and_cache(
        &self,
        key: &str,
        keyword: &Keyword,
        limit: Limit,
    ) -> Result<Arc<Analysis>, AnalyzeError> {
        let _slot = self
            .computing
            .try_acquire()
            .map_err(|_| AnalyzeError::Busy {
                limit: self.max_computing,
            })?;
        let started = Instant::now();
        let posts = self
            .source
            .search(keyword, limit)
            .await
            .map_err(|e| AnalyzeError::Source(Arc::new(e)))?;
        let fetched = Instant::now();
        let texts = posts.iter().map(|p| p.text()).collect();
        let predictions = self
            .classifier
            .classify(texts)
            .await
            .map_err(|e| AnalyzeError::Classify(Arc::new(e)))?;
        let timings = Timings {
            fetch_ms: millis(fetched - started),
            inference_ms: millis(fetched.elapsed()),
        };
        let analysis = Analysis {
            id: uuid::Uuid::now_v7().to_string(),
            keyword: keyword.as_str().to_string(),
            limit: limit.get() as u32,
            count: predictions.len() as u32,
            agg: aggregate(&predictions),
            model: self.classifier.model_version().to_string(),
            posts_source: self.source.kind(),
            analyzed_at: Utc::now(),
        };
        let classified = posts
            .into_iter()
            .zip(predictions)
            .map(|(post, prediction)| ClassifiedPost { post, prediction })
            .collect();
        self.record(AnalysisRecorded::new(analysis.clone(), classified, timings))
            .await;
        if let Err(e) = self.cache.put(key, &analysis).await {
            metrics::counter!("moodwire_cache_write_errors_total").increment(1);
            if let Some(held_back) = self.cache_failures.admit() {
                tracing::warn!(error = %e, held_back, "cache write failed; the answer is still served");
            }
        }
        Ok(Arc::new(analysis))
    }

    /// Appends the event for the store. A failing log does not fail the answer: the
    /// analysis is cached, and recovery backfills the store from the cache.
    async fn record(&self, event: AnalysisRecorded) {
        match self.events.append(&event).await {
            Ok(()) => metrics::counter!("moodwire_events_appended_total").increment(1),
            Err(e) => {
                metrics::counter!("moodwire_event_append_errors_total").increment(1);
                if let Some(held_back) = self.event_failures.admit() {
                    tracing::error!(error = %e, held_back, analysis = %event.analysis.id, "cannot append the analysis to the event log");
                }
            }
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::ports::{CacheError, EventLogError};
    use crate::{Emotion, Post, PostsSource, Prediction};

    /// Keeps what is appended; fails every append when `broken`.
    #[derive(Default)]
    struct RecordingLog {
        events: Mutex<Vec<AnalysisRecorded>>,
        broken: bool,
    }

    #[async_trait]
    impl EventLog for RecordingLog {
        async fn append(&self, event: &AnalysisRecorded) -> Result<(), EventLogError> {
            if self.broken {
                return Err(EventLogError("disk full".into()));
            }
            self.events.lock().unwrap().push(event.clone());
            Ok(())
        }
    }

    struct Posts;

    #[async_trait]
    impl PostSource for Posts {
        fn kind(&self) -> PostsSource {
            PostsSource::Sample
        }
        async fn search(&self, _: &Keyword, limit: Limit) -> Result<Vec<Post>, SourceError> {
            Ok((0..limit.get().min(3))
                .map(|i| Post {
                    id: i.to_string(),
                    subreddit: "s".into(),
                    author: "a".into(),
                    created_utc: 0,
                    title: format!("post {i}"),
                    selftext: String::new(),
                    score: 0,
                    permalink: String::new(),
                })
                .collect())
        }
    }

    /// Slow enough that concurrent callers overlap; counts its calls.
    struct SlowJoy(AtomicUsize);

    #[async_trait]
    impl Classifier for SlowJoy {
        fn model_version(&self) -> &str {
            "test-model"
        }
        async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(texts
                .iter()
                .map(|_| Prediction::from_probabilities([0.0, 0.9, 0.1, 0.0, 0.0, 0.0]))
                .collect())
        }
    }

    #[derive(Default)]
    struct MapCache(Mutex<HashMap<String, Analysis>>);

    #[async_trait]
    impl ResultCache for MapCache {
        async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError> {
            self.0.lock().unwrap().insert(key.into(), analysis.clone());
            Ok(())
        }
        async fn scan(&self, _: u64, _: usize) -> Result<(u64, Vec<Analysis>), CacheError> {
            Ok((0, self.0.lock().unwrap().values().cloned().collect()))
        }
        async fn count_query(&self, _: &str) -> Result<(), CacheError> {
            Ok(())
        }
        async fn top_queried(&self, _: usize) -> Result<Vec<(String, u64)>, CacheError> {
            Ok(Vec::new())
        }
    }

    struct BrokenCache;

    #[async_trait]
    impl ResultCache for BrokenCache {
        async fn get(&self, _: &str) -> Result<Option<Analysis>, CacheError> {
            Err(CacheError("down".into()))
        }
        async fn put(&self, _: &str, _: &Analysis) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn scan(&self, _: u64, _: usize) -> Result<(u64, Vec<Analysis>), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn count_query(&self, _: &str) -> Result<(), CacheError> {
            Err(CacheError("down".into()))
        }
        async fn top_queried(&self, _: usize) -> Result<Vec<(String, u64)>, CacheError> {
            Err(CacheError("down".into()))
        }
    }

    fn service(cache: Arc<dyn ResultCache>) -> (Arc<AnalysisService>, Arc<SlowJoy>) {
        service_with_log(cache, Arc::new(RecordingLog::default()))
    }

    fn service_with_log(
        cache: Arc<dyn ResultCache>,
        log: Arc<dyn EventLog>,
    ) -> (Arc<AnalysisService>, Arc<SlowJoy>) {
        let classifier = Arc::new(SlowJoy(AtomicUsize::new(0)));
        (
            Arc::new(AnalysisService::new(
                Arc::new(Posts),
                classifier.clone(),
                cache,
                log,
            )),
            classifier,
        )
    }

    #[tokio::test]
    async fn each_computed_analysis_is_recorded_once_with_its_posts() {
        let log = Arc::new(RecordingLog::default());
        let (service, _) = service_with_log(Arc::new(MapCache::default()), log.clone());
        let limit = Limit::parse(3).unwrap();
        let (first, _) = service.analyze(&keyword(), limit).await.unwrap();
        let (again, served) = service.analyze(&keyword(), limit).await.unwrap();
        assert_eq!(served, Served::Cache);
        assert_eq!(again.id, first.id);
        let events = log.events.lock().unwrap();
        assert_eq!(events.len(), 1, "a cache hit records nothing");
        let event = &events[0];
        assert_eq!(event.analysis, *first);
        assert_eq!(event.analysis.limit, 3);
        assert_eq!(event.posts.len(), 3);
        assert_eq!(event.posts[0].post.id, "0");
        assert_eq!(event.posts[0].prediction.label, Emotion::Joy);
        assert!(event.timings.inference_ms >= 100.0, "{:?}", event.timings);
        assert!(!first.id.is_empty());
    }

    #[tokio::test]
    async fn analyses_past_the_bound_are_refused_at_once_and_hits_are_not_bounded() {
        let (service, _) = service(Arc::new(MapCache::default()));
        let service = Arc::new(Arc::into_inner(service).unwrap().with_max_computing(1));
        let limit = Limit::parse(3).unwrap();
        let warm = Keyword::parse("warm").unwrap();
        service.analyze(&warm, limit).await.unwrap();

        let slow = {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.analyze(&keyword(), limit).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let other = Keyword::parse("other").unwrap();
        let refused = service.analyze(&other, limit).await.unwrap_err();
        assert!(
            matches!(refused, AnalyzeError::Busy { limit: 1 }),
            "{refused:?}"
        );
        let (_, served) = service.analyze(&warm, limit).await.unwrap();
        assert_eq!(served, Served::Cache, "a hit needs no slot");
        slow.await.unwrap().unwrap();
        service.analyze(&other, limit).await.unwrap();
    }

    #[tokio::test]
    async fn a_broken_event_log_does_not_fail_the_answer() {
        let log = Arc::new(RecordingLog {
            broken: true,
            ..Default::default()
        });
        let (service, _) = service_with_log(Arc::new(MapCache::default()), log);
        let (_, served) = service.analyze(&keyword(), Limit::default()).await.unwrap();
        assert_eq!(served, Served::Inference);
    }

    fn keyword() -> Keyword {
        Keyword::parse("AI").unwrap()
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_inference_and_then_hit_the_cache() {
        let (service, classifier) = service(Arc::new(MapCache::default()));
        let calls = (0..100).map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(
                async move { service.analyze(&keyword(), Limit::default()).await.unwrap() },
            )
        });
        for call in calls {
            // Late starters may already find the answer in the cache.
            let (analysis, _) = call.await.unwrap();
            assert_eq!(analysis.agg[0].label, Emotion::Joy);
        }
        assert_eq!(classifier.0.load(Ordering::SeqCst), 1);
        assert!(
            lock(&service.in_flight).is_empty(),
            "landed flights leave the table"
        );
        let (_, served) = service.analyze(&keyword(), Limit::default()).await.unwrap();
        assert_eq!(served, Served::Cache);
        assert_eq!(classifier.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_abandoned_flight_leaves_no_trace() {
        let (service, _) = service(Arc::new(MapCache::default()));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            service.analyze(&keyword(), Limit::default()),
        )
        .await;
        assert!(abandoned.is_err(), "timed out mid-inference");
        assert!(lock(&service.in_flight).is_empty());
        assert!(service.analyze(&keyword(), Limit::default()).await.is_ok());
    }

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

    #[tokio::test]
    async fn a_broken_cache_only_costs_the_miss_path() {
        let (service, classifier) = service(Arc::new(BrokenCache));
        for _ in 0..2 {
            let (_, served) = service.analyze(&keyword(), Limit::default()).await.unwrap();
            assert_eq!(served, Served::Inference);
        }
        assert_eq!(classifier.0.load(Ordering::SeqCst), 2);
    }
}
