//! The shape of `config/routing.toml`, deserialised strictly (unknown keys are errors).

use serde::Deserialize;
use supportd_core::{Action, Category, Classification, InboundMessage, Priority, QueueName, Tier};

/// Why the routing file was refused; says which file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouting {
    pub sla: RawSla,
    #[serde(rename = "queue")]
    pub queues: Vec<QueueConfig>,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    pub priority: RawPriority,
}

/// A queue staff work from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: QueueName,
    /// Shown to staff beside the queue name.
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSla {
    pub urgent: String,
    pub high: String,
    pub normal: String,
    pub low: String,
    /// The support desk's time zone as a fixed offset (`-06:00`), for business days.
    pub utc_offset: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPriority {
    pub urgent: Vec<String>,
    pub high: Vec<String>,
    pub normal: Vec<String>,
    pub low: Vec<String>,
}

/// One routing rule: conditions, then where the ticket goes and what mail it causes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub name: String,
    pub tier: Option<Vec<Tier>>,
    pub category: Option<Vec<Category>>,
    pub in_scope: Option<bool>,
    pub microsoft: Option<bool>,
    pub auto_submitted: Option<bool>,
    /// Holds when the classifier's category confidence is below this (triage).
    pub confidence_below: Option<f32>,
    pub queue: QueueName,
    pub min_priority: Option<Priority>,
    pub actions: Vec<Action>,
}

impl Rule {
    pub fn is_catch_all(&self) -> bool {
        self.tier.is_none()
            && self.category.is_none()
            && self.in_scope.is_none()
            && self.microsoft.is_none()
            && self.auto_submitted.is_none()
            && self.confidence_below.is_none()
    }

    pub fn matches(&self, message: &InboundMessage, classification: &Classification) -> bool {
        let holds =
            |wanted: Option<bool>, actual: bool| wanted.is_none_or(|wanted| wanted == actual);
        self.tier
            .as_ref()
            .is_none_or(|tiers| tiers.contains(&classification.tier))
            && self
                .category
                .as_ref()
                .is_none_or(|categories| categories.contains(&classification.category))
            && holds(self.in_scope, classification.in_scope)
            && holds(self.microsoft, classification.microsoft)
            && holds(self.auto_submitted, message.flags.auto_submitted)
            && self
                .confidence_below
                .is_none_or(|limit| classification.confidence < limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supportd_core::{Entities, MessageFlags};

    #[test]
    fn confidence_below_holds_only_under_the_limit() {
        let rule: Rule = toml::from_str(
            "name = \"unsure\"\nconfidence_below = 0.7\nqueue = \"triage\"\nactions = []\n",
        )
        .unwrap();
        assert!(!rule.is_catch_all());
        let message = InboundMessage {
            message_id: "m@example".into(),
            message_id_synthesized: false,
            in_reply_to: vec![],
            references: vec![],
            from: None,
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: String::new(),
            date: None,
            body_text: String::new(),
            body_html: None,
            new_text: String::new(),
            forwarded_text: String::new(),
            attachments: vec![],
            flags: MessageFlags::default(),
            size: 0,
            content_hash: String::new(),
            warnings: vec![],
        };
        let mut classification = Classification {
            tier: Tier::Platform,
            category: Category::Billing,
            in_scope: true,
            microsoft: false,
            confidence: 0.69,
            reasons: vec![],
            entities: Entities::default(),
            account: None,
        };
        assert!(rule.matches(&message, &classification));
        classification.confidence = 0.7;
        assert!(!rule.matches(&message, &classification));
    }
}
