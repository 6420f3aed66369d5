//! The stores (SQLite and a fresh PostgreSQL database per test) and the journal.

use std::time::Duration;

use chrono::Utc;
use moodwire_core::ports::{DeadLetter, EventFeed, EventLog, Store};
use moodwire_core::{
    AnalysisRecorded, ClassifiedPost, Emotion, Keyword, Post, Scope, Subreddits, Window,
    MAX_BATCH_BYTES,
};
use moodwire_storage::{Journal, PostgresStore, SqliteStore};
use moodwire_testkit::{classified_event, harness, post, prediction};
use sqlx::Connection;

/// An event with `posts` posts, ids `{prefix}-{i}`; post `i` is labelled `i % 6`.
fn event(keyword: &str, prefix: &str, posts: usize) -> AnalysisRecorded {
    let posts = (0..posts)
        .map(|i| ClassifiedPost {
            post: Post {
                author: "someone".into(),
                created_utc: Utc::now().timestamp() - i as i64 * 60,
                selftext: "it's a 'quoted' body; DROP TABLE posts;".into(),
                score: i as i64,
                permalink: String::new(),
                ..post(
                    &format!("{prefix}-{i}"),
                    &format!("post {i} about {keyword} ✨"),
                )
            },
            prediction: prediction(i % 6),
        })
        .collect();
    classified_event(&harness::unique("event"), keyword, posts)
}

/// A fresh PostgreSQL database; the test fails when there is no server to make it on.
async fn postgres() -> String {
    harness::fresh_database(
        &harness::service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_store",
    )
    .await
}

/// The behaviour both stores share; `count(table)` counts rows.
async fn store_contract<S: Store>(store: &S, count: impl AsyncCount) {
    let a = event("Rust", "a", 6);
    let b = event("rust ", "b", 3);
    let report = store.save(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!((report.inserted, report.already_stored), (2, 0));

    // Redelivery (a crash between the store's commit and the log's) changes nothing.
    let again = store
        .save(&[a.clone(), b.clone(), a.clone()])
        .await
        .unwrap();
    assert_eq!((again.inserted, again.already_stored), (0, 2));
    assert_eq!(count.rows("analyses").await, 2);
    assert_eq!(count.rows("analysis_emotions").await, 12);
    assert_eq!(count.rows("posts").await, 9);
    assert_eq!(count.rows("predictions").await, 9);
    assert_eq!(
        count.rows("keywords").await,
        1,
        "one registry row per normalized keyword"
    );
    assert_eq!(count.scalar("SELECT analyses FROM keywords").await, 2);
    assert!(count.rows("emotion_share_over_time").await >= 6);
    assert_eq!(count.rows("emotion_confidence").await, 6);

    // An analysis recovered from the cache first, its full event later.
    let full = event("fear", "c", 2);
    let recovered = AnalysisRecorded::recovered(full.analysis.clone());
    assert_eq!(store.save(&[recovered]).await.unwrap().inserted, 1);
    assert_eq!(
        store
            .save(std::slice::from_ref(&full))
            .await
            .unwrap()
            .already_stored,
        1
    );
    assert_eq!(
        count.rows("predictions").await,
        11,
        "the full event fills in its posts"
    );
    assert_eq!(
        count
            .scalar("SELECT count(*) FROM analyses WHERE recovered")
            .await,
        0
    );

    let ids = vec![a.analysis.id.clone(), "never-stored".to_string()];
    assert_eq!(store.missing(&ids).await.unwrap(), vec!["never-stored"]);
    assert_eq!(store.top_keywords(5).await.unwrap(), vec!["rust", "fear"]);
    let now = Utc::now().timestamp();
    let texts = store.post_texts(now - 3600, now + 60, 100).await.unwrap();
    assert_eq!(texts.len(), 11);
    assert!(texts
        .iter()
        .any(|t| t.contains("✨") && t.contains("DROP TABLE")));
    store.check().await.unwrap();
    history_contract(store, &a, &b).await;
    dead_letter_contract(store).await;
}

/// Dead letters are kept once per payload, counted per attempt, listed oldest first
/// and forgotten on demand; control characters in their texts do not refuse them.
async fn dead_letter_contract<S: Store>(store: &S) {
    let refused = DeadLetter {
        analysis_id: Some("bad\u{0}id".into()),
        payload: b"{\"version\":1,\"analysis\":\"a\\u0000b\"}".to_vec(),
        error: "invalid byte sequence for encoding \"UTF8\": 0x00".into(),
        origin: "sync".into(),
    };
    let unreadable = DeadLetter {
        analysis_id: None,
        payload: vec![0xff, 0x00, 0xfe],
        error: "malformed event".into(),
        origin: "journal seq 7".into(),
    };
    store
        .dead_letter(&[refused.clone(), unreadable.clone()])
        .await
        .unwrap();
    store
        .dead_letter(std::slice::from_ref(&refused))
        .await
        .unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2, "one row per payload");
    let first = dead
        .iter()
        .find(|d| d.letter.payload == refused.payload)
        .unwrap();
    assert_eq!(first.attempts, 2);
    assert_eq!(first.letter.analysis_id.as_deref(), Some("badid"));
    assert!(first.letter.error.contains("0x00"));
    let other = dead
        .iter()
        .find(|d| d.letter.payload == unreadable.payload)
        .unwrap();
    assert_eq!(
        (other.attempts, other.letter.origin.as_str()),
        (1, "journal seq 7")
    );
    assert_ne!(first.id, other.id);
    store
        .forget_dead_letters(std::slice::from_ref(&first.id))
        .await
        .unwrap();
    let left = store.dead_letters(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, other.id);
}

