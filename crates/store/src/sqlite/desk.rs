//! The desk's SQL on SQLite: filtered queue pages, search, assign, move,
//! notes, the SLA sweep and idempotency keys (see [`crate::desk`]).
//!
//! Queue pages read one index range per part (breached, then the rest):
//! `tickets (queue, status, [tier | category,] sla_breached, number)` from
//! migration 0005, so a page costs the same on a million tickets as on ten.

use serde_json::json;
use supportd_core::{Priority, QueueName, TicketRef, TicketStatus};

use super::outbox::audit;
use super::{BEGIN_WRITE, SqliteStore};
use crate::codec::{self, to_i64};
use crate::desk::{
    self, DeskDetail, DeskQuery, DeskRow, DeskTicket, IdempotencyClaim, NoteRow, ReplyRow,
    SearchQuery, SlaBreach,
};
use crate::error::StoreError;
use crate::model::{AuditKind, QueueQuery, TicketOrder};
use crate::outbox::OutboxKind;

/// The columns of a [`DeskRow`], from `tickets AS t`: those of `TicketRow`
/// plus the desk's own.
macro_rules! desk_select {
    () => {
        "SELECT t.number, t.queue, t.status, t.priority, t.subject, \
         t.requester_email, t.requester_name, t.tier, t.category, t.in_scope, t.microsoft, \
         t.confidence, t.created_at, t.updated_at, t.first_response_due, \
         (SELECT COUNT(*) FROM messages AS c WHERE c.ticket_number = t.number) AS message_count, \
         t.assignee, t.sla_breached \
         FROM tickets AS t"
    };
}

/// One part of a queue page: `WHERE` on queue, status, breach and the
/// filters given, then the keyset bound and order. Parameters: ?1 queue,
/// ?2 status, ?3 breached, ?4 tier, ?5 category, ?6 after, ?7 limit.
macro_rules! queue_part {
    ($filters:literal, newest) => {
        concat!(
            desk_select!(),
            " WHERE t.queue = ?1 AND t.status = ?2 AND t.sla_breached = ?3",
            $filters,
            " AND t.number < ?6 ORDER BY t.number DESC LIMIT ?7"
        )
    };
    ($filters:literal, oldest) => {
        concat!(
            desk_select!(),
            " WHERE t.queue = ?1 AND t.status = ?2 AND t.sla_breached = ?3",
            $filters,
            " AND t.number > ?6 ORDER BY t.number ASC LIMIT ?7"
        )
    };
}

/// The statement of one part of a queue page: a static string per filter
/// combination and order, each prepared once per connection.
fn queue_part_sql(query: &DeskQuery) -> &'static str {
    let newest = query.order == TicketOrder::NewestFirst;
    match (query.tier.is_some(), query.category.is_some(), newest) {
        (false, false, true) => queue_part!("", newest),
        (false, false, false) => queue_part!("", oldest),
        (true, false, true) => queue_part!(" AND t.tier = ?4", newest),
        (true, false, false) => queue_part!(" AND t.tier = ?4", oldest),
        (false, true, true) => queue_part!(" AND t.category = ?5", newest),
        (false, true, false) => queue_part!(" AND t.category = ?5", oldest),
        (true, true, true) => queue_part!(" AND t.tier = ?4 AND t.category = ?5", newest),
        (true, true, false) => queue_part!(" AND t.tier = ?4 AND t.category = ?5", oldest),
    }
}

