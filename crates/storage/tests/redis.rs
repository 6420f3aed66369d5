//! The Redis cache against a real redis-server, one private server per test (on a
//! free loopback port) so tests can stop and restart it.

use std::time::{Duration, Instant};

use moodwire_core::ports::ResultCache;
use moodwire_storage::{RedisCache, RedisCacheConfig};
use moodwire_testkit::harness::{free_port, RedisServer};
use moodwire_testkit::{empty_analysis, scan_all};

fn config(prefix: &str) -> RedisCacheConfig {
    let mut config = RedisCacheConfig::new(prefix, Duration::from_secs(3600));
    config.reconnect_every = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn scans_only_its_own_prefix_and_counts_queries() {
    let server = RedisServer::start_on(free_port());
    // A prefix with glob characters must still match literally.
    let cache = RedisCache::new(&server.url(), config("a*[b]:"))
        .await
        .unwrap();
    let neighbour = RedisCache::new(&server.url(), config("a-other:"))
        .await
        .unwrap();
    for i in 0..25 {
        cache
            .put(&format!("m:10:k{i}"), &empty_analysis(&format!("k{i}")))
            .await
            .unwrap();
    }
    neighbour.put("m:10:x", &empty_analysis("x")).await.unwrap();
    for keyword in ["ai", "rust", "ai"] {
        cache.count_query(keyword).await.unwrap();
    }

    let mut keywords: Vec<String> = scan_all(&cache, 10)
        .await
        .into_iter()
        .map(|a| a.keyword)
        .collect();
    keywords.sort();
    keywords.dedup();
    assert_eq!(keywords.len(), 25, "{keywords:?}");
    assert!(
        !keywords.contains(&"x".to_string()),
        "another prefix's entry"
    );

    assert_eq!(
        cache.top_queried(5).await.unwrap(),
        [("ai".to_string(), 2), ("rust".to_string(), 1)]
    );
    assert!(neighbour.top_queried(5).await.unwrap().is_empty());
}

#[tokio::test]
async fn stores_under_the_prefix_with_the_ttl() {
    let server = RedisServer::start_on(free_port());
    let prefix = format!("test-{}:", std::process::id());
    let cache = RedisCache::new(&server.url(), config(&prefix))
        .await
        .unwrap();
    assert!(cache.get("m:250:ai").await.unwrap().is_none());
    cache.put("m:250:ai", &empty_analysis("ai")).await.unwrap();
    let stored = cache
        .get("m:250:ai")
        .await
        .unwrap()
        .expect("a hit after the put");
    assert_eq!(stored.keyword, "ai");
    assert_eq!(stored.agg, empty_analysis("ai").agg);

    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}m:250:ai"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");

    // A value that is not an analysis (an older version's, say) is a miss, not an error.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}m:250:old"))
        .arg("{\"v\":0}")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(cache.get("m:250:old").await.unwrap().is_none());
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_the_cache_recovers_when_it_returns() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let cache = RedisCache::new(&url, config("recover:")).await.unwrap();
    assert!(cache.get("k").await.is_err());
    assert!(cache.put("k", &empty_analysis("x")).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let mut server = RedisServer::start_on(port);
    tokio::time::sleep(Duration::from_millis(150)).await;
    cache
        .put("k", &empty_analysis("x"))
        .await
        .expect("reconnects once Redis is back");
    assert_eq!(cache.get("k").await.unwrap().unwrap().keyword, "x");

    // Down again after being connected: errors, quickly.
    server.stop();
    let started = Instant::now();
    assert!(cache.get("k").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // And back again (an empty Redis, as after a restart without persistence).
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.put("k", &empty_analysis("y")).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cache.get("k").await.unwrap().unwrap().keyword, "y");
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let err = RedisCache::new("http://not-redis", config("x:"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

/// Predictions go to Redis in one pipeline and come back in one MGET, under the prefix,
/// with their own TTL; recovery's scan never mistakes them for analyses.
#[tokio::test]
async fn keeps_post_predictions_apart_from_analyses() {
    use moodwire_core::ports::PredictionCache;
    let server = RedisServer::start_on(free_port());
    let mut settings = config("preds:");
    settings.prediction_ttl = Duration::from_secs(600);
    let cache = RedisCache::new(&server.url(), settings).await.unwrap();
    let entries: Vec<(String, [f32; 6])> = (0..300)
        .map(|i| {
            (
                format!("m:p{i}:abc"),
                [i as f32 / 300.0, 0.1, 0.2, 0.3, 0.0, 0.4],
            )
        })
        .collect();
    cache.put_many(&entries).await.unwrap();
    cache.put("m:10:ai", &empty_analysis("ai")).await.unwrap();
    let mut keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    keys.push("m:unknown:abc".into());
    let got = cache.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), 301);
    assert_eq!(got[7], Some(entries[7].1));
    assert_eq!(got[300], None);

    let mut redis = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("preds:post:m:p7:abc")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=600).contains(&ttl), "{ttl}");
    let (_, page) = cache.scan(0, 1000).await.unwrap();
    assert_eq!(page.len(), 1, "only the analysis");
    assert_eq!(page[0].keyword, "ai");
}
