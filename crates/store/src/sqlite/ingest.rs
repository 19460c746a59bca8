//! Ingest of a batch inside its write transaction.
//!
//! Speed comes from round trips, not from SQLite: every statement is a hop to
//! sqlx's SQLite worker thread and back, and those hops dominate a profile of
//! the naive one-statement-per-row version. So each item costs two calls:
//!
//! 1. [`LOOKUP`]: one query that finds a stored copy (by Message-ID and
//!    content hash, or by IMAP position) or the ticket to thread onto (by the
//!    thread headers, then by the subject tag).
//! 2. One multi-statement call that writes everything for the item: the ticket
//!    (when new), the message, its raw bytes, its attachments, its
//!    classification, the routing decision and the audit events.
//!
//! The second call needs the new rows' ids up front. The batch holds SQLite's
//! write lock from `BEGIN IMMEDIATE` to `COMMIT`, so it reads the highest ticket
//! number and message id once ([`IdAllocator::start`]) and hands out the next
//! ones itself; nobody else can insert in between.
//!
//! The multi-statement calls are concatenations of the statement blocks below,
//! each with plain `?` parameters; sqlx hands the arguments to the statements
//! in order, so each block has one `bind_*` function that binds exactly its
//! parameters, and a call binds its blocks in the order its SQL lists them.
//! (Numbered `?NNN` parameters shared between statements do not work: sqlx
//! binds the gaps positionally and stops at the first index past the end.)
//!
//! Statements are static strings, so sqlx keeps each prepared on its connection.

use serde_json::json;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Row, SqliteConnection};
use supportd_core::{
    Address, Attachment, Classification, InboundMessage, MessageFlags, Priority, QueueName,
    RouteDecision, TicketRef, TicketStatus,
};

use crate::codec::{self, to_i64, to_json};
use crate::model::{AuditKind, IngestContent, IngestItem, IngestOutcome};

/// The actor of everything the daemon does on its own.
pub(crate) const SYSTEM_ACTOR: &str = "supportd";

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Hands out ticket numbers and message ids within one write transaction.
pub(crate) struct IdAllocator {
    /// The last ticket number used (the AUTOINCREMENT sequence is kept in step
    /// by SQLite when a larger number is inserted explicitly).
    last_ticket: i64,
    /// The last message id used.
    last_message: i64,
}

impl IdAllocator {
    /// Reads where the numbering stands. Only valid while the transaction holds
    /// the write lock (`BEGIN IMMEDIATE`).
    pub(crate) async fn start(connection: &mut SqliteConnection) -> Result<Self, sqlx::Error> {
        let row = sqlx::query(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tickets'), 1000), \
             COALESCE((SELECT MAX(number) FROM tickets), 1000)) AS last_ticket, \
             COALESCE((SELECT MAX(id) FROM messages), 0) AS last_message",
        )
        .fetch_one(&mut *connection)
        .await?;
        Ok(IdAllocator {
            last_ticket: row.try_get("last_ticket")?,
            last_message: row.try_get("last_message")?,
        })
    }

    fn next_ticket(&mut self) -> i64 {
        self.last_ticket += 1;
        self.last_ticket
    }

    fn next_message(&mut self) -> i64 {
        self.last_message += 1;
        self.last_message
    }
}

/// Finds, for one incoming message, in order of precedence: a stored copy by
/// `(message_id, content_hash)` (rank 0) or by IMAP position (rank 1); the
/// ticket of a stored message named by the thread headers, In-Reply-To first,
/// then References from the most recent (rank 2); the ticket named by the
/// subject tag (rank 3).
///
/// `?1` message id, `?2` content hash, `?3` mailbox, `?4` UIDVALIDITY, `?5` UID,
/// `?6` thread ids as a JSON array in precedence order, `?7` tagged ticket number.
const LOOKUP: &str = "\
    SELECT 0 AS rank, ticket_number AS number, '' AS status FROM messages \
    WHERE message_id = ?1 AND content_hash = ?2 \
    UNION ALL \
    SELECT 1, ticket_number, '' FROM messages \
    WHERE source_mailbox = ?3 AND source_uidvalidity = ?4 AND source_uid = ?5 \
    AND source_uid IS NOT NULL \
    UNION ALL \
    SELECT * FROM ( \
        SELECT 2, t.number, t.status FROM json_each(?6) AS j \
        CROSS JOIN messages AS m CROSS JOIN tickets AS t \
        WHERE m.message_id = j.value AND t.number = m.ticket_number \
        ORDER BY j.key, m.id LIMIT 1) \
    UNION ALL \
    SELECT 3, number, status FROM tickets WHERE number = ?7 \
    ORDER BY 1 LIMIT 1";

