//! The trained model as a second scorer beside the rules, and how the two are mixed.
//!
//! The mix is log-linear (a product of experts): for each category `c`,
//!
//! ```text
//! combined[c] = rule_weight * rule_score[c] + model_weight * ln(max(p_model[c], probability_floor))
//! ```
//!
//! and the confidence is the softmax of `combined` at the winner. With
//! `rule_weight = 0` this is the model's own calibrated probability; with
//! `model_weight = 0` it is the rules' softmax at temperature `1 / rule_weight`.
//! The floor keeps one confident model from vetoing a category the rules are sure
//! of. Rules marked `decisive` (Auto-Submitted headers, an explicit "escalate to
//! Microsoft", a Microsoft case number) are cues a model cannot learn from a few
//! hundred mails: when one fires, only the categories of decisive rules can win.

use std::borrow::Cow;

use serde::Deserialize;
use supportd_core::{Category, InboundMessage};
use supportd_model::{Model, ModelError};

use crate::scores::CategoryScores;

/// How rule scores and model probabilities are mixed: the `[combination]` section
/// of config/classifier.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combination {
    /// The trained model file (`supportd train --out`), relative to the folder of
    /// classifier.toml. No file there: the classifier runs on the rules alone.
    pub model_file: Option<String>,
    /// Factor on the rule scores.
    pub rule_weight: f32,
    /// Factor on the natural logarithm of the model's probabilities.
    pub model_weight: f32,
    /// Model probabilities below this count as this (within `0..1`).
    pub probability_floor: f32,
}

impl Combination {
    /// The mixed score of every category.
    pub(crate) fn combine(
        &self,
        rule_scores: &CategoryScores,
        model_probabilities: &CategoryScores,
    ) -> CategoryScores {
        let mut combined = CategoryScores::default();
        for category in Category::ALL {
            let probability = model_probabilities
                .get(category)
                .max(self.probability_floor);
            combined.add(
                category,
                self.rule_weight * rule_scores.get(category) + self.model_weight * probability.ln(),
            );
        }
        combined
    }
}

/// Why a model cannot be used as the category model.
#[derive(Debug, thiserror::Error)]
pub enum CategoryModelError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model predicts `{label}`, which is not a category of LABELS.md")]
    UnknownLabel { label: String },
}

/// A trained [`Model`] whose labels are category slugs, with the map between its
/// label indices and [`Category`].
#[derive(Debug, Clone)]
pub struct CategoryModel {
    model: Model,
    /// Per model label index, its category.
    categories: Vec<Category>,
}

impl CategoryModel {
    /// Fails when a label of the model is not a category slug.
    pub fn new(model: Model) -> Result<CategoryModel, CategoryModelError> {
        let categories = model
            .labels()
            .iter()
            .map(|label| {
                label
                    .parse::<Category>()
                    .map_err(|_| CategoryModelError::UnknownLabel {
                        label: label.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CategoryModel { model, categories })
    }

    /// Reads a model file written by [`Model::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<CategoryModel, CategoryModelError> {
        CategoryModel::new(Model::from_bytes(bytes)?)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's probabilities as a per-category vector (0 for a category the
    /// model never saw in training).
    pub(crate) fn to_category_scores(&self, probabilities: &[f32]) -> CategoryScores {
        let mut scores = CategoryScores::default();
        for (category, probability) in self.categories.iter().zip(probabilities) {
            scores.add(*category, *probability);
        }
        scores
    }

    /// The model's label index of `category`, if the model knows it.
    pub(crate) fn label_index(&self, category: Category) -> Option<usize> {
        self.categories
            .iter()
            .position(|candidate| *candidate == category)
    }
}

/// The text the model reads besides the subject, the same in training and in
/// classification: the new text of the message (the whole body when the
/// normaliser found no new text), then the forwarded originals.
pub fn model_text(message: &InboundMessage) -> Cow<'_, str> {
    let new_text = if message.new_text.trim().is_empty() {
        message.body_text.as_str()
    } else {
        message.new_text.as_str()
    };
    if message.forwarded_text.is_empty() {
        return Cow::Borrowed(new_text);
    }
    let mut text = String::with_capacity(new_text.len() + message.forwarded_text.len() + 1);
    text.push_str(new_text);
    text.push('\n');
    text.push_str(&message.forwarded_text);
    Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combination() -> Combination {
        Combination {
            model_file: None,
            rule_weight: 0.5,
            model_weight: 1.0,
            probability_floor: 0.01,
        }
    }

    #[test]
    fn the_mix_is_log_linear_with_a_floor() {
        let mut rules = CategoryScores::default();
        rules.add(Category::Billing, 2.0);
        let mut model = CategoryScores::default();
        model.add(Category::Billing, 0.5);
        model.add(Category::MonthToDate, 0.5);
        let combined = combination().combine(&rules, &model);
        assert!((combined.get(Category::Billing) - (1.0 + 0.5f32.ln())).abs() < 1e-6);
        assert!((combined.get(Category::MonthToDate) - 0.5f32.ln()).abs() < 1e-6);
        // Categories the model gives nothing get the floor, not minus infinity.
        assert!((combined.get(Category::Patching) - 0.01f32.ln()).abs() < 1e-6);
        assert_eq!(combined.best().0, Category::Billing);
    }

    #[test]
    fn model_text_is_new_text_then_forwarded() {
        let mut message = InboundMessage {
            message_id: "test@example".into(),
            message_id_synthesized: false,
            in_reply_to: vec![],
            references: vec![],
            from: None,
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: String::new(),
            date: None,
            body_text: "whole body".into(),
            body_html: None,
            new_text: " ".into(),
            forwarded_text: String::new(),
            attachments: vec![],
            flags: supportd_core::MessageFlags::default(),
            size: 0,
            content_hash: String::new(),
            warnings: vec![],
        };
        assert_eq!(model_text(&message), "whole body");
        message.forwarded_text = "forwarded".to_owned();
        assert_eq!(model_text(&message), "whole body\nforwarded");
        message.new_text = "new".to_owned();
        assert_eq!(model_text(&message), "new\nforwarded");
    }
}
