//! The command line and environment: one typed struct per concern, each field's
//! default documented in its help. `wiring.rs` turns these into adapters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use moodwire_core::service::AnalysisService;
use moodwire_model::InferOptions;
use moodwire_server::access::ApiKey;
use moodwire_server::ConnectionLimits;
use moodwire_sources::RedditConfig;
use moodwire_storage::{Journal, KafkaConfig, MemoryPredictions, RedisCacheConfig};

use crate::model_args::ModelArgs;

/// Where posts come from (`MOODWIRE_SOURCE`).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Sample,
    Reddit,
    Dump(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sample" => Ok(SourceSpec::Sample),
            "reddit" => Ok(SourceSpec::Reddit),
            _ => match s.strip_prefix("dump:") {
                Some(path) if !path.is_empty() => Ok(SourceSpec::Dump(PathBuf::from(path))),
                _ => Err(format!(
                    "unknown source {s:?}: expected `sample`, `reddit` or `dump:PATH`"
                )),
            },
        }
    }
}

/// `moodwire serve`: the HTTP server, and the pipeline and background jobs behind it.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MOODWIRE_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Longest a request may take before it is answered 503, in seconds.
    #[arg(long, env = "MOODWIRE_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,
    /// How long a client may take to send a request's headers, in seconds; a slower
    /// one (slow-loris) is disconnected.
    #[arg(long, env = "MOODWIRE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_secs: u64,
    /// Largest request line and headers, in bytes; a larger head is answered 431.
    #[arg(long, env = "MOODWIRE_MAX_HEADER_BYTES", default_value_t = ConnectionLimits::default().max_header_bytes as u64, value_parser = clap::value_parser!(u64).range(1024..=1 << 20))]
    pub max_header_bytes: u64,
    /// Most open client connections; new ones past it are closed at once.
    #[arg(long, env = "MOODWIRE_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// A client connection with no request in flight for this long (seconds) is closed.
    #[arg(long, env = "MOODWIRE_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,
    /// On SIGTERM / Ctrl-C, how long in-flight requests may still take, in seconds.
    #[arg(long, env = "MOODWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Requests a minute each client may make on average (per API key, else per IP
    /// address); 0: no limit.
    #[arg(long, env = "MOODWIRE_RATE_LIMIT_PER_MINUTE", default_value_t = 0)]
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once before the average applies.
    #[arg(long, env = "MOODWIRE_RATE_LIMIT_BURST", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Serve only: leave the background jobs (idle sync, recovery, warmer) to
    /// `moodwire worker` processes. Forwarding events to Kafka still runs here, and the
    /// dashboard still reads the store.
    #[arg(long, env = "MOODWIRE_NO_WORKER")]
    pub no_worker: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// The API keys, from `MOODWIRE_API_KEYS` only (a flag would show in `ps`): see
    /// [`ServeArgs::api_keys_from_env`]. Their `Debug` is redacted.
    #[arg(skip)]
    pub api_keys: Vec<ApiKey>,
}

impl ServeArgs {
    /// Reads the comma-separated keys of `MOODWIRE_API_KEYS` (none when unset).
    pub fn api_keys_from_env(mut self) -> Self {
        self.api_keys = std::env::var("MOODWIRE_API_KEYS")
            .map(|list| ApiKey::parse_list(&list))
            .unwrap_or_default();
        self
    }
}

