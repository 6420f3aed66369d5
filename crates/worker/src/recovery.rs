//! Missing-data recovery: every analysis in the cache should be in the store. One that
//! is not (its event was lost before it reached the log, or the store was restored
//! from an old backup) is backfilled from the cache: the aggregate, without its posts.

use std::sync::Arc;

use moodwire_core::ports::{CacheError, ResultCache, Store, StoreError};
use moodwire_core::AnalysisRecorded;

use crate::sync::{announce_dead_letters, save_isolating};

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Cached analyses looked at.
    pub scanned: usize,
    /// Of those, the ones the store lacked and now has.
    pub backfilled: usize,
}

pub struct Recovery {
    cache: Arc<dyn ResultCache>,
    store: Arc<dyn Store>,
}

impl Recovery {
    /// Cache entries per page (a Redis `SCAN ... COUNT` hint).
    const PAGE: usize = 500;

    pub fn new(cache: Arc<dyn ResultCache>, store: Arc<dyn Store>) -> Self {
        Recovery { cache, store }
    }

    /// Walks the whole cache once.
    #[tracing::instrument(name = "recovery_pass", skip(self))]
    pub async fn pass(&self) -> Result<RecoveryReport, RecoveryError> {
        let mut report = RecoveryReport::default();
        let mut cursor = 0;
        loop {
            let (next, page) = self.cache.scan(cursor, Self::PAGE).await?;
            // Entries cached by builds without ids cannot be matched: they expire unstored.
            let page: Vec<_> = page.into_iter().filter(|a| !a.id.is_empty()).collect();
            report.scanned += page.len();
            let ids: Vec<String> = page.iter().map(|a| a.id.clone()).collect();
            if !ids.is_empty() {
                let missing = self.store.missing(&ids).await?;
                let events: Vec<_> = page
                    .into_iter()
                    .filter(|a| missing.contains(&a.id))
                    .map(AnalysisRecorded::recovered)
                    .collect();
                if !events.is_empty() {
                    let saved = save_isolating(self.store.as_ref(), &events, "recovery").await?;
                    report.backfilled += saved.report.inserted;
                    if !saved.refused.is_empty() {
                        self.store.dead_letter(&saved.refused).await?;
                        announce_dead_letters(&saved.refused);
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        metrics::counter!("moodwire_recovery_backfilled_total").increment(report.backfilled as u64);
        if report.backfilled > 0 {
            tracing::info!(
                scanned = report.scanned,
                backfilled = report.backfilled,
                "backfilled analyses the store lacked"
            );
        }
        Ok(report)
    }
}
