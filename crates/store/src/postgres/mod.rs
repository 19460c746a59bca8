//! The PostgreSQL backend: one database shared by any number of `supportd
//! serve` instances.
//!
//! What differs from SQLite, and why:
//!
//! - Ids come from sequences, not from counting under a write lock: a batch
//!   plans once with placeholders to count what it needs, draws that many
//!   ticket numbers and message ids, and plans again with them
//!   ([`crate::plan::count_new_ids`]). Numbers drawn by a batch that rolls back
//!   are skipped, never reused.
//! - Idempotency across instances rests on the UNIQUE indexes of `messages`.
//!   When two instances store the same mail at once, the second blocks on the
//!   index until the first commits, then fails with a unique violation; the
//!   whole batch is retried ([`MAX_INGEST_ATTEMPTS`]) and its lookups now find
//!   the mail stored, so it becomes a duplicate. Deadlocks and serialization
//!   failures are retried the same way.
//! - A batch is written with one `INSERT … SELECT FROM UNNEST(…)` per table
//!   (`ingest`), a handful of round trips per batch whatever its size.
//! - Outbox rows are claimed with `FOR UPDATE SKIP LOCKED`, so concurrent
//!   workers skip each other's rows instead of waiting or taking them twice.

mod desk;
mod ingest;
mod outbox;
mod staff;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use supportd_core::{AccountRecord, TicketRef, TicketStatus};

use crate::codec::{self, to_i64};
use crate::error::StoreError;
use crate::lease::{Fence, Lease};
use crate::model::{
    Checkpoint, IngestItem, IngestOutcome, QueueQuery, QueueSummary, TicketDetail, TicketOrder,
    TicketSummary,
};
use crate::outbox::{OutboxClaim, OutboxMail, OutboxPolicy, OutboxStatus};
use crate::rows::{
    self, AccountRow, AttachmentRow, AuditRow, MessageRow, OutboxRow, PRIORITIES, QueueSummaryRow,
    RouteRow, TicketRow,
};
use crate::write::{self, NewOutboxRow};

/// Connections per instance: ingest, the outbox worker, the web pages and
/// lease renewals each hold one at a time.
const MAX_CONNECTIONS: u32 = 8;
/// How long to wait for a free connection (or for the server to answer a
/// connect) before the operation reports the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of one batch when another instance wrote the same keys at once.
pub(crate) const MAX_INGEST_ATTEMPTS: u32 = 5;