/// Everything the analysis path needs, shared by `serve` and `analyze`.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where posts come from: `sample` (the bundled corpus), `reddit` or `dump:PATH`
    /// (a .ndjson/.jsonl/.zst file or a folder of them). Default: `reddit` when
    /// REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET are set, else `sample`.
    #[arg(long, env = "MOODWIRE_SOURCE")]
    pub source: Option<SourceSpec>,
    /// Folder of the bundled sample corpus (*.ndjson, Pushshift format).
    #[arg(long, env = "MOODWIRE_SAMPLE_DIR", default_value = "data/sample")]
    pub sample_dir: PathBuf,
    /// Most tokens waiting for inference (the texts of queued requests, tokenized):
    /// a bound on the queue's memory; more load is answered 503 at once.
    #[arg(long, env = "MOODWIRE_MAX_QUEUED_TOKENS", default_value_t = InferOptions::DEFAULT_MAX_QUEUED_TOKENS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_tokens: u64,
    /// Longest a new analysis may expect to wait behind the inference queued ahead of
    /// it, in seconds, at the throughput measured on recent work; past it, 503
    /// `overloaded` at once with `Retry-After` set to the expected wait.
    #[arg(long, env = "MOODWIRE_MAX_QUEUE_WAIT_SECS", default_value_t = InferOptions::DEFAULT_MAX_QUEUE_WAIT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=600))]
    pub max_queue_wait_secs: u64,
    /// How many nice steps below the HTTP threads new analyses run (matching posts,
    /// tokenizing, inference, aggregation): with every core busy computing, a cache hit
    /// still gets one at once, and with nothing else to do the analyses still get them
    /// all. 0: the same priority. Linux only (elsewhere it stays 0, with a warning).
    #[arg(long, env = "MOODWIRE_ANALYSIS_NICE", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub analysis_nice: u8,
    /// Most new analyses computed at once (fetch + inference); more are answered 503
    /// at once. Cache hits are not bounded.
    #[arg(long, env = "MOODWIRE_MAX_CONCURRENT_ANALYSES", default_value_t = AnalysisService::DEFAULT_MAX_COMPUTING as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_concurrent_analyses: u64,
    /// A keyword is searched in full at least this often (seconds); in between, a
    /// refresh (the warmer's, or a question after its answer expired) fetches only the
    /// posts newer than its known ones and reuses those: a post deleted meanwhile stays
    /// until it ages out of the newest `limit`, and an edit is seen at the next full
    /// search. Six hours by default.
    #[arg(long, env = "MOODWIRE_FULL_REFRESH_SECS", default_value_t = AnalysisService::DEFAULT_FULL_REFRESH.as_secs(), value_parser = clap::value_parser!(u64).range(0..=7 * 86_400))]
    pub full_refresh_secs: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub reddit: RedditArgs,
    #[command(flatten)]
    pub events: EventLogArgs,
}

/// The result cache: in-process, or Redis shared by replicas.
#[derive(clap::Args, Debug, Clone)]
pub struct CacheArgs {
    /// How long a computed analysis is served from the cache, in seconds.
    #[arg(long, env = "MOODWIRE_CACHE_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_ttl_secs: u64,
    /// Shared result cache, e.g. `redis://127.0.0.1:6379`; unset: in-process cache.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<RedactedUrl>,
    /// Prefix of moodwire's Redis keys, so deployments (or tests) can share a Redis.
    #[arg(long, env = "MOODWIRE_REDIS_PREFIX", default_value = "moodwire:")]
    pub redis_prefix: String,
    /// How long a post's prediction is kept in Redis, in seconds (a week): a post
    /// asked about again within it is not classified again.
    #[arg(long, env = "MOODWIRE_PREDICTION_TTL_SECS", default_value_t = RedisCacheConfig::DEFAULT_PREDICTION_TTL.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub prediction_ttl_secs: u64,
    /// Memory of the in-process prediction cache (without Redis), in MiB.
    #[arg(long, env = "MOODWIRE_PREDICTION_CACHE_MB", default_value_t = MemoryPredictions::DEFAULT_MAX_BYTES >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub prediction_cache_mb: u64,
}

