//! One IMAP mailbox, watched by `supportd serve`: connect, bring every folder up
//! to date, wait with IDLE (or poll), repeat; on any error drop the session and
//! reconnect after an exponential backoff with jitter. A mailbox that fails keeps
//! failing alone: each has its own task.
//!
//! Per folder: the checkpoint (UIDVALIDITY, last UID) comes from the store. A
//! folder seen for the first time starts where the account's `start` says; a
//! changed UIDVALIDITY re-scans from UID 0 (the idempotent ingest drops what it
//! already has). Each fetched batch is stored together with the new checkpoint
//! in one transaction, and only then acknowledged at the server (flag, move, or
//! nothing); quarantined mail is moved to the quarantine folder.
//!
//! One connection per mailbox: it fetches, then idles on the first folder.
//!
//! On PostgreSQL several instances may run the same mailboxes: each mailbox
//! (all its folders) is polled only by the holder of its lease
//! (`mailbox:<name>`, see [`LeaseTerms`]). The others stand by and try to take
//! it every `standby_retry`. The holder renews it every `renew_interval` from
//! a heartbeat that runs beside the session, so a long IDLE renews too; when a
//! renewal fails or finds the lease taken, the session is dropped at once
//! (a commit already sent finishes: ingest is idempotent) and the instance
//! stands by again. A clean shutdown releases the lease, so a standby takes
//! over within `standby_retry`; a killed holder's lease runs out after `ttl`.
//! On SQLite (one instance) there is no lease: the mailbox is always polled.
//!
//! Each mailbox reports to the [`SourceBoard`] (state, last completed sync,
//! last error, refused credentials) for `/readyz` and `/metrics`, and counts
//! what it does with the `metrics` macros, labelled by mailbox:
//! `supportd_messages_fetched_total`, then one of
//! `supportd_messages_{ingested,threaded,duplicated,quarantined}_total` per
//! message (ingested: it opened a ticket; threaded: it joined one),
//! `supportd_imap_reconnects_total`, `supportd_imap_errors_total` (by kind),
//! `supportd_mailbox_leases_acquired_total` and
//! `supportd_mailbox_leases_lost_total`, and the
//! `supportd_arrival_to_routed_seconds` histogram (from the server's
//! INTERNALDATE to the commit).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use supportd_core::health::{SourceBoard, SourceState};
use supportd_intake::{Backoff, FetchedMessage, IdleOutcome, ImapAccount, IntakeError, Session};
use supportd_mail::Normalised;
use supportd_store::{
    Checkpoint, Fence, IngestContent, IngestItem, IngestOutcome, SourcePosition, Store, StoreError,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::settings::MailboxLeaseSettings;
use crate::{Application, now};

/// Who this process is when it holds a lease, and how leases are timed.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// Unique per process: host, pid and a random part (a pid is reused
    /// after a restart, and containers all run pid 1).
    pub holder: String,
    pub timing: MailboxLeaseSettings,
}

impl LeaseTerms {
    pub fn new(timing: MailboxLeaseSettings) -> LeaseTerms {
        LeaseTerms {
            holder: format!(
                "{}/{}/{:08x}",
                host_name(),
                std::process::id(),
                fastrand::u32(..)
            ),
            timing,
        }
    }
}

/// The machine's name, for lease holders; `unknown-host` when unreadable.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The lease that guards a mailbox (all its folders).
pub fn lease_name(account: &ImapAccount) -> String {
    format!("mailbox:{}", account.name)
}

/// Watches one mailbox until `cancel` fires, reporting to `board`; on a
/// shared database only while this instance holds the mailbox's lease.
pub async fn run(
    application: Arc<Application>,
    account: ImapAccount,
    board: SourceBoard,
    lease_terms: LeaseTerms,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("mailbox", mailbox = %account.name);
    async {
        let health = Health {
            board,
            account: &account,
        };
        health.starting();
        if application.store.is_shared() {
            run_under_lease(&application, &account, &health, &lease_terms, &cancel).await;
        } else {
            poll(&application, &account, &health, None, &cancel).await;
        }
    }
    .instrument(span)
    .await
}

