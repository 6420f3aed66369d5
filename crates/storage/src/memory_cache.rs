use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;

use moodwire_core::ports::{CacheError, ResultCache};
use moodwire_core::Analysis;

/// The embedded default cache: in-process, with a TTL and a bound on entries.
pub struct MemoryCache {
    entries: Cache<String, Arc<Analysis>>,
    /// Questions per keyword; moka's TinyLFU keeps the popular ones when it is full.
    queries: moka::sync::Cache<String, Arc<AtomicU64>>,
}

impl MemoryCache {
    /// An analysis is a few hundred bytes, so the default bound of 100,000 entries is tens of MB at most.
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    /// Keywords whose query counts are kept.
    const MAX_COUNTED_KEYWORDS: u64 = 10_000;

    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        MemoryCache {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
            queries: moka::sync::Cache::new(Self::MAX_COUNTED_KEYWORDS),
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

    async fn count_query(&self, keyword: &str) -> Result<(), CacheError> {
        self.queries
            .get_with(keyword.to_string(), || Arc::new(AtomicU64::new(0)))
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn top_queried(&self, n: usize) -> Result<Vec<(String, u64)>, CacheError> {
        let mut counts: Vec<(String, u64)> = self
            .queries
            .iter()
            .map(|(keyword, count)| (keyword.to_string(), count.load(Ordering::Relaxed)))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(n);
        Ok(counts)
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

    #[tokio::test]
    async fn queries_are_counted_and_ranked() {
        let cache = MemoryCache::new(Duration::from_secs(60), 10);
        for keyword in ["ai", "rust", "ai", "ai", "rust", "rain"] {
            cache.count_query(keyword).await.unwrap();
        }
        let top = cache.top_queried(2).await.unwrap();
        assert_eq!(top, [("ai".to_string(), 3), ("rust".to_string(), 2)]);
    }

    #[tokio::test]
    async fn a_scan_pages_through_every_entry() {
        let cache = MemoryCache::new(Duration::from_secs(60), 100);
        for i in 0..7 {
            let mut a = analysis();
            a.id = i.to_string();
            cache.put(&format!("k{i}"), &a).await.unwrap();
        }
        cache.entries.run_pending_tasks().await;
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, page) = cache.scan(cursor, 3).await.unwrap();
            seen.extend(page.into_iter().map(|a| a.id));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        assert_eq!(seen, ["0", "1", "2", "3", "4", "5", "6"]);
    }
}
