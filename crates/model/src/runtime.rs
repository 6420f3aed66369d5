//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is downloaded at build time and
//! the library is opened at run time. `make setup` (run by `make run` and
//! `make test`) unpacks the pinned `libonnxruntime.so.1.32.0` from the PyPI
//! wheel `onnxruntime==1.32.0` into `.ort/` at the repository root.
//!
//! Search order, first hit wins:
//! 1. `ORT_DYLIB_PATH` (a file)
//! 2. the executable's folder, then each folder above it, looking in `<dir>/.ort/`
//!    and `<dir>/` (so `target/release/moodwire` finds the repository's `.ort/`,
//!    and an installed binary finds a library placed beside it)
//! 3. `.ort/` under the current directory

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::ModelError;

pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| {
            let library = locate_library().map_err(|e| e.to_string())?;
            tracing::debug!(library = %library.display(), "loading ONNX Runtime");
            ort::init_from(&library)
                .map_err(|e| {
                    format!(
                        "could not load ONNX Runtime from {}: {e}",
                        library.display()
                    )
                })?
                .with_name("moodwire")
                .build()
                .map_err(|e| format!("could not start ONNX Runtime: {e}"))
        })
        .clone()
        .map_err(ModelError::Runtime)
}

/// Where the library is, by the documented search order.
pub fn locate_library() -> Result<PathBuf, ModelError> {
    let candidates = candidate_paths();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(ModelError::RuntimeMissing {
            searched: candidates,
        })
}

fn candidate_paths() -> Vec<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return vec![PathBuf::from(path)];
    }
    let mut paths = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        for dir in exe_dir.ancestors() {
            paths.push(dir.join(".ort").join(ORT_LIBRARY_FILE));
            paths.push(dir.join(ORT_LIBRARY_FILE));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        paths.push(cwd.join(".ort").join(ORT_LIBRARY_FILE));
    }
    paths
}