/// Where computed analyses go on their way to the store.
#[derive(clap::Args, Debug, Clone)]
pub struct EventLogArgs {
    /// Folder of the embedded store and the event journal (which is also the outbox
    /// in front of Kafka, so a dead broker only delays events).
    #[arg(long, env = "MOODWIRE_DATA_DIR", default_value = "data/moodwire")]
    pub data_dir: PathBuf,
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`; unset: the journal is the event log.
    #[arg(long, env = "KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: Option<String>,
    /// Largest size of the journal file, in MiB: past it, appends fail (loudly, as on
    /// a full disk) and answers are still served. 4096 (4 GiB) by default.
    #[arg(long, env = "MOODWIRE_JOURNAL_MAX_MB", default_value_t = Journal::DEFAULT_MAX_BYTES >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub journal_max_mb: u64,
    /// The topic of analysis events.
    #[arg(long, env = "MOODWIRE_KAFKA_TOPIC", default_value = KafkaConfig::DEFAULT_TOPIC)]
    pub kafka_topic: String,
    /// The consumer group of the sync workers (they share the topic's partitions).
    #[arg(long, env = "MOODWIRE_KAFKA_GROUP", default_value = KafkaConfig::DEFAULT_GROUP)]
    pub kafka_group: String,
    /// Partitions of the topic when moodwire creates it (the most sync workers that help).
    #[arg(long, env = "MOODWIRE_KAFKA_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub kafka_partitions: i32,
}

/// The background jobs' settings (`serve` without `--no-worker`, `worker`, `sync`).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The store: `postgres://…`, or `sqlite://PATH`; unset: `moodwire.sqlite` in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<RedactedUrl>,
    /// The idle sync runs only while the system CPU is below this percentage.
    #[arg(long, env = "MOODWIRE_SYNC_CPU_PCT", default_value_t = 20.0, value_parser = percent)]
    pub sync_cpu_pct: f32,
    /// Analyses per store transaction.
    #[arg(long, env = "MOODWIRE_SYNC_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sync_batch: u64,
    /// An analysis waiting longer than this (seconds) is synced even while the CPU is
    /// busy, in small throttled batches: load delays the history, it cannot stop it.
    #[arg(long, env = "MOODWIRE_SYNC_MAX_DELAY_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400 * 7))]
    pub sync_max_delay_secs: u64,
    /// The warmer runs only while the system CPU is below this percentage.
    #[arg(long, env = "MOODWIRE_WARM_CPU_PCT", default_value_t = 35.0, value_parser = percent)]
    pub warm_cpu_pct: f32,
    /// A warmer cycle stops as soon as the CPU is above this percentage (at least the
    /// start threshold).
    #[arg(long, env = "MOODWIRE_WARM_STOP_CPU_PCT", default_value_t = 45.0, value_parser = percent)]
    pub warm_stop_cpu_pct: f32,
    /// Seed keywords of the warmer, one per line (`#` comments).
    #[arg(
        long,
        env = "MOODWIRE_WARM_SEEDS",
        default_value = "scripts/keywords.txt"
    )]
    pub warm_seeds: PathBuf,
    /// Most cache entries the warmer refreshes per cycle.
    #[arg(long, env = "MOODWIRE_WARM_MAX", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub warm_max: u64,
    /// Seconds between two refreshes (keeps the warmer well inside the Reddit budget).
    #[arg(long, env = "MOODWIRE_WARM_PACE_SECS", default_value_t = 6, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub warm_pace_secs: u64,
    /// Most post texts the warmer reads from the store for the last 6 hours, to find
    /// trending words (a sample is enough to see a word rise).
    #[arg(long, env = "MOODWIRE_WARM_RECENT_POSTS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub warm_recent_posts: u64,
    /// Most post texts it reads for the week before, the background those words rise
    /// against (all of a week's posts could be millions).
    #[arg(long, env = "MOODWIRE_WARM_BACKGROUND_POSTS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub warm_background_posts: u64,
    /// Seconds between two warmer cycles in `serve` / `worker`.
    #[arg(long, env = "MOODWIRE_WARM_EVERY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub warm_every_secs: u64,
    /// Read the CPU percentage from this file instead of measuring it (tests; forcing
    /// the gates open or shut by hand).
    #[arg(long, env = "MOODWIRE_CPU_READING_FILE")]
    pub cpu_reading_file: Option<PathBuf>,
}

