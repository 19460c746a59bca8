//! What to do with each item of a batch, decided in memory from what the
//! database already holds: pure, backend-independent, tested on its own.
//!
//! A backend fetches [`Known`] for the batch's [`LookupKeys`] in one query,
//! reserves ids with an [`IdAllocator`], lets [`plan_batch`] decide a [`Step`]
//! per item, and then writes the steps. Items are planned in order, and each
//! planned item is added to `Known`, so a later item sees an earlier one
//! exactly as if it were already stored (a reply threads onto a ticket created
//! earlier in the same batch, a second copy is a duplicate).

use std::collections::{HashMap, HashSet};

use supportd_core::{InboundMessage, TicketRef, TicketStatus};

use crate::model::{IngestContent, IngestItem};
use crate::outbox::{LoopReferences, loop_references};

/// An IMAP source position: mailbox, UIDVALIDITY, UID.
pub(crate) type PositionKey = (String, u32, u32);

/// The keys of a batch to look up, each list without repeats.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LookupKeys {
    /// `(message_id, content_hash)` of every item.
    pub message_keys: Vec<(String, String)>,
    /// Source positions of the items that have one.
    pub positions: Vec<PositionKey>,
    /// Message-IDs named by In-Reply-To or References of parsed items.
    pub thread_ids: Vec<String>,
    /// Ticket numbers named by subject tags of parsed items.
    pub tagged_tickets: Vec<i64>,
}

/// What the database holds for a batch's [`LookupKeys`]; planning adds the
/// batch's own items as it goes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Known {
    /// Ticket of the stored message with this `(message_id, content_hash)`.
    pub message_keys: HashMap<(String, String), i64>,
    /// Ticket of the stored message read from this position.
    pub positions: HashMap<PositionKey, i64>,
    /// Ticket of the earliest stored message with this Message-ID.
    pub message_tickets: HashMap<String, i64>,
    /// Status of each ticket a thread id or a subject tag names.
    pub ticket_statuses: HashMap<i64, TicketStatus>,
    /// Requester address (lower-case) of each ticket a subject tag names, and
    /// of tickets created in the batch: a tag threads only mail from the same
    /// organisation, so knowing a ticket number is not enough to write into it.
    pub ticket_requesters: HashMap<i64, String>,
    /// Outbox rows (id, recipient key) by their Message-ID, for the ids thread
    /// headers and machine-sent mail name: supportd's own mail.
    pub outbox_messages: HashMap<String, (i64, String)>,
}

/// Hands out ticket numbers and message ids for one batch. The backend makes
/// sure nobody else takes them before the batch commits: SQLite counts up
/// from the last ids in use under the write lock of `BEGIN IMMEDIATE`
/// ([`IdAllocator::new`]); PostgreSQL draws them from its sequences
/// ([`IdAllocator::reserved`]) after a first planning pass counted them.
#[derive(Debug)]
pub(crate) struct IdAllocator {
    tickets: IdSource,
    messages: IdSource,
}

#[derive(Debug)]
enum IdSource {
    /// The last id in use; the next is one more.
    After(i64),
    /// Ids drawn ahead, handed out in order; `missing` counts requests past them.
    Reserved {
        ids: std::collections::VecDeque<i64>,
        missing: usize,
    },
}

impl IdSource {
    fn next(&mut self) -> i64 {
        match self {
            IdSource::After(last) => {
                *last += 1;
                *last
            }
            IdSource::Reserved { ids, missing } => ids.pop_front().unwrap_or_else(|| {
                *missing += 1;
                0
            }),
        }
    }

    fn missing(&self) -> usize {
        match self {
            IdSource::After(_) => 0,
            IdSource::Reserved { missing, .. } => *missing,
        }
    }
}

impl IdAllocator {
    /// Counts up from the last ticket number and message id in use.
    pub(crate) fn new(last_ticket: i64, last_message: i64) -> Self {
        IdAllocator {
            tickets: IdSource::After(last_ticket),
            messages: IdSource::After(last_message),
        }
    }

    /// Hands out exactly these ids, in order.
    pub(crate) fn reserved(tickets: Vec<i64>, messages: Vec<i64>) -> Self {
        IdAllocator {
            tickets: IdSource::Reserved {
                ids: tickets.into(),
                missing: 0,
            },
            messages: IdSource::Reserved {
                ids: messages.into(),
                missing: 0,
            },
        }
    }

