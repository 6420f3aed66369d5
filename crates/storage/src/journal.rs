//! The embedded event log: an append-only journal in a SQLite file (WAL, fsync on
//! commit). An appended event survives a crash; it is deleted only once committed,
//! i.e. after the store (or, in front of Kafka, the broker) has it.
//!
//! SQLite rather than a hand-rolled segment file: appends are atomic (no torn last
//! line to repair), and `moodwire serve` and a `moodwire sync` from cron can share
//! one journal safely.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moodwire_core::ports::{
    DeadLetter, EventBatch, EventFeed, EventLog, EventLogError, LogPosition,
};
use moodwire_core::{AnalysisRecorded, MAX_BATCH_BYTES};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;

use crate::sqlite_store::sqlite_pool;

/// How often an idle reader looks for new entries.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Journal {
    pool: SqlitePool,
    path: PathBuf,
}

fn log_error(context: &str) -> impl Fn(sqlx::Error) -> EventLogError + '_ {
    move |e| EventLogError(format!("{context}: {e}"))
}

/// The last step of moving an entry elsewhere (its parts, or aside): it leaves `events`
/// in the same transaction, so it is never in both places nor in neither.
async fn remove_and_commit(
    mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    seq: i64,
    failed: &impl Fn(sqlx::Error) -> EventLogError,
) -> Result<(), EventLogError> {
    sqlx::query("DELETE FROM events WHERE seq = ?1")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)
}

/// An entry of the journal: (seq, key, payload).
pub(crate) type Entry = (i64, String, Vec<u8>);

impl Journal {
    pub const FILE_NAME: &'static str = "journal.sqlite";
    /// The default bound on the journal file: far beyond a healthy backlog, but a
    /// dead store or broker cannot fill the disk with it.
    pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;
    /// SQLite's default page size, in which the bound is set.
    const PAGE_BYTES: u64 = 4096;

    /// Opens the journal file in `dir` (creating both when missing), bounded to
    /// [`Self::DEFAULT_MAX_BYTES`].
    pub async fn open(dir: &Path) -> Result<Self, EventLogError> {
        Self::open_bounded(dir, Self::DEFAULT_MAX_BYTES).await
    }