/// A new ticket with labels (15 parameters, [`bind_ticket`]).
macro_rules! insert_ticket_sql {
    () => {
        "INSERT INTO tickets (number, queue, status, priority, subject, requester_email, \
         requester_name, tier, category, in_scope, microsoft, confidence, created_at, \
         updated_at, first_response_due) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?); "
    };
}

/// A new ticket without labels (10 parameters, [`bind_quarantine_ticket`]).
macro_rules! insert_quarantine_ticket_sql {
    () => {
        "INSERT INTO tickets (number, queue, status, priority, subject, requester_email, \
         requester_name, created_at, updated_at, first_response_due) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?); "
    };
}

/// The message row, its raw bytes and its attachments (27 + 2 + 2 parameters,
/// [`bind_message`]). Its ticket must exist already.
macro_rules! insert_message_sql {
    () => {
        "INSERT INTO messages (id, ticket_number, message_id, message_id_synthesized, \
         content_hash, in_reply_to, message_references, from_email, from_name, reply_to, \
         to_addresses, cc_addresses, subject, sent_at, received_at, body_text, body_html, \
         new_text, forwarded_text, flags, warnings, size, quarantine_reason, source_kind, \
         source_mailbox, source_uidvalidity, source_uid) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         ?, ?); \
         INSERT INTO raw_messages (message_id, raw) VALUES (?, ?); \
         INSERT INTO attachments (message_id, position, filename, content_type, size, sha256) \
         SELECT ?, key, json_extract(value, '$.filename'), \
         json_extract(value, '$.content_type'), json_extract(value, '$.size'), \
         json_extract(value, '$.sha256') FROM json_each(?); "
    };
}

/// A message's classification (9 parameters, [`bind_classification`]).
macro_rules! insert_classification_sql {
    () => {
        "INSERT INTO classifications (message_id, tier, category, in_scope, microsoft, \
         confidence, reasons, entities, account) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?); "
    };
}

/// A routing decision (9 parameters, [`bind_route`]).
macro_rules! insert_route_sql {
    () => {
        "INSERT INTO route_decisions (ticket_number, message_id, decided_at, queue, priority, \
         first_response_due, rule, reasons, actions) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?); "
    };
}

/// An audit event (5 parameters, [`bind_audit`]).
macro_rules! insert_audit_sql {
    () => {
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
         VALUES (?, ?, ?, ?, ?); "
    };
}

/// A new, routed ticket with its first message.
const CREATE_TICKET: &str = concat!(
    insert_ticket_sql!(),
    insert_message_sql!(),
    insert_classification_sql!(),
    insert_route_sql!(),
    insert_audit_sql!(),
    insert_audit_sql!(),
);

/// A reply on an existing ticket that keeps its status.
const THREAD_MESSAGE: &str = concat!(
    insert_message_sql!(),
    insert_classification_sql!(),
    "UPDATE tickets SET updated_at = ? WHERE number = ?; ",
    insert_audit_sql!(),
);

/// A reply that also opens its ticket again.
const THREAD_MESSAGE_AND_REOPEN: &str = concat!(
    insert_message_sql!(),
    insert_classification_sql!(),
    "UPDATE tickets SET status = ?, updated_at = ? WHERE number = ?; ",
    insert_audit_sql!(),
    insert_audit_sql!(),
);

/// A quarantine ticket with its unparsed message.
const QUARANTINE: &str = concat!(
    insert_quarantine_ticket_sql!(),
    insert_message_sql!(),
    insert_audit_sql!(),
);

/// A status change by hand.
const CHANGE_STATUS: &str = concat!(
    "UPDATE tickets SET status = ?, updated_at = ? WHERE number = ?; ",
    insert_audit_sql!(),
);

