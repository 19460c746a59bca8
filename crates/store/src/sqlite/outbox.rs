//! The outbox on SQLite: rows written inside ingest's write transaction, the
//! worker's claim (one `UPDATE … RETURNING` with a lease), and the marks.
//!
//! The claim takes due rows whose lease has run out and gives them a new
//! lease in one statement, so two workers never hold the same row. On
//! PostgreSQL the same shape is `UPDATE outbox SET … WHERE id IN (SELECT id …
//! FOR UPDATE SKIP LOCKED) RETURNING …`.

use sqlx::SqliteConnection;

use crate::codec::to_json;
use crate::model::AuditKind;
use crate::outbox::{OutboxKind, OutboxPolicy, OutboxStatus, RecipientFacts, outbox_message_id};
use crate::rows::{OutboxRow, outbox_columns};
use crate::write::{
    LastMessageRow, NewOutboxRow, SYSTEM_ACTOR, mail_dead_detail, mail_retry_detail,
    mail_sent_detail, outbox_written_event,
};

/// The highest outbox id in use. Valid while the write lock is held.
pub(crate) async fn last_outbox_id(connection: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox")
        .fetch_one(&mut *connection)
        .await
}

/// Rate-limit counts and running suppressions for `recipient_keys`.
pub(crate) async fn recipient_facts(
    connection: &mut SqliteConnection,
    recipient_keys: &[String],
    window_start: i64,
    now: i64,
) -> Result<RecipientFacts, sqlx::Error> {
    let mut facts = RecipientFacts::default();
    if recipient_keys.is_empty() {
        return Ok(facts);
    }
    let keys = to_json(recipient_keys)?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT o.recipient_key, COUNT(*) FROM json_each(?) AS j CROSS JOIN outbox AS o \
         WHERE o.recipient_key = j.value AND o.created_at > ? \
         AND o.kind IN (?, ?) AND o.status IN (?, ?) GROUP BY o.recipient_key",
    )
    .bind(&keys)
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
        "SELECT s.recipient_key, s.until FROM json_each(?) AS j \
         CROSS JOIN mail_suppressions AS s WHERE s.recipient_key = j.value AND s.until > ?",
    )
    .bind(&keys)
    .bind(now)
    .fetch_all(&mut *connection)
    .await?;
    facts.suppressed_until.extend(suppressions);
    Ok(facts)
}

/// Outbox rows by Message-ID: `(message_id, ticket, status of the ticket, outbox id, recipient key)`.
pub(crate) async fn outbox_by_message_ids(
    connection: &mut SqliteConnection,
    message_ids: &[String],
) -> Result<Vec<(String, i64, String, i64, String)>, sqlx::Error> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT o.message_id, t.number, t.status, o.id, o.recipient_key \
         FROM json_each(?) AS j CROSS JOIN outbox AS o CROSS JOIN tickets AS t \
         WHERE o.message_id = j.value AND t.number = o.ticket_number",
    )
    .bind(to_json(message_ids)?)
    .fetch_all(&mut *connection)
    .await
}

const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, ticket_number, kind, status, recipient, \
     recipient_key, message_id, source_message, in_reply_to, message_references, body, actor, \
     reason, next_attempt_at, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_AUDIT: &str = "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
     VALUES (?, ?, ?, ?, ?)";

pub(super) async fn audit(
    connection: &mut SqliteConnection,
    ticket: i64,
    at: i64,
    kind: AuditKind,
    actor: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_AUDIT)
        .bind(ticket)
        .bind(at)
        .bind(kind.slug().to_owned())
        .bind(actor.to_owned())
        .bind(to_json(&detail)?)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Writes an outbox row with its fixed Message-ID and its audit event.
pub(crate) async fn insert_mail(
    connection: &mut SqliteConnection,
    id: i64,
    row: &NewOutboxRow<'_>,
    policy: &OutboxPolicy,
    now: i64,
) -> Result<String, sqlx::Error> {
    let planned = row.planned;
    let message_id = outbox_message_id(id, &policy.message_id_domain);
    let status = if planned.suppressed.is_some() {
        OutboxStatus::Suppressed
    } else {
        OutboxStatus::Queued
    };
    sqlx::query(INSERT_OUTBOX)
        .bind(id)
        .bind(row.ticket)
        .bind(planned.kind.slug())
        .bind(status.slug())
        .bind(&planned.recipient)
        .bind(&planned.recipient_key)
        .bind(&message_id)
        .bind(row.source_message)
        .bind(&planned.in_reply_to)
        .bind(to_json(&planned.references)?)
        .bind(row.body)
        .bind(row.actor)
        .bind(&planned.suppressed)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *connection)
        .await?;
    let (kind, detail) = outbox_written_event(id, planned, &message_id);
    audit(connection, row.ticket, now, kind, row.actor, detail).await?;
    Ok(message_id)
}