    /// Opens the journal, which refuses appends (loudly: see the service) once its file
    /// would grow past `max_bytes`, as on a full disk.
    pub async fn open_bounded(dir: &Path, max_bytes: u64) -> Result<Self, EventLogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EventLogError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(Self::FILE_NAME);
        let pages = (max_bytes / Self::PAGE_BYTES).max(8);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .pragma("max_page_count", pages.to_string());
        let pool = sqlite_pool(options).await.map_err(|e| {
            EventLogError(format!("cannot open the journal {}: {e}", path.display()))
        })?;
        for table in [
            "CREATE TABLE IF NOT EXISTS events (
                 seq     INTEGER PRIMARY KEY AUTOINCREMENT,
                 key     TEXT NOT NULL,
                 payload BLOB NOT NULL
             )",
            // Entries no broker takes (set aside by the Kafka forwarder), so the ones
            // behind them move on; `moodwire sync --dead-letters` lists them.
            "CREATE TABLE IF NOT EXISTS unsendable (
                 seq     INTEGER PRIMARY KEY,
                 key     TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 error   TEXT NOT NULL,
                 set_aside_at INTEGER NOT NULL
             )",
        ] {
            sqlx::query(table)
                .execute(&pool)
                .await
                .map_err(log_error("cannot create the journal tables"))?;
        }
        Ok(Journal { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader from the oldest uncommitted entry.
    pub fn feed(&self) -> JournalFeed {
        JournalFeed {
            journal: self.clone(),
        }
    }

    /// Entries not yet committed.
    pub async fn pending(&self) -> Result<u64, EventLogError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(log_error("cannot count the journal"))?;
        Ok(n as u64)
    }

    /// The oldest entries: at most `max`, and no more than [`MAX_BATCH_BYTES`] of
    /// payload but for the first.
    pub(crate) async fn oldest(&self, max: usize) -> Result<Vec<Entry>, EventLogError> {
        sqlx::query_as(
            "SELECT seq, key, payload FROM (
                 SELECT seq, key, payload,
                        SUM(length(payload)) OVER (ORDER BY seq) - length(payload) AS before
                 FROM (SELECT seq, key, payload FROM events ORDER BY seq LIMIT ?1))
             WHERE before < ?2 ORDER BY seq",
        )
        .bind(max as i64)
        .bind(MAX_BATCH_BYTES as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(log_error("cannot read the journal"))
    }

    /// Waits up to `wait` for entries, then returns the oldest `max`.
    pub(crate) async fn wait_for_oldest(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Entry>, EventLogError> {
        let deadline = Instant::now() + wait;
        loop {
            let entries = self.oldest(max).await?;
            if !entries.is_empty() || Instant::now() >= deadline {
                return Ok(entries);
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - Instant::now())).await;
        }
    }

    /// Forgets every entry before `next_seq`.
    pub(crate) async fn truncate_before(&self, next_seq: i64) -> Result<(), EventLogError> {
        sqlx::query("DELETE FROM events WHERE seq < ?1")
            .bind(next_seq)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(log_error("cannot truncate the journal"))
    }

    /// Replaces an entry by others (the parts of an event too big to send), in one
    /// transaction. The parts go to the end of the journal.
    pub(crate) async fn replace(
        &self,
        seq: i64,
        key: &str,
        parts: &[Vec<u8>],
    ) -> Result<(), EventLogError> {
        let failed = log_error("cannot replace a journal entry");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        for part in parts {
            sqlx::query("INSERT INTO events (key, payload) VALUES (?1, ?2)")
                .bind(key)
                .bind(part)
                .execute(&mut *tx)
                .await
                .map_err(&failed)?;
        }
        remove_and_commit(tx, seq, &failed).await
    }

    /// Moves an entry no broker takes out of the way, keeping it with the reason.
    pub(crate) async fn set_aside(&self, entry: &Entry, error: &str) -> Result<(), EventLogError> {
        let failed = log_error("cannot set a journal entry aside");
        let (seq, key, payload) = entry;
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        sqlx::query(
            "INSERT OR REPLACE INTO unsendable (seq, key, payload, error, set_aside_at)
             VALUES (?1, ?2, ?3, ?4, CAST(strftime('%s', 'now') AS INTEGER))",
        )
        .bind(seq)
        .bind(key)
        .bind(payload)
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(&failed)?;
        remove_and_commit(tx, *seq, &failed).await
    }

    /// The entries set aside because no broker took them, as dead letters.
    pub async fn unsendable(&self) -> Result<Vec<DeadLetter>, EventLogError> {
        let rows: Vec<(i64, Vec<u8>, String)> =
            sqlx::query_as("SELECT seq, payload, error FROM unsendable ORDER BY seq")
                .fetch_all(&self.pool)
                .await
                .map_err(log_error("cannot read the unsendable journal entries"))?;
        Ok(rows
            .into_iter()
            .map(|(seq, payload, error)| DeadLetter {
                analysis_id: AnalysisRecorded::from_json(&payload)
                    .ok()
                    .map(|e| e.analysis.id),
                payload,
                error,
                origin: format!("journal seq {seq} (not sent to Kafka)"),
            })
            .collect())
    }

    /// Puts the entries set aside back in the journal, to be sent again (after a fix,
    /// e.g. a broker that takes larger messages). Returns how many.
    pub async fn resend_unsendable(&self) -> Result<usize, EventLogError> {
        let failed = log_error("cannot put unsendable entries back in the journal");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        let moved = sqlx::query(
            "INSERT INTO events (key, payload) SELECT key, payload FROM unsendable ORDER BY seq",
        )
        .execute(&mut *tx)
        .await
        .map_err(&failed)?
        .rows_affected();
        sqlx::query("DELETE FROM unsendable")
            .execute(&mut *tx)
            .await
            .map_err(&failed)?;
        tx.commit().await.map_err(&failed)?;
        Ok(moved as usize)
    }
}

#[async_trait]
impl EventLog for Journal {
    async fn append(&self, event: &AnalysisRecorded) -> Result<(), EventLogError> {
        sqlx::query("INSERT INTO events (key, payload) VALUES (?1, ?2)")
            .bind(event.keyword_key())
            .bind(event.to_json())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(log_error("cannot append to the journal"))
    }
}

/// Reads the journal oldest first. Since commits delete, an uncommitted batch is
/// simply read again.
pub struct JournalFeed {
    journal: Journal,
}

#[async_trait]
impl EventFeed for JournalFeed {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<EventBatch, EventLogError> {
        let entries = self.journal.wait_for_oldest(max, wait).await?;
        let mut batch = EventBatch::default();
        if let Some((last, _, _)) = entries.last() {
            batch.position = LogPosition(vec![(0, last + 1)]);
        }
        for (seq, _, payload) in entries {
            match AnalysisRecorded::from_json(&payload) {
                Ok(event) => batch.events.push(event),
                Err(e) => batch.unreadable.push(DeadLetter {
                    analysis_id: None,
                    payload,
                    error: e.to_string(),
                    origin: format!("journal seq {seq}"),
                }),
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, position: &LogPosition) -> Result<(), EventLogError> {
        match position.0.as_slice() {
            [] => Ok(()),
            [(0, next)] => self.journal.truncate_before(*next).await,
            other => Err(EventLogError(format!("not a journal position: {other:?}"))),
        }
    }

    async fn rewind(&mut self) -> Result<(), EventLogError> {
        Ok(())
    }

    async fn backlog(&mut self) -> Result<u64, EventLogError> {
        self.journal.pending().await
    }
}
