//! Ingest of one item inside the batch transaction: duplicate check, threading,
//! ticket creation, quarantine. Every statement is static SQL, so sqlx keeps it
//! prepared on the connection across items and batches.

use serde_json::json;
use sqlx::SqliteConnection;
use supportd_core::{
    Address, Attachment, Classification, InboundMessage, MessageFlags, Priority, QueueName,
    RouteDecision, TicketRef, TicketStatus,
};

use crate::codec::{self, to_i64, to_json};
use crate::model::{AuditKind, IngestContent, IngestItem, IngestOutcome, SourcePosition};

/// The actor of everything the daemon does on its own.
const SYSTEM_ACTOR: &str = "supportd";

/// Stores one item on the open transaction `connection` and says what it did.
pub(crate) async fn ingest_item(
    connection: &mut SqliteConnection,
    item: &IngestItem,
) -> Result<IngestOutcome, sqlx::Error> {
    let (message_id, content_hash) = match &item.content {
        IngestContent::Parsed { message, .. } => (&message.message_id, &message.content_hash),
        IngestContent::Quarantined {
            message_id,
            content_hash,
            ..
        } => (message_id, content_hash),
    };
    if let Some(number) = find_duplicate(connection, message_id, content_hash, &item.source).await?
    {
        return Ok(IngestOutcome::Duplicate(ticket_ref(number)));
    }
    match &item.content {
        IngestContent::Parsed {
            message,
            classification,
            route,
        } => match find_thread(connection, message).await? {
            Some((number, status)) => {
                thread_message(connection, item, message, classification, number, status).await
            }
            None => create_ticket(connection, item, message, classification, route).await,
        },
        IngestContent::Quarantined {
            quarantine_reason,
            message_id,
            content_hash,
            subject,
            from,
            due,
        } => {
            let new_message = NewMessage {
                message_id,
                message_id_synthesized: false,
                content_hash,
                in_reply_to: &[],
                references: &[],
                from: from.as_ref(),
                reply_to: &[],
                to: &[],
                cc: &[],
                subject,
                sent_at: None,
                body_text: "",
                body_html: None,
                new_text: "",
                forwarded_text: "",
                flags: &MessageFlags::default(),
                warnings: &[],
                size: item.raw.len() as u64,
                quarantine_reason: Some(quarantine_reason),
            };
            quarantine(connection, item, &new_message, *due).await
        }
    }
}

fn ticket_ref(number: i64) -> TicketRef {
    // Ticket numbers come from an AUTOINCREMENT seeded at 1000: never negative.
    TicketRef::new(u64::try_from(number).unwrap_or_default())
}

/// The ticket of an already stored copy of this message, by (Message-ID,
/// content hash) or by IMAP source position.
async fn find_duplicate(
    connection: &mut SqliteConnection,
    message_id: &str,
    content_hash: &str,
    source: &SourcePosition,
) -> Result<Option<i64>, sqlx::Error> {
    let uid = source
        .uid
        .map(|uid| (i64::from(uid.uidvalidity), i64::from(uid.uid)));
    sqlx::query_scalar(
        "SELECT ticket_number FROM messages WHERE message_id = ?1 AND content_hash = ?2 \
         UNION ALL \
         SELECT ticket_number FROM messages WHERE source_mailbox = ?3 \
         AND source_uidvalidity = ?4 AND source_uid = ?5 AND source_uid IS NOT NULL \
         LIMIT 1",
    )
    .bind(message_id)
    .bind(content_hash)
    .bind(&source.mailbox)
    .bind(uid.map(|(uidvalidity, _)| uidvalidity))
    .bind(uid.map(|(_, uid)| uid))
    .fetch_optional(connection)
    .await
}

