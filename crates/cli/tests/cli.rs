//! The `moodwire` binary, run as a user runs it.

use moodwire_testkit::harness as common;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn moodwire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moodwire"))
        .args(args)
        .current_dir(repo(""))
        .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
        .output()
        .expect("moodwire runs")
}

fn test_split() -> PathBuf {
    repo("data/emotion/test.txt")
}

/// `moodwire eval` on the test split agrees with `experiment/evaluate.py` (Python
/// onnxruntime, the same library) run now on this machine: INT8 kernels differ between
/// CPUs (AVX2, AVX-512 VNNI), so a reference recorded on another machine would not do.
/// `make test` points MOODWIRE_TEST_PYTHON at a Python with the benchmark packages.
#[test]
fn eval_matches_the_python_reference_on_the_test_split() {
    let python = std::env::var("MOODWIRE_TEST_PYTHON").expect(
        "MOODWIRE_TEST_PYTHON is not set: run `make test` (it builds .venv-bench and sets it)",
    );
    let scratch = common::isolated_data_dir();
    std::fs::create_dir_all(&scratch).unwrap();
    let (rust_labels, python_labels) = (scratch.join("rust.txt"), scratch.join("python.txt"));
    let python_metrics = scratch.join("python.json");
    let reference = Command::new(python)
        .args([
            "experiment/evaluate.py",
            "--model-dir",
            "models/emotion",
            "--suites",
            "test",
        ])
        .arg("--out")
        .arg(&python_metrics)
        .arg("--predictions")
        .arg(&python_labels)
        .current_dir(repo(""))
        .output()
        .expect("the Python reference runs");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let out = moodwire(&[
        "eval",
        test_split().to_str().unwrap(),
        "--json",
        "--predictions",
        rust_labels.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = |path: &PathBuf| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let (rust, python) = (lines(&rust_labels), lines(&python_labels));
    assert_eq!(rust.len(), 2000);
    assert_eq!(rust.len(), python.len());
    let agree = rust.iter().zip(&python).filter(|(a, b)| a == b).count();
    assert!(
        agree as f64 / rust.len() as f64 >= 0.999,
        "argmax agreement {agree}/2000"
    );

    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(&python_metrics).unwrap()).unwrap();
    let model = report["model"].as_str().unwrap();
    let python_test = &reference[model]["test"];
    assert!(python_test.is_object(), "no Python result for {model}");
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - python_test["accuracy"].as_f64().unwrap()).abs() <= 0.001,
        "accuracy {accuracy}"
    );
    let macro_f1 = report["macro_f1"].as_f64().unwrap();
    assert!(
        (macro_f1 - python_test["macro_f1"].as_f64().unwrap()).abs() <= 0.002,
        "macro-F1 {macro_f1}"
    );
}

#[test]
fn classify_writes_one_json_line_per_input_line() {
    let input = std::env::temp_dir().join(format!("moodwire-classify-{}.txt", std::process::id()));
    let long = "so happy ".repeat(1200);
    std::fs::write(&input, format!("I'm SO happy today!!! 😂\n\n日本語のテキスト\n{long}\nI am terrified of what comes next\n")).unwrap();
    let out = moodwire(&["classify", input.to_str().unwrap()]);
    std::fs::remove_file(&input).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        5,
        "empty, non-Latin and 10,000-character lines are classified too"
    );
    assert_eq!(lines[0]["text"], "I'm SO happy today!!! 😂");
    assert_eq!(lines[0]["label"], "joy");
    assert_eq!(lines[4]["label"], "fear");
    for line in &lines {
        let scores = line["scores"].as_object().unwrap();
        assert_eq!(scores.len(), 6);
        let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        assert_eq!(line["score"], scores[line["label"].as_str().unwrap()]);
    }
}

