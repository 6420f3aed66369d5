//! Adapters for the [`moodwire_core::ports::PostSource`] port.

mod dump;
mod keyword_match;
mod ndjson;
pub mod reddit;
mod sample;

pub use dump::{DumpError, DumpSource, ScanReport, MAX_LINE_BYTES};
pub use keyword_match::SearchText;
pub use ndjson::{parse_post_line, parse_post_value, LineError};
pub use reddit::{RedditConfig, RedditSource};
pub use sample::{CorpusError, SampleCorpus};
