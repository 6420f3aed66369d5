//! `moodwire` with its real post sources: Reddit (a real HTTP server on loopback that
//! speaks Reddit's endpoints) and dump files.

use moodwire_testkit::harness as common;
use moodwire_testkit::reddit::{grant_tokens, refuse_tokens, token_url};

use std::path::PathBuf;
use std::process::{Child, Command, Output};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER_AGENT: &str = "linux:moodwire-tests:0.1.0 (by /u/moodwire)";
const SECRET: &str = "s3cr3t-never-logged";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn moodwire(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(args)
        .current_dir(repo())
        .env_remove("MOODWIRE_SOURCE")
        .env_remove("REDDIT_CLIENT_ID")
        .env_remove("REDDIT_CLIENT_SECRET")
        .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
        .env("RUST_LOG", "moodwire=debug,info")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

async fn run(command: Command) -> Output {
    let mut command = command;
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn reddit_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("REDDIT_CLIENT_ID", "test-app".into()),
        ("REDDIT_CLIENT_SECRET", SECRET.into()),
        ("REDDIT_USER_AGENT", USER_AGENT.into()),
        ("REDDIT_AUTH_URL", token_url(server)),
        ("REDDIT_API_URL", server.uri()),
    ]
}

fn reddit_posts(n: usize) -> Value {
    let children: Vec<Value> = (0..n)
        .map(|i| {
            json!({"kind": "t3", "data": {
                "id": format!("r{i}"), "subreddit": "news", "author": "someone",
                "created_utc": 1_700_000_000 - i as i64,
                "title": if i % 2 == 0 { "I am so happy about the new AI tools!" } else { "AI layoffs make me furious and scared" },
                "selftext": "", "score": 3, "permalink": format!("/r/news/comments/r{i}/x/")
            }})
        })
        .collect();
    json!({"kind": "Listing", "data": {"after": null, "children": children}})
}

#[tokio::test(flavor = "multi_thread")]
async fn analyze_reads_reddit_when_credentials_are_set() {
    let server = MockServer::start().await;
    grant_tokens(&server).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reddit_posts(12)))
        .expect(1)
        .mount(&server)
        .await;
    let out = run(moodwire(
        &["analyze", "AI", "--limit", "50"],
        &reddit_env(&server),
    ))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(SECRET), "the secret was logged: {stderr}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["posts_source"], "reddit");
    assert_eq!(body["count"], 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reddit_credentials_stop_the_start_naming_the_variables() {
    let server = MockServer::start().await;
    refuse_tokens(&server).await;
    let out = run(moodwire(&["analyze", "AI"], &reddit_env(&server))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));

    let mut env = reddit_env(&server);
    env.retain(|(k, _)| *k != "REDDIT_USER_AGENT");
    env.push(("REDDIT_USER_AGENT", "curl/8.0".into()));
    let out = run(moodwire(&["analyze", "AI"], &env)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("REDDIT_USER_AGENT") && stderr.contains("(by /u/"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_reddit_is_a_503_with_retry_after() {
    let server = MockServer::start().await;
    grant_tokens(&server).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "42"),
        )
        .mount(&server)
        .await;
    let (mut child, address) = spawn_server(&reddit_env(&server));
    let response = reqwest::Client::new()
        .post(format!("http://{address}/analyze"))
        .json(&json!({"keyword": "AI", "limit": 10}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(status, 503);
    assert!((30..=42).contains(&retry_after), "{retry_after}");
    assert_eq!(body["error"]["code"], "upstream_rate_limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn analyze_reads_a_zstd_dump() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..30 {
        lines += &json!({"id": format!("d{i}"), "created_utc": 1_600_000_000 + i, "title": "Bitcoin crashed again, I am terrified", "selftext": "", "subreddit": "btc", "author": "x"}).to_string();
        lines += "\n";
    }
    lines += "this line is corrupt\n";
    let dump = dir.path().join("RS_2021-01.zst");
    std::fs::write(&dump, zstd_compress(lines.as_bytes())).unwrap();
    let source = format!("dump:{}", dump.display());
    // `moodwire analyze` of the dump: the answer, and what the command logged.
    let analyze = || async {
        let out = run(moodwire(
            &["analyze", "bitcoin", "--limit", "25", "--source", &source],
            &[],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        (body, stderr)
    };
    let (body, stderr) = analyze().await;
    assert_eq!(body["posts_source"], "dump");
    assert_eq!(body["count"], 25);
    assert!(stderr.contains("bad_lines=1"), "{stderr}");
    let searched = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.contains("dump searched"))
            .map(String::from)
            .unwrap_or_default()
    };
    assert!(searched(&stderr).contains("scan"), "{stderr}");

    // `moodwire index` builds the full-text index; the same query then uses it.
    let out = run(moodwire(&["index", dump.to_str().unwrap()], &[])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("indexed 30 posts from 31 lines"),
        "{summary}"
    );
    let (indexed, stderr) = analyze().await;
    assert!(searched(&stderr).contains("index"), "{stderr}");
    assert_eq!(
        indexed["agg"], body["agg"],
        "the index finds the same posts as the scan"
    );

    let out = run(moodwire(
        &["analyze", "bitcoin", "--source", "dump:/no/such/dump.zst"],
        &[],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/no/such/dump.zst"), "{stderr}");
}

fn zstd_compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    // Pushshift's dumps use long windows; the reader must accept them.
    encoder.window_log(28).unwrap();
    std::io::Write::write_all(&mut encoder, bytes).unwrap();
    encoder.finish().unwrap()
}

fn spawn_server(env: &[(&str, String)]) -> (Child, String) {
    let (child, address, _log) =
        common::spawn_server(moodwire(&["serve", "--addr", "127.0.0.1:0"], env));
    (child, address)
}