#[test]
fn invalid_utf8_is_a_clear_error_with_the_line_number() {
    let input = std::env::temp_dir().join(format!("moodwire-bad-{}.txt", std::process::id()));
    std::fs::write(&input, b"fine line\nbad \xff byte\n").unwrap();
    let out = moodwire(&["classify", input.to_str().unwrap()]);
    std::fs::remove_file(&input).ok();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2 is not valid UTF-8"), "{stderr}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = moodwire(&["analyze", "   "]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyword must not be blank"));
    let out = moodwire(&["analyze", "AI", "--limit", "5000"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit must be between 1 and 1000"));
    let out = moodwire(&["analyze", "AI", "--examples", "6"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("examples must be between 0 and 5"));
    let out = moodwire(&["analyze", "AI", "--subreddit", "r/stocks"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid --subreddit") && stderr.contains("\"r/stocks\""),
        "{stderr}"
    );
    let out = moodwire(&["analyze", "AI", "--window", "fortnight"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("[possible values: hour, day, week, month, year, all]"));
    let out = moodwire(&["eval", "/nonexistent/file.txt"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/file.txt"));
}

#[test]
fn a_missing_model_folder_names_the_problem() {
    let out = moodwire(&["classify", "--model", "/nonexistent/model"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot open the model folder /nonexistent/model"));
}

#[test]
fn a_missing_onnx_runtime_names_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_moodwire"))
        .args(["classify"])
        .current_dir(repo(""))
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("make setup") && stderr.contains("ORT_DYLIB_PATH"),
        "{stderr}"
    );
}

#[test]
fn analyze_prints_the_api_body_and_writes_the_plot() {
    let plot = std::env::temp_dir().join(format!("moodwire-plot-{}.png", std::process::id()));
    let out = moodwire(&[
        "analyze",
        "climate",
        "--limit",
        "40",
        "--examples",
        "1",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["keyword"], "climate");
    assert_eq!(body["count"], 40);
    assert_eq!(body["agg"].as_array().unwrap().len(), 6);
    assert_eq!(body["posts_source"], "sample");
    let top = &body["agg"][0];
    assert_eq!(top["examples"].as_array().unwrap().len(), 1, "{top}");
    assert_eq!(top["examples"][0]["label"], top["label"]);
    let png = std::fs::read(&plot).unwrap();
    std::fs::remove_file(&plot).ok();
    assert!(png.starts_with(b"\x89PNG"));
}

#[test]
fn analyze_takes_subreddits_and_a_window() {
    let out = moodwire(&[
        "analyze",
        "work",
        "--limit",
        "500",
        "--subreddit",
        "RemoteWork",
        "--subreddit",
        "jobs",
        "--window",
        "month",
        "--examples",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["subreddits"].clone(), body["window"].clone()),
        (json!(["jobs", "remotework"]), json!("month"))
    );
    let count = body["count"].as_u64().unwrap();
    assert!(
        count > 0 && count < 100,
        "fewer than in all subreddits over all time: {count}"
    );
    for example in body["agg"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["examples"].as_array().unwrap())
    {
        let subreddit = example["subreddit"].as_str().unwrap().to_lowercase();
        assert!(
            ["jobs", "remotework"].contains(&subreddit.as_str()),
            "{example}"
        );
    }
}

/// SIGTERM stops accepting connections but lets an in-flight request finish.
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(repo(""))
        .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
        // tower_http's debug line "started processing request" says the request is in flight.
        .env("RUST_LOG", "moodwire=info,tower_http=debug")
        // What is tested is that the request finishes, not how long the grace is: the
        // analysis runs niced, and beside the suite's eval tests on 2 cores it has taken
        // longer than the default 10 s.
        .env("MOODWIRE_SHUTDOWN_GRACE_SECS", "120")
        .env("NO_COLOR", "1");
    let (mut server, address, log) = common::spawn_server(command);
    let request_started = move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while let Ok(line) = log.recv_timeout(deadline - std::time::Instant::now()) {
            if line.contains("started processing request") {
                return;
            }
        }
        panic!("the request never reached the server");
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let request = tokio::spawn(
            reqwest::Client::new()
                .post(format!("http://{address}/analyze"))
                .header("content-type", "application/json")
                .body(r#"{"keyword": "AI", "limit": 1000, "return_plot": true}"#)
                .send(),
        );
        tokio::task::spawn_blocking(request_started).await.unwrap();
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        request
            .await
            .unwrap()
            .expect("the in-flight request is answered")
            .status()
    });
    assert_eq!(status, 200);
    let exit = server.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

/// `MOODWIRE_API_KEYS` (environment only) guards the API; the keys never reach the log.
#[test]
fn api_keys_from_the_environment_guard_the_api_and_stay_out_of_the_log() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(repo(""))
        .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
        .env("MOODWIRE_API_KEYS", "sekrit-key-1, sekrit-key-2")
        .env("MOODWIRE_RATE_LIMIT_PER_MINUTE", "600")
        .env("RUST_LOG", "moodwire=debug,info")
        .env("NO_COLOR", "1");
    let (mut server, address, log) = common::spawn_server(command);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (open, closed, allowed) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let status = |request: reqwest::RequestBuilder| async move {
            request.send().await.unwrap().status().as_u16()
        };
        let body = r#"{"keyword": "AI", "limit": 5, "return_plot": false}"#;
        (
            status(client.get(format!("http://{address}/healthz"))).await,
            status(
                client
                    .post(format!("http://{address}/analyze"))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await,
            status(
                client
                    .post(format!("http://{address}/analyze"))
                    .bearer_auth("sekrit-key-2")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await,
        )
    });
    assert_eq!((open, closed, allowed), (200, 401, 200));
    server.kill().unwrap();
    server.wait().unwrap();
    let logged: Vec<String> = log.try_iter().collect();
    assert!(
        logged.iter().any(|l| l.contains("api_keys=2")),
        "{logged:?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("sekrit")),
        "a key was logged"
    );
}

/// `moodwire warm` on a quiet machine refreshes the seed keywords (the one-shot
/// command takes a real CPU reading first; here the reading file makes it quiet).
#[test]
fn a_warm_cycle_on_a_quiet_machine_refreshes_the_seeds() {
    let data = common::isolated_data_dir();
    std::fs::create_dir_all(&data).unwrap();
    let (cpu, seeds) = (data.join("cpu"), data.join("seeds.txt"));
    std::fs::write(&cpu, "5").unwrap();
    std::fs::write(&seeds, "# two seeds\nclimate\nbitcoin\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_moodwire"))
        .args(["warm"])
        .current_dir(repo(""))
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BROKERS")
        .env("MOODWIRE_SOURCE", "sample")
        .env("MOODWIRE_DATA_DIR", &data)
        .env("MOODWIRE_CPU_READING_FILE", &cpu)
        .env("MOODWIRE_WARM_SEEDS", &seeds)
        .env("MOODWIRE_WARM_PACE_SECS", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped_busy"], false, "{report}");
    assert_eq!(
        report["refreshed"],
        serde_json::json!(["climate", "bitcoin"]),
        "{report}"
    );
}

/// An error chain names each cause once.
#[test]
fn a_missing_dump_is_named_once_with_its_cause() {
    let out = moodwire(&["analyze", "AI", "--source", "dump:/no/such/file.zst"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the dump at /no/such/file.zst"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

/// With the store unreachable, the server stays ready (analyses do not need it) and
/// says so in /readyz.
#[test]
fn readiness_reports_an_unreachable_store() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moodwire"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(repo(""))
        .env_remove("REDIS_URL")
        .env_remove("KAFKA_BROKERS")
        .env("MOODWIRE_SOURCE", "sample")
        .env("MOODWIRE_DATA_DIR", common::isolated_data_dir())
        .env("DATABASE_URL", "postgres://moodwire@127.0.0.1:1/nowhere")
        .env("NO_COLOR", "1");
    let (mut server, address, _log) = common::spawn_server(command);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ready: Value = runtime.block_on(async {
        // The first connection attempt fails within its timeout; then it is reported.
        for _ in 0..50 {
            let ready: Value = reqwest::get(format!("http://{address}/readyz"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready["store"] != "unreachable: connecting" {
                return ready;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("the store's state was never reported");
    });
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let store = ready["store"].as_str().unwrap();
    assert!(store.starts_with("unreachable: "), "{ready}");
    assert!(store.contains("PostgreSQL"), "{ready}");
    assert!(
        !store.contains("moodwire@"),
        "no credentials or URL in /readyz: {ready}"
    );
    assert_eq!(ready["backlog"]["events"], 0, "{ready}");
}

/// `moodwire eval --suite` runs the whole robustness suite with calibration errors.
#[test]
fn eval_runs_the_robustness_suite() {
    let out = moodwire(&["eval", "--suite", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let suites = report["suites"].as_array().unwrap();
    let names: Vec<&str> = suites
        .iter()
        .map(|s| s["suite"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "validation",
            "test",
            "validation_cue_free",
            "test_cue_free",
            "realistic_dev",
            "realistic_test"
        ]
    );
    for suite in suites {
        let ece = suite["ece"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&ece), "{suite}");
        let parts = suite["parts"].as_array().unwrap();
        let pooled: u64 = parts.iter().map(|p| p["n"].as_u64().unwrap()).sum();
        assert_eq!(pooled, suite["n"].as_u64().unwrap());
    }
    assert_eq!(
        suites[3]["parts"].as_array().unwrap().len(),
        4,
        "four cue-free variants"
    );
    assert!(
        suites[5]["n"].as_u64().unwrap() >= 216,
        "the realistic test posts"
    );
}