/// Stores one item on the open write transaction `connection`.
pub(crate) async fn ingest_item(
    connection: &mut SqliteConnection,
    ids: &mut IdAllocator,
    item: &IngestItem,
) -> Result<IngestOutcome, sqlx::Error> {
    match &item.content {
        IngestContent::Parsed {
            message,
            classification,
            route,
        } => {
            let found = lookup(
                connection,
                item,
                &message.message_id,
                &message.content_hash,
                Some(message),
            )
            .await?;
            let new_message = NewMessage::parsed(message);
            match found {
                Found::Duplicate(number) => Ok(IngestOutcome::Duplicate(ticket_ref(number))),
                Found::Thread(number, status) => {
                    thread_message(
                        connection,
                        ids,
                        item,
                        &new_message,
                        classification,
                        number,
                        status,
                    )
                    .await
                }
                Found::Nothing => {
                    create_ticket(connection, ids, item, &new_message, classification, route).await
                }
            }
        }
        IngestContent::Quarantined {
            quarantine_reason,
            message_id,
            content_hash,
            subject,
            from,
            due,
        } => {
            match lookup(connection, item, message_id, content_hash, None).await? {
                // A quarantined item never threads; only its duplicate matters.
                Found::Duplicate(number) => {
                    return Ok(IngestOutcome::Duplicate(ticket_ref(number)));
                }
                Found::Thread(..) | Found::Nothing => {}
            }
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
                attachments: &[],
                size: item.raw.len() as u64,
                quarantine_reason: Some(quarantine_reason),
            };
            quarantine(connection, ids, item, &new_message, *due).await
        }
    }
}

fn ticket_ref(number: i64) -> TicketRef {
    // Ticket numbers start above 1000 and only grow: never negative.
    TicketRef::new(u64::try_from(number).unwrap_or_default())
}

/// What [`LOOKUP`] found.
enum Found {
    Duplicate(i64),
    Thread(i64, TicketStatus),
    Nothing,
}

async fn lookup(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    message_id: &str,
    content_hash: &str,
    threading: Option<&InboundMessage>,
) -> Result<Found, sqlx::Error> {
    let uid = item.source.uid;
    let (thread_ids, tagged) = match threading {
        Some(message) => {
            let thread_ids: Vec<&str> = message
                .in_reply_to
                .iter()
                .chain(message.references.iter().rev())
                .map(String::as_str)
                .filter(|id| !id.is_empty())
                .collect();
            let tagged = TicketRef::find_in_subject(&message.subject)
                .and_then(|ticket_ref| i64::try_from(ticket_ref.number()).ok());
            (to_json(&thread_ids)?, tagged)
        }
        None => ("[]".to_owned(), None),
    };
    let found: Option<(i64, i64, String)> = sqlx::query_as(LOOKUP)
        .bind(message_id)
        .bind(content_hash)
        .bind(&item.source.mailbox)
        .bind(uid.map(|uid| i64::from(uid.uidvalidity)))
        .bind(uid.map(|uid| i64::from(uid.uid)))
        .bind(thread_ids)
        .bind(tagged)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(match found {
        None => Found::Nothing,
        Some((0 | 1, number, _)) => Found::Duplicate(number),
        Some((_, number, status)) => Found::Thread(number, decode_status(&status)?),
    })
}

