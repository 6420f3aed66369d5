//! `moodwire bench`: classifier and cache-path throughput and latency, measured
//! side by side in one run and printed as a table (or JSON).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use moodwire_core::service::{AnalysisService, Served};
use moodwire_core::{Keyword, Limit, Question};
use moodwire_model::Engine;
use moodwire_server::{router, serve, AppState};
use moodwire_storage::{MemoryCache, MemoryPredictions};
use serde::Serialize;

use crate::config::PipelineArgs;
use crate::model_args::resolve;
use crate::wiring::Caches;

#[derive(clap::Args)]
pub struct Args {
    /// Texts to classify: `text;label` or plain lines (default: the emotion test split).
    #[arg(long, default_value = "data/emotion/test.txt")]
    corpus: PathBuf,
    /// Posts timed one at a time for single-post latency.
    #[arg(long, default_value_t = 300)]
    single: usize,
    /// Repetitions of each 250-post measurement.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Requests for each cache-hit measurement.
    #[arg(long, default_value_t = 2000)]
    hits: usize,
    /// Keyword of the end-to-end measurements (it must match at least 250 sample posts).
    #[arg(long, default_value = "AI")]
    keyword: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

#[derive(Serialize)]
struct Row {
    name: &'static str,
    /// Milliseconds per operation.
    p50_ms: f64,
    p99_ms: f64,
    /// Items (posts or requests) per second.
    per_second: f64,
    unit: &'static str,
}

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let texts = read_corpus(&resolve(&args.corpus))?;
    anyhow::ensure!(
        texts.len() >= 250,
        "the bench corpus needs at least 250 texts"
    );
    let batch: Vec<String> = texts[..250].to_vec();
    let mut rows = Vec::new();

    let dir = runtime.block_on(args.pipeline.model.open_async())?;
    let mut engine = Engine::load(&dir, args.pipeline.model.engine_options())?;
    engine.classify(&batch)?; // warm-up: first runs allocate
    rows.push(single_post(
        &mut engine,
        &texts[..args.single.min(texts.len())],
    )?);
    rows.push(posts_250(
        &mut engine,
        &batch,
        args.repeats,
        "classifier: 250 posts, length-bucketed",
    )?);
    let mut fixed_options = args.pipeline.model.engine_options();
    fixed_options.max_batch_size = 16;
    fixed_options.max_batch_tokens = usize::MAX;
    fixed_options.length_bucketing = false;
    let mut fixed = Engine::load(&dir, fixed_options)?;
    rows.push(posts_250(
        &mut fixed,
        &batch,
        args.repeats,
        "classifier: 250 posts, batches of 16 in order",
    )?);
    drop(fixed);
    rows.push(whole_corpus(&mut engine, &texts)?);
    drop(engine);

    let keyword = Keyword::parse(&args.keyword)?;
    rows.extend(runtime.block_on(async {
        let predictions = Arc::new(MemoryPredictions::new(MemoryPredictions::DEFAULT_MAX_BYTES));
        let caches = Caches {
            results: Arc::new(MemoryCache::new(Duration::from_secs(3600), 100_000)),
            predictions: predictions.clone(),
            redis: None,
        };
        let service = args.pipeline.build_with(caches).await?.service;
        let mut rows = refreshes(&service, &predictions, &keyword, args.repeats).await?;
        rows.extend(end_to_end(service, &keyword, args.hits).await?);
        anyhow::Ok(rows)
    })?);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(())
}

fn read_corpus(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the bench corpus {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.rsplit_once(';') {
            Some((t, label)) if label.parse::<moodwire_core::Emotion>().is_ok() => t.to_string(),
            _ => l.to_string(),
        })
        .collect())
}

fn single_post(engine: &mut Engine, texts: &[String]) -> anyhow::Result<Row> {
    let mut times = Vec::with_capacity(texts.len());
    for t in texts {
        let started = Instant::now();
        engine.classify(std::slice::from_ref(t))?;
        times.push(started.elapsed());
    }
    Ok(row("classifier: 1 post", &times, 1, "posts"))
}

fn posts_250(
    engine: &mut Engine,
    batch: &[String],
    repeats: usize,
    name: &'static str,
) -> anyhow::Result<Row> {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        engine.classify(batch)?;
        times.push(started.elapsed());
    }
    Ok(row(name, &times, batch.len(), "posts"))
}

