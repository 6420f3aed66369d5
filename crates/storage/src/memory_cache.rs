use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;

use moodwire_core::ports::{CacheError, KnownPosts, PredictionCache, Probabilities, ResultCache};
use moodwire_core::Analysis;

/// The embedded default cache: in-process, with a TTL and a bound on entries.
pub struct MemoryCache {
    entries: Cache<String, Arc<Analysis>>,
    /// Each keyword's known posts, for refreshes; bounded in bytes.
    known: moka::sync::Cache<String, Arc<KnownPosts>>,
    /// Questions per keyword; moka's TinyLFU keeps the popular ones when it is full.
    queries: moka::sync::Cache<String, Arc<AtomicU64>>,
}

impl MemoryCache {
    /// An analysis is a few hundred bytes, so the default bound of 100,000 entries is tens of MB at most.
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    /// Keywords whose query counts are kept.
    const MAX_COUNTED_KEYWORDS: u64 = 10_000;

    /// Memory for the keywords' known posts: about 90 keywords of 1,000 posts.
    const KNOWN_POSTS_BYTES: u64 = 64 << 20;

    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        MemoryCache {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
            known: moka::sync::Cache::builder()
                .max_capacity(Self::KNOWN_POSTS_BYTES)
                .weigher(|key: &String, known: &Arc<KnownPosts>| {
                    u32::try_from(key.len() + known_posts_bytes(known)).unwrap_or(u32::MAX)
                })
                .time_to_live(KNOWN_POSTS_TTL)
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

    async fn known_posts(&self, key: &str) -> Result<Option<KnownPosts>, CacheError> {
        Ok(self.known.get(key).map(|k| KnownPosts::clone(&k)))
    }

    async fn put_known_posts(&self, key: &str, known: &KnownPosts) -> Result<(), CacheError> {
        self.known.insert(key.to_string(), Arc::new(known.clone()));
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

/// How long a keyword's known posts are kept: past the service's full-refresh period
/// they are not used anyway.
pub(crate) const KNOWN_POSTS_TTL: Duration = Duration::from_secs(24 * 3600);

/// About what a keyword's known posts take in memory.
fn known_posts_bytes(known: &KnownPosts) -> usize {
    known
        .posts
        .iter()
        .map(|c| {
            let p = &c.post;
            p.id.len()
                + p.subreddit.len()
                + p.author.len()
                + p.title.len()
                + p.selftext.len()
                + p.permalink.len()
                + 160
        })
        .sum()
}

/// The embedded prediction cache: in-process, bounded in bytes (a post's entry is its
/// key, about 100 bytes, and 24 bytes of probabilities).
pub struct MemoryPredictions {
    entries: moka::sync::Cache<String, Probabilities>,
}

impl MemoryPredictions {
    /// 64 MiB: about half a million posts.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    pub fn new(max_bytes: u64) -> Self {
        MemoryPredictions {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, _: &Probabilities| {
                    // The key, the value and moka's own bookkeeping, about 64 bytes.
                    u32::try_from(key.len() + std::mem::size_of::<Probabilities>() + 64)
                        .unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl MemoryPredictions {
    /// Forgets every prediction (benchmarks of cold analyses).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

#[async_trait]
impl PredictionCache for MemoryPredictions {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Probabilities>>, CacheError> {
        Ok(keys.iter().map(|k| self.entries.get(k)).collect())
    }

    async fn put_many(&self, entries: &[(String, Probabilities)]) -> Result<(), CacheError> {
        for (key, probabilities) in entries {
            self.entries.insert(key.clone(), *probabilities);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        moodwire_testkit::empty_analysis("ai")
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
        let mut seen: Vec<String> = moodwire_testkit::scan_all(&cache, 3)
            .await
            .into_iter()
            .map(|a| a.id)
            .collect();
        seen.sort();
        assert_eq!(seen, ["0", "1", "2", "3", "4", "5", "6"]);
    }
}
