//! The supportd application: configuration, wiring and the commands of the CLI.
//!
//! - [`settings::Settings`] is the validated configuration (`config/default.toml`
//!   plus `SUPPORTD_<SECTION>__<KEY>` environment overrides).
//! - [`pipeline::Pipeline`] holds the pure stages (normalise, classify, route),
//!   built once from the rule files.
//! - [`Application`] joins the pipeline to the [`Store`]: [`Application::ingest`]
//!   is the one entry point every source calls (files, Maildir, mbox, stdin, the
//!   drop folder of `serve`), committing one transaction per batch.
//! - [`sources`] turns command-line paths into raw messages; [`ingest`],
//!   [`classify`], [`eval`], [`report`] and [`serve`] are the commands.
//!
//! `main.rs` only parses the command line and calls [`cli::run`].

pub mod classify;
pub mod cli;
pub mod copy_cli;
pub mod eval;
pub mod ingest;
pub mod mailbox;
pub mod outbox_cli;
pub mod pipeline;
pub mod portal;
pub mod report;
pub mod serve;
pub mod settings;
pub mod sla;
pub mod sources;
pub mod staff_cli;

use anyhow::Context;
use supportd_classifier::Directory;
use supportd_store::{IngestOutcome, SourcePosition, Store};
use tracing::{Instrument, info_span};

use crate::pipeline::Pipeline;
use crate::settings::Settings;

/// The store and the pipeline, ready to ingest.
pub struct Application {
    pub store: Store,
    pub pipeline: Pipeline,
}

impl Application {
    /// Opens (and migrates) the database, loads the account directory from it
    /// and compiles the rules.
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let store = open_store(settings).await?;
        let records = store
            .accounts()
            .await
            .context("cannot read the account directory")?;
        if records.is_empty() {
            tracing::warn!(
                "The account directory is empty: every sender is unmanaged. Import one with `supportd accounts import FILE.csv`."
            );
        }
        let pipeline = Pipeline::load(settings, Directory::from_records(records))?;
        Ok(Application { store, pipeline })
    }

    /// Normalises, classifies, routes and stores a batch of raw messages in one
    /// transaction. Returns what happened to each, in order. The caller may
    /// acknowledge the sources only after this returns `Ok`.
    pub async fn ingest(
        &self,
        raw_messages: Vec<(Vec<u8>, SourcePosition)>,
    ) -> anyhow::Result<Vec<IngestOutcome>> {
        let received_at = now();
        let items: Vec<_> = raw_messages
            .into_iter()
            .map(|(raw, source)| self.pipeline.prepare(raw, source, received_at))
            .collect();
        let span = info_span!("ingest_batch", messages = items.len());
        self.store
            .ingest_batch(&items)
            .instrument(span)
            .await
            .context("cannot store the batch")
    }
}

/// Opens the database named by the settings and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::open(&settings.database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            supportd_store::redact_url(&settings.database_url)
        )
    })?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database {}", store.database()))?;
    Ok(store.with_outbox_policy(settings.outbound.policy.clone()))
}

/// The current time, Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
