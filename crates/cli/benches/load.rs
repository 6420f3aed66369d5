//! A load generator that keeps every answer's status and latency, so overload can be
//! judged per status (how long a 503 took, not only a 200) and per kind of request.
//!
//!   cargo bench -p moodwire --bench load -- [--url URL] [--mix flood|soak]
//!       [--clients N] [--duration SECS] [--json]
//!
//! The summary goes to stderr; `--json` also prints it as JSON on stdout.
//!
//! Without `--url` it starts `moodwire serve` itself (embedded defaults, a data folder
//! of its own, on a free loopback port) and stops it at the end.
//!
//! - `flood` (default): every client asks a fresh analysis in a loop (a hot keyword
//!   with a limit from 200 to 1000, no chart), while one more client asks a cached
//!   one, to see what the flood does to cache hits.
//! - `soak`: the mixed load of `scripts/stress_test.sh --soak`: 80 % cache hits on five
//!   hot keywords, 15 % fresh analyses, 5 % hostile or bad requests (keywords with NUL,
//!   escape or bidi characters, `limit` 1000, invented methods, bad JSON), and silent
//!   connections that send nothing.
//!
//! Each client waits 30 s at most for an answer (a client timeout is counted).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const HOT: [&str; 5] = ["AI", "climate", "bitcoin", "elections", "layoffs"];
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Hit,
    Miss,
    Hostile,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hit => "hit",
            Kind::Miss => "miss",
            Kind::Hostile => "hostile",
        }
    }
}

/// One answer: what was asked, its status (0: no answer in time or a broken
/// connection), how long it took, and whether a 503 said when to retry.
struct Sample {
    kind: Kind,
    status: u16,
    latency: Duration,
    retry_after: bool,
}

struct Config {
    url: Option<String>,
    mix: String,
    clients: usize,
    duration: Duration,
    json: bool,
}

fn parse_args() -> Config {
    let mut config = Config {
        url: None,
        mix: "flood".into(),
        clients: 64,
        duration: Duration::from_secs(25),
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => config.url = Some(value()),
            "--mix" => config.mix = value(),
            "--clients" => config.clients = value().parse().expect("--clients N"),
            "--duration" => {
                config.duration = Duration::from_secs(
                    value()
                        .trim_end_matches('s')
                        .parse()
                        .expect("--duration SECS"),
                )
            }
            "--json" => config.json = true,
            // What cargo bench passes to every bench binary.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        matches!(config.mix.as_str(), "flood" | "soak"),
        "--mix flood|soak"
    );
    config
}

/// `moodwire serve` with embedded defaults, killed on drop.
struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_moodwire"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .current_dir(&repo)
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("KAFKA_BROKERS")
            .env_remove("REDDIT_CLIENT_ID")
            .env_remove("MOODWIRE_API_KEYS")
            .env("MOODWIRE_SOURCE", "sample")
            .env("MOODWIRE_DATA_DIR", data.path())
            .env("MOODWIRE_WARM_MAX", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moodwire serve starts");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn wait_until_up(client: &reqwest::Client, url: &str) {
    for _ in 0..300 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no moodwire at {url}");
}

