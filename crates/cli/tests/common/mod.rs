//! What the binary's integration tests share.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};

/// Spawns `command` (a `moodwire serve --addr 127.0.0.1:0 ...`), waits for the address
/// it logs, and hands back the rest of its log, line by line, so the pipe never fills.
pub fn spawn_server(mut command: Command) -> (Child, String, Receiver<String>) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut log = lossy_lines(child.stderr.take().unwrap());
    let address = log
        .by_ref()
        .find_map(|line| {
            line.split("listening on http://")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap().to_string())
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

/// The lines of a child's output, read to the end whatever bytes come: a line that is
/// not UTF-8 must not stop the reader, or the child would block on a full pipe.
#[allow(dead_code)] // Not every test binary reads a child.
pub fn lossy_lines(output: impl std::io::Read) -> impl Iterator<Item = String> {
    BufReader::new(output)
        .split(b'\n')
        .map_while(Result::ok)
        .map(|line| String::from_utf8_lossy(&line).into_owned())
}

/// A data folder of its own for one moodwire process (journal, embedded store), under
/// the target folder's scratch space, so tests never share or leave state in `data/`.
#[allow(dead_code)] // Not every test binary needs one.
pub fn isolated_data_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "moodwire-data-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A fresh database named `{prefix}_{pid}_{nanos}` on the shared test PostgreSQL
/// (`admin`, a URL to its `postgres` database), as a URL.
#[allow(dead_code)] // Not every test binary needs one.
pub async fn fresh_database(admin: &str, prefix: &str) -> String {
    use sqlx::Connection;
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    );
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}
