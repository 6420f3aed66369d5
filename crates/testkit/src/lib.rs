//! What moodwire's tests share: in-memory fakes of the ports, builders of posts and
//! events, and the process harness ([`harness`]). A dev-dependency only; nothing here
//! ships.

pub mod harness;
pub mod reddit;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood};
use moodwire_core::ports::{
    CacheError, DeadLetter, EventBatch, EventFeed, EventLog, EventLogError, History, KnownPosts,
    LogPosition, PostSource, PredictionCache, Probabilities, ResultCache, SaveReport, SourceError,
    Store, StoreError, StoredDeadLetter, WorkSlot,
};
use moodwire_core::{
    aggregate, Analysis, AnalysisRecorded, ClassifiedPost, Keyword, Post, PostsSource, Prediction,
    Question, Scope, Timings,
};

/// Test state behind a lock: a panicking test cannot leave it torn in a way that
/// matters, so poisoning is ignored.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------- builders

/// A post of subreddit `test` with a title and no body.
pub fn post(id: &str, title: &str) -> Post {
    Post {
        id: id.into(),
        subreddit: "test".into(),
        author: "someone".into(),
        created_utc: 1_700_000_000,
        title: title.into(),
        selftext: String::new(),
        score: 1,
        permalink: format!("/r/test/comments/{id}/"),
    }
}

/// An analysis of `keyword` that found no posts, as a cache holds one.
pub fn empty_analysis(keyword: &str) -> Analysis {
    Analysis {
        id: "01".into(),
        keyword: keyword.into(),
        limit: 10,
        count: 0,
        agg: aggregate(&[]),
        model: "m".into(),
        posts_source: PostsSource::Sample,
        analyzed_at: Utc::now(),
        examples: Default::default(),
        scope: Default::default(),
    }
}

/// The same prediction for every post: `label_index` at 0.9.
pub fn prediction(label_index: usize) -> Prediction {
    let mut p = [0.02f32; 6];
    p[label_index] = 0.9;
    Prediction::from_probabilities(p)
}

/// The event of an analysis of `keyword` over `posts`, all classified as joy.
pub fn event_of(id: &str, keyword: &str, posts: Vec<Post>) -> AnalysisRecorded {
    let posts = posts
        .into_iter()
        .map(|post| ClassifiedPost {
            post,
            prediction: prediction(1),
        })
        .collect();
    classified_event(id, keyword, posts)
}

/// The event of an analysis of `keyword` over posts already classified: its aggregate
/// computed from their predictions, as the service computes it.
pub fn classified_event(id: &str, keyword: &str, posts: Vec<ClassifiedPost>) -> AnalysisRecorded {
    let predictions: Vec<Prediction> = posts.iter().map(|c| c.prediction.clone()).collect();
    let analysis = Analysis {
        id: id.into(),
        keyword: keyword.into(),
        limit: posts.len().max(1) as u32,
        count: posts.len() as u32,
        agg: aggregate(&predictions),
        model: "test-model".into(),
        posts_source: PostsSource::Sample,
        analyzed_at: Utc::now(),
        examples: Default::default(),
        scope: Default::default(),
    };
    AnalysisRecorded::new(
        analysis,
        posts,
        Timings {
            fetch_ms: 1.0,
            inference_ms: 2.0,
        },
    )
}

/// An event of `n` posts (ids `{id}-p0`, ...) about `keyword`.
pub fn event(id: &str, keyword: &str, n: usize) -> AnalysisRecorded {
    let posts = (0..n)
        .map(|i| post(&format!("{id}-p{i}"), &format!("{keyword} post {i}")))
        .collect();
    event_of(id, keyword, posts)
}

// ---------------------------------------------------------------- post source

/// A local source (`sample`) that answers every keyword with the first `limit` posts of
/// one list in the question's scope (its window ending now), as a corpus with that many
/// matches does.
pub struct ListSource(pub Vec<Post>);

#[async_trait]
impl PostSource for ListSource {
    fn kind(&self) -> PostsSource {
        PostsSource::Sample
    }

    async fn search(&self, question: &Question, _: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        let now = Utc::now().timestamp();
        let in_scope = |post: &&Post| question.scope.admits(post, now);
        let found = self.0.iter().filter(in_scope).take(question.limit.get());
        Ok(found.cloned().collect())
    }
}

// ---------------------------------------------------------------- result cache

