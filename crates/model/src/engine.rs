use std::sync::Arc;
use std::time::Instant;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;

use moodwire_core::{Emotion, Prediction};

use crate::{runtime, Encoder, ModelDir, ModelError};

/// How the engine uses the CPU.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// ONNX Runtime intra-op threads; 0 means all cores.
    pub intra_threads: usize,
    /// Most texts in one batch.
    pub max_batch_size: usize,
    /// Most padded tokens (batch size x longest text) in one batch.
    pub max_batch_tokens: usize,
    /// Sort texts by length before batching (on by default; off only to
    /// measure what it saves, see `moodwire bench`).
    pub length_bucketing: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            intra_threads: 0,
            // Measured best on 2 cores (see BENCHMARKS.md): small batches of
            // similar length beat big ones, which pay for more padding.
            max_batch_size: 16,
            max_batch_tokens: 2048,
            length_bucketing: true,
        }
    }
}

/// What one batch finished (see [`Engine::classify_with`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchDone {
    pub texts: usize,
    /// Its texts' tokens, padding not counted.
    pub tokens: usize,
}

/// One ONNX Runtime session and the tokenizer in front of it. Blocking: call it
/// from a dedicated thread (see [`crate::Infer`]).
pub struct Engine {
    session: Session,
    encoder: Arc<Encoder>,
    labels: Vec<Emotion>,
    /// Logits are divided by it before the softmax: the model's calibration.
    temperature: f32,
    /// BERT exports often take `token_type_ids`; ours does not. Fed as zeros when asked for.
    wants_token_type_ids: bool,
    options: EngineOptions,
    version: String,
}

