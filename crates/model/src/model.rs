//! [`Model`]: training (vocabulary, TF-IDF, logistic regression) and prediction.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use rustc_hash::FxHashMap;

use crate::ModelError;
use crate::features::{Feature, FeatureKind, Featuriser, Lookup, Vectorised, document_features};
use crate::options::TrainingOptions;
use crate::tokens::push_words;

/// How many features [`Prediction::top_features`] lists at most.
pub const EXPLANATION_FEATURES: usize = 6;

/// One labelled message to learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingExample<'a> {
    pub subject: &'a str,
    /// The text to learn from: for mail, the new text of the message (quotes
    /// and signature stripped) and the text of forwarded originals.
    pub text: &'a str,
    /// The category slug, for example `billing`.
    pub label: &'a str,
}

/// A trained model: vocabulary, inverse document frequencies, weights and
/// label names. Immutable; cheap to share between threads (`&Model` is `Sync`).
#[derive(Debug, Clone)]
pub struct Model {
    /// How it was trained; the feature half is needed to predict.
    pub(crate) options: TrainingOptions,
    /// Category names, sorted; index `k` is row `k` of every score vector.
    pub(crate) labels: Vec<String>,
    /// The vocabulary, sorted by kind then text; index = feature id.
    pub(crate) features: Vec<Feature>,
    /// Per feature: `ln((1 + n) / (1 + df)) + 1`, with `n` training examples
    /// of which `df` contain the feature (scikit-learn's smoothed idf).
    pub(crate) idf: Vec<f32>,
    /// Feature-major `[features x labels]`: `weights[id * labels + k]`, so the
    /// weights of one feature are contiguous for sparse prediction.
    pub(crate) weights: Vec<f32>,
    /// Per label: the bias term.
    pub(crate) intercepts: Vec<f32>,
    /// Scores are divided by this before the softmax, so the probabilities
    /// match how often the model is right (1 without calibration).
    pub(crate) temperature: f32,
    /// Training words that are not `Word` features, sorted: a cache for
    /// speed (see [`Lookup::build`]), no effect on results.
    pub(crate) known_words: Vec<String>,
    /// Tables for fast vectorising, rebuilt from the above.
    pub(crate) lookup: Lookup,
}

/// What [`Model::predict`] says about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its index in [`Model::labels`].
    pub label_index: usize,
    /// Its probability.
    pub probability: f32,
    /// Softmax probability of every label, in [`Model::labels`] order (they
    /// add up to one). Calibrated by temperature scaling when the model was
    /// trained with `calibration_folds` (the default): on the dev corpus,
    /// out-of-fold, the mean probability of the chosen label is close to the
    /// accuracy. Choose a triage threshold from
    /// [`crate::CrossValidation::predictions`].
    pub probabilities: Vec<f32>,
    /// The words and word pairs of the message that pushed hardest towards
    /// `label`, strongest first (at most [`EXPLANATION_FEATURES`], positive only).
    pub top_features: Vec<FeatureContribution>,
}

/// One word or word pair and how much it added to the best label's score
/// (its weight times its TF-IDF value, in logit units before the
/// temperature; a word includes its share of the character n-grams it
/// contains).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureContribution {
    pub kind: FeatureKind,
    pub text: String,
    pub contribution: f32,
}

impl fmt::Display for FeatureContribution {
    /// `` `invoice` +0.81 ``
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "`{}` {:+.2}", self.text, self.contribution)
    }
}

