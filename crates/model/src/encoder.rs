use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::normalize::normalize;
use crate::{ModelConfig, ModelError};

/// Text -> token ids, exactly as the model was trained: normalization,
/// WordPiece, truncation to `max_length` (padding happens per batch).
pub struct Encoder {
    tokenizer: Tokenizer,
    normalize: bool,
    /// Characters kept before tokenizing. Past `max_length * 32` characters text
    /// cannot reach the model anyway; cutting first bounds the work and memory a
    /// huge post costs. `experiment/evaluate.py` cuts the same way.
    max_chars: usize,
    pad_id: u32,
}

impl Encoder {
    pub fn from_file(path: &Path, config: &ModelConfig) -> Result<Self, ModelError> {
        let invalid = |reason: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| invalid(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| invalid(e.to_string()))?;
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .unwrap_or(0);
        Ok(Encoder {
            tokenizer,
            normalize: config.normalize,
            max_chars: config.max_length * 32,
            pad_id,
        })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let prepared = if self.normalize {
            normalize(text)
        } else {
            text.to_string()
        };
        let cut = match prepared.char_indices().nth(self.max_chars) {
            Some((byte, _)) => &prepared[..byte],
            None => &prepared,
        };
        let encoding = self
            .tokenizer
            .encode_fast(cut, true)
            .map_err(|e| ModelError::Inference(format!("tokenization failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn bundled() -> Encoder {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/emotion");
        let config = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        Encoder::from_file(&dir.join("tokenizer.json"), &config).unwrap()
    }

    const CLS: u32 = 101;
    const SEP: u32 = 102;

    #[test]
    fn empty_and_unreadable_scripts_are_just_the_special_tokens() {
        let e = bundled();
        assert_eq!(e.encode("").unwrap(), [CLS, SEP]);
        assert_eq!(e.encode("日本語のテキスト العربية").unwrap(), [CLS, SEP]);
    }

    #[test]
    fn huge_text_is_truncated_to_max_length_keeping_the_separator() {
        let e = bundled();
        let ids = e.encode(&"word ".repeat(2_000)).unwrap();
        assert_eq!(ids.len(), 128);
        assert_eq!((ids[0], ids[127]), (CLS, SEP));
    }

    #[test]
    fn emoji_and_case_become_the_words_the_model_knows() {
        let e = bundled();
        assert_eq!(
            e.encode("SO happy 😂").unwrap(),
            e.encode("so happy laughing").unwrap()
        );
        assert_eq!(e.encode("I'm").unwrap(), e.encode("im").unwrap());
    }

    #[test]
    fn padding_is_the_vocabulary_pad_token() {
        assert_eq!(bundled().pad_id(), 0);
    }
}
