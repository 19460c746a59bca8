//! Rows as SQL returns them, and their decoding into domain types: shared by
//! both backends (the schemas give every column the same Rust type: BIGINT or
//! INTEGER as `i64`, TEXT as `String`, BOOLEAN or 0/1 as `bool`, JSON as text).

use std::collections::HashMap;

use sqlx::FromRow;
use supportd_core::{
    AccountRecord, Address, Attachment, Classification, Entities, MessageFlags, Priority,
    QueueName, RouteDecision, TicketRef,
};

use crate::codec::{self, DecodeError, json, slug, to_u64};
use crate::model::{
    AuditEvent, AuditKind, ImapUid, QueueSummary, SourcePosition, StoredMessage, StoredRoute,
    TicketDetail, TicketLabels, TicketSummary,
};
use crate::outbox::{OutboxKind, OutboxMail, OutboxStatus};

/// Priorities in the order `QueueSummary::open_by_priority` lists them.
pub(crate) const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];

/// The columns of a [`TicketRow`], from `tickets AS t`.
macro_rules! ticket_select {
    () => {
        "SELECT t.number, t.queue, t.status, t.priority, t.subject, t.requester_email, \
         t.requester_name, t.tier, t.category, t.in_scope, t.microsoft, t.confidence, \
         t.created_at, t.updated_at, t.first_response_due, \
         (SELECT COUNT(*) FROM messages AS c WHERE c.ticket_number = t.number) AS message_count \
         FROM tickets AS t"
    };
}
pub(crate) use ticket_select;

/// The columns of a [`MessageRow`], from `messages AS m` with its classification.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.message_id, m.message_id_synthesized, m.content_hash, m.in_reply_to, \
         m.message_references, m.from_email, m.from_name, m.reply_to, m.to_addresses, \
         m.cc_addresses, m.subject, m.sent_at, m.received_at, m.body_text, m.body_html, \
         m.new_text, m.forwarded_text, m.flags, m.warnings, m.size, m.quarantine_reason, \
         m.source_kind, m.source_mailbox, m.source_uidvalidity, m.source_uid, \
         c.tier, c.category, c.in_scope, c.microsoft, c.confidence, c.reasons, c.entities, \
         c.account \
         FROM messages AS m LEFT JOIN classifications AS c ON c.message_id = m.id"
    };
}
pub(crate) use message_select;

fn address(email: Option<String>, name: Option<String>) -> Option<Address> {
    email.map(|email| Address { name, email })
}

#[derive(Debug, FromRow)]
pub(crate) struct TicketRow {
    number: i64,
    queue: String,
    status: String,
    priority: String,
    subject: String,
    requester_email: Option<String>,
    requester_name: Option<String>,
    tier: Option<String>,
    category: Option<String>,
    in_scope: Option<bool>,
    microsoft: Option<bool>,
    confidence: Option<f64>,
    created_at: i64,
    updated_at: i64,
    first_response_due: i64,
    message_count: i64,
}

impl TicketRow {
    pub(crate) fn into_summary(self) -> Result<TicketSummary, DecodeError> {
        let labels = match (
            self.tier,
            self.category,
            self.in_scope,
            self.microsoft,
            self.confidence,
        ) {
            (Some(tier), Some(category), Some(in_scope), Some(microsoft), Some(confidence)) => {
                Some(TicketLabels {
                    tier: slug("tickets.tier", &tier)?,
                    category: slug("tickets.category", &category)?,
                    in_scope,
                    microsoft,
                    confidence: confidence as f32,
                })
            }
            (None, None, None, None, None) => None,
            _ => {
                return Err(DecodeError {
                    column: "tickets.tier",
                    reason: format!("ticket {} has only some of its labels", self.number),
                });
            }
        };
        Ok(TicketSummary {
            ticket_ref: ticket_ref("tickets.number", self.number)?,
            queue: queue_name("tickets.queue", self.queue)?,
            status: slug("tickets.status", &self.status)?,
            priority: slug("tickets.priority", &self.priority)?,
            subject: self.subject,
            requester: address(self.requester_email, self.requester_name),
            labels,
            created_at: self.created_at,
            updated_at: self.updated_at,
            first_response_due: self.first_response_due,
            message_count: to_u64(self.message_count),
        })
    }
}