impl Model {
    /// Trains a model: chooses the vocabulary, computes inverse document
    /// frequencies, vectorises every example and fits a multinomial logistic
    /// regression (linfa-logistic, L-BFGS). Deterministic.
    pub fn train(
        examples: &[TrainingExample<'_>],
        options: &TrainingOptions,
    ) -> Result<Model, ModelError> {
        options.validate()?;
        if examples.is_empty() {
            return Err(ModelError::NoExamples);
        }
        let labels: Vec<String> = examples
            .iter()
            .map(|example| example.label)
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if labels.len() < 2 {
            return Err(ModelError::TooFewLabels {
                found: labels.len(),
            });
        }
        let featuriser = Featuriser::from_options(options);
        let (features, idf) = choose_vocabulary(&featuriser, examples, options)?;
        let known_words = training_words(&featuriser, examples, &features);
        let lookup = Lookup::build(featuriser, &features, &known_words);

        let mut records = Array2::<f64>::zeros((examples.len(), features.len()));
        for (row, example) in examples.iter().enumerate() {
            lookup.vectorise(&idf, example.subject, example.text, |vectorised| {
                for (&id, &value) in vectorised.ids().iter().zip(vectorised.values()) {
                    records[[row, id as usize]] = f64::from(value);
                }
            });
        }
        let targets: Array1<usize> = examples
            .iter()
            .map(|example| {
                labels
                    .binary_search_by(|label| label.as_str().cmp(example.label))
                    .unwrap_or_default()
            })
            .collect();
        let dataset = DatasetBase::new(records, targets);
        let fitted = MultiLogisticRegression::default()
            .alpha(options.l2_penalty)
            .max_iterations(options.max_iterations)
            .gradient_tolerance(options.gradient_tolerance)
            .with_intercept(true)
            .fit(&dataset)
            .map_err(|error| ModelError::Solver {
                reason: error.to_string(),
            })?;

        // linfa orders its columns by sorted class value; map them back to
        // label indices in case a label were ever missing.
        let label_count = labels.len();
        let mut weights = vec![0.0f32; features.len() * label_count];
        let mut intercepts = vec![0.0f32; label_count];
        let params = fitted.params();
        for (column, &label_index) in fitted.classes().iter().enumerate() {
            intercepts[label_index] = fitted.intercept()[column] as f32;
            for id in 0..features.len() {
                weights[id * label_count + label_index] = params[[id, column]] as f32;
            }
        }
        let mut model = Model {
            options: *options,
            labels,
            features,
            idf,
            weights,
            intercepts,
            temperature: 1.0,
            known_words,
            lookup,
        };
        if options.calibration_folds >= 2 {
            model.temperature = fit_temperature(examples, options, &model.labels)?;
        }
        Ok(model)
    }

    /// The category names, sorted; [`Prediction::probabilities`] follows this order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The options the model was trained with.
    pub fn options(&self) -> &TrainingOptions {
        &self.options
    }

    /// Number of features in the vocabulary.
    pub fn feature_count(&self) -> usize {
        self.features.len()
    }

    /// Classifies one message and explains the result. Never fails: a
    /// message with no known feature gets the label priors learned in the
    /// intercepts.
    pub fn predict(&self, subject: &str, text: &str) -> Prediction {
        let (probabilities, top_features) =
            self.lookup
                .vectorise(&self.idf, subject, text, |vectorised| {
                    let probabilities = softmax(&self.scores(vectorised), self.temperature);
                    let top_features = self.explain(vectorised, best_index(&probabilities));
                    (probabilities, top_features)
                });
        let label_index = best_index(&probabilities);
        Prediction {
            label: self.labels[label_index].clone(),
            label_index,
            probability: probabilities[label_index],
            probabilities,
            top_features,
        }
    }

    /// The probability of every label, in [`Model::labels`] order, without
    /// the explanation: the same numbers as [`Model::predict`], for bulk
    /// work such as choosing a confidence threshold.
    pub fn probabilities(&self, subject: &str, text: &str) -> Vec<f32> {
        self.lookup
            .vectorise(&self.idf, subject, text, |vectorised| {
                softmax(&self.scores(vectorised), self.temperature)
            })
    }

    /// The probability of every label (as [`Model::probabilities`]) and the
    /// words behind the label that `choose` picks from them, in one pass over
    /// the text: for a caller that combines the probabilities with other
    /// evidence and explains only the label that finally wins. `choose`
    /// returns `None` when no label of this model needs explaining.
    pub fn probabilities_explaining(
        &self,
        subject: &str,
        text: &str,
        choose: impl FnOnce(&[f32]) -> Option<usize>,
    ) -> (Vec<f32>, Vec<FeatureContribution>) {
        self.lookup
            .vectorise(&self.idf, subject, text, |vectorised| {
                let probabilities = softmax(&self.scores(vectorised), self.temperature);
                let top_features = match choose(&probabilities) {
                    Some(label_index) if label_index < self.labels.len() => {
                        self.explain(vectorised, label_index)
                    }
                    _ => Vec::new(),
                };
                (probabilities, top_features)
            })
    }

    /// The linear scores (logits), before the temperature.
    fn logits(&self, subject: &str, text: &str) -> Vec<f32> {
        self.lookup
            .vectorise(&self.idf, subject, text, |vectorised| {
                self.scores(vectorised)
            })
    }

    /// The temperature the scores are divided by before the softmax (1 if
    /// the model was trained without calibration).
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// Linear scores (logits): intercept plus weights times values.
    fn scores(&self, vectorised: &Vectorised<'_>) -> Vec<f32> {
        let label_count = self.labels.len();
        let mut scores = self.intercepts.clone();
        for (&id, &value) in vectorised.ids().iter().zip(vectorised.values()) {
            let start = id as usize * label_count;
            let row = &self.weights[start..start + label_count];
            for (score, weight) in scores.iter_mut().zip(row) {
                *score += weight * value;
            }
        }
        scores
    }

    /// The strongest words and word pairs behind `label_index`.
    fn explain(
        &self,
        vectorised: &mut Vectorised<'_>,
        label_index: usize,
    ) -> Vec<FeatureContribution> {
        let label_count = self.labels.len();
        let weight_of = |id: u32| self.weights[id as usize * label_count + label_index];
        let mut top = Strongest::default();
        for (&id, &value) in vectorised.ids().iter().zip(vectorised.values()) {
            if self.lookup.is_pair(id) {
                top.offer((
                    FeatureKind::WordPair,
                    self.features[id as usize].text.as_str(),
                    weight_of(id) * value,
                ));
            }
        }
        vectorised.for_each_word_share(weight_of, |text, contribution| {
            top.offer((FeatureKind::Word, text, contribution));
        });
        top.into_contributions()
    }
}

/// The strongest positive contributions seen, strongest first; ties by text.
/// One pass keeping a short sorted list, so a long message costs about one
/// comparison per word instead of a sort.
#[derive(Default)]
struct Strongest<'a> {
    top: Vec<(FeatureKind, &'a str, f32)>,
}

impl<'a> Strongest<'a> {
    fn by_strength(left: &(FeatureKind, &str, f32), right: &(FeatureKind, &str, f32)) -> Ordering {
        right
            .2
            .total_cmp(&left.2)
            .then_with(|| left.1.cmp(right.1))
            .then_with(|| left.0.cmp(&right.0))
    }

