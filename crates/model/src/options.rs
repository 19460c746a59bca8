//! [`TrainingOptions`]: what the features are and how hard the solver works.

use crate::ModelError;

/// An inclusive range of n-gram lengths, `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgramRange {
    pub min: u8,
    pub max: u8,
}

/// Everything that decides what a trained [`crate::Model`] looks like.
///
/// The feature half (n-gram ranges, subject weight, digit folding, sublinear
/// term frequency) is stored in the model file, because prediction must cut
/// text into features exactly as training did. The solver half is stored too,
/// so a model file says how it was made.
///
/// There is no seed: the solver (L-BFGS started from zero weights) has no
/// randomness, so the same examples and options always give the same model,
/// byte for byte. Only [`crate::cross_validate`] shuffles, with its own seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingOptions {
    /// Word n-grams (`1..=1` words, `1..=2` words and word pairs), or `None`
    /// for no word features. Word n-grams longer than 2 are not supported.
    pub word_ngrams: Option<NgramRange>,
    /// Character n-grams inside word boundaries (each word padded with one
    /// space on either side, so `" in"` marks a word start), or `None`.
    /// Lengths from 2 to 8 are supported.
    pub char_ngrams: Option<NgramRange>,
    /// A feature is kept only if at least this many training examples contain
    /// it: prunes names, numbers and typos that cannot generalise.
    pub min_document_frequency: u32,
    /// A feature is dropped if more than this fraction of training examples
    /// contain it (`1.0` keeps everything): removes words like "the" that say
    /// nothing about the category.
    pub max_document_fraction: f32,
    /// How many times the subject is counted (the body counts once; 0 ignores
    /// the subject). The subject is short and usually says what the mail is about.
    pub subject_weight: u32,
    /// Fold every ASCII digit to `0`, so "March 2024" and "March 2025", or two
    /// invoice numbers, share features.
    pub fold_digits: bool,
    /// The word features (words and word pairs) and the character n-gram
    /// features are two blocks, each scaled to unit length on its own (like
    /// scikit-learn's `FeatureUnion` of two `TfidfVectorizer`s); the character
    /// block is then multiplied by this. Without it the many character n-grams
    /// would drown the words.
    pub char_weight: f32,
    /// Use `1 + ln(tf)` instead of the raw term count `tf`, so a word repeated
    /// ten times does not weigh ten times as much.
    pub sublinear_tf: bool,
    /// Strength of the L2 penalty on the weights (`alpha`, the inverse of
    /// scikit-learn's `C`): the loss is the summed log loss over the training
    /// examples plus `l2_penalty / 2 * |W|^2`. Smaller fits the training
    /// data more closely.
    pub l2_penalty: f64,
    /// Calibrate the probabilities: train on all but one of this many
    /// stratified folds of the training examples, collect the scores of the
    /// held-out ones, and fit one softmax temperature that minimises their log
    /// loss (temperature scaling, Guo et al. 2017). `0` leaves the temperature
    /// at 1. Changes no predicted label, only how sure the model says it is;
    /// training takes `folds + 1` times as long.
    pub calibration_folds: u32,
    /// Upper bound on L-BFGS iterations.
    pub max_iterations: u64,
    /// L-BFGS stops once the gradient norm is below this.
    pub gradient_tolerance: f64,
}

impl TrainingOptions {
    /// The options chosen by stratified 5-fold cross-validation on the dev
    /// corpus (figures in the crate documentation): words and word pairs,
    /// character 4-grams, features in at least 3 training examples, subject
    /// counted twice, digits folded, sublinear tf, both blocks weighted
    /// equally, `l2_penalty` 0.05 (scikit-learn `C` = 20), probabilities
    /// calibrated on 5 folds.
    pub const DEFAULT: TrainingOptions = TrainingOptions {
        word_ngrams: Some(NgramRange { min: 1, max: 2 }),
        char_ngrams: Some(NgramRange { min: 4, max: 4 }),
        min_document_frequency: 3,
        max_document_fraction: 1.0,
        subject_weight: 2,
        fold_digits: true,
        sublinear_tf: true,
        char_weight: 1.0,
        l2_penalty: 0.05,
        calibration_folds: 5,
        max_iterations: 300,
        gradient_tolerance: 1e-4,
    };

    /// The recommended options: [`TrainingOptions::DEFAULT`].
    pub fn recommended() -> TrainingOptions {
        TrainingOptions::DEFAULT
    }

    /// Checks every field; the error names the field and the accepted values.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |reason: String| Err(ModelError::InvalidOptions { reason });
        if self.word_ngrams.is_none() && self.char_ngrams.is_none() {
            return invalid("word_ngrams and char_ngrams are both None: no features".to_owned());
        }
        if let Some(range) = self.word_ngrams
            && (range.min < 1 || range.max > 2 || range.min > range.max)
        {
            return invalid(format!(
                "word_ngrams {}..={} is not within 1..=2",
                range.min, range.max
            ));
        }
        if let Some(range) = self.char_ngrams
            && (range.min < 2 || range.max > 8 || range.min > range.max)
        {
            return invalid(format!(
                "char_ngrams {}..={} is not within 2..=8",
                range.min, range.max
            ));
        }
        if !(self.max_document_fraction > 0.0 && self.max_document_fraction <= 1.0) {
            return invalid(format!(
                "max_document_fraction {} is not in (0, 1]",
                self.max_document_fraction
            ));
        }
        if !(self.char_weight.is_finite() && self.char_weight > 0.0) {
            return invalid(format!(
                "char_weight {} is not a positive finite number",
                self.char_weight
            ));
        }
        if !(self.l2_penalty.is_finite() && self.l2_penalty > 0.0) {
            return invalid(format!(
                "l2_penalty {} is not a positive finite number",
                self.l2_penalty
            ));
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return invalid(format!(
                "gradient_tolerance {} is not a positive finite number",
                self.gradient_tolerance
            ));
        }
        if self.calibration_folds == 1 {
            return invalid("calibration_folds is 1: use 0 (none) or at least 2".to_owned());
        }
        if self.max_iterations == 0 {
            return invalid("max_iterations is 0".to_owned());
        }
        Ok(())
    }
}
