//! What goes into the store and what comes out: backend-independent types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use supportd_core::{
    Address, Attachment, Category, Classification, InboundMessage, MessageFlags, Priority,
    QueueName, RouteDecision, TicketRef, TicketStatus, Tier,
};

/// Where a raw message came from. Kept on the message row for the audit trail,
/// and, when it carries a UID, as a second idempotency key: an IMAP message
/// fetched again after a crash between commit and acknowledgment is a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Which kind of source delivered the message.
    pub kind: SourceKind,
    /// The IMAP mailbox name, or the file, Maildir or mbox path; `""` for stdin.
    pub mailbox: String,
    /// IMAP UIDVALIDITY and UID; `None` for sources without stable positions.
    /// Both or neither: a UID means nothing without its UIDVALIDITY.
    pub uid: Option<ImapUid>,
}

/// An IMAP message position: UIDs are only unique within one UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImapUid {
    /// Changes when the server renumbers the mailbox; old UIDs then mean nothing.
    pub uidvalidity: u32,
    /// The message's UID within this UIDVALIDITY.
    pub uid: u32,
}

impl SourcePosition {
    /// A position without UID (file, Maildir, mbox, stdin).
    pub fn new(kind: SourceKind, mailbox: impl Into<String>) -> Self {
        SourcePosition {
            kind,
            mailbox: mailbox.into(),
            uid: None,
        }
    }

    /// An IMAP position: mailbox, UIDVALIDITY and UID.
    pub fn imap(mailbox: impl Into<String>, uidvalidity: u32, uid: u32) -> Self {
        SourcePosition {
            kind: SourceKind::Imap,
            mailbox: mailbox.into(),
            uid: Some(ImapUid { uidvalidity, uid }),
        }
    }
}

/// The kinds of intake source. The slugs are stored and guarded by a CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    File,
    Maildir,
    Mbox,
    Stdin,
    Imap,
    /// `POST /api/tickets`: the mailbox is the channel (`portal`, `phone`).
    Api,
}

impl SourceKind {
    pub const ALL: [SourceKind; 6] = [
        SourceKind::File,
        SourceKind::Maildir,
        SourceKind::Mbox,
        SourceKind::Stdin,
        SourceKind::Imap,
        SourceKind::Api,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Maildir => "maildir",
            SourceKind::Mbox => "mbox",
            SourceKind::Stdin => "stdin",
            SourceKind::Imap => "imap",
            SourceKind::Api => "api",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A source kind slug the store does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source kind `{0}` (expected file, maildir, mbox, stdin, imap or api)")]
pub struct ParseSourceKindError(String);

impl FromStr for SourceKind {
    type Err = ParseSourceKindError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.slug() == value)
            .ok_or_else(|| ParseSourceKindError(value.to_owned()))
    }
}

/// One raw message to store, with what the pipeline made of it.
#[derive(Debug, Clone)]
pub struct IngestItem {
    /// The bytes as received; kept so nothing is lost and parsing can be redone.
    pub raw: Vec<u8>,
    /// Where it came from, for the audit trail and IMAP idempotency.
    pub source: SourcePosition,
    /// When supportd received it, Unix seconds. Also the time of the ticket's
    /// creation and of the audit events the ingest writes.
    pub received_at: i64,
    /// The parsed, classified and routed message, or why it could not be parsed.
    pub content: IngestContent,
}

/// The result of the pure pipeline stages for one raw message.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every item is Parsed; boxing would cost an allocation per message for nothing"
)]
pub enum IngestContent {
    /// A message that parsed: it threads onto its ticket or creates one.
    Parsed {
        message: InboundMessage,
        classification: Classification,
        /// Applied only when the message creates a ticket; a reply never re-routes.
        route: RouteDecision,
    },
    /// A message that could not be parsed: stored raw on a ticket in the
    /// quarantine queue, with whatever could be read of its header.
    Quarantined {
        /// Why parsing failed, shown to the person who handles the quarantine.
        quarantine_reason: String,
        /// Message-ID when readable, else one synthesised from the content hash:
        /// with `content_hash`, the idempotency key.
        message_id: String,
        /// SHA-256 of the raw bytes, lower-case hex.
        content_hash: String,
        /// Whatever subject could be read (`""` when none), for the queue page.
        subject: String,
        /// The sender, when the header could be read: the ticket's requester.
        from: Option<Address>,
        /// First response due, Unix seconds.
        due: i64,
    },
}

