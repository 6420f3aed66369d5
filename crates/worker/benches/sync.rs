//! How fast the idle sync drains a queued backlog into the store, side by side:
//! journal -> SQLite, journal -> PostgreSQL, Kafka -> PostgreSQL.
//!
//!     set -a; . .services/env; set +a      # after `make services`
//!     cargo bench -p moodwire-worker --bench sync [-- EVENTS POSTS_PER_EVENT]
//!
//! Target (issue E): 10,000 queued analyses into PostgreSQL in under 30 s once idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use moodwire_core::ports::{EventFeed, EventLog, Store};
use moodwire_core::{AnalysisRecorded, ClassifiedPost, Post};
use moodwire_storage::{
    Journal, KafkaConfig, KafkaFeed, KafkaForwarder, PostgresStore, SqliteStore,
};
use moodwire_testkit::{classified_event, post, prediction};
use moodwire_worker::{CpuGauge, IdleSync, SyncConfig};

struct Idle;

impl CpuGauge for Idle {
    fn percent(&self) -> f32 {
        0.0
    }
}

fn event(i: usize, posts: usize, run: &str) -> AnalysisRecorded {
    let posts = (0..posts)
        .map(|j| ClassifiedPost {
            post: Post {
                subreddit: "bench".into(),
                created_utc: Utc::now().timestamp(),
                selftext: "a body of a couple of sentences, as most posts have. ".repeat(3),
                score: j as i64,
                ..post(
                    &format!("{run}-{i}-{j}"),
                    &format!("post {j} of analysis {i}, a typical title of some length"),
                )
            },
            prediction: prediction((i + j) % 6),
        })
        .collect();
    classified_event(
        &format!("{run}-{i}"),
        &format!("keyword {}", i % 200),
        posts,
    )
}

async fn queued_journal(dir: &std::path::Path, events: usize, posts: usize, run: &str) -> Journal {
    let journal = Journal::open(dir).await.unwrap();
    for i in 0..events {
        journal.append(&event(i, posts, run)).await.unwrap();
    }
    journal
}

/// Drains `feed` into `store`; returns the seconds taken.
async fn drain(feed: Box<dyn EventFeed>, store: Arc<dyn Store>, events: usize) -> f64 {
    let config = SyncConfig {
        batch_wait: Duration::from_secs(15),
        ..SyncConfig::default()
    };
    let mut sync = IdleSync::new(feed, store, Arc::new(Idle), config);
    let started = Instant::now();
    let mut inserted = 0;
    while inserted < events {
        inserted += sync.pass(true).await.unwrap().inserted;
    }
    started.elapsed().as_secs_f64()
}

fn row(name: &str, events: usize, seconds: f64) {
    println!(
        "| {name:<28} | {events:>7} | {seconds:>8.2} | {:>10.0} |",
        events as f64 / seconds
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(10_000);
    let posts = args.get(1).copied().unwrap_or(25);
    let run = format!("{}-{}", std::process::id(), Utc::now().timestamp());
    println!("{events} queued analyses of {posts} posts each, batches of 500\n");
    println!("| path                         |  events |  seconds | analyses/s |");
    println!("|------------------------------|--------:|---------:|-----------:|");

    let dir = tempfile::tempdir().unwrap();
    let journal = queued_journal(&dir.path().join("a"), events, posts, &format!("{run}-a")).await;
    let sqlite = Arc::new(
        SqliteStore::open(dir.path().join("store.sqlite").to_str().unwrap())
            .await
            .unwrap(),
    );
    row(
        "journal -> SQLite",
        events,
        drain(Box::new(journal.feed()), sqlite, events).await,
    );

    let Ok(admin) = std::env::var("MOODWIRE_TEST_DATABASE_URL") else {
        println!("\n(PostgreSQL and Kafka rows need the test services: `make services`, then `set -a; . .services/env; set +a`)");
        return;
    };
    let journal = queued_journal(&dir.path().join("b"), events, posts, &format!("{run}-b")).await;
    let pg = Arc::new(
        PostgresStore::connect(
            &moodwire_testkit::harness::fresh_database(&admin, "mw_bench_b").await,
        )
        .await
        .unwrap(),
    );
    row(
        "journal -> PostgreSQL",
        events,
        drain(Box::new(journal.feed()), pg, events).await,
    );

    let Ok(brokers) = std::env::var("MOODWIRE_TEST_KAFKA_BROKERS") else {
        return;
    };
    let kafka = KafkaConfig {
        brokers,
        topic: format!("moodwire.bench.{run}"),
        group: format!("moodwire-bench-{run}"),
        partitions: 3,
    };
    kafka.ensure_topic().await.unwrap();
    let outbox = queued_journal(&dir.path().join("c"), events, posts, &format!("{run}-c")).await;
    KafkaForwarder::new(outbox, &kafka)
        .unwrap()
        .forward_all()
        .await
        .unwrap();
    let pg = Arc::new(
        PostgresStore::connect(
            &moodwire_testkit::harness::fresh_database(&admin, "mw_bench_c").await,
        )
        .await
        .unwrap(),
    );
    let feed = Box::new(KafkaFeed::subscribe(&kafka).unwrap());
    row("Kafka -> PostgreSQL", events, drain(feed, pg, events).await);
}
