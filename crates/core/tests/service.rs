//! The request path (`AnalysisService`) on the testkit's fakes: cache-aside, single
//! flight, the bound on analyses computed at once, and what reaches the event log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moodwire_core::ports::{
    Classifier, ClassifyError, EventLog, PostSource, ResultCache, SourceError, WorkSlot,
};
use moodwire_core::service::{AnalysisService, AnalyzeError, Served};
use moodwire_core::{
    Analysis, Emotion, Keyword, Limit, Post, PostsSource, Prediction, Question, MAX_EVENT_BYTES,
};
use moodwire_testkit::{post, BrokenCache, ListSource, MapCache, MapPredictions, MemoryLog};

/// `n` posts (ids `0`, `1`, ...), each with a body of `body_chars`.
fn posts(n: usize, body_chars: usize) -> ListSource {
    ListSource(
        (0..n)
            .map(|i| Post {
                selftext: "x".repeat(body_chars),
                ..post(&i.to_string(), &format!("post {i}"))
            })
            .collect(),
    )
}

/// Slow enough that concurrent callers overlap; counts its calls.
#[derive(Default)]
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

struct Setup {
    service: Arc<AnalysisService>,
    classifier: Arc<SlowJoy>,
    log: MemoryLog,
}

fn setup_with(cache: Arc<dyn ResultCache>, posts: ListSource) -> Setup {
    let classifier = Arc::new(SlowJoy::default());
    let log = MemoryLog::default();
    let service = Arc::new(AnalysisService::new(
        Arc::new(posts),
        classifier.clone(),
        cache,
        Arc::new(log.clone()) as Arc<dyn EventLog>,
    ));
    Setup {
        service,
        classifier,
        log,
    }
}

fn setup() -> Setup {
    setup_with(Arc::new(MapCache::default()), posts(3, 0))
}

fn keyword() -> Keyword {
    Keyword::parse("AI").unwrap()
}

#[tokio::test]
async fn each_computed_analysis_is_recorded_once_with_its_posts() {
    let Setup { service, log, .. } = setup();
    let limit = Limit::parse(3).unwrap();
    let (first, _) = service
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    let (again, served) = service
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(served, Served::Cache);
    assert_eq!(again.id, first.id);
    let events = log.events();
    assert_eq!(events.len(), 1, "a cache hit records nothing");
    let event = &events[0];
    assert_eq!(event.analysis, as_recorded(&first));
    assert!(!first.examples.is_empty(), "the answer has its examples");
    assert_eq!(event.analysis.limit, 3);
    assert_eq!(event.posts.len(), 3);
    assert_eq!(event.posts[0].post.id, "0");
    assert_eq!(event.posts[0].prediction.label, Emotion::Joy);
    assert!(event.timings.inference_ms >= 100.0, "{:?}", event.timings);
    assert!(!first.id.is_empty());
}

#[tokio::test]
async fn events_carry_excerpts_and_an_analysis_too_big_for_one_goes_in_parts() {
    let Setup { service, log, .. } = setup_with(Arc::new(MapCache::default()), posts(1000, 40_000));
    let (analysis, _) = service
        .analyze(&Question::new(keyword(), Limit::parse(1000).unwrap()))
        .await
        .unwrap();
    let events = log.events();
    assert!(!events.is_empty());
    for e in &events {
        assert!(e.to_json().len() <= MAX_EVENT_BYTES);
        assert_eq!(e.analysis, as_recorded(&analysis));
        assert!(e
            .posts
            .iter()
            .all(|p| p.post.selftext.chars().count() <= Post::EXCERPT_MAX_CHARS));
    }
    let posts: usize = events.iter().map(|e| e.posts.len()).sum();
    assert_eq!(posts, 1000, "every post reaches the log");
}

