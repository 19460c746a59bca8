//! Named leases: at most one holder per name at a time, so each (mailbox,
//! folder) is polled by exactly one of several instances.
//!
//! A holder takes a lease for a time to live and renews it well before the
//! end; a holder that stops renewing (killed, partitioned) loses it at expiry,
//! and the next `try_acquire` by anyone else takes it over. Expiry is judged
//! by the database's clock, in milliseconds, the one clock every instance
//! shares, so skew between hosts cannot give a lease two holders.

use std::time::Duration;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub name: String,
    /// Who holds it (an instance id: host, pid, start time).
    pub holder: String,
    /// When the current holder took it, database clock, ms since the epoch.
    pub acquired_at_ms: i64,
    /// When it ends unless renewed.
    pub expires_at_ms: i64,
    /// True when `expires_at_ms` has passed: anyone may take it over.
    pub expired: bool,
}

/// Proof a writer must still hold a lease for its write to commit: checked
/// inside the write's own transaction (see [`crate::Store::ingest_batch_fenced`]).
/// A holder that stalled past its lease's expiry (a long GC-like pause, a
/// partition) and wakes up after another instance took over cannot commit
/// the batch it had in hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease's name, e.g. `mailbox:support`.
    pub lease: String,
    /// The holder id the lease was taken with.
    pub holder: String,
}

/// A time to live in milliseconds, at least 1 ms, at most about 290 million years.
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .unwrap_or(i64::MAX / 4)
        .clamp(1, i64::MAX / 4)
}
