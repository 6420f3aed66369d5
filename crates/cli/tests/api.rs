//! The HTTP contract of `moodwire serve`, against the real model, the bundled sample
//! corpus and the in-process cache. Each test builds its app the way `moodwire serve`
//! does, through the composition root (`moodwire::app::App`) from a command line, on
//! port 0 with a data folder of its own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use clap::Parser;
use serde_json::{json, Value};

use moodwire::app::{analysis_runtime, App};
use moodwire::config::ServeArgs;
use moodwire_core::ports::{Classifier, ClassifyError};
use moodwire_core::Prediction;
use moodwire_server::access::{AccessPolicy, ApiKey};
use moodwire_storage::Journal;

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

/// `moodwire serve`'s command line.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    args: ServeArgs,
}

/// Counts how often the model is asked to work, and from which thread.
struct CountingClassifier {
    inner: Arc<dyn Classifier>,
    calls: AtomicUsize,
    threads: Mutex<Vec<String>>,
}

#[async_trait]
impl Classifier for CountingClassifier {
    fn model_version(&self) -> &str {
        self.inner.model_version()
    }

    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let thread = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().unwrap().push(thread);
        self.inner.classify(texts).await
    }
}

struct TestApp {
    base: String,
    journal: Journal,
    classifier: Arc<CountingClassifier>,
    client: reqwest::Client,
    /// The runtime new analyses are computed on, as `moodwire serve` makes it.
    analyses: Option<tokio::runtime::Runtime>,
    _data: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A runtime cannot be dropped inside another (the test's): let it go instead.
        if let Some(analyses) = self.analyses.take() {
            analyses.shutdown_background();
        }
    }
}

impl TestApp {
    /// How many times the model has been asked to classify.
    fn model_calls(&self) -> usize {
        self.classifier.calls.load(Ordering::SeqCst)
    }

    /// `host:port`, for raw connections.
    fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    async fn post(&self, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/analyze", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The app `moodwire serve` builds with these flags besides the test's own (port 0,
/// a fresh data folder, the bundled model and sample corpus, no background jobs).
async fn spawn_app_with(flags: &[&str]) -> TestApp {
    spawn_app_with_keys(flags, "").await
}

/// As [`spawn_app_with`], with these API keys (comma-separated), which `moodwire serve`
/// reads from `MOODWIRE_API_KEYS`.
async fn spawn_app_with_keys(flags: &[&str], keys: &str) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let own = [
        "serve".to_string(),
        "--addr=127.0.0.1:0".to_string(),
        format!("--data-dir={}", data.path().display()),
        format!("--model={}", repo("models/emotion")),
        "--source=sample".to_string(),
        format!("--sample-dir={}", repo("data/sample")),
        "--no-worker".to_string(),
    ];
    let command = own.into_iter().chain(flags.iter().map(|f| f.to_string()));
    let mut args = ServeCommand::try_parse_from(command)
        .expect("a valid command line")
        .args;
    args.api_keys = ApiKey::parse_list(keys);
    let analyses = analysis_runtime(args.pipeline.analysis_nice).unwrap();
    let mut counting = None;
    let app = App::build_observing(&args, analyses.handle().clone(), |inner| {
        let classifier = Arc::new(CountingClassifier {
            inner,
            calls: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
        });
        counting = Some(Arc::clone(&classifier));
        classifier
    })
    .await
    .expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let journal = app.journal().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base,
        journal,
        classifier: counting.expect("the classifier was observed"),
        client: reqwest::Client::new(),
        analyses: Some(analyses),
        _data: data,
    }
}

