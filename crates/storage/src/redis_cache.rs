//! Redis as the [`ResultCache`]: shared by every API replica, same keys and TTL as the
//! embedded cache. Redis being down or slow never fails a request: each operation has a
//! short deadline, errors become misses (counted by the service), and the connection is
//! re-established in the background of later requests when Redis comes back.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::Mutex;

use moodwire_core::ports::{
    CacheError, CallBudget, KnownPosts, PredictionCache, Probabilities, ResultCache,
};
use moodwire_core::Analysis;

#[derive(Debug, Clone)]
pub struct RedisCacheConfig {
    /// Prepended to every key, so several deployments (or tests) can share a Redis.
    pub key_prefix: String,
    pub ttl: Duration,
    /// How long a post's prediction is kept (days: posts are asked about again and again).
    pub prediction_ttl: Duration,
    /// Longest a cache read or write may take before it counts as a miss.
    pub op_timeout: Duration,
    /// Least time between two attempts to (re)connect while Redis is unreachable.
    pub reconnect_every: Duration,
}

impl RedisCacheConfig {
    /// A week.
    pub const DEFAULT_PREDICTION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

    pub fn new(key_prefix: impl Into<String>, ttl: Duration) -> Self {
        RedisCacheConfig {
            key_prefix: key_prefix.into(),
            ttl,
            prediction_ttl: Self::DEFAULT_PREDICTION_TTL,
            op_timeout: Duration::from_millis(250),
            reconnect_every: Duration::from_secs(1),
        }
    }
}

pub struct RedisCache {
    client: redis::Client,
    config: RedisCacheConfig,
    connection: Mutex<Connection>,
    /// Names this process's claims, so it releases only its own.
    claim_token: String,
}

enum Connection {
    Up(ConnectionManager),
    /// Unreachable at the last attempt; retry after the instant.
    Down {
        retry_at: Instant,
    },
}

impl RedisCache {
    /// Checks the URL now; connects now if Redis is up, later if not (the service
    /// starts either way and uses the miss path until Redis answers).
    pub async fn new(url: &str, config: RedisCacheConfig) -> Result<Self, CacheError> {
        let client = redis::Client::open(url)
            .map_err(|e| CacheError(format!("REDIS_URL is not a valid Redis URL: {e}")))?;
        let cache = RedisCache {
            client,
            config,
            connection: Mutex::new(Connection::Down {
                retry_at: Instant::now(),
            }),
            claim_token: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
        };
        if let Err(e) = cache.manager().await {
            tracing::warn!(error = %e, "Redis is unreachable; serving without the shared cache until it answers");
        }
        Ok(cache)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.key_prefix)
    }

    /// Beside the analyses (whose keys are `{prefix}{model}:{limit}:{keyword}`).
    fn queries_key(&self) -> String {
        format!("{}queries", self.config.key_prefix)
    }

    /// Where a post's prediction is kept: `{prefix}post:{model}:{post id}:{text digest}`.
    fn prediction_key(&self, key: &str) -> String {
        format!("{}post:{key}", self.config.key_prefix)
    }

    /// Where a claim on computing an analysis is held: `{prefix}claim:{cache key}`.
    fn claim_key(&self, key: &str) -> String {
        format!("{}claim:{key}", self.config.key_prefix)
    }

    /// Keys under the prefix that are not analyses (recovery skips them).
    fn is_analysis_key(&self, key: &str) -> bool {
        let rest = key.strip_prefix(&self.config.key_prefix).unwrap_or(key);
        !(rest.starts_with("post:")
            || rest.starts_with("known:")
            || rest.starts_with("claim:")
            || rest.starts_with("budget:")
            || rest == "queries")
    }

    async fn manager(&self) -> Result<ConnectionManager, CacheError> {
        let mut connection = self.connection.lock().await;
        match &*connection {
            Connection::Up(manager) => return Ok(manager.clone()),
            Connection::Down { retry_at } if Instant::now() < *retry_at => {
                return Err(CacheError("Redis is unreachable".into()))
            }
            Connection::Down { .. } => {}
        }
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.config.op_timeout * 4)
            .set_response_timeout(self.config.op_timeout)
            .set_number_of_retries(1);
        let connected = tokio::time::timeout(
            self.config.op_timeout * 8,
            ConnectionManager::new_with_config(self.client.clone(), manager_config),
        )
        .await;
        match connected {
            Ok(Ok(manager)) => {
                tracing::info!("connected to Redis");
                *connection = Connection::Up(manager.clone());
                Ok(manager)
            }
            failed => {
                *connection = Connection::Down {
                    retry_at: Instant::now() + self.config.reconnect_every,
                };
                Err(CacheError(match failed {
                    Ok(Err(e)) => format!("cannot connect to Redis: {e}"),
                    _ => "connecting to Redis timed out".into(),
                }))
            }
        }
    }

    async fn deadline<T>(
        &self,
        op: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.config.op_timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(CacheError(format!("Redis: {e}"))),
            Err(_) => Err(CacheError(format!(
                "Redis did not answer within {:?}",
                self.config.op_timeout
            ))),
        }
    }
}

