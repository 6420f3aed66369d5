-- Analyses limited to some subreddits or to a time window. Each keyword x subreddits x
-- window is a series of its own: the history never mixes a scoped analysis into the
-- unrestricted trend, nor one scope into another. Rows stored before keep the defaults
-- (all of Reddit, all time), which is what they were.
ALTER TABLE analyses ADD COLUMN subreddits TEXT NOT NULL DEFAULT '';     -- lowercase, sorted, '+'-joined; '' = all of Reddit
ALTER TABLE analyses ADD COLUMN time_window TEXT NOT NULL DEFAULT 'all'; -- hour, day, week, month, year or all
CREATE INDEX analyses_series_time ON analyses (keyword, subreddits, time_window, analyzed_at);

-- Emotion share per keyword and scope over time (hourly).
DROP VIEW emotion_share_over_time;
CREATE VIEW emotion_share_over_time AS
SELECT a.keyword,
       a.subreddits,
       a.time_window,
       date_trunc('hour', a.analyzed_at) AS hour,
       e.label,
       count(*)                                                   AS analyses,
       sum(e.post_count)                                          AS posts,
       100.0 * sum(e.post_count) / nullif(sum(a.post_count), 0)   AS pct,
       sum(e.avg_score * e.post_count) / nullif(sum(e.post_count), 0) AS avg_score
FROM analyses a
JOIN analysis_emotions e ON e.analysis_id = a.analysis_id
GROUP BY a.keyword, a.subreddits, a.time_window, date_trunc('hour', a.analyzed_at), e.label;