/// Stands by until the lease is ours, polls while it stays ours, and stands by
/// again when it is lost; releases it on shutdown.
async fn run_under_lease(
    application: &Application,
    account: &ImapAccount,
    health: &Health<'_>,
    lease_terms: &LeaseTerms,
    cancel: &CancellationToken,
) {
    let store = &application.store;
    let lease = lease_name(account);
    let holder = lease_terms.holder.as_str();
    // Every batch commits only while the lease is still ours.
    let fence = Fence {
        lease: lease.clone(),
        holder: holder.to_owned(),
    };
    loop {
        if !wait_for_lease(application, &lease, health, lease_terms, cancel).await {
            return;
        }
        tracing::info!(lease, holder, "Mailbox lease acquired; polling.");
        metrics::counter!("supportd_mailbox_leases_acquired_total", "mailbox" => account.name.clone())
            .increment(1);
        health.lease_acquired();
        // The heartbeat only ever ends by losing the lease; polling only by
        // the shutdown. Whichever ends first drops the other: a lost lease
        // drops the session at once.
        let lost = tokio::select! {
            () = poll(application, account, health, Some(&fence), cancel) => None,
            lost = keep_renewing(application, &lease, lease_terms) => Some(lost),
        };
        match lost {
            None => {
                match store.release_lease(&lease, holder).await {
                    Ok(_) => tracing::info!(lease, "Mailbox lease released."),
                    Err(error) => tracing::warn!(
                        lease,
                        error = format!("{:#}", anyhow::Error::new(error)),
                        "Cannot release the mailbox lease; another instance takes over when it expires."
                    ),
                }
                return;
            }
            Some(error) => {
                metrics::counter!("supportd_mailbox_leases_lost_total", "mailbox" => account.name.clone())
                    .increment(1);
                tracing::warn!(
                    lease,
                    error = format!("{error:#}"),
                    "Mailbox lease lost; stopped polling and standing by."
                );
            }
        }
    }
}

/// Tries to take the lease now and then every `standby_retry`, reporting
/// `standby` while another instance holds it. True once it is ours; false
/// when cancelled first.
async fn wait_for_lease(
    application: &Application,
    lease: &str,
    health: &Health<'_>,
    lease_terms: &LeaseTerms,
    cancel: &CancellationToken,
) -> bool {
    let timing = lease_terms.timing;
    let mut told = false;
    loop {
        match application
            .store
            .try_acquire_lease(lease, &lease_terms.holder, timing.ttl)
            .await
        {
            Ok(true) => return true,
            Ok(false) => {
                if !told {
                    let holder = application
                        .store
                        .lease(lease)
                        .await
                        .ok()
                        .flatten()
                        .map(|lease| lease.holder)
                        .unwrap_or_default();
                    tracing::info!(
                        lease,
                        holder,
                        "Another instance polls this mailbox; standing by."
                    );
                    told = true;
                }
                health.standing_by(timing.standby_retry);
            }
            Err(error) => {
                let error = anyhow::Error::new(error).context("cannot take the mailbox lease");
                tracing::warn!(error = format!("{error:#}"), "Mailbox lease check failed.");
                health.failed(&error);
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(timing.standby_retry) => {}
        }
    }
}

/// Renews the lease every `renew_interval` until a renewal fails, times out
/// or finds the lease taken: then returns why. Never returns otherwise.
async fn keep_renewing(
    application: &Application,
    lease: &str,
    lease_terms: &LeaseTerms,
) -> anyhow::Error {
    let timing = lease_terms.timing;
    loop {
        tokio::time::sleep(timing.renew_interval).await;
        let renewal = application
            .store
            .renew_lease(lease, &lease_terms.holder, timing.ttl);
        match tokio::time::timeout(timing.renew_interval, renewal).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return anyhow::anyhow!("another instance took the lease over"),
            Ok(Err(error)) => {
                return anyhow::Error::new(error).context("cannot renew the mailbox lease");
            }
            Err(_elapsed) => {
                return anyhow::anyhow!(
                    "renewing the mailbox lease took longer than {} ms",
                    timing.renew_interval.as_millis()
                );
            }
        }
    }
}

