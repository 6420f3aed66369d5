//! The dashboard: its API over the embedded SQLite store, its security headers, and
//! the page itself in a real browser (Debian's headless Chromium driven by
//! playwright-core; `scripts/services.sh install` installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moodwire_testkit::harness::{self, Server};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `moodwire serve` on the sample corpus with its own data folder, the embedded store,
/// and a CPU reading of 0 %, so the idle sync stores every analysis at once.
fn serve(env: &[(&str, &str)]) -> Server {
    let data = harness::isolated_data_dir();
    std::fs::create_dir_all(&data).unwrap();
    let cpu = data.join("cpu-reading");
    std::fs::write(&cpu, "0").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(repo())
        .env_remove("REDDIT_CLIENT_ID")
        .env_remove("KAFKA_BROKERS")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("MOODWIRE_API_KEYS")
        .env("MOODWIRE_SOURCE", "sample")
        .env("MOODWIRE_DATA_DIR", &data)
        .env("MOODWIRE_CPU_READING_FILE", &cpu)
        .env("MOODWIRE_WARM_MAX", "0")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    Server::spawn(command)
}

async fn analyze(client: &reqwest::Client, base: &str, keyword: &str, limit: u32) {
    analyze_body(
        client,
        base,
        json!({"keyword": keyword, "limit": limit, "return_plot": false}),
    )
    .await;
}