    fn offer(&mut self, contribution: (FeatureKind, &'a str, f32)) {
        if contribution.2 <= 0.0 {
            return;
        }
        if self.top.len() == EXPLANATION_FEATURES
            && self.top.last().is_some_and(|weakest| {
                contribution.2 < weakest.2 || Self::by_strength(&contribution, weakest).is_ge()
            })
        {
            return;
        }
        let position = self
            .top
            .partition_point(|kept| Self::by_strength(kept, &contribution).is_lt());
        self.top.insert(position, contribution);
        self.top.truncate(EXPLANATION_FEATURES);
    }

    fn into_contributions(self) -> Vec<FeatureContribution> {
        self.top
            .into_iter()
            .map(|(kind, text, contribution)| FeatureContribution {
                kind,
                text: text.to_owned(),
                contribution,
            })
            .collect()
    }
}

/// Numerically stable softmax of `scores / temperature`.
fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
    let maximum = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut exponentials: Vec<f32> = scores
        .iter()
        .map(|&score| ((score - maximum) / temperature).exp())
        .collect();
    let total: f32 = exponentials.iter().sum();
    for value in &mut exponentials {
        *value /= total;
    }
    exponentials
}

/// Index of the largest value; the first one on ties.
fn best_index(values: &[f32]) -> usize {
    let mut best = 0;
    for (index, &value) in values.iter().enumerate() {
        if value > values[best] {
            best = index;
        }
    }
    best
}

/// Seed of the calibration folds: fixed, so training stays deterministic.
const CALIBRATION_SEED: u64 = 0x5eed_ca11;

/// Temperature scaling: out-of-fold scores from `options.calibration_folds`
/// stratified folds, then the temperature that minimises their mean log
/// loss, found by golden-section search over the inverse temperature in
/// [0.05, 20] (the log loss is convex in it).
fn fit_temperature(
    examples: &[TrainingExample<'_>],
    options: &TrainingOptions,
    labels: &[String],
) -> Result<f32, ModelError> {
    let folds = options.calibration_folds as usize;
    let fold_options = TrainingOptions {
        calibration_folds: 0,
        ..*options
    };
    let fold_of = crate::stratified_folds(examples, folds, CALIBRATION_SEED);
    // Per held-out example: its scores over all labels and its label's index.
    let mut held_out: Vec<(Vec<f32>, usize)> = Vec::with_capacity(examples.len());
    for fold in 0..folds {
        let training: Vec<TrainingExample<'_>> = examples
            .iter()
            .zip(&fold_of)
            .filter(|&(_, &example_fold)| example_fold != fold)
            .map(|(example, _)| *example)
            .collect();
        if training.len() == examples.len() {
            continue;
        }
        let fold_model = Model::train(&training, &fold_options)?;
        for (example, _) in examples.iter().zip(&fold_of).filter(|&(_, &f)| f == fold) {
            // A label missing from this fold's training set cannot be
            // predicted: its score is minus infinity; an example of such a
            // label says nothing about the temperature and is left out.
            let fold_scores = fold_model.logits(example.subject, example.text);
            let mut scores = vec![f32::NEG_INFINITY; labels.len()];
            for (fold_label, score) in fold_model.labels.iter().zip(fold_scores) {
                if let Ok(index) = labels.binary_search(fold_label) {
                    scores[index] = score;
                }
            }
            if let Ok(actual) = labels.binary_search_by(|label| label.as_str().cmp(example.label))
                && scores[actual].is_finite()
            {
                held_out.push((scores, actual));
            }
        }
    }
    if held_out.is_empty() {
        return Ok(1.0);
    }
    let log_loss = |inverse_temperature: f64| -> f64 {
        let mut total = 0.0f64;
        for (scores, actual) in &held_out {
            let maximum = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = scores
                .iter()
                .map(|&score| (inverse_temperature * f64::from(score - maximum)).exp())
                .sum();
            total += sum.ln() - inverse_temperature * f64::from(scores[*actual] - maximum);
        }
        total / held_out.len() as f64
    };
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    let (mut low, mut high) = (0.05f64, 20.0f64);
    let mut left = high - golden * (high - low);
    let mut right = low + golden * (high - low);
    let (mut left_loss, mut right_loss) = (log_loss(left), log_loss(right));
    for _ in 0..80 {
        if left_loss <= right_loss {
            high = right;
            right = left;
            right_loss = left_loss;
            left = high - golden * (high - low);
            left_loss = log_loss(left);
        } else {
            low = left;
            left = right;
            left_loss = right_loss;
            right = low + golden * (high - low);
            right_loss = log_loss(right);
        }
    }
    Ok((2.0 / (low + high)) as f32)
}

/// Every distinct word of the training texts (and subjects, if counted) that
/// is not a `Word` feature, sorted.
fn training_words(
    featuriser: &Featuriser,
    examples: &[TrainingExample<'_>],
    features: &[Feature],
) -> Vec<String> {
    if featuriser.char_ngrams.is_none() {
        return Vec::new();
    }
    let mut lowered = String::new();
    let mut words = Vec::new();
    for example in examples {
        if featuriser.subject_weight > 0 {
            push_words(
                example.subject,
                featuriser.fold_digits,
                &mut lowered,
                &mut words,
            );
        }
        push_words(
            example.text,
            featuriser.fold_digits,
            &mut lowered,
            &mut words,
        );
    }
    let distinct: BTreeSet<&str> = words.iter().map(|span| span.text(&lowered)).collect();
    distinct
        .into_iter()
        .filter(|word| {
            let feature = Feature {
                kind: FeatureKind::Word,
                text: (*word).to_owned(),
            };
            features.binary_search(&feature).is_err()
        })
        .map(str::to_owned)
        .collect()
}

/// Counts document frequencies, keeps features within the bounds, sorts them
/// and computes their idf.
fn choose_vocabulary(
    featuriser: &Featuriser,
    examples: &[TrainingExample<'_>],
    options: &TrainingOptions,
) -> Result<(Vec<Feature>, Vec<f32>), ModelError> {
    let mut document_frequencies: FxHashMap<Feature, u32> = FxHashMap::default();
    for example in examples {
        for feature in document_features(featuriser, example.subject, example.text).into_keys() {
            *document_frequencies.entry(feature).or_insert(0) += 1;
        }
    }
    let example_count = examples.len() as f64;
    let maximum_documents = f64::from(options.max_document_fraction) * example_count;
    let mut kept: Vec<(Feature, u32)> = document_frequencies
        .into_iter()
        .filter(|&(_, frequency)| {
            frequency >= options.min_document_frequency && f64::from(frequency) <= maximum_documents
        })
        .collect();
    if kept.is_empty() {
        return Err(ModelError::EmptyVocabulary);
    }
    kept.sort_unstable_by(|left, right| left.0.cmp(&right.0));
    let idf = kept
        .iter()
        .map(|&(_, frequency)| {
            (((1.0 + example_count) / (1.0 + f64::from(frequency))).ln() + 1.0) as f32
        })
        .collect();
    let features = kept.into_iter().map(|(feature, _)| feature).collect();
    Ok((features, idf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::toy_examples;

    fn toy_options() -> TrainingOptions {
        TrainingOptions {
            min_document_frequency: 1,
            ..TrainingOptions::DEFAULT
        }
    }

    fn toy_model() -> Model {
        Model::train(&toy_examples(), &toy_options()).unwrap()
    }

    #[test]
    fn training_is_deterministic() {
        let first = toy_model().to_bytes();
        let second = toy_model().to_bytes();
        assert_eq!(first, second);
    }

    #[test]
    fn a_separable_toy_problem_is_learned() {
        let model = toy_model();
        assert_eq!(model.labels(), ["billing", "outage", "users"]);
        for example in toy_examples() {
            let prediction = model.predict(example.subject, example.text);
            assert_eq!(prediction.label, example.label, "{}", example.text);
        }
        let unseen = [
            (
                "Refund",
                "I think the last invoice charged us twice",
                "billing",
            ),
            (
                "Help",
                "North Europe is down, outage since this morning",
                "outage",
            ),
            (
                "Access",
                "please grant portal access to our new user",
                "users",
            ),
        ];
        for (subject, text, label) in unseen {
            let prediction = model.predict(subject, text);
            assert_eq!(prediction.label, label, "{text}");
            assert_eq!(model.labels()[prediction.label_index], label);
        }
    }

    #[test]
    fn probabilities_sum_to_one() {
        let model = toy_model();
        for (subject, text) in [
            ("Charged twice", "invoice invoice invoice"),
            ("", ""),
            ("Ünïcödé", "日本語のテキスト and an outage"),
        ] {
            let prediction = model.predict(subject, text);
            assert_eq!(prediction.probabilities.len(), 3);
            let total: f32 = prediction.probabilities.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "sum {total}");
            assert!(
                prediction
                    .probabilities
                    .iter()
                    .all(|p| (0.0..=1.0).contains(p))
            );
            assert_eq!(
                prediction.probability,
                prediction.probabilities[prediction.label_index]
            );
        }
    }

    #[test]
    fn explanations_name_the_words_that_decided() {
        let model = toy_model();
        let prediction = model.predict("Question", "why was our invoice charged twice");
        assert_eq!(prediction.label, "billing");
        let features = &prediction.top_features;
        assert!(!features.is_empty());
        assert!(features.len() <= EXPLANATION_FEATURES);
        assert!(
            features.iter().any(|feature| feature.text == "invoice"),
            "{features:?}"
        );
        assert!(features.iter().all(|feature| feature.contribution > 0.0));
        assert!(
            features
                .windows(2)
                .all(|pair| pair[0].contribution >= pair[1].contribution)
        );
        let shown = features[0].to_string();
        assert!(shown.starts_with('`') && shown.contains("` +"), "{shown}");
    }

    #[test]
    fn probabilities_match_predict() {
        let model = toy_model();
        for example in toy_examples() {
            assert_eq!(
                model.probabilities(example.subject, example.text),
                model.predict(example.subject, example.text).probabilities
            );
        }
    }

    #[test]
    fn probabilities_explaining_explains_the_chosen_label() {
        let model = toy_model();
        let (subject, text) = ("Question", "why was our invoice charged twice");
        let prediction = model.predict(subject, text);
        let (probabilities, features) =
            model.probabilities_explaining(subject, text, |probabilities| {
                Some(best_index(probabilities))
            });
        assert_eq!(probabilities, prediction.probabilities);
        assert_eq!(features, prediction.top_features);
        let (_, none) = model.probabilities_explaining(subject, text, |_| None);
        assert!(none.is_empty());
        let (_, out_of_range) = model.probabilities_explaining(subject, text, |_| Some(99));
        assert!(out_of_range.is_empty());
    }

    #[test]
    fn a_model_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Model>();
        let model = toy_model();
        let expected = model.predict("Invoice", "charged twice");
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| model.predict("Invoice", "charged twice")))
                .collect();
            for handle in handles {
                assert_eq!(handle.join().unwrap(), expected);
            }
        });
    }

