//! Durable storage of tickets, messages, classifications, routing and audit
//! events, with sqlx. All SQL of supportd lives in this crate.
//!
//! # Overview
//!
//! - [`Store`] is the handle every caller uses: an enum with one variant per
//!   backend ([`SqliteStore`], [`PgStore`]) whose async methods match on the
//!   variant. Callers never name a backend; the URL chooses it. `Store` is
//!   cheap to clone (a pool inside).
//! - [`IngestItem`] is what the pipeline hands over for one raw message: the
//!   bytes, its [`SourcePosition`], and [`IngestContent`], either the parsed
//!   `InboundMessage` with its `Classification` and `RouteDecision`, or the
//!   reason it was quarantined. [`Store::ingest_batch`] stores a batch of them in
//!   one transaction and answers one [`IngestOutcome`] per item: `Created`,
//!   `Threaded` (a reply on an existing ticket), `Duplicate` (already stored,
//!   nothing written) or `Quarantined`. The source may acknowledge the batch once
//!   the call returns `Ok`.
//! - Reads serve the staff views: [`QueueSummary`] per queue
//!   ([`Store::queue_summaries`]), pages of [`TicketSummary`] with keyset paging
//!   ([`QueueQuery`], [`Store::queue_tickets`]), and a [`TicketDetail`] with its
//!   [`StoredMessage`]s, [`StoredRoute`]s and [`AuditEvent`]s ([`Store::ticket`]).
//! - For `supportd-web`: staff accounts ([`StaffAccount`], [`StaffRole`]),
//!   browser sessions ([`NewSession`]) and API tokens, stored as hashes only,
//!   each answering the [`Principal`] it belongs to.
//! - [`StoreError`] sorts failures into what a caller can act on: retry later
//!   (`Unavailable`), call an operator (`Corrupt`, `Migration`), fix the
//!   configuration (`InvalidUrl`), or a bug (`Unexpected`).
//!
//! - [`Lease`]s let several instances share work: one holder per name, taken
//!   over after its expiry ([`Store::try_acquire_lease`]).
//! - [`Store::copy_to`] moves a whole database into another (SQLite into
//!   PostgreSQL), and answers a [`CopyReport`] of counts and checksums.
//!
//! # Schema (`migrations/sqlite`, `migrations/postgres`)
//!
//! `tickets` (the number is the primary key; labels NULL when quarantined) ←
//! `messages` (parsed fields, idempotency keys, source position) ← `raw_messages`
//! (the bytes), `attachments` (metadata), `classifications` (one per parsed
//! message); `route_decisions` and `audit_events` hang off the ticket;
//! `accounts` and `mailbox_checkpoints` (IMAP position per folder) stand
//! alone. Times are Unix seconds, lists JSON text.
//!
//! # Invariants
//!
//! - A message is stored once: `(message_id, content_hash)` and, for IMAP,
//!   `(mailbox, uidvalidity, uid)` are unique in the schema.
//! - Ticket numbers start at 1001 and are never reused.
//! - `audit_events` is append-only: no code updates or deletes it, and triggers
//!   refuse it.
//! - Enum columns hold the `slug()` of the supportd-core type, guarded by a CHECK
//!   (a test stores every slug); code binds slugs and reads them back with
//!   `FromStr` (`codec`), and writes no status or priority literal in SQL.
//! - Ingest decides in memory (`plan`, pure) from what one lookup per kind of key
//!   found, then writes; the backend only fetches facts and stores steps. What
//!   a step writes (audit details, staff replies) is decided once, in `write`.
//! - Both schemas mean the same: same tables, columns, CHECKs and triggers;
//!   `rows` reads either.
//! - The raw bytes of every message are kept, parsed or not.

mod batch;
mod codec;
mod copy;
mod desk;
mod error;
mod lease;
mod model;
mod outbox;
mod plan;
mod postgres;
mod rows;
mod sqlite;
mod staff;
mod write;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use supportd_core::{AccountRecord, TicketRef, TicketStatus};

