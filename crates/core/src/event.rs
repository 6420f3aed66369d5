//! What the request path tells the rest of the system: one event per computed analysis.

use serde::{Deserialize, Serialize};

use crate::{Analysis, ClassifiedPost, Keyword};

/// Largest event, in bytes of JSON, that the log carries: under the 1,000,000 bytes a
/// Kafka producer sends by default (`message.max.bytes`) and a broker takes, with room
/// for the record's key and headers. Bigger analyses are split ([`AnalysisRecorded::split_to_fit`]).
pub const MAX_EVENT_BYTES: usize = 900_000;

/// A batch read from the event log (to forward or to store) stops growing once its
/// events reach this many bytes of JSON, and holds at least one: what a sync or a
/// forward holds in memory at once stays bounded whether analyses cover 10 posts or
/// 1,000 (500 of the largest would be 450 MB).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Version of the [`AnalysisRecorded`] JSON. Bump it on any change a reader must know
/// about; readers reject versions they do not know instead of guessing.
///
/// 2: the analysis carries its `scope` (subreddits and window). A version-1 reader
/// would store a scoped analysis as an unrestricted one, so it must refuse it (into
/// the dead letters, replayed once it is upgraded); version-1 events read here as
/// unrestricted, which they were.
pub const EVENT_VERSION: u32 = 2;

/// The oldest event version this build still reads.
const OLDEST_READABLE_VERSION: u32 = 1;

/// An analysis was computed (not served from the cache): the aggregate and every
/// post with its prediction. Appended to the event log, drained into the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecorded {
    pub version: u32,
    pub analysis: Analysis,
    pub posts: Vec<ClassifiedPost>,
    pub timings: Timings,
    /// True when rebuilt from a cached analysis by recovery: the posts are not known then.
    #[serde(default)]
    pub recovered: bool,
}

/// Where the time of a computed analysis went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub fetch_ms: f64,
    pub inference_ms: f64,
}

impl AnalysisRecorded {
    /// The analysis's examples stay out: they are for answers, and the store has every post.
    pub fn new(analysis: Analysis, posts: Vec<ClassifiedPost>, timings: Timings) -> Self {
        AnalysisRecorded {
            version: EVENT_VERSION,
            analysis: Analysis {
                examples: Default::default(),
                ..analysis
            },
            posts,
            timings,
            recovered: false,
        }
    }

    /// An analysis found in the cache but missing from the store: the aggregate only.
    pub fn recovered(analysis: Analysis) -> Self {
        AnalysisRecorded {
            version: EVENT_VERSION,
            analysis,
            posts: Vec::new(),
            timings: Timings::default(),
            recovered: true,
        }
    }

    /// The event as parts of at most `max_bytes` of JSON each (one part when it fits).
    /// Each part carries the whole analysis and some of its posts: the store's upserts
    /// put the parts back together in any order, and storing one twice changes nothing.
    /// A part of one post is never split further (bounded fields keep it far below any
    /// sensible limit; see [`crate::Post::for_event`]).
    pub fn split_to_fit(self, max_bytes: usize) -> Vec<AnalysisRecorded> {
        let size = self.to_json().len();
        if size <= max_bytes || self.posts.len() <= 1 {
            return vec![self];
        }
        let parts = size.div_ceil(max_bytes).max(2);
        let per_part = self.posts.len().div_ceil(parts);
        let AnalysisRecorded {
            version,
            analysis,
            posts,
            timings,
            recovered,
        } = self;
        let mut posts = posts.into_iter().peekable();
        let mut out = Vec::new();
        while posts.peek().is_some() {
            let part = AnalysisRecorded {
                version,
                analysis: analysis.clone(),
                posts: posts.by_ref().take(per_part).collect(),
                timings,
                recovered,
            };
            // Posts differ in size: a part still over the bound is halved again.
            out.extend(part.split_to_fit(max_bytes));
        }
        out
    }

    /// The keyword's normalized form: the partition key (one keyword's events stay in
    /// order) and the store's registry key.
    pub fn keyword_key(&self) -> String {
        normalized_keyword(&self.analysis.keyword)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).expect("an event serializes to JSON")
    }

    /// Parses an event, refusing versions this build does not understand.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventDecodeError> {
        #[derive(Deserialize)]
        struct Envelope {
            version: u32,
        }
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| EventDecodeError::Malformed(e.to_string()))?;
        if !(OLDEST_READABLE_VERSION..=EVENT_VERSION).contains(&envelope.version) {
            return Err(EventDecodeError::UnknownVersion(envelope.version));
        }
        serde_json::from_slice(bytes).map_err(|e| EventDecodeError::Malformed(e.to_string()))
    }
}