    #[test]
    fn calibration_changes_confidence_not_labels() {
        let uncalibrated_options = TrainingOptions {
            calibration_folds: 0,
            ..toy_options()
        };
        let uncalibrated = Model::train(&toy_examples(), &uncalibrated_options).unwrap();
        let calibrated = toy_model();
        assert_eq!(uncalibrated.temperature(), 1.0);
        // The toy classes are easy to tell apart, so the fitted temperature
        // sharpens the probabilities.
        assert!(
            calibrated.temperature() < 1.0,
            "{}",
            calibrated.temperature()
        );
        for (subject, text) in [
            ("Refund", "I think the last invoice charged us twice"),
            ("Help", "is there an outage in the portal"),
            ("", "nothing to see"),
        ] {
            let before = uncalibrated.predict(subject, text);
            let after = calibrated.predict(subject, text);
            assert_eq!(before.label, after.label);
            assert_eq!(before.top_features, after.top_features);
        }
        let invalid = TrainingOptions {
            calibration_folds: 1,
            ..toy_options()
        };
        assert!(Model::train(&toy_examples(), &invalid).is_err());
    }

    #[test]
    fn an_empty_message_gets_the_priors() {
        let options = TrainingOptions {
            calibration_folds: 0,
            ..toy_options()
        };
        let model = Model::train(&toy_examples(), &options).unwrap();
        let prediction = model.predict("", "");
        assert!(prediction.top_features.is_empty());
        assert!(prediction.probability < 0.5);
    }

