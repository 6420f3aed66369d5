use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use moodwire_core::ports::{Classifier, ClassifyError};
use moodwire_core::Prediction;

use crate::Engine;

/// Bounds of the inference queue.
#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Most texts waiting or in progress; a request that would pass it is
    /// refused at once ([`ClassifyError::Overloaded`]) instead of piling up memory.
    pub max_queued_texts: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        // Eight requests of the largest size (1,000 posts).
        InferOptions {
            max_queued_texts: 8_000,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Prediction>, ClassifyError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
    _ticket: QueueTicket,
}

/// Holds a job's place in the queue; gives it back when the job is done or dropped.
struct QueueTicket {
    queued: Arc<AtomicUsize>,
    texts: usize,
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        let left = self.queued.fetch_sub(self.texts, Ordering::AcqRel) - self.texts;
        metrics::gauge!("moodwire_inference_queue_texts").set(left as f64);
    }
}

/// The classifier as the service sees it: an async front to one inference
/// thread that owns the [`Engine`]. Requests queue in order; the queue is
/// bounded; a request whose caller has gone away is skipped, or stopped
/// between batches.
pub struct Infer {
    jobs: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
    options: InferOptions,
    version: String,
}

impl Infer {
    /// Starts the inference thread. It ends when the `Infer` is dropped.
    pub fn start(engine: Engine, options: InferOptions) -> std::io::Result<Self> {
        let version = engine.version().to_string();
        // Unbounded channel, bounded content: admission is by `queued` texts.
        let (jobs, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("moodwire-infer".into())
            .spawn(move || run_jobs(engine, receiver))?;
        Ok(Infer {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            options,
            version,
        })
    }

    fn admit(&self, texts: usize) -> Result<QueueTicket, ClassifyError> {
        let before = self.queued.fetch_add(texts, Ordering::AcqRel);
        let ticket = QueueTicket {
            queued: Arc::clone(&self.queued),
            texts,
        };
        // A single request larger than the whole queue is still let in when the queue is empty.
        if before > 0 && before + texts > self.options.max_queued_texts {
            return Err(ClassifyError::Overloaded {
                queued_texts: before,
            });
        }
        metrics::gauge!("moodwire_inference_queue_texts").set((before + texts) as f64);
        Ok(ticket)
    }
}

fn run_jobs(mut engine: Engine, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        if job.reply.is_closed() {
            continue;
        }
        let result = engine
            .classify_with(&job.texts, |_| !job.reply.is_closed())
            .map_err(|e| ClassifyError::Inference(e.to_string()));
        match result {
            Ok(Some(predictions)) => {
                let _ = job.reply.send(Ok(predictions)); // the caller may have left meanwhile
            }
            Ok(None) => tracing::debug!("inference cancelled: the caller went away"),
            Err(e) => {
                tracing::error!(error = %e, "inference failed");
                let _ = job.reply.send(Err(e));
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
        let ticket = self.admit(texts.len())?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                texts,
                reply,
                _ticket: ticket,
            })
            .map_err(|_| ClassifyError::Cancelled)?;
        // Dropping this future closes `answer`, which the inference thread sees.
        answer.await.map_err(|_| ClassifyError::Cancelled)?
    }
}
