//! The emotion classifier: text normalization, tokenization and ONNX Runtime
//! inference behind the core's [`moodwire_core::ports::Classifier`] port.
//!
//! - [`ModelDir`] loads a model folder (`model.onnx`, `tokenizer.json`, `config.json`).
//! - [`Engine`] runs length-bucketed batches on one ONNX Runtime session (blocking).
//! - [`Infer`] is the async façade: a bounded queue in front of a dedicated
//!   inference thread, so concurrent requests wait their turn instead of
//!   oversubscribing the CPU, and an abandoned request stops being computed.

mod config;
mod encoder;
mod engine;
mod infer;
pub mod metrics;
mod model_dir;
pub mod model_store;
pub mod normalize;
pub mod priority;
pub mod runtime;

use std::path::{Path, PathBuf};

pub use config::ModelConfig;
pub use encoder::Encoder;
pub use engine::{BatchDone, Engine, EngineOptions};
pub use infer::{Infer, InferOptions};
pub use model_dir::ModelDir;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "the ONNX Runtime library ({file}) was not found; run `make setup` in the moodwire repository \
         (it unpacks the pinned library into .ort/), or set ORT_DYLIB_PATH to its path. Searched: {searched}",
        file = runtime::ORT_LIBRARY_FILE,
        searched = .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    RuntimeMissing { searched: Vec<PathBuf> },
    #[error("{0}")]
    Runtime(String),
    #[error("cannot read {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("invalid model config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("invalid tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("cannot load the ONNX model {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }
}

/// Registers the help text of the metrics this crate records (call once, after the
/// recorder is installed).
pub fn describe_metrics() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "moodwire_inference_batch_size",
        "Texts in one inference batch."
    );
    describe_histogram!(
        "moodwire_inference_batch_seconds",
        "Seconds one inference batch took in ONNX Runtime."
    );
    describe_gauge!(
        "moodwire_inference_queue_tokens",
        "Tokens of the texts waiting for inference or in progress."
    );
    describe_gauge!(
        "moodwire_inference_throughput_tokens_per_second",
        "Tokens a second the inference thread gets through, averaged over recent batches."
    );
    describe_gauge!("moodwire_inference_expected_wait_seconds", "Seconds a new request would wait for the inference queued ahead of it, at the measured throughput.");
    describe_counter!("moodwire_inference_shed_total", "Requests admitted but answered 503 overloaded before inference: the queue ahead of them took longer than MOODWIRE_MAX_QUEUE_WAIT_SECS, the machine having slowed down since they were admitted.");
    describe_counter!("moodwire_inference_refused_total", "Requests refused at once because they would have waited past MOODWIRE_MAX_QUEUE_WAIT_SECS (503 overloaded).");
}