impl Engine {
    pub fn load(dir: &ModelDir, options: EngineOptions) -> Result<Self, ModelError> {
        let environment = runtime::environment()?;
        let path = dir.model_file();
        let session_error = |reason: String| ModelError::Session {
            path: path.clone(),
            reason,
        };
        let threads = if options.intra_threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            options.intra_threads
        };
        // Builder errors carry the builder, which is not Send: turn them into strings first.
        let session = Session::builder(&environment)
            .map_err(|e| session_error(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| session_error(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| session_error(e.to_string()))?
            .commit_from_file(&path)
            .map_err(|e| session_error(e.to_string()))?;
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !input_names.contains(&required) {
                return Err(session_error(format!(
                    "the graph has no `{required}` input (inputs: {input_names:?})"
                )));
            }
        }
        let wants_token_type_ids = input_names.contains(&"token_type_ids");
        let encoder = Arc::new(Encoder::from_file(&dir.tokenizer_file(), &dir.config)?);
        Ok(Engine {
            session,
            encoder,
            labels: dir.config.labels.clone(),
            temperature: dir.config.temperature,
            wants_token_type_ids,
            options,
            version: dir.version.clone(),
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Classifies texts, in order.
    pub fn classify(&mut self, texts: &[impl AsRef<str>]) -> Result<Vec<Prediction>, ModelError> {
        self.classify_with(texts, |_: BatchDone| true)
            .map(|p| p.expect("never cancelled"))
    }

    /// The tokenizer in front of the session, to encode texts on other threads
    /// (see [`Engine::classify_encoded`]).
    pub fn encoder(&self) -> Arc<Encoder> {
        Arc::clone(&self.encoder)
    }

    /// Like [`Engine::classify`], but after each batch tells `keep_going` what it
    /// just finished, and stops (returning `None`) when it answers `false`: progress
    /// bars, throughput measurement and cancellation all hook in here.
    pub fn classify_with(
        &mut self,
        texts: &[impl AsRef<str>],
        keep_going: impl FnMut(BatchDone) -> bool,
    ) -> Result<Option<Vec<Prediction>>, ModelError> {
        let encodings = texts
            .iter()
            .map(|t| self.encoder.encode(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.classify_encoded(&encodings, keep_going)
    }

    /// Classifies texts already encoded by [`Engine::encoder`], in order; `keep_going`
    /// as in [`Engine::classify_with`].
    pub fn classify_encoded(
        &mut self,
        encodings: &[Vec<u32>],
        mut keep_going: impl FnMut(BatchDone) -> bool,
    ) -> Result<Option<Vec<Prediction>>, ModelError> {
        let lengths: Vec<usize> = encodings.iter().map(Vec::len).collect();
        let mut predictions: Vec<Option<Prediction>> = vec![None; encodings.len()];
        let batches = if self.options.length_bucketing {
            plan_batches(
                &lengths,
                self.options.max_batch_size,
                self.options.max_batch_tokens,
            )
        } else {
            fixed_batches(encodings.len(), self.options.max_batch_size)
        };
        for batch in batches {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].as_slice()).collect();
            for (&i, probabilities) in batch.iter().zip(self.run_batch(&rows)?) {
                predictions[i] = Some(Prediction::from_probabilities(probabilities));
            }
            let done = BatchDone {
                texts: batch.len(),
                tokens: rows.iter().map(|r| r.len()).sum(),
            };
            if !keep_going(done) {
                return Ok(None);
            }
        }
        Ok(Some(
            predictions
                .into_iter()
                .map(|p| p.expect("every text is in one batch"))
                .collect(),
        ))
    }

    /// Runs one batch, padded to its longest row; probabilities in [`Emotion`] order.
    fn run_batch(&mut self, rows: &[&[u32]]) -> Result<Vec<[f32; Emotion::COUNT]>, ModelError> {
        let started = Instant::now();
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let shape = [rows.len(), longest];
        let mut ids = vec![i64::from(self.encoder.pad_id()); rows.len() * longest];
        let mut mask = vec![0i64; rows.len() * longest];
        for (r, row) in rows.iter().enumerate() {
            for (c, &id) in row.iter().enumerate() {
                ids[r * longest + c] = i64::from(id);
                mask[r * longest + c] = 1;
            }
        }
        let tensor = |data: Vec<i64>| -> Result<SessionInputValue<'static>, ModelError> {
            Ok(Tensor::from_array((shape, data))
                .map_err(|e| ModelError::Inference(e.to_string()))?
                .into())
        };
        let mut inputs = vec![
            ("input_ids", tensor(ids)?),
            ("attention_mask", tensor(mask)?),
        ];
        if self.wants_token_type_ids {
            inputs.push(("token_type_ids", tensor(vec![0; rows.len() * longest])?));
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| ModelError::Inference(e.to_string()))?;
        let (out_shape, logits) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| ModelError::Inference(e.to_string()))?;
        let width = self.labels.len();
        if out_shape.len() != 2
            || out_shape[0] as usize != rows.len()
            || out_shape[1] as usize != width
        {
            return Err(ModelError::Inference(format!(
                "expected logits of shape [{}, {width}], got {out_shape:?}",
                rows.len()
            )));
        }
        let probabilities = logits
            .chunks_exact(width)
            .map(|row| {
                let scaled: Vec<f32> = row.iter().map(|x| x / self.temperature).collect();
                let p = softmax(&scaled);
                let mut by_emotion = [0f32; Emotion::COUNT];
                for (label, value) in self.labels.iter().zip(p) {
                    by_emotion[label.index()] = value;
                }
                by_emotion
            })
            .collect();
        metrics::histogram!("moodwire_inference_batch_size").record(rows.len() as f64);
        metrics::histogram!("moodwire_inference_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(probabilities)
    }
}

/// Numerically stable softmax.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Groups texts into batches of similar length: sorted by token count, each
/// batch grows until it holds `max_size` texts or its padded size (texts x
/// longest) would pass `max_tokens`. Padding short texts to a long one's length
/// wastes most of a batch's work; sorting first keeps that waste small.
pub(crate) fn plan_batches(
    lengths: &[usize],
    max_size: usize,
    max_tokens: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so text i is the longest of the batch it joins.
        let padded = (current.len() + 1) * lengths[i];
        if !current.is_empty() && (current.len() == max_size.max(1) || padded > max_tokens) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Batches of `size` in input order, as a plain inference loop makes them.
fn fixed_batches(count: usize, size: usize) -> Vec<Vec<usize>> {
    (0..count)
        .collect::<Vec<_>>()
        .chunks(size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_a_distribution_and_stable_for_large_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        let q = softmax(&[1.0, 2.0, 3.0]);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // Hand-computed: e^1 / (e^1 + e^2 + e^3)
        assert!((q[0] - 0.090_030_57).abs() < 1e-6);
    }

    #[test]
    fn batches_cover_every_text_once_and_respect_both_budgets() {
        let lengths: Vec<usize> = (0..257).map(|i| 5 + (i * 37) % 120).collect();
        let batches = plan_batches(&lengths, 32, 1024);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..257).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() <= 32);
            assert!(
                b.len() == 1 || b.len() * longest <= 1024,
                "batch of {} x {longest}",
                b.len()
            );
        }
    }

    #[test]
    fn a_text_longer_than_the_budget_still_gets_a_batch_of_its_own() {
        assert_eq!(
            plan_batches(&[10, 5000, 10], 32, 100),
            vec![vec![0, 2], vec![1]]
        );
        assert!(plan_batches(&[], 32, 100).is_empty());
    }
}
