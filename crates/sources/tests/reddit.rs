//! The Reddit source against a real HTTP server on loopback that speaks Reddit's
//! token and search endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{
    header, header_exists, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use moodwire_core::ports::{PostSource, SourceError, WorkSlot};
use moodwire_core::{Keyword, Limit, Question, Scope, Subreddits, Window};
use moodwire_sources::reddit::Secret;
use moodwire_sources::{RedditConfig, RedditSource};
use moodwire_testkit::reddit::{refuse_tokens, search_requests};

const USER_AGENT: &str = "linux:moodwire-tests:0.1.0 (by /u/moodwire)";

fn source(server: &MockServer) -> RedditSource {
    let mut config = RedditConfig::new(
        Some("client-id"),
        Some(Secret::new("client-secret")),
        Some(USER_AGENT),
        &format!("{}/api/v1/access_token", server.uri()),
        &server.uri(),
    )
    .unwrap();
    config.retry_base_delay = Duration::from_millis(5);
    config.request_timeout = Duration::from_millis(500);
    config.fetch_timeout = Duration::from_secs(5);
    RedditSource::new(config).unwrap()
}

async fn mount_token(server: &MockServer, token: &str, expected_calls: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v1/access_token"))
        // base64("client-id:client-secret")
        .and(header(
            "authorization",
            "Basic Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQ=",
        ))
        .and(header("user-agent", USER_AGENT))
        .and(wiremock::matchers::body_string(
            "grant_type=client_credentials",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"
        })))
        .expect(expected_calls)
        .mount(server)
        .await;
}

fn post(id: &str, created: f64, title: &str, selftext: &str) -> Value {
    json!({"kind": "t3", "data": {
        "id": id, "name": format!("t3_{id}"), "subreddit": "technology", "author": "someone",
        "created_utc": created, "title": title, "selftext": selftext, "score": 12,
        "permalink": format!("/r/technology/comments/{id}/x/"), "num_comments": 3, "over_18": false
    }})
}

fn listing(after: Option<&str>, children: Vec<Value>) -> Value {
    json!({"kind": "Listing", "data": {"after": after, "dist": children.len(), "before": null, "children": children}})
}

fn page_of(start: usize, n: usize) -> Vec<Value> {
    (start..start + n)
        .map(|i| {
            post(
                &format!("p{i}"),
                1_700_000_000.0 - i as f64,
                &format!("AI post {i}"),
                "body",
            )
        })
        .collect()
}

fn ok_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("x-ratelimit-used", "1")
        .insert_header("x-ratelimit-remaining", "99.0")
        .insert_header("x-ratelimit-reset", "60")
        .set_body_json(body)
}

async fn search(
    source: &RedditSource,
    keyword: &str,
    limit: i64,
) -> Result<Vec<moodwire_core::Post>, SourceError> {
    source
        .search(&question(keyword, limit), &WorkSlot::unbounded())
        .await
}

fn question(keyword: &str, limit: i64) -> Question {
    Question::new(
        Keyword::parse(keyword).unwrap(),
        Limit::parse(limit).unwrap(),
    )
}

