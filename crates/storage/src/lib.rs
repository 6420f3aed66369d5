//! Adapters for the storage ports: result caches (in-process, Redis), event logs
//! (a local journal, Kafka behind it as outbox) and stores (SQLite, PostgreSQL).

mod dead_letter_rows;
mod history_rows;
mod journal;
mod kafka;
mod memory_cache;
mod postgres_store;
mod queries;
mod redis_cache;
mod rows;
mod sqlite_store;
mod store_error;

use std::sync::Arc;

use moodwire_core::ports::{Store, StoreError};

pub use journal::{Journal, JournalFeed};
pub use kafka::{KafkaConfig, KafkaFeed, KafkaForwarder};
pub use memory_cache::{MemoryCache, MemoryPredictions};
pub use postgres_store::PostgresStore;
pub use redis_cache::{RedisBudget, RedisCache, RedisCacheConfig};
pub use sqlite_store::SqliteStore;

/// The store a `DATABASE_URL` names: `postgres://…` / `postgresql://…`, or
/// `sqlite://PATH` (or a plain path) for a SQLite file.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url).await?))
    }
}

/// Registers the help text of the metrics this crate records (call once, after the
/// recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "moodwire_events_forwarded_total",
        "Events of the local journal the Kafka broker acknowledged."
    );
}