impl IngestItem {
    /// This item as a quarantined one (same bytes, position and idempotency
    /// key), because the database refused to store it as it was.
    pub(crate) fn refused(&self, reason: &str) -> IngestItem {
        let quarantine_reason = format!("the database refused to store this message: {reason}");
        let content = match &self.content {
            IngestContent::Parsed { message, route, .. } => IngestContent::Quarantined {
                quarantine_reason,
                message_id: message.message_id.clone(),
                content_hash: message.content_hash.clone(),
                subject: message.subject.clone(),
                from: message.from.clone(),
                due: route.first_response_due,
            },
            IngestContent::Quarantined {
                message_id,
                content_hash,
                subject,
                from,
                due,
                ..
            } => IngestContent::Quarantined {
                quarantine_reason,
                message_id: message_id.clone(),
                content_hash: content_hash.clone(),
                subject: subject.clone(),
                from: from.clone(),
                due: *due,
            },
        };
        IngestItem {
            raw: self.raw.clone(),
            source: self.source.clone(),
            received_at: self.received_at,
            content,
        }
    }
}

/// What `ingest_batch` did with one item, in item order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new ticket was created and routed.
    Created(TicketRef),
    /// The message was a reply and was attached to this existing ticket.
    Threaded(TicketRef),
    /// The message (or its source position) was already stored, on this ticket;
    /// nothing was written.
    Duplicate(TicketRef),
    /// The message could not be parsed and waits on this quarantine ticket.
    Quarantined(TicketRef),
}

impl IngestOutcome {
    /// The ticket the message is on, whatever happened.
    pub fn ticket_ref(self) -> TicketRef {
        match self {
            IngestOutcome::Created(ticket_ref)
            | IngestOutcome::Threaded(ticket_ref)
            | IngestOutcome::Duplicate(ticket_ref)
            | IngestOutcome::Quarantined(ticket_ref) => ticket_ref,
        }
    }
}

/// The state of one queue, for the staff overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSummary {
    /// A queue holding at least one ticket of any status.
    pub queue: QueueName,
    /// Tickets with status `open`.
    pub open: u64,
    /// Tickets waiting for the customer (`pending_customer`).
    pub pending_customer: u64,
    /// `created_at` of the oldest open ticket: how long the queue has been behind.
    pub oldest_open_created_at: Option<i64>,
    /// Open tickets whose first response is overdue (`first_response_due` < now).
    pub overdue: u64,
    /// Open tickets by priority, least urgent first, every priority present.
    pub open_by_priority: Vec<(Priority, u64)>,
}

/// Which tickets of a queue to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueQuery {
    /// The queue to list.
    pub queue: QueueName,
    /// Only tickets in this status ([`QueueQuery::open`] starts with `Open`).
    pub status: TicketStatus,
    /// Newest (highest number) or oldest first.
    pub order: TicketOrder,
    /// Keyset paging: only tickets after this one in `order` (the last ticket of
    /// the previous page); `None` for the first page.
    pub after: Option<TicketRef>,
    /// Page size; the store caps it at [`QueueQuery::MAX_LIMIT`].
    pub limit: u32,
}

