//! The rows a batch writes, gathered per table as columns in the batch's
//! order: the decisions of [`crate::plan`] turned into tickets, messages,
//! attachments, classifications, routing decisions, outbox rows,
//! suppressions and audit events. Both backends write the same gathered rows,
//! each with a few statements per batch (PostgreSQL: `INSERT … SELECT FROM
//! UNNEST`; SQLite: multi-row `INSERT … VALUES`), so what a batch stores is
//! decided once, here.

use std::collections::BTreeMap;

use supportd_core::{Classification, Priority, QueueName, RouteDecision, TicketStatus};

use crate::codec::{self, to_i64, to_json};
use crate::model::{AuditKind, IngestContent, IngestItem, IngestOutcome};
use crate::outbox::{OutboxPolicy, OutboxStatus, PlannedMail, outbox_message_id};
use crate::plan::{self, Known, Step};
use crate::write::{
    NewMessage, SYSTEM_ACTOR, automatic_reply_detail, created_detail, named_outbox_rows,
    outbox_written_event, quarantined_detail, routed_detail, status_change_detail, threaded_detail,
    ticket_ref,
};

/// Every row a batch writes, as columns, in the batch's order.
#[derive(Default)]
pub(crate) struct BatchRows {
    pub(crate) tickets: TicketColumns,
    pub(crate) messages: MessageColumns,
    pub(crate) attachments: AttachmentColumns,
    pub(crate) classifications: ClassificationColumns,
    pub(crate) routes: RouteColumns,
    /// Threaded tickets: the latest `updated_at`, and whether a reply reopens it.
    pub(crate) touched: BTreeMap<i64, (i64, bool)>,
    pub(crate) outbox: OutboxColumns,
    /// Suppressions by recipient key: (until, reason, created_at); the latest
    /// reason and the longest suppression win, as upserts in order would.
    pub(crate) suppressions: BTreeMap<String, (i64, String, i64)>,
    pub(crate) audit: AuditColumns,
}

impl BatchRows {
    /// Adds the rows of one planned item; its outcome.
    pub(crate) fn add_step(
        &mut self,
        item: &IngestItem,
        step: Step,
    ) -> Result<IngestOutcome, sqlx::Error> {
        let at = item.received_at;
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
                self.tickets
                    .push_routed(ticket, at, &new_message, classification, route);
                self.messages
                    .push(ticket, message_row, item, &new_message)?;
                self.attachments.push(message_row, &new_message);
                self.classifications.push(message_row, classification)?;
                self.routes.push(ticket, message_row, at, route)?;
                self.audit.push(
                    ticket,
                    at,
                    &AuditKind::TicketCreated,
                    SYSTEM_ACTOR,
                    &created_detail(item, &new_message),
                )?;
                self.audit.push(
                    ticket,
                    at,
                    &AuditKind::Routed,
                    SYSTEM_ACTOR,
                    &routed_detail(route),
                )?;
                Ok(IngestOutcome::Created(ticket_ref(ticket)))
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
                self.messages
                    .push(ticket, message_row, item, &new_message)?;
                self.attachments.push(message_row, &new_message);
                self.classifications.push(message_row, classification)?;
                let touched = self.touched.entry(ticket).or_insert((at, false));
                touched.0 = touched.0.max(at);
                touched.1 |= reopen_from.is_some();
                self.audit.push(
                    ticket,
                    at,
                    &AuditKind::MessageThreaded,
                    SYSTEM_ACTOR,
                    &threaded_detail(&new_message),
                )?;
                if let Some(status) = reopen_from {
                    self.audit.push(
                        ticket,
                        at,
                        &AuditKind::StatusChanged,
                        SYSTEM_ACTOR,
                        &status_change_detail(status, TicketStatus::Open, "customer_reply"),
                    )?;
                }
                Ok(IngestOutcome::Threaded(ticket_ref(ticket)))
            }
            (
                IngestContent::Quarantined { due, .. },
                Step::Quarantine {
                    ticket,
                    message: message_row,
                },
            ) => {
                let Some(new_message) = NewMessage::quarantined(item) else {
                    return Err(plan_mismatch(step));
                };
                self.tickets
                    .push_quarantined(ticket, at, *due, &new_message);
                self.messages
                    .push(ticket, message_row, item, &new_message)?;
                self.audit.push(
                    ticket,
                    at,
                    &AuditKind::Quarantined,
                    SYSTEM_ACTOR,
                    &quarantined_detail(item, &new_message),
                )?;
                Ok(IngestOutcome::Quarantined(ticket_ref(ticket)))
            }
            (IngestContent::Parsed { .. }, Step::Quarantine { .. })
            | (IngestContent::Quarantined { .. }, Step::Create { .. } | Step::Thread { .. }) => {
                Err(plan_mismatch(step))
            }
        }
    }
    /// Adds an outbox row with its fixed Message-ID and its audit event.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_mail(
        &mut self,
        id: i64,
        ticket: i64,
        planned: &PlannedMail,
        source_message: Option<i64>,
        body: Option<&str>,
        actor: &str,
        policy: &OutboxPolicy,
        now: i64,
    ) -> Result<String, sqlx::Error> {
        let message_id = outbox_message_id(id, &policy.message_id_domain);
        self.outbox.push(
            id,
            ticket,
            planned,
            &message_id,
            source_message,
            body,
            actor,
            now,
        )?;
        let (kind, detail) = outbox_written_event(id, planned, &message_id);
        self.audit.push(ticket, now, &kind, actor, &detail)?;
        Ok(message_id)
    }
    /// Records a bounce or auto-reply to supportd's own mail on its ticket, and
    /// after a permanent bounce suppresses automatic mail to the addresses it names.
    pub(crate) fn add_automatic_reply(
        &mut self,
        ticket: i64,
        message_id: &str,
        bounce: bool,
        item: &IngestItem,
        known: &Known,
        policy: &OutboxPolicy,
    ) -> Result<(), sqlx::Error> {
        let now = item.received_at;
        let references = plan::item_loop_references(item);
        let named = named_outbox_rows(&references.outbox_message_ids, &known.outbox_messages);
        let permanent = bounce && references.permanent_failure;
        let until = now.saturating_add(policy.bounce_suppression_s);
        let mut suppressed = Vec::new();
        if permanent {
            for (outbox_id, recipient_key) in &named {
                let entry = self.suppressions.entry(recipient_key.clone()).or_insert((
                    until,
                    String::new(),
                    now,
                ));
                entry.0 = entry.0.max(until);
                entry.1 = format!("permanent bounce of outbox row {outbox_id}");
                suppressed.push(recipient_key.clone());
            }
        }
        let outbox_ids: Vec<i64> = named.iter().map(|(id, _)| *id).collect();
        self.audit.push(
            ticket,
            now,
            &AuditKind::AutomaticReplyAttached,
            SYSTEM_ACTOR,
            &automatic_reply_detail(
                message_id,
                bounce,
                permanent,
                &outbox_ids,
                &suppressed,
                until,
            ),
        )
    }
}

