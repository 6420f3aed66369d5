//! What the PostgreSQL and SQLite stores do the same way: every query but the batch
//! write and the missing-analysis check, written once against sqlx's `Database`. The
//! dialects differ in nothing these queries use: PostgreSQL's `$n` placeholders are
//! named parameters in SQLite, numbered in order of first use, which each query
//! follows, and timestamps are bound as values rather than computed in SQL.

use chrono::{DateTime, Utc};
use moodwire_core::history::{AnalysisPosts, AnalysisSummary, KeywordMood};
use moodwire_core::ports::{DeadLetter, StoreError, StoredDeadLetter};
use moodwire_core::{Keyword, Scope};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::dead_letter_rows::{DeadLetterRow, StoredRow};
use crate::history_rows::{
    analysis_posts, moods, summaries, MoodRow, ScoredPostRow, SummaryRow, KEYWORD_MOODS,
    SCORED_POSTS, TREND,
};
use crate::rows::subreddits_column;
use crate::store_error::{store_error, Dialect};

/// Implements `History` and `Store` for a SQL store: its own `save_events` and
/// `missing_ids` (where the dialects' best statements differ), and `queries()` for the rest.
macro_rules! sql_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl moodwire_core::ports::History for $store {
            async fn keyword_moods(
                &self,
                max: usize,
            ) -> Result<Vec<moodwire_core::history::KeywordMood>, moodwire_core::ports::StoreError>
            {
                self.queries().keyword_moods(max).await
            }

            async fn trend(
                &self,
                keyword: &moodwire_core::Keyword,
                scope: &moodwire_core::Scope,
                points: usize,
            ) -> Result<
                Vec<moodwire_core::history::AnalysisSummary>,
                moodwire_core::ports::StoreError,
            > {
                self.queries().trend(keyword, scope, points).await
            }

            async fn scored_posts(
                &self,
                keyword: &moodwire_core::Keyword,
                scope: &moodwire_core::Scope,
                max: usize,
            ) -> Result<
                Option<moodwire_core::history::AnalysisPosts>,
                moodwire_core::ports::StoreError,
            > {
                self.queries().scored_posts(keyword, scope, max).await
            }
        }

        #[async_trait::async_trait]
        impl moodwire_core::ports::Store for $store {
            async fn save(
                &self,
                events: &[moodwire_core::AnalysisRecorded],
            ) -> Result<moodwire_core::ports::SaveReport, moodwire_core::ports::StoreError> {
                self.save_events(events).await
            }

            async fn missing(
                &self,
                analysis_ids: &[String],
            ) -> Result<Vec<String>, moodwire_core::ports::StoreError> {
                self.missing_ids(analysis_ids).await
            }

            async fn top_keywords(
                &self,
                n: usize,
            ) -> Result<Vec<String>, moodwire_core::ports::StoreError> {
                self.queries().top_keywords(n).await
            }

            async fn post_texts(
                &self,
                since: i64,
                until: i64,
                max: usize,
            ) -> Result<Vec<String>, moodwire_core::ports::StoreError> {
                self.queries().post_texts(since, until, max).await
            }

            async fn check(&self) -> Result<(), moodwire_core::ports::StoreError> {
                self.queries().check().await
            }

            async fn dead_letter(
                &self,
                letters: &[moodwire_core::ports::DeadLetter],
            ) -> Result<(), moodwire_core::ports::StoreError> {
                self.queries().dead_letter(letters).await
            }

            async fn dead_letters(
                &self,
                max: usize,
            ) -> Result<Vec<moodwire_core::ports::StoredDeadLetter>, moodwire_core::ports::StoreError>
            {
                self.queries().dead_letters(max).await
            }

            async fn forget_dead_letters(
                &self,
                ids: &[String],
            ) -> Result<(), moodwire_core::ports::StoreError> {
                self.queries().forget_dead_letters(ids).await
            }
        }
    };
}
pub(crate) use sql_store;

const DEAD_LETTER: &str =
    "INSERT INTO dead_letters (letter_id, analysis_id, payload, error, origin, dead_at, last_error_at)
 VALUES ($1, $2, $3, $4, $5, $6, $6)
 ON CONFLICT (letter_id) DO UPDATE SET
   attempts = dead_letters.attempts + 1, error = excluded.error,
   origin = excluded.origin, last_error_at = excluded.last_error_at";

const DEAD_LETTERS: &str = "SELECT letter_id, analysis_id, payload, error, origin,
        CAST(attempts AS BIGINT) AS attempts, dead_at
 FROM dead_letters ORDER BY dead_at, letter_id LIMIT $1";

/// The queries on a pool of either dialect.
pub(crate) struct Queries<'a, DB: Database> {
    pub pool: &'a Pool<DB>,
    pub dialect: Dialect,
}

