use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use moodwire_core::ports::{Classifier, ClassifyError};
use moodwire_core::Prediction;

use crate::{priority, BatchDone, Encoder, Engine, ModelError};

/// Bounds of the inference queue.
#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Most tokens waiting or in progress: a bound on the memory the queue holds.
    pub max_queued_tokens: usize,
    /// Longest a new request may expect to wait for the work queued ahead of it, at
    /// the throughput measured on recent jobs; past it the request is refused at once
    /// ([`ClassifyError::Overloaded`], with that wait as its retry time) rather than
    /// left to wait until its client gives up.
    pub max_queue_wait: Duration,
    /// Nice steps below the rest of the process for the inference thread and, when
    /// it loads the engine ([`Infer::load_and_start`]), ONNX Runtime's threads: busy
    /// inference then yields the CPU to the HTTP threads (see [`crate::priority`]).
    pub nice: u8,
}

impl InferOptions {
    /// Half a thousand posts of the longest kind (128 tokens), about six cold analyses
    /// of 250 posts.
    pub const DEFAULT_MAX_QUEUED_TOKENS: usize = 65_536;
    pub const DEFAULT_MAX_QUEUE_WAIT: Duration = Duration::from_secs(5);
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            max_queued_tokens: Self::DEFAULT_MAX_QUEUED_TOKENS,
            max_queue_wait: Self::DEFAULT_MAX_QUEUE_WAIT,
            nice: 0,
        }
    }
}

/// Tokens a second the inference thread gets through: an exponential moving average
/// over recent batches, so admission follows what the machine really does (other load,
/// thermal limits, a different CPU) rather than a figure measured elsewhere, and
/// follows it within a batch or two when a flood starts.
struct Throughput(AtomicU64);

impl Throughput {
    /// What is assumed before the first batch is measured: below what 2 cores do
    /// (BENCHMARKS.md), so a cold start errs towards refusing.
    const PRIOR_TOKENS_PER_SECOND: f64 = 4_000.0;
    /// Weight of the newest batch, when it is a full one ...
    const ALPHA: f64 = 0.3;
    /// ... of this many tokens: smaller batches weigh less, as they say more about
    /// fixed costs than about throughput.
    const FULL_BATCH_TOKENS: f64 = 1_024.0;

    fn new() -> Self {
        Throughput(AtomicU64::new(Self::PRIOR_TOKENS_PER_SECOND.to_bits()))
    }