fn ticket_ref(column: &'static str, number: i64) -> Result<TicketRef, DecodeError> {
    u64::try_from(number)
        .map(TicketRef::new)
        .map_err(|_| DecodeError {
            column,
            reason: format!("negative ticket number {number}"),
        })
}

fn queue_name(column: &'static str, queue: String) -> Result<QueueName, DecodeError> {
    QueueName::try_from(queue).map_err(|error| DecodeError {
        column,
        reason: error.to_string(),
    })
}

#[derive(Debug, FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    message_id: String,
    message_id_synthesized: bool,
    content_hash: String,
    in_reply_to: String,
    message_references: String,
    from_email: Option<String>,
    from_name: Option<String>,
    reply_to: String,
    to_addresses: String,
    cc_addresses: String,
    subject: String,
    sent_at: Option<i64>,
    received_at: i64,
    body_text: String,
    body_html: Option<String>,
    new_text: String,
    forwarded_text: String,
    flags: String,
    warnings: String,
    size: i64,
    quarantine_reason: Option<String>,
    source_kind: String,
    source_mailbox: String,
    source_uidvalidity: Option<i64>,
    source_uid: Option<i64>,
    tier: Option<String>,
    category: Option<String>,
    in_scope: Option<bool>,
    microsoft: Option<bool>,
    confidence: Option<f64>,
    reasons: Option<String>,
    entities: Option<String>,
    account: Option<String>,
}