    #[test]
    fn bad_training_input_is_rejected() {
        let examples = toy_examples();
        assert!(matches!(
            Model::train(&[], &toy_options()),
            Err(ModelError::NoExamples)
        ));
        assert!(matches!(
            Model::train(&examples[..5], &toy_options()),
            Err(ModelError::TooFewLabels { found: 1 })
        ));
        let too_strict = TrainingOptions {
            min_document_frequency: 100,
            ..toy_options()
        };
        assert!(matches!(
            Model::train(&examples, &too_strict),
            Err(ModelError::EmptyVocabulary)
        ));
        let invalid = TrainingOptions {
            l2_penalty: -1.0,
            ..toy_options()
        };
        let error = Model::train(&examples, &invalid).unwrap_err();
        assert!(error.to_string().contains("l2_penalty"), "{error}");
    }

    #[test]
    fn word_and_char_features_can_each_be_turned_off() {
        for options in [
            TrainingOptions {
                char_ngrams: None,
                ..toy_options()
            },
            TrainingOptions {
                word_ngrams: None,
                ..toy_options()
            },
        ] {
            let model = Model::train(&toy_examples(), &options).unwrap();
            let prediction = model.predict("", "the invoice was charged twice");
            assert_eq!(prediction.label, "billing");
        }
    }

    #[test]
    fn cross_validation_counts_every_example_once() {
        let examples = toy_examples();
        let result = crate::cross_validate(&examples, &toy_options(), 5, 3).unwrap();
        assert_eq!(result.folds.len(), 5);
        assert_eq!(result.predictions.len(), examples.len());
        let counted: u32 = result.confusion.iter().flatten().sum();
        assert_eq!(counted as usize, examples.len());
        assert!(result.accuracy.mean > 0.5, "{:?}", result.accuracy);
        assert!((0.0..=1.0).contains(&result.macro_f1.mean));
        assert!(matches!(
            crate::cross_validate(&examples, &toy_options(), 1, 3),
            Err(ModelError::InvalidFolds { .. })
        ));
    }
}
