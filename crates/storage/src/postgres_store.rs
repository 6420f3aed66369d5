//! The store on PostgreSQL: each batch is a handful of multi-row statements
//! (`UNNEST` over column arrays) in one transaction.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moodwire_core::ports::{SaveReport, StoreError};
use moodwire_core::AnalysisRecorded;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::queries::Queries;
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
    fn queries(&self) -> Queries<'_, Postgres> {
        Queries {
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
                                   inference_ms, recovered, subreddits, time_window)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
                                  $6::text[], $7::text[], $8::timestamptz[], $9::float8[],
                                  $10::float8[], $11::bool[], $12::text[], $13::text[])
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
        .bind(a.iter().map(|r| r.subreddits.as_str()).collect::<Vec<_>>())
        .bind(a.iter().map(|r| r.time_window).collect::<Vec<_>>())
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

    /// Writes a batch of events in one transaction; an analysis already stored is skipped.
    async fn save_events(&self, events: &[AnalysisRecorded]) -> Result<SaveReport, StoreError> {
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

    /// The ids of these analyses that are not stored.
    async fn missing_ids(&self, analysis_ids: &[String]) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM UNNEST($1::text[]) AS ids(id)
             WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.analysis_id = ids.id)",
        )
        .bind(analysis_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error("cannot read analyses from PostgreSQL"))
    }
}

crate::queries::sql_store!(PostgresStore);