    fn tokens_per_second(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Folds in one batch: `tokens` done in `elapsed`.
    fn record(&self, tokens: usize, elapsed: Duration) {
        if tokens == 0 || elapsed.is_zero() {
            return;
        }
        let measured = tokens as f64 / elapsed.as_secs_f64();
        let alpha = Self::ALPHA * (tokens as f64 / Self::FULL_BATCH_TOKENS).min(1.0);
        let next = self.tokens_per_second() + alpha * (measured - self.tokens_per_second());
        self.0.store(next.to_bits(), Ordering::Relaxed);
        metrics::gauge!("moodwire_inference_throughput_tokens_per_second").set(next);
    }

    /// How long `tokens` of work take at the measured rate.
    fn time_for(&self, tokens: usize) -> Duration {
        Duration::from_secs_f64(tokens as f64 / self.tokens_per_second().max(1.0))
    }
}

type Reply = oneshot::Sender<Result<(Vec<Prediction>, Duration), ClassifyError>>;

struct Job {
    encodings: Vec<Vec<u32>>,
    reply: Reply,
    ticket: QueueTicket,
    admitted: Instant,
}

/// Holds a job's place in the queue: its tokens not yet inferred. They are given back
/// batch by batch, and the rest when the job is done or dropped.
struct QueueTicket {
    queue: Arc<Queue>,
    tokens: usize,
}

impl QueueTicket {
    fn release(&mut self, tokens: usize) {
        let tokens = tokens.min(self.tokens);
        self.tokens -= tokens;
        let left = self.queue.tokens.fetch_sub(tokens, Ordering::AcqRel) - tokens;
        report_queue(left, &self.queue.throughput);
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.release(self.tokens);
    }
}

/// What admission and the inference thread share.
struct Queue {
    /// Tokens waiting or in progress.
    tokens: AtomicUsize,
    throughput: Throughput,
    options: InferOptions,
}

impl Queue {
    /// An `Overloaded` refusal, telling the client when the queue should have drained.
    fn refusal(&self, queued_tokens: usize) -> ClassifyError {
        ClassifyError::Overloaded {
            queued_tokens,
            retry_after: self.throughput.time_for(queued_tokens),
        }
    }
}

fn report_queue(tokens: usize, throughput: &Throughput) {
    metrics::gauge!("moodwire_inference_queue_tokens").set(tokens as f64);
    metrics::gauge!("moodwire_inference_expected_wait_seconds")
        .set(throughput.time_for(tokens).as_secs_f64());
}

/// The classifier as the service sees it: an async front to one inference
/// thread that owns the [`Engine`]. Texts are tokenized on the blocking pool,
/// beside the inference of earlier requests; requests then queue in order; the
/// queue is bounded by the wait it implies; a request whose caller has gone away is
/// skipped, or stopped between batches.
pub struct Infer {
    jobs: mpsc::UnboundedSender<Job>,
    encoder: Arc<Encoder>,
    queue: Arc<Queue>,
    version: String,
}

impl Infer {
    /// Starts the inference thread on an engine loaded elsewhere. It ends when the
    /// `Infer` is dropped.
    pub fn start(engine: Engine, options: InferOptions) -> Result<Self, ModelError> {
        Self::load_and_start(move || Ok(engine), options)
    }

    /// Starts the inference thread and loads the engine on it, blocking until it is
    /// loaded: ONNX Runtime's threads start with the session, from this thread, and
    /// so inherit its lower priority ([`InferOptions::nice`]).
    pub fn load_and_start(
        load: impl FnOnce() -> Result<Engine, ModelError> + Send + 'static,
        options: InferOptions,
    ) -> Result<Self, ModelError> {
        let queue = Arc::new(Queue {
            tokens: AtomicUsize::new(0),
            throughput: Throughput::new(),
            options,
        });
        // Unbounded channel, bounded content: admission is by queued tokens.
        let (jobs, receiver) = mpsc::unbounded_channel();
        let (loaded, ready) = std::sync::mpsc::channel();
        let shared = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("moodwire-infer".into())
            .spawn(move || {
                if let Err(e) = priority::lower_this_thread(options.nice) {
                    tracing::warn!(error = %e, nice = options.nice, "inference keeps the process's CPU priority");
                }
                match load() {
                    Ok(engine) => {
                        let _ = loaded.send(Ok((engine.version().to_string(), engine.encoder())));
                        run_jobs(engine, receiver, &shared);
                    }
                    Err(e) => {
                        let _ = loaded.send(Err(e));
                    }
                }
            })
            .map_err(|e| ModelError::Runtime(format!("cannot start the inference thread: {e}")))?;
        let (version, encoder) = ready.recv().map_err(|_| {
            ModelError::Runtime("the inference thread ended while loading the model".into())
        })??;
        Ok(Infer {
            jobs,
            encoder,
            queue,
            version,
        })
    }

    /// Refuses `tokens` of new work when the queue ahead of it (`queued`) would make it
    /// wait past the bound, or hold more tokens than the queue may. A request finds the
    /// queue empty is always let in, however large.
    fn check(&self, queued: usize, tokens: usize) -> Result<(), ClassifyError> {
        if queued == 0 {
            return Ok(());
        }
        let options = &self.queue.options;
        let wait = self.queue.throughput.time_for(queued + tokens);
        if wait > options.max_queue_wait || queued + tokens > options.max_queued_tokens {
            metrics::counter!("moodwire_inference_refused_total").increment(1);
            return Err(self.queue.refusal(queued));
        }
        Ok(())
    }