pub(crate) fn plan_mismatch(step: Step) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "ingest plan mismatch: {step:?} for an item of the other kind"
    ))
}

#[derive(Default)]
pub(crate) struct TicketColumns {
    pub(crate) number: Vec<i64>,
    pub(crate) queue: Vec<String>,
    pub(crate) priority: Vec<String>,
    pub(crate) subject: Vec<String>,
    pub(crate) requester_email: Vec<Option<String>>,
    pub(crate) requester_name: Vec<Option<String>>,
    pub(crate) tier: Vec<Option<String>>,
    pub(crate) category: Vec<Option<String>>,
    pub(crate) in_scope: Vec<Option<bool>>,
    pub(crate) microsoft: Vec<Option<bool>>,
    pub(crate) confidence: Vec<Option<f64>>,
    pub(crate) created_at: Vec<i64>,
    pub(crate) first_response_due: Vec<i64>,
}

impl TicketColumns {
    /// A new ticket from its first message, labelled by its classification
    /// and placed by its routing decision.
    pub(crate) fn push_routed(
        &mut self,
        number: i64,
        at: i64,
        message: &NewMessage<'_>,
        classification: &Classification,
        route: &RouteDecision,
    ) {
        self.push(
            number,
            at,
            route.queue.as_str(),
            route.priority,
            route.first_response_due,
            message,
        );
        self.tier.push(Some(classification.tier.slug().to_owned()));
        self.category
            .push(Some(classification.category.slug().to_owned()));
        self.in_scope.push(Some(classification.in_scope));
        self.microsoft.push(Some(classification.microsoft));
        self.confidence
            .push(Some(codec::confidence(classification.confidence)));
    }
    /// A quarantine ticket: no labels.
    pub(crate) fn push_quarantined(
        &mut self,
        number: i64,
        at: i64,
        due: i64,
        message: &NewMessage<'_>,
    ) {
        self.push(
            number,
            at,
            QueueName::QUARANTINE,
            Priority::Normal,
            due,
            message,
        );
        self.tier.push(None);
        self.category.push(None);
        self.in_scope.push(None);
        self.microsoft.push(None);
        self.confidence.push(None);
    }
    pub(crate) fn push(
        &mut self,
        number: i64,
        at: i64,
        queue: &str,
        priority: Priority,
        due: i64,
        message: &NewMessage<'_>,
    ) {
        self.number.push(number);
        self.queue.push(queue.to_owned());
        self.priority.push(priority.slug().to_owned());
        self.subject.push(message.subject.to_owned());
        self.requester_email
            .push(message.from.map(|address| address.email.clone()));
        self.requester_name
            .push(message.from.and_then(|address| address.name.clone()));
        self.created_at.push(at);
        self.first_response_due.push(due);
    }
}

