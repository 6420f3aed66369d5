//! Classification metrics for `moodwire eval`, defined as scikit-learn defines
//! them (zero_division = 0), so the numbers equal `experiment/evaluate.py`'s.

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
}

/// Accumulates (gold, predicted) pairs.
#[derive(Debug, Default, Clone)]
pub struct ConfusionMatrix {
    cells: [[u64; Emotion::COUNT]; Emotion::COUNT],
}

impl ConfusionMatrix {
    pub fn add(&mut self, gold: Emotion, predicted: Emotion) {
        self.cells[gold.index()][predicted.index()] += 1;
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
            m.add(g, p);
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
    }

    #[test]
    fn empty_input_reports_zeros_not_nan() {
        let r = ConfusionMatrix::default().report();
        assert_eq!(r.n, 0);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.macro_f1, 0.0);
        assert_eq!(r.weighted_f1, 0.0);
    }
}
