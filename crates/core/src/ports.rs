//! The edges of the domain. Each port has an embedded default adapter and a
//! real-infrastructure adapter (see DESIGN.md); the domain only sees these traits.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Analysis, Keyword, Limit, Post, PostsSource, Prediction};

/// Why texts could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The inference queue is full: the caller should retry later.
    #[error("the classifier is overloaded ({queued_texts} texts queued); retry shortly")]
    Overloaded { queued_texts: usize },
    /// The caller went away or the process is shutting down.
    #[error("classification was cancelled")]
    Cancelled,
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Turns texts into emotion predictions.
#[async_trait]
pub trait Classifier: Send + Sync {
    /// Identifies the model that made the predictions (part of every cache key).
    fn model_version(&self) -> &str;

    /// One prediction per text, in the order given.
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError>;
}

/// Why posts could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The upstream rate limit is spent; `retry_after` when the upstream says.
    #[error("the post source is rate limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the post source is unavailable: {0}")]
    Unavailable(String),
    #[error("the post source answered with something unreadable: {0}")]
    BadResponse(String),
    /// The upstream refused our credentials: a configuration problem, not a transient one.
    #[error("the post source rejected our credentials: {0}")]
    AuthFailed(String),
}

/// Finds recent posts about a keyword.
#[async_trait]
pub trait PostSource: Send + Sync {
    fn kind(&self) -> PostsSource;

    /// Up to `limit` posts matching `keyword`, newest first.
    async fn search(&self, keyword: &Keyword, limit: Limit) -> Result<Vec<Post>, SourceError>;
}

#[derive(Debug, thiserror::Error)]
#[error("cache error: {0}")]
pub struct CacheError(pub String);

/// Keeps computed analyses for a while, keyed by [`cache_key`].
///
/// A cache failure never fails a request: callers log it and take the miss path.
#[async_trait]
pub trait ResultCache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Analysis>, CacheError>;
    async fn put(&self, key: &str, analysis: &Analysis) -> Result<(), CacheError>;

    /// Whether the cache answers now (for readiness). In-process caches always do.
    async fn check(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

/// The cache key of a question: model version + normalized keyword + limit.
///
/// `return_plot` is not part of it: the plot is rendered from the cached analysis.
pub fn cache_key(model_version: &str, keyword: &Keyword, limit: Limit) -> String {
    format!("{model_version}:{}:{}", limit.get(), keyword.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_ignores_keyword_case_and_spacing_but_not_limit_or_model() {
        let k = |s| Keyword::parse(s).unwrap();
        let l = |n| Limit::parse(n).unwrap();
        assert_eq!(
            cache_key("m1", &k(" AI "), l(10)),
            cache_key("m1", &k("ai"), l(10))
        );
        assert_ne!(
            cache_key("m1", &k("ai"), l(10)),
            cache_key("m1", &k("ai"), l(11))
        );
        assert_ne!(
            cache_key("m1", &k("ai"), l(10)),
            cache_key("m2", &k("ai"), l(10))
        );
    }
}