/// Every analysis a cache's scan pages through, `page` at a time, from cursor 0 until
/// the cache says the scan is complete (entries may come twice, as the port allows).
pub async fn scan_all(cache: &dyn ResultCache, page: usize) -> Vec<Analysis> {
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, analyses) = cache.scan(cursor, page).await.unwrap();
        seen.extend(analyses);
        if next == 0 {
            return seen;
        }
        cursor = next;
    }
}

/// A result cache in a map; `top_queried` answers what the test put there. Made
/// with [`MapCache::shared`], it grants each claim to one holder at a time, as a cache
/// that several processes share does.
#[derive(Default)]
pub struct MapCache {
    entries: Mutex<HashMap<String, Analysis>>,
    top: Mutex<Vec<(String, u64)>>,
    claims: Option<Mutex<std::collections::HashSet<String>>>,
    known: Mutex<HashMap<String, KnownPosts>>,
}

impl MapCache {
    /// A cache shared by several services, as Redis is by replicas.
    pub fn shared() -> Self {
        MapCache {
            claims: Some(Mutex::default()),
            ..MapCache::default()
        }
    }

    /// The most-queried keywords the cache reports.
    pub fn with_top_queried(self, top: &[(&str, u64)]) -> Self {
        *locked(&self.top) = top.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        self
    }