    /// How many ids were asked for beyond the reserved ones (then handed out
    /// as 0): the plan must not be written.
    pub(crate) fn missing(&self) -> usize {
        self.tickets.missing() + self.messages.missing()
    }

    fn next_ticket(&mut self) -> i64 {
        self.tickets.next()
    }

    fn next_message(&mut self) -> i64 {
        self.messages.next()
    }
}

/// How many new tickets and messages `items` need, planned against `known`
/// without touching it. Tickets created by the batch get placeholder numbers
/// no subject tag can name, so the real plan (where a later item may tag a
/// ticket created earlier in the batch and thread instead of creating) needs
/// at most as many tickets and exactly as many messages.
pub(crate) fn count_new_ids(items: &[IngestItem], known: &Known) -> (usize, usize) {
    let mut known = known.clone();
    let mut placeholders = IdAllocator::new(i64::MIN / 2, i64::MIN / 2);
    let steps = plan_batch(items, &mut known, &mut placeholders);
    let tickets = steps
        .iter()
        .filter(|step| matches!(step, Step::Create { .. } | Step::Quarantine { .. }))
        .count();
    let messages = steps
        .iter()
        .filter(|step| !matches!(step, Step::Duplicate { .. }))
        .count();
    (tickets, messages)
}

/// What to write for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Already stored on this ticket: write nothing.
    Duplicate { ticket: i64 },
    /// A new routed ticket with this number, its first message with this id.
    Create { ticket: i64, message: i64 },
    /// A reply on an existing ticket. `reopen_from` is the status the reply
    /// ends (resolved or pending customer), `None` when the status stays.
    Thread {
        ticket: i64,
        message: i64,
        reopen_from: Option<TicketStatus>,
    },
    /// A new quarantine ticket and its unparsed message.
    Quarantine { ticket: i64, message: i64 },
}

/// The `(message_id, content_hash)` of an item.
fn message_key(item: &IngestItem) -> (&str, &str) {
    match &item.content {
        IngestContent::Parsed { message, .. } => (&message.message_id, &message.content_hash),
        IngestContent::Quarantined {
            message_id,
            content_hash,
            ..
        } => (message_id, content_hash),
    }
}

fn position_key(item: &IngestItem) -> Option<PositionKey> {
    item.source
        .uid
        .map(|uid| (item.source.mailbox.clone(), uid.uidvalidity, uid.uid))
}

/// The Message-IDs a reply names, in precedence order: In-Reply-To, then
/// References from the most recent.
fn thread_ids(message: &InboundMessage) -> impl Iterator<Item = &str> {
    message
        .in_reply_to
        .iter()
        .chain(message.references.iter().rev())
        .map(String::as_str)
        .filter(|id| !id.is_empty())
}

/// True for machine-sent mail (auto-reply, bounce, list): it never reopens a
/// ticket, and what it says about supportd's own mail is read from its bytes.
pub(crate) fn is_automatic(message: &InboundMessage) -> bool {
    message.flags.auto_submitted || message.flags.bounce
}

/// Supportd's own ids quoted by a machine-sent item (none for other items).
pub(crate) fn item_loop_references(item: &IngestItem) -> LoopReferences {
    match &item.content {
        IngestContent::Parsed { message, .. } if is_automatic(message) => {
            loop_references(&item.raw)
        }
        _ => LoopReferences::default(),
    }
}

/// The ticket number a subject tag names, if it fits the store's integers.
fn tagged_ticket(message: &InboundMessage) -> Option<i64> {
    TicketRef::find_in_subject(&message.subject)
        .and_then(|ticket_ref| i64::try_from(ticket_ref.number()).ok())
}