/// A store on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password, for logs and error messages.
    database: String,
    /// What ingest needs to write outbox rows (Message-ID domain, limits).
    outbox_policy: std::sync::Arc<OutboxPolicy>,
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://user@host/db`;
    /// the password may come from the URL or `PGPASSWORD`). Does not migrate.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let database = redact_url(url);
        let options: PgConnectOptions =
            url.parse()
                .map_err(|error: sqlx::Error| StoreError::InvalidUrl {
                    url: database.clone(),
                    reason: error.to_string(),
                })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.application_name("supportd"))
            .await
            .map_err(|error| StoreError::from_sqlx(&database, "opening the database", error))?;
        Ok(PgStore {
            pool,
            database,
            outbox_policy: std::sync::Arc::new(OutboxPolicy::fallback()),
        })
    }

    /// This store, writing outbox rows by `policy`.
    pub fn with_outbox_policy(self, policy: OutboxPolicy) -> PgStore {
        PgStore {
            outbox_policy: std::sync::Arc::new(policy),
            ..self
        }
    }

    /// The database URL without its password.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Applies the migrations of `migrations/postgres` not yet applied. sqlx
    /// holds an advisory lock meanwhile, so instances starting together
    /// migrate once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migration {
                database: self.database.clone(),
                source,
            })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the export/import of whole databases.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn error(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |error| StoreError::from_sqlx(&self.database, doing, error)
    }

    fn corrupt(&self, doing: &'static str) -> impl Fn(codec::DecodeError) -> StoreError + '_ {
        move |error| StoreError::corrupt(&self.database, doing, error.to_string())
    }

    /// See [`crate::Store::ingest_batch`]. Retries the whole batch when
    /// another instance wrote one of its keys at the same time.
    pub async fn ingest_batch(
        &self,
        items: &[IngestItem],
        checkpoint: Option<&Checkpoint>,
        fence: Option<&Fence>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let doing = "ingesting a batch of messages";
        if items.is_empty() && checkpoint.is_none() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            let once =
                ingest::ingest_once(&self.pool, &self.outbox_policy, items, checkpoint, fence);
            match once.await {
                // Only a fenced batch is ever refused for its lease.
                Ok(None) => {
                    return Err(match fence {
                        Some(fence) => StoreError::LeaseLost {
                            lease: fence.lease.clone(),
                            holder: fence.holder.clone(),
                        },
                        None => StoreError::Unexpected(anyhow::anyhow!(
                            "an unfenced batch was refused for a lease"
                        )),
                    });
                }
                Err(error) if attempt < MAX_INGEST_ATTEMPTS && is_write_conflict(&error) => {
                    tracing::debug!(attempt, error = %error, "Batch conflicted with another writer; retrying.");
                    attempt += 1;
                    // A short, growing pause lets the other writer's batch finish.
                    tokio::time::sleep(Duration::from_millis(
                        20 * u64::from(attempt) + fastrand::u64(0..20),
                    ))
                    .await;
                }
                Ok(Some(outcomes)) => return Ok(outcomes),
                Err(error) => return Err(self.error(doing)(error)),
            }
        }
    }

    /// See [`crate::Store::stored_imap_uids`].
    pub async fn stored_imap_uids(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let doing = "looking up stored IMAP positions";
        let uids: Vec<i64> = uids.iter().map(|uid| i64::from(*uid)).collect();
        let found: Vec<i64> = sqlx::query_scalar(
            "SELECT source_uid FROM messages \
             WHERE source_mailbox = $1 AND source_uidvalidity = $2 AND source_uid = ANY($3)",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(uids)
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(doing))?;
        let mut stored: Vec<u32> = found
            .into_iter()
            .filter_map(|uid| u32::try_from(uid).ok())
            .collect();
        stored.sort_unstable();
        Ok(stored)
    }

    /// See [`crate::Store::checkpoint`].
    pub async fn checkpoint(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let doing = "reading a mailbox checkpoint";
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE mailbox = $1 AND folder = $2",
        )
        .bind(mailbox)
        .bind(folder)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error(doing))?;
        row.map(|(uidvalidity, last_uid)| {
            let uid = |value: i64, column: &str| {
                u32::try_from(value).map_err(|_| {
                    StoreError::corrupt(
                        &self.database,
                        doing,
                        format!("mailbox_checkpoints.{column} holds {value}"),
                    )
                })
            };
            Ok(Checkpoint {
                mailbox: mailbox.to_owned(),
                folder: folder.to_owned(),
                uidvalidity: uid(uidvalidity, "uidvalidity")?,
                last_uid: uid(last_uid, "last_uid")?,
            })
        })
        .transpose()
    }

    /// See [`crate::Store::set_status`].
    pub async fn set_status(
        &self,
        ticket_ref: TicketRef,
        status: TicketStatus,
        actor: &str,
        at: i64,
    ) -> Result<Option<TicketStatus>, StoreError> {
        let doing = "changing a ticket's status";
        let Ok(number) = i64::try_from(ticket_ref.number()) else {
            return Ok(None);
        };
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        // The row lock orders concurrent changes of one ticket.
        let previous: Option<String> =
            sqlx::query_scalar("SELECT status FROM tickets WHERE number = $1 FOR UPDATE")
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let previous: TicketStatus =
            codec::slug("tickets.status", &previous).map_err(self.corrupt(doing))?;
        if previous != status {
            ingest::change_status(&mut transaction, number, previous, status, actor, at)
                .await
                .map_err(self.error(doing))?;
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(previous))
    }

    /// See [`crate::Store::replace_accounts`].
    pub async fn replace_accounts(&self, records: &[AccountRecord]) -> Result<usize, StoreError> {
        let doing = "replacing the account directory";
        let mut columns = AccountColumns::default();
        for (position, record) in records.iter().enumerate() {
            columns.push(position, record).map_err(self.error(doing))?;
        }
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        sqlx::query("DELETE FROM accounts")
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        sqlx::query(
            "INSERT INTO accounts (position, customer, domains, contacts, tenant_id, \
             subscription_id, relationship, managed_os, is_default, source) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::boolean[], $9::boolean[], $10::text[])",
        )
        .bind(columns.position)
        .bind(columns.customer)
        .bind(columns.domains)
        .bind(columns.contacts)
        .bind(columns.tenant_id)
        .bind(columns.subscription_id)
        .bind(columns.relationship)
        .bind(columns.managed_os)
        .bind(columns.is_default)
        .bind(columns.source)
        .execute(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(records.len())
    }

    /// See [`crate::Store::accounts`].
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let doing = "reading the account directory";
        let rows: Vec<AccountRow> = sqlx::query_as(
            "SELECT customer, domains, contacts, tenant_id, subscription_id, relationship, \
             managed_os, is_default, source FROM accounts ORDER BY position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(doing))?;
        rows.into_iter()
            .map(AccountRow::into_record)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::queue_summaries_at`].
    pub async fn queue_summaries_at(&self, now: i64) -> Result<Vec<QueueSummary>, StoreError> {
        let doing = "summarising the queues";
        let rows: Vec<QueueSummaryRow> = sqlx::query_as(
            "SELECT queue, \
             COUNT(*) FILTER (WHERE status = $2) AS open, \
             COUNT(*) FILTER (WHERE status = $3) AS pending_customer, \
             MIN(created_at) FILTER (WHERE status = $2) AS oldest_open_created_at, \
             COUNT(*) FILTER (WHERE status = $2 AND first_response_due < $1) AS overdue, \
             COUNT(*) FILTER (WHERE status = $2 AND priority = $4) AS open_low, \
             COUNT(*) FILTER (WHERE status = $2 AND priority = $5) AS open_normal, \
             COUNT(*) FILTER (WHERE status = $2 AND priority = $6) AS open_high, \
             COUNT(*) FILTER (WHERE status = $2 AND priority = $7) AS open_urgent \
             FROM tickets GROUP BY queue ORDER BY queue",
        )
        .bind(now)
        .bind(TicketStatus::Open.slug())
        .bind(TicketStatus::PendingCustomer.slug())
        .bind(PRIORITIES[0].slug())
        .bind(PRIORITIES[1].slug())
        .bind(PRIORITIES[2].slug())
        .bind(PRIORITIES[3].slug())
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(doing))?;
        rows.into_iter()
            .map(QueueSummaryRow::into_summary)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::queue_tickets`].
    pub async fn queue_tickets(
        &self,
        query: &QueueQuery,
    ) -> Result<Vec<TicketSummary>, StoreError> {
        let doing = "listing a queue";
        let limit = i64::from(query.limit.min(QueueQuery::MAX_LIMIT));
        let after = query.after.map(|ticket_ref| to_i64(ticket_ref.number()));
        let (sql, after) = match query.order {
            TicketOrder::NewestFirst => (
                concat!(
                    rows::ticket_select!(),
                    " WHERE t.queue = $1 AND t.status = $2 AND t.number < $3 \
                     ORDER BY t.number DESC LIMIT $4"
                ),
                after.unwrap_or(i64::MAX),
            ),
            TicketOrder::OldestFirst => (
                concat!(
                    rows::ticket_select!(),
                    " WHERE t.queue = $1 AND t.status = $2 AND t.number > $3 \
                     ORDER BY t.number ASC LIMIT $4"
                ),
                after.unwrap_or(i64::MIN),
            ),
        };
        let rows: Vec<TicketRow> = sqlx::query_as(sql)
            .bind(query.queue.as_str())
            .bind(query.status.slug())
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(self.error(doing))?;
        rows.into_iter()
            .map(TicketRow::into_summary)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::ticket`].
    pub async fn ticket(&self, ticket_ref: TicketRef) -> Result<Option<TicketDetail>, StoreError> {
        let doing = "reading a ticket";
        let Ok(number) = i64::try_from(ticket_ref.number()) else {
            return Ok(None);
        };
        // One REPEATABLE READ transaction: a consistent snapshot of the parts.
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        let ticket: Option<TicketRow> =
            sqlx::query_as(concat!(rows::ticket_select!(), " WHERE t.number = $1"))
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        let Some(ticket) = ticket else {
            return Ok(None);
        };
        let messages: Vec<MessageRow> = sqlx::query_as(concat!(
            rows::message_select!(),
            " WHERE m.ticket_number = $1 ORDER BY m.id"
        ))
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let attachments: Vec<AttachmentRow> = sqlx::query_as(
            "SELECT a.message_id, a.filename, a.content_type, a.size, a.sha256 \
             FROM messages AS m JOIN attachments AS a ON a.message_id = m.id \
             WHERE m.ticket_number = $1 ORDER BY a.message_id, a.position",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let routes: Vec<RouteRow> = sqlx::query_as(
            "SELECT message_id, decided_at, queue, priority, first_response_due, rule, reasons, \
             actions FROM route_decisions WHERE ticket_number = $1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let audit: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, kind, actor, detail FROM audit_events WHERE ticket_number = $1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        rows::ticket_detail(ticket, messages, attachments, routes, audit)
            .map(Some)
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::raw_message`].
    pub async fn raw_message(&self, message_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let doing = "reading a raw message";
        sqlx::query_scalar("SELECT raw FROM raw_messages WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error(doing))
    }
}

/// The account directory as columns, for one `UNNEST` insert.
#[derive(Default)]
struct AccountColumns {
    position: Vec<i64>,
    customer: Vec<String>,
    domains: Vec<String>,
    contacts: Vec<String>,
    tenant_id: Vec<Option<String>>,
    subscription_id: Vec<Option<String>>,
    relationship: Vec<String>,
    managed_os: Vec<bool>,
    is_default: Vec<bool>,
    source: Vec<String>,
}

impl AccountColumns {
    fn push(&mut self, position: usize, record: &AccountRecord) -> Result<(), sqlx::Error> {
        self.position.push(to_i64(position as u64));
        self.customer.push(record.customer.clone());
        self.domains.push(codec::to_json(&record.domains)?);
        self.contacts.push(codec::to_json(&record.contacts)?);
        self.tenant_id.push(record.tenant_id.clone());
        self.subscription_id.push(record.subscription_id.clone());
        self.relationship
            .push(record.relationship.slug().to_owned());
        self.managed_os.push(record.managed_os);
        self.is_default.push(record.is_default);
        self.source.push(record.source.clone());
        Ok(())
    }
}

/// SQLSTATEs after which a batch is worth retrying whole: a unique violation
/// (another instance stored the same mail first), a serialization failure, a
/// deadlock.
fn is_write_conflict(error: &sqlx::Error) -> bool {
    matches!(
        error
            .as_database_error()
            .and_then(|error| error.code())
            .as_deref(),
        Some("23505" | "40001" | "40P01")
    )
}

/// The URL with its password replaced, safe for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let shown = if userinfo.contains(':') {
                format!("{user}:[redacted]")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{shown}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The outbox, for the worker and the staff commands.
impl PgStore {
    /// See [`crate::Store::claim_outbox`].
    pub async fn claim_outbox(&self, claim: OutboxClaim) -> Result<Vec<OutboxMail>, StoreError> {
        let doing = "claiming outbox rows";
        let rows = outbox::claim(&self.pool, claim.now, claim.lease_s, claim.limit)
            .await
            .map_err(self.error(doing))?;
        rows.into_iter()
            .map(OutboxRow::into_mail)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::save_rendered`].
    pub async fn save_rendered(&self, id: i64, rendered: &[u8]) -> Result<(), StoreError> {
        outbox::save_rendered(&self.pool, id, rendered)
            .await
            .map_err(self.error("saving a rendered outbox mail"))
    }

    /// See [`crate::Store::mark_outbox_sent`].
    pub async fn mark_outbox_sent(&self, id: i64, now: i64, reply: &str) -> Result<(), StoreError> {
        let doing = "marking an outbox mail sent";
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        outbox::mark_sent(&mut transaction, id, now, reply)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))
    }

    /// See [`crate::Store::mark_outbox_retry`].
    pub async fn mark_outbox_retry(
        &self,
        id: i64,
        now: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        outbox::mark_retry(&self.pool, id, now, next_attempt_at, error)
            .await
            .map_err(self.error("rescheduling an outbox mail"))
    }

    /// See [`crate::Store::mark_outbox_dead`].
    pub async fn mark_outbox_dead(
        &self,
        id: i64,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let doing = "giving up an outbox mail";
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        outbox::mark_dead(&mut transaction, id, now, reason)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))
    }

    /// See [`crate::Store::retry_outbox`].
    pub async fn retry_outbox(&self, id: i64, now: i64, actor: &str) -> Result<bool, StoreError> {
        let doing = "queueing an outbox mail again";
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        let changed = outbox::retry(&mut transaction, id, now, actor)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(changed)
    }

    /// See [`crate::Store::outbox`].
    pub async fn outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let doing = "listing the outbox";
        let rows: Vec<OutboxRow> = sqlx::query_as(concat!(
            "SELECT ",
            rows::outbox_columns!(),
            " FROM outbox WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(status.map(|status| status.slug()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error(doing))?;
        rows.into_iter()
            .map(OutboxRow::into_mail)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::queue_staff_reply`].
    pub async fn queue_staff_reply(
        &self,
        ticket_ref: TicketRef,
        body: &str,
        actor: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let doing = "queueing a staff reply";
        let Ok(number) = i64::try_from(ticket_ref.number()) else {
            return Ok(None);
        };
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        let Some(last) = outbox::last_customer_message(&mut transaction, number)
            .await
            .map_err(self.error(doing))?
        else {
            return Ok(None);
        };
        let message_row = last.id;
        let planned = write::staff_reply_mail(ticket_ref, last).map_err(|error| match error {
            write::StaffReplyError::Decode(error) => self.corrupt(doing)(error),
            error @ write::StaffReplyError::NoRecipient(_) => StoreError::Unexpected(error.into()),
        })?;
        let row = NewOutboxRow {
            ticket: number,
            planned: &planned,
            source_message: Some(message_row),
            body: Some(body),
            actor,
        };
        let message_id = outbox::insert_mail(&mut transaction, &row, &self.outbox_policy, now)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(message_id))
    }
}

