-- Events the store refused for good or could not read; see the PostgreSQL migration.
CREATE TABLE dead_letters (
    letter_id     TEXT PRIMARY KEY,
    analysis_id   TEXT,
    payload       BLOB NOT NULL,
    error         TEXT NOT NULL,
    origin        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 1,
    dead_at       TEXT NOT NULL,
    last_error_at TEXT NOT NULL
);
CREATE INDEX dead_letters_time ON dead_letters (dead_at);
