//! The idle sync: drains the event log into the store while the CPU is quiet.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moodwire_core::ports::{EventFeed, EventLogError, Store, StoreError};

use crate::cpu::CpuGauge;
use crate::recovery::Recovery;

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Work only while the smoothed system CPU is below this (percent).
    pub cpu_threshold: f32,
    /// Events per store transaction.
    pub batch_size: usize,
    /// How long to wait for the first event of a batch.
    pub batch_wait: Duration,
    /// How often the background loop runs a recovery pass (after a drained sync).
    pub recovery_every: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            cpu_threshold: 20.0,
            batch_size: 500,
            batch_wait: Duration::from_secs(10),
            recovery_every: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Log(#[from] EventLogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub batches: usize,
    /// Analyses new to the store.
    pub inserted: usize,
    /// Analyses the store had already (a redelivery after a crash or a failed commit).
    pub already_stored: usize,
    /// Unreadable entries skipped.
    pub rejected: usize,
    /// The pass stopped because the CPU got busy, not because the log was drained.
    pub interrupted_by_load: bool,
}

pub struct IdleSync {
    feed: Box<dyn EventFeed>,
    store: Arc<dyn Store>,
    cpu: Arc<dyn CpuGauge>,
    config: SyncConfig,
    recovery: Option<Recovery>,
}

impl IdleSync {
    pub fn new(
        feed: Box<dyn EventFeed>,
        store: Arc<dyn Store>,
        cpu: Arc<dyn CpuGauge>,
        config: SyncConfig,
    ) -> Self {
        IdleSync {
            feed,
            store,
            cpu,
            config,
            recovery: None,
        }
    }

    /// Also runs `recovery` every `config.recovery_every`, once the log is drained (so
    /// analyses still on their way through the log are not backfilled needlessly).
    pub fn with_recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = Some(recovery);
        self
    }

    fn gate_open(&self) -> bool {
        self.cpu.percent() < self.config.cpu_threshold
    }

    /// Drains the log into the store, batch by batch, until it is empty. With
    /// `respect_gate`, stops early when the CPU is no longer idle.
    ///
    /// Each batch is committed in the log only after the store's commit; a batch that
    /// fails is read again next time, and the store's upserts make that harmless.
    #[tracing::instrument(name = "sync_pass", skip(self))]
    pub async fn pass(&mut self, respect_gate: bool) -> Result<PassReport, SyncError> {
        let mut report = PassReport::default();
        // Asking for the backlog costs broker round trips: once before, once after.
        if self.report_backlog().await? == 0 {
            return Ok(report);
        }
        let mut wait = self.config.batch_wait;
        loop {
            if respect_gate && !self.gate_open() {
                report.interrupted_by_load = true;
                break;
            }
            let batch = self.feed.next_batch(self.config.batch_size, wait).await?;
            // Once reading, a short pause means the log is drained (or the rest is on
            // partitions another worker holds).
            wait = Duration::from_millis(500);
            if batch.is_empty() {
                break;
            }
            let saved = match self.store.save(&batch.events).await {
                Ok(saved) => saved,
                Err(e) => {
                    self.feed.rewind().await?;
                    return Err(e.into());
                }
            };
            self.feed.commit(&batch.position).await?;
            report.batches += 1;
            report.inserted += saved.inserted;
            report.already_stored += saved.already_stored;
            report.rejected += batch.rejected;
            record_batch(
                batch.events.len(),
                saved.inserted,
                saved.already_stored,
                batch.rejected,
            );
        }
        self.report_backlog().await?;
        Ok(report)
    }

    async fn report_backlog(&mut self) -> Result<u64, EventLogError> {
        let backlog = self.feed.backlog().await?;
        metrics::gauge!("moodwire_sync_backlog_events").set(backlog as f64);
        Ok(backlog)
    }

    /// Syncs whenever the CPU is idle, until `stop` resolves. Failures (a store or
    /// broker away) are retried with exponential backoff up to 30 s; nothing is
    /// lost meanwhile, the backlog waits in the log.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = Duration::from_secs(1);
        let mut next_recovery = tokio::time::Instant::now();
        loop {
            let open = self.gate_open();
            metrics::gauge!("moodwire_sync_gate_open").set(if open { 1.0 } else { 0.0 });
            let pause = if !open {
                // While waiting, the backlog still shows in /metrics.
                if let Err(e) = self.report_backlog().await {
                    tracing::debug!(error = %e, "cannot measure the backlog now");
                }
                Duration::from_secs(1)
            } else {
                match self.pass(true).await {
                    Ok(report) => {
                        if !report.interrupted_by_load
                            && tokio::time::Instant::now() >= next_recovery
                        {
                            recover(self.recovery.as_ref()).await;
                            next_recovery =
                                tokio::time::Instant::now() + self.config.recovery_every;
                        }
                        backoff = Duration::from_secs(1);
                        Duration::from_secs(1)
                    }
                    Err(e) => {
                        metrics::counter!("moodwire_sync_errors_total").increment(1);
                        tracing::warn!(error = %e, retry_in = ?backoff, "sync failed; the backlog waits in the event log");
                        let pause = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        pause
                    }
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// A recovery pass, when there is one to run; a failure waits for the next turn.
async fn recover(recovery: Option<&Recovery>) {
    let Some(recovery) = recovery else {
        return;
    };
    if let Err(e) = recovery.pass().await {
        metrics::counter!("moodwire_recovery_errors_total").increment(1);
        tracing::warn!(error = %e, "recovery failed; it runs again next time");
    }
}

fn record_batch(events: usize, inserted: usize, already_stored: usize, rejected: usize) {
    let count = |result, n: usize| {
        metrics::counter!("moodwire_sync_events_total", "result" => result).increment(n as u64)
    };
    count("inserted", inserted);
    count("already_stored", already_stored);
    count("rejected", rejected);
    metrics::gauge!("moodwire_sync_last_success_timestamp_seconds")
        .set(chrono::Utc::now().timestamp() as f64);
    tracing::info!(events, inserted, already_stored, rejected, "synced a batch");
}
