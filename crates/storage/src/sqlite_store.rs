//! The embedded store: a SQLite file with the same tables and views as PostgreSQL.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use moodwire_core::ports::{SaveReport, StoreError};
use moodwire_core::AnalysisRecorded;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::queries::Queries;
use crate::rows::Rows;
use crate::store_error::Dialect;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

fn store_error(context: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    crate::store_error::store_error(Dialect::Sqlite, context)
}

/// A pool on a SQLite file in WAL mode, created when missing. `synchronous=FULL`
/// makes a committed transaction survive a power cut, not only a crash.
pub(crate) async fn sqlite_pool(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(
            options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
}

impl SqliteStore {
    fn queries(&self) -> Queries<'_, Sqlite> {
        Queries {
            pool: &self.pool,
            dialect: Dialect::Sqlite,
        }
    }

    /// Opens (creating it and its folder when missing) the store at `sqlite://PATH` or a path.
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
                .map_err(|e| StoreError::Unavailable(format!("invalid DATABASE_URL: {e}")))?
        } else {
            let path = Path::new(url_or_path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            SqliteConnectOptions::new().filename(path)
        };
        let pool = sqlite_pool(options)
            .await
            .map_err(store_error("cannot open the SQLite store"))?;
        MIGRATIONS.run(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot migrate the SQLite schema: {e}"))
        })?;
        Ok(SqliteStore { pool })
    }

    async fn save_rows(
        tx: &mut Transaction<'_, Sqlite>,
        rows: &Rows,
    ) -> Result<usize, sqlx::Error> {
        for k in &rows.keywords {
            sqlx::query(
                "INSERT INTO keywords (keyword, display, first_analyzed_at, last_analyzed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (keyword) DO UPDATE SET
                   display = CASE WHEN excluded.last_analyzed_at >= keywords.last_analyzed_at
                                  THEN excluded.display ELSE keywords.display END,
                   first_analyzed_at = MIN(keywords.first_analyzed_at, excluded.first_analyzed_at),
                   last_analyzed_at = MAX(keywords.last_analyzed_at, excluded.last_analyzed_at)",
            )
            .bind(&k.keyword)
            .bind(&k.display)
            .bind(k.first_analyzed_at)
            .bind(k.last_analyzed_at)
            .execute(&mut **tx)
            .await?;
        }
        let mut inserted = HashSet::new();
        for a in &rows.analyses {
            let done = sqlx::query(
                "INSERT INTO analyses (analysis_id, keyword, display, post_limit, post_count,
                                       model_version, posts_source, analyzed_at, fetch_ms,
                                       inference_ms, recovered, subreddits, time_window)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (analysis_id) DO NOTHING",
            )
            .bind(&a.analysis_id)
            .bind(&a.keyword)
            .bind(&a.display)
            .bind(a.post_limit)
            .bind(a.post_count)
            .bind(&a.model_version)
            .bind(a.posts_source)
            .bind(a.analyzed_at)
            .bind(a.fetch_ms)
            .bind(a.inference_ms)
            .bind(a.recovered)
            .bind(&a.subreddits)
            .bind(a.time_window)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                inserted.insert(a.analysis_id.clone());
            } else if !a.recovered {
                sqlx::query(
                    "UPDATE analyses SET recovered = 0, fetch_ms = ?2, inference_ms = ?3
                     WHERE analysis_id = ?1 AND recovered",
                )
                .bind(&a.analysis_id)
                .bind(a.fetch_ms)
                .bind(a.inference_ms)
                .execute(&mut **tx)
                .await?;
            }
        }
        for (keyword, n) in rows.new_analyses_per_keyword(&inserted) {
            sqlx::query("UPDATE keywords SET analyses = analyses + ?2 WHERE keyword = ?1")
                .bind(keyword)
                .bind(n)
                .execute(&mut **tx)
                .await?;
        }
        for e in &rows.emotions {
            sqlx::query(
                "INSERT INTO analysis_emotions (analysis_id, label, post_count, pct, avg_score)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )
            .bind(&e.analysis_id)
            .bind(e.label)
            .bind(e.post_count)
            .bind(e.pct)
            .bind(e.avg_score)
            .execute(&mut **tx)
            .await?;
        }
        for p in &rows.posts {
            sqlx::query(
                "INSERT INTO posts (post_id, source, subreddit, author, created_at, title, body, score, permalink)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (post_id) DO NOTHING",
            )
            .bind(&p.post_id)
            .bind(p.source)
            .bind(&p.subreddit)
            .bind(&p.author)
            .bind(p.created_at)
            .bind(&p.title)
            .bind(&p.body)
            .bind(p.score)
            .bind(&p.permalink)
            .execute(&mut **tx)
            .await?;
        }
        for r in &rows.predictions {
            let [sadness, joy, love, anger, fear, surprise] = r.probabilities;
            sqlx::query(
                "INSERT INTO predictions (analysis_id, post_id, label, score, p_sadness, p_joy,
                                          p_love, p_anger, p_fear, p_surprise)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
            )
            .bind(&r.analysis_id)
            .bind(&r.post_id)
            .bind(r.label)
            .bind(r.score)
            .bind(sadness)
            .bind(joy)
            .bind(love)
            .bind(anger)
            .bind(fear)
            .bind(surprise)
            .execute(&mut **tx)
            .await?;
        }
        Ok(inserted.len())
    }

    /// Writes a batch of events in one transaction; an analysis already stored is skipped.
    async fn save_events(&self, events: &[AnalysisRecorded]) -> Result<SaveReport, StoreError> {
        let rows = Rows::from_events(events);
        let failed = store_error("cannot save to SQLite");
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        let inserted = Self::save_rows(&mut tx, &rows).await.map_err(&failed)?;
        tx.commit().await.map_err(&failed)?;
        Ok(SaveReport {
            inserted,
            already_stored: rows.analyses.len() - inserted,
        })
    }

    /// The ids of these analyses that are not stored.
    async fn missing_ids(&self, analysis_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut missing = Vec::new();
        for id in analysis_ids {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM analyses WHERE analysis_id = ?1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(store_error("cannot read analyses from SQLite"))?;
            if found.is_none() {
                missing.push(id.clone());
            }
        }
        Ok(missing)
    }
}

crate::queries::sql_store!(SqliteStore);