/// The keys to look up for `items`.
pub(crate) fn lookup_keys(items: &[IngestItem]) -> LookupKeys {
    let mut keys = LookupKeys::default();
    let mut seen_keys = HashSet::new();
    let mut seen_positions = HashSet::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut seen_tags = HashSet::new();
    for item in items {
        let (message_id, content_hash) = message_key(item);
        if seen_keys.insert((message_id, content_hash)) {
            keys.message_keys
                .push((message_id.to_owned(), content_hash.to_owned()));
        }
        if let Some(position) = position_key(item)
            && seen_positions.insert(position.clone())
        {
            keys.positions.push(position);
        }
        if let IngestContent::Parsed { message, .. } = &item.content {
            for id in thread_ids(message) {
                if seen_ids.insert(id.to_owned()) {
                    keys.thread_ids.push(id.to_owned());
                }
            }
            if let Some(number) = tagged_ticket(message)
                && seen_tags.insert(number)
            {
                keys.tagged_tickets.push(number);
            }
            let loop_references = item_loop_references(item);
            for id in &loop_references.outbox_message_ids {
                if seen_ids.insert(id.clone()) {
                    keys.thread_ids.push(id.clone());
                }
            }
            if let Some(number) = loop_references.ticket_header
                && seen_tags.insert(number)
            {
                keys.tagged_tickets.push(number);
            }
        }
    }
    keys
}

/// Decides a step per item, in order. Per item, first match wins:
///
/// 1. its `(message_id, content_hash)` or its source position is known: duplicate;
/// 2. a parsed message one of whose thread ids (in precedence order) names a
///    known message: a reply on that message's ticket;
/// 3. a parsed message whose subject tags a known ticket: a reply on it;
/// 4. otherwise a new ticket (parsed) or a new quarantine ticket.
///
/// A reply ends `resolved` and `pending_customer`; a closed ticket stays closed.
pub(crate) fn plan_batch(
    items: &[IngestItem],
    known: &mut Known,
    ids: &mut IdAllocator,
) -> Vec<Step> {
    items
        .iter()
        .map(|item| plan_item(item, known, ids))
        .collect()
}

fn plan_item(item: &IngestItem, known: &mut Known, ids: &mut IdAllocator) -> Step {
    let (message_id, content_hash) = message_key(item);
    let key = (message_id.to_owned(), content_hash.to_owned());
    let position = position_key(item);
    let duplicate_of = known.message_keys.get(&key).copied().or_else(|| {
        position
            .as_ref()
            .and_then(|position| known.positions.get(position).copied())
    });
    if let Some(ticket) = duplicate_of {
        return Step::Duplicate { ticket };
    }

    let (step, ticket) = match &item.content {
        IngestContent::Parsed { message, .. } => {
            let loop_references = item_loop_references(item);
            let thread_ticket = thread_ids(message)
                .chain(
                    loop_references
                        .outbox_message_ids
                        .iter()
                        .map(String::as_str),
                )
                .find_map(|id| known.message_tickets.get(id).copied())
                .or_else(|| {
                    tagged_ticket(message)
                        .filter(|number| {
                            known.ticket_statuses.contains_key(number)
                                && same_organisation(message, known.ticket_requesters.get(number))
                        })
                        .or(loop_references
                            .ticket_header
                            .filter(|number| known.ticket_statuses.contains_key(number)))
                });
            match thread_ticket {
                Some(ticket) => {
                    let status = known
                        .ticket_statuses
                        .get(&ticket)
                        .copied()
                        .unwrap_or(TicketStatus::Open);
                    // Machine-sent mail (an out-of-office, a bounce) is no answer.
                    let reopen_from = (!is_automatic(message)
                        && matches!(
                            status,
                            TicketStatus::Resolved | TicketStatus::PendingCustomer
                        ))
                    .then_some(status);
                    let step = Step::Thread {
                        ticket,
                        message: ids.next_message(),
                        reopen_from,
                    };
                    (step, ticket)
                }
                None => {
                    let ticket = ids.next_ticket();
                    known
                        .ticket_requesters
                        .insert(ticket, message.sender_email());
                    let message = ids.next_message();
                    (Step::Create { ticket, message }, ticket)
                }
            }
        }
        IngestContent::Quarantined { .. } => {
            let ticket = ids.next_ticket();
            let message = ids.next_message();
            (Step::Quarantine { ticket, message }, ticket)
        }
    };

    // What this item adds, for the items after it: its keys, its Message-ID
    // (the earliest message with an id keeps it), its ticket, open.
    known.message_keys.insert(key, ticket);
    if let Some(position) = position {
        known.positions.insert(position, ticket);
    }
    known
        .message_tickets
        .entry(message_id.to_owned())
        .or_insert(ticket);
    known.ticket_statuses.insert(
        ticket,
        match known.ticket_statuses.get(&ticket) {
            Some(TicketStatus::Closed) => TicketStatus::Closed,
            _ => TicketStatus::Open,
        },
    );
    step
}

