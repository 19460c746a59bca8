//! The outbox on SQLite: rows written inside ingest's write transaction, the
//! worker's claim (one `UPDATE … RETURNING` with a lease), and the marks.
//!
//! The claim takes due rows whose lease has run out and gives them a new
//! lease in one statement, so two workers never hold the same row. On
//! PostgreSQL the same shape is `UPDATE outbox SET … WHERE id IN (SELECT id …
//! FOR UPDATE SKIP LOCKED) RETURNING …`.

use std::collections::HashMap;

use serde_json::json;
use sqlx::SqliteConnection;
use supportd_core::TicketRef;

use crate::codec::{self, to_json};
use crate::model::AuditKind;
use crate::outbox::{
    LoopReferences, OutboxKind, OutboxMail, OutboxPolicy, OutboxStatus, PlannedMail,
    RecipientFacts, outbox_message_id,
};

/// Columns of [`OutboxRow`], in order.
macro_rules! outbox_columns {
    () => {
        "id, ticket_number, kind, status, recipient, message_id, source_message, in_reply_to, \
         message_references, body, actor, reason, attempts, next_attempt_at, rendered, \
         created_at, sent_at"
    };
}
pub(crate) use outbox_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    ticket_number: i64,
    kind: String,
    status: String,
    recipient: String,
    message_id: String,
    source_message: Option<i64>,
    in_reply_to: Option<String>,
    message_references: String,
    body: Option<String>,
    actor: String,
    reason: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    rendered: Option<Vec<u8>>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl OutboxRow {
    pub(crate) fn into_mail(self) -> Result<OutboxMail, codec::DecodeError> {
        Ok(OutboxMail {
            id: self.id,
            ticket_ref: TicketRef::new(u64::try_from(self.ticket_number).unwrap_or_default()),
            kind: codec::slug::<OutboxKind>("outbox.kind", &self.kind)?,
            status: codec::slug::<OutboxStatus>("outbox.status", &self.status)?,
            recipient: self.recipient,
            message_id: self.message_id,
            source_message: self.source_message,
            in_reply_to: self.in_reply_to,
            references: codec::json("outbox.message_references", &self.message_references)?,
            body: self.body,
            actor: self.actor,
            reason: self.reason,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at,
            rendered: self.rendered,
            created_at: self.created_at,
            sent_at: self.sent_at,
        })
    }
}

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

async fn audit(
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

/// One new outbox row, before it has an id.
pub(crate) struct NewOutboxRow<'a> {
    pub ticket: i64,
    pub planned: &'a PlannedMail,
    pub source_message: Option<i64>,
    pub body: Option<&'a str>,
    pub actor: &'a str,
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
    let (kind, detail) = match &planned.suppressed {
        None => (
            AuditKind::MailQueued,
            json!({"outbox_id": id, "kind": planned.kind.slug(),
                   "recipient": planned.recipient, "message_id": message_id}),
        ),
        Some(reason) => (
            AuditKind::MailSuppressed,
            json!({"outbox_id": id, "kind": planned.kind.slug(),
                   "recipient": planned.recipient, "reason": reason}),
        ),
    };
    audit(connection, row.ticket, now, kind, row.actor, detail).await?;
    Ok(message_id)
}

/// Records a bounce or auto-reply to supportd's own mail on its ticket, and
/// after a permanent bounce suppresses automatic mail to the addresses it names.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn attach_automatic_reply(
    connection: &mut SqliteConnection,
    ticket: i64,
    message_id: &str,
    bounce: bool,
    references: &LoopReferences,
    outbox_messages: &HashMap<String, (i64, String)>,
    policy: &OutboxPolicy,
    now: i64,
) -> Result<(), sqlx::Error> {
    let named: Vec<&(i64, String)> = references
        .outbox_message_ids
        .iter()
        .filter_map(|id| outbox_messages.get(id))
        .collect();
    let permanent = bounce && references.permanent_failure;
    let until = now.saturating_add(policy.bounce_suppression_s);
    let mut suppressed = Vec::new();
    if permanent {
        for (outbox_id, recipient_key) in &named {
            sqlx::query(
                "INSERT INTO mail_suppressions (recipient_key, until, reason, created_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (recipient_key) DO UPDATE SET \
                 until = MAX(until, excluded.until), reason = excluded.reason",
            )
            .bind(recipient_key)
            .bind(until)
            .bind(format!("permanent bounce of outbox row {outbox_id}"))
            .bind(now)
            .execute(&mut *connection)
            .await?;
            suppressed.push(recipient_key.clone());
        }
    }
    let outbox_ids: Vec<i64> = named.iter().map(|(id, _)| *id).collect();
    audit(
        connection,
        ticket,
        now,
        AuditKind::AutomaticReplyAttached,
        crate::sqlite::ingest::SYSTEM_ACTOR,
        json!({"message_id": message_id, "bounce": bounce, "permanent": permanent,
               "outbox_ids": outbox_ids, "suppressed": suppressed,
               "suppressed_until": permanent.then_some(until)}),
    )
    .await
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
        crate::sqlite::ingest::SYSTEM_ACTOR,
        json!({"outbox_id": id, "kind": kind, "recipient": recipient,
               "attempts": attempts, "reply": reply}),
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
        crate::sqlite::ingest::SYSTEM_ACTOR,
        json!({"outbox_id": id, "kind": kind, "recipient": recipient, "reason": reason}),
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
        json!({"outbox_id": id, "kind": kind, "recipient": recipient, "cause": "retry"}),
    )
    .await?;
    Ok(true)
}

/// The latest message of a ticket: (messages.id, message_id, synthesized,
/// references JSON, reply_to JSON, from_email).
pub(crate) async fn last_customer_message(
    connection: &mut SqliteConnection,
    ticket: i64,
) -> Result<Option<(i64, String, bool, String, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, message_id, message_id_synthesized, message_references, reply_to, from_email \
         FROM messages WHERE ticket_number = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&mut *connection)
    .await
}
