//! Adapters for the storage ports: result caches (and, as the pipeline grows,
//! the event log and the store).

mod memory_cache;
mod redis_cache;

pub use memory_cache::MemoryCache;
pub use redis_cache::{RedisCache, RedisCacheConfig};
