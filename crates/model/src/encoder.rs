use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::normalize::normalize;
use crate::{ModelConfig, ModelError};

/// Text -> token ids, exactly as the model was trained: normalization,
/// WordPiece, truncation to `max_length` (padding happens per batch): the first
/// tokens, or, for models trained so (`truncation_head`), the first and the last,
/// since a self-post's title and its ending carry most of its emotion.
pub struct Encoder {
    tokenizer: Tokenizer,
    normalize: bool,
    /// Characters kept before tokenizing. Past `max_length * 32` characters text
    /// cannot reach the model anyway; cutting first bounds the work and memory a
    /// huge post costs. `experiment/evaluate.py` cuts the same way.
    max_chars: usize,
    max_length: usize,
    /// `Some(head)`: keep the first `head` tokens of the text and its last ones.
    truncation_head: Option<usize>,
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
        // Head + tail truncation is done on the ids (the tokenizer only cuts one end).
        let truncation = config.truncation_head.is_none().then(|| TruncationParams {
            max_length: config.max_length,
            ..TruncationParams::default()
        });
        tokenizer
            .with_truncation(truncation)
            .map_err(|e| invalid(e.to_string()))?;
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .unwrap_or(0);
        Ok(Encoder {
            tokenizer,
            normalize: config.normalize,
            max_chars: config.max_length * 32,
            max_length: config.max_length,
            truncation_head: config.truncation_head,
            pad_id,
        })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The most tokens a text becomes.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let prepared = if self.normalize {
            normalize(text)
        } else {
            text.to_string()
        };
        let cut = self.cut(&prepared);
        let encoding = self
            .tokenizer
            .encode_fast(cut.as_ref(), true)
            .map_err(|e| ModelError::Inference(format!("tokenization failed: {e}")))?;
        Ok(self.head_tail(encoding.get_ids()))
    }

    /// At most `max_chars` characters: the start, or the first and last halves (as
    /// `experiment/common.py`'s `cut_text`).
    fn cut<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let Some((end, _)) = text.char_indices().nth(self.max_chars) else {
            return text.into();
        };
        if self.truncation_head.is_none() {
            return text[..end].into();
        }
        let half = self.max_chars / 2;
        let head_end = text.char_indices().nth(half).map_or(text.len(), |(i, _)| i);
        let chars = text.chars().count();
        let tail_start = text
            .char_indices()
            .nth(chars - half)
            .map_or(text.len(), |(i, _)| i);
        format!("{} {}", &text[..head_end], &text[tail_start..]).into()
    }

    /// `[CLS] ... [SEP]` cut to `max_length` keeping both ends (as `head_tail` in
    /// `experiment/common.py`); ids already cut by the tokenizer pass through.
    fn head_tail(&self, ids: &[u32]) -> Vec<u32> {
        let Some(head) = self.truncation_head else {
            return ids.to_vec();
        };
        if ids.len() <= self.max_length {
            return ids.to_vec();
        }
        let body = &ids[1..ids.len() - 1];
        let tail = self.max_length - 2 - head;
        let mut out = Vec::with_capacity(self.max_length);
        out.push(ids[0]);
        out.extend_from_slice(&body[..head]);
        out.extend_from_slice(&body[body.len() - tail..]);
        out.push(ids[ids.len() - 1]);
        out
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
    fn head_and_tail_truncation_keeps_both_ends_of_a_long_text() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/emotion");
        let mut config = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        config.truncation_head = Some(64);
        let e = Encoder::from_file(&dir.join("tokenizer.json"), &config).unwrap();
        let start = e.encode("awful morning").unwrap();
        let end = e.encode("but it ended great").unwrap();
        let long = format!("awful morning {} but it ended great", "word ".repeat(500));
        let ids = e.encode(&long).unwrap();
        assert_eq!(ids.len(), 128);
        assert_eq!(
            &ids[..start.len() - 1],
            &start[..start.len() - 1],
            "the head"
        );
        assert_eq!(&ids[128 - (end.len() - 1)..], &end[1..], "the tail");
        // Short texts are untouched; huge ones keep their last characters too.
        assert_eq!(e.encode("awful morning").unwrap(), start);
        let huge = format!("{} but it ended great", "word ".repeat(5_000));
        assert_eq!(
            &e.encode(&huge).unwrap()[128 - (end.len() - 1)..],
            &end[1..]
        );
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