fn assert_contract(body: &Value, keyword: &str, source: &str) {
    assert_eq!(body["keyword"], keyword);
    assert_eq!(body["source"], source);
    assert_eq!(body["posts_source"], "sample");
    assert!(body["model"]
        .as_str()
        .unwrap()
        .starts_with("moodwire-emotion"));
    assert!(body["time"].as_f64().unwrap() >= 0.0);
    assert!(chrono::DateTime::parse_from_rfc3339(body["analyzed_at"].as_str().unwrap()).is_ok());
    let count = body["count"].as_u64().unwrap();
    let agg = body["agg"].as_array().unwrap();
    assert_eq!(agg.len(), 6, "all six emotions");
    let mut labels: Vec<&str> = agg.iter().map(|e| e["label"].as_str().unwrap()).collect();
    labels.sort();
    assert_eq!(
        labels,
        ["anger", "fear", "joy", "love", "sadness", "surprise"]
    );
    let pcts: Vec<f64> = agg.iter().map(|e| e["pct"].as_f64().unwrap()).collect();
    assert!(
        pcts.windows(2).all(|w| w[0] >= w[1]),
        "sorted by pct: {pcts:?}"
    );
    let counted: u64 = agg.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, count);
    if count > 0 {
        assert!((pcts.iter().sum::<f64>() - 100.0).abs() <= 0.1);
    }
    for e in agg {
        let avg = e["avg_score"].as_f64().unwrap();
        if e["count"] == 0 {
            assert_eq!(avg, 0.0);
        } else {
            assert!((1.0 / 6.0..=1.0).contains(&avg), "avg_score {avg}");
        }
    }
}

