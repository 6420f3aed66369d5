//! Adapters for the storage ports: result caches (and, as the pipeline grows,
//! the event log and the store).

mod memory_cache;

pub use memory_cache::MemoryCache;