impl SqliteStore {
    /// See [`crate::Store::desk_queue`].
    pub async fn desk_queue(&self, query: &DeskQuery) -> Result<Vec<DeskTicket>, StoreError> {
        let doing = "listing a queue";
        let limit = i64::from(query.limit.clamp(1, QueueQuery::MAX_LIMIT));
        let mut connection = self.pool.acquire().await.map_err(self.error(doing))?;
        let start = match query.order {
            TicketOrder::NewestFirst => i64::MAX,
            TicketOrder::OldestFirst => i64::MIN,
        };
        // Which part the cursor is in: the breached part comes first.
        let (in_breached_part, after) = match query.after {
            None => (true, start),
            Some(after) => {
                let number = to_i64(after.number());
                let breached: Option<bool> =
                    sqlx::query_scalar("SELECT sla_breached FROM tickets WHERE number = ?1")
                        .bind(number)
                        .fetch_optional(&mut *connection)
                        .await
                        .map_err(self.error(doing))?;
                (breached.unwrap_or(false), number)
            }
        };
        let sql = queue_part_sql(query);
        let mut rows: Vec<DeskRow> = Vec::new();
        let parts: &[(bool, i64)] = if in_breached_part {
            &[(true, after), (false, start)]
        } else {
            &[(false, after)]
        };
        for &(breached, after) in parts {
            let wanted = limit - rows.len() as i64;
            if wanted <= 0 {
                break;
            }
            let part: Vec<DeskRow> = sqlx::query_as(sql)
                .bind(query.queue.as_str())
                .bind(query.status.slug())
                .bind(breached)
                .bind(query.tier.map(|tier| tier.slug()))
                .bind(query.category.map(|category| category.slug()))
                .bind(after)
                .bind(wanted)
                .fetch_all(&mut *connection)
                .await
                .map_err(self.error(doing))?;
            rows.extend(part);
        }
        rows.into_iter()
            .map(DeskRow::into_ticket)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::search`].
    pub async fn search(
        &self,
        query: &SearchQuery,
        limit: u32,
    ) -> Result<Vec<DeskTicket>, StoreError> {
        let doing = "searching tickets";
        let limit = i64::from(limit.clamp(1, QueueQuery::MAX_LIMIT));
        let rows: Vec<DeskRow> = match query {
            SearchQuery::Reference(ticket_ref) => {
                sqlx::query_as(concat!(desk_select!(), " WHERE t.number = ?1"))
                    .bind(to_i64(ticket_ref.number()))
                    .fetch_all(&self.pool)
                    .await
            }
            SearchQuery::Sender(address) => {
                sqlx::query_as(concat!(
                    desk_select!(),
                    " WHERE t.requester_email = ?1 COLLATE NOCASE \
                     ORDER BY t.number DESC LIMIT ?2"
                ))
                .bind(address)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            SearchQuery::Identifier(identifier) => {
                sqlx::query_as(concat!(
                    desk_select!(),
                    " WHERE t.number IN (SELECT ticket_number FROM ticket_identifiers \
                     WHERE identifier = ?1) ORDER BY t.number DESC LIMIT ?2"
                ))
                .bind(identifier)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            SearchQuery::Words(words) => {
                sqlx::query_as(concat!(
                    desk_select!(),
                    " WHERE t.number IN (SELECT rowid FROM tickets_subject_fts \
                     WHERE tickets_subject_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2) \
                     ORDER BY t.number DESC"
                ))
                .bind(SearchQuery::fts_match(words))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(self.error(doing))?;
        rows.into_iter()
            .map(DeskRow::into_ticket)
            .collect::<Result<_, _>>()
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::desk_detail`].
    pub async fn desk_detail(
        &self,
        ticket_ref: TicketRef,
    ) -> Result<Option<DeskDetail>, StoreError> {
        let doing = "reading a ticket's notes and replies";
        let number = to_i64(ticket_ref.number());
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        let ticket: Option<(Option<String>, bool, Option<i64>)> = sqlx::query_as(
            "SELECT assignee, sla_breached, first_responded_at FROM tickets WHERE number = ?1",
        )
        .bind(number)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let Some((assignee, sla_breached, first_responded_at)) = ticket else {
            return Ok(None);
        };
        let notes: Vec<NoteRow> = sqlx::query_as(
            "SELECT id, author, body, created_at FROM ticket_notes \
             WHERE ticket_number = ?1 ORDER BY id",
        )
        .bind(number)
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let replies: Vec<ReplyRow> = sqlx::query_as(
            "SELECT id, actor, recipient, body, status, created_at FROM outbox \
             WHERE ticket_number = ?1 AND kind = ?2 ORDER BY id",
        )
        .bind(number)
        .bind(OutboxKind::StaffReply.slug())
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        desk::desk_detail(assignee, sla_breached, first_responded_at, notes, replies)
            .map(Some)
            .map_err(self.corrupt(doing))
    }