#[tokio::test]
async fn follows_the_after_cursor_across_three_pages() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    let search_mock = |after: Option<&'static str>, body: Value, calls: u64| {
        let mut mock = Mock::given(method("GET"))
            .and(path("/search"))
            .and(query_param("q", "AI"))
            .and(query_param("sort", "new"))
            .and(query_param("limit", "100"))
            .and(query_param("type", "link"))
            .and(query_param("restrict_sr", "false"))
            .and(query_param("raw_json", "1"))
            .and(header("authorization", "Bearer tok"))
            .and(header("user-agent", USER_AGENT));
        mock = match after {
            Some(a) => mock.and(query_param("after", a)),
            None => mock.and(query_param_is_missing("after")),
        };
        mock.respond_with(ok_json(body)).expect(calls)
    };
    // The first page is asked for twice: by both searches below.
    search_mock(None, listing(Some("t3_p99"), page_of(0, 100)), 2)
        .mount(&server)
        .await;
    search_mock(
        Some("t3_p99"),
        listing(Some("t3_p199"), page_of(100, 100)),
        1,
    )
    .mount(&server)
    .await;
    search_mock(Some("t3_p199"), listing(None, page_of(200, 30)), 1)
        .mount(&server)
        .await;

    let reddit = source(&server);
    let posts = search(&reddit, "AI", 1000).await.unwrap();
    assert_eq!(posts.len(), 230);
    assert_eq!(posts[0].id, "p0");
    assert!(posts
        .windows(2)
        .all(|w| w[0].created_utc >= w[1].created_utc));
    assert_eq!(posts[0].permalink, "/r/technology/comments/p0/x/");
    assert_eq!(posts[0].subreddit, "technology");
    // The token is cached: a second search does not fetch another (expect(1) above).
    let again = search(&reddit, "AI", 50).await.unwrap();
    assert_eq!(again.len(), 50, "stops at the limit after the first page");
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let server = MockServer::start().await;
    struct Tokens(AtomicUsize);
    impl Respond for Tokens {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(json!({
                "access_token": format!("tok{n}"), "token_type": "bearer", "expires_in": 3600, "scope": "*"
            }))
        }
    }
    Mock::given(method("POST"))
        .and(path("/api/v1/access_token"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(header("authorization", "Bearer tok0"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Unauthorized", "error": 401})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(header("authorization", "Bearer tok1"))
        .respond_with(ok_json(listing(None, page_of(0, 3))))
        .expect(1)
        .mount(&server)
        .await;
    let posts = search(&source(&server), "AI", 10).await.unwrap();
    assert_eq!(posts.len(), 3);
}

#[tokio::test]
async fn bad_credentials_are_an_auth_error_naming_the_variables() {
    let server = MockServer::start().await;
    refuse_tokens(&server).await;
    let reddit = source(&server);
    let err = reddit.check_credentials().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::AuthFailed(m) if m.contains("REDDIT_CLIENT_SECRET")),
        "{err}"
    );
    let err = search(&reddit, "AI", 10).await.unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed(_)));
}

#[tokio::test]
async fn a_429_is_rate_limited_with_the_reset_and_later_requests_are_not_sent() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-used", "100")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "37"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let reddit = source(&server);
    for _ in 0..3 {
        match search(&reddit, "AI", 10).await {
            Err(SourceError::RateLimited {
                retry_after: Some(wait),
            }) => {
                assert!(
                    wait > Duration::from_secs(30) && wait <= Duration::from_secs(37),
                    "{wait:?}"
                )
            }
            other => panic!("expected rate limited, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_budget_reddit_reports_is_shared_by_concurrent_searches() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-remaining", "2.0")
                .insert_header("x-ratelimit-reset", "50")
                .set_body_json(listing(None, page_of(0, 1))),
        )
        .mount(&server)
        .await;
    let reddit = Arc::new(source(&server));
    search(&reddit, "AI", 10).await.unwrap();
    let results = futures_join(reddit.clone(), 6).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(SourceError::RateLimited { .. })))
        .count();
    assert_eq!((ok, limited), (2, 4), "{results:?}");
    assert_eq!(search_requests(&server).await, 3);
}

async fn futures_join(
    reddit: Arc<RedditSource>,
    n: usize,
) -> Vec<Result<Vec<moodwire_core::Post>, SourceError>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let reddit = reddit.clone();
            tokio::spawn(async move { search(&reddit, "AI", 10).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ok_json(listing(None, page_of(0, 5))))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(search(&source(&server), "AI", 10).await.unwrap().len(), 5);
}

