//! Model versions in S3-compatible object storage: `s3://bucket/prefix/` holds the
//! three files of a model folder. A replica downloads them once into a local cache,
//! checks the weights against the SHA-256 in `config.json`, and loads them from there.
//!
//! Endpoint, region and keys come from the standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use crate::model_dir::sha256_file;
use crate::ModelDir;

/// `s3://bucket/prefix`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing slashes; may be empty.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = ModelStoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelStoreError::BadUrl(s.to_string());
        let rest = s.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        let prefix = prefix.trim_matches('/');
        if !bucket_ok
            || prefix
                .split('/')
                .any(|p| p == ".." || (p.is_empty() && !prefix.is_empty()))
        {
            return Err(bad());
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl S3Location {
    fn object(&self, file: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(file)
        } else {
            ObjectPath::from(format!("{}/{file}", self.prefix))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    #[error("{0:?} is not a model location of the form s3://bucket/prefix")]
    BadUrl(String),
    #[error("cannot configure S3 access (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): {0}")]
    Config(object_store::Error),
    #[error("{location}: {cause}")]
    Object {
        location: String,
        cause: object_store::Error,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{location}/config.json: {reason}")]
    BadConfig { location: String, reason: String },
    #[error(
        "{location}/model.onnx does not match its config.json: SHA-256 {got}, expected {expected}"
    )]
    Checksum {
        location: String,
        expected: String,
        got: String,
    },
    #[error(transparent)]
    Model(#[from] crate::ModelError),
}

const FILES_DATA_FIRST: [&str; 3] = [
    ModelDir::TOKENIZER_FILE,
    ModelDir::MODEL_FILE,
    ModelDir::CONFIG_FILE,
];

fn store(location: &S3Location) -> Result<AmazonS3, ModelStoreError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        // A local S3 (MinIO, SeaweedFS) speaks plain HTTP on loopback.
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    builder.build().map_err(ModelStoreError::Config)
}

/// Downloads the model at `location` into `cache_root` (unless the cached copy has the
/// same weights) and returns the local folder.
pub async fn fetch(location: &S3Location, cache_root: &Path) -> Result<PathBuf, ModelStoreError> {
    let store = store(location)?;
    let local = cache_root.join(&location.bucket).join(&location.prefix);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelStoreError::Io {
            path,
            cause: source,
        }
    };
    std::fs::create_dir_all(&local).map_err(io(&local))?;

    let config = get(&store, location, ModelDir::CONFIG_FILE).await?;
    let expected = expected_sha256(location, &config)?;
    let cached_model = local.join(ModelDir::MODEL_FILE);
    let cached = cached_model.exists()
        && local.join(ModelDir::TOKENIZER_FILE).exists()
        && sha256_file(&cached_model)? == expected;
    if cached {
        tracing::info!(%location, dir = %local.display(), "model already in the local cache");
    } else {
        for file in [ModelDir::TOKENIZER_FILE, ModelDir::MODEL_FILE] {
            let bytes = get(&store, location, file).await?;
            let partial = local.join(format!("{file}.partial"));
            std::fs::write(&partial, &bytes).map_err(io(&partial))?;
            if file == ModelDir::MODEL_FILE {
                let got = sha256_file(&partial)?;
                if got != expected {
                    std::fs::remove_file(&partial).ok();
                    return Err(ModelStoreError::Checksum {
                        location: location.to_string(),
                        expected,
                        got,
                    });
                }
            }
            let target = local.join(file);
            std::fs::rename(&partial, &target).map_err(io(&target))?;
        }
        tracing::info!(%location, dir = %local.display(), "model downloaded and verified");
    }
    // The config goes last: a folder with a config always has the weights it names.
    let config_path = local.join(ModelDir::CONFIG_FILE);
    std::fs::write(&config_path, &config).map_err(io(&config_path))?;
    Ok(local)
}

/// Uploads the model folder `dir` to `location`, weights first and config last, so a
/// reader never sees a config without its weights. The uploaded config carries the
/// weights' SHA-256 (added when the folder's config lacks it; a wrong one is refused).
pub async fn push(dir: &Path, location: &S3Location) -> Result<String, ModelStoreError> {
    let model = ModelDir::open(dir)?;
    let store = store(location)?;
    let sha256 = sha256_file(&dir.join(ModelDir::MODEL_FILE))?;
    let config_path = dir.join(ModelDir::CONFIG_FILE);
    let config_bytes = std::fs::read(&config_path).map_err(|source| ModelStoreError::Io {
        path: config_path.clone(),
        cause: source,
    })?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&config_bytes).map_err(|e| ModelStoreError::BadConfig {
            location: dir.display().to_string(),
            reason: e.to_string(),
        })?;
    match config.get("sha256").and_then(|v| v.as_str()) {
        Some(stated) if stated != sha256 => {
            return Err(ModelStoreError::Checksum {
                location: dir.display().to_string(),
                expected: stated.to_string(),
                got: sha256,
            })
        }
        Some(_) => {}
        None => {
            config["sha256"] = serde_json::Value::String(sha256.clone());
        }
    }
    for file in FILES_DATA_FIRST {
        let bytes = if file == ModelDir::CONFIG_FILE {
            serde_json::to_vec_pretty(&config).expect("a JSON value serializes")
        } else {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|source| ModelStoreError::Io {
                path,
                cause: source,
            })?
        };
        store
            .put(&location.object(file), PutPayload::from(bytes))
            .await
            .map_err(|source| ModelStoreError::Object {
                location: format!("{location}/{file}"),
                cause: source,
            })?;
    }
    Ok(model.version)
}

async fn get(
    store: &AmazonS3,
    location: &S3Location,
    file: &str,
) -> Result<bytes::Bytes, ModelStoreError> {
    let failed = |source| ModelStoreError::Object {
        location: format!("{location}/{file}"),
        cause: source,
    };
    store
        .get(&location.object(file))
        .await
        .map_err(failed)?
        .bytes()
        .await
        .map_err(failed)
}

fn expected_sha256(location: &S3Location, config: &[u8]) -> Result<String, ModelStoreError> {
    let bad = |reason: &str| ModelStoreError::BadConfig {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    let value: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| bad(&e.to_string()))?;
    let sha = value
        .get("sha256")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            bad("no `sha256` of model.onnx (upload models with `moodwire model push`)")
        })?;
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("`sha256` is not a SHA-256 hex digest"));
    }
    Ok(sha.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l: S3Location = "s3://models/emotion/v2/".parse().unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("models", "emotion/v2")
        );
        assert_eq!(l.object("config.json").as_ref(), "emotion/v2/config.json");
        let root: S3Location = "s3://models".parse().unwrap();
        assert_eq!(root.object("model.onnx").as_ref(), "model.onnx");
        for bad in [
            "models/emotion",
            "s3://",
            "s3://UPPER/x",
            "s3://b/../x",
            "s3://b/a//c",
            "http://b/x",
        ] {
            assert!(bad.parse::<S3Location>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn configs_must_state_a_sha256() {
        let l: S3Location = "s3://b/p".parse().unwrap();
        let ok = format!("{{\"sha256\": \"{}\"}}", "A".repeat(64));
        assert_eq!(expected_sha256(&l, ok.as_bytes()).unwrap(), "a".repeat(64));
        for bad in ["{}", "{\"sha256\": \"abc\"}", "not json"] {
            assert!(expected_sha256(&l, bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