fn decode_status(status: &str) -> Result<TicketStatus, sqlx::Error> {
    codec::slug::<TicketStatus>("tickets.status", status)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// Creates and routes a ticket for a message that starts a conversation.
async fn create_ticket(
    connection: &mut SqliteConnection,
    ids: &mut IdAllocator,
    item: &IngestItem,
    message: &NewMessage<'_>,
    classification: &Classification,
    route: &RouteDecision,
) -> Result<IngestOutcome, sqlx::Error> {
    let number = ids.next_ticket();
    let message_row = ids.next_message();
    let at = item.received_at;
    let created = json!({
        "message_id": message.message_id,
        "from": message.from.map(|address| &address.email),
        "source": item.source.kind.slug(),
    });
    let routed = json!({
        "queue": route.queue.as_str(),
        "rule": route.rule,
        "priority": route.priority.slug(),
        "first_response_due": route.first_response_due,
    });
    let query = sqlx::query(CREATE_TICKET);
    let query = bind_ticket(query, number, item, message, classification, route);
    let query = bind_message(query, number, message_row, item, message)?;
    let query = bind_classification(query, message_row, classification)?;
    let query = bind_route(query, number, message_row, at, route)?;
    let query = bind_audit(
        query,
        number,
        at,
        AuditKind::TicketCreated,
        SYSTEM_ACTOR,
        &created,
    )?;
    let query = bind_audit(query, number, at, AuditKind::Routed, SYSTEM_ACTOR, &routed)?;
    query.execute(&mut *connection).await?;
    Ok(IngestOutcome::Created(ticket_ref(number)))
}

/// Appends a reply to its ticket. The ticket keeps its queue and priority; a
/// resolved ticket or one waiting for the customer opens again, a closed one
/// stays closed.
async fn thread_message(
    connection: &mut SqliteConnection,
    ids: &mut IdAllocator,
    item: &IngestItem,
    message: &NewMessage<'_>,
    classification: &Classification,
    number: i64,
    status: TicketStatus,
) -> Result<IngestOutcome, sqlx::Error> {
    let message_row = ids.next_message();
    let at = item.received_at;
    let threaded = json!({
        "message_id": message.message_id,
        "from": message.from.map(|address| &address.email),
    });
    let reopen = matches!(
        status,
        TicketStatus::Resolved | TicketStatus::PendingCustomer
    );
    let query = sqlx::query(if reopen {
        THREAD_MESSAGE_AND_REOPEN
    } else {
        THREAD_MESSAGE
    });
    let query = bind_message(query, number, message_row, item, message)?;
    let query = bind_classification(query, message_row, classification)?;
    let query = if reopen {
        let query = query.bind(TicketStatus::Open.slug()).bind(at).bind(number);
        let query = bind_audit(
            query,
            number,
            at,
            AuditKind::MessageThreaded,
            SYSTEM_ACTOR,
            &threaded,
        )?;
        let reopened = status_change_detail(status, TicketStatus::Open, "customer_reply");
        bind_audit(
            query,
            number,
            at,
            AuditKind::StatusChanged,
            SYSTEM_ACTOR,
            &reopened,
        )?
    } else {
        let query = query.bind(at).bind(number);
        bind_audit(
            query,
            number,
            at,
            AuditKind::MessageThreaded,
            SYSTEM_ACTOR,
            &threaded,
        )?
    };
    query.execute(&mut *connection).await?;
    Ok(IngestOutcome::Threaded(ticket_ref(number)))
}

/// The detail of a `status_changed` audit event.
fn status_change_detail(from: TicketStatus, to: TicketStatus, cause: &str) -> serde_json::Value {
    json!({ "from": from.slug(), "to": to.slug(), "cause": cause })
}

/// Stores a message that could not be parsed on its own quarantine ticket.
async fn quarantine(
    connection: &mut SqliteConnection,
    ids: &mut IdAllocator,
    item: &IngestItem,
    message: &NewMessage<'_>,
    due: i64,
) -> Result<IngestOutcome, sqlx::Error> {
    let number = ids.next_ticket();
    let message_row = ids.next_message();
    let at = item.received_at;
    let detail = json!({
        "reason": message.quarantine_reason,
        "message_id": message.message_id,
        "source": item.source.kind.slug(),
    });
    let query = sqlx::query(QUARANTINE)
        .bind(number)
        .bind(QueueName::QUARANTINE)
        .bind(TicketStatus::Open.slug())
        .bind(Priority::Normal.slug())
        .bind(message.subject.to_owned())
        .bind(message.from.map(|address| address.email.clone()))
        .bind(message.from.and_then(|address| address.name.clone()))
        .bind(at)
        .bind(at)
        .bind(due);
    let query = bind_message(query, number, message_row, item, message)?;
    let query = bind_audit(
        query,
        number,
        at,
        AuditKind::Quarantined,
        SYSTEM_ACTOR,
        &detail,
    )?;
    query.execute(&mut *connection).await?;
    Ok(IngestOutcome::Quarantined(ticket_ref(number)))
}

/// Sets a ticket's status and records the change, with its `cause`, in the
/// ticket's audit trail.
pub(crate) async fn change_status(
    connection: &mut SqliteConnection,
    number: i64,
    from: TicketStatus,
    to: TicketStatus,
    actor: &str,
    at: i64,
    cause: &str,
) -> Result<(), sqlx::Error> {
    let detail = status_change_detail(from, to, cause);
    let query = sqlx::query(CHANGE_STATUS)
        .bind(to.slug())
        .bind(at)
        .bind(number);
    bind_audit(query, number, at, AuditKind::StatusChanged, actor, &detail)?
        .execute(&mut *connection)
        .await?;
    Ok(())
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
    attachments: &'a [Attachment],
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
            attachments: &message.attachments,
            size: message.size,
            quarantine_reason: None,
        }
    }
}

