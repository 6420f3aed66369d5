-- Events the store refused for good (an encoding, a constraint, a value too long) or
-- that could not be read: kept here instead of blocking the events behind them, for an
-- operator to look at (`moodwire sync --dead-letters`) and replay after a fix
-- (`moodwire sync --retry-dead-letters`).
CREATE TABLE dead_letters (
    letter_id     TEXT PRIMARY KEY,             -- SHA-256 of the payload: one row per event
    analysis_id   TEXT,                          -- when the event could be read
    payload       BYTEA NOT NULL,                -- the event as it was in the log
    error         TEXT NOT NULL,                 -- why it was refused, the last time
    origin        TEXT NOT NULL,                 -- where it was read
    attempts      INTEGER NOT NULL DEFAULT 1,    -- the first refusal and every replay since
    dead_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_time ON dead_letters (dead_at);