#[async_trait]
impl ResultCache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError> {
        let mut connection = self.manager().await?;
        let key = self.key(key);
        let stored: Option<Vec<u8>> = self.deadline(connection.get(&key)).await?;
        match stored {
            None => Ok(None),
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(analysis) => Ok(Some(analysis)),
                // An entry from an incompatible version is a miss; the fresh result overwrites it.
                Err(e) => {
                    tracing::warn!(key, error = %e, "unreadable cache entry; treating it as a miss");
                    Ok(None)
                }
            },
        }
    }

    async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError> {
        let mut connection = self.manager().await?;
        let value = serde_json::to_vec(analysis)
            .map_err(|e| CacheError(format!("cannot encode the analysis: {e}")))?;
        let ttl = self.config.ttl.as_secs().max(1);
        self.deadline(connection.set_ex::<_, _, ()>(self.key(key), value, ttl))
            .await
    }

    /// One sorted set of counts per deployment (`{prefix}queries`), kept to the 10,000
    /// most-asked keywords and forgotten a week after the last question.
    async fn count_query(&self, keyword: &str) -> Result<(), CacheError> {
        let mut connection = self.manager().await?;
        let key = self.queries_key();
        let mut pipe = redis::pipe();
        pipe.zincr(&key, keyword, 1)
            .ignore()
            .expire(&key, 7 * 24 * 3600)
            .ignore();
        // Trimming costs a little: do it on about 1 question in 100.
        if fastrand::u8(..100) == 0 {
            pipe.zremrangebyrank(&key, 0, -10_001).ignore();
        }
        self.deadline(pipe.query_async::<()>(&mut connection)).await
    }

    async fn top_queried(&self, n: usize) -> Result<Vec<(String, u64)>, CacheError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut connection = self.manager().await?;
        let top: Vec<(String, f64)> = self
            .deadline(connection.zrevrange_withscores(self.queries_key(), 0, n as isize - 1))
            .await?;
        Ok(top
            .into_iter()
            .map(|(k, score)| (k, score as u64))
            .collect())
    }

    /// A keyword's known posts, as JSON under `{prefix}known:{model}:{keyword}`, for a day.
    async fn known_posts(&self, key: &str) -> Result<Option<KnownPosts>, CacheError> {
        let mut connection = self.manager().await?;
        let stored: Option<Vec<u8>> = self.deadline(connection.get(self.key(key))).await?;
        Ok(stored.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    async fn put_known_posts(&self, key: &str, known: &KnownPosts) -> Result<(), CacheError> {
        let mut connection = self.manager().await?;
        let value = serde_json::to_vec(known)
            .map_err(|e| CacheError(format!("cannot encode the known posts: {e}")))?;
        let ttl = crate::memory_cache::KNOWN_POSTS_TTL.as_secs();
        self.deadline(connection.set_ex::<_, _, ()>(self.key(key), value, ttl))
            .await
    }

    /// `SCAN` over the key prefix (never `KEYS`, which blocks Redis), then one `MGET`.
    async fn scan(&self, cursor: u64, count: usize) -> Result<(u64, Vec<Analysis>), CacheError> {
        let mut connection = self.manager().await?;
        let pattern = format!("{}*", escape_glob(&self.config.key_prefix));
        let (next, keys): (u64, Vec<String>) = self
            .deadline(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut connection),
            )
            .await?;
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| self.is_analysis_key(k))
            .collect();
        if keys.is_empty() {
            return Ok((next, Vec::new()));
        }
        let values: Vec<Option<Vec<u8>>> = self
            .deadline(redis::cmd("MGET").arg(&keys).query_async(&mut connection))
            .await?;
        // Entries that expired between SCAN and MGET come back empty; unreadable ones
        // (another build's format) are left to expire.
        let analyses = values
            .into_iter()
            .flatten()
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        Ok((next, analyses))
    }

    /// `SET claim NX PX ttl` with this process's token: one replica computes a new
    /// question, the others wait for its result; the expiry frees a claim whose
    /// holder died.
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, CacheError> {
        let mut connection = self.manager().await?;
        let taken: Option<String> = self
            .deadline(
                redis::cmd("SET")
                    .arg(self.claim_key(key))
                    .arg(&self.claim_token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(taken.is_some())
    }

    /// Deletes the claim only if it is still this process's (it may have expired and
    /// been taken by another since).
    async fn release(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.manager().await?;
        const COMPARE_AND_DELETE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] \
             then return redis.call('DEL', KEYS[1]) else return 0 end";
        self.deadline(
            redis::cmd("EVAL")
                .arg(COMPARE_AND_DELETE)
                .arg(1)
                .arg(self.claim_key(key))
                .arg(&self.claim_token)
                .query_async::<i64>(&mut connection),
        )
        .await
        .map(drop)
    }

    async fn check(&self) -> Result<(), CacheError> {
        let mut connection = self.manager().await?;
        self.deadline(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }
}

/// The shared call budget as one Redis hash (`{prefix}budget:{name}`: `remaining`,
/// `resets_at` in Redis's own clock, so replicas' clocks do not matter), changed by a
/// script so that taking a call is atomic across replicas.
pub struct RedisBudget {
    cache: std::sync::Arc<RedisCache>,
    key: String,
    per_window: u32,
    window: Duration,
}

impl RedisBudget {
    /// `per_window` calls each `window` for `name`, counted in `cache`'s Redis.
    pub fn new(
        cache: std::sync::Arc<RedisCache>,
        name: &str,
        per_window: u32,
        window: Duration,
    ) -> Self {
        let key = format!("{}budget:{name}", cache.config.key_prefix);
        RedisBudget {
            cache,
            key,
            per_window,
            window,
        }
    }
}

/// Takes one call: returns -1 when taken, else the milliseconds until the window resets.
const TAKE_CALL: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'remaining', 'resets_at')
local remaining, resets = tonumber(v[1]), tonumber(v[2])
if remaining == nil or resets == nil or now >= resets then
  remaining = tonumber(ARGV[1])
  resets = now + tonumber(ARGV[2])
