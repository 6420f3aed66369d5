//! The pipeline behind the API: analyses -> event log (journal or Kafka) -> idle sync
//! -> store (SQLite or PostgreSQL), against real services, with faults. Each test has
//! its own data folder, database and topic.

use sqlx::Connection as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use moodwire_core::ports::{EventFeed, EventLog};
use moodwire_core::{AnalysisRecorded, ClassifiedPost, Post};
use moodwire_storage::{Journal, KafkaConfig, KafkaFeed, KafkaForwarder};
use moodwire_testkit::harness::{
    eventually, free_port, metric, pg_scalar, service_env, sqlite_scalar, unique, Server,
};
use moodwire_testkit::{classified_event, post, prediction};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One moodwire installation: its data folder and the CPU reading its gates see.
struct Setup {
    data: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(env: &[(&str, &str)]) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let setup = Setup {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data,
        };
        setup.set_cpu(5.0);
        setup
    }

    fn cpu_file(&self) -> PathBuf {
        self.data.path().join("cpu-reading")
    }

    fn set_cpu(&self, percent: f32) {
        std::fs::write(self.cpu_file(), percent.to_string()).unwrap();
    }

    fn journal_path(&self) -> PathBuf {
        self.data.path().join("journal.sqlite")
    }

    /// One `moodwire sync` pass now, which must succeed: its JSON report.
    fn sync_once(&self) -> Value {
        let out = self.command(&["sync"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
        command
            .args(args)
            .current_dir(repo())
            .env_remove("REDDIT_CLIENT_ID")
            .env_remove("KAFKA_BROKERS")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env("MOODWIRE_SOURCE", "sample")
            .env("MOODWIRE_DATA_DIR", self.data.path())
            .env("MOODWIRE_CPU_READING_FILE", self.cpu_file())
            // No warming unless a test asks: it would add analyses to the counts.
            .env("MOODWIRE_WARM_MAX", "0")
            .env("RUST_LOG", "moodwire=info,moodwire_worker=info,warn")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    fn serve(&self) -> Server {
        let mut command = self.command(&["serve", "--addr", "127.0.0.1:0"]);
        command.stdout(Stdio::null());
        Server::spawn(command)
    }

    /// `moodwire worker`, its log collected for inspection.
    fn worker(&self, extra: &[&str]) -> Worker {
        let mut args = vec!["worker"];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = moodwire_testkit::harness::lossy_lines(child.stderr.take().unwrap());
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines {
                eprintln!("[worker] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Worker { child, log }
    }

    async fn journal_len(&self) -> i64 {
        sqlite_scalar(&self.journal_path(), "SELECT count(*) FROM events")
            .await
            .unwrap_or(-1)
    }
}

/// `POST /analyze` of 20 posts, which must succeed.
async fn analyzed(server: &Server, keyword: &str) -> Value {
    let (status, body) = server.analyze(keyword, 20).await;
    assert_eq!(status, 200, "{body}");
    body
}

struct Worker {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    /// The address of `/metrics` the worker logged (`MOODWIRE_WORKER_METRICS_ADDR`).
    fn metrics_url(&self) -> Option<String> {
        self.log.lock().unwrap().iter().find_map(|line| {
            line.split("worker metrics on ")
                .nth(1)
                .map(|url| url.split_whitespace().next().unwrap().to_string())
        })
    }

    fn logged(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A synthetic computed analysis with `posts` posts (ids unique to it).
fn synthetic_event(i: usize, posts: usize) -> AnalysisRecorded {
    let posts = (0..posts)
        .map(|j| ClassifiedPost {
            post: Post {
                created_utc: Utc::now().timestamp(),
                ..post(&format!("e{i}p{j}"), &format!("post {j} of event {i}"))
            },
            prediction: prediction((i + j) % 6),
        })
        .collect();
    classified_event(
        &format!("synthetic-{i}-{}", unique("e")),
        &format!("keyword {}", i % 17),
        posts,
    )
}

async fn fill_journal(dir: &Path, events: usize, posts: usize) {
    let journal = Journal::open(dir).await.unwrap();
    for i in 0..events {
        journal.append(&synthetic_event(i, posts)).await.unwrap();
    }
}

/// The analyses PostgreSQL holds from their events. Recovery may first backfill an
/// analysis from the cache (flagged `recovered`, without its posts) while its event is
/// still on its way; counting those would let a test go on before the event arrived.
async fn stored_from_events(database: &str) -> Option<i64> {
    pg_scalar(
        database,
        "SELECT count(*) FROM analyses WHERE NOT recovered",
    )
    .await
}

/// A topic and consumer group of the test's own on the test broker, created.
async fn own_topic(name: &str, partitions: i32) -> KafkaConfig {
    let kafka = KafkaConfig {
        brokers: service_env("MOODWIRE_TEST_KAFKA_BROKERS"),
        topic: unique(&format!("moodwire.analyses.{name}")),
        group: unique("group"),
        partitions,
    };
    kafka.ensure_topic().await.unwrap();
    kafka
}

/// The settings of a moodwire that reads `kafka` into `database`, and `extra`.
fn reading_kafka<'a>(
    kafka: &'a KafkaConfig,
    database: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("KAFKA_BROKERS", kafka.brokers.as_str()),
        ("MOODWIRE_KAFKA_TOPIC", kafka.topic.as_str()),
        ("MOODWIRE_KAFKA_GROUP", kafka.group.as_str()),
        ("DATABASE_URL", database),
    ];
    env.extend_from_slice(extra);
    env
}

/// Sends `events` synthetic analyses to the topic, as a server's outbox would: at once,
/// so that they travel in as few record batches as the producer makes.
async fn forward_synthetic(kafka: &KafkaConfig, events: usize, posts: usize) {
    let outbox = tempfile::tempdir().unwrap();
    fill_journal(outbox.path(), events, posts).await;
    let forwarder =
        KafkaForwarder::new(Journal::open(outbox.path()).await.unwrap(), kafka).unwrap();
    assert_eq!(forwarder.forward_all().await.unwrap(), events);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_defaults_sync_analyses_into_sqlite_once_idle() {
    let setup = Setup::new(&[]);
    setup.set_cpu(90.0);
    let server = setup.serve();
    let first = analyzed(&server, "AI").await;
    analyzed(&server, "climate change").await;
    let cached = analyzed(&server, " ai ").await;
    assert_eq!(cached["source"], "cache");
    assert_eq!(cached["analysis_id"], first["analysis_id"]);

    // Busy: the sync waits, the backlog shows in /metrics and stays on disk.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let store = setup.data.path().join("moodwire.sqlite");
    assert_eq!(
        sqlite_scalar(&store, "SELECT count(*) FROM analyses").await,
        Some(0)
    );
    assert_eq!(setup.journal_len().await, 2);
    assert_eq!(
        metric(&server.metrics().await, "moodwire_sync_backlog_events"),
        Some(2.0)
    );

    // Idle: it drains.
    setup.set_cpu(5.0);
    eventually(
        Duration::from_secs(20),
        "the analyses in SQLite",
        || async { sqlite_scalar(&store, "SELECT count(*) FROM analyses").await == Some(2) },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the journal truncated after the store commits",
        || async { setup.journal_len().await == 0 },
    )
    .await;
    let id = first["analysis_id"].as_str().unwrap();
    assert_eq!(
        sqlite_scalar(
            &store,
            &format!("SELECT count(*) FROM predictions WHERE analysis_id = '{id}'")
        )
        .await,
        Some(20)
    );
    assert_eq!(
        sqlite_scalar(
            &store,
            "SELECT count(DISTINCT label) FROM emotion_share_over_time WHERE keyword = 'ai'"
        )
        .await,
        Some(6)
    );
    eventually(
        Duration::from_secs(10),
        "the backlog at 0 in /metrics",
        || async { metric(&server.metrics().await, "moodwire_sync_backlog_events") == Some(0.0) },
    )
    .await;
    let metrics = server.metrics().await;
    assert!(
        metric(&metrics, "moodwire_sync_last_success_timestamp_seconds").is_some(),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn analyses_flow_through_kafka_into_postgres() {
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let topic = unique("moodwire.analyses.test");
    let setup = Setup::new(&[
        ("KAFKA_BROKERS", &service_env("MOODWIRE_TEST_KAFKA_BROKERS")),
        ("MOODWIRE_KAFKA_TOPIC", &topic),
        ("MOODWIRE_KAFKA_GROUP", &unique("group")),
        ("DATABASE_URL", &database),
    ]);
    let server = setup.serve();
    let analysis = analyzed(&server, "bitcoin").await;
    analyzed(&server, "rain").await;
    eventually(
        Duration::from_secs(30),
        "the analyses in PostgreSQL",
        || async { stored_from_events(&database).await == Some(2) },
    )
    .await;
    let id = analysis["analysis_id"].as_str().unwrap();
    assert_eq!(
        pg_scalar(
            &database,
            &format!("SELECT post_count FROM analyses WHERE analysis_id = '{id}'")
        )
        .await,
        Some(20)
    );
    assert_eq!(
        pg_scalar(&database, "SELECT count(*) FROM analysis_emotions").await,
        Some(12)
    );
    assert_eq!(
        pg_scalar(
            &database,
            "SELECT count(DISTINCT keyword) FROM emotion_share_over_time"
        )
        .await,
        Some(2)
    );
    eventually(
        Duration::from_secs(10),
        "the journal forwarded to the broker",
        || async { setup.journal_len().await == 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_database_only_delays_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let pg = dir.path().join("pg");
    let port = free_port().to_string();
    let services = |args: &[&str]| {
        let status = Command::new(repo().join("scripts/services.sh"))
            .args(args)
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(status.success(), "services.sh {args:?}");
    };
    services(&["pg-start", pg.to_str().unwrap(), &port]);
    let database = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let setup = Setup::new(&[("DATABASE_URL", &database)]);
    let server = setup.serve();
    analyzed(&server, "first").await;
    eventually(
        Duration::from_secs(20),
        "the first analysis stored",
        || async { stored_from_events(&database).await == Some(1) },
    )
    .await;

    services(&["pg-stop", pg.to_str().unwrap()]);
    analyzed(&server, "second").await;
    analyzed(&server, "third").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        setup.journal_len().await,
        2,
        "the events wait in the journal"
    );

    services(&["pg-start", pg.to_str().unwrap(), &port]);
    eventually(
        Duration::from_secs(90),
        "the backlog stored after the restart",
        || async { pg_scalar(&database, "SELECT count(*) FROM analyses").await == Some(3) },
    )
    .await;
    assert_eq!(
        pg_scalar(&database, "SELECT sum(analyses) FROM keywords").await,
        Some(3)
    );
    drop(server);
    services(&["pg-stop", pg.to_str().unwrap()]);
}

/// A private Tansu broker the test may crash and start again. Its log lives in the test
/// S3 server under a cluster id of its own, so, like a real broker, it comes back with
/// its topics and offsets.
///
/// Not in memory: a broker that comes back without the topic answers metadata requests
/// with a null topic name, which librdkafka 2.x dereferences (SIGSEGV in
/// `rd_kafka_metadata_cache_find`). Apache Kafka names the topic in that answer.
struct Broker {
    port: u16,
    cluster: String,
    process: Option<Child>,
}

impl Broker {
    fn start(port: u16) -> Broker {
        Broker::restart(port, unique("tansu"))
    }

    fn restart(port: u16, cluster: String) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let bucket = service_env("MOODWIRE_TEST_S3_BUCKET");
        let process = Command::new(service_env("MOODWIRE_TEST_TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--cluster-id",
                &cluster,
                "--storage-engine",
                &format!("s3://{bucket}/"),
            ])
            // Tansu's S3 client reads these names.
            .env("AWS_ENDPOINT", service_env("AWS_ENDPOINT_URL"))
            .env("AWS_DEFAULT_REGION", service_env("AWS_REGION"))
            .env("AWS_ALLOW_HTTP", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            port,
            cluster,
            process: Some(process),
        }
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill().ok();
            p.wait().ok();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_broker_only_delays_events() {
    let mut broker = Broker::start(free_port());
    let brokers = format!("127.0.0.1:{}", broker.port);
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let setup = Setup::new(&[
        ("KAFKA_BROKERS", &brokers),
        ("MOODWIRE_KAFKA_TOPIC", "moodwire.analyses"),
        ("DATABASE_URL", &database),
    ]);
    let server = setup.serve();
    analyzed(&server, "before").await;
    eventually(
        Duration::from_secs(30),
        "the first analysis stored",
        || async { stored_from_events(&database).await == Some(1) },
    )
    .await;

    broker.stop();
    analyzed(&server, "during one").await;
    analyzed(&server, "during two").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(setup.journal_len().await, 2, "spooled on local disk");

    let _broker = Broker::restart(broker.port, broker.cluster.clone());
    eventually(
        Duration::from_secs(120),
        "the spooled events stored",
        || async { pg_scalar(&database, "SELECT count(*) FROM analyses").await == Some(3) },
    )
    .await;
}

// Left out of `make test` until 2026-12-07: the replacement worker at times stored
// nothing for minutes, which was put down to Tansu's group coordinator. It was the sync
// believing Tansu's short lag (`a_commit_inside_the_last_record_batch_is_read_on_from`);
// with that fixed it passed 6 runs of 6.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_loses_nothing_and_duplicates_nothing() {
    const EVENTS: usize = 400;
    const POSTS: usize = 10;
    // A broker of its own. On the shared one, beside this file's other consumer groups,
    // the replacement at times never got a partition (about 1 run in 13; alone, 0 in
    // 18): Tansu's group coordinator, unlike Apache Kafka's, pauses a follower's join
    // for 3 s in its request handling, and evicts a dead member only when another
    // member's request notices it.
    let broker = Broker::start(free_port());
    let brokers = format!("127.0.0.1:{}", broker.port);
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let topic = unique("moodwire.analyses.kill");
    let setup = Setup::new(&[
        ("KAFKA_BROKERS", &brokers),
        ("MOODWIRE_KAFKA_TOPIC", &topic),
        ("MOODWIRE_KAFKA_GROUP", &unique("group")),
        ("DATABASE_URL", &database),
        ("MOODWIRE_SYNC_BATCH", "10"),
    ]);
    fill_journal(setup.data.path(), EVENTS, POSTS).await;

    let worker = setup.worker(&[]);
    eventually(Duration::from_secs(60), "the worker under way", || async {
        pg_scalar(&database, "SELECT count(*) FROM analyses")
            .await
            .unwrap_or(0)
            >= 30
    })
    .await;
    drop(worker); // SIGKILL mid-stream
    let stored = pg_scalar(&database, "SELECT count(*) FROM analyses")
        .await
        .unwrap();
    assert!(
        stored < EVENTS as i64,
        "killed before the end ({stored} stored)"
    );

    // The killed member holds its partitions until the group gives up on it.
    let _again = setup.worker(&[]);
    eventually(
        Duration::from_secs(180),
        "every analysis stored",
        || async {
            pg_scalar(&database, "SELECT count(*) FROM analyses").await == Some(EVENTS as i64)
        },
    )
    .await;
    assert_eq!(
        pg_scalar(&database, "SELECT count(*) FROM predictions").await,
        Some((EVENTS * POSTS) as i64)
    );
    assert_eq!(
        pg_scalar(&database, "SELECT sum(analyses) FROM keywords").await,
        Some(EVENTS as i64),
        "redelivered events are not counted twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_in_one_group_share_the_partitions() {
    const EVENTS: usize = 300;
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let kafka = own_topic("pair", 4).await;
    let env = reading_kafka(
        &kafka,
        &database,
        &[
            ("MOODWIRE_SYNC_BATCH", "5"),
            ("MOODWIRE_WORKER_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let (one, two) = (Setup::new(&env), Setup::new(&env));
    let workers = [one.worker(&[]), two.worker(&[])];
    // Let both join the group before anything arrives.
    tokio::time::sleep(Duration::from_secs(8)).await;
    forward_synthetic(&kafka, EVENTS, 2).await;

    eventually(
        Duration::from_secs(120),
        "every analysis stored",
        || async {
            pg_scalar(&database, "SELECT count(*) FROM analyses").await == Some(EVENTS as i64)
        },
    )
    .await;
    for (i, worker) in workers.iter().enumerate() {
        assert!(
            worker.logged("synced a batch") > 0,
            "worker {i} took no partition: {:?}",
            worker.log.lock().unwrap()
        );
        // An operator scrapes each worker's backlog and last sync.
        let url = worker
            .metrics_url()
            .expect("the worker logs its metrics address");
        let metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
        for figure in [
            "moodwire_sync_backlog_events",
            "moodwire_sync_last_success_timestamp_seconds",
            "moodwire_sync_events_total",
        ] {
            assert!(
                metrics.contains(figure),
                "worker {i} lacks {figure}: {metrics}"
            );
        }
    }
    assert_eq!(
        pg_scalar(&database, "SELECT sum(analyses) FROM keywords").await,
        Some(EVENTS as i64)
    );
}

/// The soak's lost analyses: a worker interrupted (by load) inside the topic's last
/// record batch committed there, and its lag then read 0 on Tansu, which reports the
/// end of a partition as the last record batch's first offset + 1. The sync used to
/// believe it and never read the rest until something new arrived.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_inside_the_last_record_batch_is_read_on_from() {
    let (kafka, database) = committed_inside_the_last_record_batch().await;
    let setup = Setup::new(&reading_kafka(&kafka, &database, &[]));
    let _worker = setup.worker(&[]);
    eventually(
        Duration::from_secs(90),
        "the rest of the batch stored",
        || async {
            pg_scalar(&database, "SELECT count(*) FROM analyses").await
                == Some((TAIL_EVENTS - TAIL_READ_BEFORE) as i64)
        },
    )
    .await;
}

/// The same for a one-shot `moodwire sync` (cron): the lag reads 0 while the group is
/// still being joined, and it must not give up before the first event arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_sync_reads_on_from_a_commit_inside_the_last_record_batch() {
    let (kafka, database) = committed_inside_the_last_record_batch().await;
    let setup = Setup::new(&reading_kafka(&kafka, &database, &[]));
    let report = setup.sync_once();
    assert_eq!(
        report["inserted"],
        (TAIL_EVENTS - TAIL_READ_BEFORE) as u64,
        "{report}"
    );
    assert_eq!(
        pg_scalar(&database, "SELECT count(*) FROM analyses").await,
        Some((TAIL_EVENTS - TAIL_READ_BEFORE) as i64)
    );
}

const TAIL_EVENTS: usize = 40;
const TAIL_READ_BEFORE: usize = 10;

/// A fresh database and a topic of `TAIL_EVENTS` events forwarded at once (one record
/// batch), of which an earlier member of the group read and committed the first
/// `TAIL_READ_BEFORE`: Tansu then reports no lag (its end is the last record batch's
/// first offset + 1), though the rest wait.
async fn committed_inside_the_last_record_batch() -> (KafkaConfig, String) {
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let kafka = own_topic("tail", 1).await;
    forward_synthetic(&kafka, TAIL_EVENTS, 1).await;
    let mut feed = KafkaFeed::subscribe(&kafka).unwrap();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < TAIL_READ_BEFORE && Instant::now() < deadline {
        let batch = feed
            .next_batch(TAIL_READ_BEFORE - read, Duration::from_secs(5))
            .await
            .unwrap();
        read += batch.len();
        feed.commit(&batch.position).await.unwrap();
    }
    assert_eq!(read, TAIL_READ_BEFORE, "the group could not read the topic");
    tokio::task::spawn_blocking(move || drop(feed))
        .await
        .unwrap();
    (kafka, database)
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_backfills_an_analysis_the_store_lost_from_the_cache() {
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let prefix = format!("{}:", unique("recovery"));
    let env = [
        ("REDIS_URL", service_env("MOODWIRE_TEST_REDIS_URL")),
        ("MOODWIRE_REDIS_PREFIX", prefix),
        ("DATABASE_URL", database.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let setup = Setup::new(&env);
    let server = setup.serve();
    let lost = analyzed(&server, "lost keyword").await;
    analyzed(&server, "kept keyword").await;
    eventually(Duration::from_secs(30), "both analyses stored", || async {
        pg_scalar(&database, "SELECT count(*) FROM analyses").await == Some(2)
    })
    .await;
    drop(server);
    let id = lost["analysis_id"].as_str().unwrap();
    let mut conn = sqlx::PgConnection::connect(&database).await.unwrap();
    sqlx::query("DELETE FROM analyses WHERE analysis_id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();

    // `moodwire sync` from another machine (its own data folder) sharing Redis and the store.
    let other = Setup::new(&env);
    let report = other.sync_once();
    assert_eq!(
        report["recovery"],
        json!({"scanned": 2, "backfilled": 1}),
        "{report}"
    );
    assert_eq!(
        pg_scalar(
            &database,
            &format!("SELECT count(*) FROM analyses WHERE analysis_id = '{id}' AND recovered")
        )
        .await,
        Some(1)
    );
    assert_eq!(
        pg_scalar(
            &database,
            &format!("SELECT count(*) FROM analysis_emotions WHERE analysis_id = '{id}'")
        )
        .await,
        Some(6)
    );

    // A second pass finds nothing more to do.
    let again = other.sync_once();
    assert_eq!(again["recovery"]["backfilled"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_warmer_refreshes_seed_keywords_when_quiet_and_skips_when_busy() {
    let seeds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(seeds.path(), "# hot topics\nbitcoin\nclimate change\n").unwrap();
    let prefix = format!("{}:", unique("warm"));
    let redis = service_env("MOODWIRE_TEST_REDIS_URL");
    let seeds_path = seeds.path().to_str().unwrap();
    let setup = Setup::new(&[
        ("REDIS_URL", redis.as_str()),
        ("MOODWIRE_REDIS_PREFIX", prefix.as_str()),
        ("MOODWIRE_WARM_SEEDS", seeds_path),
        ("MOODWIRE_WARM_MAX", "10"),
        ("MOODWIRE_WARM_PACE_SECS", "0"),
    ]);
    let warm = || {
        let out = setup.command(&["warm"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };

    // Analysts ask about "rain" (at another limit than the warmer's): it becomes hot.
    let server = setup.serve();
    analyzed(&server, "rain").await;
    analyzed(&server, "Rain").await;

    setup.set_cpu(90.0);
    let busy = warm();
    assert_eq!(busy["skipped_busy"], true, "{busy}");
    assert_eq!(busy["refreshed"], json!([]));

    setup.set_cpu(5.0);
    let first = warm();
    assert_eq!(
        first["refreshed"],
        json!(["rain", "bitcoin", "climate change"]),
        "{first}"
    );
    // The refreshed entries are in the shared cache: a second cycle leaves them alone.
    let second = warm();
    assert_eq!(second["refreshed"], json!([]), "{second}");
    assert_eq!(second["fresh"], 3);

    // The server on the same Redis answers the warmed question from the cache.
    let response = reqwest::Client::new()
        .post(format!("http://{}/analyze", server.address))
        .json(&json!({"keyword": "Bitcoin", "return_plot": false}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["source"], "cache", "{body}");
}

/// Pages of `per_page` Reddit self-posts of `body_bytes` each, `pages` in all, served
/// by the `after` cursor (`page1`, `page2`, ...) as Reddit's search does.
struct SelfPostPages {
    pages: usize,
    per_page: usize,
    body_bytes: usize,
}

impl wiremock::Respond for SelfPostPages {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let page: usize = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "after")
            .and_then(|(_, v)| v.strip_prefix("page")?.parse().ok())
            .unwrap_or(0);
        let body = "Long self-post about the outage. ".repeat(self.body_bytes / 33);
        let children: Vec<Value> = (0..self.per_page)
            .map(|i| {
                let n = page * self.per_page + i;
                json!({"kind": "t3", "data": {
                    "id": format!("big{n}"), "subreddit": "sysadmin", "author": "someone",
                    "created_utc": 1_700_000_000 - n as i64, "title": format!("Outage story {n}"),
                    "selftext": body, "score": 1, "permalink": format!("/r/sysadmin/comments/big{n}/")
                }})
            })
            .collect();
        let after = (page + 1 < self.pages).then(|| format!("page{}", page + 1));
        wiremock::ResponseTemplate::new(200)
            .insert_header("x-ratelimit-remaining", "99")
            .insert_header("x-ratelimit-reset", "60")
            .set_body_json(
                json!({"kind": "Listing", "data": {"after": after, "children": children}}),
            )
    }
}

/// What one hostile request and one huge analysis did to persistence before: a NUL
/// keyword is refused (422); an analysis of 1,000 self-posts of 8 KB from Reddit and a
/// normal one both reach PostgreSQL through Kafka with every prediction, within a
/// minute; a poison event already in the journal is dead-lettered, not retried forever.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_and_huge_analyses_never_stop_persistence() {
    use wiremock::matchers::{method, path};
    let reddit = wiremock::MockServer::start().await;
    moodwire_testkit::reddit::grant_tokens(&reddit).await;
    wiremock::Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(SelfPostPages {
            pages: 10,
            per_page: 100,
            body_bytes: 8 * 1024,
        })
        .mount(&reddit)
        .await;
    let database = moodwire_testkit::harness::fresh_database(
        &service_env("MOODWIRE_TEST_DATABASE_URL"),
        "mw_pipeline",
    )
    .await;
    let topic = unique("moodwire.analyses.hostile");
    let auth_url = moodwire_testkit::reddit::token_url(&reddit);
    let setup = Setup::new(&[
        ("KAFKA_BROKERS", &service_env("MOODWIRE_TEST_KAFKA_BROKERS")),
        ("MOODWIRE_KAFKA_TOPIC", &topic),
        ("MOODWIRE_KAFKA_GROUP", &unique("group")),
        ("DATABASE_URL", &database),
        ("MOODWIRE_SOURCE", "reddit"),
        ("REDDIT_CLIENT_ID", "test-app"),
        ("REDDIT_CLIENT_SECRET", "test-secret"),
        (
            "REDDIT_USER_AGENT",
            "linux:moodwire-tests:0.1.0 (by /u/moodwire)",
        ),
        ("REDDIT_AUTH_URL", &auth_url),
        ("REDDIT_API_URL", &reddit.uri()),
        // 1,000 long posts take seconds of inference; a busy machine must not time it out,
        // nor starve the analysis threads of a lower priority than its other work.
        ("MOODWIRE_REQUEST_TIMEOUT_SECS", "120"),
        ("MOODWIRE_ANALYSIS_NICE", "0"),
    ]);
    // A poison event from before input hygiene, waiting in the journal.
    let mut poison = synthetic_event(0, 3);
    poison.posts[1].post.title = "a\u{0}b".into();
    Journal::open(setup.data.path())
        .await
        .unwrap()
        .append(&poison)
        .await
        .unwrap();
    let server = setup.serve();
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("http://{}/analyze", server.address))
            .json(&body)
            .send()
    };
    let refused = post(json!({"keyword": "a\u{0}b", "limit": 20}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "invalid_keyword");
    assert_eq!(refused["error"]["field"], "keyword");

    let huge = post(json!({"keyword": "outage", "limit": 1000, "return_plot": false}))
        .await
        .unwrap();
    let status = huge.status();
    let huge: Value = huge.json().await.unwrap();
    assert_eq!(status, 200, "{huge}");
    assert_eq!(huge["count"], 1000);
    let normal = post(json!({"keyword": "status page", "limit": 20, "return_plot": false}))
        .await
        .unwrap();
    assert_eq!(normal.status(), 200);
    let normal: Value = normal.json().await.unwrap();

    let predictions_of = |analysis: &Value| {
        format!(
            "SELECT count(*) FROM predictions WHERE analysis_id = '{}'",
            analysis["analysis_id"].as_str().unwrap()
        )
    };
    eventually(
        Duration::from_secs(60),
        "both analyses in PostgreSQL with every prediction",
        || async {
            pg_scalar(&database, &predictions_of(&huge)).await == Some(1000)
                && pg_scalar(&database, &predictions_of(&normal)).await == Some(20)
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the poison event dead-lettered",
        || async { pg_scalar(&database, "SELECT count(*) FROM dead_letters").await == Some(1) },
    )
    .await;
    assert_eq!(
        pg_scalar(&database, "SELECT count(*) FROM analyses").await,
        Some(2),
        "the poison's analysis is not half stored"
    );
    assert!(
        pg_scalar(&database, "SELECT max(length(body)) FROM posts")
            .await
            .unwrap()
            <= Post::EXCERPT_MAX_CHARS as i64,
        "events carry excerpts, not 8 KB bodies"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "moodwire_dead_letters_total"),
        Some(1.0),
        "{metrics}"
    );

    // The operator lists it, and a replay keeps it (the store still refuses it).
    let listed = setup.command(&["sync", "--dead-letters"]).output().unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed["store"][0]["analysis_id"],
        poison.analysis.id.as_str()
    );
    assert!(listed["store"][0]["error"]
        .as_str()
        .unwrap()
        .contains("0x00"));
    let replayed = setup
        .command(&["sync", "--retry-dead-letters"])
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let replayed: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(
        (
            replayed["replayed"].as_u64(),
            replayed["still_dead"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        pg_scalar(&database, "SELECT attempts FROM dead_letters").await,
        Some(2)
    );
}

/// Under a CPU held above the sync's threshold, the backlog still reaches the store
/// once it is older than MOODWIRE_SYNC_MAX_DELAY_SECS, and its age shows in /metrics.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_host_delays_the_sync_only_up_to_the_deadline() {
    let setup = Setup::new(&[("MOODWIRE_SYNC_MAX_DELAY_SECS", "3")]);
    setup.set_cpu(95.0);
    let server = setup.serve();
    analyzed(&server, "AI").await;
    let store = setup.data.path().join("moodwire.sqlite");
    let started = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the analysis stored while the CPU is busy",
        || async { sqlite_scalar(&store, "SELECT count(*) FROM analyses").await == Some(1) },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before its deadline: {:?}",
        started.elapsed()
    );
    assert!(server
        .metrics()
        .await
        .contains("moodwire_sync_oldest_event_age_seconds"));
}
