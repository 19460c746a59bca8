//! Writing a batch, PostgreSQL flavour: the same decisions as SQLite
//! ([`crate::plan`], [`crate::outbox::plan_mails`], [`crate::write`]), then
//! every row of the batch gathered into columns and written with one
//! `INSERT … SELECT FROM UNNEST(…)` per table. Rows keep the batch's order
//! (`WITH ORDINALITY … ORDER BY`), so audit events read back in the order
//! SQLite writes them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Postgres, Transaction};
use supportd_core::{Address, Classification, Priority, QueueName, RouteDecision, TicketStatus};

use crate::codec::{self, to_i64, to_json};
use crate::lease::Fence;
use crate::model::{AuditKind, Checkpoint, IngestContent, IngestItem, IngestOutcome};
use crate::outbox::{OutboxPolicy, OutboxStatus, PlannedMail, outbox_message_id, plan_mails};
use crate::plan::{self, IdAllocator, Known, LookupKeys, Step};
use crate::write::{
    KnownRows, NewMessage, SYSTEM_ACTOR, automatic_reply_detail, created_detail,
    created_recipients, named_outbox_rows, outbox_written_event, quarantined_detail, routed_detail,
    status_change_detail, threaded_detail, ticket_ref,
};

/// One attempt at a batch, in one transaction; `None` when `fence` names a
/// lease its holder no longer holds (nothing written).
pub(super) async fn ingest_once(
    pool: &PgPool,
    policy: &OutboxPolicy,
    items: &[IngestItem],
    checkpoint: Option<&Checkpoint>,
    fence: Option<&Fence>,
) -> Result<Option<Vec<IngestOutcome>>, sqlx::Error> {
    let items = &without_nul(items)[..];
    let mut transaction = pool.begin().await?;
    if let Some(fence) = fence {
        // FOR SHARE holds the lease row until the commit: a takeover (an
        // UPDATE of that row) waits for this batch, and one that came first
        // makes this check fail.
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 \
             AND expires_at_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
             FOR SHARE",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .fetch_optional(&mut *transaction)
        .await?;
        if held.is_none() {
            return Ok(None);
        }
    }
    let keys = plan::lookup_keys(items);
    let mut known = known(&mut transaction, &keys).await?;
    let (tickets, messages) = plan::count_new_ids(items, &known);
    let ticket_numbers = reserve(&mut transaction, "tickets_number_seq", tickets).await?;
    let message_ids = reserve(&mut transaction, "messages_id_seq", messages).await?;
    let mut ids = IdAllocator::reserved(ticket_numbers, message_ids);
    let steps = plan::plan_batch(items, &mut known, &mut ids);
    if ids.missing() > 0 {
        return Err(sqlx::Error::Protocol(format!(
            "ingest plan needed {} ids more than were reserved",
            ids.missing()
        )));
    }

    let now = items.first().map_or(0, |item| item.received_at);
    let recipient_keys = created_recipients(items, &steps);
    let mut facts = super::outbox::recipient_facts(
        &mut transaction,
        &recipient_keys,
        now.saturating_sub(policy.acknowledgment_window_s),
        now,
    )
    .await?;
    let mails: Vec<Vec<PlannedMail>> = items
        .iter()
        .zip(&steps)
        .map(|(item, step)| match (&item.content, step) {
            (IngestContent::Parsed { message, route, .. }, Step::Create { .. }) => {
                plan_mails(message, route, policy, item.received_at, &mut facts)
            }
            _ => Vec::new(),
        })
        .collect();
    let outbox_ids = reserve(
        &mut transaction,
        "outbox_id_seq",
        mails.iter().map(Vec::len).sum(),
    )
    .await?;

    let mut batch = BatchRows::default();
    let mut outbox_ids = outbox_ids.into_iter();
    let mut outcomes = Vec::with_capacity(items.len());
    for ((item, step), mails) in items.iter().zip(steps).zip(&mails) {
        outcomes.push(batch.add_step(item, step)?);
        if let Step::Create {
            ticket,
            message: message_row,
        } = step
        {
            for planned in mails {
                let Some(id) = outbox_ids.next() else {
                    return Err(sqlx::Error::Protocol(
                        "fewer outbox ids reserved than mails planned".to_owned(),
                    ));
                };
                batch.add_mail(
                    id,
                    ticket,
                    planned,
                    Some(message_row),
                    None,
                    SYSTEM_ACTOR,
                    policy,
                    item.received_at,
                )?;
            }
        }
        if let (IngestContent::Parsed { message, .. }, Step::Thread { ticket, .. }) =
            (&item.content, step)
            && plan::is_automatic(message)
        {
            batch.add_automatic_reply(
                ticket,
                &message.message_id,
                message.flags.bounce,
                item,
                &known,
                policy,
            )?;
        }
    }
    batch.write(&mut transaction).await?;
    if let Some(checkpoint) = checkpoint {
        write_checkpoint(
            &mut transaction,
            checkpoint,
            items
                .first()
                .map_or_else(crate::unix_now, |item| item.received_at),
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(Some(outcomes))
}

/// PostgreSQL text cannot hold U+0000, which mail may carry (a NUL in a
/// body or a header). Such characters become U+FFFD in every text the
/// store keeps or looks up, before planning, so lookups and writes agree;
/// the raw bytes (BYTEA) keep the mail exactly as received. Items without
/// NUL are not copied.
pub(super) fn without_nul(items: &[IngestItem]) -> Cow<'_, [IngestItem]> {
    if !items.iter().any(item_has_nul) {
        return Cow::Borrowed(items);
    }
    Cow::Owned(
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                if item_has_nul(&item) {
                    clean_item(&mut item);
                }
                item
            })
            .collect(),
    )
}

fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

fn clean(text: &mut String) {
    if has_nul(text) {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

fn address_has_nul(address: &Address) -> bool {
    has_nul(&address.email) || address.name.as_deref().is_some_and(has_nul)
}

fn clean_address(address: &mut Address) {
    clean(&mut address.email);
    if let Some(name) = &mut address.name {
        clean(name);
    }
}

fn item_has_nul(item: &IngestItem) -> bool {
    has_nul(&item.source.mailbox)
        || match &item.content {
            IngestContent::Parsed { message, route, .. } => {
                [
                    &message.message_id,
                    &message.content_hash,
                    &message.subject,
                    &message.body_text,
                    &message.new_text,
                    &message.forwarded_text,
                    &route.rule,
                ]
                .into_iter()
                .any(|text| has_nul(text))
                    || message.body_html.as_deref().is_some_and(has_nul)
                    || message
                        .in_reply_to
                        .iter()
                        .chain(&message.references)
                        .any(|id| has_nul(id))
                    || message
                        .from
                        .iter()
                        .chain(&message.reply_to)
                        .chain(&message.to)
                        .chain(&message.cc)
                        .any(address_has_nul)
                    || message.attachments.iter().any(|attachment| {
                        has_nul(&attachment.filename)
                            || has_nul(&attachment.content_type)
                            || has_nul(&attachment.sha256)
                    })
            }
            IngestContent::Quarantined {
                quarantine_reason,
                message_id,
                content_hash,
                subject,
                from,
                ..
            } => {
                [quarantine_reason, message_id, content_hash, subject]
                    .into_iter()
                    .any(|text| has_nul(text))
                    || from.as_ref().is_some_and(address_has_nul)
            }
        }
}

fn clean_item(item: &mut IngestItem) {
    clean(&mut item.source.mailbox);
    match &mut item.content {
        IngestContent::Parsed { message, route, .. } => {
            for text in [
                &mut message.message_id,
                &mut message.content_hash,
                &mut message.subject,
                &mut message.body_text,
                &mut message.new_text,
                &mut message.forwarded_text,
                &mut route.rule,
            ] {
                clean(text);
            }
            if let Some(html) = &mut message.body_html {
                clean(html);
            }
            for id in message
                .in_reply_to
                .iter_mut()
                .chain(&mut message.references)
            {
                clean(id);
            }
            for address in message
                .from
                .iter_mut()
                .chain(&mut message.reply_to)
                .chain(&mut message.to)
                .chain(&mut message.cc)
            {
                clean_address(address);
            }
            for attachment in &mut message.attachments {
                clean(&mut attachment.filename);
                clean(&mut attachment.content_type);
                clean(&mut attachment.sha256);
            }
        }
        IngestContent::Quarantined {
            quarantine_reason,
            message_id,
            content_hash,
            subject,
            from,
            ..
        } => {
            for text in [quarantine_reason, message_id, content_hash, subject] {
                clean(text);
            }
            if let Some(address) = from {
                clean_address(address);
            }
        }
    }
}

/// Draws `count` values of `sequence`, ascending.
async fn reserve(
    connection: &mut PgConnection,
    sequence: &str,
    count: usize,
) -> Result<Vec<i64>, sqlx::Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval($1::regclass) FROM generate_series(1, $2)")
            .bind(sequence)
            .bind(to_i64(count as u64))
            .fetch_all(&mut *connection)
            .await?;
    ids.sort_unstable();
    Ok(ids)
}

/// What the database holds for a batch's keys: one query per kind of key.
async fn known(connection: &mut PgConnection, keys: &LookupKeys) -> Result<Known, sqlx::Error> {
    let mut rows = KnownRows::default();
    if !keys.message_keys.is_empty() {
        let (message_ids, hashes): (Vec<&str>, Vec<&str>) = keys
            .message_keys
            .iter()
            .map(|(id, hash)| (id.as_str(), hash.as_str()))
            .unzip();
        rows.message_keys = sqlx::query_as(
            "SELECT m.message_id, m.content_hash, m.ticket_number \
             FROM UNNEST($1::text[], $2::text[]) AS k (message_id, content_hash) \
             JOIN messages AS m ON m.message_id = k.message_id AND m.content_hash = k.content_hash",
        )
        .bind(message_ids)
        .bind(hashes)
        .fetch_all(&mut *connection)
        .await?;
    }
    if !keys.positions.is_empty() {
        let mailboxes: Vec<&str> = keys.positions.iter().map(|p| p.0.as_str()).collect();
        let uidvalidities: Vec<i64> = keys.positions.iter().map(|p| i64::from(p.1)).collect();
        let uids: Vec<i64> = keys.positions.iter().map(|p| i64::from(p.2)).collect();
        rows.positions = sqlx::query_as(
            "SELECT m.source_mailbox, m.source_uidvalidity, m.source_uid, m.ticket_number \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS k (mailbox, uidvalidity, uid) \
             JOIN messages AS m ON m.source_mailbox = k.mailbox \
             AND m.source_uidvalidity = k.uidvalidity AND m.source_uid = k.uid",
        )
        .bind(mailboxes)
        .bind(uidvalidities)
        .bind(uids)
        .fetch_all(&mut *connection)
        .await?;
    }
    if !keys.thread_ids.is_empty() {
        // The earliest stored message with each id decides its ticket.
        rows.thread_ids = sqlx::query_as(
            "SELECT k.id, t.number, t.status \
             FROM UNNEST($1::text[]) AS k (id) \
             JOIN LATERAL (SELECT f.ticket_number FROM messages AS f \
             WHERE f.message_id = k.id ORDER BY f.id LIMIT 1) AS m ON TRUE \
             JOIN tickets AS t ON t.number = m.ticket_number",
        )
        .bind(&keys.thread_ids)
        .fetch_all(&mut *connection)
        .await?;
        // Replies to supportd's own mail name an outbox Message-ID.
        rows.outbox_messages = sqlx::query_as(
            "SELECT o.message_id, t.number, t.status, o.id, o.recipient_key \
             FROM outbox AS o JOIN tickets AS t ON t.number = o.ticket_number \
             WHERE o.message_id = ANY($1)",
        )
        .bind(&keys.thread_ids)
        .fetch_all(&mut *connection)
        .await?;
    }
    if !keys.tagged_tickets.is_empty() {
        rows.tagged_tickets = sqlx::query_as(
            "SELECT number, status, requester_email FROM tickets WHERE number = ANY($1)",
        )
        .bind(&keys.tagged_tickets)
        .fetch_all(&mut *connection)
        .await?;
    }
    rows.into_known()
}

/// Inserts or moves the checkpoint of one folder, inside the batch's transaction.
async fn write_checkpoint(
    connection: &mut PgConnection,
    checkpoint: &Checkpoint,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mailbox_checkpoints (mailbox, folder, uidvalidity, last_uid, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (mailbox, folder) DO UPDATE SET \
         uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, \
         updated_at = excluded.updated_at",
    )
    .bind(&checkpoint.mailbox)
    .bind(&checkpoint.folder)
    .bind(i64::from(checkpoint.uidvalidity))
    .bind(i64::from(checkpoint.last_uid))
    .bind(at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets a ticket's status by hand and records the change.
pub(super) async fn change_status(
    transaction: &mut Transaction<'_, Postgres>,
    number: i64,
    from: TicketStatus,
    to: TicketStatus,
    actor: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE number = $3")
        .bind(to.slug())
        .bind(at)
        .bind(number)
        .execute(&mut **transaction)
        .await?;
    let detail = status_change_detail(from, to, "staff");
    super::outbox::audit(
        &mut *transaction,
        number,
        at,
        AuditKind::StatusChanged,
        actor,
        &detail,
    )
    .await
}

/// Every row a batch writes, as columns, in the batch's order.
#[derive(Default)]
struct BatchRows {
    tickets: TicketColumns,
    messages: MessageColumns,
    attachments: AttachmentColumns,
    classifications: ClassificationColumns,
    routes: RouteColumns,
    /// Threaded tickets: the latest `updated_at`, and whether a reply reopens it.
    touched: BTreeMap<i64, (i64, bool)>,
    outbox: OutboxColumns,
    /// Suppressions by recipient key: (until, reason, created_at); the latest
    /// reason and the longest suppression win, as upserts in order would.
    suppressions: BTreeMap<String, (i64, String, i64)>,
    audit: AuditColumns,
}

impl BatchRows {
    /// Adds the rows of one planned item; its outcome.
    fn add_step(&mut self, item: &IngestItem, step: Step) -> Result<IngestOutcome, sqlx::Error> {
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
    fn add_mail(
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
    fn add_automatic_reply(
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

    /// Writes every gathered row: parents before children, audit events last.
    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.tickets.write(&mut *connection).await?;
        self.messages.write(&mut *connection).await?;
        self.attachments.write(&mut *connection).await?;
        self.classifications.write(&mut *connection).await?;
        self.routes.write(&mut *connection).await?;
        if !self.touched.is_empty() {
            let mut numbers = Vec::new();
            let mut updated_at = Vec::new();
            let mut reopen = Vec::new();
            for (number, (at, reopens)) in self.touched {
                numbers.push(number);
                updated_at.push(at);
                reopen.push(reopens);
            }
            sqlx::query(
                "UPDATE tickets AS t SET updated_at = u.updated_at, \
                 status = CASE WHEN u.reopen THEN $4 ELSE t.status END \
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::boolean[]) AS u (number, updated_at, reopen) \
                 WHERE t.number = u.number",
            )
            .bind(numbers)
            .bind(updated_at)
            .bind(reopen)
            .bind(TicketStatus::Open.slug())
            .execute(&mut *connection)
            .await?;
        }
        self.outbox.write(&mut *connection).await?;
        if !self.suppressions.is_empty() {
            let mut keys = Vec::new();
            let mut until = Vec::new();
            let mut reasons = Vec::new();
            let mut created_at = Vec::new();
            for (key, (end, reason, at)) in self.suppressions {
                keys.push(key);
                until.push(end);
                reasons.push(reason);
                created_at.push(at);
            }
            sqlx::query(
                "INSERT INTO mail_suppressions AS s (recipient_key, until, reason, created_at) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (recipient_key) DO UPDATE SET \
                 until = GREATEST(s.until, excluded.until), reason = excluded.reason",
            )
            .bind(keys)
            .bind(until)
            .bind(reasons)
            .bind(created_at)
            .execute(&mut *connection)
            .await?;
        }
        self.audit.write(&mut *connection).await
    }
}

fn plan_mismatch(step: Step) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "ingest plan mismatch: {step:?} for an item of the other kind"
    ))
}

#[derive(Default)]
struct TicketColumns {
    number: Vec<i64>,
    queue: Vec<String>,
    priority: Vec<String>,
    subject: Vec<String>,
    requester_email: Vec<Option<String>>,
    requester_name: Vec<Option<String>>,
    tier: Vec<Option<String>>,
    category: Vec<Option<String>>,
    in_scope: Vec<Option<bool>>,
    microsoft: Vec<Option<bool>>,
    confidence: Vec<Option<f64>>,
    created_at: Vec<i64>,
    first_response_due: Vec<i64>,
}

impl TicketColumns {
    /// A new ticket from its first message, labelled by its classification
    /// and placed by its routing decision.
    fn push_routed(
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
    fn push_quarantined(&mut self, number: i64, at: i64, due: i64, message: &NewMessage<'_>) {
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

    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.number.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tickets (number, queue, status, priority, subject, requester_email, \
             requester_name, tier, category, in_scope, microsoft, confidence, created_at, \
             updated_at, first_response_due) \
             SELECT number, queue, $14, priority, subject, requester_email, requester_name, \
             tier, category, in_scope, microsoft, confidence, created_at, created_at, \
             first_response_due \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::boolean[], $10::boolean[], \
             $11::float8[], $12::bigint[], $13::bigint[]) WITH ORDINALITY \
             AS r (number, queue, priority, subject, requester_email, requester_name, tier, \
             category, in_scope, microsoft, confidence, created_at, first_response_due, ord) \
             ORDER BY ord",
        )
        .bind(self.number)
        .bind(self.queue)
        .bind(self.priority)
        .bind(self.subject)
        .bind(self.requester_email)
        .bind(self.requester_name)
        .bind(self.tier)
        .bind(self.category)
        .bind(self.in_scope)
        .bind(self.microsoft)
        .bind(self.confidence)
        .bind(self.created_at)
        .bind(self.first_response_due)
        .bind(TicketStatus::Open.slug())
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct MessageColumns {
    id: Vec<i64>,
    ticket_number: Vec<i64>,
    message_id: Vec<String>,
    message_id_synthesized: Vec<bool>,
    content_hash: Vec<String>,
    in_reply_to: Vec<String>,
    references: Vec<String>,
    from_email: Vec<Option<String>>,
    from_name: Vec<Option<String>>,
    reply_to: Vec<String>,
    to: Vec<String>,
    cc: Vec<String>,
    subject: Vec<String>,
    sent_at: Vec<Option<i64>>,
    received_at: Vec<i64>,
    body_text: Vec<String>,
    body_html: Vec<Option<String>>,
    new_text: Vec<String>,
    forwarded_text: Vec<String>,
    flags: Vec<String>,
    warnings: Vec<String>,
    size: Vec<i64>,
    quarantine_reason: Vec<Option<String>>,
    source_kind: Vec<String>,
    source_mailbox: Vec<String>,
    source_uidvalidity: Vec<Option<i64>>,
    source_uid: Vec<Option<i64>>,
    raw: Vec<Vec<u8>>,
}

impl MessageColumns {
    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO messages (id, ticket_number, message_id, message_id_synthesized, \
             content_hash, in_reply_to, message_references, from_email, from_name, reply_to, \
             to_addresses, cc_addresses, subject, sent_at, received_at, body_text, body_html, \
             new_text, forwarded_text, flags, warnings, size, quarantine_reason, source_kind, \
             source_mailbox, source_uidvalidity, source_uid) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], \
             $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], \
             $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::bigint[], \
             $23::text[], $24::text[], $25::text[], $26::bigint[], $27::bigint[])",
        )
        .bind(&self.id)
        .bind(self.ticket_number)
        .bind(self.message_id)
        .bind(self.message_id_synthesized)
        .bind(self.content_hash)
        .bind(self.in_reply_to)
        .bind(self.references)
        .bind(self.from_email)
        .bind(self.from_name)
        .bind(self.reply_to)
        .bind(self.to)
        .bind(self.cc)
        .bind(self.subject)
        .bind(self.sent_at)
        .bind(self.received_at)
        .bind(self.body_text)
        .bind(self.body_html)
        .bind(self.new_text)
        .bind(self.forwarded_text)
        .bind(self.flags)
        .bind(self.warnings)
        .bind(self.size)
        .bind(self.quarantine_reason)
        .bind(self.source_kind)
        .bind(self.source_mailbox)
        .bind(self.source_uidvalidity)
        .bind(self.source_uid)
        .execute(&mut *connection)
        .await?;
        sqlx::query(
            "INSERT INTO raw_messages (message_id, raw) \
             SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
        )
        .bind(self.id)
        .bind(self.raw)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct AttachmentColumns {
    message_id: Vec<i64>,
    position: Vec<i64>,
    filename: Vec<String>,
    content_type: Vec<String>,
    size: Vec<i64>,
    sha256: Vec<String>,
}

