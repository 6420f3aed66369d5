//! The idle sync: drains the event log into the store while the CPU is quiet, and
//! past a deadline even while it is not (throttled), so that load delays the history
//! but cannot stop it.
//!
//! Nothing one event does stops the others: an event the store refuses for good (an
//! encoding, a constraint) is found by halving the batch that held it and set aside
//! as a dead letter in the store, with the error, and the rest is stored.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use moodwire_core::ports::{
    Backlog, DeadLetter, EventBatch, EventFeed, EventLogError, SaveReport, Store, StoreError,
};
use moodwire_core::AnalysisRecorded;

use crate::cpu::CpuGauge;
use crate::recovery::Recovery;

/// How long a read waits when no event is known to wait (once reading, or when the
/// backlog reads 0): a pause this long with none means the log is drained (or the rest
/// is on partitions another worker holds).
const DRAINED_WAIT: Duration = Duration::from_millis(500);

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
    /// An event waiting longer than this is synced even while the CPU is busy.
    pub max_delay: Duration,
    /// Events per transaction of such an overdue pass, and the pause after each: a
    /// trickle that a busy machine does not notice.
    pub overdue_batch: usize,
    pub overdue_pause: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            cpu_threshold: 20.0,
            batch_size: 500,
            batch_wait: Duration::from_secs(10),
            recovery_every: Duration::from_secs(15 * 60),
            max_delay: Duration::from_secs(900),
            overdue_batch: 50,
            overdue_pause: Duration::from_secs(1),
        }
    }
}

