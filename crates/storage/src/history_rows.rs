//! The history read side's queries, their rows and their assembly into the domain's
//! history types (run by [`crate::queries::Queries`] on either dialect). Counts are
//! cast to BIGINT for one row type to decode either.

use chrono::{DateTime, Utc};
use moodwire_core::history::{
    in_emotion_order, AnalysisPosts, AnalysisSummary, KeywordMood, ScoredPost,
};
use moodwire_core::ports::StoreError;
use moodwire_core::{excerpt, Emotion, EmotionShare, Post, Window};

use crate::rows::SUBREDDIT_SEPARATOR;

/// The `$1` most analysed keywords, each with every scope (series) it was asked in:
/// the unrestricted series first, then the most analysed. Only the top keywords'
/// analyses are grouped, through the series index.
pub(crate) const KEYWORD_MOODS: &str = "SELECT k.keyword, k.display, s.subreddits, s.time_window,
        CAST(s.analyses AS BIGINT) AS analyses,
        a.analysis_id, a.analyzed_at, CAST(a.post_count AS BIGINT) AS post_count,
        e.label, CAST(e.post_count AS BIGINT) AS label_count, e.pct, e.avg_score
 FROM (SELECT keyword, display, analyses, last_analyzed_at FROM keywords
       ORDER BY analyses DESC, last_analyzed_at DESC LIMIT $1) k
 JOIN (SELECT keyword, subreddits, time_window, count(*) AS analyses FROM analyses
       WHERE keyword IN (SELECT keyword FROM keywords
                         ORDER BY analyses DESC, last_analyzed_at DESC LIMIT $1)
       GROUP BY keyword, subreddits, time_window) s ON s.keyword = k.keyword
 JOIN analyses a ON a.analysis_id = (
     SELECT analysis_id FROM analyses
     WHERE keyword = s.keyword AND subreddits = s.subreddits AND time_window = s.time_window
     ORDER BY analyzed_at DESC, analysis_id DESC LIMIT 1)
 JOIN analysis_emotions e ON e.analysis_id = a.analysis_id
 ORDER BY k.analyses DESC, k.last_analyzed_at DESC, k.keyword,
          (s.subreddits <> '' OR s.time_window <> 'all'), s.analyses DESC,
          s.subreddits, s.time_window";

/// The latest `$4` analyses of keyword `$1` in exactly the scope `$2` x `$3`.
pub(crate) const TREND: &str =
    "SELECT a.analysis_id, a.analyzed_at, CAST(a.post_count AS BIGINT) AS post_count,
        e.label, CAST(e.post_count AS BIGINT) AS label_count, e.pct, e.avg_score
 FROM (SELECT analysis_id, analyzed_at, post_count FROM analyses
       WHERE keyword = $1 AND subreddits = $2 AND time_window = $3
       ORDER BY analyzed_at DESC, analysis_id DESC LIMIT $4) a
 JOIN analysis_emotions e ON e.analysis_id = a.analysis_id
 ORDER BY a.analyzed_at, a.analysis_id";

/// Up to `$4` posts of the latest analysis with posts of keyword `$1` in the scope
/// `$2` x `$3`, least confident first.
pub(crate) const SCORED_POSTS: &str =
    "SELECT a.analysis_id, a.analyzed_at, p.post_id, p.subreddit, p.created_at,
        p.title, p.body, p.permalink, r.label, r.score
 FROM (SELECT analysis_id, analyzed_at FROM analyses
       WHERE keyword = $1 AND subreddits = $2 AND time_window = $3
         AND NOT recovered AND post_count > 0
       ORDER BY analyzed_at DESC, analysis_id DESC LIMIT 1) a
 JOIN predictions r ON r.analysis_id = a.analysis_id
 JOIN posts p ON p.post_id = r.post_id
 ORDER BY r.score, p.post_id LIMIT $4";

/// An emotion row of an analysis, with the analysis's own columns.
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    pub analysis_id: String,
    pub analyzed_at: DateTime<Utc>,
    pub post_count: i64,
    pub label: String,
    pub label_count: i64,
    pub pct: f64,
    pub avg_score: f64,
}

