//! The classifier: directory + rules -> [`Classification`] for one message.

use supportd_core::{Category, Classification, Entities, InboundMessage, Tier, in_scope};

use crate::directory::Directory;
use crate::entities::add_entities;
use crate::outage::assess_outage;
use crate::rules::{Rules, Target};
use crate::text::MessageText;
use crate::tier::resolve_tier;

/// Classifies messages. Built once at startup; `classify` is pure and `&self`.
#[derive(Debug)]
pub struct Classifier {
    directory: Directory,
    rules: Rules,
}

impl Classifier {
    pub fn new(directory: Directory, rules: Rules) -> Classifier {
        Classifier { directory, rules }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The four labels of LABELS.md with entities, confidence and reasons.
    pub fn classify(&self, message: &InboundMessage) -> Classification {
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
        let scoring = &self.rules.scoring;
        let scores = evaluation.category_scores;
        let (mut category, best_score) = scores.best();
        let mut reasons = vec![tier_resolution.reason.clone()];
        let confidence;
        if best_score < scoring.minimum_score {
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