/// The ticket a reply belongs to, with its status: first by the thread headers
/// (In-Reply-To, then References from the most recent), then by the ticket tag
/// in the subject.
async fn find_thread(
    connection: &mut SqliteConnection,
    message: &InboundMessage,
) -> Result<Option<(i64, TicketStatus)>, sqlx::Error> {
    let thread_ids: Vec<&str> = message
        .in_reply_to
        .iter()
        .chain(message.references.iter().rev())
        .map(String::as_str)
        .filter(|id| !id.is_empty())
        .collect();
    if !thread_ids.is_empty() {
        // CROSS JOIN keeps json_each as the outer loop, so each id is one index probe.
        let found: Option<(i64, String)> = sqlx::query_as(
            "SELECT t.number, t.status FROM json_each(?1) AS j \
             CROSS JOIN messages AS m CROSS JOIN tickets AS t \
             WHERE m.message_id = j.value AND t.number = m.ticket_number \
             ORDER BY j.key, m.id LIMIT 1",
        )
        .bind(to_json(&thread_ids)?)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some((number, status)) = found {
            return Ok(Some((number, decode_status(&status)?)));
        }
    }
    let Some(tagged) = TicketRef::find_in_subject(&message.subject) else {
        return Ok(None);
    };
    let Ok(number) = i64::try_from(tagged.number()) else {
        return Ok(None);
    };
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM tickets WHERE number = ?1")
        .bind(number)
        .fetch_optional(&mut *connection)
        .await?;
    status
        .map(|status| Ok((number, decode_status(&status)?)))
        .transpose()
}

fn decode_status(status: &str) -> Result<TicketStatus, sqlx::Error> {
    codec::slug::<TicketStatus>("tickets.status", status)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// Appends a reply to its ticket. The ticket keeps its queue and priority; a
/// resolved ticket or one waiting for the customer opens again, a closed one
/// stays closed.
async fn thread_message(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    message: &InboundMessage,
    classification: &Classification,
    number: i64,
    status: TicketStatus,
) -> Result<IngestOutcome, sqlx::Error> {
    let message_row =
        insert_message(connection, number, item, &NewMessage::parsed(message)).await?;
    insert_attachments(connection, message_row, &message.attachments).await?;
    insert_classification(connection, message_row, classification).await?;
    sqlx::query("UPDATE tickets SET updated_at = ?2 WHERE number = ?1")
        .bind(number)
        .bind(item.received_at)
        .execute(&mut *connection)
        .await?;
    insert_audit(
        connection,
        number,
        item.received_at,
        AuditKind::MessageThreaded,
        SYSTEM_ACTOR,
        &json!({
            "message_id": message.message_id,
            "from": message.from.as_ref().map(|from| &from.email),
        }),
    )
    .await?;
    if matches!(
        status,
        TicketStatus::Resolved | TicketStatus::PendingCustomer
    ) {
        change_status(
            connection,
            number,
            status,
            TicketStatus::Open,
            SYSTEM_ACTOR,
            item.received_at,
            "customer_reply",
        )
        .await?;
    }
    Ok(IngestOutcome::Threaded(ticket_ref(number)))
}

/// Sets a ticket's status and records the change in its audit trail.
pub(crate) async fn change_status(
    connection: &mut SqliteConnection,
    number: i64,
    from: TicketStatus,
    to: TicketStatus,
    actor: &str,
    at: i64,
    cause: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tickets SET status = ?2, updated_at = ?3 WHERE number = ?1")
        .bind(number)
        .bind(to.slug())
        .bind(at)
        .execute(&mut *connection)
        .await?;
    insert_audit(
        connection,
        number,
        at,
        AuditKind::StatusChanged,
        actor,
        &json!({ "from": from.slug(), "to": to.slug(), "cause": cause }),
    )
    .await
}

/// Creates and routes a ticket for a message that starts a conversation.
async fn create_ticket(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    message: &InboundMessage,
    classification: &Classification,
    route: &RouteDecision,
) -> Result<IngestOutcome, sqlx::Error> {
    let requester = message.from.as_ref();
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (queue, status, priority, subject, requester_email, \
         requester_name, tier, category, in_scope, microsoft, confidence, created_at, \
         updated_at, first_response_due) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13) \
         RETURNING number",
    )
    .bind(route.queue.as_str())
    .bind(TicketStatus::Open.slug())
    .bind(route.priority.slug())
    .bind(&message.subject)
    .bind(requester.map(|address| &address.email))
    .bind(requester.and_then(|address| address.name.as_ref()))
    .bind(classification.tier.slug())
    .bind(classification.category.slug())
    .bind(classification.in_scope)
    .bind(classification.microsoft)
    .bind(codec::confidence(classification.confidence))
    .bind(item.received_at)
    .bind(route.first_response_due)
    .fetch_one(&mut *connection)
    .await?;
    let message_row =
        insert_message(connection, number, item, &NewMessage::parsed(message)).await?;
    insert_attachments(connection, message_row, &message.attachments).await?;
    insert_classification(connection, message_row, classification).await?;
    sqlx::query(
        "INSERT INTO route_decisions (ticket_number, message_id, decided_at, queue, priority, \
         first_response_due, rule, reasons, actions) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(number)
    .bind(message_row)
    .bind(item.received_at)
    .bind(route.queue.as_str())
    .bind(route.priority.slug())
    .bind(route.first_response_due)
    .bind(&route.rule)
    .bind(to_json(&route.reasons)?)
    .bind(to_json(&route.actions)?)
    .execute(&mut *connection)
    .await?;
    insert_two_audits(
        connection,
        number,
        item.received_at,
        (
            AuditKind::TicketCreated,
            &json!({
                "message_id": message.message_id,
                "from": requester.map(|address| &address.email),
                "source": item.source.kind.slug(),
            }),
        ),
        (
            AuditKind::Routed,
            &json!({
                "queue": route.queue.as_str(),
                "rule": route.rule,
                "priority": route.priority.slug(),
                "first_response_due": route.first_response_due,
            }),
        ),
    )
    .await?;
    Ok(IngestOutcome::Created(ticket_ref(number)))
}