impl MessageRow {
    fn into_message(self, attachments: Vec<Attachment>) -> Result<StoredMessage, DecodeError> {
        let classification = match (self.tier, self.category) {
            (Some(tier), Some(category)) => Some(Classification {
                tier: slug("classifications.tier", &tier)?,
                category: slug("classifications.category", &category)?,
                in_scope: self.in_scope.unwrap_or(false),
                microsoft: self.microsoft.unwrap_or(false),
                confidence: self.confidence.unwrap_or(0.0) as f32,
                reasons: json(
                    "classifications.reasons",
                    self.reasons.as_deref().unwrap_or("[]"),
                )?,
                entities: json::<Entities>(
                    "classifications.entities",
                    self.entities.as_deref().unwrap_or("{}"),
                )?,
                account: self
                    .account
                    .as_deref()
                    .map(|account| json::<AccountRecord>("classifications.account", account))
                    .transpose()?,
            }),
            _ => None,
        };
        let uid = match (self.source_uidvalidity, self.source_uid) {
            (Some(uidvalidity), Some(uid)) => Some(ImapUid {
                uidvalidity: u32::try_from(uidvalidity).map_err(|_| DecodeError {
                    column: "messages.source_uidvalidity",
                    reason: format!("{uidvalidity} is not a UIDVALIDITY"),
                })?,
                uid: u32::try_from(uid).map_err(|_| DecodeError {
                    column: "messages.source_uid",
                    reason: format!("{uid} is not a UID"),
                })?,
            }),
            _ => None,
        };
        Ok(StoredMessage {
            id: self.id,
            message_id: self.message_id,
            message_id_synthesized: self.message_id_synthesized,
            content_hash: self.content_hash,
            in_reply_to: json("messages.in_reply_to", &self.in_reply_to)?,
            references: json("messages.message_references", &self.message_references)?,
            from: address(self.from_email, self.from_name),
            reply_to: json("messages.reply_to", &self.reply_to)?,
            to: json("messages.to_addresses", &self.to_addresses)?,
            cc: json("messages.cc_addresses", &self.cc_addresses)?,
            subject: self.subject,
            sent_at: self.sent_at,
            received_at: self.received_at,
            body_text: self.body_text,
            body_html: self.body_html,
            new_text: self.new_text,
            forwarded_text: self.forwarded_text,
            attachments,
            flags: json::<MessageFlags>("messages.flags", &self.flags)?,
            warnings: json("messages.warnings", &self.warnings)?,
            size: to_u64(self.size),
            quarantine_reason: self.quarantine_reason,
            source: SourcePosition {
                kind: slug("messages.source_kind", &self.source_kind)?,
                mailbox: self.source_mailbox,
                uid,
            },
            classification,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct AttachmentRow {
    message_id: i64,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct RouteRow {
    message_id: i64,
    decided_at: i64,
    queue: String,
    priority: String,
    first_response_due: i64,
    rule: String,
    reasons: String,
    actions: String,
}

impl RouteRow {
    fn into_route(self) -> Result<StoredRoute, DecodeError> {
        Ok(StoredRoute {
            message_id: self.message_id,
            decided_at: self.decided_at,
            route: RouteDecision {
                queue: queue_name("route_decisions.queue", self.queue)?,
                priority: slug("route_decisions.priority", &self.priority)?,
                first_response_due: self.first_response_due,
                rule: self.rule,
                reasons: json("route_decisions.reasons", &self.reasons)?,
                actions: json("route_decisions.actions", &self.actions)?,
            },
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct AuditRow {
    at: i64,
    kind: String,
    actor: String,
    detail: String,
}

impl AuditRow {
    fn into_event(self) -> Result<AuditEvent, DecodeError> {
        Ok(AuditEvent {
            at: self.at,
            kind: AuditKind::from_slug(&self.kind),
            actor: self.actor,
            detail: json("audit_events.detail", &self.detail)?,
        })
    }
}

/// Assembles a ticket page from the rows of its parts.
pub(crate) fn ticket_detail(
    ticket: TicketRow,
    messages: Vec<MessageRow>,
    attachments: Vec<AttachmentRow>,
    routes: Vec<RouteRow>,
    audit: Vec<AuditRow>,
) -> Result<TicketDetail, DecodeError> {
    let mut attachments_by_message: HashMap<i64, Vec<Attachment>> = HashMap::new();
    for row in attachments {
        attachments_by_message
            .entry(row.message_id)
            .or_default()
            .push(Attachment {
                filename: row.filename,
                content_type: row.content_type,
                size: to_u64(row.size),
                sha256: row.sha256,
            });
    }
    let messages = messages
        .into_iter()
        .map(|row| {
            let attachments = attachments_by_message.remove(&row.id).unwrap_or_default();
            row.into_message(attachments)
        })
        .collect::<Result<_, _>>()?;
    Ok(TicketDetail {
        ticket: ticket.into_summary()?,
        messages,
        routes: routes
            .into_iter()
            .map(RouteRow::into_route)
            .collect::<Result<_, _>>()?,
        audit_events: audit
            .into_iter()
            .map(AuditRow::into_event)
            .collect::<Result<_, _>>()?,
    })
}

#[derive(Debug, FromRow)]
pub(crate) struct QueueSummaryRow {
    queue: String,
    open: i64,
    pending_customer: i64,
    oldest_open_created_at: Option<i64>,
    overdue: i64,
    open_low: i64,
    open_normal: i64,
    open_high: i64,
    open_urgent: i64,
}

impl QueueSummaryRow {
    pub(crate) fn into_summary(self) -> Result<QueueSummary, DecodeError> {
        let counts = [
            self.open_low,
            self.open_normal,
            self.open_high,
            self.open_urgent,
        ];
        Ok(QueueSummary {
            queue: queue_name("tickets.queue", self.queue)?,
            open: to_u64(self.open),
            pending_customer: to_u64(self.pending_customer),
            oldest_open_created_at: self.oldest_open_created_at,
            overdue: to_u64(self.overdue),
            open_by_priority: PRIORITIES.into_iter().zip(counts.map(to_u64)).collect(),
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct AccountRow {
    customer: String,
    domains: String,
    contacts: String,
    tenant_id: Option<String>,
    subscription_id: Option<String>,
    relationship: String,
    managed_os: bool,
    is_default: bool,
    source: String,
}

impl AccountRow {
    pub(crate) fn into_record(self) -> Result<AccountRecord, DecodeError> {
        Ok(AccountRecord {
            customer: self.customer,
            domains: json("accounts.domains", &self.domains)?,
            contacts: json("accounts.contacts", &self.contacts)?,
            tenant_id: self.tenant_id,
            subscription_id: self.subscription_id,
            relationship: slug("accounts.relationship", &self.relationship)?,
            managed_os: self.managed_os,
            is_default: self.is_default,
            source: self.source,
        })
    }
}

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
