//! Writing a batch, PostgreSQL flavour: the same decisions as SQLite
//! ([`crate::plan`], [`crate::outbox::plan_mails`], [`crate::write`]), then
//! every row of the batch gathered into columns and written with one
//! `INSERT … SELECT FROM UNNEST(…)` per table. Rows keep the batch's order
//! (`WITH ORDINALITY … ORDER BY`), so audit events read back in the order
//! SQLite writes them.

use std::borrow::Cow;

use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Postgres, Transaction};
use supportd_core::{Address, TicketStatus};

use crate::batch::{
    AttachmentColumns, AuditColumns, BatchRows, ClassificationColumns, MessageColumns,
    OutboxColumns, RouteColumns, TicketColumns,
};
use crate::codec::to_i64;
use crate::lease::Fence;
use crate::model::{AuditKind, Checkpoint, IngestContent, IngestItem, IngestOutcome};
use crate::outbox::{OutboxPolicy, PlannedMail, plan_mails};
use crate::plan::{self, IdAllocator, Known, LookupKeys, Step};
use crate::write::{KnownRows, SYSTEM_ACTOR, created_recipients, status_change_detail};

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

impl BatchRows {
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

impl TicketColumns {
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

impl MessageColumns {
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

impl AttachmentColumns {
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

impl ClassificationColumns {
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

impl RouteColumns {
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

impl OutboxColumns {
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

impl AuditColumns {
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