/// The normalized form of a stored keyword (which was a valid [`Keyword`] when asked).
pub fn normalized_keyword(keyword: &str) -> String {
    Keyword::parse(keyword)
        .map(|k| k.normalized())
        .unwrap_or_else(|_| keyword.trim().to_lowercase())
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventDecodeError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("event version {0} is not known to this build (it reads {OLDEST_READABLE_VERSION} to {EVENT_VERSION})")]
    UnknownVersion(u32),
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{aggregate, Emotion, Post, PostsSource, Prediction};

    #[test]
    fn events_leave_the_examples_out() {
        let with_examples = event();
        let mut analysis = with_examples.analysis.clone();
        analysis.examples = crate::top_examples(&with_examples.posts);
        assert!(!analysis.examples.is_empty());
        let recorded = AnalysisRecorded::new(analysis, with_examples.posts, Timings::default());
        assert!(recorded.analysis.examples.is_empty());
        assert!(!String::from_utf8(recorded.to_json())
            .unwrap()
            .contains("examples"));
    }

    fn event() -> AnalysisRecorded {
        let prediction = Prediction::from_probabilities([0.1, 0.5, 0.1, 0.1, 0.1, 0.1]);
        let post = Post {
            id: "p1".into(),
            subreddit: "s".into(),
            author: "a".into(),
            created_utc: 1_700_000_000,
            title: "Ünïcode 🎉".into(),
            selftext: String::new(),
            score: 3,
            permalink: String::new(),
        };
        let analysis = Analysis {
            scope: Default::default(),
            id: "0192".into(),
            keyword: "  Rust  Lang ".trim().into(),
            limit: 10,
            count: 1,
            agg: aggregate(std::slice::from_ref(&prediction)),
            model: "m".into(),
            posts_source: PostsSource::Sample,
            analyzed_at: Utc::now(),
            examples: Default::default(),
        };
        AnalysisRecorded::new(
            analysis,
            vec![ClassifiedPost { post, prediction }],
            Timings {
                fetch_ms: 1.5,
                inference_ms: 2.5,
            },
        )
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = event();
        assert_eq!(AnalysisRecorded::from_json(&e.to_json()).unwrap(), e);
        assert_eq!(e.posts[0].prediction.label, Emotion::Joy);
        assert_eq!(e.keyword_key(), "rust lang");
    }

    fn big_event(posts: usize, body_chars: usize) -> AnalysisRecorded {
        let mut e = event();
        let template = e.posts[0].clone();
        e.posts = (0..posts)
            .map(|i| {
                let mut p = template.clone();
                p.post.id = format!("t3_{i:06}");
                p.post.title = format!("A self-post about Rust number {i}");
                p.post.selftext = "lorem ipsum dolor sit amet ".repeat(body_chars / 27);
                p.post.permalink = format!("/r/rust/comments/{i:06}/a_self_post_about_rust/");
                p.post = p.post.for_event();
                p
            })
            .collect();
        e
    }

    #[test]
    fn an_analysis_of_a_thousand_long_self_posts_fits_one_event() {
        let event = big_event(1000, 40_000);
        let bytes = event.to_json().len();
        assert!(bytes < MAX_EVENT_BYTES, "{bytes} bytes");
        assert_eq!(event.split_to_fit(MAX_EVENT_BYTES).len(), 1);
    }

    #[test]
    fn an_event_over_the_bound_is_split_into_parts_that_fit_and_keep_every_post() {
        let event = big_event(1000, 40_000);
        let bound = event.to_json().len() / 3;
        let parts = event.clone().split_to_fit(bound);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        for part in &parts {
            assert!(part.to_json().len() <= bound);
            assert_eq!(part.analysis, event.analysis);
            assert_eq!(part.timings, event.timings);
        }
        let ids: Vec<&str> = parts
            .iter()
            .flat_map(|p| p.posts.iter().map(|c| c.post.id.as_str()))
            .collect();
        let expected: Vec<&str> = event.posts.iter().map(|c| c.post.id.as_str()).collect();
        assert_eq!(ids, expected, "every post once, in order");
        // One post is never split, whatever the bound.
        let single = big_event(1, 100);
        assert_eq!(single.split_to_fit(10).len(), 1);
    }

    #[test]
    fn a_version_1_event_reads_as_an_unrestricted_analysis() {
        let mut e = event();
        e.analysis.scope = crate::Scope {
            subreddits: crate::Subreddits::parse(&["stocks"]).unwrap(),
            window: crate::Window::Week,
        };
        let mut json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(
            json["analysis"]["scope"]["subreddits"],
            serde_json::json!(["stocks"])
        );
        json["version"] = 1.into();
        json["analysis"].as_object_mut().unwrap().remove("scope");
        let old = AnalysisRecorded::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        assert_eq!(old.analysis.scope, crate::Scope::unrestricted());
        // A scope that no request could have asked for is refused, not stored.
        json["analysis"]["scope"] =
            serde_json::json!({"subreddits": ["no spaces allowed"], "window": "week"});
        assert!(matches!(
            AnalysisRecorded::from_json(&serde_json::to_vec(&json).unwrap()),
            Err(EventDecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let mut e = event();
        e.version = EVENT_VERSION + 1;
        assert_eq!(
            AnalysisRecorded::from_json(&e.to_json()),
            Err(EventDecodeError::UnknownVersion(EVENT_VERSION + 1))
        );
        assert!(matches!(
            AnalysisRecorded::from_json(b"{not json"),
            Err(EventDecodeError::Malformed(_))
        ));
        assert!(matches!(
            AnalysisRecorded::from_json(br#"{"version":1}"#),
            Err(EventDecodeError::Malformed(_))
        ));
    }
}
