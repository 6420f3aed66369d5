//! Classification metrics for `moodwire eval`, defined as scikit-learn defines
//! them (zero_division = 0), and the expected calibration error, so the numbers
//! equal `experiment/evaluate.py`'s.

use serde::Serialize;

use moodwire_core::Emotion;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub label: Emotion,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub n: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// Rows are the true label, columns the predicted one, both in model order.
    pub confusion_matrix: [[u64; Emotion::COUNT]; Emotion::COUNT],
    /// Expected calibration error over [`ECE_BINS`] equal-width bins of confidence:
    /// how far the model's confidence is from how often it is right.
    pub ece: f64,
}

/// Bins of the expected calibration error (as `experiment/common.py`).
pub const ECE_BINS: usize = 15;

/// One confidence bin: predictions, right ones, summed confidence.
#[derive(Debug, Default, Clone, Copy)]
struct Bin {
    n: u64,
    correct: u64,
    confidence: f64,
}

/// Accumulates (gold, predicted, confidence) triples.
#[derive(Debug, Default, Clone)]
pub struct ConfusionMatrix {
    cells: [[u64; Emotion::COUNT]; Emotion::COUNT],
    bins: [Bin; ECE_BINS],
}

impl ConfusionMatrix {
    /// One prediction: its label and the probability the model gave it.
    pub fn add(&mut self, gold: Emotion, predicted: Emotion, confidence: f32) {
        self.cells[gold.index()][predicted.index()] += 1;
        // Bins are (low, high], the first one [0, high], as numpy's comparisons in evaluate.py.
        let confidence = f64::from(confidence).clamp(0.0, 1.0);
        let bin = ((confidence * ECE_BINS as f64).ceil() as usize).clamp(1, ECE_BINS) - 1;
        let bin = &mut self.bins[bin];
        bin.n += 1;
        bin.correct += u64::from(gold == predicted);
        bin.confidence += confidence;
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (row, other_row) in self.cells.iter_mut().zip(&other.cells) {
            for (cell, other_cell) in row.iter_mut().zip(other_row) {
                *cell += other_cell;
            }
        }
        for (bin, other_bin) in self.bins.iter_mut().zip(&other.bins) {
            bin.n += other_bin.n;
            bin.correct += other_bin.correct;
            bin.confidence += other_bin.confidence;
        }
    }

    fn ece(&self, n: u64) -> f64 {
        if n == 0 {
            return 0.0;
        }
        self.bins
            .iter()
            .filter(|b| b.n > 0)
            .map(|b| {
                let accuracy = b.correct as f64 / b.n as f64;
                let confidence = b.confidence / b.n as f64;
                b.n as f64 / n as f64 * (accuracy - confidence).abs()
            })
            .sum()
    }

    pub fn report(&self) -> EvalReport {
        let n: u64 = self.cells.iter().flatten().sum();
        let correct: u64 = (0..Emotion::COUNT).map(|i| self.cells[i][i]).sum();
        let per_class: Vec<ClassMetrics> = Emotion::ALL
            .into_iter()
            .map(|e| {
                let i = e.index();
                let tp = self.cells[i][i];
                let support: u64 = self.cells[i].iter().sum();
                let predicted: u64 = self.cells.iter().map(|row| row[i]).sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassMetrics {
                    label: e,
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / Emotion::COUNT as f64;
        let weighted_f1 = if n == 0 {
            0.0
        } else {
            per_class
                .iter()
                .map(|c| c.f1 * c.support as f64)
                .sum::<f64>()
                / n as f64
        };
        EvalReport {
            n,
            accuracy: ratio(correct, n),
            macro_f1,
            weighted_f1,
            per_class,
            confusion_matrix: self.cells,
            ece: self.ece(n),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Emotion::*;

    #[test]
    fn hand_computed_example() {
        // gold:      joy joy joy sadness sadness anger
        // predicted: joy joy sadness sadness joy anger
        let mut m = ConfusionMatrix::default();
        for (g, p) in [
            (Joy, Joy),
            (Joy, Joy),
            (Joy, Sadness),
            (Sadness, Sadness),
            (Sadness, Joy),
            (Anger, Anger),
        ] {
            m.add(g, p, 0.9);
        }
        let r = m.report();
        assert_eq!(r.n, 6);
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let joy = &r.per_class[Joy.index()];
        // joy: tp 2, predicted 3, support 3 -> p = r = f1 = 2/3
        assert!((joy.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((joy.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((joy.f1 - 2.0 / 3.0).abs() < 1e-12);
        let sad = &r.per_class[Sadness.index()];
        // sadness: tp 1, predicted 2, support 2 -> 0.5 each
        assert!((sad.f1 - 0.5).abs() < 1e-12);
        let anger = &r.per_class[Anger.index()];
        assert_eq!(anger.f1, 1.0);
        // love, fear, surprise: no support, never predicted -> 0 (zero_division = 0)
        assert_eq!(r.per_class[Love.index()].f1, 0.0);
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5 + 1.0) / 6.0).abs() < 1e-12);
        assert!((r.weighted_f1 - (3.0 * 2.0 / 3.0 + 2.0 * 0.5 + 1.0) / 6.0).abs() < 1e-12);
        assert_eq!(r.confusion_matrix[Joy.index()][Sadness.index()], 1);
        assert_eq!(r.confusion_matrix[Sadness.index()][Joy.index()], 1);
        // One bin, confidence 0.9, accuracy 4/6.
        assert!((r.ece - (f64::from(0.9f32) - 4.0 / 6.0)).abs() < 1e-12);
    }

    #[test]
    fn calibration_error_weighs_each_bin_by_its_share() {
        let mut m = ConfusionMatrix::default();
        // Four at 0.95, three right; two at 0.30, one right.
        for (p, conf) in [
            (Joy, 0.95),
            (Joy, 0.95),
            (Joy, 0.95),
            (Fear, 0.95),
            (Joy, 0.3),
            (Fear, 0.3),
        ] {
            m.add(Joy, p, conf);
        }
        let r = m.report();
        let expected = 4.0 / 6.0 * (0.95f64 - 0.75).abs() + 2.0 / 6.0 * (0.3f64 - 0.5).abs();
        assert!((r.ece - expected).abs() < 1e-6, "{}", r.ece);
        let mut perfect = ConfusionMatrix::default();
        perfect.add(Joy, Joy, 1.0);
        assert_eq!(perfect.report().ece, 0.0);
    }

    #[test]
    fn empty_input_reports_zeros_not_nan() {
        let r = ConfusionMatrix::default().report();
        assert_eq!(r.n, 0);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.macro_f1, 0.0);
        assert_eq!(r.weighted_f1, 0.0);
        assert_eq!(r.ece, 0.0);
    }
}
