//! `supportd serve`: the daemon. It runs a fixed set of long-lived tasks on one
//! [`TaskTracker`] with one [`CancellationToken`]: the Maildir drop folder (an MTA
//! or a person drops mail into `new/`), one task per IMAP mailbox
//! ([`crate::mailbox`]), the outbox worker, the web server (`supportd-web`,
//! bound before any task starts so a taken port fails the start) with the SLA
//! sweep ([`crate::sla`]) and API ticket intake ([`crate::portal`]).
//!
//! Drop folder: every new file is ingested and, after the commit and only then,
//! moved to `cur/`. A crash between the commit and the move re-reads the file on
//! restart, which the store sees as a duplicate.
//!
//! Shutdown: SIGTERM or Ctrl-C cancels the token; each task finishes the batch in
//! hand (commit, acknowledge) and stops at its next wait; `serve` waits for all
//! of them, up to a deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use supportd_core::health::SourceBoard;
use supportd_store::{SourceKind, SourcePosition};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Application;
use crate::settings::{IntakeSettings, Settings};

/// How long tasks get to finish their batch after a shutdown signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Runs every intake task until `shutdown` resolves, then stops them.
pub async fn serve(
    application: Arc<Application>,
    settings: &Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let intake = settings.intake.clone();
    prepare_drop_folder(&intake.drop_folder)?;
    let board = SourceBoard::new();
    let web = match &settings.web {
        Some(web_settings) => {
            let metrics = supportd_web::install_metrics()?;
            let listener = supportd_web::bind(web_settings).await?;
            let address = listener
                .local_addr()
                .context("cannot read the web server's address")?;
            let queues = application
                .pipeline
                .router()
                .queues()
                .iter()
                .map(|queue| queue.name.clone())
                .collect();
            let intake = Arc::new(crate::portal::PipelineIntake {
                application: application.clone(),
            });
            let state = supportd_web::AppState::new(
                application.store.clone(),
                web_settings.clone(),
                metrics,
            )?
            .with_sources(board.clone())
            .with_queues(queues)
            .with_intake(intake);
            tracing::info!(address = %address, "Web server listening.");
            Some((listener, state, web_settings.sla_sweep_interval))
        }
        None => None,
    };
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    {
        let application = application.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            drop_folder_loop(&application, &intake, &cancel).await;
            if !cancel.is_cancelled() {
                tracing::error!(task = "drop folder", "Task ended early.");
            }
        });
    }
    let lease_terms = crate::mailbox::LeaseTerms::new(settings.mailbox_lease);
    if application.store.is_shared() && !settings.mailboxes.is_empty() {
        tracing::info!(holder = %lease_terms.holder, "Mailboxes are polled under leases (shared database).");
    }
    for account in &settings.mailboxes {
        let application = application.clone();
        let lease_terms = lease_terms.clone();
        let cancel = cancel.clone();
        let account = account.clone();
        let board = board.clone();
        tracker.spawn(async move {
            let name = account.name.clone();
            crate::mailbox::run(application, account, board, lease_terms, cancel.clone()).await;
            if !cancel.is_cancelled() {
                tracing::error!(task = "mailbox", mailbox = %name, "Task ended early.");
            }
        });
    }
    if settings.outbound.enabled {
        match crate::outbox_cli::build_worker(application.store.clone(), &settings.outbound) {
            Ok(worker) => {
                let cancel = cancel.clone();
                tracker.spawn(async move {
                    crate::outbox_cli::run_worker(worker, cancel.clone()).await;
                    if !cancel.is_cancelled() {
                        tracing::error!(task = "outbox", "Task ended early.");
                    }
                });
            }
            // Rows keep being written and wait; an operator must fix the config.
            Err(error) => tracing::error!(
                error = format!("{error:#}"),
                "The outbox worker cannot start; outgoing mail waits in the outbox."
            ),
        }
    }
    if let Some((listener, state, sla_sweep_interval)) = web {
        {
            let store = application.store.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move {
                crate::sla::run(store, sla_sweep_interval, cancel.clone()).await;
                if !cancel.is_cancelled() {
                    tracing::error!(task = "sla sweep", "Task ended early.");
                }
            });
        }
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let shutdown = cancel.clone().cancelled_owned();
            if let Err(error) = supportd_web::run(listener, state, shutdown).await {
                tracing::error!(task = "web", error = %error, "The web server failed.");
            }
            if !cancel.is_cancelled() {
                tracing::error!(task = "web", "Task ended early.");
            }
        });
    }
    tracker.close();
    tracing::info!(mailboxes = settings.mailboxes.len(), "supportd is running.");
    shutdown.await;
    tracing::info!("Shutting down: finishing the batches in hand.");
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            deadline_s = SHUTDOWN_DEADLINE.as_secs(),
            "Some tasks did not stop in time; exiting anyway."
        );
    }
    application.store.close().await;
    tracing::info!("Stopped.");
    Ok(())
}

