use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{ModelConfig, ModelError};

/// A model folder: `model.onnx`, `tokenizer.json` and `config.json`.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub config: ModelConfig,
    /// From config.json's `model_version`, else `<name>-<first 12 hex of the weights' SHA-256>`.
    pub version: String,
}

impl ModelDir {
    pub const MODEL_FILE: &'static str = "model.onnx";
    pub const TOKENIZER_FILE: &'static str = "tokenizer.json";
    pub const CONFIG_FILE: &'static str = "config.json";

    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref().to_path_buf();
        for file in [Self::MODEL_FILE, Self::TOKENIZER_FILE, Self::CONFIG_FILE] {
            let p = path.join(file);
            if !p.is_file() {
                return Err(ModelError::io(
                    &p,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "a model folder needs model.onnx, tokenizer.json and config.json",
                    ),
                ));
            }
        }
        let config = ModelConfig::from_file(&path.join(Self::CONFIG_FILE))?;
        let version = match &config.model_version {
            Some(v) => v.clone(),
            None => {
                let name = config.name.clone().unwrap_or_else(|| {
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "model".into())
                });
                format!(
                    "{name}-{}",
                    &sha256_file(&path.join(Self::MODEL_FILE))?[..12]
                )
            }
        };
        Ok(ModelDir {
            path,
            config,
            version,
        })
    }

    pub fn model_file(&self) -> PathBuf {
        self.path.join(Self::MODEL_FILE)
    }

    pub fn tokenizer_file(&self) -> PathBuf {
        self.path.join(Self::TOKENIZER_FILE)
    }
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}
