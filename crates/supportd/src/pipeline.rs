//! The pure stages in one place: raw bytes -> [`InboundMessage`] -> [`Classification`]
//! -> [`RouteDecision`], ready for the store. No I/O here: the rule files are read
//! by [`Pipeline::load`] once, at start-up.

use std::fs;

use anyhow::Context;
use supportd_classifier::{Classifier, Directory, Rules};
use supportd_core::{Classification, InboundMessage, RouteDecision};
use supportd_mail::{Limits, Normalised, Quarantine};
use supportd_router::Router;
use supportd_store::{IngestContent, IngestItem, SourcePosition};

use crate::settings::Settings;

/// The normaliser limits, the classifier and the router, built once.
pub struct Pipeline {
    limits: Limits,
    classifier: Classifier,
    router: Router,
}

/// What the pure stages made of one raw message.
pub enum Processed {
    Routed {
        message: Box<InboundMessage>,
        classification: Box<Classification>,
        route: RouteDecision,
    },
    Quarantined {
        quarantine: Quarantine,
        due: i64,
    },
}

impl Pipeline {
    /// Reads and compiles the category and routing rules named in `settings`.
    pub fn load(settings: &Settings, directory: Directory) -> anyhow::Result<Pipeline> {
        let rules_path = &settings.classifier_rules_path;
        let rules_text = fs::read_to_string(rules_path)
            .with_context(|| format!("cannot read classifier rules {}", rules_path.display()))?;
        let rules = Rules::from_toml(&rules_text, &rules_path.display().to_string())?;
        let routing_path = &settings.routing_rules_path;
        let routing_text = fs::read_to_string(routing_path)
            .with_context(|| format!("cannot read routing rules {}", routing_path.display()))?;
        let router = Router::from_toml(&routing_text, &routing_path.display().to_string())?;
        Ok(Pipeline {
            limits: settings.intake.limits,
            classifier: Classifier::new(directory, rules),
            router,
        })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Normalises, classifies and routes one raw message that arrived at `received_at`.
    pub fn process(&self, raw: &[u8], received_at: i64) -> Processed {
        match supportd_mail::normalise(raw, &self.limits) {
            Normalised::Message(message) => {
                let classification = self.classifier.classify(&message);
                let route = self.router.route(&message, &classification, received_at);
                Processed::Routed {
                    message: Box::new(message),
                    classification: Box::new(classification),
                    route,
                }
            }
            Normalised::Quarantine(quarantine) => Processed::Quarantined {
                due: self.router.quarantine_due(received_at),
                quarantine,
            },
        }
    }

    /// [`Pipeline::process`], packed as an item for [`supportd_store::Store::ingest_batch`].
    pub fn prepare(&self, raw: Vec<u8>, source: SourcePosition, received_at: i64) -> IngestItem {
        let content = match self.process(&raw, received_at) {
            Processed::Routed {
                message,
                classification,
                route,
            } => IngestContent::Parsed {
                message: *message,
                classification: *classification,
                route,
            },
            Processed::Quarantined { quarantine, due } => IngestContent::Quarantined {
                quarantine_reason: quarantine.reason,
                message_id: quarantine.message_id,
                content_hash: quarantine.content_hash,
                subject: quarantine.subject,
                from: quarantine.from,
                due,
            },
        };
        IngestItem {
            raw,
            source,
            received_at,
            content,
        }
    }
}
