//! Redis as the [`ResultCache`]: shared by every API replica, same keys and TTL as the
//! embedded cache. Redis being down or slow never fails a request: each operation has a
//! short deadline, errors become misses (counted by the service), and the connection is
//! re-established in the background of later requests when Redis comes back.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::Mutex;

use moodwire_core::ports::{CacheError, ResultCache};
use moodwire_core::Analysis;

#[derive(Debug, Clone)]
pub struct RedisCacheConfig {
    /// Prepended to every key, so several deployments (or tests) can share a Redis.
    pub key_prefix: String,
    pub ttl: Duration,
    /// Longest a cache read or write may take before it counts as a miss.
    pub op_timeout: Duration,
    /// Least time between two attempts to (re)connect while Redis is unreachable.
    pub reconnect_every: Duration,
}

impl RedisCacheConfig {
    pub fn new(key_prefix: impl Into<String>, ttl: Duration) -> Self {
        RedisCacheConfig {
            key_prefix: key_prefix.into(),
            ttl,
            op_timeout: Duration::from_millis(250),
            reconnect_every: Duration::from_secs(1),
        }
    }
}

pub struct RedisCache {
    client: redis::Client,
    config: RedisCacheConfig,
    connection: Mutex<Connection>,
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
