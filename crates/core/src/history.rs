//! The read side of the store: what the dashboard and BI users look at.
//!
//! Every type here is assembled from stored analyses only, so it shows what the idle
//! sync has written, not what is still waiting in the event log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{excerpt, ClassifiedPost, Emotion, EmotionShare, InputError, Post, Window};

/// One stored analysis, reduced to its six shares in the fixed emotion order
/// (sadness, joy, love, anger, fear, surprise) so that charts stack consistently.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalysisSummary {
    pub analysis_id: String,
    pub analyzed_at: DateTime<Utc>,
    /// Posts the analysis classified.
    pub count: u32,
    pub emotions: Vec<EmotionShare>,
}

/// A keyword of the registry in one scope it was asked in, with its latest stored
/// analysis there.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeywordMood {
    /// The normalized keyword (lowercase, single spaces): the registry's key.
    pub keyword: String,
    /// As it was last asked.
    pub display: String,
    /// The subreddits its analyses were limited to (lowercase, sorted); empty: all of Reddit.
    pub subreddits: Vec<String>,
    /// How far back its analyses read.
    pub window: Window,
    /// Computed analyses stored for it in this scope.
    pub analyses: u64,
    pub latest: AnalysisSummary,
}

/// A post of an analysis with the model's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoredPost {
    pub post_id: String,
    pub subreddit: String,
    pub created_at: DateTime<Utc>,
    pub title: String,
    /// The start of the body, at most [`crate::Post::EXCERPT_MAX_CHARS`] characters.
    pub excerpt: String,
    pub permalink: String,
    pub label: Emotion,
    /// The probability of `label`: the model's confidence.
    pub score: f64,
}

impl ScoredPost {
    pub fn new(classified: &ClassifiedPost) -> Self {
        let post = &classified.post;
        ScoredPost {
            post_id: post.id.clone(),
            subreddit: post.subreddit.clone(),
            created_at: DateTime::from_timestamp(post.created_utc, 0).unwrap_or_default(),
            title: post.title.clone(),
            excerpt: excerpt(&post.selftext, Post::EXCERPT_MAX_CHARS),
            permalink: post.permalink.clone(),
            label: classified.prediction.label,
            score: crate::analysis::round4(f64::from(classified.prediction.score)),
        }
    }
}

/// The posts of the latest analysis of a keyword that kept its posts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalysisPosts {
    pub analysis_id: String,
    pub analyzed_at: DateTime<Utc>,
    pub posts: Vec<ScoredPost>,
}

/// How many rows a history query may return: 1..=`max`, parsed from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLimit(usize);

impl RowLimit {
    /// `raw` for the query parameter `field`, or `default` when absent.
    pub fn parse(
        field: &'static str,
        raw: Option<i64>,
        default: u32,
        max: u32,
    ) -> Result<Self, InputError> {
        let value = raw.unwrap_or(i64::from(default));
        if (1..=i64::from(max)).contains(&value) {
            Ok(RowLimit(value as usize))
        } else {
            Err(InputError::ParameterOutOfRange {
                field,
                min: 1,
                max,
                got: value,
            })
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

/// Puts stored emotion rows into the fixed emotion order; a label missing from the
/// store (it never is: analyses are stored with all six) counts as zero.
pub fn in_emotion_order(rows: impl IntoIterator<Item = EmotionShare>) -> Vec<EmotionShare> {
    let mut shares: Vec<EmotionShare> = Emotion::ALL
        .into_iter()
        .map(|label| EmotionShare {
            label,
            count: 0,
            pct: 0.0,
            avg_score: 0.0,
        })
        .collect();
    for row in rows {
        let slot = row.label.index();
        shares[slot] = row;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_limits_are_bounded_and_name_their_field() {
        assert_eq!(RowLimit::parse("points", None, 50, 500).unwrap().get(), 50);
        assert_eq!(
            RowLimit::parse("points", Some(500), 50, 500).unwrap().get(),
            500
        );
        let err = RowLimit::parse("points", Some(0), 50, 500).unwrap_err();
        assert_eq!((err.field(), err.code()), ("points", "invalid_parameter"));
        assert!(RowLimit::parse("points", Some(501), 50, 500).is_err());
    }

    #[test]
    fn emotions_come_out_in_the_fixed_order_with_gaps_filled() {
        let shares = in_emotion_order([EmotionShare {
            label: Emotion::Fear,
            count: 3,
            pct: 100.0,
            avg_score: 0.9,
        }]);
        let labels: Vec<Emotion> = shares.iter().map(|s| s.label).collect();
        assert_eq!(labels, Emotion::ALL);
        assert_eq!(shares[Emotion::Fear.index()].count, 3);
        assert_eq!(shares[Emotion::Joy.index()].count, 0);
    }
}
