//! The model folder's `config.json`: labels, sequence length, version, normalization.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use moodwire_core::Emotion;

use crate::normalize::NORMALIZATION_VERSION;
use crate::ModelError;

/// Sequence length for configs that name none (a plain Hugging Face export).
const FALLBACK_MAX_LENGTH: usize = 128;

#[derive(Debug, Deserialize)]
struct RawConfig {
    id2label: BTreeMap<String, String>,
    max_length: Option<usize>,
    max_position_embeddings: Option<usize>,
    model_version: Option<String>,
    name: Option<String>,
    normalization_version: Option<u32>,
    temperature: Option<f32>,
    truncation_head: Option<usize>,
}

/// What the runtime needs to know about a model, checked at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// `labels[i]` is the emotion of logit `i`.
    pub labels: Vec<Emotion>,
    pub max_length: usize,
    /// `None` when config.json names no version; the loader then derives one from the weights.
    pub model_version: Option<String>,
    pub name: Option<String>,
    /// Whether texts go through [`crate::normalize`]: models trained by
    /// `experiment/` say so with `normalization_version`; other exports get raw text.
    pub normalize: bool,
    /// Logits are divided by this before the softmax (temperature scaling, fitted on
    /// validation by `experiment/calibrate.py`), so confidences are calibrated
    /// probabilities. 1 when config.json names none.
    pub temperature: f32,
    /// How a text longer than `max_length` tokens is cut: `Some(head)` keeps its first
    /// `head` tokens and its last ones (the model was trained so: `truncation_head` in
    /// config.json); `None`, its first ones.
    pub truncation_head: Option<usize>,
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let raw = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(&raw).map_err(|reason| ModelError::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let labels = labels_in_logit_order(&raw.id2label)?;
        let normalize = match raw.normalization_version {
            None => false,
            Some(NORMALIZATION_VERSION) => true,
            Some(other) => {
                return Err(format!(
                    "normalization_version {other} is not the one this build implements ({NORMALIZATION_VERSION}); \
                     use a moodwire release that matches the model"
                ))
            }
        };
        let max_length = raw
            .max_length
            .or(raw.max_position_embeddings.map(|m| m.min(512)))
            .unwrap_or(FALLBACK_MAX_LENGTH);
        if max_length < 2 {
            return Err(format!("max_length {max_length} leaves no room for text"));
        }
        if let Some(head) = raw.truncation_head {
            if head + 2 > max_length {
                return Err(format!(
                    "truncation_head {head} leaves no room in max_length {max_length}"
                ));
            }
        }
        let temperature = raw.temperature.unwrap_or(1.0);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(format!(
                "temperature must be a positive number (got {temperature})"
            ));
        }
        Ok(ModelConfig {
            labels,
            max_length,
            model_version: raw.model_version,
            name: raw.name,
            normalize,
            temperature,
            truncation_head: raw.truncation_head,
        })
    }
}

/// `id2label` must name each of the six emotions exactly once, with ids 0..6.
fn labels_in_logit_order(id2label: &BTreeMap<String, String>) -> Result<Vec<Emotion>, String> {
    let mut labels = vec![None; id2label.len()];
    for (id, label) in id2label {
        let index: usize = id
            .parse()
            .map_err(|_| format!("id2label key {id:?} is not a number"))?;
        let slot = labels
            .get_mut(index)
            .ok_or_else(|| format!("id2label ids must be 0..{}; got {index}", id2label.len()))?;
        *slot = Some(label.parse::<Emotion>().map_err(|e| e.to_string())?);
    }
    let labels: Vec<Emotion> = labels.into_iter().flatten().collect();
    let mut seen = labels.clone();
    seen.sort();
    seen.dedup();
    if labels.len() != Emotion::COUNT || seen.len() != Emotion::COUNT {
        return Err(format!(
            "id2label must name the six emotions (sadness, joy, love, anger, fear, surprise) once each; got {labels:?}"
        ));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"},
        "max_length": 128, "model_version": "m-1", "normalization_version": 1}"#;

    #[test]
    fn reads_our_config() {
        let c = ModelConfig::parse(OURS).unwrap();
        assert_eq!(c.labels, Emotion::ALL.to_vec());
        assert_eq!(c.max_length, 128);
        assert_eq!(c.model_version.as_deref(), Some("m-1"));
        assert!(c.normalize);
        assert_eq!(c.temperature, 1.0, "no temperature: the logits as they are");
        let calibrated = ModelConfig::parse(
            &OURS.replace("\"max_length\"", "\"temperature\": 1.5, \"max_length\""),
        )
        .unwrap();
        assert_eq!(calibrated.temperature, 1.5);
    }

    #[test]
    fn reads_a_plain_export_in_another_label_order() {
        let c = ModelConfig::parse(
            r#"{"id2label": {"0": "Joy", "1": "sadness", "2": "anger", "3": "fear", "4": "love", "5": "surprise"},
                "max_position_embeddings": 512}"#,
        )
        .unwrap();
        assert_eq!(c.labels[0], Emotion::Joy);
        assert_eq!(c.labels[4], Emotion::Love);
        assert_eq!(c.max_length, 512);
        assert_eq!(c.model_version, None);
        assert!(!c.normalize, "a foreign export gets raw text");
    }

    #[test]
    fn rejects_configs_that_cannot_work() {
        let bad = [
            r#"{"id2label": {"0": "LABEL_0", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}}"#,
            r#"{"id2label": {"0": "joy", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy"}}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "9": "surprise"}}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}, "normalization_version": 2}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}, "temperature": 0}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}, "max_length": 128, "truncation_head": 127}"#,
            r#"{"id2label": {"0": "sadness", "1": "joy", "2": "love", "3": "anger", "4": "fear", "5": "surprise"}, "temperature": -2.0}"#,
            r#"not json"#,
        ];
        for json in bad {
            assert!(ModelConfig::parse(json).is_err(), "accepted {json}");
        }
    }
}
