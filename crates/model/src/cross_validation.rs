//! Stratified k-fold cross-validation and its scores.

use std::collections::BTreeSet;

use crate::ModelError;
use crate::model::{Model, TrainingExample};
use crate::options::TrainingOptions;

/// The result of [`cross_validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    /// Every label of the examples, sorted; indexes `confusion` and the
    /// out-of-fold predictions.
    pub labels: Vec<String>,
    /// One entry per fold, in fold order.
    pub folds: Vec<FoldScore>,
    /// Accuracy over the folds.
    pub accuracy: MeanAndDeviation,
    /// Macro F1 over the folds.
    pub macro_f1: MeanAndDeviation,
    /// `confusion[actual][predicted]`: counts over all folds, so every example
    /// is counted once, predicted by the model that did not see it.
    pub confusion: Vec<Vec<u32>>,
    /// Per example (in input order): its out-of-fold prediction, for error
    /// listings and for choosing a confidence threshold.
    pub predictions: Vec<OutOfFoldPrediction>,
}

/// The scores of one fold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldScore {
    pub test_examples: usize,
    pub accuracy: f64,
    /// Mean F1 over the labels that occur in the fold's test examples or its
    /// predictions (scikit-learn's `f1_score(average="macro")`).
    pub macro_f1: f64,
}

/// Mean and population standard deviation (numpy's `std`, `ddof = 0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanAndDeviation {
    pub mean: f64,
    pub standard_deviation: f64,
}

impl MeanAndDeviation {
    pub fn of(values: &[f64]) -> MeanAndDeviation {
        if values.is_empty() {
            return MeanAndDeviation {
                mean: 0.0,
                standard_deviation: 0.0,
            };
        }
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let variance = values
            .iter()
            .map(|value| (value - mean) * (value - mean))
            .sum::<f64>()
            / count;
        MeanAndDeviation {
            mean,
            standard_deviation: variance.sqrt(),
        }
    }
}

impl std::fmt::Display for MeanAndDeviation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{:.3} ± {:.3}",
            self.mean, self.standard_deviation
        )
    }
}

/// What the model trained without an example said about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutOfFoldPrediction {
    pub fold: usize,
    /// Index into [`CrossValidation::labels`].
    pub actual: usize,
    pub predicted: usize,
    /// Probability of `predicted`.
    pub probability: f32,
}

/// Splits the examples into `folds` stratified folds (each label spread
/// evenly, shuffled with `seed`), trains on all folds but one and tests on
/// that one, for each fold in turn.
///
/// Fails if `folds` is below 2 or above the number of examples, or if a
/// training set has a single label.
pub fn cross_validate(
    examples: &[TrainingExample<'_>],
    options: &TrainingOptions,
    folds: usize,
    seed: u64,
) -> Result<CrossValidation, ModelError> {
    if folds < 2 || folds > examples.len() {
        return Err(ModelError::InvalidFolds {
            folds,
            examples: examples.len(),
        });
    }
    let labels: Vec<String> = examples
        .iter()
        .map(|example| example.label)
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let label_of = |example: &TrainingExample<'_>| {
        labels
            .binary_search_by(|label| label.as_str().cmp(example.label))
            .unwrap_or_default()
    };
    let fold_of = stratified_folds(examples, folds, seed);

    let label_count = labels.len();
    let mut confusion = vec![vec![0u32; label_count]; label_count];
    let mut predictions = vec![
        OutOfFoldPrediction {
            fold: 0,
            actual: 0,
            predicted: 0,
            probability: 0.0,
        };
        examples.len()
    ];
    let mut fold_scores = Vec::with_capacity(folds);
    for fold in 0..folds {
        let training: Vec<TrainingExample<'_>> = examples
            .iter()
            .zip(&fold_of)
            .filter(|&(_, &example_fold)| example_fold != fold)
            .map(|(example, _)| *example)
            .collect();
        let model = Model::train(&training, options)?;
        let mut fold_confusion = vec![vec![0u32; label_count]; label_count];
        for (index, example) in examples.iter().enumerate() {
            if fold_of[index] != fold {
                continue;
            }
            let prediction = model.predict(example.subject, example.text);
            let actual = label_of(example);
            let predicted = labels.binary_search(&prediction.label).unwrap_or_default();
            fold_confusion[actual][predicted] += 1;
            confusion[actual][predicted] += 1;
            predictions[index] = OutOfFoldPrediction {
                fold,
                actual,
                predicted,
                probability: prediction.probability,
            };
        }
        fold_scores.push(score(&fold_confusion));
    }
    let accuracies: Vec<f64> = fold_scores.iter().map(|fold| fold.accuracy).collect();
    let macro_f1s: Vec<f64> = fold_scores.iter().map(|fold| fold.macro_f1).collect();
    Ok(CrossValidation {
        labels,
        folds: fold_scores,
        accuracy: MeanAndDeviation::of(&accuracies),
        macro_f1: MeanAndDeviation::of(&macro_f1s),
        confusion,
        predictions,
    })
}