/// A request of the given kind: (method, body).
fn request(kind: Kind, mix: &str) -> (reqwest::Method, String) {
    let hot = HOT[fastrand::usize(..HOT.len())];
    match kind {
        Kind::Hit if mix == "flood" => (
            reqwest::Method::POST,
            json!({"keyword": "AI", "limit": 100, "return_plot": false}).to_string(),
        ),
        Kind::Hit => (
            reqwest::Method::POST,
            json!({"keyword": hot, "limit": 100}).to_string(),
        ),
        Kind::Miss => {
            let limit = if mix == "flood" {
                fastrand::u32(200..=1000)
            } else {
                fastrand::u32(1..=1000)
            };
            (
                reqwest::Method::POST,
                json!({"keyword": hot, "limit": limit, "return_plot": false}).to_string(),
            )
        }
        Kind::Hostile => match fastrand::u8(..6) {
            0 => (
                reqwest::Method::POST,
                json!({"keyword": "a\u{0}b", "limit": 20}).to_string(),
            ),
            1 => (
                reqwest::Method::POST,
                json!({"keyword": "\u{1b}[31mred", "limit": 20}).to_string(),
            ),
            2 => (
                reqwest::Method::POST,
                json!({"keyword": "\u{202e}evil"}).to_string(),
            ),
            3 => (
                reqwest::Method::POST,
                json!({"keyword": hot, "limit": 1000, "return_plot": false}).to_string(),
            ),
            4 => (
                reqwest::Method::from_bytes(format!("FOO{}", fastrand::u32(..10_000)).as_bytes())
                    .unwrap(),
                String::new(),
            ),
            _ => (reqwest::Method::POST, r#"{"keyword": "#.to_string()),
        },
    }
}

async fn one(client: &reqwest::Client, url: &str, kind: Kind, mix: &str) -> Sample {
    let (method, body) = request(kind, mix);
    let started = Instant::now();
    let answer = client
        .request(method, format!("{url}/analyze"))
        .header("content-type", "application/json")
        .body(body)
        .timeout(CLIENT_TIMEOUT)
        .send()
        .await;
    let (status, retry_after) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let _ = response.bytes().await;
            (status, retry_after)
        }
        Err(_) => (0, false),
    };
    Sample {
        kind,
        status,
        latency: started.elapsed(),
        retry_after,
    }
}

/// Connections that connect and send nothing, one after another: each should be let
/// go at the server's header-read timeout. Returns how many were closed by the server.
async fn silent_connections(url: &str, until: Instant) -> usize {
    use tokio::io::AsyncReadExt;
    let address = url.trim_start_matches("http://").to_string();
    let mut closed = 0;
    while Instant::now() < until {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut buf = [0u8; 1];
        let left = until.saturating_duration_since(Instant::now());
        if let Ok(Ok(0)) = tokio::time::timeout(left, stream.read(&mut buf)).await {
            closed += 1;
        }
    }
    closed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn summarize(
    samples: &[Sample],
    elapsed: Duration,
    silent_closed: usize,
    metrics: (&str, &str),
) -> Value {
    let mut groups: BTreeMap<(String, u16), Vec<Duration>> = BTreeMap::new();
    for s in samples {
        groups
            .entry((s.kind.name().to_string(), s.status))
            .or_default()
            .push(s.latency);
    }
    let rows: Vec<Value> = groups
        .iter_mut()
        .map(|((kind, status), latencies)| {
            latencies.sort();
            json!({
                "kind": kind, "status": status, "n": latencies.len(),
                "p50_ms": ms(percentile(latencies, 50.0)), "p95_ms": ms(percentile(latencies, 95.0)),
                "p99_ms": ms(percentile(latencies, 99.0)), "max_ms": ms(*latencies.last().unwrap()),
            })
        })
        .collect();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for s in samples {
        *by_status.entry(s.status).or_default() += 1;
    }
    let unavailable: Vec<&Sample> = samples.iter().filter(|s| s.status == 503).collect();
    let mut all: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    all.sort();
    json!({
        "requests": samples.len(),
        "seconds": elapsed.as_secs_f64(),
        "requests_per_second": samples.len() as f64 / elapsed.as_secs_f64(),
        "status_mix": by_status,
        "client_timeouts_or_broken": by_status.get(&0).copied().unwrap_or(0),
        "server_errors_other_than_503": samples.iter().filter(|s| s.status >= 500 && s.status != 503).count(),
        "503_without_retry_after": unavailable.iter().filter(|s| !s.retry_after).count(),
        "slowest_ms": ms(all.last().copied().unwrap_or_default()),
        "silent_connections_closed": silent_closed,
        "metrics_bytes_halfway_end": [metrics.0.len(), metrics.1.len()],
        "metrics_series_added": series_added(metrics.0, metrics.1),
        "by_kind_and_status": rows,
    })
}

async fn metrics_text(client: &reqwest::Client, url: &str) -> String {
    match client.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The label sets in `end` that `mid` did not have, a histogram's buckets counted once
/// (`name{labels}` without `le` and the `_bucket`/`_sum`/`_count` suffix): what made
/// /metrics grow. A few are expected (a route or status first seen in the second
/// half, an error counter after a crash); one per request (an invented method kept as a
/// label) is the leak this looks for.
fn series_added(mid: &str, end: &str) -> Vec<String> {
    let label_sets = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| label_set(series)))
            .collect()
    };
    let before = label_sets(mid);
    label_sets(end)
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect()
}

