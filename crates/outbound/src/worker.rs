//! The outbox worker: claim due rows, render once, send, mark.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use supportd_store::{OutboxClaim, OutboxMail, Store};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::render::{RenderInput, Renderer};
use crate::smtp::{SmtpClient, SmtpSession};
use crate::{OutboundError, SmtpSettings};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Rows claimed per round.
    pub batch_size: u32,
    /// How long a claimed row stays with this worker; after a crash another
    /// claim takes it again once the lease runs out.
    pub lease: Duration,
    /// Pause between rounds when nothing was due.
    pub poll_interval: Duration,
    /// Backoff after the first temporary failure; doubles per attempt.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// After this many attempts a row is dead even on temporary failures.
    pub max_attempts: u32,
    /// Envelope sender (MAIL FROM): where bounces go.
    pub envelope_from: lettre::Address,
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// Rows were claimed and handled.
    TaskCompleted { sent: u32, retried: u32, dead: u32 },
    /// Nothing was due.
    EmptyQueue,
}

/// Sends the outbox through one SMTP server.
pub struct Worker {
    store: Store,
    renderer: Renderer,
    smtp: SmtpClient,
    settings: WorkerSettings,
}

/// Exponential backoff for `attempts` attempts made: initial × 2^(attempts−1), capped.
pub fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << exponent).min(max)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// How one row ended this round.
enum RowOutcome {
    Sent,
    Retried,
    Dead,
}

impl Worker {
    pub fn new(
        store: Store,
        renderer: Renderer,
        smtp: &SmtpSettings,
        settings: WorkerSettings,
    ) -> Result<Worker, OutboundError> {
        Ok(Worker {
            store,
            renderer,
            smtp: SmtpClient::new(smtp)?,
            settings,
        })
    }