impl AttachmentColumns {
    fn push(&mut self, message_row: i64, message: &NewMessage<'_>) {
        for (position, attachment) in message.attachments.iter().enumerate() {
            self.message_id.push(message_row);
            self.position.push(to_i64(position as u64));
            self.filename.push(attachment.filename.clone());
            self.content_type.push(attachment.content_type.clone());
            self.size.push(to_i64(attachment.size));
            self.sha256.push(attachment.sha256.clone());
        }
    }

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.message_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO attachments (message_id, position, filename, content_type, size, sha256) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::bigint[], $6::text[])",
        )
        .bind(self.message_id)
        .bind(self.position)
        .bind(self.filename)
        .bind(self.content_type)
        .bind(self.size)
        .bind(self.sha256)
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct ClassificationColumns {
    message_id: Vec<i64>,
    tier: Vec<String>,
    category: Vec<String>,
    in_scope: Vec<bool>,
    microsoft: Vec<bool>,
    confidence: Vec<f64>,
    reasons: Vec<String>,
    entities: Vec<String>,
    account: Vec<Option<String>>,
}

impl ClassificationColumns {
    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.message_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO classifications (message_id, tier, category, in_scope, microsoft, \
             confidence, reasons, entities, account) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::boolean[], \
             $5::boolean[], $6::float8[], $7::text[], $8::text[], $9::text[])",
        )
        .bind(self.message_id)
        .bind(self.tier)
        .bind(self.category)
        .bind(self.in_scope)
        .bind(self.microsoft)
        .bind(self.confidence)
        .bind(self.reasons)
        .bind(self.entities)
        .bind(self.account)
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct RouteColumns {
    ticket_number: Vec<i64>,
    message_id: Vec<i64>,
    decided_at: Vec<i64>,
    queue: Vec<String>,
    priority: Vec<String>,
    first_response_due: Vec<i64>,
    rule: Vec<String>,
    reasons: Vec<String>,
    actions: Vec<String>,
}