#[tokio::test]
async fn analyses_past_the_bound_are_refused_at_once_and_hits_are_not_bounded() {
    let Setup { service, .. } = setup();
    let service = Arc::new(Arc::into_inner(service).unwrap().with_max_computing(1));
    let limit = Limit::parse(3).unwrap();
    let warm = Keyword::parse("warm").unwrap();
    service
        .analyze(&Question::new(warm.clone(), limit))
        .await
        .unwrap();

    let slow = {
        let service = Arc::clone(&service);
        tokio::spawn(async move { service.analyze(&Question::new(keyword(), limit)).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let other = Keyword::parse("other").unwrap();
    let refused = service
        .analyze(&Question::new(other.clone(), limit))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AnalyzeError::Busy { limit: 1 }),
        "{refused:?}"
    );
    let (_, served) = service
        .analyze(&Question::new(warm.clone(), limit))
        .await
        .unwrap();
    assert_eq!(served, Served::Cache, "a hit needs no slot");
    slow.await.unwrap().unwrap();
    service
        .analyze(&Question::new(other.clone(), limit))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broken_event_log_does_not_fail_the_answer_but_is_reported_until_it_heals() {
    let Setup { service, log, .. } = setup();
    log.set_broken(true);
    let (_, served) = service
        .analyze(&Question::new(keyword(), Limit::default()))
        .await
        .unwrap();
    assert_eq!(served, Served::Inference);
    let failure = service
        .event_log_failure()
        .expect("the failure is reported");
    assert!(failure.contains("disk full"), "{failure}");
    log.set_broken(false);
    let other = Keyword::parse("other").unwrap();
    service
        .analyze(&Question::new(other.clone(), Limit::default()))
        .await
        .unwrap();
    assert_eq!(service.event_log_failure(), None, "an append worked again");
}

#[tokio::test]
async fn concurrent_misses_share_one_inference_and_then_hit_the_cache() {
    let Setup {
        service,
        classifier,
        ..
    } = setup();
    let calls = (0..100).map(|_| {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            service
                .analyze(&Question::new(keyword(), Limit::default()))
                .await
                .unwrap()
        })
    });
    for call in calls {
        // Late starters may already find the answer in the cache.
        let (analysis, _) = call.await.unwrap();
        assert_eq!(analysis.agg[0].label, Emotion::Joy);
    }
    assert_eq!(classifier.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        service.computations_in_flight(),
        0,
        "landed flights leave the table"
    );
    let (_, served) = service
        .analyze(&Question::new(keyword(), Limit::default()))
        .await
        .unwrap();
    assert_eq!(served, Served::Cache);
    assert_eq!(classifier.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_abandoned_flight_leaves_no_trace() {
    let Setup { service, .. } = setup();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(20),
        service.analyze(&Question::new(keyword(), Limit::default())),
    )
    .await;
    assert!(abandoned.is_err(), "timed out mid-inference");
    assert_eq!(service.computations_in_flight(), 0);
    assert!(service
        .analyze(&Question::new(keyword(), Limit::default()))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_broken_cache_only_costs_the_miss_path() {
    let Setup {
        service,
        classifier,
        ..
    } = setup_with(Arc::new(BrokenCache), posts(3, 0));
    for _ in 0..2 {
        let (_, served) = service
            .analyze(&Question::new(keyword(), Limit::default()))
            .await
            .unwrap();
        assert_eq!(served, Served::Inference);
    }
    assert_eq!(classifier.0.load(Ordering::SeqCst), 2);
}

/// An event log whose append is written at once but answers late, as a database
/// whose commit has happened when its caller gives up waiting.
#[derive(Default)]
struct LateLog(MemoryLog);

#[async_trait]
impl EventLog for LateLog {
    async fn append(
        &self,
        event: &moodwire_core::AnalysisRecorded,
    ) -> Result<(), moodwire_core::ports::EventLogError> {
        self.0.append(event).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    }
}

/// A caller that goes away while its analysis is being appended (a request timeout)
/// does not leave it appended but uncached: the next caller is served that analysis
/// from the cache, and the log holds it once.
#[tokio::test]
async fn an_analysis_whose_caller_left_during_the_append_is_still_cached_once() {
    let log = Arc::new(LateLog::default());
    let service = AnalysisService::new(
        Arc::new(posts(3, 0)),
        Arc::new(SlowJoy::default()),
        Arc::new(MapCache::default()),
        log.clone(),
    );
    // Inference takes 100 ms, then the append 300 ms: leave in the middle of it.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(250),
        service.analyze(&Question::new(keyword(), Limit::default())),
    )
    .await;
    assert!(gave_up.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (again, served) = service
        .analyze(&Question::new(keyword(), Limit::default()))
        .await
        .unwrap();
    assert_eq!(served, Served::Cache);
    let events = log.0.events();
    assert_eq!(events.len(), 1, "one analysis, appended once");
    assert_eq!(events[0].analysis.id, again.id);
}

/// A classifier whose verdict depends on the text only, that counts what it classifies.
#[derive(Default)]
struct ByText(AtomicUsize);

#[async_trait]
impl Classifier for ByText {
    fn model_version(&self) -> &str {
        "by-text"
    }
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
        self.0.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut p = [0.05f32; 6];
                p[t.len() % 6] = 0.75;
                Prediction::from_probabilities(p)
            })
            .collect())
    }
}

