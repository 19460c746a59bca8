//! `supportd serve`: the daemon. Today it watches the local Maildir drop folder
//! (an MTA or a person drops mail into `new/`); every new file is ingested and,
//! after the commit and only then, moved to `cur/`. A crash between the commit
//! and the move re-reads the file on restart, which the store sees as a duplicate.
//!
//! Shutdown: SIGTERM or Ctrl-C stops the loop between batches; the batch in hand
//! is committed and acknowledged first.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use supportd_store::{SourceKind, SourcePosition};

use crate::Application;
use crate::settings::IntakeSettings;

/// Runs until `shutdown` resolves.
pub async fn serve(
    application: &Application,
    intake: &IntakeSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let drop_folder = &intake.drop_folder;
    for folder in ["new", "cur", "tmp"] {
        fs::create_dir_all(drop_folder.join(folder))
            .with_context(|| format!("cannot create the drop folder {}", drop_folder.display()))?;
    }
    tracing::info!(drop_folder = %drop_folder.display(), "Watching the drop folder.");
    tokio::pin!(shutdown);
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
            () = &mut shutdown => {
                tracing::info!("Shutting down.");
                return Ok(());
            }
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
