//! The SQLite backend: one database file in WAL mode, a small connection pool,
//! and write transactions begun with `BEGIN IMMEDIATE` so two writers queue on
//! the busy timeout instead of failing with a lock upgrade error.

mod desk;
mod ingest;
mod outbox;
mod staff;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use supportd_core::{AccountRecord, TicketRef, TicketStatus};

use crate::batch::BatchRows;
use crate::codec::{self, to_i64};
use crate::error::StoreError;
use crate::lease::Fence;
use crate::model::IngestContent;
use crate::model::{
    Checkpoint, IngestItem, IngestOutcome, QueueQuery, QueueSummary, TicketDetail, TicketOrder,
    TicketSummary,
};
use crate::outbox::{OutboxClaim, OutboxMail, OutboxPolicy, plan_mails};
use crate::plan;
use crate::plan::Step;
use crate::rows::{
    self, AccountRow, AttachmentRow, AuditRow, MessageRow, OutboxRow, PRIORITIES, QueueSummaryRow,
    RouteRow, TicketRow,
};
use crate::write::{self, NewOutboxRow, SYSTEM_ACTOR, created_recipients};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers run concurrently in WAL mode; writers queue on `BEGIN IMMEDIATE`.
const MAX_CONNECTIONS: u32 = 4;
/// Page cache per connection, in KiB when negative (SQLite's convention): large
/// enough that a batch of 500 mails (about 5 MB written) does not spill to the
/// WAL before its commit.
const CACHE_SIZE: &str = "-32768";
/// Checkpoint the WAL into the database every this many pages (about 40 MB)
/// rather than SQLite's default of 1000 (4 MB, less than one large batch).
const WAL_AUTOCHECKPOINT_PAGES: &str = "10000";
/// Statement used for every write transaction.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A store on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The file path, for error messages.
    database: String,
    /// What ingest needs to write outbox rows (Message-ID domain, limits).
    outbox_policy: std::sync::Arc<OutboxPolicy>,
}

/// The database clock in milliseconds since the Unix epoch, as SQL.
macro_rules! now_ms {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    };
}