fn percent(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage between 0 and 100")),
    }
}

/// A URL that may carry a password (`user:password@`, or `?password=` as libpq
/// allows): usable, printed without it.
#[derive(Clone)]
pub struct RedactedUrl(pub(crate) String);

impl RedactedUrl {
    /// Query parameters whose values are secrets.
    fn is_secret_parameter(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ["password", "passwd", "secret", "token", "key"]
            .iter()
            .any(|secret| name.contains(secret))
    }

    fn redacted(&self) -> String {
        let (base, query) = match self.0.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.0.as_str(), None),
        };
        let mut out = match (base.split_once("://"), base.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://[redacted]{}", &base[at..]),
            _ => base.to_string(),
        };
        if let Some(query) = query {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if Self::is_secret_parameter(name) => {
                        format!("{name}=[redacted]")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out = format!("{out}?{}", pairs.join("&"));
        }
        out
    }
}

impl FromStr for RedactedUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(RedactedUrl(s.to_string()))
    }
}

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The Reddit app. The secret is read from `REDDIT_CLIENT_SECRET` only (never a flag,
/// which would show in `ps`) and never printed.
#[derive(clap::Args, Debug, Clone)]
pub struct RedditArgs {
    /// Reddit app id (https://www.reddit.com/prefs/apps, a "script" or "web" app).
    #[arg(long = "reddit-client-id", env = "REDDIT_CLIENT_ID")]
    pub client_id: Option<String>,
    /// `<platform>:<app id>:<version> (by /u/<username>)`, as Reddit requires.
    #[arg(long = "reddit-user-agent", env = "REDDIT_USER_AGENT")]
    pub user_agent: Option<String>,
    /// The OAuth token endpoint.
    #[arg(long = "reddit-auth-url", env = "REDDIT_AUTH_URL", default_value = RedditConfig::DEFAULT_AUTH_URL)]
    pub auth_url: String,
    /// The base of the API (search is `{REDDIT_API_URL}/search`).
    #[arg(long = "reddit-api-url", env = "REDDIT_API_URL", default_value = RedditConfig::DEFAULT_API_URL)]
    pub api_url: String,
    /// Longest one Reddit search (all pages and retries) may take, in seconds.
    #[arg(long = "reddit-timeout-secs", env = "MOODWIRE_REDDIT_TIMEOUT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub fetch_timeout_secs: u64,
    /// Reddit API calls a minute for the app, shared by every replica through Redis
    /// when `REDIS_URL` is set (Reddit's own limit is 100; its headers correct it).
    #[arg(long = "reddit-calls-per-minute", env = "MOODWIRE_REDDIT_CALLS_PER_MINUTE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub calls_per_minute: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_parse() {
        assert_eq!("sample".parse(), Ok(SourceSpec::Sample));
        assert_eq!("reddit".parse(), Ok(SourceSpec::Reddit));
        assert_eq!(
            "dump:/x.ndjson".parse(),
            Ok(SourceSpec::Dump("/x.ndjson".into()))
        );
        assert!("dump:".parse::<SourceSpec>().is_err());
        assert!("twitter".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn urls_print_without_their_password() {
        let url: RedactedUrl = "redis://user:hunter2@cache:6379/0".parse().unwrap();
        assert_eq!(format!("{url:?}"), "redis://[redacted]@cache:6379/0");
        let plain: RedactedUrl = "redis://127.0.0.1:6379".parse().unwrap();
        assert_eq!(format!("{plain:?}"), "redis://127.0.0.1:6379");
        let query: RedactedUrl = "postgres://db/mw?user=mw&password=hunter2&sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            format!("{query:?}"),
            "postgres://db/mw?user=mw&password=[redacted]&sslmode=require"
        );
        let both: RedactedUrl = "postgres://u:p@db/mw?sslpassword=x".parse().unwrap();
        assert_eq!(
            format!("{both:?}"),
            "postgres://[redacted]@db/mw?sslpassword=[redacted]"
        );
    }
}