pub use copy::{CopyReport, TableCount};
pub use desk::{
    DeskDetail, DeskQuery, DeskTicket, IdempotencyClaim, Note, SearchQuery, SlaBreach, StaffReply,
};
pub use error::StoreError;
pub use lease::{Fence, Lease};
pub use model::{
    AuditEvent, AuditKind, Checkpoint, ImapUid, IngestContent, IngestItem, IngestOutcome,
    ParseSourceKindError, QueueQuery, QueueSummary, SourceKind, SourcePosition, StoredMessage,
    StoredRoute, TicketDetail, TicketLabels, TicketOrder, TicketSummary,
};
pub use outbox::{OutboxClaim, OutboxKind, OutboxMail, OutboxPolicy, OutboxStatus, TICKET_HEADER};
pub use postgres::{PgStore, redact_url};
pub use sqlite::SqliteStore;
pub use staff::{NewSession, ParseStaffRoleError, Principal, StaffAccount, StaffRole};

/// The store: one variant per database backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file: the default, for one `supportd serve`.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, shared by any number of `supportd serve`.
    Postgres(PgStore),
}

/// Runs the same call on whichever backend the store is.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens the database named by `url`: `sqlite://data/supportd.db` or
    /// `sqlite:path/to/file.db` (relative paths are relative to the working
    /// directory; the file and its parent directory are created when missing),
    /// or `postgres://user[:password]@host[:port]/database` (also
    /// `postgresql://`; the database must exist). Does not migrate: call
    /// [`Store::migrate`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PgStore::open(url).await.map(Store::Postgres);
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(invalid(
                "expected sqlite://<path>, sqlite:<path> or postgres://<user>@<host>/<database>",
            ));
        };
        if rest.contains('?') {
            return Err(invalid(
                "query parameters are not supported; the store sets its own pragmas",
            ));
        }
        if rest.is_empty() || rest == ":memory:" {
            return Err(invalid("a file path is required (the store is durable)"));
        }
        SqliteStore::open(Path::new(rest)).await.map(Store::Sqlite)
    }

    /// This store, writing outbox rows by `policy` (Message-ID domain,
    /// escalation address, rate limit, bounce suppression). Without it the
    /// store uses [`OutboxPolicy::fallback`].
    pub fn with_outbox_policy(self, policy: OutboxPolicy) -> Store {
        match self {
            Store::Sqlite(store) => Store::Sqlite(store.with_outbox_policy(policy)),
            Store::Postgres(store) => Store::Postgres(store.with_outbox_policy(policy)),
        }
    }

    /// The database (file path, or URL without password), for logs and error messages.
    pub fn database(&self) -> &str {
        dispatch!(self, store => store.database())
    }

    /// True when several instances may share this database (PostgreSQL), so
    /// work that must have one doer at a time is guarded by a [`Lease`]. A
    /// SQLite file serves one instance: it needs no lease.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Applies the migrations not yet applied. Safe to call on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.migrate().await)
    }

    /// Closes the connections; pending operations finish first.
    pub async fn close(&self) {
        dispatch!(self, store => store.close().await)
    }

    /// Stores a batch of messages in ONE transaction, in order, and returns one
    /// outcome per item in the same order. Per item:
    ///
    /// 1. Already stored, by `(message_id, content_hash)` or by IMAP source
    ///    position: `Duplicate(ticket)`, nothing written.
    /// 2. A parsed message whose In-Reply-To or References name a stored message,
    ///    or whose subject carries the tag of an existing ticket: appended to that
    ///    ticket with its classification, not re-routed, `Threaded(ticket)`. A
    ///    resolved (or pending-customer) ticket opens again; a closed one stays
    ///    closed.
    /// 3. Any other parsed message: a new ticket, routed by its `RouteDecision`,
    ///    `Created(ticket)`.
    /// 4. A quarantined item: a new ticket in the `quarantine` queue, without
    ///    labels, `Quarantined(ticket)`. It never threads (its headers are not
    ///    trusted); a later reply naming its Message-ID threads onto it.
    ///
    /// An item later in the batch sees the items before it (a reply threads onto
    /// a ticket created earlier in the same batch). On error nothing of the batch
    /// is stored.
    ///
    /// One item the database refuses (a value that breaks a constraint: a bug
    /// or a message nobody foresaw) does not block the rest: the batch is
    /// retried item by item, and the refused item is stored raw in quarantine
    /// with the database's reason (see [`StoreError::may_be_one_item`]).
    pub async fn ingest_batch(
        &self,
        items: &[IngestItem],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest(items, None, None).await
    }

    /// [`Store::ingest_batch`] for an IMAP folder: also moves the folder's
    /// [`Checkpoint`] in the same transaction, so the checkpoint and the tickets
    /// it covers commit together or not at all. With no items, only the
    /// checkpoint is written (the `start = now` position of a new folder, or a
    /// new UIDVALIDITY).
    pub async fn ingest_batch_with_checkpoint(
        &self,
        items: &[IngestItem],
        checkpoint: &Checkpoint,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest(items, Some(checkpoint), None).await
    }

    /// [`Store::ingest_batch_with_checkpoint`] for the holder of a lease: the
    /// batch commits only if `fence`'s holder still holds the unexpired lease,
    /// checked in the batch's own transaction (on PostgreSQL the lease row is
    /// locked until the commit, so a takeover waits for the batch, and a batch
    /// after a takeover is refused). Otherwise nothing is written and the
    /// answer is [`StoreError::LeaseLost`].
    pub async fn ingest_batch_fenced(
        &self,
        items: &[IngestItem],
        checkpoint: &Checkpoint,
        fence: &Fence,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest(items, Some(checkpoint), Some(fence)).await
    }

    async fn ingest(
        &self,
        items: &[IngestItem],
        checkpoint: Option<&Checkpoint>,
        fence: Option<&Fence>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        match dispatch!(self, store => store.ingest_batch(items, checkpoint, fence).await) {
            Err(error) if error.may_be_one_item() && !items.is_empty() => {
                self.ingest_one_by_one(items, checkpoint, fence, error)
                    .await
            }
            result => result,
        }
    }

    /// After a batch failed with `batch_error`: each item in a transaction of
    /// its own; an item refused alone is stored as quarantined instead, with
    /// the reason; the checkpoint last. Not atomic as a whole, which the
    /// idempotent ingest makes safe: after a crash half-way the batch is
    /// fetched again and what was stored comes back as duplicates.
    async fn ingest_one_by_one(
        &self,
        items: &[IngestItem],
        checkpoint: Option<&Checkpoint>,
        fence: Option<&Fence>,
        batch_error: StoreError,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        tracing::warn!(
            error = format!("{:#}", anyhow::Error::new(batch_error)),
            items = items.len(),
            "A batch was refused; storing its messages one by one to set the bad one aside."
        );
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let single = std::slice::from_ref(item);
            let outcome = match dispatch!(self, store => store.ingest_batch(single, None, fence).await)
            {
                Ok(outcome) => outcome,
                Err(error) if error.may_be_one_item() => {
                    let reason = format!("{:#}", anyhow::Error::new(error));
                    tracing::error!(
                        error = reason,
                        "The database refused a message; it is stored raw in quarantine."
                    );
                    let quarantined = [item.refused(&reason)];
                    dispatch!(self, store => store.ingest_batch(&quarantined, None, fence).await)?
                }
                Err(error) => return Err(error),
            };
            outcomes.extend(outcome);
        }
        if let Some(checkpoint) = checkpoint {
            dispatch!(self, store => store.ingest_batch(&[], Some(checkpoint), fence).await)?;
        }
        Ok(outcomes)
    }

    /// Which of `uids` (of the IMAP folder stored as `mailbox`, e.g.
    /// `support/INBOX`, under `uidvalidity`) are stored, ascending. Used after a
    /// restart to acknowledge mail committed just before a crash.
    pub async fn stored_imap_uids(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        dispatch!(self, store => store.stored_imap_uids(mailbox, uidvalidity, uids).await)
    }

    /// Where intake stands in `folder` of `mailbox`; `None` before the first batch.
    pub async fn checkpoint(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        dispatch!(self, store => store.checkpoint(mailbox, folder).await)
    }

    /// Sets a ticket's status on behalf of `actor` (a staff login, or
    /// `supportd`), at `at` (Unix seconds), with a `status_changed` audit event
    /// when it changes. Returns the previous status, `None` when there is no
    /// such ticket.
    pub async fn set_status(
        &self,
        ticket_ref: TicketRef,
        status: TicketStatus,
        actor: &str,
        at: i64,
    ) -> Result<Option<TicketStatus>, StoreError> {
        dispatch!(self, store => store.set_status(ticket_ref, status, actor, at).await)
    }

    /// Replaces the whole account directory with `records`, in one transaction,
    /// keeping their order. Returns how many were stored.
    pub async fn replace_accounts(&self, records: &[AccountRecord]) -> Result<usize, StoreError> {
        dispatch!(self, store => store.replace_accounts(records).await)
    }

    /// The account directory, in the order it was stored.
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        dispatch!(self, store => store.accounts().await)
    }

    /// Every queue that holds a ticket (of any status), by name, with its open
    /// and pending counts, the oldest open ticket's creation time, how many open
    /// tickets are past their first-response due time now, and open counts by
    /// priority.
    pub async fn queue_summaries(&self) -> Result<Vec<QueueSummary>, StoreError> {
        self.queue_summaries_at(unix_now()).await
    }

    /// [`Store::queue_summaries`] as of `now` (Unix seconds).
    pub async fn queue_summaries_at(&self, now: i64) -> Result<Vec<QueueSummary>, StoreError> {
        dispatch!(self, store => store.queue_summaries_at(now).await)
    }

    /// A page of tickets of one queue and status, ordered by ticket number.
    pub async fn queue_tickets(
        &self,
        query: &QueueQuery,
    ) -> Result<Vec<TicketSummary>, StoreError> {
        dispatch!(self, store => store.queue_tickets(query).await)
    }

    /// A ticket with its messages (oldest first, attachment metadata and
    /// classification included), routing decisions and audit trail; `None`
    /// when there is no such ticket.
    pub async fn ticket(&self, ticket_ref: TicketRef) -> Result<Option<TicketDetail>, StoreError> {
        dispatch!(self, store => store.ticket(ticket_ref).await)
    }

    /// The raw bytes of a stored message (by [`StoredMessage::id`]), exactly as
    /// received; `None` when there is no such message.
    pub async fn raw_message(&self, message_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, store => store.raw_message(message_id).await)
    }
}

