//! Dead letters as rows, shared by the PostgreSQL and SQLite adapters.

use chrono::{DateTime, Utc};
use moodwire_core::ports::{DeadLetter, StoredDeadLetter};
use moodwire_core::strip_controls;
use sha2::{Digest, Sha256};

/// A dead letter as it is written: texts without control characters (the reason an
/// event is refused must not make its dead letter refused too).
pub(crate) struct DeadLetterRow {
    pub letter_id: String,
    pub analysis_id: Option<String>,
    pub payload: Vec<u8>,
    pub error: String,
    pub origin: String,
}

impl DeadLetterRow {
    pub fn new(letter: &DeadLetter) -> Self {
        DeadLetterRow {
            letter_id: letter_id(&letter.payload),
            analysis_id: letter.analysis_id.clone().map(strip_controls),
            payload: letter.payload.clone(),
            error: strip_controls(letter.error.clone()),
            origin: strip_controls(letter.origin.clone()),
        }
    }
}

/// The id of a dead letter: the SHA-256 of its payload, so one event is kept once.
fn letter_id(payload: &[u8]) -> String {
    Sha256::digest(payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A dead letter as it is read back.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredRow {
    pub letter_id: String,
    pub analysis_id: Option<String>,
    pub payload: Vec<u8>,
    pub error: String,
    pub origin: String,
    pub attempts: i64,
    pub dead_at: DateTime<Utc>,
}

impl From<StoredRow> for StoredDeadLetter {
    fn from(row: StoredRow) -> Self {
        StoredDeadLetter {
            id: row.letter_id,
            letter: DeadLetter {
                analysis_id: row.analysis_id,
                payload: row.payload,
                error: row.error,
                origin: row.origin,
            },
            dead_at: row.dead_at,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        }
    }
}
