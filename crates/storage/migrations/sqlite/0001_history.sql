-- The SQLite twin of migrations/postgres (timestamps as RFC 3339 text).
-- moodwire's history, long format for BI tools (Grafana, Metabase, Tableau).
-- Written only by the idle sync, with idempotent upserts: replaying an event changes nothing.

-- Every keyword ever analysed, by its normalized form.
CREATE TABLE keywords (
    keyword           TEXT PRIMARY KEY,
    display           TEXT NOT NULL,              -- as last asked
    analyses          INTEGER NOT NULL DEFAULT 0,  -- computed analyses stored
    first_analyzed_at TEXT NOT NULL,
    last_analyzed_at  TEXT NOT NULL
);

-- One row per computed analysis.
CREATE TABLE analyses (
    analysis_id   TEXT PRIMARY KEY,
    keyword       TEXT NOT NULL REFERENCES keywords (keyword),
    display       TEXT NOT NULL,
    post_limit    INTEGER NOT NULL,
    post_count    INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    posts_source  TEXT NOT NULL,
    analyzed_at   TEXT NOT NULL,
    fetch_ms      REAL NOT NULL,
    inference_ms  REAL NOT NULL,
    -- Rebuilt from the cache by recovery: aggregate only, no posts.
    recovered     INTEGER NOT NULL DEFAULT 0,
    stored_at     TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX analyses_keyword_time ON analyses (keyword, analyzed_at);
CREATE INDEX analyses_time ON analyses (analyzed_at);

-- Analysis x emotion: all six labels for every analysis.
CREATE TABLE analysis_emotions (
    analysis_id TEXT NOT NULL REFERENCES analyses (analysis_id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    post_count  INTEGER NOT NULL,
    pct         REAL NOT NULL,
    avg_score   REAL NOT NULL,
    PRIMARY KEY (analysis_id, label)
);

-- Posts as fetched (Reddit ids are one namespace across the API and dumps).
CREATE TABLE posts (
    post_id    TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    subreddit  TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    score      INTEGER NOT NULL,
    permalink  TEXT NOT NULL
);
CREATE INDEX posts_created ON posts (created_at);

-- What the model said about each post of each analysis.
CREATE TABLE predictions (
    analysis_id TEXT NOT NULL REFERENCES analyses (analysis_id) ON DELETE CASCADE,
    post_id     TEXT NOT NULL REFERENCES posts (post_id),
    label       TEXT NOT NULL,
    score       REAL NOT NULL,
    p_sadness   REAL NOT NULL,
    p_joy       REAL NOT NULL,
    p_love      REAL NOT NULL,
    p_anger     REAL NOT NULL,
    p_fear      REAL NOT NULL,
    p_surprise  REAL NOT NULL,
    PRIMARY KEY (analysis_id, post_id)
);
CREATE INDEX predictions_post ON predictions (post_id);

-- Emotion share per keyword over time (hourly): pct of all posts analysed for the
-- keyword in that hour, and the mean confidence of the posts given the label.
CREATE VIEW emotion_share_over_time AS
SELECT a.keyword,
       strftime('%Y-%m-%dT%H:00:00Z', a.analyzed_at) AS hour,
       e.label,
       count(*)                                                   AS analyses,
       sum(e.post_count)                                          AS posts,
       100.0 * sum(e.post_count) / nullif(sum(a.post_count), 0)   AS pct,
       sum(e.avg_score * e.post_count) / nullif(sum(e.post_count), 0) AS avg_score
FROM analyses a
JOIN analysis_emotions e ON e.analysis_id = a.analysis_id
GROUP BY a.keyword, strftime('%Y-%m-%dT%H:00:00Z', a.analyzed_at), e.label;

-- Confidence per emotion and model version, over every stored prediction.
CREATE VIEW emotion_confidence AS
SELECT p.label,
       a.model_version,
       count(*)     AS predictions,
       avg(p.score) AS avg_score,
       min(p.score) AS min_score,
       max(p.score) AS max_score
FROM predictions p
JOIN analyses a ON a.analysis_id = p.analysis_id
GROUP BY p.label, a.model_version;