/// Polls the mailbox (connect, sync, IDLE; reconnect with backoff on
/// errors) until `cancel` fires.
async fn poll(
    application: &Application,
    account: &ImapAccount,
    health: &Health<'_>,
    fence: Option<&Fence>,
    cancel: &CancellationToken,
) {
    let backoff = Backoff::RECONNECT;
    let mut failures: u32 = 0;
    loop {
        match watch(application, account, health, fence, cancel, &mut failures).await {
            Ok(()) => return,
            Err(error) => {
                failures = failures.saturating_add(1);
                let delay = backoff.delay_with_random_jitter(failures);
                health.failed(&error);
                tracing::warn!(
                    error = format!("{error:#}"),
                    failures,
                    retry_in_ms = delay.as_millis() as u64,
                    "Mailbox failed; reconnecting after a pause."
                );
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                metrics::counter!("supportd_imap_reconnects_total", "mailbox" => account.name.clone())
                    .increment(1);
            }
        }
    }
}

/// What this mailbox tells the board.
struct Health<'a> {
    board: SourceBoard,
    account: &'a ImapAccount,
}

impl Health<'_> {
    /// The first sync is due within a connection's time plus `stale_after`.
    fn starting(&self) {
        let due = now().saturating_add(seconds(
            self.account.connect_timeout + self.account.stale_after,
        ));
        self.board.register(&self.account.name, due);
    }

    /// The lease is ours: the first sync is due as for a fresh start.
    fn lease_acquired(&self) {
        let due = now().saturating_add(seconds(
            self.account.connect_timeout + self.account.stale_after,
        ));
        self.board.update(&self.account.name, |health| {
            health.state = SourceState::Starting;
            health.must_sync_by = due;
        });
    }

    /// Another instance holds the lease and this one has just checked it:
    /// healthy as long as it keeps checking (the next check is due within
    /// `standby_retry`, plus `stale_after` of grace).
    fn standing_by(&self, standby_retry: Duration) {
        let due = now().saturating_add(seconds(standby_retry + self.account.stale_after));
        self.board.update(&self.account.name, |health| {
            health.state = SourceState::Standby;
            health.must_sync_by = due;
            health.last_error = None;
            health.credentials_refused = false;
        });
    }

    /// Logged in; `token_expires_at` is the OAuth2 access token's expiry.
    fn connected(&self, token_expires_at: Option<i64>) {
        self.board.update(&self.account.name, |health| {
            health.state = SourceState::Connected;
            health.credentials_refused = false;
            health.token_expires_at = token_expires_at;
        });
    }

    /// Every folder is up to date: the next sync is due within `stale_after`.
    fn synced(&self) {
        let at = now();
        self.board.update(&self.account.name, |health| {
            health.state = SourceState::Connected;
            health.last_sync_at = Some(at);
            health.must_sync_by = at.saturating_add(seconds(self.account.stale_after));
            health.last_error = None;
        });
    }

    /// A failure: backing off. The promise of the last sync is kept, so a
    /// mailbox that keeps failing turns not ready once it is stale.
    fn failed(&self, error: &anyhow::Error) {
        let intake_error = error.downcast_ref::<IntakeError>();
        let refused = matches!(
            intake_error,
            Some(IntakeError::AuthenticationRefused { .. })
        );
        let kind = match intake_error {
            Some(IntakeError::AuthenticationRefused { .. }) => "auth",
            Some(IntakeError::Credential { .. }) => "credential",
            Some(IntakeError::TokenEndpoint { .. }) => "oauth2",
            Some(IntakeError::Tls { .. }) => "tls",
            Some(IntakeError::Timeout { .. }) => "timeout",
            Some(IntakeError::Network { .. }) => "network",
            Some(_) => "imap",
            None => "store",
        };
        metrics::counter!(
            "supportd_imap_errors_total",
            "mailbox" => self.account.name.clone(),
            "kind" => kind
        )
        .increment(1);
        let message = format!("{error:#}");
        self.board.update(&self.account.name, |health| {
            health.state = SourceState::Backoff;
            health.last_error = Some(message);
            health.credentials_refused = refused;
        });
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// One session: returns `Ok` when cancelled, an error when the session broke.
async fn watch(
    application: &Application,
    account: &ImapAccount,
    health: &Health<'_>,
    fence: Option<&Fence>,
    cancel: &CancellationToken,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let mut session = supportd_intake::connect(account).await?;
    tracing::info!(
        server = %account.host,
        folders = account.folders.len(),
        "Connected."
    );
    health.connected(session.token_expires_at());
    *failures = 0;
    for folder in &account.folders {
        acknowledge_stored_leftovers(application, account, &mut session, folder).await?;
    }
    let idle_folder = account
        .folders
        .first()
        .context("the mailbox has no folder")?;
    loop {
        for folder in &account.folders {
            sync_folder(application, account, &mut session, folder, fence, cancel).await?;
            if cancel.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
        }
        health.synced();
        if account.folders.len() > 1 {
            session.select(idle_folder).await?;
        }
        match session
            .idle_wait(account.idle_timeout, cancel.cancelled())
            .await?
        {
            IdleOutcome::Cancelled => {
                let _ = session.logout().await;
                return Ok(());
            }
            IdleOutcome::NewMail | IdleOutcome::Timeout => {}
        }
    }
}

/// After a crash between a commit and its acknowledgment, mail that is stored
/// but still waiting at the server (unmoved, or unseen): acknowledge it now.
/// Only mail the store holds is touched, never history older than `start`.
async fn acknowledge_stored_leftovers(
    application: &Application,
    account: &ImapAccount,
    session: &mut Session,
    folder: &str,
) -> anyhow::Result<()> {
    let folder_state = session.select(folder).await?;
    let Some(checkpoint) = application
        .store
        .checkpoint(&account.name, folder)
        .await
        .context("cannot read the folder's checkpoint")?
        .filter(|checkpoint| checkpoint.uidvalidity == folder_state.uidvalidity)
    else {
        return Ok(());
    };
    let waiting = session
        .uids_not_acknowledged(checkpoint.last_uid, &account.acknowledge)
        .await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let stored = application
        .store
        .stored_imap_uids(
            &mailbox_label(account, folder),
            folder_state.uidvalidity,
            &waiting,
        )
        .await
        .context("cannot look up stored mail")?;
    if !stored.is_empty() {
        tracing::info!(
            folder,
            count = stored.len(),
            "Acknowledging mail stored before an interruption."
        );
        acknowledge(session, account, &stored, &[]).await;
    }
    Ok(())
}

/// How an IMAP folder is named in message source positions.
fn mailbox_label(account: &ImapAccount, folder: &str) -> String {
    format!("{}/{}", account.name, folder)
}

/// Stores everything new in `folder`, batch by batch, each batch committed with
/// its checkpoint before it is acknowledged.
async fn sync_folder(
    application: &Application,
    account: &ImapAccount,
    session: &mut Session,
    folder: &str,
    fence: Option<&Fence>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let folder_state = session.select(folder).await?;
    let stored = application
        .store
        .checkpoint(&account.name, folder)
        .await
        .context("cannot read the folder's checkpoint")?;
    let last_uid = match stored {
        Some(checkpoint) if checkpoint.uidvalidity == folder_state.uidvalidity => {
            checkpoint.last_uid
        }
        previous => {
            let last_uid = match previous {
                Some(previous) => {
                    tracing::warn!(
                        folder,
                        old_uidvalidity = previous.uidvalidity,
                        new_uidvalidity = folder_state.uidvalidity,
                        "UIDVALIDITY changed; scanning the folder again (stored mail is not doubled)."
                    );
                    0
                }
                None => {
                    let start = session
                        .start_after_uid(account.start, &folder_state)
                        .await?;
                    tracing::info!(
                        folder,
                        start_after_uid = start,
                        "First visit of this folder."
                    );
                    start
                }
            };
            let checkpoint = Checkpoint {
                mailbox: account.name.clone(),
                folder: folder.to_owned(),
                uidvalidity: folder_state.uidvalidity,
                last_uid,
            };
            commit(&application.store, &[], &checkpoint, fence)
                .await
                .context("cannot save the folder's checkpoint")?;
            last_uid
        }
    };
    let mailbox_label = mailbox_label(account, folder);
    let position = |uid| SourcePosition::imap(&mailbox_label, folder_state.uidvalidity, uid);
    // A two-stage pipeline: while batch N commits (on another task), batch N+1
    // is fetched, parsed and classified here. Batch N is acknowledged only
    // after its commit.
    let fetched = session.fetch_after(last_uid, account.batch_size).await?;
    let mut batch = prepare_batch(application, fetched, &position);
    loop {
        let Some(batch_last_uid) = batch.uids.last().copied() else {
            return Ok(());
        };
        let checkpoint = Checkpoint {
            mailbox: account.name.clone(),
            folder: folder.to_owned(),
            uidvalidity: folder_state.uidvalidity,
            last_uid: batch_last_uid,
        };
        let store = application.store.clone();
        let items = batch.items;
        let batch_fence = fence.cloned();
        let committing = tokio::spawn(async move {
            let outcomes = commit(&store, &items, &checkpoint, batch_fence.as_ref()).await;
            (items, outcomes)
        });
        let next = if cancel.is_cancelled() {
            Ok(Vec::new())
        } else {
            session
                .fetch_after(batch_last_uid, account.batch_size)
                .await
        };
        let next = next.map(|fetched| prepare_batch(application, fetched, &position));
        let (items, outcomes) = committing.await.context("the store task failed")?;
        let outcomes = outcomes.context("cannot store a batch of fetched mail")?;

        let mut quarantined = Vec::new();
        let mut stored = Vec::new();
        let routed_at = Utc::now();
        let mailbox = &account.name;
        for ((uid, item), outcome) in batch.uids.iter().zip(&items).zip(&outcomes) {
            log_outcome(folder, *uid, item, *outcome);
            count_outcome(mailbox, *outcome);
            match outcome {
                IngestOutcome::Quarantined(_) => quarantined.push(*uid),
                _ => stored.push(*uid),
            }
        }
        for arrived in batch.internal_dates.iter().flatten() {
            let latency = (routed_at - *arrived).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("supportd_arrival_to_routed_seconds", "mailbox" => mailbox.clone())
                .record(latency);
        }
        // Committed: now, and only now, tell the server.
        acknowledge(session, account, &stored, &quarantined).await;
        if cancel.is_cancelled() {
            return Ok(());
        }
        batch = next?;
    }
}

/// Commits a batch with its checkpoint; under a lease, only while the lease
/// is still ours.
async fn commit(
    store: &Store,
    items: &[IngestItem],
    checkpoint: &Checkpoint,
    fence: Option<&Fence>,
) -> Result<Vec<IngestOutcome>, StoreError> {
    match fence {
        Some(fence) => store.ingest_batch_fenced(items, checkpoint, fence).await,
        None => store.ingest_batch_with_checkpoint(items, checkpoint).await,
    }
}

/// A fetched batch after the pure stages, with the UIDs and the server's
/// arrival times in the same order.
struct PreparedBatch {
    uids: Vec<u32>,
    internal_dates: Vec<Option<DateTime<Utc>>>,
    items: Vec<IngestItem>,
}

/// Runs the pure stages on a fetched batch, on two threads when it is large
/// enough to be worth it (parsing and classifying are CPU-bound).
fn prepare_batch(
    application: &Application,
    fetched: Vec<FetchedMessage>,
    position: &(impl Fn(u32) -> SourcePosition + Sync),
) -> PreparedBatch {
    const PARALLEL_FROM: usize = 64;
    let received_at = now();
    let uids: Vec<u32> = fetched.iter().map(|message| message.uid).collect();
    let internal_dates = fetched
        .iter()
        .map(|message| message.internal_date)
        .collect();
    let prepare_all = |messages: Vec<FetchedMessage>| -> Vec<IngestItem> {
        messages
            .into_iter()
            .map(|message| {
                let source = position(message.uid);
                prepare(application, message, source, received_at)
            })
            .collect()
    };
    let items = if fetched.len() < PARALLEL_FROM {
        prepare_all(fetched)
    } else {
        let mut first_half = fetched;
        let second_half = first_half.split_off(first_half.len() / 2);
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let second = scope.spawn(|| prepare_all(second_half));
                let mut items = prepare_all(first_half);
                match second.join() {
                    Ok(rest) => items.extend(rest),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                items
            })
        })
    };
    PreparedBatch {
        uids,
        internal_dates,
        items,
    }
}

