//! Account directory, tier resolution, entity extraction and category classification.
//! Pure: no I/O, no async, deterministic.
//!
//! The main types and how they fit together:
//!
//! - [`Directory`] is the account directory (accounts.csv or the database's account
//!   rows) with lookup maps from subscription, tenant, contact and domain to records.
//! - [`Rules`] are the category rules of config/classifier.toml, compiled once into
//!   one Aho-Corasick automaton of phrases and one `RegexSet`. Rules add weight to a
//!   category, or to an outage signal, when their phrases match in their scope
//!   (subject, new text, request = subject + new text + forwarded, all).
//! - [`CategoryModel`] is a trained `supportd_model::Model` whose labels are
//!   category slugs; [`model_text`] is what it reads besides the subject, in
//!   training and in classification alike.
//! - [`Classifier`] owns the directory, the rules and optionally a model. [`Classifier::classify`] takes an
//!   [`InboundMessage`](supportd_core::InboundMessage) and returns a
//!   [`Classification`](supportd_core::Classification):
//!   1. entities and GUID mentions from subject, body and forwarded text
//!      ([`extract_entities`]);
//!   2. the tier, in LABELS.md order (tier.rs);
//!   3. a [`CategoryScores`] vector from the rules (rules.rs). Without a model: best
//!      category, confidence from a softmax over the scores. With a
//!      [`CategoryModel`] attached ([`Classifier::with_model`]): the model's
//!      probabilities are mixed log-linearly with the rule scores by the weights of
//!      `[combination]` ([`Combination`], combination.rs), the confidence is the
//!      softmax of the mix, and the model's strongest words for the winner are
//!      named in the reasons. Rules marked `decisive` restrict the winner to their
//!      categories either way;
//!   4. in_scope from [`supportd_core::in_scope`], and the Microsoft flag: in scope and
//!      either an escalation or an ongoing outage (outage.rs).
//!
//! Every decision is explained in `Classification::reasons`: the account record used,
//! each rule that fired with its weight and the text it matched, the outage figures.

mod classifier;
mod combination;
mod directory;
mod entities;
mod outage;
mod rules;
mod scores;
mod text;
mod tier;

pub use classifier::Classifier;
pub use combination::{CategoryModel, CategoryModelError, Combination, model_text};
pub use directory::{Directory, DirectoryError};
pub use entities::extract_entities;
pub use rules::{Rules, RulesError};
pub use scores::CategoryScores;

/// The statistical model crate, for callers that train or cross-validate.
pub use supportd_model as model;
