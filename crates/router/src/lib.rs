//! Routing: from a [`Classification`] to a [`RouteDecision`] (queue, priority,
//! first-response due time, mail actions), by rules kept as data in
//! `config/routing.toml`.
//!
//! - [`Router`] is built once from the TOML text ([`Router::from_toml`]), which is
//!   validated completely: unknown keys, unknown queues, bad durations and bad
//!   slugs are reported with their place.
//! - [`Router::route`] tries the rules in order; the first whose conditions all
//!   hold decides the queue and the actions. The priority comes from urgency cues
//!   in the mail ([`priority`]), raised to the rule's minimum; the due time from
//!   the SLA of that priority ([`sla`]).
//!
//! Pure: no I/O, no clock (the arrival time is an argument), deterministic.

mod config;
pub mod priority;
pub mod sla;

use supportd_core::{Classification, InboundMessage, Priority, QueueName, RouteDecision};

pub use config::{QueueConfig, RoutingError};

use config::{RawRouting, Rule};
use priority::PriorityCues;
use sla::SlaPolicy;

/// The routing rules, queues, SLA policy and priority cues, validated.
#[derive(Debug)]
pub struct Router {
    queues: Vec<QueueConfig>,
    rules: Vec<Rule>,
    sla: SlaPolicy,
    priority_cues: PriorityCues,
}

impl Router {
    /// Parses and validates `config/routing.toml`; `source_name` is used in errors.
    pub fn from_toml(toml_text: &str, source_name: &str) -> Result<Router, RoutingError> {
        let raw: RawRouting = toml::from_str(toml_text).map_err(|error| RoutingError::Syntax {
            source_name: source_name.to_owned(),
            message: error.to_string(),
        })?;
        let queues = raw.queues;
        let queue_known = |name: &QueueName| queues.iter().any(|queue| &queue.name == name);
        if !queue_known(&QueueName::quarantine()) {
            return Err(RoutingError::Invalid {
                source_name: source_name.to_owned(),
                message: format!("the queue `{}` must be declared", QueueName::QUARANTINE),
            });
        }
        for rule in &raw.rules {
            if !queue_known(&rule.queue) {
                return Err(RoutingError::Invalid {
                    source_name: source_name.to_owned(),
                    message: format!(
                        "rule `{}` sends to queue `{}`, which no [[queue]] declares",
                        rule.name, rule.queue
                    ),
                });
            }
        }
        let Some(last_rule) = raw.rules.last() else {
            return Err(RoutingError::Invalid {
                source_name: source_name.to_owned(),
                message: "no [[rule]] is defined".to_owned(),
            });
        };
        if !last_rule.is_catch_all() {
            return Err(RoutingError::Invalid {
                source_name: source_name.to_owned(),
                message: format!(
                    "the last rule (`{}`) must have no conditions, so every ticket has a queue",
                    last_rule.name
                ),
            });
        }
        let sla = SlaPolicy::from_raw(&raw.sla).map_err(|message| RoutingError::Invalid {
            source_name: source_name.to_owned(),
            message: format!("[sla]: {message}"),
        })?;
        let priority_cues = PriorityCues::new(&raw.priority);
        Ok(Router {
            queues,
            rules: raw.rules,
            sla,
            priority_cues,
        })
    }

    /// Every declared queue, in file order.
    pub fn queues(&self) -> &[QueueConfig] {
        &self.queues
    }

    /// Decides queue, priority, due time and actions for a new ticket that
    /// arrived at `received_at` (Unix seconds).
    pub fn route(
        &self,
        message: &InboundMessage,
        classification: &Classification,
        received_at: i64,
    ) -> RouteDecision {
        let rule = self
            .rules
            .iter()
            .find(|rule| rule.matches(message, classification))
            .or(self.rules.last())
            .expect("from_toml guarantees a last, catch-all rule");
        let mut reasons = vec![format!(
            "rule `{}` sent the ticket to `{}`",
            rule.name, rule.queue
        )];

        let cue = self.priority_cues.find(&message.subject, &message.new_text);
        let mut priority = cue.as_ref().map_or(Priority::Normal, |cue| cue.priority);
        match &cue {
            Some(cue) => reasons.push(format!(
                "priority {}: cue `{}` in the mail",
                cue.priority, cue.phrase
            )),
            None => reasons.push("priority normal: no urgency cue".to_owned()),
        }
        if let Some(min_priority) = rule.min_priority
            && priority < min_priority
        {
            reasons.push(format!(
                "priority raised to {min_priority} by rule `{}`",
                rule.name
            ));
            priority = min_priority;
        }

        let first_response_due = self.sla.due(priority, received_at);
        RouteDecision {
            queue: rule.queue.clone(),
            priority,
            first_response_due,
            rule: rule.name.clone(),
            reasons,
            actions: rule.actions.clone(),
        }
    }

    /// The due time of a quarantined mail: normal priority from `received_at`.
    pub fn quarantine_due(&self, received_at: i64) -> i64 {
        self.sla.due(Priority::Normal, received_at)
    }
}

#[cfg(test)]
mod tests;
