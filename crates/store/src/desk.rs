//! The support desk: what staff do to tickets and how they find them.
//!
//! - Listings: [`DeskQuery`] filters one queue by status, tier and category,
//!   breached tickets first, keyset-paged; [`Store::search`] finds tickets by
//!   reference, sender, subscription or tenant ID, or words of the subject.
//!   Both answer [`DeskTicket`]s: the queue page's row plus who works it and
//!   whether its SLA was breached.
//! - Actions, each with its audit event in the same transaction: assign
//!   ([`Store::assign`]), move to another queue with a reason
//!   ([`Store::move_ticket`]), internal notes ([`Store::add_note`], never
//!   mailed). Replies go through [`Store::queue_staff_reply`] (the outbox);
//!   the first one sets the ticket's first response (a trigger).
//! - [`Store::sweep_sla`]: open tickets past their first-response due time
//!   without a staff reply are marked breached, raised one priority step and
//!   audited.
//! - [`DeskDetail`]: the desk's part of a ticket page (assignee, breach, notes,
//!   staff replies), beside [`crate::TicketDetail`].
//! - Idempotency keys of `POST /api/tickets` ([`Store::claim_idempotency_key`]).

use serde::Serialize;
use supportd_core::{Category, Priority, QueueName, TicketRef, TicketStatus, Tier};

use crate::codec::{self, DecodeError};
use crate::model::{TicketOrder, TicketSummary};
use crate::outbox::OutboxStatus;
use crate::rows::TicketRow;
use crate::{Store, StoreError};

/// Which tickets of a queue to list on the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskQuery {
    pub queue: QueueName,
    pub status: TicketStatus,
    /// Only this tier, when set.
    pub tier: Option<Tier>,
    /// Only this category, when set.
    pub category: Option<Category>,
    /// Within each part (breached, then the rest): newest or oldest first.
    pub order: TicketOrder,
    /// Keyset paging: the last ticket of the previous page.
    pub after: Option<TicketRef>,
    pub limit: u32,
}

/// A ticket as the desk lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeskTicket {
    #[serde(flatten)]
    pub summary: TicketSummary,
    /// The staff login working it.
    pub assignee: Option<String>,
    /// The SLA sweep found it unanswered past its first-response due time.
    pub sla_breached: bool,
}

/// An internal note: for staff only, never mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A staff reply as queued in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffReply {
    pub outbox_id: i64,
    pub author: String,
    pub recipient: String,
    pub body: String,
    /// Queued, sent, suppressed or dead.
    pub status: OutboxStatus,
    /// Unix seconds.
    pub created_at: i64,
}

/// The desk's part of a ticket page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeskDetail {
    pub assignee: Option<String>,
    pub sla_breached: bool,
    /// When staff first replied, Unix seconds.
    pub first_responded_at: Option<i64>,
    /// Oldest first.
    pub notes: Vec<Note>,
    /// Oldest first.
    pub replies: Vec<StaffReply>,
}

/// What a search box query means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchQuery {
    /// `CS-1042` (or `1042`).
    Reference(TicketRef),
    /// Something with an `@`: the requester's address, any case.
    Sender(String),
    /// A GUID: a subscription or tenant ID found in the ticket's mail.
    Identifier(String),
    /// Words that must all appear in the subject (prefixes match).
    Words(Vec<String>),
}