fn whole_corpus(engine: &mut Engine, texts: &[String]) -> anyhow::Result<Row> {
    let started = Instant::now();
    engine.classify(texts)?;
    let elapsed = started.elapsed();
    Ok(row(
        "classifier: whole corpus, length-bucketed",
        &[elapsed],
        texts.len(),
        "posts",
    ))
}

/// Analyses of 250 sample posts whose posts are all new (cold), 20 % new, or none
/// new (each post's prediction known from an earlier analysis of more or fewer of
/// them), side by side. Distinct limits make distinct result-cache keys.
async fn refreshes(
    service: &AnalysisService,
    predictions: &MemoryPredictions,
    keyword: &Keyword,
    repeats: usize,
) -> anyhow::Result<Vec<Row>> {
    let (mut cold, mut some_new, mut none_new) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..repeats.max(1) as i64 {
        // Limits 250..: never asked before in this run.
        predictions.clear();
        cold.push(timed_miss(service, keyword, 250 + 3 * i).await?);
        // The first 200 of the 250 known: 50 new (20 %).
        predictions.clear();
        timed_miss(service, keyword, 200 + i).await?;
        some_new.push(timed_miss(service, keyword, 251 + 3 * i).await?);
        // All 250 known.
        timed_miss(service, keyword, 500 + i).await?;
        none_new.push(timed_miss(service, keyword, 252 + 3 * i).await?);
    }
    Ok(vec![
        row("analysis: 250 posts, all new (cold)", &cold, 1, "analyses"),
        row("analysis: 250 posts, 20 % new", &some_new, 1, "analyses"),
        row("analysis: 250 posts, none new", &none_new, 1, "analyses"),
    ])
}

/// One analysis that must miss the result cache, timed.
async fn timed_miss(
    service: &AnalysisService,
    keyword: &Keyword,
    limit: i64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let question = Question::new(keyword.clone(), Limit::parse(limit)?);
    let (analysis, served) = service.analyze(&question).await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(served == Served::Inference, "expected a cache miss");
    anyhow::ensure!(
        analysis.count as i64 >= limit.min(250),
        "keyword {keyword} matches only {} sample posts; pick another",
        analysis.count
    );
    Ok(elapsed)
}

/// Cache hits in-process and over HTTP (of the 250-post analysis `refreshes` made).
async fn end_to_end(
    service: Arc<AnalysisService>,
    keyword: &Keyword,
    hits: usize,
) -> anyhow::Result<Vec<Row>> {
    let question = Question::new(keyword.clone(), Limit::parse(250)?);
    let mut in_process = Vec::with_capacity(hits);
    for _ in 0..hits {
        let started = Instant::now();
        let (_, served) = service.analyze(&question).await?;
        in_process.push(started.elapsed());
        anyhow::ensure!(served == Served::Cache, "expected a cache hit");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/analyze", listener.local_addr()?);
    let app = router(AppState::new(service, Duration::from_secs(30)));
    tokio::spawn(serve(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let mut http = Vec::new();
    for return_plot in [false, true] {
        let body = serde_json::json!({"keyword": keyword.as_str(), "limit": 250, "return_plot": return_plot}).to_string();
        let mut times = Vec::with_capacity(hits);
        for _ in 0..hits {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await?;
            anyhow::ensure!(response.status() == 200, "HTTP {}", response.status());
            response.bytes().await?;
            times.push(started.elapsed());
        }
        http.push(times);
    }
    Ok(vec![
        row(
            "analysis: cache hit (in-process)",
            &in_process,
            1,
            "analyses",
        ),
        row(
            "HTTP cache hit, no plot (1 client)",
            &http[0],
            1,
            "requests",
        ),
        row(
            "HTTP cache hit, with plot (1 client)",
            &http[1],
            1,
            "requests",
        ),
    ])
}

fn row(name: &'static str, times: &[Duration], items_per_op: usize, unit: &'static str) -> Row {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let total_secs: f64 = ms.iter().sum::<f64>() / 1e3;
    Row {
        name,
        p50_ms: round3(pick(0.5)),
        p99_ms: round3(pick(0.99)),
        per_second: round3((ms.len() * items_per_op) as f64 / total_secs),
        unit,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<48} {:>10} {:>10} {:>14}",
        "measurement", "p50 ms", "p99 ms", "throughput"
    );
    for r in rows {
        println!(
            "{:<48} {:>10.3} {:>10.3} {:>14}",
            r.name,
            r.p50_ms,
            r.p99_ms,
            format!("{:.1} {}/s", r.per_second, r.unit)
        );
    }
}