/// The fold number (`0..folds`) of each example, as [`cross_validate`]
/// assigns them. Within each label (in sorted order) the examples are
/// shuffled with `seed`, then dealt to the folds round-robin, the deal
/// continuing from one label to the next so the folds also have equal sizes
/// (within one). `folds` of 0 is treated as 1.
pub fn stratified_folds(examples: &[TrainingExample<'_>], folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let labels: BTreeSet<&str> = examples.iter().map(|example| example.label).collect();
    let mut random = SplitMix64 { state: seed };
    let mut fold_of = vec![0usize; examples.len()];
    let mut next_fold = 0usize;
    for label in labels {
        let mut members: Vec<usize> = examples
            .iter()
            .enumerate()
            .filter(|(_, example)| example.label == label)
            .map(|(index, _)| index)
            .collect();
        // Fisher-Yates.
        for end in (1..members.len()).rev() {
            let pick = (random.next() % (end as u64 + 1)) as usize;
            members.swap(end, pick);
        }
        for member in members {
            fold_of[member] = next_fold;
            next_fold = (next_fold + 1) % folds;
        }
    }
    fold_of
}

/// Accuracy and macro F1 of one confusion matrix.
fn score(confusion: &[Vec<u32>]) -> FoldScore {
    let total: u32 = confusion.iter().flatten().sum();
    let correct: u32 = (0..confusion.len())
        .map(|label| confusion[label][label])
        .sum();
    let mut f1_sum = 0.0;
    let mut f1_labels = 0usize;
    for label in 0..confusion.len() {
        let true_positives = f64::from(confusion[label][label]);
        let actual: u32 = confusion[label].iter().sum();
        let predicted: u32 = confusion.iter().map(|row| row[label]).sum();
        if actual == 0 && predicted == 0 {
            continue;
        }
        f1_labels += 1;
        let denominator = f64::from(actual) + f64::from(predicted);
        f1_sum += 2.0 * true_positives / denominator;
    }
    FoldScore {
        test_examples: total as usize,
        accuracy: if total == 0 {
            0.0
        } else {
            f64::from(correct) / f64::from(total)
        },
        macro_f1: if f1_labels == 0 {
            0.0
        } else {
            f1_sum / f1_labels as f64
        },
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, well-known generator,
/// enough to shuffle fold assignments reproducibly.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_matches_the_definition() {
        // Label 0: 2 right, 1 predicted as 1. Label 1: 1 right.
        let confusion = vec![vec![2, 1], vec![0, 1]];
        let fold = score(&confusion);
        assert!((fold.accuracy - 0.75).abs() < 1e-12);
        let f1_label_0 = 2.0 * 2.0 / (3.0 + 2.0);
        let f1_label_1 = 2.0 * 1.0 / (1.0 + 2.0);
        assert!((fold.macro_f1 - (f1_label_0 + f1_label_1) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn folds_are_stratified_and_balanced() {
        let mut examples = Vec::new();
        for index in 0..23 {
            let label = if index < 15 { "a" } else { "b" };
            examples.push(TrainingExample {
                subject: "",
                text: "",
                label,
            });
        }
        let fold_of = stratified_folds(&examples, 5, 7);
        for fold in 0..5 {
            let size = fold_of.iter().filter(|&&f| f == fold).count();
            assert!((4..=5).contains(&size), "fold {fold} has {size}");
            let of_a = (0..15).filter(|&index| fold_of[index] == fold).count();
            assert_eq!(of_a, 3);
        }
        assert_eq!(fold_of, stratified_folds(&examples, 5, 7));
    }

    #[test]
    fn mean_and_population_deviation() {
        let summary = MeanAndDeviation::of(&[1.0, 3.0]);
        assert_eq!(summary.mean, 2.0);
        assert_eq!(summary.standard_deviation, 1.0);
    }
}
