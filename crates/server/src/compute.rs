//! Where the analyses the cache cannot answer are computed.
//!
//! A cache hit takes a fraction of a millisecond of CPU; a new analysis takes up to
//! seconds of it (matching posts, tokenizing, aggregating, and the inference those
//! feed). On one runtime the hits would queue behind the new analyses' work for the
//! same worker threads. So a server may be given a second runtime whose threads run
//! at a lower CPU priority (`MOODWIRE_ANALYSIS_NICE`): the hits are answered on the
//! HTTP runtime, the new analyses there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tracing::Instrument;

use moodwire_core::ports::ClassifyError;
use moodwire_core::service::{AnalysisService, AnalyzeError, Served};
use moodwire_core::{Analysis, Question};

/// Answers a question from the cache on the calling runtime, and computes it on
/// `runtime` when there is one (else in place).
pub(crate) async fn analyze(
    service: &Arc<AnalysisService>,
    runtime: Option<&tokio::runtime::Handle>,
    question: &Question,
) -> Result<(Arc<Analysis>, Served), AnalyzeError> {
    let Some(runtime) = runtime else {
        return service.analyze(question).await;
    };
    if let Some(hit) = service.answer_from_cache(question).await {
        return Ok((hit, Served::Cache));
    }
    let (service, question) = (Arc::clone(service), question.clone());
    let computing = runtime.spawn(
        async move { service.refresh(&question).await }.instrument(tracing::Span::current()),
    );
    match AbortOnDrop(computing).await {
        Ok(computed) => computed.map(|analysis| (analysis, Served::Inference)),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The analysis runtime is shutting down.
        Err(_) => Err(AnalyzeError::Classify(Arc::new(ClassifyError::Cancelled))),
    }
}

/// A spawned task that is aborted when its caller stops waiting (the client hung up,
/// the request timed out), as it would have been dropped had it run in place: the
/// single-flight then hands the question to the next waiter, and inference stops.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
