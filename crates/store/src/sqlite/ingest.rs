//! Writing a batch inside its write transaction, SQLite flavour.
//!
//! Speed comes from round trips, not from SQLite: every statement is a hop to
//! sqlx's SQLite worker thread and back (a futex wake-up each way), and those
//! hops dominated profiles of the earlier versions (one statement per row,
//! then one multi-statement call per item). So a batch costs:
//!
//! 1. one query for the ids in use ([`id_allocator`]) and at most four lookups
//!    for the whole batch ([`known`]): stored copies by Message-ID and content
//!    hash, stored copies by IMAP position, stored messages the thread headers
//!    name, tickets the subject tags name;
//! 2. the decision per item, in memory ([`crate::plan`]), and its rows,
//!    gathered per table ([`crate::batch`], shared with PostgreSQL);
//! 3. a few multi-row `INSERT … VALUES` statements per table ([`write_batch`]),
//!    [`CHUNK_ROWS`] rows each, every value bound.
//!
//! The writes need the new rows' ids up front. The batch holds SQLite's write
//! lock from `BEGIN IMMEDIATE` to `COMMIT`, so reading the highest ticket number
//! and message id once and counting up from there is safe: nobody else can
//! insert in between.

use std::mem::take;

use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use supportd_core::TicketStatus;

use crate::batch::BatchRows;
use crate::codec::to_json;
use crate::model::AuditKind;
use crate::plan::{IdAllocator, Known, LookupKeys};
use crate::write::{KnownRows, status_change_detail};

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

/// An audit event (5 parameters, [`bind_audit`]).
macro_rules! insert_audit_sql {
    () => {
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
         VALUES (?, ?, ?, ?, ?); "
    };
}

/// A status change by hand.
const CHANGE_STATUS: &str = concat!(
    "UPDATE tickets SET status = ?, updated_at = ? WHERE number = ?; ",
    insert_audit_sql!(),
);

/// Rows per multi-row statement. Full chunks use one prepared statement per
/// table and connection; the last, shorter chunk of a batch is prepared for
/// the one use. 100 rows of the widest table (27 parameters) stay far below
/// SQLite's 32,766 parameters per statement.
const CHUNK_ROWS: usize = 100;

/// `{insert} VALUES (?, …), …`: `rows` groups of `width` placeholders.
fn values_sql(insert: &str, width: usize, rows: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(", "));
    format!("{insert} VALUES {}", vec![group; rows].join(", "))
}

/// Writes `rows` rows with `{insert} VALUES …` statements of up to
/// [`CHUNK_ROWS`] rows; `bind` binds row `index`'s `width` values in order.
/// The SQL holds placeholders only: every value is bound.
async fn insert_rows<'q>(
    connection: &mut SqliteConnection,
    insert: &str,
    suffix: &str,
    width: usize,
    rows: usize,
    mut bind: impl FnMut(SqliteQuery<'q>, usize) -> SqliteQuery<'q>,
) -> Result<(), sqlx::Error> {
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK_ROWS).min(rows);
        let sql = format!("{}{suffix}", values_sql(insert, width, end - start));
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(end - start == CHUNK_ROWS);
        for index in start..end {
            query = bind(query, index);
        }
        query.execute(&mut *connection).await?;
        start = end;
    }
    Ok(())
}

