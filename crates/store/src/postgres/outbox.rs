//! The outbox on PostgreSQL: rate-limit facts for ingest, the claim with
//! `FOR UPDATE SKIP LOCKED`, and the marks.
//!
//! The claim locks the due rows it picks, skipping rows another worker's
//! claim has locked, and gives them a lease in the same statement. A worker
//! whose claim committed owns its rows until the lease ends (its `lease_until`
//! is then in the future, so no other claim picks them even after the locks
//! are gone); a worker that crashed loses them when the lease runs out.

use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Postgres, Transaction};

use crate::codec::to_json;
use crate::model::AuditKind;
use crate::outbox::{OutboxKind, OutboxPolicy, OutboxStatus, RecipientFacts};
use crate::rows::{OutboxRow, outbox_columns};
use crate::write::{
    LastMessageRow, NewOutboxRow, SYSTEM_ACTOR, mail_dead_detail, mail_retry_detail,
    mail_sent_detail,
};

/// The first key of the advisory locks that serialize the rate-limit check
/// per recipient (the second is a hash of the address): "ACK1", apart from
/// any other advisory lock (sqlx's migration lock uses the one-key space).
const RECIPIENT_LOCK_SPACE: i32 = 0x4143_4b31;

/// Rate-limit counts and running suppressions for `recipient_keys`.
///
/// Each recipient's advisory lock is taken first and held to the end of the
/// transaction, so two instances ingesting mail from one sender at once
/// count each other's acknowledgments instead of both seeing room under the
/// limit. Locks are taken in sorted order (`recipient_keys` is sorted), so
/// two batches never wait on each other in a cycle; a hash collision only
/// serializes two unrelated addresses.
pub(super) async fn recipient_facts(
    connection: &mut PgConnection,
    recipient_keys: &[String],
    window_start: i64,
    now: i64,
) -> Result<RecipientFacts, sqlx::Error> {
    let mut facts = RecipientFacts::default();
    if recipient_keys.is_empty() {
        return Ok(facts);
    }
    debug_assert!(recipient_keys.is_sorted(), "locks are taken in order");
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, hashtext(key)) \
         FROM unnest($2::text[]) WITH ORDINALITY AS keys (key, position) \
         ORDER BY position",
    )
    .bind(RECIPIENT_LOCK_SPACE)
    .bind(recipient_keys)
    .execute(&mut *connection)
    .await?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT recipient_key, COUNT(*) FROM outbox \
         WHERE recipient_key = ANY($1) AND created_at > $2 \
         AND kind IN ($3, $4) AND status IN ($5, $6) GROUP BY recipient_key",
    )
    .bind(recipient_keys)
    .bind(window_start)
    .bind(OutboxKind::Acknowledge.slug())
    .bind(OutboxKind::ScopeNotice.slug())
    .bind(OutboxStatus::Queued.slug())
    .bind(OutboxStatus::Sent.slug())
    .fetch_all(&mut *connection)
    .await?;
    for (key, count) in counts {
        facts
            .recent_automatic
            .insert(key, u32::try_from(count).unwrap_or(u32::MAX));
    }
    let suppressions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT recipient_key, until FROM mail_suppressions \
         WHERE recipient_key = ANY($1) AND until > $2",
    )
    .bind(recipient_keys)
    .bind(now)
    .fetch_all(&mut *connection)
    .await?;
    facts.suppressed_until.extend(suppressions);
    Ok(facts)
}

/// Appends one audit event.
pub(super) async fn audit(
    connection: &mut PgConnection,
    ticket: i64,
    at: i64,
    kind: AuditKind,
    actor: &str,
    detail: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ticket)
    .bind(at)
    .bind(kind.slug())
    .bind(actor)
    .bind(to_json(detail)?)
    .execute(connection)
    .await?;
    Ok(())
}

/// Writes an outbox row with its fixed Message-ID and its audit event.
pub(super) async fn insert_mail(
    transaction: &mut Transaction<'_, Postgres>,
    row: &NewOutboxRow<'_>,
    policy: &OutboxPolicy,
    now: i64,
) -> Result<String, sqlx::Error> {
    super::ingest::insert_one_mail(&mut *transaction, row, policy, now).await
}