impl<DB> Queries<'_, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, String): FromRow<'r, DB::Row>,
    for<'r> MoodRow: FromRow<'r, DB::Row>,
    for<'r> SummaryRow: FromRow<'r, DB::Row>,
    for<'r> ScoredPostRow: FromRow<'r, DB::Row>,
    for<'r> StoredRow: FromRow<'r, DB::Row>,
{
    fn failed<'m>(&self, context: &'m str) -> impl Fn(sqlx::Error) -> StoreError + 'm {
        store_error(self.dialect, context)
    }

    pub async fn check(&self) -> Result<(), StoreError> {
        sqlx::query::<DB>("SELECT 1")
            .execute(self.pool)
            .await
            .map(drop)
            .map_err(self.failed("the store does not answer"))
    }

    pub async fn top_keywords(&self, n: usize) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query_as::<DB, (String,)>(
            "SELECT keyword FROM keywords ORDER BY analyses DESC, last_analyzed_at DESC LIMIT $1",
        )
        .bind(n as i64)
        .fetch_all(self.pool)
        .await
        .map_err(self.failed("cannot read keywords from the store"))?;
        Ok(rows.into_iter().map(|(keyword,)| keyword).collect())
    }

    /// The title and body of the newest posts created in [since, until) (Unix seconds).
    pub async fn post_texts(
        &self,
        since: i64,
        until: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let at = |secs| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let rows = sqlx::query_as::<DB, (String, String)>(
            "SELECT title, body FROM posts WHERE created_at >= $1 AND created_at < $2
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(at(since))
        .bind(at(until))
        .bind(max as i64)
        .fetch_all(self.pool)
        .await
        .map_err(self.failed("cannot read posts from the store"))?;
        Ok(rows
            .into_iter()
            .map(|(title, body)| format!("{title}\n{body}"))
            .collect())
    }

    pub async fn keyword_moods(&self, max: usize) -> Result<Vec<KeywordMood>, StoreError> {
        let rows = sqlx::query_as::<DB, MoodRow>(KEYWORD_MOODS)
            .bind(max as i64)
            .fetch_all(self.pool)
            .await
            .map_err(store_error(
                self.dialect,
                "cannot read keywords from the store",
            ))?;
        moods(rows)
    }

    pub async fn trend(
        &self,
        keyword: &Keyword,
        scope: &Scope,
        points: usize,
    ) -> Result<Vec<AnalysisSummary>, StoreError> {
        let rows = sqlx::query_as::<DB, SummaryRow>(TREND)
            .bind(keyword.normalized())
            .bind(subreddits_column(scope))
            .bind(scope.window.as_str().to_string())
            .bind(points as i64)
            .fetch_all(self.pool)
            .await
            .map_err(store_error(
                self.dialect,
                "cannot read analyses from the store",
            ))?;
        summaries(&rows)
    }

    pub async fn scored_posts(
        &self,
        keyword: &Keyword,
        scope: &Scope,
        max: usize,
    ) -> Result<Option<AnalysisPosts>, StoreError> {
        let rows = sqlx::query_as::<DB, ScoredPostRow>(SCORED_POSTS)
            .bind(keyword.normalized())
            .bind(subreddits_column(scope))
            .bind(scope.window.as_str().to_string())
            .bind(max as i64)
            .fetch_all(self.pool)
            .await
            .map_err(store_error(
                self.dialect,
                "cannot read posts from the store",
            ))?;
        analysis_posts(rows)
    }

    /// Keeps each letter once (by payload): a letter kept before counts one more attempt.
    pub async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        let failed = self.failed("cannot keep a dead letter in the store");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        let now = Utc::now();
        for row in letters.iter().map(DeadLetterRow::new) {
            sqlx::query::<DB>(DEAD_LETTER)
                .bind(row.letter_id)
                .bind(row.analysis_id)
                .bind(row.payload)
                .bind(row.error)
                .bind(row.origin)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(&failed)?;
        }
        tx.commit().await.map_err(&failed)
    }

    pub async fn dead_letters(&self, max: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let rows = sqlx::query_as::<DB, StoredRow>(DEAD_LETTERS)
            .bind(max as i64)
            .fetch_all(self.pool)
            .await
            .map_err(self.failed("cannot read dead letters from the store"))?;
        Ok(rows.into_iter().map(StoredDeadLetter::from).collect())
    }

    pub async fn forget_dead_letters(&self, ids: &[String]) -> Result<(), StoreError> {
        let failed = self.failed("cannot forget dead letters in the store");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        for id in ids {
            sqlx::query::<DB>("DELETE FROM dead_letters WHERE letter_id = $1")
                .bind(id.clone())
                .execute(&mut *tx)
                .await
                .map_err(&failed)?;
        }
        tx.commit().await.map_err(&failed)
    }
}
