//! Models in S3-compatible storage: `moodwire model push`, then `MOODWIRE_MODEL=s3://...`,
//! against a real S3 server on loopback (SeaweedFS, started by scripts/services.sh).

use std::path::PathBuf;
use std::process::{Command, Output};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bucket() -> String {
    std::env::var("MOODWIRE_TEST_S3_BUCKET").expect(
        "MOODWIRE_TEST_S3_BUCKET is not set: run `make test`, or `scripts/services.sh up` and `set -a; . .services/env`",
    )
}

fn moodwire(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_moodwire"))
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "moodwire=info,warn")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_model_is_fetched_verified_cached_and_served() {
    let prefix = format!("emotion-{}", std::process::id());
    let location = format!("s3://{}/{prefix}", bucket());
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();

    let out = moodwire(&["model", "push", "models/emotion", &location], &[], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("models/emotion/config.json")).unwrap(),
    )
    .unwrap();
    let version = shipped["model_version"].as_str().unwrap();
    assert!(
        text(&out.stdout).contains(&format!("pushed {version}")),
        "{}",
        text(&out.stdout)
    );

    let env = [
        ("MOODWIRE_MODEL", location.as_str()),
        ("MOODWIRE_MODEL_CACHE", cache_dir),
    ];
    let out = moodwire(&["classify"], &env, "I am so happy today\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"label\":\"joy\""),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("downloaded and verified"),
        "{}",
        text(&out.stderr)
    );
    let again = moodwire(&["classify"], &env, "I am so happy today\n");
    assert!(again.status.success());
    assert!(
        text(&again.stderr).contains("already in the local cache"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(again.stdout, out.stdout);

    // Weights that do not match config.json's SHA-256 are refused.
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket())
        .with_endpoint(std::env::var("AWS_ENDPOINT_URL").unwrap())
        .with_allow_http(true)
        .build()
        .unwrap();
    store
        .put(
            &ObjectPath::from(format!("{prefix}/model.onnx")),
            b"not a model".to_vec().into(),
        )
        .await
        .unwrap();
    let fresh_cache = tempfile::tempdir().unwrap();
    let env = [
        ("MOODWIRE_MODEL", location.as_str()),
        ("MOODWIRE_MODEL_CACHE", fresh_cache.path().to_str().unwrap()),
    ];
    let out = moodwire(&["classify"], &env, "hello\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not match its config.json"),
        "{}",
        text(&out.stderr)
    );
    assert!(!fresh_cache
        .path()
        .join(format!("{}/{prefix}/model.onnx", bucket()))
        .exists());
}

#[test]
fn a_missing_model_or_a_bad_location_is_a_clear_error() {
    let missing = format!("s3://{}/no-such-model-{}", bucket(), std::process::id());
    let out = moodwire(
        &["classify"],
        &[("MOODWIRE_MODEL", missing.as_str())],
        "hi\n",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&missing) && stderr.contains("config.json"),
        "{stderr}"
    );

    let out = moodwire(
        &["model", "push", "models/emotion", "s3://Bad_Bucket/x"],
        &[],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("s3://bucket/prefix"),
        "{}",
        text(&out.stderr)
    );
}
