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
    }
}