/// Runs the pure stages on a fetched message; an oversized one (header only)
/// is quarantined with what its header says.
fn prepare(
    application: &Application,
    message: FetchedMessage,
    source: SourcePosition,
    received_at: i64,
) -> IngestItem {
    match (message.raw, message.header) {
        (Some(raw), _) => application.pipeline.prepare(raw, source, received_at),
        (None, header) => {
            let header = header.unwrap_or_default();
            let (message_id, subject, from) =
                match supportd_mail::normalise(&header, &supportd_mail::Limits::DEFAULT) {
                    Normalised::Message(parsed) => (parsed.message_id, parsed.subject, parsed.from),
                    Normalised::Quarantine(quarantine) => {
                        (quarantine.message_id, quarantine.subject, quarantine.from)
                    }
                };
            IngestItem {
                content: IngestContent::Quarantined {
                    quarantine_reason: format!(
                        "message of {} bytes is over the size limit; only its header was fetched, the message was moved to the quarantine folder",
                        message.size
                    ),
                    message_id,
                    content_hash: supportd_mail::content_hash(&header),
                    subject,
                    from,
                    due: application.pipeline.router().quarantine_due(received_at),
                },
                raw: header,
                source,
                received_at,
            }
        }
    }
}

/// Acknowledges committed messages. A failure here loses nothing (the mail is
/// stored and the checkpoint is past it); it is logged and intake goes on.
async fn acknowledge(
    session: &mut Session,
    account: &ImapAccount,
    stored: &[u32],
    quarantined: &[u32],
) {
    if let Err(error) = session.acknowledge(stored, &account.acknowledge).await {
        log_acknowledge_failure(&error, stored.len());
    }
    if let Err(error) = session.quarantine(quarantined).await {
        log_acknowledge_failure(&error, quarantined.len());
    }
}