/// Writes every gathered row of a batch: parents before children, audit
/// events last; a handful of statements per table instead of one per row
/// (each statement is a round trip to sqlx's SQLite worker thread).
pub(crate) async fn write_batch(
    connection: &mut SqliteConnection,
    batch: BatchRows,
) -> Result<(), sqlx::Error> {
    let BatchRows {
        mut tickets,
        mut messages,
        mut attachments,
        mut classifications,
        mut routes,
        touched,
        mut outbox,
        suppressions,
        mut audit,
    } = batch;
    let open = TicketStatus::Open.slug();
    insert_rows(
        connection,
        "INSERT INTO tickets (number, queue, status, priority, subject, requester_email, \
         requester_name, tier, category, in_scope, microsoft, confidence, created_at, \
         updated_at, first_response_due)",
        "",
        15,
        tickets.number.len(),
        |query, i| {
            query
                .bind(tickets.number[i])
                .bind(take(&mut tickets.queue[i]))
                .bind(open)
                .bind(take(&mut tickets.priority[i]))
                .bind(take(&mut tickets.subject[i]))
                .bind(tickets.requester_email[i].take())
                .bind(tickets.requester_name[i].take())
                .bind(tickets.tier[i].take())
                .bind(tickets.category[i].take())
                .bind(tickets.in_scope[i])
                .bind(tickets.microsoft[i])
                .bind(tickets.confidence[i])
                .bind(tickets.created_at[i])
                .bind(tickets.created_at[i])
                .bind(tickets.first_response_due[i])
        },
    )
    .await?;
    let m = &mut messages;
    insert_rows(
        connection,
        "INSERT INTO messages (id, ticket_number, message_id, message_id_synthesized, \
         content_hash, in_reply_to, message_references, from_email, from_name, reply_to, \
         to_addresses, cc_addresses, subject, sent_at, received_at, body_text, body_html, \
         new_text, forwarded_text, flags, warnings, size, quarantine_reason, source_kind, \
         source_mailbox, source_uidvalidity, source_uid)",
        "",
        27,
        m.id.len(),
        |query, i| {
            query
                .bind(m.id[i])
                .bind(m.ticket_number[i])
                .bind(take(&mut m.message_id[i]))
                .bind(m.message_id_synthesized[i])
                .bind(take(&mut m.content_hash[i]))
                .bind(take(&mut m.in_reply_to[i]))
                .bind(take(&mut m.references[i]))
                .bind(m.from_email[i].take())
                .bind(m.from_name[i].take())
                .bind(take(&mut m.reply_to[i]))
                .bind(take(&mut m.to[i]))
                .bind(take(&mut m.cc[i]))
                .bind(take(&mut m.subject[i]))
                .bind(m.sent_at[i])
                .bind(m.received_at[i])
                .bind(take(&mut m.body_text[i]))
                .bind(m.body_html[i].take())
                .bind(take(&mut m.new_text[i]))
                .bind(take(&mut m.forwarded_text[i]))
                .bind(take(&mut m.flags[i]))
                .bind(take(&mut m.warnings[i]))
                .bind(m.size[i])
                .bind(m.quarantine_reason[i].take())
                .bind(take(&mut m.source_kind[i]))
                .bind(take(&mut m.source_mailbox[i]))
                .bind(m.source_uidvalidity[i])
                .bind(m.source_uid[i])
        },
    )
    .await?;
    insert_rows(
        connection,
        "INSERT INTO raw_messages (message_id, raw)",
        "",
        2,
        m.id.len(),
        |query, i| query.bind(m.id[i]).bind(take(&mut m.raw[i])),
    )
    .await?;
    let a = &mut attachments;
    insert_rows(
        connection,
        "INSERT INTO attachments (message_id, position, filename, content_type, size, sha256)",
        "",
        6,
        a.message_id.len(),
        |query, i| {
            query
                .bind(a.message_id[i])
                .bind(a.position[i])
                .bind(take(&mut a.filename[i]))
                .bind(take(&mut a.content_type[i]))
                .bind(a.size[i])
                .bind(take(&mut a.sha256[i]))
        },
    )
    .await?;
    let c = &mut classifications;
    insert_rows(
        connection,
        "INSERT INTO classifications (message_id, tier, category, in_scope, microsoft, \
         confidence, reasons, entities, account)",
        "",
        9,
        c.message_id.len(),
        |query, i| {
            query
                .bind(c.message_id[i])
                .bind(take(&mut c.tier[i]))
                .bind(take(&mut c.category[i]))
                .bind(c.in_scope[i])
                .bind(c.microsoft[i])
                .bind(c.confidence[i])
                .bind(take(&mut c.reasons[i]))
                .bind(take(&mut c.entities[i]))
                .bind(c.account[i].take())
        },
    )
    .await?;
    let r = &mut routes;
    insert_rows(
        connection,
        "INSERT INTO route_decisions (ticket_number, message_id, decided_at, queue, priority, \
         first_response_due, rule, reasons, actions)",
        "",
        9,
        r.ticket_number.len(),
        |query, i| {
            query
                .bind(r.ticket_number[i])
                .bind(r.message_id[i])
                .bind(r.decided_at[i])
                .bind(take(&mut r.queue[i]))
                .bind(take(&mut r.priority[i]))
                .bind(r.first_response_due[i])
                .bind(take(&mut r.rule[i]))
                .bind(take(&mut r.reasons[i]))
                .bind(take(&mut r.actions[i]))
        },
    )
    .await?;
    // Threaded tickets: the latest update time, and open again when a reply
    // reopens them. One statement each: replies are the smaller part of a batch.
    for (number, (updated_at, reopen)) in touched {
        let query = if reopen {
            sqlx::query("UPDATE tickets SET status = ?, updated_at = ? WHERE number = ?").bind(open)
        } else {
            sqlx::query("UPDATE tickets SET updated_at = ? WHERE number = ?")
        };
        query
            .bind(updated_at)
            .bind(number)
            .execute(&mut *connection)
            .await?;
    }
    let o = &mut outbox;
    insert_rows(
        connection,
        "INSERT INTO outbox (id, ticket_number, kind, status, recipient, recipient_key, \
         message_id, source_message, in_reply_to, message_references, body, actor, reason, \
         next_attempt_at, created_at, updated_at)",
        "",
        16,
        o.id.len(),
        |query, i| {
            query
                .bind(o.id[i])
                .bind(o.ticket_number[i])
                .bind(take(&mut o.kind[i]))
                .bind(take(&mut o.status[i]))
                .bind(take(&mut o.recipient[i]))
                .bind(take(&mut o.recipient_key[i]))
                .bind(take(&mut o.message_id[i]))
                .bind(o.source_message[i])
                .bind(o.in_reply_to[i].take())
                .bind(take(&mut o.references[i]))
                .bind(o.body[i].take())
                .bind(take(&mut o.actor[i]))
                .bind(o.reason[i].take())
                .bind(o.now[i])
                .bind(o.now[i])
                .bind(o.now[i])
        },
    )
    .await?;
    let mut suppressions: Vec<(String, (i64, String, i64))> = suppressions.into_iter().collect();
    insert_rows(
        connection,
        "INSERT INTO mail_suppressions (recipient_key, until, reason, created_at)",
        " ON CONFLICT (recipient_key) DO UPDATE SET \
         until = MAX(until, excluded.until), reason = excluded.reason",
        4,
        suppressions.len(),
        |query, i| {
            let (key, (until, reason, created_at)) = &mut suppressions[i];
            query
                .bind(take(key))
                .bind(*until)
                .bind(take(reason))
                .bind(*created_at)
        },
    )
    .await?;
    let e = &mut audit;
    insert_rows(
        connection,
        "INSERT INTO audit_events (ticket_number, at, kind, actor, detail)",
        "",
        5,
        e.ticket_number.len(),
        |query, i| {
            query
                .bind(e.ticket_number[i])
                .bind(e.at[i])
                .bind(take(&mut e.kind[i]))
                .bind(take(&mut e.actor[i]))
                .bind(take(&mut e.detail[i]))
        },
    )
    .await
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