/// The outbox: rows are written by [`Store::ingest_batch`] (acknowledgments,
/// scope notices, escalations of created tickets) and [`Store::queue_staff_reply`],
/// and sent by the worker of `supportd-outbound`.
impl Store {
    /// Claims up to `claim.limit` due, queued rows with a lease of
    /// `claim.lease_s` seconds, counting an attempt on each. A row whose lease
    /// ran out (its worker crashed) is claimed again.
    pub async fn claim_outbox(&self, claim: OutboxClaim) -> Result<Vec<OutboxMail>, StoreError> {
        dispatch!(self, store => store.claim_outbox(claim).await)
    }

    /// Keeps the bytes of a row's first rendering; later calls change nothing,
    /// so every retry sends the same mail.
    pub async fn save_rendered(&self, id: i64, rendered: &[u8]) -> Result<(), StoreError> {
        dispatch!(self, store => store.save_rendered(id, rendered).await)
    }

    /// The server accepted the mail: `sent`, with a `mail_sent` audit event.
    pub async fn mark_outbox_sent(&self, id: i64, now: i64, reply: &str) -> Result<(), StoreError> {
        dispatch!(self, store => store.mark_outbox_sent(id, now, reply).await)
    }

    /// A temporary failure: try again at `next_attempt_at`, keeping `error`.
    pub async fn mark_outbox_retry(
        &self,
        id: i64,
        now: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.mark_outbox_retry(id, now, next_attempt_at, error).await)
    }

    /// A permanent failure: `dead` with the reason, and a `mail_dead` audit event.
    pub async fn mark_outbox_dead(
        &self,
        id: i64,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.mark_outbox_dead(id, now, reason).await)
    }

    /// Queues a dead or suppressed row again, due now, attempts reset. False
    /// when there is no such row or it is queued or sent already.
    pub async fn retry_outbox(&self, id: i64, now: i64, actor: &str) -> Result<bool, StoreError> {
        dispatch!(self, store => store.retry_outbox(id, now, actor).await)
    }

    /// The newest outbox rows, optionally of one status.
    pub async fn outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        dispatch!(self, store => store.outbox(status, limit).await)
    }

    /// Queues a staff reply on a ticket, threaded to the ticket's latest
    /// message and sent to its Reply-To or From. Returns the reply's
    /// Message-ID, `None` when there is no such ticket.
    pub async fn queue_staff_reply(
        &self,
        ticket_ref: TicketRef,
        body: &str,
        actor: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, store => store.queue_staff_reply(ticket_ref, body, actor, now).await)
    }
}

