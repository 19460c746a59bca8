//! Mail back to people, wired into the binary: the `[outbound]` settings, the
//! outbox worker `serve` runs, and the staff commands (`supportd outbox list`,
//! `supportd outbox send`, `supportd outbox retry ID`, `supportd ticket reply REF --body-file F`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use supportd_core::TicketRef;
use supportd_outbound::{
    Contact, ExecutionOutcome, Identity, Renderer, Secret, Security, SmtpSettings, Worker,
    WorkerSettings,
};
use supportd_store::{OutboxPolicy, OutboxStatus, Store};
use tokio_util::sync::CancellationToken;

/// `[outbound]` as written in the file (see config/default.toml for each key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Only from the environment (SUPPORTD_OUTBOUND__PASSWORD), never logged.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Extra CA (PEM) to trust for a private relay's certificate.
    pub ca_file: Option<PathBuf>,
    pub helo_name: String,
    pub from_address: String,
    pub from_name: String,
    pub envelope_from: Option<String>,
    pub message_id_domain: String,
    pub escalation_address: String,
    pub templates: PathBuf,
    pub contact_phone: String,
    pub contact_email: String,
    pub contact_portal: String,
    pub acknowledgment_limit: u32,
    pub acknowledgment_window_s: i64,
    pub bounce_suppression_days: u32,
    pub batch_size: u32,
    pub lease_s: u64,
    pub poll_interval_ms: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub max_attempts: u32,
    pub timeout_s: u64,
}

/// The validated `[outbound]` section.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Whether `serve` runs the worker. Rows are written either way.
    pub enabled: bool,
    pub smtp: SmtpSettings,
    pub worker: WorkerSettings,
    pub identity: Identity,
    /// What ingest needs to write outbox rows.
    pub policy: OutboxPolicy,
    pub templates: PathBuf,
}

fn parse_address(key: &str, value: &str) -> anyhow::Result<lettre::Address> {
    value
        .parse()
        .with_context(|| format!("outbound.{key}: `{value}` is not a mail address"))
}

impl RawOutbound {
    /// Checks every key; errors name the file and the key.
    pub fn validate(
        self,
        config_path: &Path,
        beside_config: &dyn Fn(&Path) -> PathBuf,
    ) -> anyhow::Result<OutboundSettings> {
        let file = config_path.display();
        let loopback = matches!(self.host.as_str(), "127.0.0.1" | "::1" | "localhost");
        if self.security == Security::Plain && !loopback {
            bail!(
                "{file}: outbound.security = \"plain\" is only allowed for a loopback host, not `{}`; use \"starttls\" or \"tls\"",
                self.host
            );
        }
        if self.acknowledgment_limit == 0 || self.acknowledgment_window_s <= 0 {
            bail!(
                "{file}: outbound.acknowledgment_limit and acknowledgment_window_s must be positive"
            );
        }
        if self.batch_size == 0 || self.max_attempts == 0 {
            bail!("{file}: outbound.batch_size and outbound.max_attempts must be positive");
        }
        let from = parse_address("from_address", &self.from_address)?;
        parse_address("escalation_address", &self.escalation_address)?;
        let envelope_from = match &self.envelope_from {
            Some(address) => parse_address("envelope_from", address)?,
            None => from.clone(),
        };
        if self.message_id_domain.is_empty()
            || !self
                .message_id_domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            bail!(
                "{file}: outbound.message_id_domain `{}` is not a domain name",
                self.message_id_domain
            );
        }
        let password = match (&self.password, &self.password_file) {
            (Some(password), _) => Some(Secret::new(password.clone())),
            (None, Some(path)) => Some(Secret::new(
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("outbound.password_file: cannot read {}", path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            )),
            (None, None) => None,
        };
        Ok(OutboundSettings {
            enabled: self.enabled,
            smtp: SmtpSettings {
                host: self.host,
                port: self.port,
                security: self.security,
                username: self.username,
                password,
                timeout: Duration::from_secs(self.timeout_s.max(1)),
                helo_name: self.helo_name,
                ca_file: self.ca_file.as_deref().map(beside_config),
            },
            worker: WorkerSettings {
                batch_size: self.batch_size,
                lease: Duration::from_secs(self.lease_s.max(1)),
                poll_interval: Duration::from_millis(self.poll_interval_ms.max(10)),
                backoff_initial: Duration::from_millis(self.backoff_initial_ms),
                backoff_max: Duration::from_millis(
                    self.backoff_max_ms.max(self.backoff_initial_ms),
                ),
                max_attempts: self.max_attempts,
                envelope_from,
            },
            identity: Identity {
                from: lettre::message::Mailbox::new(Some(self.from_name), from),
                contact: Contact {
                    phone: self.contact_phone,
                    email: self.contact_email,
                    portal: self.contact_portal,
                },
            },
            policy: OutboxPolicy {
                message_id_domain: self.message_id_domain,
                escalation_address: self.escalation_address,
                acknowledgment_limit: self.acknowledgment_limit,
                acknowledgment_window_s: self.acknowledgment_window_s,
                bounce_suppression_s: i64::from(self.bounce_suppression_days) * 24 * 3600,
            },
            templates: beside_config(&self.templates),
        })
    }
}