/// What the dashboard reads, after `store_contract` saved analyses `a` then `b` of
/// "rust" and one of "fear".
async fn history_contract<S: Store>(store: &S, a: &AnalysisRecorded, b: &AnalysisRecorded) {
    let rust = Keyword::parse(" RUST ").unwrap();
    let all = Scope::unrestricted();
    let moods = store.keyword_moods(10).await.unwrap();
    let keywords: Vec<&str> = moods.iter().map(|m| m.keyword.as_str()).collect();
    assert_eq!(keywords, ["rust", "fear"], "most analysed first");
    assert_eq!(moods[0].analyses, 2);
    let latest = &moods[0].latest;
    assert_eq!(
        (latest.analysis_id.as_str(), latest.count),
        (b.analysis.id.as_str(), 3)
    );
    let labels: Vec<Emotion> = latest.emotions.iter().map(|e| e.label).collect();
    assert_eq!(labels, Emotion::ALL, "the fixed emotion order");
    let total: f64 = latest.emotions.iter().map(|e| e.pct).sum();
    assert!((total - 100.0).abs() < 0.11, "{total}");
    assert_eq!(store.keyword_moods(1).await.unwrap().len(), 1);

    let trend = store.trend(&rust, &all, 10).await.unwrap();
    let ids: Vec<&str> = trend.iter().map(|p| p.analysis_id.as_str()).collect();
    assert_eq!(
        ids,
        [a.analysis.id.as_str(), b.analysis.id.as_str()],
        "oldest first"
    );
    assert_eq!(trend[0].emotions.iter().map(|e| e.count).sum::<u32>(), 6);
    let last = store.trend(&rust, &all, 1).await.unwrap();
    assert_eq!(last[0].analysis_id, b.analysis.id, "the latest points");

    let posts = store.scored_posts(&rust, &all, 100).await.unwrap().unwrap();
    assert_eq!(posts.analysis_id, b.analysis.id);
    assert_eq!(posts.posts.len(), 3);
    assert!(
        posts.posts.windows(2).all(|w| w[0].score <= w[1].score),
        "least confident first"
    );
    assert!(posts.posts[0].excerpt.contains("DROP TABLE") && posts.posts[0].title.contains('✨'));
    assert_eq!(
        store
            .scored_posts(&rust, &all, 2)
            .await
            .unwrap()
            .unwrap()
            .posts
            .len(),
        2
    );
    let never = Keyword::parse("never asked").unwrap();
    assert_eq!(store.scored_posts(&never, &all, 10).await.unwrap(), None);
    assert!(store.trend(&never, &all, 10).await.unwrap().is_empty());

    // An analysis rebuilt from the cache has a trend point but no posts to show.
    let hope = event("hope", "h", 4);
    store
        .save(&[AnalysisRecorded::recovered(hope.analysis.clone())])
        .await
        .unwrap();
    let hope_keyword = Keyword::parse("hope").unwrap();
    assert_eq!(store.trend(&hope_keyword, &all, 10).await.unwrap().len(), 1);
    assert_eq!(
        store.scored_posts(&hope_keyword, &all, 10).await.unwrap(),
        None
    );

    scoped_history_contract(store, b).await;
}