/// Whether the sender of `message` may thread onto a ticket by naming its tag:
/// the same address as the requester, or the same domain.
fn same_organisation(message: &InboundMessage, requester: Option<&String>) -> bool {
    let sender = message.sender_email();
    let domain = |address: &str| {
        address
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_owned())
    };
    match requester {
        Some(requester) if !sender.is_empty() && !requester.is_empty() => {
            sender == *requester
                || domain(&sender).is_some_and(|sender_domain| {
                    domain(requester).as_deref() == Some(sender_domain.as_str())
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SourceKind, SourcePosition};
    use supportd_core::{
        Category, Classification, Entities, MessageFlags, Priority, QueueName, RouteDecision, Tier,
    };

    fn parsed(
        message_id: &str,
        subject: &str,
        in_reply_to: &[&str],
        references: &[&str],
    ) -> IngestItem {
        IngestItem {
            raw: message_id.as_bytes().to_vec(),
            source: SourcePosition::new(SourceKind::File, "test"),
            received_at: 0,
            content: IngestContent::Parsed {
                message: InboundMessage {
                    message_id: message_id.to_owned(),
                    message_id_synthesized: false,
                    in_reply_to: in_reply_to.iter().map(|id| (*id).to_owned()).collect(),
                    references: references.iter().map(|id| (*id).to_owned()).collect(),
                    from: Some(supportd_core::Address {
                        name: None,
                        email: "ann@contoso.com".to_owned(),
                    }),
                    reply_to: vec![],
                    to: vec![],
                    cc: vec![],
                    subject: subject.to_owned(),
                    date: None,
                    body_text: String::new(),
                    body_html: None,
                    new_text: String::new(),
                    forwarded_text: String::new(),
                    attachments: vec![],
                    flags: MessageFlags::default(),
                    size: 0,
                    content_hash: format!("hash-of-{message_id}"),
                    warnings: vec![],
                },
                classification: Classification {
                    tier: Tier::Platform,
                    category: Category::Billing,
                    in_scope: true,
                    microsoft: false,
                    confidence: 1.0,
                    reasons: vec![],
                    entities: Entities::default(),
                    account: None,
                },
                route: RouteDecision {
                    queue: QueueName::quarantine(),
                    priority: Priority::Normal,
                    first_response_due: 0,
                    rule: String::new(),
                    reasons: vec![],
                    actions: vec![],
                },
            },
        }
    }

    fn known_message(known: &mut Known, message_id: &str, ticket: i64, status: TicketStatus) {
        known.message_tickets.insert(message_id.to_owned(), ticket);
        known.ticket_statuses.insert(ticket, status);
    }

    fn plan(items: &[IngestItem], known: &mut Known) -> Vec<Step> {
        plan_batch(items, known, &mut IdAllocator::new(1000, 0))
    }

    #[test]
    fn in_reply_to_wins_over_references_and_references_go_newest_first() {
        let mut known = Known::default();
        known_message(&mut known, "old@x", 7, TicketStatus::Open);
        known_message(&mut known, "newer@x", 8, TicketStatus::Open);
        known_message(&mut known, "parent@x", 9, TicketStatus::Open);
        let items = [
            parsed("a@x", "", &["parent@x"], &["old@x", "newer@x"]),
            parsed("b@x", "", &["unknown@x"], &["old@x", "newer@x"]),
        ];
        let steps = plan(&items, &mut known);
        assert_eq!(
            steps[0],
            Step::Thread {
                ticket: 9,
                message: 1,
                reopen_from: None
            }
        );
        assert_eq!(
            steps[1],
            Step::Thread {
                ticket: 8,
                message: 2,
                reopen_from: None
            }
        );
    }

    #[test]
    fn headers_win_over_the_subject_tag_and_an_unknown_tag_creates() {
        let mut known = Known::default();
        known_message(&mut known, "parent@x", 9, TicketStatus::Open);
        known.ticket_statuses.insert(5, TicketStatus::Closed);
        known
            .ticket_requesters
            .insert(5, "bob@contoso.com".to_owned());
        let items = [
            parsed("a@x", "Re: [CS-5] x", &["parent@x"], &[]),
            parsed("b@x", "Re: [CS-5] x", &[], &[]),
            parsed("c@x", "Re: [CS-6] x", &[], &[]),
        ];
        let steps = plan(&items, &mut known);
        assert_eq!(
            steps[0],
            Step::Thread {
                ticket: 9,
                message: 1,
                reopen_from: None
            }
        );
        assert_eq!(
            steps[1],
            Step::Thread {
                ticket: 5,
                message: 2,
                reopen_from: None
            }
        );
        assert_eq!(
            steps[2],
            Step::Create {
                ticket: 1001,
                message: 3
            }
        );
    }

    #[test]
    fn a_batch_sees_its_own_earlier_items() {
        let mut known = Known::default();
        let root = parsed("root@x", "VM down", &[], &[]);
        let items = [
            root.clone(),
            parsed("r@x", "Re: VM down", &["root@x"], &[]),
            root,
            parsed("t@x", "Re: [CS-1001] VM down", &[], &[]),
        ];
        let steps = plan(&items, &mut known);
        assert_eq!(
            steps,
            [
                Step::Create {
                    ticket: 1001,
                    message: 1
                },
                Step::Thread {
                    ticket: 1001,
                    message: 2,
                    reopen_from: None
                },
                Step::Duplicate { ticket: 1001 },
                Step::Thread {
                    ticket: 1001,
                    message: 3,
                    reopen_from: None
                },
            ]
        );
    }

    #[test]
    fn the_first_reply_reopens_a_resolved_ticket_and_the_second_finds_it_open() {
        let mut known = Known::default();
        known_message(&mut known, "root@x", 3, TicketStatus::Resolved);
        let items = [
            parsed("r1@x", "", &["root@x"], &[]),
            parsed("r2@x", "", &["root@x"], &[]),
        ];
        let steps = plan(&items, &mut known);
        assert_eq!(
            steps[0],
            Step::Thread {
                ticket: 3,
                message: 1,
                reopen_from: Some(TicketStatus::Resolved)
            }
        );
        assert_eq!(
            steps[1],
            Step::Thread {
                ticket: 3,
                message: 2,
                reopen_from: None
            }
        );
    }

    #[test]
    fn reserved_ids_plan_like_counted_ones_and_a_tag_of_a_new_ticket_threads() {
        let items = [
            parsed("root@x", "VM down", &[], &[]),
            parsed("dup@x", "x", &[], &[]),
            parsed("dup@x", "x", &[], &[]),
            parsed("t@x", "Re: [CS-5001] VM down", &[], &[]),
        ];
        let known = Known::default();
        // Placeholders: the tag names no ticket, so 3 tickets for 3 messages.
        assert_eq!(count_new_ids(&items, &known), (3, 3));
        let mut ids = IdAllocator::reserved(vec![5001, 5007, 5008], vec![70, 71, 72]);
        let steps = plan_batch(&items, &mut known.clone(), &mut ids);
        assert_eq!(ids.missing(), 0);
        assert_eq!(
            steps,
            [
                Step::Create {
                    ticket: 5001,
                    message: 70
                },
                Step::Create {
                    ticket: 5007,
                    message: 71
                },
                Step::Duplicate { ticket: 5007 },
                Step::Thread {
                    ticket: 5001,
                    message: 72,
                    reopen_from: None
                },
            ]
        );
        let mut short = IdAllocator::reserved(vec![1], vec![]);
        plan_batch(&items, &mut Known::default(), &mut short);
        assert!(short.missing() > 0);
    }

    #[test]
    fn lookup_keys_are_collected_once_each() {
        let items = [
            parsed("a@x", "[CS-5]", &["p@x"], &["p@x", "q@x"]),
            parsed("a@x", "[CS-5]", &["p@x"], &[]),
        ];
        let keys = lookup_keys(&items);
        assert_eq!(
            keys.message_keys,
            [("a@x".to_owned(), "hash-of-a@x".to_owned())]
        );
        assert_eq!(keys.thread_ids, ["p@x", "q@x"]);
        assert_eq!(keys.tagged_tickets, [5]);
        assert!(keys.positions.is_empty());
    }
}