/// Stores a message that could not be parsed on its own quarantine ticket.
async fn quarantine(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    new_message: &NewMessage<'_>,
    due: i64,
) -> Result<IngestOutcome, sqlx::Error> {
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (queue, status, priority, subject, requester_email, \
         requester_name, created_at, updated_at, first_response_due) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) \
         RETURNING number",
    )
    .bind(QueueName::QUARANTINE)
    .bind(TicketStatus::Open.slug())
    .bind(Priority::Normal.slug())
    .bind(new_message.subject)
    .bind(new_message.from.map(|address| &address.email))
    .bind(new_message.from.and_then(|address| address.name.as_ref()))
    .bind(item.received_at)
    .bind(due)
    .fetch_one(&mut *connection)
    .await?;
    insert_message(connection, number, item, new_message).await?;
    insert_audit(
        connection,
        number,
        item.received_at,
        AuditKind::Quarantined,
        SYSTEM_ACTOR,
        &json!({
            "reason": new_message.quarantine_reason,
            "message_id": new_message.message_id,
            "source": item.source.kind.slug(),
        }),
    )
    .await?;
    Ok(IngestOutcome::Quarantined(ticket_ref(number)))
}

/// The message fields a row holds, borrowed from a parsed message or filled in
/// for a quarantined one.
struct NewMessage<'a> {
    message_id: &'a str,
    message_id_synthesized: bool,
    content_hash: &'a str,
    in_reply_to: &'a [String],
    references: &'a [String],
    from: Option<&'a Address>,
    reply_to: &'a [Address],
    to: &'a [Address],
    cc: &'a [Address],
    subject: &'a str,
    sent_at: Option<i64>,
    body_text: &'a str,
    body_html: Option<&'a str>,
    new_text: &'a str,
    forwarded_text: &'a str,
    flags: &'a MessageFlags,
    warnings: &'a [String],
    size: u64,
    quarantine_reason: Option<&'a str>,
}

impl<'a> NewMessage<'a> {
    fn parsed(message: &'a InboundMessage) -> Self {
        NewMessage {
            message_id: &message.message_id,
            message_id_synthesized: message.message_id_synthesized,
            content_hash: &message.content_hash,
            in_reply_to: &message.in_reply_to,
            references: &message.references,
            from: message.from.as_ref(),
            reply_to: &message.reply_to,
            to: &message.to,
            cc: &message.cc,
            subject: &message.subject,
            sent_at: message.date,
            body_text: &message.body_text,
            body_html: message.body_html.as_deref(),
            new_text: &message.new_text,
            forwarded_text: &message.forwarded_text,
            flags: &message.flags,
            warnings: &message.warnings,
            size: message.size,
            quarantine_reason: None,
        }
    }
}

