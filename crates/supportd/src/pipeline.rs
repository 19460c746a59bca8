//! The pure stages in one place: raw bytes -> [`InboundMessage`] -> [`Classification`]
//! -> [`RouteDecision`], ready for the store. No I/O here: the rule files are read
//! by [`Pipeline::load`] once, at start-up.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use supportd_classifier::{CategoryModel, Classifier, Directory, Rules};
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
        let model = load_model(rules_path, &rules)?;
        let routing_path = &settings.routing_rules_path;
        let routing_text = fs::read_to_string(routing_path)
            .with_context(|| format!("cannot read routing rules {}", routing_path.display()))?;
        let router = Router::from_toml(&routing_text, &routing_path.display().to_string())?;
        Ok(Pipeline {
            limits: settings.intake.limits,
            classifier: match model {
                Some(model) => Classifier::new(directory, rules).with_model(model),
                None => Classifier::new(directory, rules),
            },
            router,
        })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The same pipeline with another category model, or none (rules alone).
    pub fn with_category_model(self, model: Option<CategoryModel>) -> Pipeline {
        let classifier = match model {
            Some(model) => self.classifier.with_model(model),
            None => self.classifier.without_model(),
        };
        Pipeline { classifier, ..self }
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The normaliser alone, with the configured limits.
    pub fn normalise(&self, raw: &[u8]) -> Normalised {
        supportd_mail::normalise(raw, &self.limits)
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
            } => {
                // A no-op unless `serve` installed the metrics recorder.
                metrics::histogram!("supportd_classification_confidence")
                    .record(f64::from(classification.confidence));
                IngestContent::Parsed {
                    message: *message,
                    classification: *classification,
                    route,
                }
            }
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

/// Where the rules file says the model file is: relative to the rules file's folder.
pub fn model_path(rules_path: &Path, rules: &Rules) -> Option<PathBuf> {
    let file = rules.combination().model_file.as_deref()?;
    Some(match rules_path.parent() {
        Some(folder) => folder.join(file),
        None => PathBuf::from(file),
    })
}

/// The trained model named in the rules file. A missing file means rules alone
/// (warned about); a file that cannot be read or parsed is an error.
fn load_model(rules_path: &Path, rules: &Rules) -> anyhow::Result<Option<CategoryModel>> {
    let Some(path) = model_path(rules_path, rules) else {
        return Ok(None);
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                model = %path.display(),
                "No category model file: classifying with the rules alone."
            );
            return Ok(None);
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("cannot read the category model {}", path.display())));
        }
    };
    let model = CategoryModel::from_bytes(&bytes)
        .with_context(|| format!("cannot load the category model {}", path.display()))?;
    Ok(Some(model))
}