impl SearchQuery {
    /// Reads a search box; `None` when nothing searchable is left.
    pub fn parse(text: &str) -> Option<SearchQuery> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(ticket_ref) = text.parse::<TicketRef>() {
            return Some(SearchQuery::Reference(ticket_ref));
        }
        if let Ok(number) = text.parse::<u64>() {
            return Some(SearchQuery::Reference(TicketRef::new(number)));
        }
        if text.contains('@') && !text.contains(char::is_whitespace) {
            return Some(SearchQuery::Sender(text.to_owned()));
        }
        if is_guid(text) {
            return Some(SearchQuery::Identifier(text.to_ascii_lowercase()));
        }
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .take(8)
            .map(str::to_lowercase)
            .collect();
        (!words.is_empty()).then_some(SearchQuery::Words(words))
    }

    /// The FTS5 query of [`SearchQuery::Words`]: each word quoted (no operator
    /// can be injected), as a prefix, all required.
    pub(crate) fn fts_match(words: &[String]) -> String {
        words
            .iter()
            .map(|word| format!("\"{}\"*", word.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

impl SearchQuery {
    /// The PostgreSQL `tsquery` of [`SearchQuery::Words`]: each word (letters
    /// and digits only, by [`SearchQuery::parse`]) as a prefix, all required.
    pub(crate) fn tsquery(words: &[String]) -> String {
        words
            .iter()
            .map(|word| {
                let word: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
                format!("{word}:*")
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit())
        })
}

/// One ticket the SLA sweep marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaBreach {
    pub ticket_ref: TicketRef,
    pub queue: QueueName,
    pub priority_from: Priority,
    pub priority_to: Priority,
}

/// What an `Idempotency-Key` already stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the caller creates the ticket, then calls
    /// [`Store::complete_idempotency_key`].
    New,
    /// Used before with the same request: its ticket.
    Done(TicketRef),
    /// Used before with the same request, still being handled.
    InProgress,
    /// Used before with another request.
    Conflict,
}

/// A ticket row with the desk's columns (both backends).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeskRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    assignee: Option<String>,
    sla_breached: bool,
}

