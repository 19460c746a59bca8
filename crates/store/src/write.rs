//! What the backends write, decided once: the message fields a row holds,
//! the detail of every audit event, the outbox row a staff reply asks for,
//! and [`Known`] assembled from the rows the lookups return. Pure and
//! backend-independent; each backend only binds these values to its SQL.

use std::collections::HashMap;

use serde_json::json;
use supportd_core::{
    Address, Attachment, InboundMessage, MessageFlags, RouteDecision, TicketRef, TicketStatus,
};

use crate::codec::{self, DecodeError};
use crate::model::{AuditKind, IngestContent, IngestItem};
use crate::outbox::{OutboxKind, PlannedMail};
use crate::plan::{Known, PositionKey, Step};

/// The actor of everything the daemon does on its own.
pub(crate) const SYSTEM_ACTOR: &str = "supportd";

/// A ticket number as the customer sees it. Ticket numbers start above 1000
/// and only grow: never negative.
pub(crate) fn ticket_ref(number: i64) -> TicketRef {
    TicketRef::new(u64::try_from(number).unwrap_or_default())
}

/// A stored ticket status, or a decode error naming the column.
pub(crate) fn decode_status(status: &str) -> Result<TicketStatus, sqlx::Error> {
    codec::slug::<TicketStatus>("tickets.status", status)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// The message fields a row holds, borrowed from a parsed message or filled in
/// for a quarantined one.
pub(crate) struct NewMessage<'a> {
    pub message_id: &'a str,
    pub message_id_synthesized: bool,
    pub content_hash: &'a str,
    pub in_reply_to: &'a [String],
    pub references: &'a [String],
    pub from: Option<&'a Address>,
    pub reply_to: &'a [Address],
    pub to: &'a [Address],
    pub cc: &'a [Address],
    pub subject: &'a str,
    pub sent_at: Option<i64>,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    pub new_text: &'a str,
    pub forwarded_text: &'a str,
    pub flags: &'a MessageFlags,
    pub warnings: &'a [String],
    pub attachments: &'a [Attachment],
    pub size: u64,
    pub quarantine_reason: Option<&'a str>,
}

/// The flags of a quarantined message: nothing is known about it.
static NO_FLAGS: std::sync::LazyLock<MessageFlags> =
    std::sync::LazyLock::new(MessageFlags::default);