impl RouteColumns {
    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ticket_number.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO route_decisions (ticket_number, message_id, decided_at, queue, priority, \
             first_response_due, rule, reasons, actions) \
             SELECT ticket_number, message_id, decided_at, queue, priority, first_response_due, \
             rule, reasons, actions \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
             $6::bigint[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY \
             AS r (ticket_number, message_id, decided_at, queue, priority, first_response_due, \
             rule, reasons, actions, ord) ORDER BY ord",
        )
        .bind(self.ticket_number)
        .bind(self.message_id)
        .bind(self.decided_at)
        .bind(self.queue)
        .bind(self.priority)
        .bind(self.first_response_due)
        .bind(self.rule)
        .bind(self.reasons)
        .bind(self.actions)
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct OutboxColumns {
    id: Vec<i64>,
    ticket_number: Vec<i64>,
    kind: Vec<String>,
    status: Vec<String>,
    recipient: Vec<String>,
    recipient_key: Vec<String>,
    message_id: Vec<String>,
    source_message: Vec<Option<i64>>,
    in_reply_to: Vec<Option<String>>,
    references: Vec<String>,
    body: Vec<Option<String>>,
    actor: Vec<String>,
    reason: Vec<Option<String>>,
    now: Vec<i64>,
}

impl OutboxColumns {
    #[allow(clippy::too_many_arguments)]
    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (id, ticket_number, kind, status, recipient, recipient_key, \
             message_id, source_message, in_reply_to, message_references, body, actor, reason, \
             next_attempt_at, created_at, updated_at) \
             SELECT id, ticket_number, kind, status, recipient, recipient_key, message_id, \
             source_message, in_reply_to, message_references, body, actor, reason, now, now, now \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[], \
             $12::text[], $13::text[], $14::bigint[]) \
             AS r (id, ticket_number, kind, status, recipient, recipient_key, message_id, \
             source_message, in_reply_to, message_references, body, actor, reason, now)",
        )
        .bind(self.id)
        .bind(self.ticket_number)
        .bind(self.kind)
        .bind(self.status)
        .bind(self.recipient)
        .bind(self.recipient_key)
        .bind(self.message_id)
        .bind(self.source_message)
        .bind(self.in_reply_to)
        .bind(self.references)
        .bind(self.body)
        .bind(self.actor)
        .bind(self.reason)
        .bind(self.now)
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct AuditColumns {
    ticket_number: Vec<i64>,
    at: Vec<i64>,
    kind: Vec<String>,
    actor: Vec<String>,
    detail: Vec<String>,
}

