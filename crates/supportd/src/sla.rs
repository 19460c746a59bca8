//! The SLA sweep `serve` runs: every interval, open tickets past their
//! first-response due time with no staff reply are marked breached, raised one
//! priority step and audited (all by [`Store::sweep_sla`], in one transaction
//! per batch), counted in `supportd_sla_breaches_total`, and logged.

use std::time::Duration;

use supportd_store::Store;
use tokio_util::sync::CancellationToken;

/// Tickets marked per transaction; a backlog is worked off batch by batch.
const BATCH: u32 = 500;

/// Sweeps now, then every `interval`, until `cancel`.
pub async fn run(store: Store, interval: Duration, cancel: CancellationToken) {
    loop {
        if let Err(error) = sweep(&store).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "SLA sweep failed; trying again later."
            );
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// One sweep: batches until nothing is left. Returns how many were marked.
pub async fn sweep(store: &Store) -> anyhow::Result<usize> {
    let mut marked = 0;
    loop {
        let breaches = store.sweep_sla(crate::now(), BATCH).await?;
        for breach in &breaches {
            metrics::counter!("supportd_sla_breaches_total", "queue" => breach.queue.as_str().to_owned())
                .increment(1);
            tracing::info!(
                ticket_ref = %breach.ticket_ref,
                queue = %breach.queue.as_str(),
                priority = breach.priority_to.slug(),
                "First response overdue: SLA breached."
            );
        }
        marked += breaches.len();
        if breaches.len() < BATCH as usize {
            return Ok(marked);
        }
    }
}
