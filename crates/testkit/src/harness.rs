//! What tests that start processes share: free ports, waiting for a condition, fresh
//! PostgreSQL databases, a private redis-server, and `moodwire` child processes that
//! are killed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on `port`, for at most `within`.
pub fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it is true, failing the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A test service's address from `.services/env` (which `make test` loads).
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `make test`, or `scripts/services.sh up` and `set -a; . .services/env`")
    })
}

/// A name no other test, process or run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database on the test PostgreSQL (`admin`, a URL to its `postgres`
/// database), as a URL.
pub async fn fresh_database(admin: &str, prefix: &str) -> String {
    let name = unique(prefix);
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("the test PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("a fresh database");
    format!(
        "{}/{name}",
        admin.rsplit_once('/').expect("a database URL").0
    )
}

/// A data folder of its own for one moodwire process (journal, embedded store).
pub fn isolated_data_dir() -> PathBuf {
    std::env::temp_dir().join(unique("moodwire-data"))
}

/// `SELECT (...)::bigint` on PostgreSQL; `None` while the database is away.
pub async fn pg_scalar(url: &str, sql: &str) -> Option<i64> {
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    sqlx::query_scalar(&format!("SELECT ({sql})::bigint"))
        .fetch_one(&mut conn)
        .await
        .ok()
}

/// A single-number query on a SQLite file; `None` while it cannot be read.
pub async fn sqlite_scalar(path: &Path, sql: &str) -> Option<i64> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .ok()?;
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.ok()
}

/// The value of a Prometheus sample line `name value`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The lines of a child's output, read to the end whatever bytes come: a line that is
/// not UTF-8 must not stop the reader, or the child would block on a full pipe.
pub fn lossy_lines(output: impl std::io::Read) -> impl Iterator<Item = String> {
    BufReader::new(output)
        .split(b'\n')
        .map_while(Result::ok)
        .map(|line| String::from_utf8_lossy(&line).into_owned())
}

/// Spawns `command` (a `moodwire serve --addr 127.0.0.1:0 ...`), waits for the address
/// it logs, and hands back the rest of its log, line by line, so the pipe never fills.
pub fn spawn_server(mut command: Command) -> (Child, String, Receiver<String>) {
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("moodwire starts");
    let mut log = lossy_lines(child.stderr.take().expect("a piped stderr"));
    let address = log
        .by_ref()
        .find_map(|line| {
            line.split("listening on http://")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
        })
        .expect("the server logs its address");
    let (lines, rest) = channel();
    std::thread::spawn(move || {
        for line in log {
            // Nobody listening any more is fine: keep draining the pipe.
            let _ = lines.send(line);
        }
    });
    (child, address, rest)
}

/// A `moodwire serve` child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Server {
    /// Starts `command` (a `moodwire serve --addr 127.0.0.1:0 ...`); its log is shown
    /// when a test fails (the harness captures this thread's output).
    pub fn spawn(command: Command) -> Server {
        let (child, address, log) = spawn_server(command);
        std::thread::spawn(move || {
            for line in log {
                eprintln!("[serve] {line}");
            }
        });
        Server { child, address }
    }

    /// `POST /analyze` without the chart: the status and the body.
    pub async fn analyze(&self, keyword: &str, limit: u32) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}/analyze", self.address))
            .json(&json!({"keyword": keyword, "limit": limit, "return_plot": false}))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// The server's `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A private redis-server on its own port, stopped on drop (tests that stop and
/// restart Redis must not touch the shared one).
pub struct RedisServer {
    pub port: u16,
    process: Option<Child>,
}

impl RedisServer {
    pub fn start_on(port: u16) -> Self {
        let process = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services.sh up installs it)");
        wait_for_port(port, Duration::from_secs(10));
        RedisServer {
            port,
            process: Some(process),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().ok();
            process.wait().ok();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
