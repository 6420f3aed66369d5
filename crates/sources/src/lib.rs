//! Adapters for the [`moodwire_core::ports::PostSource`] port.

mod dump;
mod dump_files;
mod dump_index;
mod keyword_match;
mod ndjson;
pub mod reddit;
mod sample;

pub use dump::DumpSource;
pub use dump_files::{DumpError, DumpFiles, ScanReport, MAX_LINE_BYTES};
pub use dump_index::{DumpIndex, IndexReport};
pub use keyword_match::SearchText;
pub use ndjson::{parse_post_line, parse_post_value, LineError};
pub use reddit::{parse_search_page, RedditConfig, RedditSource, SearchPage};
pub use sample::{CorpusError, SampleCorpus};

/// Registers the help text of the metrics this crate records (call once, after the
/// recorder is installed).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "moodwire_dump_lines_scanned_total",
        "Lines of dump files read by scans."
    );
    describe_counter!(
        "moodwire_dump_bad_lines_total",
        "Dump lines skipped as unreadable (bad JSON, no id or timestamp, not UTF-8, over 1 MiB)."
    );
    describe_counter!("moodwire_reddit_requests_total", "Reddit search requests, by outcome (ok, retried, rate_limited, budget_spent, failed, ...).");
    metrics::describe_histogram!(
        "moodwire_reddit_calls_per_search",
        "Reddit API calls (pages) one search made: one for a refresh with nothing new."
    );
    describe_counter!(
        "moodwire_reddit_items_skipped_total",
        "Reddit listing items skipped for lacking an id, a timestamp or any text."
    );
    describe_gauge!(
        "moodwire_reddit_ratelimit_remaining",
        "Reddit API calls left in the current window, as Reddit's X-Ratelimit headers last said."
    );
}
