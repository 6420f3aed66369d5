//! Trending terms: words whose share of recent posts rises sharply against their
//! background rate.
//!
//! For each term, `recent` = posts in the recent window containing it and
//! `background` = posts in the background window containing it (each post counts a
//! term once). The score is the smoothed lift of its document rate,
//!
//! ```text
//! lift = ((recent + 1) / (R + 1)) / ((background + 1) / (B + 1))
//! ```
//!
//! with R and B the posts in each window. The +1s keep a term never seen before
//! from scoring infinitely on one mention, and a tiny background from making every
//! term look new (with no background at all, nothing trends). A term trends when it appears in at least `min_posts` recent posts
//! and its lift is at least `min_lift`; the most lifted come first (ties: more posts).
//! Stop words, numbers, and words shorter than 3 letters are not terms.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
pub struct TrendingConfig {
    pub min_posts: usize,
    pub min_lift: f64,
    pub max_terms: usize,
}

impl Default for TrendingConfig {
    fn default() -> Self {
        TrendingConfig {
            min_posts: 3,
            min_lift: 3.0,
            max_terms: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendingTerm {
    pub term: String,
    pub recent_posts: usize,
    pub lift: f64,
}

/// The trending terms of `recent` texts against `background` texts.
pub fn trending_terms(
    recent: &[String],
    background: &[String],
    config: TrendingConfig,
) -> Vec<TrendingTerm> {
    let recent_df = document_frequencies(recent);
    let background_df = document_frequencies(background);
    let recent_total = recent.len() as f64 + 1.0;
    let background_total = background.len() as f64 + 1.0;
    let mut trending: Vec<TrendingTerm> = recent_df
        .into_iter()
        .filter(|(_, n)| *n >= config.min_posts)
        .map(|(term, n)| {
            let before = background_df.get(&term).copied().unwrap_or(0) as f64;
            let lift = ((n as f64 + 1.0) / recent_total) / ((before + 1.0) / background_total);
            TrendingTerm {
                term,
                recent_posts: n,
                lift,
            }
        })
        .filter(|t| t.lift >= config.min_lift)
        .collect();
    trending.sort_by(|a, b| {
        b.lift
            .total_cmp(&a.lift)
            .then(b.recent_posts.cmp(&a.recent_posts))
            .then(a.term.cmp(&b.term))
    });
    trending.truncate(config.max_terms);
    trending
}

/// In how many texts each term occurs.
fn document_frequencies(texts: &[String]) -> HashMap<String, usize> {
    let mut df = HashMap::new();
    for text in texts {
        let terms: HashSet<String> = terms(text).collect();
        for term in terms {
            *df.entry(term).or_insert(0) += 1;
        }
    }
    df
}

/// The candidate terms of a text: lowercase words of 3 to 30 letters or digits (not
/// only digits), stop words left out.
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| (3..=30).contains(&w.chars().count()))
        .map(str::to_lowercase)
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()) && !STOP_WORDS.contains(&w.as_str()))
}

const STOP_WORDS: &[&str] = &[
    "about", "after", "again", "all", "also", "and", "any", "are", "because", "been", "before",
    "being", "but", "can", "could", "did", "does", "doing", "don", "down", "each", "even", "every",
    "for", "from", "get", "got", "had", "has", "have", "her", "here", "him", "his", "how", "into",
    "its", "just", "know", "like", "more", "most", "much", "not", "now", "off", "one", "only",
    "other", "our", "out", "over", "really", "same", "she", "should", "some", "still", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "thing", "think",
    "this", "those", "through", "too", "under", "very", "want", "was", "way", "were", "what",
    "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your", "amp",
    "http", "https", "www", "com",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[(&str, usize)]) -> Vec<String> {
        lines
            .iter()
            .flat_map(|(text, n)| std::iter::repeat_n(text.to_string(), *n))
            .collect()
    }

    #[test]
    fn a_sharp_rise_trends_and_a_steady_term_does_not() {
        // "eclipse": 10 of 50 recent posts, 1 of 500 before. "weather": 20 % in both.
        let recent = texts(&[
            ("the eclipse tonight", 10),
            ("nice weather today", 10),
            ("lunch was fine", 30),
        ]);
        let background = texts(&[
            ("an eclipse long ago", 1),
            ("nice weather today", 100),
            ("lunch was fine", 399),
        ]);
        let trending = trending_terms(&recent, &background, TrendingConfig::default());
        let names: Vec<_> = trending.iter().map(|t| t.term.as_str()).collect();
        // "tonight" was never said before; "eclipse" once: both rise, "tonight" more.
        assert_eq!(names, ["tonight", "eclipse"], "{trending:?}");
        assert!(!names.contains(&"weather"));
        assert!(!names.contains(&"lunch"));
        assert_eq!(trending[1].recent_posts, 10);
        assert!(trending[1].lift > 40.0, "{trending:?}");
    }

    #[test]
    fn rare_mentions_stop_words_and_numbers_do_not_trend() {
        let recent = texts(&[("novelword 2026 the and", 2), ("filler text", 20)]);
        let trending = trending_terms(&recent, &[], TrendingConfig::default());
        assert!(
            trending.iter().all(|t| t.term != "novelword"),
            "below min_posts"
        );
        let terms: Vec<_> = terms("The year 2026 and A.I. ok, Ünïcode wins").collect();
        assert_eq!(terms, ["year", "ünïcode", "wins"]);
    }

    #[test]
    fn a_term_counts_once_per_post_and_the_list_is_bounded() {
        let recent = texts(&[("spam spam spam spam", 1)]);
        let config = TrendingConfig {
            min_posts: 2,
            ..TrendingConfig::default()
        };
        assert!(trending_terms(&recent, &[], config).is_empty());

        let many: Vec<String> = (0..30).map(|i| format!("term{i:02} term{i:02}x")).collect();
        let recent: Vec<String> = many
            .iter()
            .flat_map(|t| [t.clone(), t.clone(), t.clone()])
            .collect();
        let background = texts(&[("filler text", 1000)]);
        let trending = trending_terms(&recent, &background, TrendingConfig::default());
        assert_eq!(trending.len(), 10);
        // With no history at all nothing can be said to rise.
        assert!(trending_terms(&recent, &[], TrendingConfig::default()).is_empty());
    }
}