/// Claims up to `limit` due rows for `lease_s` seconds, oldest due first.
pub(super) async fn claim(
    pool: &PgPool,
    now: i64,
    lease_s: i64,
    limit: u32,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "WITH picked AS (SELECT id FROM outbox WHERE status = $3 AND next_attempt_at <= $2 \
         AND lease_until <= $2 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE outbox AS o SET lease_until = $1, attempts = o.attempts + 1, \
         updated_at = $2 FROM picked WHERE o.id = picked.id RETURNING o.*) \
         SELECT ",
        outbox_columns!(),
        " FROM claimed ORDER BY next_attempt_at, id"
    ))
    .bind(now.saturating_add(lease_s))
    .bind(now)
    .bind(OutboxStatus::Queued.slug())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Keeps the rendered bytes of a claimed row; only the first rendering counts.
pub(super) async fn save_rendered(
    pool: &PgPool,
    id: i64,
    rendered: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET rendered = $1 WHERE id = $2 AND rendered IS NULL")
        .bind(rendered)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// One row's ticket, kind, recipient and attempts, locked for the mark.
async fn row_facts(
    connection: &mut PgConnection,
    id: i64,
) -> Result<Option<(i64, String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket_number, kind, recipient, attempts FROM outbox WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(connection)
    .await
}

/// Marks a row sent, with the server's reply, and audits it.
pub(super) async fn mark_sent(
    transaction: &mut Transaction<'_, Postgres>,
    id: i64,
    now: i64,
    reply: &str,
) -> Result<(), sqlx::Error> {
    let Some((ticket, kind, recipient, attempts)) = row_facts(transaction, id).await? else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE outbox SET status = $1, sent_at = $2, updated_at = $2, lease_until = 0, \
         reason = NULL WHERE id = $3",
    )
    .bind(OutboxStatus::Sent.slug())
    .bind(now)
    .bind(id)
    .execute(&mut **transaction)
    .await?;
    audit(
        transaction,
        ticket,
        now,
        AuditKind::MailSent,
        SYSTEM_ACTOR,
        &mail_sent_detail(id, &kind, &recipient, attempts, reply),
    )
    .await
}

/// Puts a row back for a later attempt after a temporary failure.
pub(super) async fn mark_retry(
    pool: &PgPool,
    id: i64,
    now: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET next_attempt_at = $1, lease_until = 0, reason = $2, updated_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(OutboxStatus::Queued.slug())
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives a row up (permanent refusal, or out of attempts), and audits it.
pub(super) async fn mark_dead(
    transaction: &mut Transaction<'_, Postgres>,
    id: i64,
    now: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let Some((ticket, kind, recipient, _)) = row_facts(transaction, id).await? else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE outbox SET status = $1, reason = $2, lease_until = 0, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(OutboxStatus::Dead.slug())
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut **transaction)
    .await?;
    audit(
        transaction,
        ticket,
        now,
        AuditKind::MailDead,
        SYSTEM_ACTOR,
        &mail_dead_detail(id, &kind, &recipient, reason),
    )
    .await
}

/// Queues a dead (or suppressed) row again, due now. False when there is no
/// such row or it is already queued or sent.
pub(super) async fn retry(
    transaction: &mut Transaction<'_, Postgres>,
    id: i64,
    now: i64,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let Some((ticket, kind, recipient, _)) = row_facts(transaction, id).await? else {
        return Ok(false);
    };
    let changed = sqlx::query(
        "UPDATE outbox SET status = $1, attempts = 0, next_attempt_at = $2, lease_until = 0, \
         updated_at = $2 WHERE id = $3 AND status IN ($4, $5)",
    )
    .bind(OutboxStatus::Queued.slug())
    .bind(now)
    .bind(id)
    .bind(OutboxStatus::Dead.slug())
    .bind(OutboxStatus::Suppressed.slug())
    .execute(&mut **transaction)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    audit(
        transaction,
        ticket,
        now,
        AuditKind::MailQueued,
        actor,
        &mail_retry_detail(id, &kind, &recipient),
    )
    .await?;
    Ok(true)
}

/// The latest message of a ticket.
pub(super) async fn last_customer_message(
    transaction: &mut Transaction<'_, Postgres>,
    ticket: i64,
) -> Result<Option<LastMessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, message_id, message_id_synthesized, message_references, reply_to, from_email \
         FROM messages WHERE ticket_number = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&mut **transaction)
    .await
}