/// A [`SummaryRow`] of the latest analysis of a keyword in one scope, with the
/// keyword's registry columns and the scope's count.
#[derive(sqlx::FromRow)]
pub(crate) struct MoodRow {
    pub keyword: String,
    pub display: String,
    pub subreddits: String,
    pub time_window: String,
    pub analyses: i64,
    #[sqlx(flatten)]
    pub summary: SummaryRow,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ScoredPostRow {
    pub analysis_id: String,
    pub analyzed_at: DateTime<Utc>,
    pub post_id: String,
    pub subreddit: String,
    pub created_at: DateTime<Utc>,
    pub title: String,
    pub body: String,
    pub permalink: String,
    pub label: String,
    pub score: f64,
}

fn emotion(label: &str) -> Result<Emotion, StoreError> {
    label.parse().map_err(|_| {
        StoreError::Rejected(format!(
            "the store holds an unknown emotion label {label:?}"
        ))
    })
}

fn share(row: &SummaryRow) -> Result<EmotionShare, StoreError> {
    Ok(EmotionShare {
        label: emotion(&row.label)?,
        count: u32::try_from(row.label_count).unwrap_or(0),
        pct: row.pct,
        avg_score: row.avg_score,
    })
}

/// Groups emotion rows, ordered by analysis, into one summary per analysis.
pub(crate) fn summaries(rows: &[SummaryRow]) -> Result<Vec<AnalysisSummary>, StoreError> {
    let mut out: Vec<AnalysisSummary> = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let id = &rows[start].analysis_id;
        let end = start
            + rows[start..]
                .iter()
                .take_while(|r| &r.analysis_id == id)
                .count();
        let group = &rows[start..end];
        let shares = group.iter().map(share).collect::<Result<Vec<_>, _>>()?;
        out.push(AnalysisSummary {
            analysis_id: id.clone(),
            analyzed_at: group[0].analyzed_at,
            count: u32::try_from(group[0].post_count).unwrap_or(0),
            emotions: in_emotion_order(shares),
        });
        start = end;
    }
    Ok(out)
}

/// Groups mood rows, ordered by keyword and scope, into one mood per keyword and scope.
pub(crate) fn moods(rows: Vec<MoodRow>) -> Result<Vec<KeywordMood>, StoreError> {
    // (keyword, display, subreddits, time_window, analyses) of each series, in order.
    let mut series: Vec<(String, String, String, String, i64)> = Vec::new();
    let mut summary_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let MoodRow {
            keyword,
            display,
            subreddits,
            time_window,
            analyses,
            summary,
        } = row;
        let same_series = series
            .last()
            .is_some_and(|(k, _, s, w, _)| (k, s, w) == (&keyword, &subreddits, &time_window));
        if !same_series {
            series.push((keyword, display, subreddits, time_window, analyses));
        }
        summary_rows.push(summary);
    }
    // One latest analysis per series, in the same order.
    let latest = summaries(&summary_rows)?;
    series
        .into_iter()
        .zip(latest)
        .map(
            |((keyword, display, subreddits, time_window, analyses), latest)| {
                Ok(KeywordMood {
                    keyword,
                    display,
                    subreddits: subreddits
                        .split(SUBREDDIT_SEPARATOR)
                        .filter(|name| !name.is_empty())
                        .map(str::to_string)
                        .collect(),
                    window: window(&time_window)?,
                    analyses: u64::try_from(analyses).unwrap_or(0),
                    latest,
                })
            },
        )
        .collect()
}

fn window(name: &str) -> Result<Window, StoreError> {
    Window::parse(name).map_err(|_| {
        StoreError::Rejected(format!("the store holds an unknown time window {name:?}"))
    })
}

pub(crate) fn analysis_posts(
    rows: Vec<ScoredPostRow>,
) -> Result<Option<AnalysisPosts>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (analysis_id, analyzed_at) = (first.analysis_id.clone(), first.analyzed_at);
    let posts = rows
        .into_iter()
        .map(|r| {
            Ok(ScoredPost {
                label: emotion(&r.label)?,
                excerpt: excerpt(&r.body, Post::EXCERPT_MAX_CHARS),
                post_id: r.post_id,
                subreddit: r.subreddit,
                created_at: r.created_at,
                title: r.title,
                permalink: r.permalink,
                score: r.score,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(AnalysisPosts {
        analysis_id,
        analyzed_at,
        posts,
    }))
}