impl AuditColumns {
    fn push(
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

    async fn write(self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ticket_number.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_events (ticket_number, at, kind, actor, detail) \
             SELECT ticket_number, at, kind, actor, detail \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
             WITH ORDINALITY AS r (ticket_number, at, kind, actor, detail, ord) ORDER BY ord",
        )
        .bind(self.ticket_number)
        .bind(self.at)
        .bind(self.kind)
        .bind(self.actor)
        .bind(self.detail)
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// A single outbox row written outside ingest (a staff reply): its id drawn
/// from the sequence, then the same columns and audit event as ingest writes.
pub(super) async fn insert_one_mail(
    connection: &mut PgConnection,
    row: &crate::write::NewOutboxRow<'_>,
    policy: &OutboxPolicy,
    now: i64,
) -> Result<String, sqlx::Error> {
    let Some(id) = reserve(&mut *connection, "outbox_id_seq", 1)
        .await?
        .into_iter()
        .next()
    else {
        return Err(sqlx::Error::RowNotFound);
    };
    let mut batch = BatchRows::default();
    let message_id = batch.add_mail(
        id,
        row.ticket,
        row.planned,
        row.source_message,
        row.body,
        row.actor,
        policy,
        now,
    )?;
    batch.write(connection).await?;
    Ok(message_id)
}