#[tokio::test]
async fn persistent_5xx_and_timeouts_give_up_after_bounded_retries() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let err = search(&source(&server), "AI", 10).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Unavailable(m) if m.contains("4 times")),
        "{err}"
    );

    let slow = MockServer::start().await;
    mount_token(&slow, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ok_json(listing(None, page_of(0, 1))).set_delay(Duration::from_secs(2)))
        .mount(&slow)
        .await;
    let started = std::time::Instant::now();
    let err = search(&source(&slow), "AI", 10).await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_json_is_a_bad_response_not_a_panic() {
    for body in [
        "{\"kind\": \"Listing\", \"data\": {\"children\": [",
        "<html>Our CDN was unable to reach our servers</html>",
        "[]",
        "{}",
    ] {
        let server = MockServer::start().await;
        mount_token(&server, "tok", 1).await;
        Mock::given(method("GET"))
            .and(path("/search"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let err = search(&source(&server), "AI", 10).await.unwrap_err();
        assert!(matches!(err, SourceError::BadResponse(_)), "{body}: {err}");
    }
}

#[tokio::test]
async fn missing_fields_removed_posts_unicode_and_duplicates() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    let children = vec![
        post(
            "u1",
            1_700_000_300.0,
            "Café ☕ — I'm so happy 😊🎉",
            "日本語のテキストも",
        ),
        post("r1", 1_700_000_200.0, "Title survives", "[removed]"),
        json!({"kind": "t3", "data": {"id": "m1", "created_utc": 1_700_000_100, "title": "only the basics"}}),
        json!({"kind": "t3", "data": {"title": "no id, no time"}}),
        json!({"kind": "t3", "data": {"id": "d1", "created_utc": 1.0, "title": "", "selftext": "[deleted]"}}),
        json!({"kind": "t1", "data": {"id": "c1", "created_utc": 1.0, "body": "a comment, not a link"}}),
        post("u1", 1_700_000_300.0, "duplicate", ""),
    ];
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(header_exists("authorization"))
        .respond_with(ok_json(listing(None, children)))
        .mount(&server)
        .await;
    let posts = search(&source(&server), "AI", 100).await.unwrap();
    let ids: Vec<_> = posts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["u1", "r1", "m1"]);
    assert_eq!(posts[0].title, "Café ☕ — I'm so happy 😊🎉");
    assert_eq!(
        posts[0].text(),
        "Café ☕ — I'm so happy 😊🎉\n日本語のテキストも"
    );
    assert_eq!(posts[1].text(), "Title survives");
    assert_eq!(posts[2].author, "[deleted]");
}

#[tokio::test]
async fn an_unreachable_reddit_fails_fast() {
    // A port nobody listens on: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = RedditConfig::new(
        Some("id"),
        Some(Secret::new("secret")),
        Some(USER_AGENT),
        &format!("http://{addr}/api/v1/access_token"),
        &format!("http://{addr}"),
    )
    .unwrap();
    config.retry_base_delay = Duration::from_millis(5);
    let started = std::time::Instant::now();
    let err = search(&RedditSource::new(config).unwrap(), "AI", 10)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_cursor_that_never_ends_is_cut_off() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ok_json(listing(Some("t3_again"), page_of(0, 1))))
        .mount(&server)
        .await;
    let posts = search(&source(&server), "AI", 10).await.unwrap();
    assert_eq!(posts.len(), 1, "the same post on every page counts once");
    assert_eq!(search_requests(&server).await, 6, "1 page needed + 5 spare");
}

