//! moodwire's domain core: the types an analysis is made of, the aggregation
//! that turns predictions into emotion shares, and the ports (traits) through
//! which the edges (model runtime, post sources, caches, stores) are reached.
//!
//! Nothing here does I/O; adapters in other crates implement the ports.

pub mod analysis;
pub mod emotion;
pub mod error;
pub mod event;
pub mod history;
pub mod ports;
pub mod post;
pub mod query;
pub mod scope;
pub mod service;
pub mod trending;

pub use analysis::{aggregate, top_examples, Analysis, ClassifiedPost, EmotionShare, PostsSource};
pub use emotion::{Emotion, Prediction};
pub use error::InputError;
pub use event::{AnalysisRecorded, Timings, MAX_BATCH_BYTES, MAX_EVENT_BYTES};
pub use post::{excerpt, is_removed, strip_controls, Post};
pub use query::{Examples, Keyword, Limit, Question};
pub use scope::{Scope, Subreddits, Window};

/// Registers the help text of the metrics this crate records (call once, after the
/// recorder is installed).
pub fn describe_metrics() {
    use metrics::describe_counter;
    metrics::describe_counter!("moodwire_prediction_cache_total", "Posts looked up in the prediction cache, by result: hit (not classified again), miss, error.");
    metrics::describe_histogram!("moodwire_analysis_classified_posts", "Distinct texts classified per computed analysis (the posts the prediction cache did not know).");
    describe_counter!("moodwire_refreshes_total", "Analyses made from a keyword's known posts and only the newer ones fetched (kind incremental).");
    describe_counter!("moodwire_analyses_followed_total", "New questions answered with another replica's analysis of them (it held the claim; this one waited).");
    describe_counter!("moodwire_cache_requests_total", "Result-cache lookups of /analyze, by result: hit, miss or error (the cache did not answer).");
    describe_counter!(
        "moodwire_cache_write_errors_total",
        "Computed analyses the result cache failed to store (the answer was still served)."
    );
    describe_counter!(
        "moodwire_events_appended_total",
        "Computed analyses appended to the event log (one per analysis, however many parts)."
    );
    describe_counter!("moodwire_event_parts_appended_total", "Parts appended for analyses too large for one event (each part carries some of the posts).");
    describe_counter!("moodwire_event_append_errors_total", "Computed analyses the event log refused (a full or read-only disk): served and cached, but their posts are not stored.");
}
