//! Writing a batch inside its write transaction, SQLite flavour.
//!
//! Speed comes from round trips, not from SQLite: every statement is a hop to
//! sqlx's SQLite worker thread and back, and those hops dominated a profile of
//! the first, one-statement-per-row version. So a batch costs:
//!
//! 1. one query for the ids in use ([`id_allocator`]) and at most four lookups
//!    for the whole batch ([`known`]): stored copies by Message-ID and content
//!    hash, stored copies by IMAP position, stored messages the thread headers
//!    name, tickets the subject tags name;
//! 2. the decision per item, in memory ([`crate::plan`]);
//! 3. one multi-statement call per stored item ([`write_step`]) that writes
//!    everything for it: the ticket (when new), the message, its raw bytes, its
//!    attachments, its classification, the routing decision, the audit events.
//!
//! The writes need the new rows' ids up front. The batch holds SQLite's write
//! lock from `BEGIN IMMEDIATE` to `COMMIT`, so reading the highest ticket number
//! and message id once and counting up from there is safe: nobody else can
//! insert in between.
//!
//! The multi-statement calls are concatenations of the statement blocks below,
//! each with plain `?` parameters; sqlx hands the arguments to the statements
//! in order, so each block has one `bind_*` function that binds exactly its
//! parameters, and a call binds its blocks in the order its SQL lists them.
//! (Numbered `?NNN` parameters shared between statements do not work: sqlx
//! binds the gaps positionally and stops at the first index past the end.)
//!
//! Statements are static strings, so sqlx keeps each prepared on its connection.

use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{Row, SqliteConnection};
use supportd_core::{Classification, Priority, QueueName, RouteDecision, TicketStatus};

use crate::codec::{self, to_i64, to_json};
use crate::model::{AuditKind, IngestContent, IngestItem, IngestOutcome};
use crate::plan::{IdAllocator, Known, LookupKeys, Step};
use crate::write::{
    KnownRows, NewMessage, SYSTEM_ACTOR, created_detail, quarantined_detail, routed_detail,
    status_change_detail, threaded_detail, ticket_ref,
};

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Where the numbering stands. Only valid while the transaction holds the
/// write lock (`BEGIN IMMEDIATE`). The AUTOINCREMENT sequence of `tickets` is
/// kept in step by SQLite when a larger number is inserted explicitly.
pub(crate) async fn id_allocator(
    connection: &mut SqliteConnection,
) -> Result<IdAllocator, sqlx::Error> {
    let row = sqlx::query(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tickets'), 1000), \
         COALESCE((SELECT MAX(number) FROM tickets), 1000)) AS last_ticket, \
         COALESCE((SELECT MAX(id) FROM messages), 0) AS last_message",
    )
    .fetch_one(&mut *connection)
    .await?;
    Ok(IdAllocator::new(
        row.try_get("last_ticket")?,
        row.try_get("last_message")?,
    ))
}

/// What the database holds for a batch's keys: one query per kind of key, each
/// probing an index once per key (`CROSS JOIN` keeps `json_each` outermost).
pub(crate) async fn known(
    connection: &mut SqliteConnection,
    keys: &LookupKeys,
) -> Result<Known, sqlx::Error> {
    let mut rows = KnownRows::default();
    if !keys.message_keys.is_empty() {
        rows.message_keys = sqlx::query_as(
            "SELECT m.message_id, m.content_hash, m.ticket_number \
             FROM json_each(?) AS j CROSS JOIN messages AS m \
             WHERE m.message_id = json_extract(j.value, '$[0]') \
             AND m.content_hash = json_extract(j.value, '$[1]')",
        )
        .bind(to_json(&keys.message_keys)?)
        .fetch_all(&mut *connection)
        .await?;
    }
    if !keys.positions.is_empty() {
        rows.positions = sqlx::query_as(
            "SELECT m.source_mailbox, m.source_uidvalidity, m.source_uid, m.ticket_number \
             FROM json_each(?) AS j CROSS JOIN messages AS m \
             WHERE m.source_mailbox = json_extract(j.value, '$[0]') \
             AND m.source_uidvalidity = json_extract(j.value, '$[1]') \
             AND m.source_uid = json_extract(j.value, '$[2]') \
             AND m.source_uid IS NOT NULL",
        )
        .bind(to_json(&keys.positions)?)
        .fetch_all(&mut *connection)
        .await?;
    }
    if !keys.thread_ids.is_empty() {
        // The earliest stored message with each id decides its ticket.
        rows.thread_ids = sqlx::query_as(
            "SELECT j.value, t.number, t.status \
             FROM json_each(?) AS j CROSS JOIN messages AS m CROSS JOIN tickets AS t \
             WHERE m.id = (SELECT MIN(f.id) FROM messages AS f WHERE f.message_id = j.value) \
             AND t.number = m.ticket_number",
        )
        .bind(to_json(&keys.thread_ids)?)
        .fetch_all(&mut *connection)
        .await?;
        // Replies to supportd's own mail name an outbox Message-ID.
        rows.outbox_messages =
            super::outbox::outbox_by_message_ids(&mut *connection, &keys.thread_ids).await?;
    }
    if !keys.tagged_tickets.is_empty() {
        rows.tagged_tickets = sqlx::query_as(
            "SELECT t.number, t.status, t.requester_email \
             FROM json_each(?) AS j CROSS JOIN tickets AS t \
             WHERE t.number = j.value",
        )
        .bind(to_json(&keys.tagged_tickets)?)
        .fetch_all(&mut *connection)
        .await?;
    }
    rows.into_known()
}

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