/// A refresh stops paging at the first page that reaches a post it already knows:
/// with 30 new posts on top, one call instead of three; with none new, one call too.
#[tokio::test]
async fn a_refresh_stops_at_the_first_known_post() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    let page = |after: Option<&'static str>, body: Value| {
        let mock = Mock::given(method("GET")).and(path("/search"));
        let mock = match after {
            Some(a) => mock.and(query_param("after", a)),
            None => mock.and(query_param_is_missing("after")),
        };
        mock.respond_with(ok_json(body))
    };
    page(None, listing(Some("t3_p99"), page_of(0, 100)))
        .mount(&server)
        .await;
    page(Some("t3_p99"), listing(Some("t3_p199"), page_of(100, 100)))
        .mount(&server)
        .await;
    page(Some("t3_p199"), listing(None, page_of(200, 100)))
        .mount(&server)
        .await;
    let reddit = source(&server);
    let q = question("AI", 250);
    // Known: everything from p30 on (an earlier answer, before p0..p29 were posted).
    let known: std::collections::HashSet<String> = (30..300).map(|i| format!("p{i}")).collect();
    let newer = reddit
        .search_newer(&q, &known, &WorkSlot::unbounded())
        .await
        .unwrap()
        .expect("Reddit can stop early");
    assert!(newer.reached_known);
    assert_eq!(newer.posts.len(), 30);
    assert_eq!(newer.posts[0].id, "p0");
    assert_eq!(search_requests(&server).await, 1, "one call");
    // Nothing new: still one call, and no post.
    let all: std::collections::HashSet<String> = (0..300).map(|i| format!("p{i}")).collect();
    let nothing = reddit
        .search_newer(&q, &all, &WorkSlot::unbounded())
        .await
        .unwrap()
        .unwrap();
    assert!(nothing.reached_known && nothing.posts.is_empty());
    assert_eq!(search_requests(&server).await, 2);
    // Nothing known: pages as a full search does.
    let none = std::collections::HashSet::new();
    let full = reddit
        .search_newer(&q, &none, &WorkSlot::unbounded())
        .await
        .unwrap()
        .unwrap();
    assert!(!full.reached_known);
    assert_eq!(full.posts.len(), 250);
    assert_eq!(search_requests(&server).await, 5);
}

/// A question limited to subreddits and a window searches the multireddit with
/// `restrict_sr=1` and `t`, keeps only posts inside the window (Reddit does not promise
/// that `t` applies to `sort=new`), and stops paging at the first page that reaches
/// past it.
#[tokio::test]
async fn subreddits_and_a_window_search_the_multireddit_and_stop_at_the_window() {
    let server = MockServer::start().await;
    mount_token(&server, "tok", 1).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let hours_ago = |h: f64| now - h * 3600.0;
    let in_subreddit = |subreddit: &str, id: String, hours: f64| {
        let mut item = post(&id, hours_ago(hours), "Tesla news", "");
        item["data"]["subreddit"] = json!(subreddit);
        item
    };
    // Page 1: all within the day, one from a subreddit not asked for (dropped). Page 2:
    // reaches past the day. A third page must not be asked for.
    let mut first: Vec<Value> = (0..99)
        .map(|i| in_subreddit("stocks", format!("a{i}"), 0.1 * f64::from(i)))
        .collect();
    first.push(in_subreddit("technology", "elsewhere".into(), 1.0));
    let second: Vec<Value> = (0..100)
        .map(|i| {
            let hours = if i < 50 {
                12.0 + 0.1 * f64::from(i)
            } else {
                f64::from(i) - 25.0
            };
            in_subreddit("WallStreetBets", format!("b{i}"), hours)
        })
        .collect();
    let multireddit = |after: Option<&'static str>, body: Value| {
        let mock = Mock::given(method("GET"))
            .and(path("/r/stocks+wallstreetbets/search"))
            .and(query_param("q", "tesla"))
            .and(query_param("sort", "new"))
            .and(query_param("restrict_sr", "1"))
            .and(query_param("t", "day"))
            .and(header("authorization", "Bearer tok"));
        let mock = match after {
            Some(a) => mock.and(query_param("after", a)),
            None => mock.and(query_param_is_missing("after")),
        };
        mock.respond_with(ok_json(body)).expect(1)
    };
    multireddit(None, listing(Some("t3_a99"), first))
        .mount(&server)
        .await;
    multireddit(Some("t3_a99"), listing(Some("t3_b99"), second))
        .mount(&server)
        .await;
    let scope = Scope {
        subreddits: Subreddits::parse(&["WallStreetBets", "stocks"]).unwrap(),
        window: Window::Day,
    };
    let posts = source(&server)
        .search(
            &question("tesla", 1000).within(scope),
            &WorkSlot::unbounded(),
        )
        .await
        .unwrap();
    assert_eq!(
        posts.len(),
        99 + 50,
        "every post of the two subreddits in the last day"
    );
    assert!(posts
        .iter()
        .all(|p| p.created_utc as f64 >= hours_ago(24.0) - 1.0));
    assert!(posts.iter().all(|p| p.subreddit != "technology"));
    assert_eq!(
        search_requests(&server).await,
        2,
        "no page after the one past the window"
    );
}
