//! The store on PostgreSQL: each batch is a handful of multi-row statements
//! (`UNNEST` over column arrays) in one transaction.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moodwire_core::ports::{DeadLetter, SaveReport, Store, StoreError, StoredDeadLetter};
use moodwire_core::AnalysisRecorded;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::dead_letter_rows::{self, DeadLetterRow};
use crate::history_rows::HistoryQueries;
use crate::rows::Rows;
use crate::store_error::Dialect;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
}

fn store_error(context: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    crate::store_error::store_error(Dialect::Postgres, context)
}

impl PostgresStore {
    fn queries(&self) -> HistoryQueries<'_, Postgres> {
        HistoryQueries {
            pool: &self.pool,
            dialect: Dialect::Postgres,
        }
    }

    /// Connects and brings the schema up to date (migrations are embedded in the binary;
    /// concurrent starts are serialized by sqlx's advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("invalid DATABASE_URL: {e}")))?;
        let options = options.options([("statement_timeout", "60s")]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(store_error("cannot connect to PostgreSQL"))?;
        MIGRATIONS.run(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot migrate the PostgreSQL schema: {e}"))
        })?;
        Ok(PostgresStore { pool })
    }

    async fn upsert_keywords(
        tx: &mut Transaction<'_, Postgres>,
        rows: &Rows,
    ) -> Result<(), sqlx::Error> {
        let k = &rows.keywords;
        sqlx::query(
            "INSERT INTO keywords (keyword, display, first_analyzed_at, last_analyzed_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
             ON CONFLICT (keyword) DO UPDATE SET
               display = CASE WHEN EXCLUDED.last_analyzed_at >= keywords.last_analyzed_at
                              THEN EXCLUDED.display ELSE keywords.display END,
               first_analyzed_at = LEAST(keywords.first_analyzed_at, EXCLUDED.first_analyzed_at),
               last_analyzed_at = GREATEST(keywords.last_analyzed_at, EXCLUDED.last_analyzed_at)",
        )
        .bind(k.iter().map(|r| r.keyword.as_str()).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.display.as_str()).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.first_analyzed_at).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.last_analyzed_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Inserts the analyses the store lacks; returns their ids.
    async fn insert_analyses(
        tx: &mut Transaction<'_, Postgres>,
        rows: &Rows,
    ) -> Result<HashSet<String>, sqlx::Error> {
        let a = &rows.analyses;
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO analyses (analysis_id, keyword, display, post_limit, post_count,
                                   model_version, posts_source, analyzed_at, fetch_ms,
                                   inference_ms, recovered)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
                                  $6::text[], $7::text[], $8::timestamptz[], $9::float8[],
                                  $10::float8[], $11::bool[])
             ON CONFLICT (analysis_id) DO NOTHING
             RETURNING analysis_id",
        )
        .bind(a.iter().map(|r| r.analysis_id.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.keyword.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.display.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.post_limit).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.post_count).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|r| r.model_version.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(a.iter().map(|r| r.posts_source).collect::<Vec<_>>())
        .bind(
            a.iter()
                .map(|r| r.analyzed_at)
                .collect::<Vec<DateTime<Utc>>>(),
        )
        .bind(a.iter().map(|r| r.fetch_ms).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.inference_ms).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.recovered).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        let per_keyword = rows.new_analyses_per_keyword(&inserted);
        sqlx::query(
            "UPDATE keywords k SET analyses = k.analyses + v.n
             FROM UNNEST($1::text[], $2::bigint[]) AS v(keyword, n)
             WHERE k.keyword = v.keyword",
        )
        .bind(per_keyword.keys().map(String::as_str).collect::<Vec<_>>())
        .bind(per_keyword.values().copied().collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        // The full event of an analysis that recovery stored first from the cache.
        let full = a.iter().filter(|r| !r.recovered);
        sqlx::query(
            "UPDATE analyses a SET recovered = FALSE, fetch_ms = v.fetch_ms, inference_ms = v.inference_ms
             FROM UNNEST($1::text[], $2::float8[], $3::float8[]) AS v(id, fetch_ms, inference_ms)
             WHERE a.analysis_id = v.id AND a.recovered",
        )
        .bind(full.clone().map(|r| r.analysis_id.as_str()).collect::<Vec<_>>())
        .bind(full.clone().map(|r| r.fetch_ms).collect::<Vec<_>>())
        .bind(full.map(|r| r.inference_ms).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(inserted)
    }

    async fn insert_details(
        tx: &mut Transaction<'_, Postgres>,
        rows: &Rows,
    ) -> Result<(), sqlx::Error> {
        let e = &rows.emotions;
        sqlx::query(
            "INSERT INTO analysis_emotions (analysis_id, label, post_count, pct, avg_score)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::float8[], $5::float8[])
             ON CONFLICT DO NOTHING",
        )
        .bind(e.iter().map(|r| r.analysis_id.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.label).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.post_count).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.pct).collect::<Vec<_>>())
        .bind(e.iter().map(|r| r.avg_score).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        let p = &rows.posts;
        sqlx::query(
            "INSERT INTO posts (post_id, source, subreddit, author, created_at, title, body, score, permalink)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                                  $6::text[], $7::text[], $8::bigint[], $9::text[])
             ON CONFLICT (post_id) DO NOTHING",
        )
        .bind(p.iter().map(|r| r.post_id.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.source).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.subreddit.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.author.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.title.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.score).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.permalink.as_str()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        let r = &rows.predictions;
        let probability = |i: usize| r.iter().map(|r| r.probabilities[i]).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO predictions (analysis_id, post_id, label, score, p_sadness, p_joy,
                                      p_love, p_anger, p_fear, p_surprise)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[],
                                  $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[])
             ON CONFLICT DO NOTHING",
        )
        .bind(r.iter().map(|r| r.analysis_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|r| r.post_id.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|r| r.label).collect::<Vec<_>>())
        .bind(r.iter().map(|r| r.score).collect::<Vec<_>>())
        .bind(probability(0))
        .bind(probability(1))
        .bind(probability(2))
        .bind(probability(3))
        .bind(probability(4))
        .bind(probability(5))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn save(&self, events: &[AnalysisRecorded]) -> Result<SaveReport, StoreError> {
        let mut rows = Rows::from_events(events);
        // One lock order for every writer, so concurrent workers cannot deadlock on posts.
        rows.posts.sort_by(|a, b| a.post_id.cmp(&b.post_id));
        let failed = store_error("cannot save to PostgreSQL");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        Self::upsert_keywords(&mut tx, &rows)
            .await
            .map_err(&failed)?;
        let inserted = Self::insert_analyses(&mut tx, &rows)
            .await
            .map_err(&failed)?;
        Self::insert_details(&mut tx, &rows)
            .await
            .map_err(&failed)?;
        tx.commit().await.map_err(&failed)?;
        Ok(SaveReport {
            inserted: inserted.len(),
            already_stored: rows.analyses.len() - inserted.len(),
        })
    }

    async fn missing(&self, analysis_ids: &[String]) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM UNNEST($1::text[]) AS ids(id)
             WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.analysis_id = ids.id)",
        )
        .bind(analysis_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error("cannot read analyses from PostgreSQL"))
    }

    async fn top_keywords(&self, n: usize) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT keyword FROM keywords ORDER BY analyses DESC, last_analyzed_at DESC LIMIT $1",
        )
        .bind(n as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error("cannot read keywords from PostgreSQL"))
    }

    async fn post_texts(
        &self,
        since: i64,
        until: i64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT title || E'\\n' || body FROM posts
             WHERE created_at >= to_timestamp($1) AND created_at < to_timestamp($2)
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(since as f64)
        .bind(until as f64)
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error("cannot read posts from PostgreSQL"))
    }

    async fn check(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error("PostgreSQL does not answer"))
    }

    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        let failed = store_error("cannot keep a dead letter in PostgreSQL");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        for row in letters.iter().map(DeadLetterRow::new) {
            sqlx::query(
                "INSERT INTO dead_letters (letter_id, analysis_id, payload, error, origin)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (letter_id) DO UPDATE SET
                   attempts = dead_letters.attempts + 1, error = EXCLUDED.error,
                   origin = EXCLUDED.origin, last_error_at = now()",
            )
            .bind(&row.letter_id)
            .bind(&row.analysis_id)
            .bind(&row.payload)
            .bind(&row.error)
            .bind(&row.origin)
            .execute(&mut *tx)
            .await
            .map_err(&failed)?;
        }
        tx.commit().await.map_err(&failed)
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let rows = sqlx::query_as::<_, dead_letter_rows::StoredRow>(
            "SELECT letter_id, analysis_id, payload, error, origin,
                    CAST(attempts AS BIGINT) AS attempts, dead_at
             FROM dead_letters ORDER BY dead_at, letter_id LIMIT $1",
        )
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error("cannot read dead letters from PostgreSQL"))?;
        Ok(rows.into_iter().map(StoredDeadLetter::from).collect())
    }

    async fn forget_dead_letters(&self, ids: &[String]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dead_letters WHERE letter_id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error("cannot forget dead letters in PostgreSQL"))
    }
}

crate::history_rows::history_through_queries!(PostgresStore);
