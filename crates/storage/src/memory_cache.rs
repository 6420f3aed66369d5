use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;

use moodwire_core::ports::{CacheError, ResultCache};
use moodwire_core::Analysis;

/// The embedded default cache: in-process, with a TTL and a bound on entries.
pub struct MemoryCache {
    entries: Cache<String, Arc<Analysis>>,
}

impl MemoryCache {
    /// An analysis is a few hundred bytes, so the default bound of 100,000 entries is tens of MB at most.
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        MemoryCache {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl ResultCache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError> {
        Ok(self.entries.get(key).await.map(|a| Analysis::clone(&a)))
    }

    async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError> {
        self.entries
            .insert(key.to_string(), Arc::new(analysis.clone()))
            .await;
        Ok(())
    }

    /// The cursor is an offset into moka's iteration order.
    async fn scan(&self, cursor: u64, count: usize) -> Result<(u64, Vec<Analysis>), CacheError> {
        let page: Vec<Analysis> = self
            .entries
            .iter()
            .skip(cursor as usize)
            .take(count)
            .map(|(_, analysis)| Analysis::clone(&analysis))
            .collect();
        let next = if page.len() < count {
            0
        } else {
            cursor + page.len() as u64
        };
        Ok((next, page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodwire_core::{aggregate, PostsSource};

    fn analysis() -> Analysis {
        Analysis {
            id: "01".into(),
            keyword: "ai".into(),
            limit: 10,
            count: 0,
            agg: aggregate(&[]),
            model: "m".into(),
            posts_source: PostsSource::Sample,
            analyzed_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache = MemoryCache::new(Duration::from_millis(200), 10);
        let stored = analysis();
        cache.put("k", &stored).await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(stored));
        assert_eq!(cache.get("other").await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get("k").await.unwrap(), None);
    }
}
