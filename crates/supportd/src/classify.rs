//! `supportd classify PATH...`: the pure pipeline on mail files, with no database
//! writes. One line per message: JSON with `--json`, a short text otherwise.

use std::collections::BTreeMap;
use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget};

use serde::Serialize;
use supportd_core::{Category, Entities, Priority, Tier};

use crate::pipeline::{Pipeline, Processed};
use crate::sources::{self, Input};

/// One line of `classify --json`.
#[derive(Debug, Serialize)]
pub struct ClassifyLine<'a> {
    pub file: &'a str,
    pub message_id: &'a str,
    pub subject: &'a str,
    pub tier: Tier,
    pub category: Category,
    pub in_scope: bool,
    pub microsoft: bool,
    pub queue: &'a str,
    pub priority: Priority,
    pub confidence: f32,
    pub rule: &'a str,
    pub reasons: Vec<String>,
    pub entities: Option<&'a Entities>,
    pub quarantined: bool,
}

/// Classifies every message of `inputs`, writing one line each to `output`.
/// Returns the number of messages and of unreadable entries.
pub fn classify_inputs(
    pipeline: &Pipeline,
    inputs: &[Input],
    json: bool,
    output: &mut impl Write,
) -> anyhow::Result<(u64, u64)> {
    let received_at = crate::now();
    let mut messages = 0;
    let mut unreadable = 0;
    let mut write_error = None;
    for input in inputs {
        sources::read_input(input, |result| {
            let raw_mail = match result {
                Ok(raw_mail) => raw_mail,
                Err(problem) => {
                    unreadable += 1;
                    tracing::warn!(file = %problem.label, error = %problem.error, "Skipped an unreadable entry.");
                    return;
                }
            };
            messages += 1;
            let processed = pipeline.process(&raw_mail.bytes, received_at);
            let line = classify_line(&raw_mail.label, &processed);
            let written = if json {
                serde_json::to_writer(&mut *output, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| output.write_all(b"\n"))
            } else {
                writeln!(
                    output,
                    "{}\t{}\t{}\tin_scope={}\tmicrosoft={}\t{}\t{}\t{:.2}",
                    line.file,
                    line.tier,
                    line.category,
                    line.in_scope,
                    line.microsoft,
                    line.queue,
                    line.priority,
                    line.confidence
                )
            };
            if let Err(error) = written {
                write_error.get_or_insert(error);
            }
        });
        if let Some(error) = write_error.take() {
            return Err(anyhow::Error::new(error).context("cannot write the output"));
        }
    }
    output.flush()?;
    Ok((messages, unreadable))
}

fn classify_line<'a>(file: &'a str, processed: &'a Processed) -> ClassifyLine<'a> {
    match processed {
        Processed::Routed {
            message,
            classification,
            route,
        } => {
            let mut reasons = classification.reasons.clone();
            reasons.extend(route.reasons.iter().cloned());
            ClassifyLine {
                file,
                message_id: &message.message_id,
                subject: &message.subject,
                tier: classification.tier,
                category: classification.category,
                in_scope: classification.in_scope,
                microsoft: classification.microsoft,
                queue: route.queue.as_str(),
                priority: route.priority,
                confidence: classification.confidence,
                rule: &route.rule,
                reasons,
                entities: Some(&classification.entities),
                quarantined: false,
            }
        }
        Processed::Quarantined { quarantine, .. } => ClassifyLine {
            file,
            message_id: &quarantine.message_id,
            subject: &quarantine.subject,
            tier: Tier::Unmanaged,
            category: Category::Other,
            in_scope: false,
            microsoft: false,
            queue: supportd_core::QueueName::QUARANTINE,
            priority: Priority::Normal,
            confidence: 0.0,
            rule: "quarantine",
            reasons: vec![format!("quarantined: {}", quarantine.reason)],
            entities: None,
            quarantined: true,
        },
    }
}

/// Classifies every message of `inputs` for `eval`: predictions keyed by file
/// name (the last path component, as labels.csv names them).
pub fn predict_inputs(
    pipeline: &Pipeline,
    inputs: &[Input],
    show_progress: bool,
) -> BTreeMap<String, crate::eval::Prediction> {
    let progress = if show_progress {
        ProgressBar::new(inputs.len() as u64)
    } else {
        ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::hidden())
    };
    let received_at = crate::now();
    let mut predictions = BTreeMap::new();
    for input in inputs {
        sources::read_input(input, |result| {
            let raw_mail = match result {
                Ok(raw_mail) => raw_mail,
                Err(problem) => {
                    progress.suspend(|| {
                        tracing::warn!(file = %problem.label, error = %problem.error, "Skipped an unreadable entry.");
                    });
                    return;
                }
            };
            let processed = pipeline.process(&raw_mail.bytes, received_at);
            let line = classify_line(&raw_mail.label, &processed);
            let file = crate::eval::file_name(&raw_mail.label);
            predictions.insert(
                file,
                crate::eval::Prediction {
                    labels: crate::eval::Labels {
                        tier: line.tier,
                        category: line.category,
                        in_scope: line.in_scope,
                        microsoft: line.microsoft,
                    },
                    confidence: line.confidence,
                    reasons: line.reasons,
                    queue: line.queue.to_owned(),
                },
            );
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    predictions
}