#[derive(Default)]
pub(crate) struct MessageColumns {
    pub(crate) id: Vec<i64>,
    pub(crate) ticket_number: Vec<i64>,
    pub(crate) message_id: Vec<String>,
    pub(crate) message_id_synthesized: Vec<bool>,
    pub(crate) content_hash: Vec<String>,
    pub(crate) in_reply_to: Vec<String>,
    pub(crate) references: Vec<String>,
    pub(crate) from_email: Vec<Option<String>>,
    pub(crate) from_name: Vec<Option<String>>,
    pub(crate) reply_to: Vec<String>,
    pub(crate) to: Vec<String>,
    pub(crate) cc: Vec<String>,
    pub(crate) subject: Vec<String>,
    pub(crate) sent_at: Vec<Option<i64>>,
    pub(crate) received_at: Vec<i64>,
    pub(crate) body_text: Vec<String>,
    pub(crate) body_html: Vec<Option<String>>,
    pub(crate) new_text: Vec<String>,
    pub(crate) forwarded_text: Vec<String>,
    pub(crate) flags: Vec<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) size: Vec<i64>,
    pub(crate) quarantine_reason: Vec<Option<String>>,
    pub(crate) source_kind: Vec<String>,
    pub(crate) source_mailbox: Vec<String>,
    pub(crate) source_uidvalidity: Vec<Option<i64>>,
    pub(crate) source_uid: Vec<Option<i64>>,
    pub(crate) raw: Vec<Vec<u8>>,
}

