//! Adapters for the [`moodwire_core::ports::PostSource`] port.

mod dump;
mod dump_index;
mod keyword_match;
mod ndjson;
pub mod reddit;
mod sample;

pub use dump::{DumpError, DumpFiles, DumpSource, ScanReport, MAX_LINE_BYTES};
pub use dump_index::{DumpIndex, IndexReport};
pub use keyword_match::SearchText;
pub use ndjson::{parse_post_line, parse_post_value, LineError};
pub use reddit::{parse_search_page, RedditConfig, RedditSource, SearchPage};
pub use sample::{CorpusError, SampleCorpus};