/// Named leases (one holder per name), timed by the database's clock.
impl PgStore {
    /// See [`crate::Store::try_acquire_lease`].
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let acquired: Option<String> = sqlx::query_scalar(
            "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) \
             INSERT INTO leases AS l (name, holder, acquired_at_ms, expires_at_ms) \
             SELECT $1, $2, now.ms, now.ms + $3 FROM now \
             ON CONFLICT (name) DO UPDATE SET \
             holder = excluded.holder, \
             acquired_at_ms = CASE WHEN l.holder = excluded.holder THEN l.acquired_at_ms \
             ELSE excluded.acquired_at_ms END, \
             expires_at_ms = excluded.expires_at_ms \
             WHERE l.holder = excluded.holder OR l.expires_at_ms <= excluded.acquired_at_ms \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(crate::lease::ttl_ms(ttl))
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error("acquiring a lease"))?;
        Ok(acquired.is_some())
    }

    /// See [`crate::Store::renew_lease`].
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE leases SET expires_at_ms = \
             (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3 \
             WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(crate::lease::ttl_ms(ttl))
        .execute(&self.pool)
        .await
        .map_err(self.error("renewing a lease"))?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// See [`crate::Store::release_lease`].
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let released = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(self.error("releasing a lease"))?
            .rows_affected();
        Ok(released == 1)
    }

    /// See [`crate::Store::lease`].
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        sqlx::query_as(
            "SELECT name, holder, acquired_at_ms, expires_at_ms, \
             expires_at_ms <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS expired \
             FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error("reading a lease"))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://supportd:s3cret@db:5432/supportd"),
            "postgres://supportd:[redacted]@db:5432/supportd"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("postgresql:///x"), "postgresql:///x");
    }
}