#[tokio::test]
async fn a_miss_then_a_hit_with_the_same_breakdown_and_a_valid_plot() {
    let app = spawn_app().await;
    let (status, first) = app.post(r#"{"keyword": "AI", "limit": 60}"#).await;
    assert_eq!(status, 200, "{first}");
    assert_contract(&first, "AI", "inference");
    assert_eq!(first["count"], 60);

    let (status, second) = app.post(r#"{"keyword": " ai ", "limit": 60}"#).await;
    assert_eq!(status, 200);
    assert_contract(&second, "AI", "cache");
    assert_eq!(first["agg"], second["agg"]);
    assert_eq!(app.model_calls(), 1);

    for body in [&first, &second] {
        let png = base64::engine::general_purpose::STANDARD
            .decode(body["plot_base64"].as_str().unwrap())
            .unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("a valid PNG");
        assert_eq!(
            (reader.info().width, reader.info().height),
            (moodwire_server::plot::WIDTH, moodwire_server::plot::HEIGHT)
        );
    }

    let (_, without_plot) = app
        .post(r#"{"keyword": "AI", "limit": 60, "return_plot": false}"#)
        .await;
    assert_eq!(without_plot["plot_base64"], Value::Null);
    assert_eq!(without_plot["source"], "cache");

    // One computed analysis, one event; the cached answers carry the same id.
    assert_eq!(app.journal.pending().await.unwrap(), 1);
    assert!(!first["analysis_id"].as_str().unwrap().is_empty());
    assert_eq!(first["analysis_id"], second["analysis_id"]);
    assert_eq!(first["analysis_id"], without_plot["analysis_id"]);
}

#[tokio::test]
async fn a_keyword_with_no_posts_is_an_empty_answer_not_an_error() {
    let app = spawn_app().await;
    let (status, body) = app.post(r#"{"keyword": "zyzzyva quux"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_contract(&body, "zyzzyva quux", "inference");
    assert_eq!(body["count"], 0);
    assert!(body["agg"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["pct"] == 0.0));
}

#[tokio::test]
async fn one_hundred_concurrent_misses_run_inference_once() {
    let app = Arc::new(spawn_app().await);
    let requests = (0..100).map(|_| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            app.post(r#"{"keyword": "bitcoin", "limit": 80, "return_plot": false}"#)
                .await
        })
    });
    let mut agg = None;
    for r in requests {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let this = body["agg"].clone();
        assert_eq!(agg.get_or_insert(this.clone()), &this);
    }
    assert_eq!(app.model_calls(), 1);
    assert_eq!(
        app.journal.pending().await.unwrap(),
        1,
        "one event per computed analysis"
    );
}

#[tokio::test]
async fn overload_is_answered_503_with_retry_after_at_once() {
    // A queue of one token: the first miss is admitted, concurrent ones are refused.
    let app = Arc::new(spawn_app_with(&["--max-queued-tokens=1"]).await);
    let keywords = [
        "AI",
        "climate",
        "bitcoin",
        "elections",
        "layoffs",
        "housing",
    ];
    let requests = keywords.map(|k| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let r = app
                .client
                .post(app.url("/analyze"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"keyword": "{k}", "limit": 300, "return_plot": false}}"#
                ))
                .send()
                .await
                .unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                r.status().as_u16(),
                retry_after,
                r.json::<Value>().await.unwrap(),
            )
        })
    });
    let mut statuses = Vec::new();
    for r in requests {
        let (status, retry_after, body) = r.await.unwrap();
        if status == 503 {
            assert_eq!(body["error"]["code"], "overloaded");
            let retry: u64 = retry_after.expect("a Retry-After").parse().unwrap();
            assert!((1..=30).contains(&retry), "{retry}");
        } else {
            assert_eq!(status, 200, "{body}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
}

#[tokio::test]
async fn every_bad_input_is_a_4xx_with_a_stable_code_and_field() {
    let app = spawn_app().await;
    let long = "k".repeat(101);
    let huge = format!(r#"{{"keyword": "{}"}}"#, "a".repeat(17 * 1024));
    let eleven =
        serde_json::to_string(&(0..11).map(|i| format!("sub{i}")).collect::<Vec<_>>()).unwrap();
    // One case a line: the body, then the status, code and field it must be answered with.
    #[rustfmt::skip]
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        ("not json".into(),                                400, "invalid_json",    None),
        ("[]".into(),                                      400, "invalid_json",    None),
        ("{}".into(),                                      422, "missing_field",   Some("keyword")),
        (r#"{"keyword": 42}"#.into(),                      422, "invalid_type",    Some("keyword")),
        (r#"{"keyword": "  "}"#.into(),                    422, "invalid_keyword", Some("keyword")),
        (format!(r#"{{"keyword": "{long}"}}"#),            422, "invalid_keyword", Some("keyword")),
        (r#"{"keyword": "ai", "limit": 0}"#.into(),        422, "invalid_limit",   Some("limit")),
        (r#"{"keyword": "ai", "limit": 1001}"#.into(),     422, "invalid_limit",   Some("limit")),
        (r#"{"keyword": "ai", "limit": "ten"}"#.into(),    422, "invalid_type",    Some("limit")),
        (r#"{"keyword": "ai", "return_plot": 1}"#.into(),  422, "invalid_type",    Some("return_plot")),
        (r#"{"keyword": "ai", "colour": "red"}"#.into(),   422, "unknown_field",   Some("colour")),
        (r#"{"keyword": "ai", "examples": 6}"#.into(),     422, "invalid_parameter", Some("examples")),
        (r#"{"keyword": "ai", "examples": -1}"#.into(),    422, "invalid_parameter", Some("examples")),
        (r#"{"keyword": "ai", "examples": 2.5}"#.into(),   422, "invalid_type",    Some("examples")),
        (r#"{"keyword": "ai", "subreddits": "stocks"}"#.into(),   422, "invalid_type",       Some("subreddits")),
        (r#"{"keyword": "ai", "subreddits": ["ok", 5]}"#.into(),  422, "invalid_type",       Some("subreddits")),
        (r#"{"keyword": "ai", "subreddits": ["a"]}"#.into(),      422, "invalid_subreddits", Some("subreddits")),
        (r#"{"keyword": "ai", "subreddits": ["r/ok"]}"#.into(),   422, "invalid_subreddits", Some("subreddits")),
        (format!(r#"{{"keyword": "ai", "subreddits": {eleven}}}"#), 422, "invalid_subreddits", Some("subreddits")),
        (r#"{"keyword": "ai", "window": "fortnight"}"#.into(),    422, "invalid_window",     Some("window")),
        (r#"{"keyword": "ai", "window": 7}"#.into(),              422, "invalid_type",       Some("window")),
        (huge,                                             413, "body_too_large",  None),
        // Control and format characters: NUL, a bidi override, a zero-width space.
        (r#"{"keyword": "a\u0000b", "limit": 20}"#.into(), 422, "invalid_keyword", Some("keyword")),
        (r#"{"keyword": "\u202eevil"}"#.into(),            422, "invalid_keyword", Some("keyword")),
        (r#"{"keyword": "zero\u200bwidth"}"#.into(),       422, "invalid_keyword", Some("keyword")),
    ];
    for (body, status, code, field) in cases {
        let (got, answer) = app.post(&body).await;
        let shown = &body[..body.len().min(60)];
        assert_eq!(got, status, "{shown}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{shown}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        match field {
            Some(f) => assert_eq!(answer["error"]["field"], f, "{shown}"),
            None => assert!(answer["error"].get("field").is_none()),
        }
    }
    assert_eq!(app.model_calls(), 0, "bad input never reaches the model");
}

/// Examples are each emotion's most confident posts, read from the cached analysis:
/// a repeated question with more examples is still a cache hit.
#[tokio::test]
async fn examples_are_the_most_confident_posts_and_come_from_the_cache_too() {
    let app = spawn_app().await;
    let ask = |examples: Option<u32>| {
        let extra = examples.map_or(String::new(), |n| format!(r#", "examples": {n}"#));
        format!(r#"{{"keyword": "work", "limit": 60, "return_plot": false{extra}}}"#)
    };
    let (status, two) = app.post(&ask(Some(2))).await;
    assert_eq!(status, 200, "{two}");
    let agg = two["agg"].as_array().unwrap();
    let mut shown = 0;
    for entry in agg {
        let examples = entry["examples"]
            .as_array()
            .expect("examples on every entry");
        let count = entry["count"].as_u64().unwrap() as usize;
        assert_eq!(examples.len(), count.min(2), "{entry}");
        let scores: Vec<f64> = examples
            .iter()
            .map(|e| e["score"].as_f64().unwrap())
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "most confident first: {scores:?}"
        );
        for example in examples {
            assert_eq!(example["label"], entry["label"]);
            assert!(example["excerpt"].as_str().unwrap().chars().count() <= 280);
            for field in ["post_id", "title", "permalink", "subreddit", "created_at"] {
                assert!(example[field].is_string(), "{field} in {example}");
            }
        }
        shown += examples.len();
    }
    assert!(shown > 0, "{two}");

    let (_, five) = app.post(&ask(Some(5))).await;
    assert_eq!(five["source"], "cache");
    for (few, more) in agg.iter().zip(five["agg"].as_array().unwrap()) {
        let (few, more) = (
            few["examples"].as_array().unwrap(),
            more["examples"].as_array().unwrap(),
        );
        assert!(more.len() >= few.len() && more.len() <= 5);
        assert_eq!(few[..], more[..few.len()], "the same posts first");
    }
    let (_, none) = app.post(&ask(None)).await;
    assert!(
        none["agg"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("examples").is_none()),
        "{none}"
    );
    assert_eq!(app.model_calls(), 1, "one analysis answered all three");
}

/// Subreddits and a window make a question of their own: computed apart, echoed in the
/// answer, cached under its sorted subreddits and window whatever order and case they
/// were sent in.
#[tokio::test]
async fn subreddits_and_a_window_are_a_question_of_their_own() {
    let app = spawn_app().await;
    let ask = |scope: &str| {
        format!(
            r#"{{"keyword": "work", "limit": 500, "return_plot": false, "examples": 5{scope}}}"#
        )
    };
    let (status, everywhere) = app.post(&ask("")).await;
    assert_eq!(status, 200, "{everywhere}");
    assert_eq!(
        (
            everywhere["subreddits"].clone(),
            everywhere["window"].clone()
        ),
        (json!([]), json!("all"))
    );

    let (status, scoped) = app
        .post(&ask(r#", "subreddits": ["RemoteWork", "jobs"]"#))
        .await;
    assert_eq!(status, 200, "{scoped}");
    assert_eq!(scoped["source"], "inference", "not the unrestricted answer");
    assert_eq!(scoped["subreddits"], json!(["jobs", "remotework"]));
    let count = |answer: &Value| answer["count"].as_u64().unwrap();
    assert!(
        count(&scoped) > 0 && count(&scoped) < count(&everywhere),
        "{scoped}"
    );
    for example in scoped["agg"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["examples"].as_array().unwrap())
    {
        assert!(
            ["jobs", "remotework"].contains(
                &example["subreddit"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .as_str()
            ),
            "{example}"
        );
    }
    let (_, again) = app
        .post(&ask(
            r#", "subreddits": ["jobs", "remotework", "JOBS"], "window": "all""#,
        ))
        .await;
    assert_eq!(
        (again["source"].clone(), again["analysis_id"].clone()),
        (json!("cache"), scoped["analysis_id"].clone())
    );

    // The sample corpus is a snapshot: the week before its newest post.
    let (status, week) = app
        .post(&ask(
            r#", "subreddits": ["jobs", "remotework"], "window": "week""#,
        ))
        .await;
    assert_eq!(status, 200, "{week}");
    assert_eq!(
        (week["source"].clone(), week["window"].clone()),
        (json!("inference"), json!("week"))
    );
    assert!(count(&week) < count(&scoped), "{week}");
    assert_eq!(
        app.journal.pending().await.unwrap(),
        3,
        "three questions, each computed once"
    );
    // The scoped questions' posts are among the unrestricted one's: their predictions
    // come from the prediction cache.
    assert_eq!(app.model_calls(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    for (path, status, code) in [
        ("/nope", 404, "not_found"),
        ("/analyze", 405, "method_not_allowed"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), status, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
    }
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["model"], app.classifier.model_version());
    assert_eq!(ready["cache"], "ok");

    app.post(r#"{"keyword": "climate", "limit": 5, "return_plot": false}"#)
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for name in [
        "moodwire_http_requests_total{route=\"/analyze\",method=\"POST\",status=\"200\"}",
        "moodwire_http_request_duration_seconds_bucket",
        "moodwire_cache_requests_total",
        "moodwire_inference_batch_size_bucket",
        "moodwire_inference_batch_seconds_bucket",
        "moodwire_inference_queue_tokens",
        "moodwire_model_info{version=",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let analyze = &spec["paths"]["/analyze"]["post"];
    assert!(analyze["requestBody"].is_object());
    for status in ["200", "400", "413", "422", "503"] {
        assert!(
            analyze["responses"][status].is_object(),
            "/analyze documents {status}"
        );
    }
    let schemas = &spec["components"]["schemas"];
    let response_fields = schemas["AnalyzeResponse"]["properties"]
        .as_object()
        .unwrap();
    for field in [
        "keyword",
        "count",
        "agg",
        "plot_base64",
        "source",
        "time",
        "model",
        "posts_source",
        "analyzed_at",
    ] {
        assert!(
            response_fields.contains_key(field),
            "AnalyzeResponse documents {field}"
        );
    }
    assert_eq!(
        json!(schemas["AnalyzeRequestBody"]["required"]),
        json!(["keyword"])
    );
}

#[tokio::test]
async fn api_keys_guard_every_route_but_healthz() {
    let app = spawn_app_with_keys(&[], "k-one,k-two").await;
    let client = &app.client;
    let healthz = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);

    // Nine failures: one fewer than the address may make before it is refused.
    let tries = [
        None,
        Some("Bearer nope"),
        Some("k-one"),
        Some("Bearer k-one-and-more"),
    ]
    .into_iter()
    .flat_map(|auth| ["/readyz", "/analyze"].map(|path| (auth, path)))
    .chain([(None, "/metrics")]);
    for (auth, path) in tries {
        {
            let mut request = client.get(app.url(path));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{path} with {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    let response = client
        .post(app.url("/analyze"))
        .header("authorization", "Bearer k-two")
        .json(&json!({"keyword": "AI", "limit": 5, "return_plot": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metrics = client
        .get(app.url("/metrics"))
        .header("authorization", "Bearer k-one")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("moodwire_access_denied_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_client_gets_its_burst_then_429_with_retry_after() {
    let app = spawn_app_with(&["--rate-limit-per-minute=6", "--rate-limit-burst=3"]).await;
    let statuses: Vec<u16> = readyz_statuses(&app, 5).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 429);
    // One token every 10 s.
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // /healthz stays open for the load balancer.
    let healthz = app.get("/healthz").await;
    assert_eq!(healthz.status(), 200);
}

/// A client that trickles its request head, one with a huge head, and one past the
/// connection bound are each cut off quickly; the server goes on answering.
#[tokio::test]
async fn slow_huge_or_excess_connections_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[
        "--header-read-timeout-secs=1",
        "--max-header-bytes=16384",
        "--max-connections=3",
    ])
    .await;
    let address = app.address().to_string();

    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: moodwire\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest))
        .await
        .expect("a slow-loris connection is closed")
        .ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let unpooled = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let healthz_padded = |bytes: usize| {
        unpooled
            .get(app.url("/healthz"))
            .header("x-padding", "a".repeat(bytes))
            .send()
    };
    let large = healthz_padded(20 * 1024).await.unwrap();
    assert_eq!(large.status(), 431, "a request head over the limit");
    let body: Value = large.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert_eq!(
        body["error"]["message"],
        "the request line and headers are larger than 16384 bytes"
    );
    let just_under = healthz_padded(16 * 1024 - 200).await.unwrap();
    assert_eq!(just_under.status(), 200, "a head just under the limit");
    // Past twice the limit the parser stops reading: a bare 431, nothing buffered.
    let huge = healthz_padded(40 * 1024).await.unwrap();
    assert_eq!(huge.status(), 431, "a request head over the parser's cap");
    drop(huge);
    // The server lets go of the closed connections' slots.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Two idle connections and one in use fill the bound; a fourth is closed unserved.
    let _idle = [
        tokio::net::TcpStream::connect(&address).await.unwrap(),
        tokio::net::TcpStream::connect(&address).await.unwrap(),
    ];
    let mut in_use = tokio::net::TcpStream::connect(&address).await.unwrap();
    in_use
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: moodwire\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    in_use.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let mut excess = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(900), async {
        excess
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: moodwire\r\n\r\n")
            .await
            .ok();
        excess.read(&mut byte).await
    })
    .await
    .expect("the excess connection is closed at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no answer past the bound: {read:?}"
    );
}

async fn readyz_statuses(app: &TestApp, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let response = app.get("/readyz").await;
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn analyze_takes_json_bodies_only() {
    let app = spawn_app().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .post(app.url("/analyze"))
            .body(r#"{"keyword": "AI", "limit": 5}"#);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
    let (status, _) = app
        .post(r#"{"keyword": "AI", "limit": 5, "return_plot": false}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.model_calls(), 1, "415s never reach the model");
}

#[tokio::test]
async fn a_server_side_failure_says_what_to_do_and_the_request_id_not_the_details() {
    // The history routes answer 503 while the store is not connected: nothing listens
    // on port 1.
    let app = spawn_app_with(&["--database-url=postgres://moodwire@127.0.0.1:1/none"]).await;
    let response = app.get("/api/keywords").await;
    assert_eq!(response.status(), 503);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(
        body["error"]["message"],
        "the history store is unavailable; retry after the Retry-After delay"
    );
    assert_eq!(body["error"]["request_id"], request_id.as_str());
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let metrics_text = || async { app.get("/metrics").await.text().await.unwrap() };
    let invent = |n: usize| {
        let method = reqwest::Method::from_bytes(format!("FOO{n}").as_bytes()).unwrap();
        app.client.request(method, app.url("/analyze")).send()
    };
    for n in 0..5 {
        assert_eq!(invent(n).await.unwrap().status(), 405);
    }
    for n in 5..100 {
        invent(n).await.unwrap();
    }
    // /metrics is the process's (other tests add to it): look at this route's series.
    let after = metrics_text().await;
    assert!(!after.contains("FOO"), "no invented method becomes a label");
    let series: Vec<&str> = after
        .lines()
        .filter(|l| {
            l.starts_with("moodwire_http_requests_total{") && l.contains(r#"method="other""#)
        })
        .collect();
    assert_eq!(
        series.len(),
        1,
        "one series for every invented method: {series:?}"
    );
    assert!(series[0].contains(r#"status="405""#), "{series:?}");
}

/// A client that connects and sends nothing, or only the first byte of a request (so
/// the server cannot tell HTTP/1 from HTTP/2), is let go at the header-read timeout.
#[tokio::test]
async fn silent_connections_are_closed_at_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&["--header-read-timeout-secs=1"]).await;
    let address = app.address().to_string();
    for first_bytes in [&b""[..], b"P", b"PRI * HTTP/2.0\r\n"] {
        let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
        silent.write_all(first_bytes).await.unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("{first_bytes:?}: the connection is held past 5 s"))
            .ok();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{first_bytes:?}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn repeated_bad_keys_from_one_address_are_refused_for_a_while() {
    let app = spawn_app_with_keys(&[], "the-key").await;
    let readyz = |key: &str| {
        app.client
            .get(app.url("/readyz"))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    for _ in 0..AccessPolicy::MAX_FAILED_AUTH {
        assert_eq!(readyz("guess").await.unwrap().status(), 401);
    }
    let refused = readyz("the-key").await.unwrap();
    assert_eq!(
        refused.status(),
        429,
        "even the right key, until the window ends"
    );
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_full_journal_is_reported_and_the_answer_still_served() {
    // The first analyses classify a thousand posts each: on a busy machine that can
    // take longer than the default request timeout.
    let app = spawn_app_with(&["--journal-max-mb=1", "--request-timeout-secs=300"]).await;
    let get_ready = || async { app.get("/readyz").await.json::<Value>().await.unwrap() };
    assert_eq!(get_ready().await["event_log"], "ok");
    // Large analyses of common words, until one no longer fits in the megabyte.
    let mut event_log = String::new();
    for keyword in [
        "the", "and", "to", "my", "it", "of", "is", "in", "that", "for",
    ] {
        let (status, body) = app
            .post(&format!(
                r#"{{"keyword": "{keyword}", "limit": 1000, "return_plot": false}}"#
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let ready = get_ready().await;
        assert_eq!(ready["status"], "ready");
        event_log = ready["event_log"].as_str().unwrap().to_string();
        if event_log != "ok" {
            break;
        }
    }
    assert!(
        event_log.starts_with("failing: ") && event_log.contains("full"),
        "{event_log}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("moodwire_event_append_errors_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn new_analyses_are_computed_on_the_analysis_runtime_and_hits_answered_in_place() {
    let mut app = spawn_app().await;
    let body = r#"{"keyword": "AI", "limit": 20, "return_plot": false}"#;
    let (status, computed) = app.post(body).await;
    assert_eq!(status, 200, "{computed}");
    assert_contract(&computed, "AI", "inference");
    let (status, hit) = app.post(body).await;
    assert_eq!(status, 200, "{hit}");
    assert_eq!(hit["source"], "cache");
    assert_eq!(
        *app.classifier.threads.lock().unwrap(),
        ["moodwire-analysis"],
        "one inference, asked from the analysis runtime"
    );
    // Once that runtime is gone (the server shutting down), a new question is refused
    // as such; a cached one is still answered.
    app.analyses.take().unwrap().shutdown_background();
    let (status, refused) = app
        .post(r#"{"keyword": "AI", "limit": 21, "return_plot": false}"#)
        .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "shutting_down", "{refused}");
    assert_eq!(app.post(body).await.0, 200);
}