async fn analyze_body(client: &reqwest::Client, base: &str, body: Value) {
    let response = client
        .post(format!("{base}/analyze"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// Waits until the store lists `n` keywords (the idle sync has run).
async fn stored_keywords(client: &reqwest::Client, base: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client
            .get(format!("{base}/api/keywords"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        // 503 while the store is still being opened.
        if status == 200 && body["keywords"].as_array().unwrap().len() >= n {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not list {n} keywords within 60 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_history_api_reads_the_embedded_store_and_names_bad_parameters() {
    history_api_contract(serve(&[])).await;
}

#[tokio::test]
async fn the_history_api_reads_postgresql_alike() {
    let admin = std::env::var("MOODWIRE_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("MOODWIRE_TEST_DATABASE_URL is not set: run `make test`, or `scripts/services.sh up` and `set -a; . .services/env`")
    });
    let database = harness::fresh_database(&admin, "mw_dashboard").await;
    history_api_contract(serve(&[("DATABASE_URL", &database)])).await;
}

/// Three analyses of two keywords and one of a keyword in two subreddits over a
/// month, read back through every history endpoint.
async fn history_api_contract(server: Server) {
    let client = reqwest::Client::new();
    let base = &format!("http://{}", server.address);
    analyze(&client, base, "climate", 40).await;
    analyze(&client, base, "Climate", 30).await;
    analyze(&client, base, "bitcoin", 20).await;
    let scoped = json!({"keyword": "climate", "limit": 20, "return_plot": false,
        "subreddits": ["Environment", "weather"], "window": "month"});
    analyze_body(&client, base, scoped).await;
    let body = stored_keywords(&client, base, 3).await;
    assert_eq!(body["keywords"][0]["keyword"], "climate", "{body}");
    assert_eq!(body["keywords"][0]["analyses"], 2);
    assert_eq!(body["keywords"][0]["latest"]["count"], 30);
    assert_eq!(
        (
            body["keywords"][0]["subreddits"].clone(),
            body["keywords"][0]["window"].clone()
        ),
        (json!([]), json!("all"))
    );
    let series = &body["keywords"][1];
    assert_eq!(
        (
            series["keyword"].clone(),
            series["subreddits"].clone(),
            series["window"].clone()
        ),
        (
            json!("climate"),
            json!(["environment", "weather"]),
            json!("month")
        ),
        "{body}"
    );
    assert_eq!(series["analyses"], 1);
    let scoped_trend = get_json(
        &client,
        &format!("{base}/api/keywords/climate/trend?subreddits=weather,ENVIRONMENT&window=month"),
    )
    .await;
    assert_eq!(
        scoped_trend["points"].as_array().unwrap().len(),
        1,
        "{scoped_trend}"
    );
    assert_eq!(
        scoped_trend["points"][0]["analysis_id"],
        series["latest"]["analysis_id"]
    );
    let scoped_posts = get_json(&client, &format!("{base}/api/keywords/climate/posts?subreddits=environment&subreddits=weather&window=month")).await;
    for post in scoped_posts["analysis"]["posts"].as_array().unwrap() {
        assert!(
            ["environment", "weather"]
                .contains(&post["subreddit"].as_str().unwrap().to_lowercase().as_str()),
            "{post}"
        );
    }
    assert_eq!(
        body["keywords"][0]["latest"]["emotions"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let trend: Value = get_json(
        &client,
        &format!("{base}/api/keywords/CLIMATE/trend?points=5"),
    )
    .await;
    assert_eq!(trend["keyword"], "climate");
    assert_eq!(trend["points"].as_array().unwrap().len(), 2);

    let posts: Value = get_json(
        &client,
        &format!("{base}/api/keywords/bitcoin/posts?limit=5"),
    )
    .await;
    let listed = posts["analysis"]["posts"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed[0]["score"].as_f64().unwrap() <= listed[4]["score"].as_f64().unwrap());
    let nothing: Value =
        get_json(&client, &format!("{base}/api/keywords/never%20asked/posts")).await;
    assert_eq!(nothing["analysis"], Value::Null);

    for (path, code, field) in [
        ("/api/keywords?limit=0", "invalid_parameter", "limit"),
        ("/api/keywords?limit=lots", "invalid_type", "limit"),
        (
            "/api/keywords/ai/trend?points=501",
            "invalid_parameter",
            "points",
        ),
        ("/api/keywords/%20/posts", "invalid_keyword", "keyword"),
        ("/api/keywords/%FF/posts", "invalid_type", "keyword"),
        (
            "/api/keywords/ai/trend?window=fortnight",
            "invalid_window",
            "window",
        ),
        (
            "/api/keywords/ai/posts?subreddits=a",
            "invalid_subreddits",
            "subreddits",
        ),
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 422, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{path}: {error}");
        assert_eq!(error["error"]["field"], field, "{path}: {error}");
    }
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_without_a_key() {
    let server = serve(&[("MOODWIRE_API_KEYS", "secret-one")]);
    let client = reqwest::Client::new();
    let base = &format!("http://{}", server.address);
    for (path, content_type) in [
        ("/", "text/html"),
        ("/assets/dashboard.js", "text/javascript"),
        ("/assets/dashboard.css", "text/css"),
        ("/assets/chart.umd.min.js", "text/javascript"),
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path} needs no key: it holds no data"
        );
        let headers = response.headers();
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
    }
    let data = client
        .get(format!("{base}/api/keywords"))
        .send()
        .await
        .unwrap();
    assert_eq!(data.status(), 401, "the data behind the page needs the key");
    assert!(data.headers().contains_key("content-security-policy"));
    let with_key = client
        .get(format!("{base}/api/keywords"))
        .bearer_auth("secret-one")
        .send()
        .await
        .unwrap();
    assert_ne!(with_key.status(), 401);
}

/// The page in Chromium: type a keyword, submit, see the chart and the six shares;
/// the keyword comparison, trend and confidence charts; markup in a keyword stays
/// text; no console error or CSP violation. Screenshots land in e2e/screenshots/.
#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let script = repo().join("e2e/dashboard.mjs");
    assert!(
        repo().join("e2e/node_modules/playwright-core").is_dir() && Path::new(&chromium()).exists(),
        "the browser test needs Chromium and playwright-core: run `scripts/services.sh install`"
    );
    let server = serve(&[]);
    let client = reqwest::Client::new();
    let base = &format!("http://{}", server.address);
    // Two analyses of one keyword make a trend; markup makes sure it stays text.
    analyze(&client, base, "climate", 150).await;
    analyze(&client, base, "climate", 250).await;
    analyze(&client, base, "bitcoin", 100).await;
    analyze(&client, base, "<img src=x onerror=alert(1)>", 10).await;
    stored_keywords(&client, base, 3).await;

    let shots = repo().join("e2e/screenshots");
    let mut browser = Command::new("node")
        .arg(&script)
        .arg(base)
        .arg(&shots)
        .env("CHROMIUM", chromium())
        .spawn()
        .expect("node runs (Node.js 18 or later)");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = browser.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("the browser test took over 180 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status.success(),
        "the browser test failed (its output is above; see {}/failure.png)",
        shots.display()
    );
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}