fn log_acknowledge_failure(error: &IntakeError, count: usize) {
    tracing::warn!(
        error = %error,
        count,
        "Stored mail could not be acknowledged at the server; it stays where it is."
    );
}

fn count_outcome(mailbox: &str, outcome: IngestOutcome) {
    let name = match outcome {
        IngestOutcome::Created(_) => "supportd_messages_ingested_total",
        IngestOutcome::Threaded(_) => "supportd_messages_threaded_total",
        IngestOutcome::Duplicate(_) => "supportd_messages_duplicated_total",
        IngestOutcome::Quarantined(_) => "supportd_messages_quarantined_total",
    };
    metrics::counter!(name, "mailbox" => mailbox.to_owned()).increment(1);
    metrics::counter!("supportd_messages_fetched_total", "mailbox" => mailbox.to_owned())
        .increment(1);
}

fn log_outcome(folder: &str, uid: u32, item: &IngestItem, outcome: IngestOutcome) {
    let message_id = match &item.content {
        IngestContent::Parsed { message, .. } => message.message_id.as_str(),
        IngestContent::Quarantined { message_id, .. } => message_id.as_str(),
    };
    let ticket_ref = outcome.ticket_ref();
    match outcome {
        IngestOutcome::Created(_) => {
            tracing::info!(folder, uid, message_id, %ticket_ref, "Ticket created.")
        }
        IngestOutcome::Threaded(_) => {
            tracing::info!(folder, uid, message_id, %ticket_ref, "Reply added to its ticket.")
        }
        IngestOutcome::Duplicate(_) => {
            tracing::info!(folder, uid, message_id, %ticket_ref, "Already stored.")
        }
        IngestOutcome::Quarantined(_) => {
            tracing::warn!(folder, uid, message_id, %ticket_ref, "Message quarantined.")
        }
    }
}
