//! `moodwire serve` replicas sharing a real Redis, and serving on when Redis is gone.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};

use serde_json::{json, Value};

fn test_redis_url() -> String {
    std::env::var("MOODWIRE_TEST_REDIS_URL").expect(
        "MOODWIRE_TEST_REDIS_URL is not set: run `make test`, or `scripts/services.sh up` and `set -a; . .services/env`",
    )
}

struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .env_remove("REDDIT_CLIENT_ID")
            .env("MOODWIRE_SOURCE", "sample")
            .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
            .env("RUST_LOG", "moodwire=info,warn")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        let (child, address, _log) = common::spawn_server(command);
        Server { child, address }
    }

    async fn analyze(&self, keyword: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("http://{}/analyze", self.address))
            .json(&json!({"keyword": keyword, "limit": 30, "return_plot": false}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_results_through_redis() {
    let url = test_redis_url();
    let prefix = format!("moodwire-test-{}-{}:", std::process::id(), line!());
    let env = [
        ("REDIS_URL", url.as_str()),
        ("MOODWIRE_REDIS_PREFIX", prefix.as_str()),
    ];
    let first = Server::start(&env);
    let second = Server::start(&env);

    let (status, computed) = first.analyze("bitcoin").await;
    assert_eq!(status, 200, "{computed}");
    assert_eq!(computed["source"], "inference");
    let (status, shared) = second.analyze("  BITCOIN ").await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(
        shared["source"], "cache",
        "the other replica's result, through Redis"
    );
    assert_eq!(shared["agg"], computed["agg"]);

    let client = redis::Client::open(url).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    // One shared analysis, and the question counts both replicas add to.
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].ends_with(":30:bitcoin"), "{keys:?}");
    assert_eq!(keys[1], format!("{prefix}queries"));
    let asked: f64 = redis::cmd("ZSCORE")
        .arg(&keys[1])
        .arg("bitcoin")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(asked, 2.0);
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_succeed_while_redis_is_down() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(&[("REDIS_URL", url.as_str())]);
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let (status, body) = server.analyze("climate").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["source"], "inference");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    let ready: Value = reqwest::get(format!("http://{}/readyz", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(
        ready["cache"].as_str().unwrap().starts_with("unreachable"),
        "{ready}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("moodwire_cache_requests_total{result=\"error\"}")),
        "{metrics}"
    );
}