/// Inserts the message row and its raw bytes; returns the message's store id.
async fn insert_message(
    connection: &mut SqliteConnection,
    number: i64,
    item: &IngestItem,
    message: &NewMessage<'_>,
) -> Result<i64, sqlx::Error> {
    let uid = item.source.uid;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_number, message_id, message_id_synthesized, content_hash, \
         in_reply_to, message_references, from_email, from_name, reply_to, to_addresses, \
         cc_addresses, subject, sent_at, received_at, body_text, body_html, new_text, \
         forwarded_text, flags, warnings, size, quarantine_reason, source_kind, source_mailbox, \
         source_uidvalidity, source_uid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26) \
         RETURNING id",
    )
    .bind(number)
    .bind(message.message_id)
    .bind(message.message_id_synthesized)
    .bind(message.content_hash)
    .bind(to_json(message.in_reply_to)?)
    .bind(to_json(message.references)?)
    .bind(message.from.map(|address| &address.email))
    .bind(message.from.and_then(|address| address.name.as_ref()))
    .bind(to_json(message.reply_to)?)
    .bind(to_json(message.to)?)
    .bind(to_json(message.cc)?)
    .bind(message.subject)
    .bind(message.sent_at)
    .bind(item.received_at)
    .bind(message.body_text)
    .bind(message.body_html)
    .bind(message.new_text)
    .bind(message.forwarded_text)
    .bind(to_json(message.flags)?)
    .bind(to_json(message.warnings)?)
    .bind(to_i64(message.size))
    .bind(message.quarantine_reason)
    .bind(item.source.kind.slug())
    .bind(&item.source.mailbox)
    .bind(uid.map(|uid| i64::from(uid.uidvalidity)))
    .bind(uid.map(|uid| i64::from(uid.uid)))
    .fetch_one(&mut *connection)
    .await?;
    sqlx::query("INSERT INTO raw_messages (message_id, raw) VALUES (?1, ?2)")
        .bind(id)
        .bind(item.raw.as_slice())
        .execute(&mut *connection)
        .await?;
    Ok(id)
}

async fn insert_attachments(
    connection: &mut SqliteConnection,
    message_row: i64,
    attachments: &[Attachment],
) -> Result<(), sqlx::Error> {
    for (position, attachment) in attachments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO attachments (message_id, position, filename, content_type, size, sha256) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(message_row)
        .bind(to_i64(position as u64))
        .bind(&attachment.filename)
        .bind(&attachment.content_type)
        .bind(to_i64(attachment.size))
        .bind(&attachment.sha256)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn insert_classification(
    connection: &mut SqliteConnection,
    message_row: i64,
    classification: &Classification,
) -> Result<(), sqlx::Error> {
    let account = classification.account.as_ref().map(to_json).transpose()?;
    sqlx::query(
        "INSERT INTO classifications (message_id, tier, category, in_scope, microsoft, \
         confidence, reasons, entities, account) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(message_row)
    .bind(classification.tier.slug())
    .bind(classification.category.slug())
    .bind(classification.in_scope)
    .bind(classification.microsoft)
    .bind(codec::confidence(classification.confidence))
    .bind(to_json(&classification.reasons)?)
    .bind(to_json(&classification.entities)?)
    .bind(account)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn insert_audit(
    connection: &mut SqliteConnection,
    number: i64,
    at: i64,
    kind: AuditKind,
    actor: &str,
    detail: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(number)
    .bind(at)
    .bind(kind.slug())
    .bind(actor)
    .bind(to_json(detail)?)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Two audit events by the daemon in one statement (a ticket's creation and routing).
async fn insert_two_audits(
    connection: &mut SqliteConnection,
    number: i64,
    at: i64,
    first: (AuditKind, &serde_json::Value),
    second: (AuditKind, &serde_json::Value),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5), (?1, ?2, ?6, ?4, ?7)",
    )
    .bind(number)
    .bind(at)
    .bind(first.0.slug())
    .bind(SYSTEM_ACTOR)
    .bind(to_json(first.1)?)
    .bind(second.0.slug())
    .bind(to_json(second.1)?)
    .execute(&mut *connection)
    .await?;
    Ok(())
}
