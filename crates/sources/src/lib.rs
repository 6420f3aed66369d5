//! Adapters for the [`moodwire_core::ports::PostSource`] port.

mod keyword_match;
mod ndjson;
mod sample;

pub use keyword_match::SearchText;
pub use ndjson::{parse_post_line, LineError};
pub use sample::{CorpusError, SampleCorpus};