    /// Loops until `cancel`: a round, then (when nothing was due, or the store
    /// failed) a pause. Cancellation is checked only between rounds.
    pub async fn run(&self, cancel: CancellationToken) {
        tracing::info!(
            batch_size = self.settings.batch_size,
            "Outbox worker started."
        );
        let mut store_failures: u32 = 0;
        loop {
            let pause = match self.try_execute_task().await {
                Ok(ExecutionOutcome::TaskCompleted { .. }) => {
                    store_failures = 0;
                    Duration::ZERO
                }
                Ok(ExecutionOutcome::EmptyQueue) => {
                    store_failures = 0;
                    self.settings.poll_interval
                }
                Err(error) => {
                    store_failures = store_failures.saturating_add(1);
                    let pause = backoff(
                        store_failures,
                        Duration::from_millis(500),
                        Duration::from_secs(60),
                    );
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = pause.as_millis() as u64,
                        "Outbox round failed."
                    );
                    pause
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("Outbox worker stopped.");
    }

    /// One round: claims up to `batch_size` due rows and handles each.
    pub async fn try_execute_task(&self) -> Result<ExecutionOutcome, OutboundError> {
        let claim = OutboxClaim {
            now: unix_now(),
            lease_s: seconds(self.settings.lease).max(1),
            limit: self.settings.batch_size.max(1),
        };
        let mails = self.store.claim_outbox(claim).await?;
        if mails.is_empty() {
            return Ok(ExecutionOutcome::EmptyQueue);
        }
        let (mut sent, mut retried, mut dead) = (0, 0, 0);
        // One connection for the round, opened at the first send and opened
        // again after an error broke it.
        let mut session: Option<SmtpSession> = None;
        for mail in &mails {
            let span = tracing::info_span!(
                "outbox_send",
                outbox_id = mail.id,
                ticket_ref = %mail.ticket_ref,
                kind = %mail.kind,
                attempt = mail.attempts,
            );
            let outcome = self.execute(mail, &mut session).instrument(span).await;
            match outcome {
                Ok(RowOutcome::Sent) => sent += 1,
                Ok(RowOutcome::Retried) => retried += 1,
                Ok(RowOutcome::Dead) => dead += 1,
                Err(error) => {
                    if let Some(session) = session.take() {
                        session.quit().await;
                    }
                    return Err(error);
                }
            }
        }
        if let Some(session) = session.take() {
            session.quit().await;
        }
        metrics::counter!("supportd_outbox_sent_total").increment(u64::from(sent));
        metrics::counter!("supportd_outbox_retried_total").increment(u64::from(retried));
        metrics::counter!("supportd_outbox_dead_total").increment(u64::from(dead));
        Ok(ExecutionOutcome::TaskCompleted {
            sent,
            retried,
            dead,
        })
    }

    /// Renders (first attempt only), sends and marks one claimed row.
    async fn execute(
        &self,
        mail: &OutboxMail,
        session: &mut Option<SmtpSession>,
    ) -> Result<RowOutcome, OutboundError> {
        let bytes = match &mail.rendered {
            Some(bytes) => bytes.clone(),
            None => match self.render(mail).await {
                Ok(bytes) => {
                    self.store.save_rendered(mail.id, &bytes).await?;
                    bytes
                }
                Err(OutboundError::Store(error)) => return Err(OutboundError::Store(error)),
                Err(error) => {
                    // An address that cannot be parsed never will be; a
                    // template error waits for an operator, retried.
                    let reason = format!("{error:#}");
                    if matches!(error, OutboundError::Address { .. }) {
                        return self.give_up(mail, &reason).await;
                    }
                    tracing::error!(error = reason, "Cannot render an outbox mail.");
                    return self.retry_later(mail, &reason).await;
                }
            },
        };
        let envelope = match mail
            .recipient
            .parse::<lettre::Address>()
            .map_err(|error| error.to_string())
            .and_then(|to| {
                Envelope::new(Some(self.settings.envelope_from.clone()), vec![to])
                    .map_err(|error| error.to_string())
            }) {
            Ok(envelope) => envelope,
            Err(reason) => {
                return self
                    .give_up(mail, &format!("bad recipient address: {reason}"))
                    .await;
            }
        };
        if session.as_ref().is_some_and(|open| !open.is_usable()) {
            *session = None;
        }
        let open = match session {
            Some(open) => open,
            None => match self.smtp.connect().await {
                Ok(open) => session.insert(open),
                // Even a 5xx greeting, EHLO or AUTH refusal concerns the
                // server, not this mail: retried, never dead.
                Err(error) => return self.retry_later(mail, &format!("{error:#}")).await,
            },
        };
        match open.send(&envelope, &bytes).await {
            Ok(response) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                self.store
                    .mark_outbox_sent(mail.id, unix_now(), &reply)
                    .await?;
                tracing::info!("Mail sent.");
                Ok(RowOutcome::Sent)
            }
            Err(error) if error.is_permanent() => {
                self.give_up(mail, &format!("refused by the server: {error}"))
                    .await
            }
            Err(error) => {
                // The connection may be mid-transaction: start afresh.
                *session = None;
                self.retry_later(mail, &error.to_string()).await
            }
        }
    }

    async fn render(&self, mail: &OutboxMail) -> Result<Vec<u8>, OutboundError> {
        let ticket = self.store.ticket(mail.ticket_ref).await?.ok_or_else(|| {
            OutboundError::Unexpected(anyhow::anyhow!("ticket {} is gone", mail.ticket_ref))
        })?;
        let source = mail
            .source_message
            .and_then(|id| ticket.messages.iter().find(|message| message.id == id));
        let source_raw = match (mail.kind, source) {
            (supportd_store::OutboxKind::MicrosoftEscalation, Some(message)) => {
                self.store.raw_message(message.id).await?
            }
            _ => None,
        };
        self.renderer.render(&RenderInput {
            mail,
            ticket: &ticket,
            source,
            source_raw: source_raw.as_deref(),
            now: SystemTime::now(),
        })
    }

    async fn retry_later(
        &self,
        mail: &OutboxMail,
        reason: &str,
    ) -> Result<RowOutcome, OutboundError> {
        if mail.attempts >= self.settings.max_attempts {
            return self
                .give_up(
                    mail,
                    &format!("gave up after {} attempts: {reason}", mail.attempts),
                )
                .await;
        }
        let delay = backoff(
            mail.attempts,
            self.settings.backoff_initial,
            self.settings.backoff_max,
        );
        // Whole seconds in the store; a sub-second backoff is due next second.
        let now = unix_now();
        let next = now.saturating_add(seconds(delay));
        self.store
            .mark_outbox_retry(mail.id, now, next, reason)
            .await?;
        tracing::warn!(
            error = reason,
            retry_in_s = next - now,
            "Mail not sent; will retry."
        );
        Ok(RowOutcome::Retried)
    }

    async fn give_up(&self, mail: &OutboxMail, reason: &str) -> Result<RowOutcome, OutboundError> {
        self.store
            .mark_outbox_dead(mail.id, unix_now(), reason)
            .await?;
        tracing::warn!(error = reason, "Mail is dead (permanent failure).");
        Ok(RowOutcome::Dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let initial = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, initial, max), Duration::from_secs(2));
        assert_eq!(backoff(2, initial, max), Duration::from_secs(4));
        assert_eq!(backoff(5, initial, max), Duration::from_secs(32));
        assert_eq!(backoff(6, initial, max), max);
        assert_eq!(backoff(200, initial, max), max);
    }
}
