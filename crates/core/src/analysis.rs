use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::history::ScoredPost;
use crate::{Emotion, Examples, Post, Prediction, Scope};

/// Where the analysed posts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostsSource {
    Reddit,
    Sample,
    Dump,
}

/// One emotion's part of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmotionShare {
    pub label: Emotion,
    /// Posts whose most probable emotion is `label`.
    pub count: u32,
    /// Share of all posts in percent, one decimal place; the six sum to 100 (0 when no posts).
    pub pct: f64,
    /// Mean confidence of the posts assigned `label` (0 when none).
    pub avg_score: f64,
}

/// The emotion breakdown of the posts about one keyword: what is cached and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Unique and time-ordered (UUIDv7): the store's key for this analysis.
    /// Empty only in entries cached by builds that predate it.
    #[serde(default)]
    pub id: String,
    pub keyword: String,
    /// How many posts were asked for; `count` is how many were found.
    #[serde(default)]
    pub limit: u32,
    /// Which posts it read beyond the keyword (unrestricted in entries and events of
    /// builds that predate scopes).
    #[serde(default)]
    pub scope: Scope,
    pub count: u32,
    /// Exactly six entries, sorted by `pct` descending.
    pub agg: Vec<EmotionShare>,
    pub model: String,
    pub posts_source: PostsSource,
    pub analyzed_at: DateTime<Utc>,
    /// The most confident posts of each emotion ([`top_examples`]): what an answer's
    /// `examples` are read from. Kept in the cache only, not in events (the store has
    /// every post); empty in entries cached by builds that predate it.
    /// Shared, so that a cache hit copies a pointer, not 30 posts.
    #[serde(default, skip_serializing_if = "no_examples")]
    pub examples: Arc<[ScoredPost]>,
}

fn no_examples(examples: &Arc<[ScoredPost]>) -> bool {
    examples.is_empty()
}

impl Analysis {
    /// At most `n` of its examples of `label`, most confident first.
    pub fn examples_of(&self, label: Emotion, n: Examples) -> Vec<ScoredPost> {
        self.examples
            .iter()
            .filter(|e| e.label == label)
            .take(n.get())
            .cloned()
            .collect()
    }
}

/// A post and the classifier's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedPost {
    pub post: Post,
    pub prediction: Prediction,
}

/// The [`Examples::MAX`] most confident posts of each emotion, in the fixed emotion
/// order, most confident first (ties by post id, so the choice is deterministic).
pub fn top_examples(classified: &[ClassifiedPost]) -> Arc<[ScoredPost]> {
    let mut ranked: Vec<&ClassifiedPost> = classified.iter().collect();
    ranked.sort_by(|a, b| {
        (a.prediction.label.index().cmp(&b.prediction.label.index()))
            .then(b.prediction.score.total_cmp(&a.prediction.score))
            .then_with(|| a.post.id.cmp(&b.post.id))
    });
    let mut taken = [0usize; Emotion::COUNT];
    ranked
        .into_iter()
        .filter(|c| {
            let seen = &mut taken[c.prediction.label.index()];
            *seen += 1;
            *seen <= usize::from(Examples::MAX)
        })
        .map(ScoredPost::new)
        .collect()
}

/// Turns predictions into the six emotion shares.
///
/// Percentages are rounded to tenths with the largest-remainder method, so
/// they always sum to exactly 100.0 (plain rounding can give 99.9 or 100.1).
pub fn aggregate(predictions: &[Prediction]) -> Vec<EmotionShare> {
    let total = predictions.len() as u64;
    let mut counts = [0u64; Emotion::COUNT];
    let mut score_sums = [0f64; Emotion::COUNT];
    for p in predictions {
        counts[p.label.index()] += 1;
        score_sums[p.label.index()] += f64::from(p.score);
    }
    let tenths = percent_tenths(&counts, total);
    let mut shares: Vec<EmotionShare> = Emotion::ALL
        .into_iter()
        .map(|e| {
            let i = e.index();
            EmotionShare {
                label: e,
                count: counts[i] as u32,
                pct: tenths[i] as f64 / 10.0,
                avg_score: if counts[i] == 0 {
                    0.0
                } else {
                    round4(score_sums[i] / counts[i] as f64)
                },
            }
        })
        .collect();
    // Stable sort: ties keep the model's label order, so the output is deterministic.
    shares.sort_by(|a, b| b.pct.total_cmp(&a.pct).then(b.count.cmp(&a.count)));
    shares
}

/// Each count's share of `total` in tenths of a percent, summing to 1000.
fn percent_tenths(counts: &[u64; Emotion::COUNT], total: u64) -> [u64; Emotion::COUNT] {
    let mut tenths = [0u64; Emotion::COUNT];
    if total == 0 {
        return tenths;
    }
    let mut remainders = [(0u64, 0usize); Emotion::COUNT];
    for (i, &count) in counts.iter().enumerate() {
        tenths[i] = count * 1000 / total;
        remainders[i] = (count * 1000 % total, i);
    }
    let missing = 1000 - tenths.iter().sum::<u64>();
    // Largest remainder first; ties go to the earlier label.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(missing as usize) {
        tenths[i] += 1;
    }
    tenths
}

pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(label: Emotion, score: f32) -> Prediction {
        let mut probabilities = [(1.0 - score) / 5.0; Emotion::COUNT];
        probabilities[label.index()] = score;
        Prediction {
            label,
            score,
            probabilities,
        }
    }

    #[test]
    fn all_six_emotions_are_always_present() {
        let shares = aggregate(&[pred(Emotion::Joy, 0.9)]);
        assert_eq!(shares.len(), 6);
        assert_eq!(shares[0].label, Emotion::Joy);
        assert_eq!(shares[0].pct, 100.0);
        assert_eq!(shares[0].avg_score, 0.9);
        assert!(shares[1..]
            .iter()
            .all(|s| s.count == 0 && s.pct == 0.0 && s.avg_score == 0.0));
    }

    #[test]
    fn no_posts_gives_zero_everywhere() {
        let shares = aggregate(&[]);
        assert_eq!(shares.len(), 6);
        assert!(shares.iter().all(|s| s.count == 0 && s.pct == 0.0));
        // Ties keep model order.
        let labels: Vec<_> = shares.iter().map(|s| s.label).collect();
        assert_eq!(labels, Emotion::ALL.to_vec());
    }

    #[test]
    fn thirds_sum_to_exactly_one_hundred() {
        let preds = [
            pred(Emotion::Joy, 0.5),
            pred(Emotion::Fear, 0.5),
            pred(Emotion::Anger, 0.5),
        ];
        let shares = aggregate(&preds);
        let sum: f64 = shares.iter().map(|s| s.pct).sum();
        assert!((sum - 100.0).abs() < 1e-9, "sum was {sum}");
        // 33.4 + 33.3 + 33.3: the extra tenth goes to the earliest label in model order.
        assert_eq!(shares[0].label, Emotion::Joy);
        assert_eq!(shares[0].pct, 33.4);
    }

    #[test]
    fn shares_are_sorted_and_sum_to_one_hundred_for_many_mixes() {
        for n in 1..200u32 {
            let preds: Vec<_> = (0..n)
                .map(|i| pred(Emotion::ALL[(i * i % 7 % 6) as usize], 0.6))
                .collect();
            let shares = aggregate(&preds);
            let sum: f64 = shares.iter().map(|s| s.pct).sum();
            assert!((sum - 100.0).abs() < 1e-6, "n={n}: sum {sum}");
            assert_eq!(shares.iter().map(|s| s.count).sum::<u32>(), n);
            assert!(shares.windows(2).all(|w| w[0].pct >= w[1].pct));
        }
    }

    #[test]
    fn avg_score_is_the_mean_confidence_of_the_label() {
        let shares = aggregate(&[pred(Emotion::Sadness, 0.5), pred(Emotion::Sadness, 0.7)]);
        let sadness = shares.iter().find(|s| s.label == Emotion::Sadness).unwrap();
        assert_eq!(sadness.count, 2);
        assert!((sadness.avg_score - 0.6).abs() < 1e-6);
    }

    #[test]
    fn examples_are_the_most_confident_posts_of_each_emotion() {
        let classified: Vec<ClassifiedPost> = (0..9)
            .map(|i| ClassifiedPost {
                post: Post {
                    id: format!("p{i}"),
                    subreddit: "test".into(),
                    author: "a".into(),
                    created_utc: 1_700_000_000,
                    title: format!("title {i}"),
                    selftext: "body ".repeat(100),
                    score: 1,
                    permalink: format!("/r/test/comments/p{i}"),
                },
                // Seven of joy at rising confidence, two of fear.
                prediction: match i {
                    0..=6 => pred(Emotion::Joy, 0.3 + 0.1 * i as f32),
                    _ => pred(Emotion::Fear, 0.5),
                },
            })
            .collect();
        let examples = top_examples(&classified);
        let ids: Vec<&str> = examples.iter().map(|e| e.post_id.as_str()).collect();
        assert_eq!(ids, ["p6", "p5", "p4", "p3", "p2", "p7", "p8"]);
        assert!(examples[0].excerpt.chars().count() <= Post::EXCERPT_MAX_CHARS);

        let analysis = Analysis {
            scope: Default::default(),
            id: "a".into(),
            keyword: "k".into(),
            limit: 9,
            count: 9,
            agg: aggregate(&[]),
            model: "m".into(),
            posts_source: PostsSource::Sample,
            analyzed_at: Utc::now(),
            examples,
        };
        let two = analysis.examples_of(Emotion::Joy, Examples::parse(2).unwrap());
        assert_eq!(
            two.iter().map(|e| e.post_id.as_str()).collect::<Vec<_>>(),
            ["p6", "p5"]
        );
        assert!(analysis
            .examples_of(Emotion::Love, Examples::parse(5).unwrap())
            .is_empty());
        assert!(analysis
            .examples_of(Emotion::Joy, Examples::default())
            .is_empty());
    }
}
