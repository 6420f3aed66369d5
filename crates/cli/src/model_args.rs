use std::path::PathBuf;

use anyhow::Context;
use moodwire_model::model_store::{self, S3Location};
use moodwire_model::{Engine, EngineOptions, ModelDir};

/// Which model to load and how to run it (shared by every command that classifies).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (model.onnx, tokenizer.json, config.json). A relative path is
    /// looked up in the current directory, then beside the executable's parent folders.
    #[arg(long, env = "MOODWIRE_MODEL", default_value = "models/emotion")]
    /// Or `s3://bucket/prefix` (uploaded with `moodwire model push`): downloaded once
    /// into --model-cache and checked against the SHA-256 in its config.json.
    pub model: String,
    /// Local copies of models from S3.
    #[arg(
        long,
        env = "MOODWIRE_MODEL_CACHE",
        default_value = "data/moodwire/models"
    )]
    pub model_cache: PathBuf,
    /// ONNX Runtime intra-op threads (0 = all cores).
    #[arg(long, env = "MOODWIRE_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Most texts in one inference batch.
    #[arg(long, env = "MOODWIRE_BATCH_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_size: u32,
    /// Most padded tokens in one inference batch (texts x longest text).
    #[arg(long, env = "MOODWIRE_BATCH_TOKENS", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub batch_tokens: u32,
}

impl ModelArgs {
    /// The model folder, downloading it first when it lives in S3.
    pub async fn open_async(&self) -> anyhow::Result<ModelDir> {
        let path = if self.model.starts_with("s3://") {
            let location: S3Location = self.model.parse()?;
            model_store::fetch(&location, &self.model_cache)
                .await
                .with_context(|| format!("cannot fetch the model {location}"))?
        } else {
            resolve(std::path::Path::new(&self.model))
        };
        ModelDir::open(&path)
            .with_context(|| format!("cannot open the model folder {}", path.display()))
    }

    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            intra_threads: self.threads,
            max_batch_size: self.batch_size as usize,
            max_batch_tokens: self.batch_tokens as usize,
            length_bucketing: true,
        }
    }

    pub async fn load_engine_async(&self) -> anyhow::Result<Engine> {
        let dir = self.open_async().await?;
        Ok(Engine::load(&dir, self.engine_options())?)
    }
}

/// A relative path as given when it exists, else the first match beside the
/// executable's ancestors (so `target/release/moodwire` run from anywhere finds
/// the repository's `models/`).
pub fn resolve(path: &std::path::Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .map(|dir| dir.join(path))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| path.to_path_buf())
}