    fn admit(&self, tokens: usize) -> Result<QueueTicket, ClassifyError> {
        let before = self.queue.tokens.fetch_add(tokens, Ordering::AcqRel);
        let ticket = QueueTicket {
            queue: Arc::clone(&self.queue),
            tokens,
        };
        self.check(before, tokens)?;
        report_queue(before + tokens, &self.queue.throughput);
        Ok(ticket)
    }

    /// Refuses a request by an estimate of its tokens (a quarter of its characters,
    /// two special tokens and at most the model's length a text) before paying for
    /// its tokenization: under overload most requests end here, in microseconds.
    fn refuse_early(&self, texts: &[String]) -> Result<(), ClassifyError> {
        let max_length = self.encoder.max_length();
        let estimate: usize = texts
            .iter()
            .map(|t| (2 + t.len() / 4).min(max_length))
            .sum();
        self.check(self.queue.tokens.load(Ordering::Acquire), estimate)
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

fn run_jobs(mut engine: Engine, mut jobs: mpsc::UnboundedReceiver<Job>, queue: &Queue) {
    while let Some(Job {
        encodings,
        reply,
        mut ticket,
        admitted,
    }) = jobs.blocking_recv()
    {
        if reply.is_closed() {
            continue;
        }
        let queue_wait = admitted.elapsed();
        // Admitted on a throughput the machine then did not keep up (a flood took the
        // CPU): answer now, in bounded time, rather than after a wait nobody promised.
        if queue_wait > queue.options.max_queue_wait {
            metrics::counter!("moodwire_inference_shed_total").increment(1);
            drop(ticket);
            let _ = reply.send(Err(queue.refusal(queue.tokens.load(Ordering::Acquire))));
            continue;
        }
        let mut batch_started = Instant::now();
        let result = engine
            .classify_encoded(&encodings, |done: BatchDone| {
                queue
                    .throughput
                    .record(done.tokens, batch_started.elapsed());
                ticket.release(done.tokens);
                batch_started = Instant::now();
                !reply.is_closed()
            })
            .map_err(|e| ClassifyError::Inference(e.to_string()));
        // The work is done: its tokens leave the queue before the caller hears back.
        drop(ticket);
        match result {
            Ok(Some(predictions)) => {
                // The caller may have left meanwhile.
                let _ = reply.send(Ok((predictions, queue_wait)));
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
        self.refuse_early(&texts)?;
        let encodings = self.encode(texts).await?;
        let tokens = encodings.iter().map(Vec::len).sum();
        let ticket = self.admit(tokens)?;
        let (reply, answer) = oneshot::channel();
        let admitted = Instant::now();
        self.jobs
            .send(Job {
                encodings,
                reply,
                ticket,
                admitted,
            })
            .map_err(|_| ClassifyError::Cancelled)?;
        // Dropping this future closes `answer`, which the inference thread sees.
        let (predictions, queue_wait) = answer.await.map_err(|_| ClassifyError::Cancelled)??;
        tracing::info!(
            texts = predictions.len(),
            tokens,
            queue_wait_ms = queue_wait.as_secs_f64() * 1e3,
            inference_ms = (admitted.elapsed() - queue_wait).as_secs_f64() * 1e3,
            "classified"
        );
        Ok(predictions)
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
        Infer::start(
            engine,
            InferOptions {
                max_queued_tokens,
                ..InferOptions::default()
            },
        )
        .unwrap()
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
            matches!(
                long,
                Err(ClassifyError::Overloaded {
                    queued_tokens: 60,
                    ..
                })
            ),
            "{long:?}"
        );
        drop(held);
        assert_eq!(
            infer.queue.tokens.load(Ordering::Acquire),
            0,
            "every ticket given back"
        );
        // Alone, a request larger than the whole budget still runs.
        let alone = infer.classify(vec!["so very happy ".repeat(20)]).await;
        assert_eq!(alone.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn admission_refuses_what_would_wait_past_the_bound_with_the_expected_wait() {
        let infer = Infer::start(
            Engine::load(
                &ModelDir::open(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/emotion"),
                )
                .unwrap(),
                EngineOptions::default(),
            )
            .unwrap(),
            InferOptions {
                max_queued_tokens: usize::MAX,
                max_queue_wait: Duration::from_secs(5),
                nice: 0,
            },
        )
        .unwrap();
        // 12,000 tokens queued: 3 s at the prior rate, so another 4,000 fit (4 s) ...
        let held = infer.admit(12_000).unwrap();
        let fits = infer.check(12_000, 4_000);
        assert!(fits.is_ok(), "{fits:?}");
        // ... and 12,000 more (6 s) do not; the client is told when the queue drains.
        match infer.check(12_000, 12_000) {
            Err(ClassifyError::Overloaded { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_secs(3))
            }
            other => panic!("{other:?}"),
        }
        // Refused by an estimate, before tokenization: 100 posts of 2,000 characters.
        let long_posts = vec!["word ".repeat(400); 100];
        assert!(matches!(
            infer.classify(long_posts).await,
            Err(ClassifyError::Overloaded { .. })
        ));
        drop(held);
        // Alone, any request is let in.
        assert!(infer.check(0, 1_000_000).is_ok());
    }

    #[tokio::test]
    async fn a_job_that_waited_past_the_bound_is_answered_overloaded_not_run() {
        let infer = bundled(usize::MAX);
        // Admitted when the queue looked short, then kept waiting (the machine slowed).
        let ticket = infer.admit(100).unwrap();
        let (reply, answer) = oneshot::channel();
        let long_ago = Instant::now()
            .checked_sub(InferOptions::DEFAULT_MAX_QUEUE_WAIT + Duration::from_secs(1))
            .unwrap();
        infer
            .jobs
            .send(Job {
                encodings: vec![vec![101, 102]],
                reply,
                ticket,
                admitted: long_ago,
            })
            .unwrap();
        let answer = answer.await.unwrap();
        assert!(
            matches!(answer, Err(ClassifyError::Overloaded { .. })),
            "{answer:?}"
        );
        assert_eq!(infer.queue.tokens.load(Ordering::Acquire), 0);
        // A job that has not waited long runs as usual.
        assert_eq!(infer.classify(vec!["happy".into()]).await.unwrap().len(), 1);
    }

    #[test]
    fn throughput_follows_the_measured_batches() {
        let t = Throughput::new();
        assert_eq!(t.tokens_per_second(), Throughput::PRIOR_TOKENS_PER_SECOND);
        for _ in 0..40 {
            t.record(2_000, Duration::from_millis(100));
        }
        assert!((t.tokens_per_second() - 20_000.0).abs() < 1.0);
        let two = t.time_for(40_000).as_secs_f64();
        assert!((two - 2.0).abs() < 1e-3, "{two}");
        // A flood takes the CPU: a few full batches bring the estimate down.
        for _ in 0..8 {
            t.record(2_000, Duration::from_millis(400));
        }
        assert!(t.tokens_per_second() < 6_000.0, "{}", t.tokens_per_second());
        // A batch of a few short texts moves it little.
        let before = t.tokens_per_second();
        t.record(10, Duration::from_secs(1));
        assert!((t.tokens_per_second() - before).abs() < 0.01 * before);
    }

    #[tokio::test]
    async fn tokens_leave_the_queue_batch_by_batch() {
        let infer = bundled(usize::MAX);
        let mut ticket = infer.admit(1_000).unwrap();
        ticket.release(400);
        assert_eq!(infer.queue.tokens.load(Ordering::Acquire), 600);
        ticket.release(10_000);
        assert_eq!(
            infer.queue.tokens.load(Ordering::Acquire),
            0,
            "never below zero"
        );
        drop(ticket);
        assert_eq!(infer.queue.tokens.load(Ordering::Acquire), 0);
    }
}