impl QueueQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 1000;

    /// The first page of open tickets of `queue`, newest first.
    pub fn open(queue: QueueName) -> Self {
        QueueQuery {
            queue,
            status: TicketStatus::Open,
            order: TicketOrder::NewestFirst,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// Ticket order in a queue listing. Tickets are numbered in creation order, so
/// "newest" means the highest number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketOrder {
    NewestFirst,
    OldestFirst,
}

/// The labels of a classified ticket. A quarantined ticket has none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TicketLabels {
    /// LABELS.md section 1.
    pub tier: Tier,
    /// LABELS.md section 2.
    pub category: Category,
    /// LABELS.md section 3.
    pub in_scope: bool,
    /// LABELS.md section 4: the ticket belongs with the Microsoft escalation desk.
    pub microsoft: bool,
    /// How sure the classifier was of the category, 0 to 1.
    pub confidence: f32,
}

/// One ticket as a queue page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketSummary {
    /// The customer-visible reference, `CS-1001` on.
    pub ticket_ref: TicketRef,
    /// Where the ticket waits: from its routing decision, or `quarantine`.
    pub queue: QueueName,
    pub status: TicketStatus,
    pub priority: Priority,
    /// The subject of the first message.
    pub subject: String,
    /// The sender of the first message, when it had one.
    pub requester: Option<Address>,
    /// From the classification of the first message; `None` when quarantined.
    pub labels: Option<TicketLabels>,
    /// When the first message was received, Unix seconds.
    pub created_at: i64,
    /// Last change: a message threaded or a status changed.
    pub updated_at: i64,
    /// Unix seconds; compared with now for the overdue count of the queue page.
    pub first_response_due: i64,
    /// How many messages the conversation has.
    pub message_count: u64,
}

/// Everything known about one ticket, for its page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketDetail {
    /// The ticket itself, as its queue lists it.
    pub ticket: TicketSummary,
    /// Its messages, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Routing decisions applied to it, oldest first (today: the one at creation).
    pub routes: Vec<StoredRoute>,
    /// Its audit trail, oldest first.
    pub audit_events: Vec<AuditEvent>,
}

/// A stored message: the parsed fields staff see, without the raw bytes
/// (`Store::raw_message` returns those).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMessage {
    /// Store id, for `Store::raw_message`.
    pub id: i64,
    /// The fields below are those of `InboundMessage`, as stored.
    pub message_id: String,
    pub message_id_synthesized: bool,
    pub content_hash: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub subject: String,
    /// Date header, Unix seconds.
    pub sent_at: Option<i64>,
    pub received_at: i64,
    pub body_text: String,
    pub body_html: Option<String>,
    pub new_text: String,
    pub forwarded_text: String,
    pub attachments: Vec<Attachment>,
    pub flags: MessageFlags,
    pub warnings: Vec<String>,
    /// Raw size in bytes.
    pub size: u64,
    /// Why it could not be parsed; `None` for a parsed message.
    pub quarantine_reason: Option<String>,
    /// Where it was read from (audit).
    pub source: SourcePosition,
    /// The classification made when it arrived; `None` when quarantined.
    pub classification: Option<Classification>,
}

/// A routing decision as applied to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRoute {
    /// The message whose classification led to it.
    pub message_id: i64,
    /// Unix seconds.
    pub decided_at: i64,
    /// The decision as the router made it, reasons and actions included.
    pub route: RouteDecision,
}

/// One entry of a ticket's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened; the detail's shape depends on it.
    pub kind: AuditKind,
    /// Who did it: `supportd` for the daemon, a staff login otherwise.
    pub actor: String,
    /// What exactly, as JSON (queue, rule, reason, old and new status, ...).
    pub detail: serde_json::Value,
}

