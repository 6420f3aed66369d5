use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The six emotions, in the index order of the data set and the model.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Sadness,
    Joy,
    Love,
    Anger,
    Fear,
    Surprise,
}

impl Emotion {
    pub const COUNT: usize = 6;
    pub const ALL: [Emotion; Emotion::COUNT] = [
        Emotion::Sadness,
        Emotion::Joy,
        Emotion::Love,
        Emotion::Anger,
        Emotion::Fear,
        Emotion::Surprise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Emotion::Sadness => "sadness",
            Emotion::Joy => "joy",
            Emotion::Love => "love",
            Emotion::Anger => "anger",
            Emotion::Fear => "fear",
            Emotion::Surprise => "surprise",
        }
    }

    /// Position in [`Emotion::ALL`] (and in every `[f32; 6]` of probabilities).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown emotion label {0:?} (expected one of sadness, joy, love, anger, fear, surprise)")]
pub struct UnknownEmotion(pub String);

impl FromStr for Emotion {
    type Err = UnknownEmotion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Emotion::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEmotion(s.to_string()))
    }
}

/// The classifier's verdict on one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: Emotion,
    /// Probability of `label`, i.e. the model's confidence.
    pub score: f32,
    /// Probability of every emotion, indexed by [`Emotion::index`].
    pub probabilities: [f32; Emotion::COUNT],
}

impl Prediction {
    /// The most probable emotion (the first one on ties, like numpy's argmax).
    pub fn from_probabilities(probabilities: [f32; Emotion::COUNT]) -> Self {
        let mut best = 0;
        for (i, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = i;
            }
        }
        Prediction {
            label: Emotion::ALL[best],
            score: probabilities[best],
            probabilities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_in_model_order() {
        for (i, e) in Emotion::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.as_str().parse::<Emotion>(), Ok(e));
        }
        assert_eq!(" JOY ".parse::<Emotion>(), Ok(Emotion::Joy));
        assert!("happiness".parse::<Emotion>().is_err());
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        let p = Prediction::from_probabilities([0.1, 0.4, 0.4, 0.05, 0.05, 0.0]);
        assert_eq!(p.label, Emotion::Joy);
        assert_eq!(p.score, 0.4);
    }
}