impl DeskRow {
    pub(crate) fn into_ticket(self) -> Result<DeskTicket, DecodeError> {
        Ok(DeskTicket {
            summary: self.ticket.into_summary()?,
            assignee: self.assignee,
            sla_breached: self.sla_breached,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NoteRow {
    id: i64,
    author: String,
    body: String,
    created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ReplyRow {
    id: i64,
    actor: String,
    recipient: String,
    body: Option<String>,
    status: String,
    created_at: i64,
}

/// Assembles a [`DeskDetail`] from what either backend read.
pub(crate) fn desk_detail(
    assignee: Option<String>,
    sla_breached: bool,
    first_responded_at: Option<i64>,
    notes: Vec<NoteRow>,
    replies: Vec<ReplyRow>,
) -> Result<DeskDetail, DecodeError> {
    let replies = replies
        .into_iter()
        .map(|row| {
            Ok(StaffReply {
                outbox_id: row.id,
                author: row.actor,
                recipient: row.recipient,
                body: row.body.unwrap_or_default(),
                status: codec::slug("outbox.status", &row.status)?,
                created_at: row.created_at,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(DeskDetail {
        assignee,
        sla_breached,
        first_responded_at,
        notes: notes
            .into_iter()
            .map(|row| Note {
                id: row.id,
                author: row.author,
                body: row.body,
                created_at: row.created_at,
            })
            .collect(),
        replies,
    })
}

impl Store {
    /// A page of one queue for the desk: breached tickets first, then the
    /// others, each part in `query.order`; filtered by status, tier, category.
    pub async fn desk_queue(&self, query: &DeskQuery) -> Result<Vec<DeskTicket>, StoreError> {
        match self {
            Store::Sqlite(store) => store.desk_queue(query).await,
            Store::Postgres(store) => store.desk_queue(query).await,
        }
    }

    /// Up to `limit` tickets matching `query`, newest first.
    pub async fn search(
        &self,
        query: &SearchQuery,
        limit: u32,
    ) -> Result<Vec<DeskTicket>, StoreError> {
        match self {
            Store::Sqlite(store) => store.search(query, limit).await,
            Store::Postgres(store) => store.search(query, limit).await,
        }
    }

    /// The desk's part of a ticket page; `None` when there is no such ticket.
    pub async fn desk_detail(
        &self,
        ticket_ref: TicketRef,
    ) -> Result<Option<DeskDetail>, StoreError> {
        match self {
            Store::Sqlite(store) => store.desk_detail(ticket_ref).await,
            Store::Postgres(store) => store.desk_detail(ticket_ref).await,
        }
    }

    /// Sets who works the ticket (`None`: nobody), with an `assigned` audit
    /// event when it changes. Returns the previous assignee, `None` when
    /// there is no such ticket.
    pub async fn assign(
        &self,
        ticket_ref: TicketRef,
        assignee: Option<&str>,
        actor: &str,
        at: i64,
    ) -> Result<Option<Option<String>>, StoreError> {
        match self {
            Store::Sqlite(store) => store.assign(ticket_ref, assignee, actor, at).await,
            Store::Postgres(store) => store.assign(ticket_ref, assignee, actor, at).await,
        }
    }

    /// Moves the ticket to `queue`, with a `moved` audit event carrying
    /// `reason`. Returns the previous queue, `None` when there is no such ticket.
    pub async fn move_ticket(
        &self,
        ticket_ref: TicketRef,
        queue: &QueueName,
        reason: &str,
        actor: &str,
        at: i64,
    ) -> Result<Option<QueueName>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .move_ticket(ticket_ref, queue, reason, actor, at)
                    .await
            }
            Store::Postgres(store) => {
                store
                    .move_ticket(ticket_ref, queue, reason, actor, at)
                    .await
            }
        }
    }

    /// Adds an internal note (never mailed) with a `note_added` audit event.
    /// Returns the note's id, `None` when there is no such ticket.
    pub async fn add_note(
        &self,
        ticket_ref: TicketRef,
        body: &str,
        author: &str,
        at: i64,
    ) -> Result<Option<i64>, StoreError> {
        match self {
            Store::Sqlite(store) => store.add_note(ticket_ref, body, author, at).await,
            Store::Postgres(store) => store.add_note(ticket_ref, body, author, at).await,
        }
    }

    /// Marks up to `limit` open tickets that are past their first-response due
    /// time at `now` with no staff reply: breached, one priority step up, an
    /// `sla_breached` audit event each. One transaction; returns what it marked.
    pub async fn sweep_sla(&self, now: i64, limit: u32) -> Result<Vec<SlaBreach>, StoreError> {
        match self {
            Store::Sqlite(store) => store.sweep_sla(now, limit).await,
            Store::Postgres(store) => store.sweep_sla(now, limit).await,
        }
    }

    /// Records the first use of `key` for a request hashing to `request_hash`,
    /// or says what the key already stands for.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        request_hash: &str,
        now: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        match self {
            Store::Sqlite(store) => store.claim_idempotency_key(key, request_hash, now).await,
            Store::Postgres(store) => store.claim_idempotency_key(key, request_hash, now).await,
        }
    }

    /// The ticket created for a claimed key.
    pub async fn complete_idempotency_key(
        &self,
        key: &str,
        ticket_ref: TicketRef,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.complete_idempotency_key(key, ticket_ref).await,
            Store::Postgres(store) => store.complete_idempotency_key(key, ticket_ref).await,
        }
    }

    /// Forgets a claimed key whose ticket could not be created, so a retry
    /// can use it.
    pub async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.release_idempotency_key(key).await,
            Store::Postgres(store) => store.release_idempotency_key(key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries_are_read_by_shape() {
        assert_eq!(
            SearchQuery::parse(" CS-1042 "),
            Some(SearchQuery::Reference(TicketRef::new(1042)))
        );
        assert_eq!(
            SearchQuery::parse("1042"),
            Some(SearchQuery::Reference(TicketRef::new(1042)))
        );
        assert_eq!(
            SearchQuery::parse("Ana@Example.com"),
            Some(SearchQuery::Sender("Ana@Example.com".to_owned()))
        );
        assert_eq!(
            SearchQuery::parse("1B2C3D4E-0000-4000-8000-00000000000A"),
            Some(SearchQuery::Identifier(
                "1b2c3d4e-0000-4000-8000-00000000000a".to_owned()
            ))
        );
        assert_eq!(
            SearchQuery::parse("Invoice, \"charged\" twice"),
            Some(SearchQuery::Words(vec![
                "invoice".to_owned(),
                "charged".to_owned(),
                "twice".to_owned()
            ]))
        );
        assert_eq!(SearchQuery::parse("  "), None);
        assert_eq!(SearchQuery::parse("\"*\""), None);
        assert_eq!(
            SearchQuery::fts_match(&["a\"b".to_owned(), "c".to_owned()]),
            "\"ab\"* AND \"c\"*"
        );
    }
}
