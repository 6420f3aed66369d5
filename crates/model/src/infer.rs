use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use moodwire_core::ports::{Classifier, ClassifyError};
use moodwire_core::Prediction;

use crate::{Encoder, Engine};

/// Bounds of the inference queue.
#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Most tokens waiting or in progress; a request that would pass it is
    /// refused at once ([`ClassifyError::Overloaded`]) instead of piling up memory
    /// and latency. Tokens, not texts, because they are what inference costs: a
    /// thousand one-line posts weigh less than a hundred long ones.
    pub max_queued_tokens: usize,
}

impl InferOptions {
    /// About 10 s of work on 2 cores (~6,600 tokens/s, BENCHMARKS.md): half a thousand
    /// posts of the longest kind (128 tokens), or about six cold analyses of 250 posts.
    pub const DEFAULT_MAX_QUEUED_TOKENS: usize = 65_536;
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            max_queued_tokens: Self::DEFAULT_MAX_QUEUED_TOKENS,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Prediction>, ClassifyError>>;

struct Job {
    encodings: Vec<Vec<u32>>,
    reply: Reply,
    ticket: QueueTicket,
}

/// Holds a job's place in the queue; gives it back when the job is done or dropped.
struct QueueTicket {
    queued: Arc<AtomicUsize>,
    tokens: usize,
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        let left = self.queued.fetch_sub(self.tokens, Ordering::AcqRel) - self.tokens;
        metrics::gauge!("moodwire_inference_queue_tokens").set(left as f64);
    }
}

/// The classifier as the service sees it: an async front to one inference
/// thread that owns the [`Engine`]. Texts are tokenized on the blocking pool,
/// beside the inference of earlier requests; requests then queue in order; the
/// queue is bounded in tokens; a request whose caller has gone away is skipped,
/// or stopped between batches.
pub struct Infer {
    jobs: mpsc::UnboundedSender<Job>,
    encoder: Arc<Encoder>,
    queued: Arc<AtomicUsize>,
    options: InferOptions,
    version: String,
}

impl Infer {
    /// Starts the inference thread. It ends when the `Infer` is dropped.
    pub fn start(engine: Engine, options: InferOptions) -> std::io::Result<Self> {
        let version = engine.version().to_string();
        let encoder = engine.encoder();
        // Unbounded channel, bounded content: admission is by `queued` tokens.
        let (jobs, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("moodwire-infer".into())
            .spawn(move || run_jobs(engine, receiver))?;
        Ok(Infer {
            jobs,
            encoder,
            queued: Arc::new(AtomicUsize::new(0)),
            options,
            version,
        })
    }

    fn admit(&self, tokens: usize) -> Result<QueueTicket, ClassifyError> {
        let before = self.queued.fetch_add(tokens, Ordering::AcqRel);
        let ticket = QueueTicket {
            queued: Arc::clone(&self.queued),
            tokens,
        };
        // A single request larger than the whole queue is still let in when the queue is empty.
        if before > 0 && before + tokens > self.options.max_queued_tokens {
            return Err(ClassifyError::Overloaded {
                queued_tokens: before,
            });
        }
        metrics::gauge!("moodwire_inference_queue_tokens").set((before + tokens) as f64);
        Ok(ticket)
    }

    /// Refuses a request that cannot fit even at its smallest (two special tokens a
    /// text) before paying for its tokenization: under overload most requests end here.
    fn refuse_early(&self, texts: usize) -> Result<(), ClassifyError> {
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued + 2 * texts > self.options.max_queued_tokens {
            return Err(ClassifyError::Overloaded {
                queued_tokens: queued,
            });
        }
        Ok(())
    }

    /// Tokenizes on the blocking pool: a thousand posts take milliseconds of CPU,
    /// which must not stall the async threads nor wait behind the inference thread.
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<u32>>, ClassifyError> {
        let encoder = Arc::clone(&self.encoder);
        tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|t| encoder.encode(t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ClassifyError::Inference(format!("tokenization panicked: {e}")))?
        .map_err(|e| ClassifyError::Inference(e.to_string()))
    }
}

fn run_jobs(mut engine: Engine, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(Job {
        encodings,
        reply,
        ticket,
    }) = jobs.blocking_recv()
    {
        if reply.is_closed() {
            continue;
        }
        let result = engine
            .classify_encoded(&encodings, |_| !reply.is_closed())
            .map_err(|e| ClassifyError::Inference(e.to_string()));
        // The work is done: its tokens leave the queue before the caller hears back.
        drop(ticket);
        match result {
            Ok(Some(predictions)) => {
                let _ = reply.send(Ok(predictions)); // the caller may have left meanwhile
            }
            Ok(None) => tracing::debug!("inference cancelled: the caller went away"),
            Err(e) => {
                tracing::error!(error = %e, "inference failed");
                let _ = reply.send(Err(e));
            }
        }
    }
}

#[async_trait]
impl Classifier for Infer {
    fn model_version(&self) -> &str {
        &self.version
    }

    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.refuse_early(texts.len())?;
        let encodings = self.encode(texts).await?;
        let ticket = self.admit(encodings.iter().map(Vec::len).sum())?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                encodings,
                reply,
                ticket,
            })
            .map_err(|_| ClassifyError::Cancelled)?;
        // Dropping this future closes `answer`, which the inference thread sees.
        answer.await.map_err(|_| ClassifyError::Cancelled)?
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{EngineOptions, ModelDir};

    fn bundled(max_queued_tokens: usize) -> Infer {
        let dir =
            ModelDir::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/emotion"))
                .unwrap();
        let engine = Engine::load(&dir, EngineOptions::default()).unwrap();
        Infer::start(engine, InferOptions { max_queued_tokens }).unwrap()
    }

    #[tokio::test]
    async fn admission_weighs_requests_in_tokens_and_gives_them_back() {
        let infer = bundled(100);
        let held = infer.admit(60).unwrap();
        // Ten short texts (3 tokens each with [CLS] and [SEP]) fit beside it...
        let short = infer.classify(vec!["happy".to_string(); 10]).await;
        assert_eq!(short.unwrap().len(), 10);
        // ...one long text does not.
        let long = infer.classify(vec!["so very happy ".repeat(20)]).await;
        assert!(
            matches!(long, Err(ClassifyError::Overloaded { queued_tokens: 60 })),
            "{long:?}"
        );
        drop(held);
        assert_eq!(
            infer.queued.load(Ordering::Acquire),
            0,
            "every ticket given back"
        );
        // Alone, a request larger than the whole budget still runs.
        let alone = infer.classify(vec!["so very happy ".repeat(20)]).await;
        assert_eq!(alone.unwrap().len(), 1);
    }
}