end
local answer = -1
if remaining <= 0 then answer = resets - now else remaining = remaining - 1 end
redis.call('HSET', KEYS[1], 'remaining', remaining, 'resets_at', resets)
redis.call('PEXPIREAT', KEYS[1], resets + 1000)
return answer
";

/// Sets what the upstream reports: ARGV[1] calls left, ARGV[2] ms until its reset.
const OBSERVE_CALLS: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local resets = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'remaining', tonumber(ARGV[1]), 'resets_at', resets)
redis.call('PEXPIREAT', KEYS[1], resets + 1000)
return 0
";

#[async_trait]
impl CallBudget for RedisBudget {
    async fn take(&self) -> Result<Option<Duration>, CacheError> {
        let mut connection = self.cache.manager().await?;
        let answer: i64 = self
            .cache
            .deadline(
                redis::cmd("EVAL")
                    .arg(TAKE_CALL)
                    .arg(1)
                    .arg(&self.key)
                    .arg(self.per_window)
                    .arg(self.window.as_millis() as u64)
                    .query_async(&mut connection),
            )
            .await?;
        Ok((answer >= 0).then(|| Duration::from_millis(answer as u64)))
    }

    async fn observe(&self, remaining: u32, reset: Duration) -> Result<(), CacheError> {
        let mut connection = self.cache.manager().await?;
        self.cache
            .deadline(
                redis::cmd("EVAL")
                    .arg(OBSERVE_CALLS)
                    .arg(1)
                    .arg(&self.key)
                    .arg(remaining)
                    .arg(reset.as_millis() as u64)
                    .query_async::<i64>(&mut connection),
            )
            .await
            .map(drop)
    }
}

/// Predictions are 24 bytes each (six little-endian f32), read with one `MGET` and
/// written with one pipeline of `SET ... EX`: one round trip each way per analysis.
#[async_trait]
impl PredictionCache for RedisCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Probabilities>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.manager().await?;
        let keys: Vec<String> = keys.iter().map(|k| self.prediction_key(k)).collect();
        let values: Vec<Option<Vec<u8>>> = self
            .deadline(redis::cmd("MGET").arg(&keys).query_async(&mut connection))
            .await?;
        Ok(values
            .into_iter()
            .map(|value| value.and_then(|bytes| decode_probabilities(&bytes)))
            .collect())
    }

    async fn put_many(&self, entries: &[(String, Probabilities)]) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut connection = self.manager().await?;
        let ttl = self.config.prediction_ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        for (key, probabilities) in entries {
            let bytes: Vec<u8> = probabilities.iter().flat_map(|p| p.to_le_bytes()).collect();
            pipe.set_ex(self.prediction_key(key), bytes, ttl).ignore();
        }
        self.deadline(pipe.query_async::<()>(&mut connection)).await
    }
}

/// Six little-endian f32; anything else (another build's format) is a miss.
fn decode_probabilities(bytes: &[u8]) -> Option<Probabilities> {
    let mut out = [0f32; 6];
    if bytes.len() != 4 * out.len() {
        return None;
    }
    for (value, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *value = f32::from_le_bytes(chunk.try_into().ok()?);
    }
    Some(out)
}

/// `prefix` as a literal in a Redis glob pattern.
fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