impl SqliteStore {
    /// Opens (creating the file and its parent directories when missing) the
    /// database at `path`, in WAL mode with `synchronous=FULL`, a busy
    /// timeout and foreign keys enforced. Does not migrate.
    ///
    /// FULL, not NORMAL: a source is acknowledged (IMAP message moved, drop
    /// file renamed) as soon as the commit returns, so the commit must survive
    /// a power cut. The cost is one fsync per batch, not per message.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let database = path.display().to_string();
        let doing = "opening the database";
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|error| StoreError::from_sqlx(&database, doing, sqlx::Error::Io(error)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(PathBuf::from(path))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("cache_size", CACHE_SIZE)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|error| StoreError::from_sqlx(&database, doing, error))?;
        Ok(SqliteStore {
            pool,
            database,
            outbox_policy: std::sync::Arc::new(OutboxPolicy::fallback()),
        })
    }

    /// This store, writing outbox rows by `policy`.
    pub fn with_outbox_policy(self, policy: OutboxPolicy) -> SqliteStore {
        SqliteStore {
            outbox_policy: std::sync::Arc::new(policy),
            ..self
        }
    }

    /// The database file path.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Applies the migrations of `migrations/sqlite` not yet applied, on a
    /// connection of their own that is closed afterwards: a migration that
    /// edits a table's stored definition in place (0007) leaves the schema the
    /// migrating connection has parsed behind, while every other connection
    /// re-reads it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let failed = |source| StoreError::Migration {
            database: self.database.clone(),
            source,
        };
        let mut connection = self
            .pool
            .connect_options()
            .connect()
            .await
            .map_err(|error| failed(sqlx::migrate::MigrateError::Execute(error)))?;
        let applied = sqlx::migrate!("../../migrations/sqlite")
            .run(&mut connection)
            .await
            .map_err(failed);
        // Closing only tidies up; a failure to close changes nothing applied.
        let _ = connection.close().await;
        applied
    }

    /// Closes the pool, waiting for connections to finish (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the copy of whole databases.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn error(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |error| StoreError::from_sqlx(&self.database, doing, error)
    }

    fn corrupt(&self, doing: &'static str) -> impl Fn(codec::DecodeError) -> StoreError + '_ {
        move |error| StoreError::corrupt(&self.database, doing, error.to_string())
    }

    /// See [`crate::Store::ingest_batch`].
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
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        if let Some(fence) = fence {
            // The write lock is ours from BEGIN IMMEDIATE: nobody can take the
            // lease over between this check and the commit.
            let held: bool = sqlx::query_scalar(concat!(
                "SELECT EXISTS (SELECT 1 FROM leases WHERE name = ?1 AND holder = ?2 \
                 AND expires_at_ms > ",
                now_ms!(),
                ")"
            ))
            .bind(&fence.lease)
            .bind(&fence.holder)
            .fetch_one(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
            if !held {
                return Err(StoreError::LeaseLost {
                    lease: fence.lease.clone(),
                    holder: fence.holder.clone(),
                });
            }
        }
        let mut ids = ingest::id_allocator(&mut transaction)
            .await
            .map_err(self.error(doing))?;
        let keys = plan::lookup_keys(items);
        let mut known = ingest::known(&mut transaction, &keys)
            .await
            .map_err(self.error(doing))?;
        let steps = plan::plan_batch(items, &mut known, &mut ids);
        let policy = self.outbox_policy.clone();
        let now = items.first().map_or(0, |item| item.received_at);
        let recipient_keys = created_recipients(items, &steps);
        let mut facts = outbox::recipient_facts(
            &mut transaction,
            &recipient_keys,
            now.saturating_sub(policy.acknowledgment_window_s),
            now,
        )
        .await
        .map_err(self.error(doing))?;
        let mut last_outbox = outbox::last_outbox_id(&mut transaction)
            .await
            .map_err(self.error(doing))?;
        let mut batch = BatchRows::default();
        let mut outcomes = Vec::with_capacity(items.len());
        for (item, step) in items.iter().zip(steps) {
            outcomes.push(batch.add_step(item, step).map_err(self.error(doing))?);
            match (&item.content, step) {
                (
                    IngestContent::Parsed { message, route, .. },
                    Step::Create {
                        ticket,
                        message: message_row,
                    },
                ) => {
                    let planned = plan_mails(message, route, &policy, item.received_at, &mut facts);
                    for planned in &planned {
                        last_outbox += 1;
                        batch
                            .add_mail(
                                last_outbox,
                                ticket,
                                planned,
                                Some(message_row),
                                None,
                                SYSTEM_ACTOR,
                                &policy,
                                item.received_at,
                            )
                            .map_err(self.error(doing))?;
                    }
                }
                (IngestContent::Parsed { message, .. }, Step::Thread { ticket, .. })
                    if plan::is_automatic(message) =>
                {
                    batch
                        .add_automatic_reply(
                            ticket,
                            &message.message_id,
                            message.flags.bounce,
                            item,
                            &known,
                            &policy,
                        )
                        .map_err(self.error(doing))?;
                }
                _ => {}
            }
        }
        ingest::write_batch(&mut transaction, batch)
            .await
            .map_err(self.error(doing))?;
        if let Some(checkpoint) = checkpoint {
            write_checkpoint(
                &mut transaction,
                checkpoint,
                items.first().map(|item| item.received_at),
            )
            .await
            .map_err(self.error(doing))?;
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(outcomes)
    }

    /// See [`crate::Store::stored_imap_uids`].
    pub async fn stored_imap_uids(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let doing = "looking up stored IMAP positions";
        // The UID list travels as one JSON array parameter: no SQL is built from data.
        let uid_list =
            serde_json::to_string(uids).map_err(|error| StoreError::Unexpected(error.into()))?;
        let found: Vec<i64> = sqlx::query_scalar(
            "SELECT source_uid FROM messages \
             WHERE source_mailbox = ?1 AND source_uidvalidity = ?2 \
             AND source_uid IN (SELECT value FROM json_each(?3))",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(uid_list)
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
            "SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE mailbox = ?1 AND folder = ?2",
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
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT status FROM tickets WHERE number = ?1")
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
            ingest::change_status(
                &mut transaction,
                number,
                previous,
                status,
                actor,
                at,
                "staff",
            )
            .await
            .map_err(self.error(doing))?;
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(previous))
    }

    /// See [`crate::Store::replace_accounts`].
    pub async fn replace_accounts(&self, records: &[AccountRecord]) -> Result<usize, StoreError> {
        let doing = "replacing the account directory";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        sqlx::query("DELETE FROM accounts")
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        for (position, record) in records.iter().enumerate() {
            sqlx::query(
                "INSERT INTO accounts (position, customer, domains, contacts, tenant_id, \
                 subscription_id, relationship, managed_os, is_default, source) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(to_i64(position as u64))
            .bind(&record.customer)
            .bind(codec::to_json(&record.domains).map_err(self.error(doing))?)
            .bind(codec::to_json(&record.contacts).map_err(self.error(doing))?)
            .bind(&record.tenant_id)
            .bind(&record.subscription_id)
            .bind(record.relationship.slug())
            .bind(record.managed_os)
            .bind(record.is_default)
            .bind(&record.source)
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        }
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
        // Status and priority slugs are bound, not written in the SQL: one mapping.
        let rows: Vec<QueueSummaryRow> = sqlx::query_as(
            "SELECT queue, \
             SUM(CASE WHEN status = ?2 THEN 1 ELSE 0 END) AS open, \
             SUM(CASE WHEN status = ?3 THEN 1 ELSE 0 END) AS pending_customer, \
             MIN(CASE WHEN status = ?2 THEN created_at END) AS oldest_open_created_at, \
             SUM(CASE WHEN status = ?2 AND first_response_due < ?1 THEN 1 ELSE 0 END) AS overdue, \
             SUM(CASE WHEN status = ?2 AND priority = ?4 THEN 1 ELSE 0 END) AS open_low, \
             SUM(CASE WHEN status = ?2 AND priority = ?5 THEN 1 ELSE 0 END) AS open_normal, \
             SUM(CASE WHEN status = ?2 AND priority = ?6 THEN 1 ELSE 0 END) AS open_high, \
             SUM(CASE WHEN status = ?2 AND priority = ?7 THEN 1 ELSE 0 END) AS open_urgent \
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
        // Two statements rather than a dynamic ORDER BY, so both stay prepared;
        // a sentinel instead of `?3 IS NULL OR ...` keeps the index range usable.
        let (sql, after) = match query.order {
            TicketOrder::NewestFirst => (
                concat!(
                    rows::ticket_select!(),
                    " WHERE t.queue = ?1 AND t.status = ?2 AND t.number < ?3 \
                     ORDER BY t.number DESC LIMIT ?4"
                ),
                after.unwrap_or(i64::MAX),
            ),
            TicketOrder::OldestFirst => (
                concat!(
                    rows::ticket_select!(),
                    " WHERE t.queue = ?1 AND t.status = ?2 AND t.number > ?3 \
                     ORDER BY t.number ASC LIMIT ?4"
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
        // One read transaction: a consistent snapshot of the ticket and its parts.
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        let ticket: Option<TicketRow> =
            sqlx::query_as(concat!(rows::ticket_select!(), " WHERE t.number = ?1"))
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        let Some(ticket) = ticket else {
            return Ok(None);
        };
        let messages: Vec<MessageRow> = sqlx::query_as(concat!(
            rows::message_select!(),
            " WHERE m.ticket_number = ?1 ORDER BY m.id"
        ))
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let attachments: Vec<AttachmentRow> = sqlx::query_as(
            "SELECT a.message_id, a.filename, a.content_type, a.size, a.sha256 \
             FROM messages AS m JOIN attachments AS a ON a.message_id = m.id \
             WHERE m.ticket_number = ?1 ORDER BY a.message_id, a.position",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let routes: Vec<RouteRow> = sqlx::query_as(
            "SELECT message_id, decided_at, queue, priority, first_response_due, rule, reasons, \
             actions FROM route_decisions WHERE ticket_number = ?1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let audit: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, kind, actor, detail FROM audit_events WHERE ticket_number = ?1 ORDER BY id",
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
        sqlx::query_scalar("SELECT raw FROM raw_messages WHERE message_id = ?1")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.error(doing))
    }
}

/// Inserts or moves the checkpoint of one folder, inside the batch's transaction.
async fn write_checkpoint(
    transaction: &mut sqlx::SqliteConnection,
    checkpoint: &Checkpoint,
    at: Option<i64>,
) -> Result<(), sqlx::Error> {
    let at = at.unwrap_or_else(crate::unix_now);
    sqlx::query(
        "INSERT INTO mailbox_checkpoints (mailbox, folder, uidvalidity, last_uid, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (mailbox, folder) DO UPDATE SET \
         uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(&checkpoint.mailbox)
    .bind(&checkpoint.folder)
    .bind(i64::from(checkpoint.uidvalidity))
    .bind(i64::from(checkpoint.last_uid))
    .bind(at)
    .execute(transaction)
    .await?;
    Ok(())
}

/// The outbox, for the worker and the staff commands.
impl SqliteStore {
    /// See [`crate::Store::claim_outbox`].
    pub async fn claim_outbox(&self, claim: OutboxClaim) -> Result<Vec<OutboxMail>, StoreError> {
        let doing = "claiming outbox rows";
        let mut connection = self.pool.acquire().await.map_err(self.error(doing))?;
        let rows = outbox::claim(&mut connection, claim.now, claim.lease_s, claim.limit)
            .await
            .map_err(self.error(doing))?;
        rows.into_iter()
            .map(OutboxRow::into_mail)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::save_rendered`].
    pub async fn save_rendered(&self, id: i64, rendered: &[u8]) -> Result<(), StoreError> {
        let doing = "saving a rendered outbox mail";
        let mut connection = self.pool.acquire().await.map_err(self.error(doing))?;
        outbox::save_rendered(&mut connection, id, rendered)
            .await
            .map_err(self.error(doing))
    }

    /// See [`crate::Store::mark_outbox_sent`].
    pub async fn mark_outbox_sent(&self, id: i64, now: i64, reply: &str) -> Result<(), StoreError> {
        let doing = "marking an outbox mail sent";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
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
        let doing = "rescheduling an outbox mail";
        let mut connection = self.pool.acquire().await.map_err(self.error(doing))?;
        outbox::mark_retry(&mut connection, id, now, next_attempt_at, error)
            .await
            .map_err(self.error(doing))
    }

    /// See [`crate::Store::mark_outbox_dead`].
    pub async fn mark_outbox_dead(
        &self,
        id: i64,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let doing = "giving up an outbox mail";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        outbox::mark_dead(&mut transaction, id, now, reason)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))
    }

    /// See [`crate::Store::retry_outbox`].
    pub async fn retry_outbox(&self, id: i64, now: i64, actor: &str) -> Result<bool, StoreError> {
        let doing = "queueing an outbox mail again";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let changed = outbox::retry(&mut transaction, id, now, actor)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(changed)
    }

    /// See [`crate::Store::outbox`].
    pub async fn outbox(
        &self,
        status: Option<crate::outbox::OutboxStatus>,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let doing = "listing the outbox";
        let rows: Vec<OutboxRow> = sqlx::query_as(concat!(
            "SELECT ",
            rows::outbox_columns!(),
            " FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2"
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
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
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
        let id = outbox::last_outbox_id(&mut transaction)
            .await
            .map_err(self.error(doing))?
            + 1;
        let row = NewOutboxRow {
            ticket: number,
            planned: &planned,
            source_message: Some(message_row),
            body: Some(body),
            actor,
        };
        let message_id = outbox::insert_mail(&mut transaction, id, &row, &self.outbox_policy, now)
            .await
            .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(message_id))
    }
}

/// Named leases (one holder per name), timed by the database's clock.
impl SqliteStore {
    /// See [`crate::Store::try_acquire_lease`].
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let acquired: Option<String> = sqlx::query_scalar(concat!(
            "INSERT INTO leases AS l (name, holder, acquired_at_ms, expires_at_ms) \
             SELECT ?1, ?2, now.ms, now.ms + ?3 FROM (SELECT ",
            now_ms!(),
            " AS ms) AS now WHERE true \
             ON CONFLICT (name) DO UPDATE SET \
             holder = excluded.holder, \
             acquired_at_ms = CASE WHEN l.holder = excluded.holder THEN l.acquired_at_ms \
             ELSE excluded.acquired_at_ms END, \
             expires_at_ms = excluded.expires_at_ms \
             WHERE l.holder = excluded.holder OR l.expires_at_ms <= excluded.acquired_at_ms \
             RETURNING holder"
        ))
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
        let renewed = sqlx::query(concat!(
            "UPDATE leases SET expires_at_ms = ",
            now_ms!(),
            " + ?3 WHERE name = ?1 AND holder = ?2"
        ))
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
        let released = sqlx::query("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(self.error("releasing a lease"))?
            .rows_affected();
        Ok(released == 1)
    }

    /// See [`crate::Store::lease`].
    pub async fn lease(&self, name: &str) -> Result<Option<crate::lease::Lease>, StoreError> {
        sqlx::query_as(concat!(
            "SELECT name, holder, acquired_at_ms, expires_at_ms, expires_at_ms <= ",
            now_ms!(),
            " AS expired FROM leases WHERE name = ?1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error("reading a lease"))
    }
}
