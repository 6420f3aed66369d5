//! The request path: cache -> single-flight -> source -> classifier -> aggregation -> cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::OnceCell;

use crate::ports::{cache_key, Classifier, ClassifyError, PostSource, ResultCache, SourceError};
use crate::{aggregate, Analysis, Keyword, Limit};

/// Why an analysis could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Source(Arc<SourceError>),
    #[error(transparent)]
    Classify(Arc<ClassifyError>),
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Cache,
    Inference,
}

type Flight = Arc<OnceCell<Result<Arc<Analysis>, AnalyzeError>>>;

/// Answers "what are the emotions about this keyword?" with cache-aside and
/// single-flight: concurrent misses for one key share one fetch and one inference.
pub struct AnalysisService {
    source: Arc<dyn PostSource>,
    classifier: Arc<dyn Classifier>,
    cache: Arc<dyn ResultCache>,
    in_flight: Mutex<HashMap<String, Flight>>,
}

impl AnalysisService {
    pub fn new(
        source: Arc<dyn PostSource>,
        classifier: Arc<dyn Classifier>,
        cache: Arc<dyn ResultCache>,
    ) -> Self {
        AnalysisService {
            source,
            classifier,
            cache,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn model_version(&self) -> &str {
        self.classifier.model_version()
    }

    pub async fn analyze(
        &self,
        keyword: &Keyword,
        limit: Limit,
    ) -> Result<(Arc<Analysis>, Served), AnalyzeError> {
        let key = cache_key(self.classifier.model_version(), keyword, limit);
        if let Some(hit) = self.cached(&key).await {
            return Ok((hit, Served::Cache));
        }
        let flight = self.join_flight(&key);
        // The first caller computes; the others wait on the same cell. If the
        // computing caller goes away, the next waiter takes over.
        let result = flight
            .get_or_init(|| self.compute_and_cache(&key, keyword, limit))
            .await
            .clone();
        self.leave_flight(&key, &flight);
        result.map(|analysis| (analysis, Served::Inference))
    }

    async fn cached(&self, key: &str) -> Option<Arc<Analysis>> {
        match self.cache.get(key).await {
            Ok(Some(hit)) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "hit").increment(1);
                Some(Arc::new(hit))
            }
            Ok(None) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "miss").increment(1);
                None
            }
            Err(e) => {
                metrics::counter!("moodwire_cache_requests_total", "result" => "error")
                    .increment(1);
                tracing::warn!(error = %e, "cache read failed; computing instead");
                None
            }
        }
    }

    fn join_flight(&self, key: &str) -> Flight {
        let mut flights = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(flights.entry(key.to_string()).or_default())
    }

    fn leave_flight(&self, key: &str, flight: &Flight) {
        let mut flights = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
    }

    async fn compute_and_cache(
        &self,
        key: &str,
        keyword: &Keyword,
        limit: Limit,
    ) -> Result<Arc<Analysis>, AnalyzeError> {
        let posts = self
            .source
            .search(keyword, limit)
            .await
            .map_err(|e| AnalyzeError::Source(Arc::new(e)))?;
        let texts = posts.iter().map(|p| p.text()).collect();
        let predictions = self
            .classifier
            .classify(texts)
            .await
            .map_err(|e| AnalyzeError::Classify(Arc::new(e)))?;
        let analysis = Analysis {
            keyword: keyword.as_str().to_string(),
            count: predictions.len() as u32,
            agg: aggregate(&predictions),
            model: self.classifier.model_version().to_string(),
            posts_source: self.source.kind(),
            analyzed_at: Utc::now(),
        };
        if let Err(e) = self.cache.put(key, &analysis).await {
            tracing::warn!(error = %e, "cache write failed; the answer is still served");
        }
        Ok(Arc::new(analysis))
    }
}