    /// See [`crate::Store::assign`].
    pub async fn assign(
        &self,
        ticket_ref: TicketRef,
        assignee: Option<&str>,
        actor: &str,
        at: i64,
    ) -> Result<Option<Option<String>>, StoreError> {
        let doing = "assigning a ticket";
        let number = to_i64(ticket_ref.number());
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let previous: Option<Option<String>> =
            sqlx::query_scalar("SELECT assignee FROM tickets WHERE number = ?1")
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        if previous.as_deref() != assignee {
            sqlx::query("UPDATE tickets SET assignee = ?1, updated_at = ?2 WHERE number = ?3")
                .bind(assignee)
                .bind(at)
                .bind(number)
                .execute(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
            audit(
                &mut transaction,
                number,
                at,
                AuditKind::Assigned,
                actor,
                json!({ "from": previous, "to": assignee }),
            )
            .await
            .map_err(self.error(doing))?;
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(previous))
    }

    /// See [`crate::Store::move_ticket`].
    pub async fn move_ticket(
        &self,
        ticket_ref: TicketRef,
        queue: &QueueName,
        reason: &str,
        actor: &str,
        at: i64,
    ) -> Result<Option<QueueName>, StoreError> {
        let doing = "moving a ticket to another queue";
        let number = to_i64(ticket_ref.number());
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT queue FROM tickets WHERE number = ?1")
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let previous = QueueName::try_from(previous).map_err(|error| {
            StoreError::corrupt(&self.database, doing, format!("tickets.queue: {error}"))
        })?;
        if &previous != queue {
            sqlx::query("UPDATE tickets SET queue = ?1, updated_at = ?2 WHERE number = ?3")
                .bind(queue.as_str())
                .bind(at)
                .bind(number)
                .execute(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
            audit(
                &mut transaction,
                number,
                at,
                AuditKind::Moved,
                actor,
                json!({ "from": previous.as_str(), "to": queue.as_str(), "reason": reason }),
            )
            .await
            .map_err(self.error(doing))?;
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(previous))
    }

    /// See [`crate::Store::add_note`].
    pub async fn add_note(
        &self,
        ticket_ref: TicketRef,
        body: &str,
        author: &str,
        at: i64,
    ) -> Result<Option<i64>, StoreError> {
        let doing = "adding a note";
        let number = to_i64(ticket_ref.number());
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT number FROM tickets WHERE number = ?1")
                .bind(number)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
        if exists.is_none() {
            return Ok(None);
        }
        let note_id: i64 = sqlx::query_scalar(
            "INSERT INTO ticket_notes (ticket_number, author, body, created_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(number)
        .bind(author)
        .bind(body)
        .bind(at)
        .fetch_one(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        sqlx::query("UPDATE tickets SET updated_at = ?1 WHERE number = ?2")
            .bind(at)
            .bind(number)
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        audit(
            &mut transaction,
            number,
            at,
            AuditKind::NoteAdded,
            author,
            json!({ "note_id": note_id, "length": body.chars().count() }),
        )
        .await
        .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(Some(note_id))
    }

    /// See [`crate::Store::sweep_sla`].
    pub async fn sweep_sla(&self, now: i64, limit: u32) -> Result<Vec<SlaBreach>, StoreError> {
        let doing = "sweeping for SLA breaches";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let due: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT number, queue, priority, first_response_due FROM tickets \
             WHERE status = ?1 AND sla_breached = 0 AND first_responded_at IS NULL \
             AND first_response_due < ?2 ORDER BY first_response_due LIMIT ?3",
        )
        .bind(TicketStatus::Open.slug())
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let mut breaches = Vec::with_capacity(due.len());
        for (number, queue, priority, first_response_due) in due {
            let priority_from: Priority =
                codec::slug("tickets.priority", &priority).map_err(self.corrupt(doing))?;
            let priority_to = priority_from.raised();
            sqlx::query(
                "UPDATE tickets SET sla_breached = 1, priority = ?1, updated_at = ?2 \
                 WHERE number = ?3",
            )
            .bind(priority_to.slug())
            .bind(now)
            .bind(number)
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
            audit(
                &mut transaction,
                number,
                now,
                AuditKind::SlaBreached,
                crate::write::SYSTEM_ACTOR,
                json!({
                    "first_response_due": first_response_due,
                    "priority_from": priority_from.slug(),
                    "priority_to": priority_to.slug(),
                }),
            )
            .await
            .map_err(self.error(doing))?;
            breaches.push(SlaBreach {
                ticket_ref: TicketRef::new(codec::to_u64(number)),
                queue: QueueName::try_from(queue).map_err(|error| {
                    StoreError::corrupt(&self.database, doing, format!("tickets.queue: {error}"))
                })?,
                priority_from,
                priority_to,
            });
        }
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(breaches)
    }

    /// See [`crate::Store::claim_idempotency_key`].
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        request_hash: &str,
        now: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let doing = "claiming an idempotency key";
        let mut transaction = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(self.error(doing))?;
        let existing: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT request_hash, ticket_number FROM api_idempotency_keys WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        let claim = match existing {
            Some((stored_hash, _)) if stored_hash != request_hash => IdempotencyClaim::Conflict,
            Some((_, Some(number))) => {
                IdempotencyClaim::Done(TicketRef::new(codec::to_u64(number)))
            }
            Some((_, None)) => IdempotencyClaim::InProgress,
            None => {
                sqlx::query(
                    "INSERT INTO api_idempotency_keys (key, request_hash, ticket_number, created_at) \
                     VALUES (?1, ?2, NULL, ?3)",
                )
                .bind(key)
                .bind(request_hash)
                .bind(now)
                .execute(&mut *transaction)
                .await
                .map_err(self.error(doing))?;
                IdempotencyClaim::New
            }
        };
        transaction.commit().await.map_err(self.error(doing))?;
        Ok(claim)
    }

    /// See [`crate::Store::complete_idempotency_key`].
    pub async fn complete_idempotency_key(
        &self,
        key: &str,
        ticket_ref: TicketRef,
    ) -> Result<(), StoreError> {
        let doing = "completing an idempotency key";
        sqlx::query("UPDATE api_idempotency_keys SET ticket_number = ?1 WHERE key = ?2")
            .bind(to_i64(ticket_ref.number()))
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(self.error(doing))?;
        Ok(())
    }

    /// See [`crate::Store::release_idempotency_key`].
    pub async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        let doing = "releasing an idempotency key";
        sqlx::query("DELETE FROM api_idempotency_keys WHERE key = ?1 AND ticket_number IS NULL")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(self.error(doing))?;
        Ok(())
    }
}