impl SyncConfig {
    /// How often a busy machine's backlog is looked at for overdue events.
    fn overdue_check_every(&self) -> Duration {
        (self.max_delay / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
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
    /// Events set aside as dead letters: refused by the store, or unreadable.
    pub dead_lettered: usize,
    /// The pass stopped because the CPU got busy, not because the log was drained.
    pub interrupted_by_load: bool,
}

/// What saving some events did: the store's report, and the events it refused for good.
#[derive(Debug, Default)]
pub struct Saved {
    pub report: SaveReport,
    pub refused: Vec<DeadLetter>,
}

/// Saves `events`, isolating the ones the store refuses for good: a refused batch is
/// halved, and the halves saved, until each refused event stands alone. A transient
/// failure (the store away) stops it with the error, to be retried later; what was
/// saved by then stays saved, and saving it again changes nothing.
pub async fn save_isolating(
    store: &dyn Store,
    events: &[AnalysisRecorded],
    origin: &str,
) -> Result<Saved, StoreError> {
    let mut saved = Saved::default();
    // A stack of ranges still to save, the whole batch first.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..events.len());
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        match store.save(&events[range.clone()]).await {
            Ok(report) => {
                saved.report.inserted += report.inserted;
                saved.report.already_stored += report.already_stored;
            }
            Err(e) if e.is_permanent() && range.len() == 1 => {
                saved
                    .refused
                    .push(DeadLetter::refused(&events[range.start], &e, origin));
            }
            Err(e) if e.is_permanent() => {
                let middle = range.start + range.len() / 2;
                // The second half first on the stack: the first is saved first.
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(saved)
}

pub struct IdleSync {
    feed: Box<dyn EventFeed>,
    store: Arc<dyn Store>,
    cpu: Arc<dyn CpuGauge>,
    config: SyncConfig,
    recovery: Option<Recovery>,
    /// The backlog as last seen, in /metrics and for whoever listens (readiness).
    backlog: Backlog,
    progress: Option<tokio::sync::watch::Sender<Option<Backlog>>>,
    /// A batch was read and not stored, and going back to the last commit has not
    /// worked yet. Until it has, nothing more is read: a later batch's commit would
    /// mark the unstored one done too.
    rewind_owed: bool,
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
            backlog: Backlog {
                events: 0,
                oldest_age: None,
            },
            progress: None,
            rewind_owed: false,
        }
    }

    /// Also publishes the backlog (events, oldest age) to `progress` as it is seen.
    pub fn with_progress(mut self, progress: tokio::sync::watch::Sender<Option<Backlog>>) -> Self {
        self.progress = Some(progress);
        self
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
        // Asking for the backlog costs broker round trips: once before, once after. It
        // sets how long to wait for the first event, never whether to read: a broker can
        // under-report its end (Tansu gives the last record batch's first offset + 1, so
        // a commit inside that batch reads as no lag), and only an empty batch proves
        // that nothing waits.
        let mut wait = if self.report_backlog().await? == 0 {
            DRAINED_WAIT
        } else {
            self.config.batch_wait
        };
        let mut drained = false;
        loop {
            if respect_gate && !self.gate_open() {
                report.interrupted_by_load = true;
                break;
            }
            let batch = self.next_batch(self.config.batch_size, wait).await?;
            wait = DRAINED_WAIT;
            if batch.is_empty() {
                drained = true;
                break;
            }
            self.store_batch(batch, &mut report).await?;
        }
        if report.batches > 0 {
            self.report_backlog().await?;
        }
        if drained {
            self.set_oldest_age(None);
        }
        Ok(report)
    }

    /// While the CPU is busy: stores, in small batches with a pause after each, the
    /// events that have waited longer than `max_delay`, and stops at the first batch
    /// that has none (it is read again later). Reports the oldest event's age.
    #[tracing::instrument(name = "sync_overdue_pass", skip(self))]
    pub async fn overdue_pass(&mut self) -> Result<PassReport, SyncError> {
        let mut report = PassReport::default();
        loop {
            let batch = self
                .next_batch(self.config.overdue_batch, DRAINED_WAIT)
                .await?;
            let oldest = oldest_age(&batch);
            self.set_oldest_age(oldest);
            let overdue = !batch.unreadable.is_empty()
                || oldest.is_some_and(|age| age > self.config.max_delay);
            if !overdue {
                // Not due yet: leave it for the idle sync.
                self.rewind().await?;
                break;
            }
            self.store_batch(batch, &mut report).await?;
            tokio::time::sleep(self.config.overdue_pause).await;
        }
        if report.batches > 0 {
            tracing::info!(
                inserted = report.inserted,
                batches = report.batches,
                max_delay_secs = self.config.max_delay.as_secs(),
                "synced overdue events while the CPU is busy"
            );
        }
        Ok(report)
    }

    /// The next batch, after the rewind a failed batch still owes.
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<EventBatch, EventLogError> {
        if self.rewind_owed {
            self.rewind().await?;
        }
        self.feed.next_batch(max, wait).await
    }

    /// Goes back to the last commit, so that what was read since is read again. Owed
    /// until it works (a broker away, a rebalance): see `rewind_owed`.
    async fn rewind(&mut self) -> Result<(), EventLogError> {
        self.rewind_owed = true;
        self.feed.rewind().await?;
        self.rewind_owed = false;
        Ok(())
    }

    /// Saves one batch (setting aside what the store refuses and what cannot be read),
    /// then commits it in the log. On failure the batch is read again later.
    async fn store_batch(
        &mut self,
        batch: EventBatch,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let saved = match save_isolating(self.store.as_ref(), &batch.events, "sync").await {
            Ok(saved) => saved,
            Err(e) => {
                self.rewind().await?;
                return Err(e.into());
            }
        };
        let mut dead = saved.refused;
        dead.extend(batch.unreadable);
        if !dead.is_empty() {
            if let Err(e) = self.store.dead_letter(&dead).await {
                self.rewind().await?;
                return Err(e.into());
            }
            announce_dead_letters(&dead);
        }
        self.feed.commit(&batch.position).await?;
        report.batches += 1;
        report.inserted += saved.report.inserted;
        report.already_stored += saved.report.already_stored;
        report.dead_lettered += dead.len();
        record_batch(
            batch.events.len(),
            saved.report.inserted,
            saved.report.already_stored,
            dead.len(),
        );
        Ok(())
    }

    async fn report_backlog(&mut self) -> Result<u64, EventLogError> {
        let backlog = self.feed.backlog().await?;
        metrics::gauge!("moodwire_sync_backlog_events").set(backlog as f64);
        self.backlog.events = backlog;
        self.publish();
        Ok(backlog)
    }

    /// The age of the oldest event waiting to be synced (none: nothing waits).
    fn set_oldest_age(&mut self, age: Option<Duration>) {
        let age = age.unwrap_or_default();
        metrics::gauge!("moodwire_sync_oldest_event_age_seconds").set(age.as_secs_f64());
        self.backlog.oldest_age = Some(age);
        self.publish();
    }

    fn publish(&self) {
        if let Some(progress) = &self.progress {
            progress.send_replace(Some(self.backlog));
        }
    }

    /// Syncs whenever the CPU is idle, and overdue events whatever the CPU, until
    /// `stop` resolves. Failures (a store or broker away) are retried with exponential
    /// backoff up to 30 s; nothing is lost meanwhile, the backlog waits in the log.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = Duration::from_secs(1);
        let mut next_recovery = tokio::time::Instant::now();
        let mut next_overdue_check = tokio::time::Instant::now();
        loop {
            let open = self.gate_open();
            metrics::gauge!("moodwire_sync_gate_open").set(if open { 1.0 } else { 0.0 });
            let outcome = if open {
                self.pass(true).await.map(|report| {
                    if !report.interrupted_by_load && tokio::time::Instant::now() >= next_recovery {
                        next_recovery = tokio::time::Instant::now() + self.config.recovery_every;
                        true
                    } else {
                        false
                    }
                })
            } else {
                // While waiting, the backlog still shows in /metrics; past the deadline
                // what is overdue is stored anyway. The overdue check reads the log
                // whatever the backlog says, which can be 0 while events wait (`pass`).
                match self.report_backlog().await {
                    Ok(_) if tokio::time::Instant::now() >= next_overdue_check => {
                        next_overdue_check =
                            tokio::time::Instant::now() + self.config.overdue_check_every();
                        self.overdue_pass().await.map(|_| false)
                    }
                    Ok(_) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            };
            let pause = match outcome {
                Ok(recover_now) => {
                    if recover_now {
                        recover(self.recovery.as_ref()).await;
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
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// How long the oldest event of a batch has waited, by its analysis time.
fn oldest_age(batch: &EventBatch) -> Option<Duration> {
    let oldest = batch.events.iter().map(|e| e.analysis.analyzed_at).min()?;
    Some((Utc::now() - oldest).to_std().unwrap_or_default())
}

/// Each dead letter is a WARN with its analysis and why, and a count in /metrics.
pub(crate) fn announce_dead_letters(dead: &[DeadLetter]) {
    for letter in dead {
        tracing::warn!(
            analysis = letter.analysis_id.as_deref().unwrap_or("unreadable"),
            origin = %letter.origin,
            error = %letter.error,
            "an event was set aside as a dead letter; `moodwire sync --dead-letters` lists them"
        );
    }
    metrics::counter!("moodwire_dead_letters_total").increment(dead.len() as u64);
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

fn record_batch(events: usize, inserted: usize, already_stored: usize, dead_lettered: usize) {
    let count = |result, n: usize| {
        metrics::counter!("moodwire_sync_events_total", "result" => result).increment(n as u64)
    };
    count("inserted", inserted);
    count("already_stored", already_stored);
    count("dead_lettered", dead_lettered);
    metrics::gauge!("moodwire_sync_last_success_timestamp_seconds")
        .set(chrono::Utc::now().timestamp() as f64);
    tracing::info!(
        events,
        inserted,
        already_stored,
        dead_lettered,
        "synced a batch"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use moodwire_core::{Post, MAX_EVENT_BYTES};
    use moodwire_testkit::{event, post, MapCache, MemoryLog, MemoryStore};

    use super::*;

    /// Reads a percentage a test sets.
    #[derive(Default)]
    struct Cpu(AtomicU32);

    impl Cpu {
        fn at(percent: f32) -> Arc<Self> {
            Arc::new(Cpu(AtomicU32::new(percent.to_bits())))
        }
        fn set(&self, percent: f32) {
            self.0.store(percent.to_bits(), Ordering::SeqCst);
        }
    }

    impl CpuGauge for Cpu {
        fn percent(&self) -> f32 {
            f32::from_bits(self.0.load(Ordering::SeqCst))
        }
    }

    fn sync(log: &MemoryLog, store: &Arc<MemoryStore>, cpu: Arc<Cpu>) -> IdleSync {
        let config = SyncConfig {
            batch_wait: Duration::from_millis(10),
            overdue_pause: Duration::ZERO,
            ..SyncConfig::default()
        };
        IdleSync::new(Box::new(log.feed()), store.clone(), cpu, config)
    }

    async fn append(log: &MemoryLog, events: &[AnalysisRecorded]) {
        use moodwire_core::ports::EventLog;
        for e in events {
            log.append(e).await.unwrap();
        }
    }

    fn with_nul(id: &str) -> AnalysisRecorded {
        let mut e = event(id, "poison", 2);
        e.posts[1].post.title = "a\u{0}b".into();
        e
    }

    fn has_nul(e: &AnalysisRecorded) -> bool {
        e.posts.iter().any(|p| p.post.title.contains('\u{0}'))
    }

    #[tokio::test]
    async fn a_pass_stores_the_backlog_and_commits_it() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 3), event("a2", "ai", 2)]).await;
        let report = sync(&log, &store, Cpu::at(0.0)).pass(true).await.unwrap();
        assert_eq!((report.inserted, report.batches), (2, 1));
        assert_eq!(log.pending(), 0, "committed after the store's commit");
        assert_eq!(store.post_ids("a1").len(), 3);
    }

    #[tokio::test]
    async fn a_store_that_is_away_loses_nothing_and_the_next_pass_stores_it() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1)]).await;
        store.set_down(true);
        let mut sync = sync(&log, &store, Cpu::at(0.0));
        let err = sync.pass(true).await.unwrap_err();
        assert!(
            matches!(err, SyncError::Store(StoreError::Unavailable(_))),
            "{err}"
        );
        assert_eq!(log.pending(), 1, "rewound, not committed");
        store.set_down(false);
        assert_eq!(sync.pass(true).await.unwrap().inserted, 1);
        assert_eq!(log.pending(), 0);
    }

    #[tokio::test]
    async fn a_rewind_that_fails_is_done_before_anything_more_is_read() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1), event("a2", "ai", 1)]).await;
        let mut sync = sync(&log, &store, Cpu::at(0.0));
        sync.config.batch_size = 1;
        store.set_down(true);
        log.set_rewind_broken(true);
        assert!(sync.pass(true).await.is_err(), "a1 cannot be stored");
        store.set_down(false);
        // The log still cannot go back: reading on would commit past a1 with a2.
        assert!(sync.pass(true).await.is_err());
        assert_eq!(store.saves(), 1, "only the first, failed save");
        log.set_rewind_broken(false);
        assert_eq!(sync.pass(true).await.unwrap().inserted, 2);
        assert_eq!(store.analysis_ids(), ["a1", "a2"]);
        assert_eq!(log.pending(), 0);
    }

    #[tokio::test]
    async fn one_poison_event_is_dead_lettered_and_every_other_is_stored() {
        let store = Arc::new(MemoryStore::refusing(has_nul));
        let log = MemoryLog::default();
        let mut events: Vec<_> = (0..9).map(|i| event(&format!("ok{i}"), "ai", 2)).collect();
        events.insert(4, with_nul("bad"));
        append(&log, &events).await;
        let report = sync(&log, &store, Cpu::at(0.0)).pass(true).await.unwrap();
        assert_eq!((report.inserted, report.dead_lettered), (9, 1));
        assert_eq!(store.analysis_ids().len(), 9);
        assert!(!store.analysis_ids().contains(&"bad".to_string()));
        assert_eq!(log.pending(), 0, "the poison does not stall the log");
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].letter.analysis_id.as_deref(), Some("bad"));
        assert!(
            dead[0].letter.error.contains("refused"),
            "{}",
            dead[0].letter.error
        );
        let kept = AnalysisRecorded::from_json(&dead[0].letter.payload).unwrap();
        assert_eq!(kept.analysis.id, "bad");
        assert_eq!(
            kept.posts[1].post.title, "a\u{0}b",
            "the raw event, as it was"
        );
    }

    #[tokio::test]
    async fn unreadable_entries_become_dead_letters_not_silence() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1)]).await;
        log.append_raw(b"{not an event".to_vec());
        log.append_raw(br#"{"version":99}"#.to_vec());
        let report = sync(&log, &store, Cpu::at(0.0)).pass(true).await.unwrap();
        assert_eq!((report.inserted, report.dead_lettered), (1, 2));
        let dead = store.dead_letters(10).await.unwrap();
        assert!(dead.iter().any(|d| d.letter.payload == b"{not an event"));
        assert!(dead.iter().any(|d| d.letter.error.contains("version 99")));
        assert_eq!(log.pending(), 0);
    }

    #[tokio::test]
    async fn isolating_a_refusal_halves_the_batch_rather_than_saving_one_by_one() {
        let store = MemoryStore::refusing(has_nul);
        let mut events: Vec<_> = (0..255).map(|i| event(&format!("e{i}"), "ai", 1)).collect();
        events.push(with_nul("bad"));
        let saved = save_isolating(&store, &events, "test").await.unwrap();
        assert_eq!(saved.report.inserted, 255);
        assert_eq!(saved.refused.len(), 1);
        assert!(
            store.saves() <= 2 * 9,
            "{} saves for 256 events",
            store.saves()
        );
    }

    #[tokio::test]
    async fn a_busy_cpu_stops_the_pass_and_the_rest_waits() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1)]).await;
        let report = sync(&log, &store, Cpu::at(90.0)).pass(true).await.unwrap();
        assert!(report.interrupted_by_load);
        assert_eq!((report.inserted, log.pending()), (0, 1));
    }

    #[tokio::test]
    async fn overdue_events_are_stored_while_busy_and_fresh_ones_wait() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        let mut old = event("old", "ai", 1);
        old.analysis.analyzed_at = Utc::now() - chrono::Duration::seconds(1000);
        append(&log, &[old]).await;
        let cpu = Cpu::at(90.0);
        let mut sync = sync(&log, &store, cpu.clone());
        let report = sync.overdue_pass().await.unwrap();
        assert_eq!(report.inserted, 1, "past the 900 s deadline");
        append(&log, &[event("fresh", "ai", 1)]).await;
        let report = sync.overdue_pass().await.unwrap();
        assert_eq!(report.inserted, 0, "not due yet");
        assert_eq!(log.pending(), 1, "left for the idle sync");
        cpu.set(0.0);
        assert_eq!(sync.pass(true).await.unwrap().inserted, 1);
    }

    #[tokio::test]
    async fn a_backlog_that_reads_zero_is_read_all_the_same() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1), event("a2", "ai", 1)]).await;
        log.under_report_backlog();
        let report = sync(&log, &store, Cpu::at(0.0)).pass(true).await.unwrap();
        assert_eq!(report.inserted, 2);
        assert_eq!(log.pending(), 0);
    }

    /// Runs the background loop on a busy CPU until `a1` is stored or 10 s pass.
    async fn run_busy_until_stored(log: &MemoryLog, store: &Arc<MemoryStore>) {
        let config = SyncConfig {
            max_delay: Duration::from_millis(200),
            overdue_pause: Duration::ZERO,
            ..SyncConfig::default()
        };
        let sync = IdleSync::new(Box::new(log.feed()), store.clone(), Cpu::at(95.0), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(sync.run(async {
            let _ = stopped.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.analysis_ids().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(()).unwrap();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn the_background_loop_syncs_an_overdue_backlog_under_load() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1)]).await;
        run_busy_until_stored(&log, &store).await;
        assert_eq!(store.analysis_ids(), ["a1"]);
    }

    #[tokio::test]
    async fn an_overdue_backlog_that_reads_zero_is_synced_under_load() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        append(&log, &[event("a1", "ai", 1)]).await;
        log.under_report_backlog();
        run_busy_until_stored(&log, &store).await;
        assert_eq!(store.analysis_ids(), ["a1"]);
    }

    #[tokio::test]
    async fn the_parts_of_a_split_event_make_one_analysis_with_every_post() {
        let (log, store) = (MemoryLog::default(), Arc::new(MemoryStore::default()));
        let posts: Vec<Post> = (0..400)
            .map(|i| Post {
                selftext: "x".repeat(2000),
                ..post(&format!("p{i}"), "long")
            })
            .collect();
        let whole = moodwire_testkit::event_of("big", "ai", posts);
        let parts = whole.split_to_fit(MAX_EVENT_BYTES / 2);
        assert!(parts.len() > 1);
        append(&log, &parts).await;
        let report = sync(&log, &store, Cpu::at(0.0)).pass(true).await.unwrap();
        assert_eq!(report.inserted, 1, "one analysis");
        assert_eq!(store.post_ids("big").len(), 400);
    }

    #[tokio::test]
    async fn recovery_backfills_what_only_the_cache_has() {
        use moodwire_core::ports::ResultCache;
        let cache = Arc::new(MapCache::default());
        let store = Arc::new(MemoryStore::default());
        let stored = event("in-store", "ai", 1);
        store.save(std::slice::from_ref(&stored)).await.unwrap();
        let lost = event("cache-only", "ai", 1);
        cache.put("k1", &stored.analysis).await.unwrap();
        cache.put("k2", &lost.analysis).await.unwrap();
        let report = Recovery::new(cache, store.clone()).pass().await.unwrap();
        assert_eq!((report.scanned, report.backfilled), (2, 1));
        assert_eq!(store.is_recovered("cache-only"), Some(true));
        // Its event arriving later makes it a full analysis.
        store.save(&[lost]).await.unwrap();
        assert_eq!(store.is_recovered("cache-only"), Some(false));
    }
}
