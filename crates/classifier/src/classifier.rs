//! The classifier: directory + rules -> [`Classification`] for one message.

use supportd_core::{Category, Classification, Entities, InboundMessage, Tier, in_scope};

use crate::combination::{CategoryModel, Combination, model_text};
use crate::directory::Directory;
use crate::entities::add_entities;
use crate::outage::assess_outage;
use crate::rules::{RuleEvaluation, Rules, ScoringSettings, Target};
use crate::scores::CategoryScores;
use crate::text::MessageText;
use crate::tier::resolve_tier;

/// Classifies messages. Built once at startup; `classify` is pure and `&self`.
#[derive(Debug)]
pub struct Classifier {
    directory: Directory,
    rules: Rules,
    /// The trained category model mixed with the rules; `None`: rules alone.
    model: Option<CategoryModel>,
}

impl Classifier {
    /// A classifier on the rules alone; see [`Classifier::with_model`].
    pub fn new(directory: Directory, rules: Rules) -> Classifier {
        Classifier {
            directory,
            rules,
            model: None,
        }
    }

    /// The same classifier with a trained model mixed into the category decision
    /// (weights in the rules file's `[combination]`).
    pub fn with_model(self, model: CategoryModel) -> Classifier {
        Classifier {
            model: Some(model),
            ..self
        }
    }