/// Builds the worker `serve` runs: templates loaded, transport ready (it
/// connects lazily, so a server that is down is no error here).
pub fn build_worker(store: Store, settings: &OutboundSettings) -> anyhow::Result<Worker> {
    let renderer = Renderer::load(&settings.templates, settings.identity.clone())
        .context("cannot load the mail templates")?;
    Ok(Worker::new(
        store,
        renderer,
        &settings.smtp,
        settings.worker.clone(),
    )?)
}

/// Runs the outbox worker until `cancel`.
pub async fn run_worker(worker: Worker, cancel: CancellationToken) {
    worker.run(cancel).await;
}

/// `supportd outbox send`: rounds of the worker until nothing is due (rows
/// retried with a backoff are due later, so this ends), then a summary line
/// with the rate.
pub async fn send(store: Store, settings: &OutboundSettings) -> anyhow::Result<()> {
    let worker = build_worker(store, settings)?;
    let started = std::time::Instant::now();
    let (mut sent, mut retried, mut dead) = (0u64, 0u64, 0u64);
    while let ExecutionOutcome::TaskCompleted {
        sent: round_sent,
        retried: round_retried,
        dead: round_dead,
    } = worker.try_execute_task().await?
    {
        sent += u64::from(round_sent);
        retried += u64::from(round_retried);
        dead += u64::from(round_dead);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let handled = sent + retried + dead;
    println!(
        "{sent} sent, {retried} to retry, {dead} dead in {elapsed:.3} s ({:.1} rows/s)",
        if elapsed > 0.0 {
            handled as f64 / elapsed
        } else {
            0.0
        }
    );
    Ok(())
}

/// `supportd outbox list`.
pub async fn list(store: &Store, status: Option<&str>, limit: u32) -> anyhow::Result<()> {
    let status = status
        .map(str::parse::<OutboxStatus>)
        .transpose()
        .map_err(|error| anyhow::anyhow!("--status: {error} (queued, sent, suppressed, dead)"))?;
    let mails = store.outbox(status, limit).await?;
    println!("ID\tTICKET\tKIND\tSTATUS\tATTEMPTS\tRECIPIENT\tREASON");
    for mail in mails {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            mail.id,
            mail.ticket_ref,
            mail.kind,
            mail.status,
            mail.attempts,
            mail.recipient,
            mail.reason.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// `supportd outbox retry ID`.
pub async fn retry(store: &Store, id: i64, actor: &str) -> anyhow::Result<()> {
    if store.retry_outbox(id, crate::now(), actor).await? {
        println!("outbox mail {id} queued again");
        Ok(())
    } else {
        bail!("no dead or suppressed outbox mail {id}")
    }
}

/// `supportd ticket reply REF --body-file F`.
pub async fn reply(
    store: &Store,
    reference: &str,
    body_file: &Path,
    actor: &str,
) -> anyhow::Result<()> {
    let ticket_ref: TicketRef = reference.parse()?;
    let body = std::fs::read_to_string(body_file)
        .with_context(|| format!("cannot read the reply body {}", body_file.display()))?;
    if body.trim().is_empty() {
        bail!("the reply body {} is empty", body_file.display());
    }
    match store
        .queue_staff_reply(ticket_ref, &body, actor, crate::now())
        .await?
    {
        Some(message_id) => {
            println!("reply to {ticket_ref} queued as <{message_id}>");
            Ok(())
        }
        None => bail!("no ticket {ticket_ref}"),
    }
}
