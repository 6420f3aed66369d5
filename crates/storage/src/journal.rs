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
use moodwire_core::ports::{EventBatch, EventFeed, EventLog, EventLogError, LogPosition};
use moodwire_core::AnalysisRecorded;
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

impl Journal {
    pub const FILE_NAME: &'static str = "journal.sqlite";

    /// Opens the journal file in `dir` (creating both when missing).
    pub async fn open(dir: &Path) -> Result<Self, EventLogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EventLogError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(Self::FILE_NAME);
        let pool = sqlite_pool(SqliteConnectOptions::new().filename(&path))
            .await
            .map_err(|e| {
                EventLogError(format!("cannot open the journal {}: {e}", path.display()))
            })?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS events (
                 seq     INTEGER PRIMARY KEY AUTOINCREMENT,
                 key     TEXT NOT NULL,
                 payload BLOB NOT NULL
             )",
        )
        .execute(&pool)
        .await
        .map_err(log_error("cannot create the journal table"))?;
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

    /// The oldest `max` entries as (seq, key, payload).
    pub(crate) async fn oldest(
        &self,
        max: usize,
    ) -> Result<Vec<(i64, String, Vec<u8>)>, EventLogError> {
        sqlx::query_as("SELECT seq, key, payload FROM events ORDER BY seq LIMIT ?1")
            .bind(max as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(log_error("cannot read the journal"))
    }

    /// Waits up to `wait` for entries, then returns the oldest `max`.
    pub(crate) async fn wait_for_oldest(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(i64, String, Vec<u8>)>, EventLogError> {
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
                Err(e) => {
                    batch.rejected += 1;
                    tracing::error!(seq, error = %e, "skipping an unreadable journal entry");
                }
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