    /// The same classifier on the rules alone.
    pub fn without_model(self) -> Classifier {
        Classifier {
            model: None,
            ..self
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn model(&self) -> Option<&CategoryModel> {
        self.model.as_ref()
    }

    /// The four labels of LABELS.md with entities, confidence and reasons.
    pub fn classify(&self, message: &InboundMessage) -> Classification {
        self.classify_with(message, self.model.as_ref(), &self.rules.combination)
    }

    /// [`Classifier::classify`] with another model (or none) and other mixing
    /// weights: for cross-validation, where each fold has its own model.
    pub fn classify_with(
        &self,
        message: &InboundMessage,
        model: Option<&CategoryModel>,
        combination: &Combination,
    ) -> Classification {
        // Mentions for tier resolution: subject, whole body (quoted text included)
        // and forwarded originals; never binary attachments.
        let mentioned_texts = [
            message.subject.as_str(),
            message.body_text.as_str(),
            message.forwarded_text.as_str(),
        ];
        let mut guids = Vec::new();
        let mut entities = Entities::default();
        for text in mentioned_texts {
            add_entities(text, &mut entities, &mut guids);
        }
        let sender_email = message.sender_email();
        let tier_resolution = resolve_tier(&self.directory, &guids, &sender_email);

        let message_text = MessageText::new(message);
        let evaluation = self.rules.evaluate(&message_text, message, &entities);
        let mut reasons = vec![tier_resolution.reason.clone()];
        let decision = match model {
            Some(model) => decide_with_model(&evaluation, message, model, combination),
            None => decide_by_rules(&evaluation, &self.rules.scoring),
        };
        let category = decision.category;
        let confidence = decision.confidence;
        reasons.extend(decision.reasons);
        for fired in &evaluation.fired {
            if fired.target == Target::Category(category) {
                reasons.push(describe_rule(&category.to_string(), fired));
            }
        }

        let tier = tier_resolution.tier;
        let in_scope = in_scope(tier, category);
        // The outage figures are explained for every service-availability mail, in
        // scope or not, so a reader sees why the Microsoft queue was or was not chosen.
        let ongoing_outage = category == Category::ServiceAvailability && {
            let outage = assess_outage(&evaluation, &self.rules.outage);
            reasons.push(outage.describe());
            for fired in &evaluation.fired {
                if let Target::OutageSignal(signal) = fired.target {
                    reasons.push(describe_rule(signal.slug(), fired));
                }
            }
            outage.ongoing
        };
        let microsoft = in_scope && (category == Category::MicrosoftEscalation || ongoing_outage);
        if tier == Tier::Unmanaged || !in_scope {
            reasons.push(format!(
                "in_scope false: {category} is not covered for tier {tier}"
            ));
        }
        Classification {
            tier,
            category,
            in_scope,
            microsoft,
            confidence,
            reasons,
            entities,
            account: tier_resolution.record.cloned(),
        }
    }
}

/// The category, its confidence and the reasons that explain both.
struct CategoryDecision {
    category: Category,
    confidence: f32,
    reasons: Vec<String>,
}

/// The categories of the decisive rules that fired (see combination.rs), if any.
fn decisive_categories(evaluation: &RuleEvaluation) -> Option<([bool; Category::ALL.len()], &str)> {
    let mut allowed = [false; Category::ALL.len()];
    let mut first_name = None;
    for fired in &evaluation.fired {
        if let (true, Target::Category(category)) = (fired.decisive, fired.target) {
            allowed[category as usize] = true;
            first_name.get_or_insert(fired.name.as_str());
        }
    }
    first_name.map(|name| (allowed, name))
}

/// The best category of `scores` among `allowed` (every category when `None`).
fn best_allowed(
    scores: &CategoryScores,
    allowed: Option<&[bool; Category::ALL.len()]>,
) -> (Category, f32) {
    match allowed {
        None => scores.best(),
        Some(allowed) => {
            let mut restricted = *scores;
            for category in Category::ALL {
                if !allowed[category as usize] {
                    restricted.add(category, f32::NEG_INFINITY);
                }
            }
            restricted.best()
        }
    }
}

/// Rules alone: the best rule score, or the fallback category below the minimum.
fn decide_by_rules(evaluation: &RuleEvaluation, scoring: &ScoringSettings) -> CategoryDecision {
    let scores = evaluation.category_scores;
    let decisive = decisive_categories(evaluation);
    let (mut category, best_score) = best_allowed(&scores, decisive.as_ref().map(|d| &d.0));
    let mut reasons = Vec::with_capacity(2);
    let confidence;
    if decisive.is_none() && best_score < scoring.minimum_score {
        category = scoring.fallback_category;
        // As sure as if the fallback had scored the minimum.
        let mut with_fallback = scores;
        with_fallback.add(category, scoring.minimum_score);
        confidence = with_fallback.probability(category, scoring.softmax_temperature);
        reasons.push(format!(
            "category {category}: fallback, best score {best_score:.1} is below {:.1}",
            scoring.minimum_score
        ));
    } else {
        confidence = scores.probability(category, scoring.softmax_temperature);
        let (runner_up, runner_up_score) = scores.best_except(category);
        reasons.push(format!(
            "category {category}: score {best_score:.1}, confidence {confidence:.2}; runner-up {runner_up} {runner_up_score:.1}"
        ));
    }
    if let Some((_, name)) = decisive {
        reasons.push(format!(
            "category {category}: decisive rule `{name}` fired, only decisive categories could win"
        ));
    }
    CategoryDecision {
        category,
        confidence,
        reasons,
    }
}

/// Rules and model mixed (combination.rs); the model's words behind the winner
/// are computed in the same pass over the text, and only for the winner.
fn decide_with_model(
    evaluation: &RuleEvaluation,
    message: &InboundMessage,
    model: &CategoryModel,
    combination: &Combination,
) -> CategoryDecision {
    let rule_scores = evaluation.category_scores;
    let decisive = decisive_categories(evaluation);
    let text = model_text(message);
    let mut combined = CategoryScores::default();
    let mut model_scores = CategoryScores::default();
    let mut category = Category::Other;
    let (_, top_features) =
        model
            .model()
            .probabilities_explaining(&message.subject, &text, |probabilities| {
                model_scores = model.to_category_scores(probabilities);
                combined = combination.combine(&rule_scores, &model_scores);
                category = best_allowed(&combined, decisive.as_ref().map(|d| &d.0)).0;
                model.label_index(category)
            });
    let confidence = combined.probability(category, 1.0);
    let (runner_up, _) = combined.best_except(category);
    let mut reasons = Vec::with_capacity(3);
    reasons.push(format!(
        "category {category}: rules {:.1} x {} + ln model {:.2} x {} = {:.2}, confidence {confidence:.2}; runner-up {runner_up} (rules {:.1}, model {:.2})",
        rule_scores.get(category),
        combination.rule_weight,
        model_scores.get(category),
        combination.model_weight,
        combined.get(category),
        rule_scores.get(runner_up),
        model_scores.get(runner_up),
    ));
    let words: Vec<String> = top_features
        .iter()
        .map(|feature| feature.to_string())
        .collect();
    reasons.push(format!(
        "model: {category} {:.2} ({})",
        model_scores.get(category),
        if words.is_empty() {
            "no words for it".to_owned()
        } else {
            words.join(", ")
        }
    ));
    if let Some((_, name)) = decisive {
        reasons.push(format!(
            "category {category}: decisive rule `{name}` fired, only decisive categories could win"
        ));
    }
    CategoryDecision {
        category,
        confidence,
        reasons,
    }
}

fn describe_rule(label: &str, fired: &crate::rules::FiredRule) -> String {
    match &fired.evidence {
        Some(evidence) => format!(
            "{label}: rule `{}` ({:+.1}) matched `{evidence}`",
            fired.name, fired.contribution
        ),
        None => format!(
            "{label}: rule `{}` ({:+.1}) fired",
            fired.name, fired.contribution
        ),
    }
}
