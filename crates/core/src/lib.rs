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
pub mod service;
pub mod trending;

pub use analysis::{aggregate, Analysis, ClassifiedPost, EmotionShare, PostsSource};
pub use emotion::{Emotion, Prediction};
pub use error::InputError;
pub use event::{AnalysisRecorded, Timings, MAX_EVENT_BYTES};
pub use post::{excerpt, is_removed, strip_controls, Post};
pub use query::{Keyword, Limit};