fn label_set(series: &str) -> String {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let name = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    let labels: Vec<&str> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|label| !label.is_empty() && !label.starts_with("le="))
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn main() {
    let config = parse_args();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = config.url.is_none().then(Server::start);
    let url = config
        .url
        .clone()
        .unwrap_or_else(|| server.as_ref().unwrap().url.clone());
    let report = runtime.block_on(run(&config, &url));
    drop(server);
    print_table(&config, &report);
    if config.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}

async fn run(config: &Config, url: &str) -> Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.clients + 8)
        .build()
        .unwrap();
    wait_until_up(&client, url).await;
    // Warm the cached keywords, so hits are hits.
    for k in HOT {
        for plot in [true, false] {
            let body = json!({"keyword": k, "limit": 100, "return_plot": plot});
            client
                .post(format!("{url}/analyze"))
                .json(&body)
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .ok();
        }
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let until = started + config.duration;
    let mut tasks = Vec::new();
    let hit_clients = if config.mix == "flood" { 1 } else { 0 };
    for i in 0..config.clients + hit_clients {
        let (client, url, mix, samples) = (
            client.clone(),
            url.to_string(),
            config.mix.clone(),
            Arc::clone(&samples),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let kind = if mix == "flood" {
                    if i == 0 {
                        Kind::Hit
                    } else {
                        Kind::Miss
                    }
                } else {
                    match fastrand::u8(..100) {
                        0..80 => Kind::Hit,
                        80..95 => Kind::Miss,
                        _ => Kind::Hostile,
                    }
                };
                let sample = one(&client, &url, kind, &mix).await;
                samples.lock().unwrap().push(sample);
            }
        }));
    }
    // /metrics is looked at halfway (every kind of request has been seen by then) and
    // at the end: invented methods and keywords must not add series.
    let mid = {
        let (client, url) = (client.clone(), url.to_string());
        let half = config.duration / 2;
        tokio::spawn(async move {
            tokio::time::sleep(half).await;
            metrics_text(&client, &url).await
        })
    };
    let silent = if config.mix == "soak" {
        let url = url.to_string();
        Some(tokio::spawn(async move {
            silent_connections(&url, until).await
        }))
    } else {
        None
    };
    for task in tasks {
        task.await.unwrap();
    }
    let silent_closed = match silent {
        Some(task) => task.await.unwrap(),
        None => 0,
    };
    let elapsed = started.elapsed();
    let metrics_mid = mid.await.unwrap();
    let metrics_end = metrics_text(&client, url).await;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let mut report = summarize(
        &samples,
        elapsed,
        silent_closed,
        (&metrics_mid, &metrics_end),
    );
    report["mix"] = json!(config.mix);
    report["clients"] = json!(config.clients);
    report
}

/// The human summary, on stderr (stdout carries the JSON with `--json`).
fn print_table(config: &Config, r: &Value) {
    eprintln!(
        "{} mix, {} clients, {:.0} s: {} requests ({:.0}/s), status mix {}",
        config.mix,
        config.clients,
        r["seconds"].as_f64().unwrap(),
        r["requests"],
        r["requests_per_second"].as_f64().unwrap(),
        r["status_mix"]
    );
    eprintln!(
        "slowest answer {} ms; client timeouts {}; 5xx other than 503: {}; 503 without Retry-After: {}",
        r["slowest_ms"], r["client_timeouts_or_broken"], r["server_errors_other_than_503"], r["503_without_retry_after"]
    );
    if config.mix == "soak" {
        eprintln!(
            "silent connections closed by the server: {}; /metrics bytes halfway/end: {}; series added: {}",
            r["silent_connections_closed"], r["metrics_bytes_halfway_end"], r["metrics_series_added"]
        );
    }
    eprintln!(
        "{:<8} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10}",
        "kind", "status", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for row in r["by_kind_and_status"].as_array().unwrap() {
        eprintln!(
            "{:<8} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10}",
            row["kind"].as_str().unwrap(),
            row["status"],
            row["n"],
            row["p50_ms"],
            row["p95_ms"],
            row["p99_ms"],
            row["max_ms"]
        );
    }
}