/// One list of 200 posts, two of which repeat another's text.
fn fixed() -> ListSource {
    ListSource(
        (0..200)
            .map(|i| {
                // Posts 100 and 101 are crossposts of post 7: other ids, the same text.
                let text = if i == 100 || i == 101 { 7 } else { i };
                post(
                    &format!("p{i}"),
                    &format!("post number {text} {}", "x".repeat(text % 11)),
                )
            })
            .collect(),
    )
}

fn with_predictions(predictions: Option<Arc<MapPredictions>>) -> (AnalysisService, Arc<ByText>) {
    let classifier = Arc::new(ByText::default());
    let mut service = AnalysisService::new(
        Arc::new(fixed()),
        classifier.clone(),
        Arc::new(MapCache::default()),
        Arc::new(MemoryLog::default()),
    );
    if let Some(p) = predictions {
        service = service.with_prediction_cache(p);
    }
    (service, classifier)
}

#[tokio::test]
async fn each_post_is_classified_once_across_analyses_and_crossposts_share_one() {
    let predictions = Arc::new(MapPredictions::default());
    let (service, classifier) = with_predictions(Some(predictions.clone()));
    let limit = |n| Limit::parse(n).unwrap();
    service
        .analyze(&Question::new(keyword(), limit(150)))
        .await
        .unwrap();
    assert_eq!(
        classifier.0.load(Ordering::SeqCst),
        148,
        "posts 100 and 101 repeat post 7"
    );
    assert_eq!(predictions.len(), 150, "every post is known by its id");
    // Another limit over posts already seen classifies nothing new...
    service
        .analyze(&Question::new(keyword(), limit(120)))
        .await
        .unwrap();
    assert_eq!(classifier.0.load(Ordering::SeqCst), 148);
    // ...and a larger one only the new posts.
    service
        .analyze(&Question::new(keyword(), limit(200)))
        .await
        .unwrap();
    assert_eq!(classifier.0.load(Ordering::SeqCst), 198);
}

#[tokio::test]
async fn an_analysis_from_known_predictions_equals_a_full_recomputation() {
    let predictions = Arc::new(MapPredictions::default());
    let (cached, _) = with_predictions(Some(predictions.clone()));
    let limit = Limit::parse(200).unwrap();
    cached
        .analyze(&Question::new(keyword(), Limit::parse(180).unwrap()))
        .await
        .unwrap();
    let (from_cache, _) = cached
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    let (fresh, _) = with_predictions(None)
        .0
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(from_cache.agg, fresh.agg);
    assert_eq!(from_cache.count, fresh.count);
}

#[tokio::test]
async fn a_broken_prediction_cache_only_costs_the_classification() {
    let predictions = Arc::new(MapPredictions::default());
    predictions.set_broken(true);
    let (service, classifier) = with_predictions(Some(predictions));
    let (analysis, _) = service
        .analyze(&Question::new(keyword(), Limit::parse(50).unwrap()))
        .await
        .unwrap();
    assert_eq!(analysis.count, 50);
    assert_eq!(classifier.0.load(Ordering::SeqCst), 50);
}

/// Two services on one shared cache (two replicas on one Redis), 50 concurrent
/// requests each for one new question: one of them computes it, the others are
/// answered with its result.
#[tokio::test]
async fn replicas_on_one_shared_cache_compute_a_new_question_once() {
    let cache = Arc::new(MapCache::shared());
    let replica = || {
        let classifier = Arc::new(SlowJoy::default());
        let service = Arc::new(AnalysisService::new(
            Arc::new(posts(3, 0)),
            classifier.clone(),
            cache.clone(),
            Arc::new(MemoryLog::default()),
        ));
        (service, classifier)
    };
    let (a, a_calls) = replica();
    let (b, b_calls) = replica();
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let service = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move {
                service
                    .analyze(&Question::new(keyword(), Limit::default()))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap().0.id.clone());
    }
    let total = a_calls.0.load(Ordering::SeqCst) + b_calls.0.load(Ordering::SeqCst);
    assert_eq!(total, 1, "one inference in all");
    assert_eq!(ids.len(), 1, "every caller got that analysis");
}