impl<'a> NewMessage<'a> {
    pub(crate) fn parsed(message: &'a InboundMessage) -> Self {
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

    /// The row of a quarantined item; `None` for a parsed one.
    pub(crate) fn quarantined(item: &'a IngestItem) -> Option<Self> {
        let IngestContent::Quarantined {
            quarantine_reason,
            message_id,
            content_hash,
            subject,
            from,
            ..
        } = &item.content
        else {
            return None;
        };
        Some(NewMessage {
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
            flags: &NO_FLAGS,
            warnings: &[],
            attachments: &[],
            size: item.raw.len() as u64,
            quarantine_reason: Some(quarantine_reason),
        })
    }
}

/// The detail of a `ticket_created` audit event.
pub(crate) fn created_detail(item: &IngestItem, message: &NewMessage<'_>) -> serde_json::Value {
    json!({
        "message_id": message.message_id,
        "from": message.from.map(|address| &address.email),
        "source": item.source.kind.slug(),
    })
}

/// The detail of a `routed` audit event.
pub(crate) fn routed_detail(route: &RouteDecision) -> serde_json::Value {
    json!({
        "queue": route.queue.as_str(),
        "rule": route.rule,
        "priority": route.priority.slug(),
        "first_response_due": route.first_response_due,
    })
}

/// The detail of a `message_threaded` audit event.
pub(crate) fn threaded_detail(message: &NewMessage<'_>) -> serde_json::Value {
    json!({
        "message_id": message.message_id,
        "from": message.from.map(|address| &address.email),
    })
}

/// The detail of a `quarantined` audit event.
pub(crate) fn quarantined_detail(item: &IngestItem, message: &NewMessage<'_>) -> serde_json::Value {
    json!({
        "reason": message.quarantine_reason,
        "message_id": message.message_id,
        "source": item.source.kind.slug(),
    })
}

/// The detail of a `status_changed` audit event.
pub(crate) fn status_change_detail(
    from: TicketStatus,
    to: TicketStatus,
    cause: &str,
) -> serde_json::Value {
    json!({ "from": from.slug(), "to": to.slug(), "cause": cause })
}

/// The audit event of a new outbox row: queued, or suppressed with its reason.
pub(crate) fn outbox_written_event(
    outbox_id: i64,
    planned: &PlannedMail,
    message_id: &str,
) -> (AuditKind, serde_json::Value) {
    match &planned.suppressed {
        None => (
            AuditKind::MailQueued,
            json!({"outbox_id": outbox_id, "kind": planned.kind.slug(),
                   "recipient": planned.recipient, "message_id": message_id}),
        ),
        Some(reason) => (
            AuditKind::MailSuppressed,
            json!({"outbox_id": outbox_id, "kind": planned.kind.slug(),
                   "recipient": planned.recipient, "reason": reason}),
        ),
    }
}

/// The detail of an `automatic_reply_attached` audit event.
pub(crate) fn automatic_reply_detail(
    message_id: &str,
    bounce: bool,
    permanent: bool,
    outbox_ids: &[i64],
    suppressed: &[String],
    until: i64,
) -> serde_json::Value {
    json!({"message_id": message_id, "bounce": bounce, "permanent": permanent,
           "outbox_ids": outbox_ids, "suppressed": suppressed,
           "suppressed_until": permanent.then_some(until)})
}

/// The detail of a `mail_sent` audit event.
pub(crate) fn mail_sent_detail(
    outbox_id: i64,
    kind: &str,
    recipient: &str,
    attempts: i64,
    reply: &str,
) -> serde_json::Value {
    json!({"outbox_id": outbox_id, "kind": kind, "recipient": recipient,
           "attempts": attempts, "reply": reply})
}

/// The detail of a `mail_dead` audit event.
pub(crate) fn mail_dead_detail(
    outbox_id: i64,
    kind: &str,
    recipient: &str,
    reason: &str,
) -> serde_json::Value {
    json!({"outbox_id": outbox_id, "kind": kind, "recipient": recipient, "reason": reason})
}

/// The detail of the `mail_queued` audit event of a retry by hand.
pub(crate) fn mail_retry_detail(outbox_id: i64, kind: &str, recipient: &str) -> serde_json::Value {
    json!({"outbox_id": outbox_id, "kind": kind, "recipient": recipient, "cause": "retry"})
}

/// Lower-case reply addresses of the items that create tickets: whose
/// rate-limit counts and suppressions the batch needs.
pub(crate) fn created_recipients(items: &[IngestItem], steps: &[Step]) -> Vec<String> {
    let mut keys: Vec<String> = items
        .iter()
        .zip(steps)
        .filter_map(|(item, step)| match (&item.content, step) {
            (IngestContent::Parsed { message, .. }, Step::Create { .. }) => message
                .reply_address()
                .map(|address| address.email.to_lowercase()),
            _ => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The rows the four lookups of a batch return, as the backends read them.
#[derive(Debug, Default)]
pub(crate) struct KnownRows {
    /// `(message_id, content_hash, ticket)` of stored copies.
    pub message_keys: Vec<(String, String, i64)>,
    /// `(mailbox, uidvalidity, uid, ticket)` of stored positions.
    pub positions: Vec<(String, i64, i64, i64)>,
    /// `(message_id, ticket, status)` of the earliest stored message per thread id.
    pub thread_ids: Vec<(String, i64, String)>,
    /// `(ticket, status, requester_email)` of tickets subject tags name.
    pub tagged_tickets: Vec<(i64, String, Option<String>)>,
    /// `(message_id, ticket, ticket status, outbox id, recipient key)` of
    /// supportd's own mail the thread ids name.
    pub outbox_messages: Vec<(String, i64, String, i64, String)>,
}

impl KnownRows {
    /// What the planner needs to know, from the rows.
    pub(crate) fn into_known(self) -> Result<Known, sqlx::Error> {
        let mut known = Known::default();
        for (message_id, content_hash, ticket) in self.message_keys {
            known
                .message_keys
                .insert((message_id, content_hash), ticket);
        }
        for (mailbox, uidvalidity, uid, ticket) in self.positions {
            // Values outside u32 cannot have been written by this crate.
            if let (Ok(uidvalidity), Ok(uid)) = (u32::try_from(uidvalidity), u32::try_from(uid)) {
                let position: PositionKey = (mailbox, uidvalidity, uid);
                known.positions.insert(position, ticket);
            }
        }
        for (message_id, ticket, status) in self.thread_ids {
            known.message_tickets.insert(message_id, ticket);
            known
                .ticket_statuses
                .insert(ticket, decode_status(&status)?);
        }
        for (ticket, status, requester_email) in self.tagged_tickets {
            known
                .ticket_statuses
                .insert(ticket, decode_status(&status)?);
            if let Some(requester_email) = requester_email {
                known
                    .ticket_requesters
                    .insert(ticket, requester_email.to_lowercase());
            }
        }
        // Replies to supportd's own mail name an outbox Message-ID.
        for (message_id, ticket, status, outbox_id, recipient_key) in self.outbox_messages {
            let status = decode_status(&status)?;
            known.ticket_statuses.entry(ticket).or_insert(status);
            known
                .message_tickets
                .entry(message_id.clone())
                .or_insert(ticket);
            known
                .outbox_messages
                .insert(message_id, (outbox_id, recipient_key));
        }
        Ok(known)
    }
}

/// The latest message of a ticket, as a staff reply needs it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LastMessageRow {
    pub id: i64,
    pub message_id: String,
    pub message_id_synthesized: bool,
    pub message_references: String,
    pub reply_to: String,
    pub from_email: Option<String>,
}

/// Why a staff reply cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StaffReplyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("ticket {0} has no sender address to reply to")]
    NoRecipient(TicketRef),
}

/// The outbox row of a staff reply to the ticket's latest message: to its
/// Reply-To or From, threaded under it.
pub(crate) fn staff_reply_mail(
    ticket_ref: TicketRef,
    last: LastMessageRow,
) -> Result<PlannedMail, StaffReplyError> {
    let reply_to: Vec<Address> = codec::json("messages.reply_to", &last.reply_to)?;
    let mut references: Vec<String> =
        codec::json("messages.message_references", &last.message_references)?;
    let Some(recipient) = reply_to
        .first()
        .map(|address| address.email.clone())
        .or(last.from_email)
    else {
        return Err(StaffReplyError::NoRecipient(ticket_ref));
    };
    let in_reply_to = (!last.message_id_synthesized).then_some(last.message_id);
    if let Some(id) = &in_reply_to
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    Ok(PlannedMail {
        kind: OutboxKind::StaffReply,
        recipient_key: recipient.to_lowercase(),
        recipient,
        suppressed: None,
        in_reply_to,
        references,
    })
}

/// One new outbox row, before it has an id.
pub(crate) struct NewOutboxRow<'a> {
    pub ticket: i64,
    pub planned: &'a PlannedMail,
    pub source_message: Option<i64>,
    pub body: Option<&'a str>,
    pub actor: &'a str,
}

/// Which outbox rows a machine-sent reply names, and which recipients a
/// permanent bounce among them suppresses.
pub(crate) fn named_outbox_rows<'k>(
    outbox_message_ids: &[String],
    outbox_messages: &'k HashMap<String, (i64, String)>,
) -> Vec<&'k (i64, String)> {
    outbox_message_ids
        .iter()
        .filter_map(|id| outbox_messages.get(id))
        .collect()
}