fn prepare_drop_folder(drop_folder: &Path) -> anyhow::Result<()> {
    for folder in ["new", "cur", "tmp"] {
        fs::create_dir_all(drop_folder.join(folder))
            .with_context(|| format!("cannot create the drop folder {}", drop_folder.display()))?;
    }
    Ok(())
}

async fn drop_folder_loop(
    application: &Application,
    intake: &IntakeSettings,
    cancel: &CancellationToken,
) {
    let drop_folder = &intake.drop_folder;
    tracing::info!(drop_folder = %drop_folder.display(), "Watching the drop folder.");
    let mut failures: u32 = 0;
    loop {
        let pause = match ingest_new_mail(application, drop_folder, intake.batch_size).await {
            Ok(0) => {
                failures = 0;
                intake.poll_interval
            }
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let backoff = backoff(failures);
                tracing::warn!(
                    error = format!("{error:#}"),
                    retry_in_ms = backoff.as_millis() as u64,
                    "Drop folder intake failed; nothing was acknowledged."
                );
                backoff
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Exponential backoff from 0.5 s to 60 s.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(7);
    Duration::from_millis(500 * (1u64 << exponent)).min(Duration::from_secs(60))
}

/// Ingests up to `batch_size` files of `new/`, then moves them to `cur/`.
/// Returns how many files were handled.
async fn ingest_new_mail(
    application: &Application,
    drop_folder: &Path,
    batch_size: usize,
) -> anyhow::Result<usize> {
    let new_folder = drop_folder.join("new");
    let mut names: Vec<PathBuf> = fs::read_dir(&new_folder)
        .with_context(|| format!("cannot list {}", new_folder.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    names.sort();
    names.truncate(batch_size);
    let mut batch = Vec::with_capacity(names.len());
    let mut read_paths = Vec::with_capacity(names.len());
    for path in names {
        match fs::read(&path) {
            Ok(bytes) => {
                let source = SourcePosition::new(SourceKind::Maildir, path.display().to_string());
                batch.push((bytes, source));
                read_paths.push(path);
            }
            // Left in new/ and retried next time (it may still be being written).
            Err(error) => {
                tracing::warn!(file = %path.display(), error = %error, "Cannot read a dropped message.")
            }
        }
    }
    if batch.is_empty() {
        return Ok(0);
    }
    let outcomes = application.ingest(batch).await?;
    for (path, outcome) in read_paths.iter().zip(&outcomes) {
        tracing::info!(file = %path.display(), ticket_ref = %outcome.ticket_ref(), outcome = ?outcome, "Message stored.");
        acknowledge(drop_folder, path);
    }
    Ok(read_paths.len())
}

/// Moves a stored message from `new/` to `cur/` with the Seen flag, as a Maildir
/// reader would. A failure is logged: the file is ingested again next time and
/// the store recognises the duplicate.
fn acknowledge(drop_folder: &Path, path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let mut target_name = name.to_os_string();
    if !name.to_string_lossy().contains(":2,") {
        target_name.push(":2,S");
    }
    let target = drop_folder.join("cur").join(target_name);
    if let Err(error) = fs::rename(path, &target) {
        tracing::warn!(file = %path.display(), error = %error, "Cannot move a stored message to cur/.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(8), Duration::from_secs(60));
        assert_eq!(backoff(100), Duration::from_secs(60));
    }
}