/// Claims up to `limit` due rows for `lease_s` seconds.
pub(crate) async fn claim(
    connection: &mut SqliteConnection,
    now: i64,
    lease_s: i64,
    limit: u32,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE outbox SET lease_until = ?, attempts = attempts + 1, updated_at = ? \
         WHERE id IN (SELECT id FROM outbox WHERE status = ? AND next_attempt_at <= ? \
         AND lease_until <= ? ORDER BY next_attempt_at, id LIMIT ?) RETURNING ",
        outbox_columns!()
    ))
    .bind(now.saturating_add(lease_s))
    .bind(now)
    .bind(OutboxStatus::Queued.slug())
    .bind(now)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await
}

/// Keeps the rendered bytes of a claimed row; only the first rendering counts.
pub(crate) async fn save_rendered(
    connection: &mut SqliteConnection,
    id: i64,
    rendered: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET rendered = ? WHERE id = ? AND rendered IS NULL")
        .bind(rendered)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Reads one row's ticket, kind and recipient, for the audit events of a mark.
async fn row_facts(
    connection: &mut SqliteConnection,
    id: i64,
) -> Result<Option<(i64, String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT ticket_number, kind, recipient, attempts FROM outbox WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
}

/// Marks a row sent, with the server's reply, and audits it.
pub(crate) async fn mark_sent(
    connection: &mut SqliteConnection,
    id: i64,
    now: i64,
    reply: &str,
) -> Result<(), sqlx::Error> {
    let Some((ticket, kind, recipient, attempts)) = row_facts(connection, id).await? else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE outbox SET status = ?, sent_at = ?, updated_at = ?, lease_until = 0, \
         reason = NULL WHERE id = ?",
    )
    .bind(OutboxStatus::Sent.slug())
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&mut *connection)
    .await?;
    audit(
        connection,
        ticket,
        now,
        AuditKind::MailSent,
        SYSTEM_ACTOR,
        mail_sent_detail(id, &kind, &recipient, attempts, reply),
    )
    .await
}

/// Puts a row back for a later attempt after a temporary failure.
pub(crate) async fn mark_retry(
    connection: &mut SqliteConnection,
    id: i64,
    now: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET next_attempt_at = ?, lease_until = 0, reason = ?, updated_at = ? \
         WHERE id = ? AND status = ?",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(OutboxStatus::Queued.slug())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Gives a row up (permanent refusal, or out of attempts), and audits it.
pub(crate) async fn mark_dead(
    connection: &mut SqliteConnection,
    id: i64,
    now: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let Some((ticket, kind, recipient, _)) = row_facts(connection, id).await? else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE outbox SET status = ?, reason = ?, lease_until = 0, updated_at = ? WHERE id = ?",
    )
    .bind(OutboxStatus::Dead.slug())
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *connection)
    .await?;
    audit(
        connection,
        ticket,
        now,
        AuditKind::MailDead,
        SYSTEM_ACTOR,
        mail_dead_detail(id, &kind, &recipient, reason),
    )
    .await
}

/// Queues a dead (or suppressed) row again, due now. False when there is no
/// such row or it is already queued or sent.
pub(crate) async fn retry(
    connection: &mut SqliteConnection,
    id: i64,
    now: i64,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let Some((ticket, kind, recipient, _)) = row_facts(connection, id).await? else {
        return Ok(false);
    };
    let changed = sqlx::query(
        "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?, lease_until = 0, \
         updated_at = ? WHERE id = ? AND status IN (?, ?)",
    )
    .bind(OutboxStatus::Queued.slug())
    .bind(now)
    .bind(now)
    .bind(id)
    .bind(OutboxStatus::Dead.slug())
    .bind(OutboxStatus::Suppressed.slug())
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    audit(
        connection,
        ticket,
        now,
        AuditKind::MailQueued,
        actor,
        mail_retry_detail(id, &kind, &recipient),
    )
    .await?;
    Ok(true)
}

/// The latest message of a ticket.
pub(crate) async fn last_customer_message(
    connection: &mut SqliteConnection,
    ticket: i64,
) -> Result<Option<LastMessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, message_id, message_id_synthesized, message_references, reply_to, from_email \
         FROM messages WHERE ticket_number = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&mut *connection)
    .await
}