    pub fn len(&self) -> usize {
        locked(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ResultCache for MapCache {
    async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError> {
        Ok(locked(&self.entries).get(key).cloned())
    }
    async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError> {
        locked(&self.entries).insert(key.into(), analysis.clone());
        Ok(())
    }
    async fn scan(&self, _: u64, _: usize) -> Result<(u64, Vec<Analysis>), CacheError> {
        Ok((0, locked(&self.entries).values().cloned().collect()))
    }
    async fn count_query(&self, _: &str) -> Result<(), CacheError> {
        Ok(())
    }
    async fn top_queried(&self, n: usize) -> Result<Vec<(String, u64)>, CacheError> {
        Ok(locked(&self.top).iter().take(n).cloned().collect())
    }
    async fn known_posts(&self, key: &str) -> Result<Option<KnownPosts>, CacheError> {
        Ok(locked(&self.known).get(key).cloned())
    }
    async fn put_known_posts(&self, key: &str, known: &KnownPosts) -> Result<(), CacheError> {
        locked(&self.known).insert(key.to_string(), known.clone());
        Ok(())
    }
    async fn claim(&self, key: &str, _: Duration) -> Result<bool, CacheError> {
        Ok(match &self.claims {
            Some(claims) => locked(claims).insert(key.to_string()),
            None => true,
        })
    }
    async fn release(&self, key: &str) -> Result<(), CacheError> {
        if let Some(claims) = &self.claims {
            locked(claims).remove(key);
        }
        Ok(())
    }
}

/// A cache that fails every call, like a Redis that is down.
pub struct BrokenCache;

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

/// A prediction cache in a map; `set_broken(true)` makes it fail every call.
#[derive(Default)]
pub struct MapPredictions {
    entries: Mutex<HashMap<String, Probabilities>>,
    broken: AtomicBool,
}

impl MapPredictions {
    pub fn len(&self) -> usize {
        locked(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
    }

    fn available(&self) -> Result<(), CacheError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(CacheError("down".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl PredictionCache for MapPredictions {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Probabilities>>, CacheError> {
        self.available()?;
        let entries = locked(&self.entries);
        Ok(keys.iter().map(|k| entries.get(k).copied()).collect())
    }
    async fn put_many(&self, new: &[(String, Probabilities)]) -> Result<(), CacheError> {
        self.available()?;
        locked(&self.entries).extend(new.iter().cloned());
        Ok(())
    }
}

// ---------------------------------------------------------------- event log

#[derive(Default)]
struct LogState {
    next_seq: i64,
    /// (seq, payload), oldest first; committed entries are gone.
    entries: VecDeque<(i64, Vec<u8>)>,
}

/// An event log in memory with the journal's semantics: appends are kept until a
/// feed commits past them; an uncommitted batch is read again after a rewind.
#[derive(Clone, Default)]
pub struct MemoryLog {
    state: Arc<Mutex<LogState>>,
    broken: Arc<AtomicBool>,
    rewind_broken: Arc<AtomicBool>,
    backlog_reads_zero: Arc<AtomicBool>,
}

impl MemoryLog {
    /// Appends raw bytes, as a log holding a corrupt or foreign entry would.
    pub fn append_raw(&self, payload: Vec<u8>) {
        let mut state = locked(&self.state);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.push_back((seq, payload));
    }

    /// Every append fails from now on (`true`), or works again (`false`).
    pub fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
    }

    /// Every feed's rewind fails from now on (`true`), as a broker in the middle of a
    /// restart or a rebalance makes it fail, or works again (`false`).
    pub fn set_rewind_broken(&self, broken: bool) {
        self.rewind_broken.store(broken, Ordering::SeqCst);
    }

    /// Every feed's backlog reads 0 from now on, whatever waits, as Tansu's lag does
    /// when the committed offset lies inside the topic's last record batch.
    pub fn under_report_backlog(&self) {
        self.backlog_reads_zero.store(true, Ordering::SeqCst);
    }

    /// Entries not yet committed.
    pub fn pending(&self) -> usize {
        locked(&self.state).entries.len()
    }

    /// The events appended and not yet committed, decoded.
    pub fn events(&self) -> Vec<AnalysisRecorded> {
        locked(&self.state)
            .entries
            .iter()
            .filter_map(|(_, p)| AnalysisRecorded::from_json(p).ok())
            .collect()
    }

    /// A reader from the oldest uncommitted entry.
    pub fn feed(&self) -> MemoryFeed {
        MemoryFeed {
            log: self.clone(),
            read_up_to: None,
        }
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn append(&self, event: &AnalysisRecorded) -> Result<(), EventLogError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(EventLogError("disk full".into()));
        }
        self.append_raw(event.to_json());
        Ok(())
    }
}

/// A reader of a [`MemoryLog`].
pub struct MemoryFeed {
    log: MemoryLog,
    /// The next seq to read; `None`: from the oldest entry (after a commit or rewind).
    read_up_to: Option<i64>,
}

#[async_trait]
impl EventFeed for MemoryFeed {
    async fn next_batch(&mut self, max: usize, _: Duration) -> Result<EventBatch, EventLogError> {
        let state = locked(&self.log.state);
        let from = self.read_up_to.unwrap_or(i64::MIN);
        let mut batch = EventBatch::default();
        for (seq, payload) in state.entries.iter().filter(|(s, _)| *s >= from).take(max) {
            match AnalysisRecorded::from_json(payload) {
                Ok(event) => batch.events.push(event),
                Err(e) => batch.unreadable.push(DeadLetter {
                    analysis_id: None,
                    payload: payload.clone(),
                    error: e.to_string(),
                    origin: format!("memory seq {seq}"),
                }),
            }
            batch.position = LogPosition(vec![(0, seq + 1)]);
            self.read_up_to = Some(seq + 1);
        }
        Ok(batch)
    }

    async fn commit(&mut self, position: &LogPosition) -> Result<(), EventLogError> {
        if let [(0, next)] = position.0.as_slice() {
            locked(&self.log.state)
                .entries
                .retain(|(seq, _)| seq >= next);
        }
        self.read_up_to = None;
        Ok(())
    }

    async fn rewind(&mut self) -> Result<(), EventLogError> {
        if self.log.rewind_broken.load(Ordering::SeqCst) {
            return Err(EventLogError("the coordinator is not available".into()));
        }
        self.read_up_to = None;
        Ok(())
    }

    async fn backlog(&mut self) -> Result<u64, EventLogError> {
        if self.log.backlog_reads_zero.load(Ordering::SeqCst) {
            return Ok(0);
        }
        Ok(self.log.pending() as u64)
    }
}

// ---------------------------------------------------------------- store

type Refusal = Box<dyn Fn(&AnalysisRecorded) -> bool + Send + Sync>;

#[derive(Default)]
struct StoreState {
    analyses: BTreeMap<String, AnalysisRecorded>,
    /// Post ids stored per analysis (the parts of a split event add up).
    posts: BTreeMap<String, Vec<String>>,
    dead: BTreeMap<String, StoredDeadLetter>,
}

/// A store in memory. Like a SQL store it saves a batch in one transaction: one event
/// it refuses (see [`MemoryStore::refusing`]) fails the whole batch, with a permanent
/// error. [`MemoryStore::set_down`] makes every call fail with a transient one.
pub struct MemoryStore {
    state: Mutex<StoreState>,
    refuse: Refusal,
    down: AtomicBool,
    saves: AtomicUsize,
    top: Vec<String>,
    recent_texts: Vec<String>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            state: Mutex::default(),
            refuse: Box::new(|_| false),
            down: AtomicBool::new(false),
            saves: AtomicUsize::new(0),
            top: Vec::new(),
            recent_texts: Vec::new(),
        }
    }
}

impl MemoryStore {
    /// Refuses (for good) every batch holding an event for which `refuse` is true.
    pub fn refusing(refuse: impl Fn(&AnalysisRecorded) -> bool + Send + Sync + 'static) -> Self {
        MemoryStore {
            refuse: Box::new(refuse),
            ..MemoryStore::default()
        }
    }

    /// The keywords `top_keywords` reports, most analysed first.
    pub fn with_top_keywords(mut self, top: &[&str]) -> Self {
        self.top = top.iter().map(|k| k.to_string()).collect();
        self
    }

    /// The texts of posts of the last day that `post_texts` reports; older windows
    /// get 100 copies of "an ordinary day".
    pub fn with_recent_texts(mut self, texts: &[&str]) -> Self {
        self.recent_texts = texts.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Ids of the stored analyses, in order.
    pub fn analysis_ids(&self) -> Vec<String> {
        locked(&self.state).analyses.keys().cloned().collect()
    }

    /// Post ids stored for one analysis.
    pub fn post_ids(&self, analysis_id: &str) -> Vec<String> {
        locked(&self.state)
            .posts
            .get(analysis_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the analysis is stored as rebuilt by recovery (no posts).
    pub fn is_recovered(&self, analysis_id: &str) -> Option<bool> {
        locked(&self.state)
            .analyses
            .get(analysis_id)
            .map(|e| e.recovered)
    }

    /// Calls of `save`, failed ones included.
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    fn available(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl History for MemoryStore {
    async fn keyword_moods(&self, _: usize) -> Result<Vec<KeywordMood>, StoreError> {
        self.available()?;
        Ok(Vec::new())
    }
    async fn trend(
        &self,
        _: &Keyword,
        _: &Scope,
        _: usize,
    ) -> Result<Vec<AnalysisSummary>, StoreError> {
        self.available()?;
        Ok(Vec::new())
    }
    async fn scored_posts(
        &self,
        _: &Keyword,
        _: &Scope,
        _: usize,
    ) -> Result<Option<AnalysisPosts>, StoreError> {
        self.available()?;
        Ok(None)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save(&self, events: &[AnalysisRecorded]) -> Result<SaveReport, StoreError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.available()?;
        if let Some(bad) = events.iter().find(|e| (self.refuse)(e)) {
            return Err(StoreError::Rejected(format!(
                "invalid byte sequence in analysis {}",
                bad.analysis.id
            )));
        }
        let mut state = locked(&self.state);
        let mut report = SaveReport::default();
        for event in events {
            let id = event.analysis.id.clone();
            let posts = state.posts.entry(id.clone()).or_default();
            for p in &event.posts {
                if !posts.contains(&p.post.id) {
                    posts.push(p.post.id.clone());
                }
            }
            match state.analyses.get_mut(&id) {
                Some(stored) => {
                    report.already_stored += 1;
                    // The full event of an analysis that recovery stored first.
                    stored.recovered &= event.recovered;
                }
                None => {
                    report.inserted += 1;
                    state.analyses.insert(id, event.clone());
                }
            }
        }
        Ok(report)
    }

    async fn missing(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.available()?;
        let state = locked(&self.state);
        Ok(ids
            .iter()
            .filter(|id| !state.analyses.contains_key(*id))
            .cloned()
            .collect())
    }

    async fn top_keywords(&self, n: usize) -> Result<Vec<String>, StoreError> {
        self.available()?;
        Ok(self.top.iter().take(n).cloned().collect())
    }

    async fn post_texts(&self, since: i64, _: i64, _: usize) -> Result<Vec<String>, StoreError> {
        self.available()?;
        // The recent window starts within the last day; the background one before it.
        let recent = since > Utc::now().timestamp() - 86_400;
        Ok(if recent {
            self.recent_texts.clone()
        } else {
            vec!["an ordinary day".into(); 100]
        })
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.available()
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        self.available()?;
        let mut state = locked(&self.state);
        for letter in letters {
            let id = payload_id(&letter.payload);
            let entry = state.dead.entry(id.clone()).or_insert(StoredDeadLetter {
                id,
                letter: letter.clone(),
                dead_at: now(),
                attempts: 0,
            });
            entry.attempts += 1;
            entry.letter.error = letter.error.clone();
        }
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        self.available()?;
        Ok(locked(&self.state)
            .dead
            .values()
            .take(max)
            .cloned()
            .collect())
    }

    async fn forget_dead_letters(&self, ids: &[String]) -> Result<(), StoreError> {
        self.available()?;
        let mut state = locked(&self.state);
        for id in ids {
            state.dead.remove(id);
        }
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A stable id for a payload (not cryptographic: tests only).
fn payload_id(payload: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