/// An analysis limited to subreddits and a window is a series of its own: listed
/// apart, and never mixed into the unrestricted trend or posts.
async fn scoped_history_contract<S: Store>(store: &S, unrestricted_latest: &AnalysisRecorded) {
    let rust = Keyword::parse("rust").unwrap();
    let scope = Scope {
        subreddits: Subreddits::parse(&["rust", "learnrust"]).unwrap(),
        window: Window::Week,
    };
    let mut scoped = event("rust", "scoped", 2);
    scoped.analysis.scope = scope.clone();
    store.save(std::slice::from_ref(&scoped)).await.unwrap();

    let moods = store.keyword_moods(10).await.unwrap();
    let series: Vec<(&str, Vec<String>, Window, u64)> = moods
        .iter()
        .map(|m| {
            (
                m.keyword.as_str(),
                m.subreddits.clone(),
                m.window,
                m.analyses,
            )
        })
        .collect();
    let names = vec!["learnrust".to_string(), "rust".to_string()];
    assert_eq!(
        series[..2],
        [
            ("rust", vec![], Window::All, 2),
            ("rust", names, Window::Week, 1)
        ],
        "the unrestricted series first, the scoped one beside it"
    );
    assert_eq!(moods[1].latest.analysis_id, scoped.analysis.id);

    let unrestricted = store
        .trend(&rust, &Scope::unrestricted(), 10)
        .await
        .unwrap();
    assert_eq!(
        unrestricted.len(),
        2,
        "the scoped analysis is not in the unrestricted trend"
    );
    assert_eq!(unrestricted[1].analysis_id, unrestricted_latest.analysis.id);
    let trend = store.trend(&rust, &scope, 10).await.unwrap();
    let ids: Vec<&str> = trend.iter().map(|p| p.analysis_id.as_str()).collect();
    assert_eq!(ids, [scoped.analysis.id.as_str()]);
    let other_window = Scope {
        window: Window::Day,
        ..scope.clone()
    };
    assert!(store
        .trend(&rust, &other_window, 10)
        .await
        .unwrap()
        .is_empty());

    let posts = store
        .scored_posts(&rust, &scope, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (posts.analysis_id.as_str(), posts.posts.len()),
        (scoped.analysis.id.as_str(), 2)
    );
    let posts = store
        .scored_posts(&rust, &Scope::unrestricted(), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(posts.analysis_id, unrestricted_latest.analysis.id);
}

trait AsyncCount {
    async fn scalar(&self, sql: &str) -> i64;
    async fn rows(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {table}")).await
    }
}

struct PgCount(String);

impl AsyncCount for PgCount {
    async fn scalar(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.0).await.unwrap();
        let value: i64 = sqlx::query_scalar(&format!("SELECT ({sql})::bigint"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        value
    }
}

struct SqliteCount(std::path::PathBuf);

impl AsyncCount for SqliteCount {
    async fn scalar(&self, sql: &str) -> i64 {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.0.display()))
            .await
            .unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

#[tokio::test]
async fn sqlite_store_is_idempotent_and_shaped_for_bi() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/moodwire.sqlite");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store_contract(&store, SqliteCount(path.clone())).await;
    // Reopening runs the migrations again harmlessly and keeps the data.
    drop(store);
    let reopened = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(reopened.top_keywords(1).await.unwrap(), vec!["rust"]);
}

#[tokio::test]
async fn postgres_store_is_idempotent_and_shaped_for_bi() {
    let url = postgres().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    store_contract(&store, PgCount(url.clone())).await;
    // A second process starting on the same database finds the schema in place.
    let second = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(second.top_keywords(1).await.unwrap(), vec!["rust"]);
}

#[tokio::test]
async fn postgres_saves_large_batches_in_one_transaction() {
    let url = postgres().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    // Posts shared between analyses (the same keyword asked twice) are stored once.
    let events: Vec<_> = (0..200)
        .map(|i| event(&format!("kw{}", i % 7), &format!("p{}", i % 50), 100))
        .collect();
    assert_eq!(store.save(&events).await.unwrap().inserted, 200);
    let count = PgCount(url);
    assert_eq!(count.rows("posts").await, 50 * 100);
    assert_eq!(count.rows("predictions").await, 200 * 100);
    assert_eq!(
        count.scalar("SELECT sum(analyses) FROM keywords").await,
        200
    );
}

#[tokio::test]
async fn the_journal_survives_reopening_and_forgets_only_what_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).await.unwrap();
    for i in 0..5 {
        journal
            .append(&event("k", &format!("j{i}"), 1))
            .await
            .unwrap();
    }
    drop(journal);

    let journal = Journal::open(dir.path()).await.unwrap();
    let mut feed = journal.feed();
    assert_eq!(feed.backlog().await.unwrap(), 5);
    let first = feed.next_batch(3, Duration::ZERO).await.unwrap();
    assert_eq!(first.events.len(), 3);
    // Not committed (the store failed): read again.
    feed.rewind().await.unwrap();
    let again = feed.next_batch(3, Duration::ZERO).await.unwrap();
    assert_eq!(again.events, first.events);
    feed.commit(&again.position).await.unwrap();
    assert_eq!(feed.backlog().await.unwrap(), 2);

    // An entry no build can read is reported and committed past, not retried forever.
    sqlx::query("INSERT INTO events (key, payload) VALUES ('k', 'garbage')")
        .execute(
            &mut sqlx::SqliteConnection::connect(&format!("sqlite://{}", journal.path().display()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let rest = feed.next_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!((rest.events.len(), rest.unreadable.len()), (2, 1));
    assert_eq!(rest.unreadable[0].payload, b"garbage");
    assert!(rest.unreadable[0].origin.starts_with("journal seq "));
    feed.commit(&rest.position).await.unwrap();
    assert_eq!(feed.backlog().await.unwrap(), 0);

    // An empty journal waits for new entries up to the given time.
    let started = std::time::Instant::now();
    let empty = feed
        .next_batch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn journal_batches_stop_at_the_byte_budget_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).await.unwrap();
    let big: Vec<_> = (0..70)
        .map(|i| event("k", &format!("big{i}"), 1000))
        .collect();
    let size = big[0].to_json().len();
    assert!(
        big.len() * size > 2 * MAX_BATCH_BYTES,
        "the events span batches: {size} bytes each"
    );
    for e in &big {
        journal.append(e).await.unwrap();
    }
    let mut feed = journal.feed();
    let mut read = Vec::new();
    loop {
        let batch = feed.next_batch(500, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        let bytes: usize = batch.events.iter().map(|e| e.to_json().len()).sum();
        let last = batch.events.last().unwrap().to_json().len();
        assert!(
            bytes - last < MAX_BATCH_BYTES,
            "{} events, {bytes} bytes",
            batch.len()
        );
        assert!(batch.len() < big.len());
        feed.commit(&batch.position).await.unwrap();
        read.extend(batch.events);
    }
    assert_eq!(read, big, "every event, once, in order");
}

#[tokio::test]
async fn postgres_refuses_a_nul_for_good_and_takes_the_rest() {
    let url = postgres().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let mut poison = event("poison", "x", 2);
    poison.posts[1].post.title = "a\u{0}b".into();
    let err = store.save(std::slice::from_ref(&poison)).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("0x00"), "{err}");
    // The failed transaction left nothing behind, and the store still takes the rest.
    let good = event("fine", "y", 3);
    assert_eq!(store.save(&[good]).await.unwrap().inserted, 1);
    assert_eq!(PgCount(url).rows("analyses").await, 1);
}

#[tokio::test]
async fn a_store_that_is_not_there_is_a_transient_error() {
    let store = PostgresStore::connect("postgres://moodwire@127.0.0.1:1/none").await;
    let err = store.err().expect("nothing listens on port 1");
    assert!(!err.is_permanent(), "{err}");
}

#[tokio::test]
async fn a_full_journal_refuses_appends_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open_bounded(dir.path(), 64 * 1024).await.unwrap();
    let mut appended = 0;
    let error = loop {
        match journal
            .append(&event("k", &format!("f{appended}"), 20))
            .await
        {
            Ok(()) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 1000, "a 64 KiB journal cannot take 1,000 events");
    };
    assert!(appended > 0);
    assert!(error.to_string().contains("full"), "{error}");
    assert_eq!(journal.pending().await.unwrap(), appended as u64);
    // Draining it makes room again.
    let mut feed = journal.feed();
    let batch = feed.next_batch(1000, Duration::ZERO).await.unwrap();
    feed.commit(&batch.position).await.unwrap();
    journal.append(&event("k", "after", 1)).await.unwrap();
}
