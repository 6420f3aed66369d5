//! Cold analyses against refreshes, on Reddit: time, Reddit calls and posts classified
//! for each, measured side by side in one run, with the real model and a real HTTP
//! server that speaks Reddit's token and search endpoints.
//!
//!   cargo bench -p moodwire --bench refresh [-- --repeats N]
//!
//! Each repeat takes a keyword of its own (the server makes posts per keyword, 250 a
//! keyword at first): a cold analysis of 250 posts, then a refresh (what the warmer
//! does, or a question after its answer expired) with none, 20 % (50) or all posts new.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moodwire_core::ports::{Classifier, ClassifyError};
use moodwire_core::service::AnalysisService;
use moodwire_core::{Keyword, Limit, Prediction, Question};
use moodwire_model::{Engine, EngineOptions, Infer, InferOptions, ModelDir};
use moodwire_sources::reddit::Secret;
use moodwire_sources::{RedditConfig, RedditSource};
use moodwire_storage::{Journal, MemoryCache, MemoryPredictions};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Posts per keyword, newest first, that the fake Reddit pages through.
#[derive(Default, Clone)]
struct Posts(Arc<Mutex<HashMap<String, Vec<Value>>>>);

impl Posts {
    /// `n` new posts on top of `keyword`'s.
    fn publish(&self, keyword: &str, n: usize) {
        let mut all = self.0.lock().unwrap();
        let posts = all.entry(keyword.to_string()).or_default();
        let start = posts.len();
        for i in start..start + n {
            let post = json!({"kind": "t3", "data": {
                "id": format!("{}-{i}", keyword.replace(' ', "-")), "subreddit": "bench", "author": "someone",
                "created_utc": 1_700_000_000 + i as i64,
                "title": format!("Post {i} about {keyword}: what happened next"),
                "selftext": "A self-post of a few sentences, as people write them. ".repeat(1 + i % 6),
                "permalink": format!("/r/bench/comments/{i}/")
            }});
            posts.insert(0, post);
        }
    }
}

impl Respond for Posts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let keyword = query.get("q").cloned().unwrap_or_default();
        let from: usize = query
            .get("after")
            .and_then(|a| a.strip_prefix("next"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let all = self.0.lock().unwrap();
        let posts = all.get(&keyword).cloned().unwrap_or_default();
        let page: Vec<Value> = posts.iter().skip(from).take(100).cloned().collect();
        let after = (from + 100 < posts.len()).then(|| format!("next{}", from + 100));
        ResponseTemplate::new(200)
            .set_body_json(json!({"kind": "Listing", "data": {"after": after, "children": page}}))
    }
}

/// The real classifier, counting the texts it is given.
struct Counting {
    inner: Infer,
    texts: AtomicUsize,
}

#[async_trait]
impl Classifier for Counting {
    fn model_version(&self) -> &str {
        self.inner.model_version()
    }
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.classify(texts).await
    }
}

struct Measured {
    times: Vec<Duration>,
    calls: Vec<usize>,
    classified: Vec<usize>,
}

impl Measured {
    fn new() -> Self {
        Measured {
            times: Vec::new(),
            calls: Vec::new(),
            classified: Vec::new(),
        }
    }
}

fn median<T: Copy + Ord>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args()
        .skip_while(|a| a != "--repeats")
        .nth(1)
        .map(|n| n.parse().expect("--repeats N"))
        .unwrap_or(5);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(repeats));
}

async fn run(repeats: usize) {
    let reddit = MockServer::start().await;
    moodwire_testkit::reddit::grant_tokens(&reddit).await;
    let posts = Posts::default();
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(posts.clone())
        .mount(&reddit)
        .await;
    let mut config = RedditConfig::new(
        Some("bench-app"),
        Some(Secret::new("bench-secret".to_string())),
        Some("linux:moodwire-bench:0.1.0 (by /u/moodwire)"),
        &moodwire_testkit::reddit::token_url(&reddit),
        &reddit.uri(),
    )
    .unwrap();
    config.calls_per_minute = 100_000;
    let source = Arc::new(RedditSource::new(config).unwrap());
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let engine = Engine::load(
        &ModelDir::open(repo.join("models/emotion")).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    let classifier = Arc::new(Counting {
        inner: Infer::start(engine, InferOptions::default()).unwrap(),
        texts: AtomicUsize::new(0),
    });
    let data = tempfile::tempdir().unwrap();
    let journal = Journal::open(data.path()).await.unwrap();
    let service = AnalysisService::new(
        source,
        classifier.clone(),
        Arc::new(MemoryCache::new(Duration::from_secs(3600), 100_000)),
        Arc::new(journal),
    )
    .with_prediction_cache(Arc::new(MemoryPredictions::new(
        MemoryPredictions::DEFAULT_MAX_BYTES,
    )));
    let limit = Limit::parse(250).unwrap();
    let searches = || moodwire_testkit::reddit::search_requests(&reddit);
    // (name, new posts before the refresh; None: the cold analysis itself)
    let scenarios: [(&str, Option<usize>); 4] = [
        ("cold: 250 posts, all new", None),
        ("refresh, none new", Some(0)),
        ("refresh, 20 % new (50)", Some(50)),
        ("refresh, all new (250)", Some(250)),
    ];
    let mut results: Vec<Measured> = scenarios.iter().map(|_| Measured::new()).collect();
    let warm = Keyword::parse("warm up").unwrap();
    posts.publish("warm up", 250);
    service
        .analyze(&Question::new(warm.clone(), limit))
        .await
        .unwrap();
    for repeat in 0..repeats {
        for (s, (_, new)) in scenarios.iter().enumerate() {
            let name = format!("topic {repeat} {s}");
            let keyword = Keyword::parse(&name).unwrap();
            posts.publish(&name, 250);
            if new.is_some() {
                service
                    .analyze(&Question::new(keyword.clone(), limit))
                    .await
                    .unwrap();
                posts.publish(&name, new.unwrap());
            }
            let (calls, texts) = (searches().await, classifier.texts.load(Ordering::SeqCst));
            let started = Instant::now();
            let analysis = match new {
                None => {
                    service
                        .analyze(&Question::new(keyword.clone(), limit))
                        .await
                        .unwrap()
                        .0
                }
                Some(_) => service
                    .refresh(&Question::new(keyword.clone(), limit))
                    .await
                    .unwrap(),
            };
            results[s].times.push(started.elapsed());
            results[s].calls.push(searches().await - calls);
            results[s]
                .classified
                .push(classifier.texts.load(Ordering::SeqCst) - texts);
            assert_eq!(analysis.count, 250);
        }
    }
    let cold = median(&results[0].times);
    println!(
        "{:<28} {:>10} {:>8} {:>13} {:>13}",
        "analysis (Reddit)", "p50 ms", "calls", "classified", "vs cold"
    );
    for ((name, _), m) in scenarios.iter().zip(&results) {
        let p50 = median(&m.times);
        println!(
            "{name:<28} {:>10.1} {:>8} {:>13} {:>12.1}x",
            p50.as_secs_f64() * 1e3,
            median(&m.calls),
            median(&m.classified),
            cold.as_secs_f64() / p50.as_secs_f64()
        );
    }
}