/// Binds `insert_ticket_sql!`: a new ticket from its first message, labelled
/// by its classification and placed by its routing decision.
fn bind_ticket<'q>(
    query: SqliteQuery<'q>,
    number: i64,
    item: &IngestItem,
    message: &NewMessage<'_>,
    classification: &Classification,
    route: &RouteDecision,
) -> SqliteQuery<'q> {
    query
        .bind(number)
        .bind(route.queue.as_str().to_owned())
        .bind(TicketStatus::Open.slug())
        .bind(route.priority.slug())
        .bind(message.subject.to_owned())
        .bind(message.from.map(|address| address.email.clone()))
        .bind(message.from.and_then(|address| address.name.clone()))
        .bind(classification.tier.slug())
        .bind(classification.category.slug())
        .bind(classification.in_scope)
        .bind(classification.microsoft)
        .bind(codec::confidence(classification.confidence))
        .bind(item.received_at)
        .bind(item.received_at)
        .bind(route.first_response_due)
}

/// Binds `insert_message_sql!`: the message row, its raw bytes, its attachments.
fn bind_message<'q>(
    query: SqliteQuery<'q>,
    number: i64,
    message_row: i64,
    item: &IngestItem,
    message: &NewMessage<'_>,
) -> Result<SqliteQuery<'q>, sqlx::Error> {
    let uid = item.source.uid;
    Ok(query
        .bind(message_row)
        .bind(number)
        .bind(message.message_id.to_owned())
        .bind(message.message_id_synthesized)
        .bind(message.content_hash.to_owned())
        .bind(to_json(message.in_reply_to)?)
        .bind(to_json(message.references)?)
        .bind(message.from.map(|address| address.email.clone()))
        .bind(message.from.and_then(|address| address.name.clone()))
        .bind(to_json(message.reply_to)?)
        .bind(to_json(message.to)?)
        .bind(to_json(message.cc)?)
        .bind(message.subject.to_owned())
        .bind(message.sent_at)
        .bind(item.received_at)
        .bind(message.body_text.to_owned())
        .bind(message.body_html.map(str::to_owned))
        .bind(message.new_text.to_owned())
        .bind(message.forwarded_text.to_owned())
        .bind(to_json(message.flags)?)
        .bind(to_json(message.warnings)?)
        .bind(to_i64(message.size))
        .bind(message.quarantine_reason.map(str::to_owned))
        .bind(item.source.kind.slug())
        .bind(item.source.mailbox.clone())
        .bind(uid.map(|uid| i64::from(uid.uidvalidity)))
        .bind(uid.map(|uid| i64::from(uid.uid)))
        // raw_messages
        .bind(message_row)
        .bind(item.raw.clone())
        // attachments
        .bind(message_row)
        .bind(to_json(message.attachments)?))
}

/// Binds `insert_classification_sql!`.
fn bind_classification<'q>(
    query: SqliteQuery<'q>,
    message_row: i64,
    classification: &Classification,
) -> Result<SqliteQuery<'q>, sqlx::Error> {
    let account = classification.account.as_ref().map(to_json).transpose()?;
    Ok(query
        .bind(message_row)
        .bind(classification.tier.slug())
        .bind(classification.category.slug())
        .bind(classification.in_scope)
        .bind(classification.microsoft)
        .bind(codec::confidence(classification.confidence))
        .bind(to_json(&classification.reasons)?)
        .bind(to_json(&classification.entities)?)
        .bind(account))
}

/// Binds `insert_route_sql!`.
fn bind_route<'q>(
    query: SqliteQuery<'q>,
    number: i64,
    message_row: i64,
    decided_at: i64,
    route: &RouteDecision,
) -> Result<SqliteQuery<'q>, sqlx::Error> {
    Ok(query
        .bind(number)
        .bind(message_row)
        .bind(decided_at)
        .bind(route.queue.as_str().to_owned())
        .bind(route.priority.slug())
        .bind(route.first_response_due)
        .bind(route.rule.clone())
        .bind(to_json(&route.reasons)?)
        .bind(to_json(&route.actions)?))
}

/// Binds `insert_audit_sql!`.
fn bind_audit<'q>(
    query: SqliteQuery<'q>,
    number: i64,
    at: i64,
    kind: AuditKind,
    actor: &str,
    detail: &serde_json::Value,
) -> Result<SqliteQuery<'q>, sqlx::Error> {
    Ok(query
        .bind(number)
        .bind(at)
        .bind(kind.slug().to_owned())
        .bind(actor.to_owned())
        .bind(to_json(detail)?))
}