/// The kinds of audit event. Stored as slugs; unknown slugs written by a newer
/// version are read back as [`AuditKind::Other`] rather than failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditKind {
    /// A message created the ticket. Detail: `message_id`, `from`, `source`.
    TicketCreated,
    /// The ticket was placed. Detail: `queue`, `rule`, `priority`, `first_response_due`.
    Routed,
    /// A reply was attached. Detail: `message_id`, `from`.
    MessageThreaded,
    /// Unparseable mail created the ticket. Detail: `reason`, `message_id`, `source`.
    Quarantined,
    /// The status changed. Detail: `from`, `to`, `cause` (`customer_reply`, `set_status`).
    StatusChanged,
    /// A mail was put in the outbox. Detail: `outbox_id`, `kind`, `recipient`, `message_id`.
    MailQueued,
    /// A mail was not sent, on purpose. Detail: `outbox_id`, `kind`, `recipient`, `reason`.
    MailSuppressed,
    /// The SMTP server accepted a mail. Detail: `outbox_id`, `kind`, `recipient`, `attempts`, `reply`.
    MailSent,
    /// A mail was given up. Detail: `outbox_id`, `kind`, `recipient`, `reason`.
    MailDead,
    /// A bounce or auto-reply to supportd's own mail was attached. Detail:
    /// `message_id`, `bounce`, `permanent`, `outbox_ids`, `suppressed_until`.
    AutomaticReplyAttached,
    /// Staff took or gave the ticket. Detail: `from`, `to` (logins, `null` for nobody).
    Assigned,
    /// Staff moved the ticket. Detail: `from`, `to` (queues), `reason`.
    Moved,
    /// Staff added an internal note. Detail: `note_id`, `length` (the text stays in the note).
    NoteAdded,
    /// The SLA sweep found the ticket unanswered past its first-response due
    /// time. Detail: `first_response_due`, `priority_from`, `priority_to`.
    SlaBreached,
    /// A kind written by a newer version.
    Other(String),
}

impl AuditKind {
    /// Every kind this version writes.
    pub const KNOWN: [AuditKind; 14] = [
        AuditKind::TicketCreated,
        AuditKind::Routed,
        AuditKind::MessageThreaded,
        AuditKind::Quarantined,
        AuditKind::StatusChanged,
        AuditKind::MailQueued,
        AuditKind::MailSuppressed,
        AuditKind::MailSent,
        AuditKind::MailDead,
        AuditKind::AutomaticReplyAttached,
        AuditKind::Assigned,
        AuditKind::Moved,
        AuditKind::NoteAdded,
        AuditKind::SlaBreached,
    ];

    pub fn slug(&self) -> &str {
        match self {
            AuditKind::TicketCreated => "ticket_created",
            AuditKind::Routed => "routed",
            AuditKind::MessageThreaded => "message_threaded",
            AuditKind::Quarantined => "quarantined",
            AuditKind::StatusChanged => "status_changed",
            AuditKind::MailQueued => "mail_queued",
            AuditKind::MailSuppressed => "mail_suppressed",
            AuditKind::MailSent => "mail_sent",
            AuditKind::MailDead => "mail_dead",
            AuditKind::AutomaticReplyAttached => "automatic_reply_attached",
            AuditKind::Assigned => "assigned",
            AuditKind::Moved => "moved",
            AuditKind::NoteAdded => "note_added",
            AuditKind::SlaBreached => "sla_breached",
            AuditKind::Other(slug) => slug,
        }
    }

    pub fn from_slug(slug: &str) -> AuditKind {
        AuditKind::KNOWN
            .iter()
            .find(|kind| kind.slug() == slug)
            .cloned()
            .unwrap_or_else(|| AuditKind::Other(slug.to_owned()))
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl Serialize for AuditKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.slug())
    }
}

/// How far intake has read one IMAP folder. Saved in the transaction of the batch
/// it covers, so it never runs ahead of what is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The mailbox (account) name from the configuration.
    pub mailbox: String,
    pub folder: String,
    pub uidvalidity: u32,
    /// Every message up to this UID is stored (or was skipped by the start option).
    pub last_uid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audit_kind_reads_back_as_itself_and_unknown_ones_as_other() {
        for kind in AuditKind::KNOWN {
            assert_eq!(AuditKind::from_slug(kind.slug()), kind);
        }
        assert_eq!(
            AuditKind::from_slug("merged_by_a_newer_version"),
            AuditKind::Other("merged_by_a_newer_version".to_owned())
        );
    }
}
