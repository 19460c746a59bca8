//! `supportd ingest PATH...`: read mail from files, directories, Maildirs, mboxes
//! or stdin, and store it in batches.
//!
//! Reading and the pure stages run on a blocking thread that hands finished
//! batches to the store through a bounded channel, so parsing the next batch
//! overlaps with committing this one.

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use supportd_store::{IngestItem, IngestOutcome};
use tokio::sync::mpsc;

use crate::sources::{self, Input};
use crate::{Application, now};

/// What an ingest run did, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub created: u64,
    pub threaded: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// Entries that could not be read at all (reported, skipped).
    pub unreadable: u64,
}

impl IngestSummary {
    fn count(&mut self, outcome: IngestOutcome) {
        match outcome {
            IngestOutcome::Created(_) => self.created += 1,
            IngestOutcome::Threaded(_) => self.threaded += 1,
            IngestOutcome::Duplicate(_) => self.duplicates += 1,
            IngestOutcome::Quarantined(_) => self.quarantined += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.created + self.threaded + self.duplicates + self.quarantined
    }
}

/// Ingests every message of `inputs`, `batch_size` per transaction.
pub async fn ingest_inputs(
    application: &Application,
    inputs: Vec<Input>,
    batch_size: usize,
    show_progress: bool,
) -> anyhow::Result<IngestSummary> {
    let started = Instant::now();
    let progress = progress_bar(inputs.len() as u64, show_progress);
    let (batch_sender, mut batch_receiver) = mpsc::channel::<Vec<IngestItem>>(2);
    let (problem_sender, mut problem_receiver) = mpsc::unbounded_channel();

    let pipeline = &application.pipeline;
    let reader_progress = progress.clone();
    let mut summary = IngestSummary::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let reader = scope.spawn(move || {
            let received_at = now();
            let mut batch = Vec::with_capacity(batch_size);
            for input in &inputs {
                sources::read_input(input, |result| match result {
                    Ok(raw_mail) => {
                        tracing::debug!(file = %raw_mail.label, "Read message.");
                        batch.push(pipeline.prepare(raw_mail.bytes, raw_mail.source, received_at));
                    }
                    Err(problem) => {
                        let _ = problem_sender.send(problem);
                    }
                });
                reader_progress.inc(1);
                if batch.len() >= batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    if batch_sender.blocking_send(full).is_err() {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = batch_sender.blocking_send(batch);
            }
        });

        let writer = async {
            while let Some(batch) = batch_receiver.recv().await {
                let outcomes = application
                    .store
                    .ingest_batch(&batch)
                    .await
                    .context("cannot store a batch of messages")?;
                for (item, outcome) in batch.iter().zip(&outcomes) {
                    tracing::debug!(
                        source = %item.source.mailbox,
                        ticket_ref = %outcome.ticket_ref(),
                        outcome = ?outcome,
                        "Stored message."
                    );
                    summary.count(*outcome);
                }
                while let Ok(problem) = problem_receiver.try_recv() {
                    report_problem(&progress, &mut summary, problem);
                }
            }
            anyhow::Ok(())
        };
        let written =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(writer));
        // Dropping the receiver (on error) makes the reader stop at its next send.
        drop(batch_receiver);
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the mail reader thread panicked"))?;
        written
    })?;
    while let Ok(problem) = problem_receiver.try_recv() {
        report_problem(&progress, &mut summary, problem);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        created = summary.created,
        threaded = summary.threaded,
        duplicates = summary.duplicates,
        quarantined = summary.quarantined,
        unreadable = summary.unreadable,
        seconds = format!("{seconds:.2}"),
        "Ingest finished."
    );
    Ok(summary)
}

fn report_problem(
    progress: &ProgressBar,
    summary: &mut IngestSummary,
    problem: sources::SourceProblem,
) {
    summary.unreadable += 1;
    progress.suspend(|| {
        tracing::warn!(file = %problem.label, error = %problem.error, "Skipped an unreadable entry.");
    });
}

fn progress_bar(length: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::hidden());
    }
    let progress = ProgressBar::new(length);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} inputs, {per_sec}, eta {eta}")
    {
        progress.set_style(style);
    }
    progress
}