impl MessageColumns {
    pub(crate) fn push(
        &mut self,
        ticket: i64,
        message_row: i64,
        item: &IngestItem,
        message: &NewMessage<'_>,
    ) -> Result<(), sqlx::Error> {
        let uid = item.source.uid;
        self.id.push(message_row);
        self.ticket_number.push(ticket);
        self.message_id.push(message.message_id.to_owned());
        self.message_id_synthesized
            .push(message.message_id_synthesized);
        self.content_hash.push(message.content_hash.to_owned());
        self.in_reply_to.push(to_json(message.in_reply_to)?);
        self.references.push(to_json(message.references)?);
        self.from_email
            .push(message.from.map(|address| address.email.clone()));
        self.from_name
            .push(message.from.and_then(|address| address.name.clone()));
        self.reply_to.push(to_json(message.reply_to)?);
        self.to.push(to_json(message.to)?);
        self.cc.push(to_json(message.cc)?);
        self.subject.push(message.subject.to_owned());
        self.sent_at.push(message.sent_at);
        self.received_at.push(item.received_at);
        self.body_text.push(message.body_text.to_owned());
        self.body_html.push(message.body_html.map(str::to_owned));
        self.new_text.push(message.new_text.to_owned());
        self.forwarded_text.push(message.forwarded_text.to_owned());
        self.flags.push(to_json(message.flags)?);
        self.warnings.push(to_json(message.warnings)?);
        self.size.push(to_i64(message.size));
        self.quarantine_reason
            .push(message.quarantine_reason.map(str::to_owned));
        self.source_kind.push(item.source.kind.slug().to_owned());
        self.source_mailbox.push(item.source.mailbox.clone());
        self.source_uidvalidity
            .push(uid.map(|uid| i64::from(uid.uidvalidity)));
        self.source_uid.push(uid.map(|uid| i64::from(uid.uid)));
        self.raw.push(item.raw.clone());
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct AttachmentColumns {
    pub(crate) message_id: Vec<i64>,
    pub(crate) position: Vec<i64>,
    pub(crate) filename: Vec<String>,
    pub(crate) content_type: Vec<String>,
    pub(crate) size: Vec<i64>,
    pub(crate) sha256: Vec<String>,
}

impl AttachmentColumns {
    pub(crate) fn push(&mut self, message_row: i64, message: &NewMessage<'_>) {
        for (position, attachment) in message.attachments.iter().enumerate() {
            self.message_id.push(message_row);
            self.position.push(to_i64(position as u64));
            self.filename.push(attachment.filename.clone());
            self.content_type.push(attachment.content_type.clone());
            self.size.push(to_i64(attachment.size));
            self.sha256.push(attachment.sha256.clone());
        }
    }
}

#[derive(Default)]
pub(crate) struct ClassificationColumns {
    pub(crate) message_id: Vec<i64>,
    pub(crate) tier: Vec<String>,
    pub(crate) category: Vec<String>,
    pub(crate) in_scope: Vec<bool>,
    pub(crate) microsoft: Vec<bool>,
    pub(crate) confidence: Vec<f64>,
    pub(crate) reasons: Vec<String>,
    pub(crate) entities: Vec<String>,
    pub(crate) account: Vec<Option<String>>,
}

impl ClassificationColumns {
    pub(crate) fn push(
        &mut self,
        message_row: i64,
        classification: &Classification,
    ) -> Result<(), sqlx::Error> {
        self.message_id.push(message_row);
        self.tier.push(classification.tier.slug().to_owned());
        self.category
            .push(classification.category.slug().to_owned());
        self.in_scope.push(classification.in_scope);
        self.microsoft.push(classification.microsoft);
        self.confidence
            .push(codec::confidence(classification.confidence));
        self.reasons.push(to_json(&classification.reasons)?);
        self.entities.push(to_json(&classification.entities)?);
        self.account
            .push(classification.account.as_ref().map(to_json).transpose()?);
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct RouteColumns {
    pub(crate) ticket_number: Vec<i64>,
    pub(crate) message_id: Vec<i64>,
    pub(crate) decided_at: Vec<i64>,
    pub(crate) queue: Vec<String>,
    pub(crate) priority: Vec<String>,
    pub(crate) first_response_due: Vec<i64>,
    pub(crate) rule: Vec<String>,
    pub(crate) reasons: Vec<String>,
    pub(crate) actions: Vec<String>,
}

impl RouteColumns {
    pub(crate) fn push(
        &mut self,
        ticket: i64,
        message_row: i64,
        decided_at: i64,
        route: &RouteDecision,
    ) -> Result<(), sqlx::Error> {
        self.ticket_number.push(ticket);
        self.message_id.push(message_row);
        self.decided_at.push(decided_at);
        self.queue.push(route.queue.as_str().to_owned());
        self.priority.push(route.priority.slug().to_owned());
        self.first_response_due.push(route.first_response_due);
        self.rule.push(route.rule.clone());
        self.reasons.push(to_json(&route.reasons)?);
        self.actions.push(to_json(&route.actions)?);
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct OutboxColumns {
    pub(crate) id: Vec<i64>,
    pub(crate) ticket_number: Vec<i64>,
    pub(crate) kind: Vec<String>,
    pub(crate) status: Vec<String>,
    pub(crate) recipient: Vec<String>,
    pub(crate) recipient_key: Vec<String>,
    pub(crate) message_id: Vec<String>,
    pub(crate) source_message: Vec<Option<i64>>,
    pub(crate) in_reply_to: Vec<Option<String>>,
    pub(crate) references: Vec<String>,
    pub(crate) body: Vec<Option<String>>,
    pub(crate) actor: Vec<String>,
    pub(crate) reason: Vec<Option<String>>,
    pub(crate) now: Vec<i64>,
}

impl OutboxColumns {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        id: i64,
        ticket: i64,
        planned: &PlannedMail,
        message_id: &str,
        source_message: Option<i64>,
        body: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let status = if planned.suppressed.is_some() {
            OutboxStatus::Suppressed
        } else {
            OutboxStatus::Queued
        };
        self.id.push(id);
        self.ticket_number.push(ticket);
        self.kind.push(planned.kind.slug().to_owned());
        self.status.push(status.slug().to_owned());
        self.recipient.push(planned.recipient.clone());
        self.recipient_key.push(planned.recipient_key.clone());
        self.message_id.push(message_id.to_owned());
        self.source_message.push(source_message);
        self.in_reply_to.push(planned.in_reply_to.clone());
        self.references.push(to_json(&planned.references)?);
        self.body.push(body.map(str::to_owned));
        self.actor.push(actor.to_owned());
        self.reason.push(planned.suppressed.clone());
        self.now.push(now);
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct AuditColumns {
    pub(crate) ticket_number: Vec<i64>,
    pub(crate) at: Vec<i64>,
    pub(crate) kind: Vec<String>,
    pub(crate) actor: Vec<String>,
    pub(crate) detail: Vec<String>,
}

impl AuditColumns {
    pub(crate) fn push(
        &mut self,
        ticket: i64,
        at: i64,
        kind: &AuditKind,
        actor: &str,
        detail: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        self.ticket_number.push(ticket);
        self.at.push(at);
        self.kind.push(kind.slug().to_owned());
        self.actor.push(actor.to_owned());
        self.detail.push(to_json(detail)?);
        Ok(())
    }
}