/// A source whose newest posts grow over time, that can stop at known posts, and
/// counts its full and incremental searches.
#[derive(Default)]
struct Growing {
    /// Newest first.
    posts: std::sync::Mutex<Vec<Post>>,
    full: AtomicUsize,
    newer: AtomicUsize,
}

impl Growing {
    fn publish(&self, n: usize) {
        let mut posts = self.posts.lock().unwrap();
        let start = posts.len();
        for i in start..start + n {
            let mut p = post(
                &format!("g{i}"),
                &format!("news item {i} {}", "y".repeat(i % 13)),
            );
            p.created_utc = 1_700_000_000 + i as i64;
            posts.insert(0, p);
        }
    }
}

#[async_trait]
impl PostSource for Growing {
    fn kind(&self) -> PostsSource {
        PostsSource::Reddit
    }
    async fn search(&self, q: &Question, _: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        let limit = q.limit;
        self.full.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .posts
            .lock()
            .unwrap()
            .iter()
            .take(limit.get())
            .cloned()
            .collect())
    }
    fn searches_newer(&self) -> bool {
        true
    }
    async fn search_newer(
        &self,
        q: &Question,
        known: &std::collections::HashSet<String>,
        _: &WorkSlot,
    ) -> Result<Option<moodwire_core::ports::Newer>, SourceError> {
        let limit = q.limit;
        self.newer.fetch_add(1, Ordering::SeqCst);
        let posts = self.posts.lock().unwrap();
        let new: Vec<Post> = posts
            .iter()
            .take_while(|p| !known.contains(&p.id))
            .take(limit.get())
            .cloned()
            .collect();
        let reached_known =
            new.len() < posts.len().min(limit.get()) || posts.iter().any(|p| known.contains(&p.id));
        Ok(Some(moodwire_core::ports::Newer {
            posts: new,
            reached_known,
        }))
    }
}

#[tokio::test]
async fn a_refresh_fetches_only_the_newer_posts_and_equals_a_full_recomputation() {
    let source = Arc::new(Growing::default());
    source.publish(300);
    let classifier = Arc::new(ByText::default());
    let cache = Arc::new(MapCache::default());
    let service = AnalysisService::new(
        source.clone(),
        classifier.clone(),
        cache.clone(),
        Arc::new(MemoryLog::default()),
    );
    let limit = Limit::parse(250).unwrap();
    service
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(source.full.load(Ordering::SeqCst), 1);
    // Fifty new posts, then a refresh (the warmer's): only they are fetched and classified.
    source.publish(50);
    let classified_before = classifier.0.load(Ordering::SeqCst);
    let refreshed = service
        .refresh(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(source.full.load(Ordering::SeqCst), 1, "no full search");
    assert_eq!(source.newer.load(Ordering::SeqCst), 1);
    assert_eq!(classifier.0.load(Ordering::SeqCst) - classified_before, 50);
    assert_eq!(refreshed.count, 250);
    // The same answer as a full recomputation over the same posts.
    let fresh = AnalysisService::new(
        source.clone(),
        Arc::new(ByText::default()),
        Arc::new(MapCache::default()),
        Arc::new(MemoryLog::default()),
    );
    let (full, _) = fresh
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(refreshed.agg, full.agg);
    // Nothing new: nothing classified.
    let before = classifier.0.load(Ordering::SeqCst);
    service
        .refresh(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(classifier.0.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn known_posts_too_old_mean_a_full_search() {
    let source = Arc::new(Growing::default());
    source.publish(100);
    let service = AnalysisService::new(
        source.clone(),
        Arc::new(ByText::default()),
        Arc::new(MapCache::default()),
        Arc::new(MemoryLog::default()),
    )
    .with_full_refresh(Duration::ZERO);
    let limit = Limit::parse(50).unwrap();
    service
        .analyze(&Question::new(keyword(), limit))
        .await
        .unwrap();
    service
        .refresh(&Question::new(keyword(), limit))
        .await
        .unwrap();
    assert_eq!(source.full.load(Ordering::SeqCst), 2);
    assert_eq!(source.newer.load(Ordering::SeqCst), 0);
}

/// An analysis as its event carries it: without the examples, which are the cache's.
fn as_recorded(analysis: &Analysis) -> Analysis {
    Analysis {
        examples: Default::default(),
        ..analysis.clone()
    }
}