/// Staff accounts, browser sessions and API tokens, for `supportd-web`. Only
/// hashes are stored; the caller hashes (argon2 passwords, SHA-256 ids).
impl Store {
    /// Answers when the database can run a query: the readiness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.ping().await)
    }

    /// Adds a staff account; false when the name is taken (nothing changed).
    pub async fn add_staff(
        &self,
        name: &str,
        role: StaffRole,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.add_staff(name, role, password_hash, now).await)
    }

    /// The staff account of a login, to check its password.
    pub async fn staff_account(&self, name: &str) -> Result<Option<StaffAccount>, StoreError> {
        dispatch!(self, store => store.staff_account(name).await)
    }

    /// Stores a session at login (and forgets expired ones).
    pub async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_session(session).await)
    }

    /// Who holds the session whose id hashes to `id_hash`, unless it expired by `now`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Principal>, StoreError> {
        dispatch!(self, store => store.session(id_hash, now).await)
    }

    /// Ends a session (logout); nothing happens when there is none.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, store => store.delete_session(id_hash).await)
    }

    /// Adds an API token by its hash; false when the name is taken.
    pub async fn add_api_token(
        &self,
        name: &str,
        role: StaffRole,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.add_api_token(name, role, token_hash, now).await)
    }

    /// Who holds the API token whose hash is `token_hash`.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        dispatch!(self, store => store.api_token(token_hash).await)
    }
}

/// Named leases, so that several instances share work without doing it twice:
/// each IMAP folder is polled by whoever holds its lease. Expiry is judged by
/// the database's clock.
impl Store {
    /// Takes the lease `name` for `holder` for `ttl`, when it is free, expired,
    /// or already `holder`'s (then it is extended). True when `holder` holds it now.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.try_acquire_lease(name, holder, ttl).await)
    }

    /// Extends `holder`'s lease to `ttl` from now. False when `holder` no
    /// longer holds it (another instance took it over after it expired): the
    /// caller must stop the work the lease guards.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.renew_lease(name, holder, ttl).await)
    }

    /// Gives the lease up at once (a clean shutdown), so another instance
    /// need not wait for its expiry. False when `holder` did not hold it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        dispatch!(self, store => store.release_lease(name, holder).await)
    }

    /// The lease `name` as stored, expired or not; `None` when nobody holds it.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        dispatch!(self, store => store.lease(name).await)
    }
}

/// Now as Unix seconds; a clock before 1970 reads as 0.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