/// Writes what `step` says for `item` on the open write transaction.
pub(crate) async fn write_step(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    step: Step,
) -> Result<IngestOutcome, sqlx::Error> {
    match (&item.content, step) {
        (_, Step::Duplicate { ticket }) => Ok(IngestOutcome::Duplicate(ticket_ref(ticket))),
        (
            IngestContent::Parsed {
                message,
                classification,
                route,
            },
            Step::Create {
                ticket,
                message: message_row,
            },
        ) => {
            let new_message = NewMessage::parsed(message);
            create_ticket(
                connection,
                item,
                &new_message,
                classification,
                route,
                ticket,
                message_row,
            )
            .await
        }
        (
            IngestContent::Parsed {
                message,
                classification,
                ..
            },
            Step::Thread {
                ticket,
                message: message_row,
                reopen_from,
            },
        ) => {
            let new_message = NewMessage::parsed(message);
            thread_message(
                connection,
                item,
                &new_message,
                classification,
                ticket,
                message_row,
                reopen_from,
            )
            .await
        }
        (
            IngestContent::Quarantined { due, .. },
            Step::Quarantine {
                ticket,
                message: message_row,
            },
        ) => match NewMessage::quarantined(item) {
            Some(new_message) => {
                quarantine(connection, item, &new_message, *due, ticket, message_row).await
            }
            None => Err(plan_mismatch(step)),
        },
        (IngestContent::Parsed { .. }, Step::Quarantine { .. })
        | (IngestContent::Quarantined { .. }, Step::Create { .. } | Step::Thread { .. }) => {
            Err(plan_mismatch(step))
        }
    }
}

fn plan_mismatch(step: Step) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "ingest plan mismatch: {step:?} for an item of the other kind"
    ))
}

/// Creates and routes a ticket for a message that starts a conversation.
async fn create_ticket(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    message: &NewMessage<'_>,
    classification: &Classification,
    route: &RouteDecision,
    number: i64,
    message_row: i64,
) -> Result<IngestOutcome, sqlx::Error> {
    let at = item.received_at;
    let created = created_detail(item, message);
    let routed = routed_detail(route);
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
    item: &IngestItem,
    message: &NewMessage<'_>,
    classification: &Classification,
    number: i64,
    message_row: i64,
    reopen_from: Option<TicketStatus>,
) -> Result<IngestOutcome, sqlx::Error> {
    let at = item.received_at;
    let threaded = threaded_detail(message);
    let query = sqlx::query(if reopen_from.is_some() {
        THREAD_MESSAGE_AND_REOPEN
    } else {
        THREAD_MESSAGE
    });
    let query = bind_message(query, number, message_row, item, message)?;
    let query = bind_classification(query, message_row, classification)?;
    let query = if let Some(status) = reopen_from {
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

/// Stores a message that could not be parsed on its own quarantine ticket.
async fn quarantine(
    connection: &mut SqliteConnection,
    item: &IngestItem,
    message: &NewMessage<'_>,
    due: i64,
    number: i64,
    message_row: i64,
) -> Result<IngestOutcome, sqlx::Error> {
    let at = item.received_at;
    let detail = quarantined_detail(item, message);
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
