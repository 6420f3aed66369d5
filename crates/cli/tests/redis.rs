//! `moodwire serve` replicas sharing a real Redis, and serving on when Redis is gone.

use std::path::PathBuf;
use std::process::Command;

use moodwire_testkit::harness::{self, Server};
use serde_json::{json, Value};

fn test_redis_url() -> String {
    std::env::var("MOODWIRE_TEST_REDIS_URL").expect(
        "MOODWIRE_TEST_REDIS_URL is not set: run `make test`, or `scripts/services.sh up` and `set -a; . .services/env`",
    )
}

/// `moodwire serve` on the sample corpus with its own data folder and `env` on top.
fn start(env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("REDDIT_CLIENT_ID")
        .env("MOODWIRE_SOURCE", "sample")
        .env("MOODWIRE_DATA_DIR", harness::isolated_data_dir())
        .env("RUST_LOG", "moodwire=info,warn")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    Server::spawn(command)
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_results_through_redis() {
    let url = test_redis_url();
    let prefix = format!("moodwire-test-{}-{}:", std::process::id(), line!());
    let env = [
        ("REDIS_URL", url.as_str()),
        ("MOODWIRE_REDIS_PREFIX", prefix.as_str()),
    ];
    let first = start(&env);
    let second = start(&env);

    let (status, computed) = first.analyze("bitcoin", 30).await;
    assert_eq!(status, 200, "{computed}");
    assert_eq!(computed["source"], "inference");
    let (status, shared) = second.analyze("  BITCOIN ", 30).await;
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
    // The 30 posts' predictions, shared too; the claim is gone once the result landed.
    let (predictions, mut keys): (Vec<String>, Vec<String>) = keys
        .into_iter()
        .partition(|k| k.starts_with(&format!("{prefix}post:")));
    assert_eq!(predictions.len(), 30, "one prediction per post");
    let _: () = redis::cmd("DEL")
        .arg(&predictions)
        .query_async(&mut raw)
        .await
        .unwrap();
    // One shared analysis, and the question counts both replicas add to.
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
    let server = start(&[("REDIS_URL", url.as_str())]);
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let (status, body) = server.analyze("climate", 30).await;
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

/// Two replicas on one Redis, 50 concurrent requests each for one new question: it
/// is computed once in all (one replica claims it, the other waits for its result).
#[tokio::test(flavor = "multi_thread")]
async fn replicas_compute_a_new_question_once_between_them() {
    let url = test_redis_url();
    let prefix = format!("moodwire-test-{}-{}:", std::process::id(), line!());
    let env = [
        ("REDIS_URL", url.as_str()),
        ("MOODWIRE_REDIS_PREFIX", prefix.as_str()),
    ];
    let replicas = std::sync::Arc::new([start(&env), start(&env)]);
    let asks: Vec<_> = (0..100)
        .map(|i| {
            let replicas = std::sync::Arc::clone(&replicas);
            tokio::spawn(async move { replicas[i % 2].analyze("electric cars", 30).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for ask in asks {
        let (status, body) = ask.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.insert(body["analysis_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "one analysis answered everyone: {ids:?}");
    let mut computed = 0.0;
    for replica in replicas.iter() {
        let metrics = replica.metrics().await;
        computed += metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("moodwire_events_appended_total ")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0);
    }
    assert_eq!(computed, 1.0, "one inference in all");
}

/// Two replicas of one Reddit app on one Redis share its call budget: under a flood of
/// new keywords they make at most the budget's calls between them, and answer the rest
/// 503 with Retry-After instead of sending them.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_one_reddit_budget() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let reddit = MockServer::start().await;
    moodwire_testkit::reddit::grant_tokens(&reddit).await;
    let listing = json!({"kind": "Listing", "data": {"after": null, "children": [
        {"kind": "t3", "data": {"id": "r1", "subreddit": "news", "author": "a",
         "created_utc": 1_700_000_000, "title": "a post", "selftext": "", "permalink": "/r/news/r1"}}
    ]}});
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listing))
        .mount(&reddit)
        .await;
    let url = test_redis_url();
    let prefix = format!("moodwire-test-{}-{}:", std::process::id(), line!());
    let auth = moodwire_testkit::reddit::token_url(&reddit);
    let env = [
        ("REDIS_URL", url.as_str()),
        ("MOODWIRE_REDIS_PREFIX", prefix.as_str()),
        ("MOODWIRE_SOURCE", "reddit"),
        ("REDDIT_CLIENT_ID", "budget-test-app"),
        ("REDDIT_CLIENT_SECRET", "secret"),
        (
            "REDDIT_USER_AGENT",
            "linux:moodwire-tests:0.1.0 (by /u/moodwire)",
        ),
        ("REDDIT_AUTH_URL", auth.as_str()),
        ("REDDIT_API_URL", reddit.uri().leak()),
        ("MOODWIRE_REDDIT_CALLS_PER_MINUTE", "10"),
    ];
    let replicas = std::sync::Arc::new([start(&env), start(&env)]);
    let asks: Vec<_> = (0..40)
        .map(|i| {
            let replicas = std::sync::Arc::clone(&replicas);
            tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .post(format!("http://{}/analyze", replicas[i % 2].address))
                    .json(
                        &json!({"keyword": format!("topic {i}"), "limit": 5, "return_plot": false}),
                    )
                    .send()
                    .await
                    .unwrap();
                let retry = response.headers().contains_key("retry-after");
                (response.status().as_u16(), retry)
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for ask in asks {
        match ask.await.unwrap() {
            (200, _) => ok += 1,
            (503, true) => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let searches = reddit
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/search")
        .count();
    assert!(searches <= 10, "{searches} calls against a budget of 10");
    assert_eq!(ok, searches, "each answered question made one call");
    assert_eq!(ok + limited, 40);
}
