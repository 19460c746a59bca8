//! The store against real databases: every test body gets a fresh, migrated
//! store of each backend under test (SQLite files in temp dirs today; the
//! PostgreSQL backend joins `backends()` when it exists).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use supportd_core::{
    AccountRecord, Action, Address, Attachment, Category, Classification, Entities, InboundMessage,
    MessageFlags, Priority, QueueName, Relationship, RouteDecision, TicketRef, TicketStatus, Tier,
};
use supportd_store::{
    AuditKind, Checkpoint, IngestContent, IngestItem, IngestOutcome, QueueQuery, SourceKind,
    SourcePosition, Store, StoreError, TicketOrder,
};
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Harness

/// A backend the tests run on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
}

fn backends() -> Vec<Backend> {
    vec![Backend::Sqlite]
}

/// A fresh, migrated store; the temp dir lives as long as the store.
struct TestStore {
    store: Store,
    _dir: TempDir,
}

async fn fresh_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("data/supportd.db").display());
            let store = Store::open(&url).await.unwrap();
            store.migrate().await.unwrap();
            TestStore { store, _dir: dir }
        }
    }
}

/// Runs `body` on a fresh store of every backend.
macro_rules! store_test {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            for backend in backends() {
                let test_store = fresh_store(backend).await;
                $body(&test_store.store).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Test data

const T0: i64 = 1_780_000_000;

fn address(email: &str) -> Address {
    Address {
        name: Some(format!("Name of {email}")),
        email: email.to_owned(),
    }
}

/// A parsed message with `message_id` and `subject` from `from`; raw bytes and
/// hash derive from them, so equal arguments give byte-identical mail.
fn message(message_id: &str, subject: &str, from: &str) -> InboundMessage {
    let body = format!("Hello,\n\nabout {subject}.\n\nRegards");
    let raw = raw_bytes(message_id, subject, from, &body);
    InboundMessage {
        message_id: message_id.to_owned(),
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(address(from)),
        reply_to: vec![],
        to: vec![Address {
            name: None,
            email: "CloudSupport@centurylink.com".to_owned(),
        }],
        cc: vec![],
        subject: subject.to_owned(),
        date: Some(T0 - 60),
        body_text: body.clone(),
        body_html: None,
        new_text: body,
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        size: raw.len() as u64,
        content_hash: content_hash(&raw),
        warnings: vec![],
    }
}

fn raw_bytes(message_id: &str, subject: &str, from: &str, body: &str) -> Vec<u8> {
    format!("Message-ID: <{message_id}>\r\nFrom: {from}\r\nSubject: {subject}\r\n\r\n{body}\r\n")
        .into_bytes()
}

fn content_hash(raw: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    raw.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn reply(
    message_id: &str,
    subject: &str,
    from: &str,
    in_reply_to: &[&str],
    references: &[&str],
) -> InboundMessage {
    let mut message = message(message_id, subject, from);
    message.in_reply_to = in_reply_to.iter().map(|id| (*id).to_owned()).collect();
    message.references = references.iter().map(|id| (*id).to_owned()).collect();
    message
}

fn classification(tier: Tier, category: Category) -> Classification {
    Classification {
        tier,
        category,
        in_scope: supportd_core::in_scope(tier, category),
        microsoft: false,
        confidence: 0.875,
        reasons: vec![
            format!("rule `{category}` matched"),
            "sender domain contoso.com".into(),
        ],
        entities: Entities {
            subscription_ids: vec!["0f6b0000-0000-0000-0000-000000000001".into()],
            ..Entities::default()
        },
        account: None,
    }
}

fn route(queue: &str, priority: Priority, due: i64) -> RouteDecision {
    RouteDecision {
        queue: QueueName::parse(queue).unwrap(),
        priority,
        first_response_due: due,
        rule: format!("{queue}-rule"),
        reasons: vec![format!("queue {queue} by rule")],
        actions: vec![Action::Acknowledge],
    }
}

/// A parsed item from a file source, routed to `platform-tier1` at normal priority.
fn item(message: InboundMessage) -> IngestItem {
    item_routed(
        message,
        route("platform-tier1", Priority::Normal, T0 + 3600),
    )
}

fn item_routed(message: InboundMessage, route: RouteDecision) -> IngestItem {
    let raw = raw_bytes(
        &message.message_id,
        &message.subject,
        &message.sender_email(),
        &message.body_text,
    );
    IngestItem {
        raw,
        source: SourcePosition::new(SourceKind::Maildir, "/var/mail/support/new"),
        received_at: T0,
        content: IngestContent::Parsed {
            message,
            classification: classification(Tier::Platform, Category::Billing),
            route,
        },
    }
}

fn quarantined_item(raw: &[u8], reason: &str) -> IngestItem {
    IngestItem {
        raw: raw.to_vec(),
        source: SourcePosition::new(SourceKind::Stdin, ""),
        received_at: T0,
        content: IngestContent::Quarantined {
            quarantine_reason: reason.to_owned(),
            message_id: format!("{}@supportd.invalid", content_hash(raw)),
            content_hash: content_hash(raw),
            subject: "garbled".to_owned(),
            from: None,
            due: T0 + 7200,
        },
    }
}

fn cs(number: u64) -> TicketRef {
    TicketRef::new(number)
}

async fn ingest(store: &Store, items: Vec<IngestItem>) -> Vec<IngestOutcome> {
    store.ingest_batch(&items).await.unwrap()
}

async fn audit_kinds(store: &Store, ticket_ref: TicketRef) -> Vec<String> {
    store
        .ticket(ticket_ref)
        .await
        .unwrap()
        .unwrap()
        .audit_events
        .into_iter()
        .map(|event| event.kind.to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Opening and migrating

#[tokio::test]
async fn open_creates_parent_directory_and_migrate_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/supportd.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.queue_summaries().await.unwrap(), vec![]);
    assert_eq!(store.accounts().await.unwrap(), vec![]);
    assert_eq!(store.ticket(cs(1001)).await.unwrap(), None);
    store.close().await;

    // Reopening the migrated file finds its data and needs nothing new.
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let outcomes = ingest(
        &store,
        vec![item(message("a@x", "Invoice", "ann@contoso.com"))],
    )
    .await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1001))]);
}

#[tokio::test]
async fn unusable_urls_are_refused_with_the_reason() {
    for url in [
        "postgres://localhost/supportd",
        "mysql://x",
        "sqlite::memory:",
        "sqlite://",
        "data.db",
    ] {
        let error = Store::open(url).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidUrl { .. }),
            "{url}: {error}"
        );
        assert!(error.to_string().contains(url), "{error}");
    }
}

#[tokio::test]
async fn a_directory_where_the_file_should_be_is_unavailable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supportd.db");
    std::fs::create_dir(&path).unwrap();
    let error = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Ingest: create and duplicate

async fn creates_tickets_numbered_from_1001(store: &Store) {
    let outcomes = ingest(
        store,
        vec![
            item(message("a@x", "Invoice wrong", "ann@contoso.com")),
            item(message("b@x", "VM down", "bob@fabrikam.com")),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Created(cs(1001)),
            IngestOutcome::Created(cs(1002))
        ]
    );
    let outcomes = ingest(store, vec![item(message("c@x", "Quota", "cy@contoso.com"))]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1003))]);

    let detail = store.ticket(cs(1002)).await.unwrap().unwrap();
    let ticket = &detail.ticket;
    assert_eq!(ticket.queue.as_str(), "platform-tier1");
    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.priority, Priority::Normal);
    assert_eq!(ticket.subject, "VM down");
    assert_eq!(ticket.requester, Some(address("bob@fabrikam.com")));
    assert_eq!(ticket.created_at, T0);
    assert_eq!(ticket.first_response_due, T0 + 3600);
    assert_eq!(ticket.message_count, 1);
    let labels = ticket.labels.unwrap();
    assert_eq!(
        (labels.tier, labels.category),
        (Tier::Platform, Category::Billing)
    );
    assert!(labels.in_scope && !labels.microsoft);
    assert!((labels.confidence - 0.875).abs() < 1e-6);
}
store_test!(
    creates_tickets_numbered_from_1001_sqlite,
    creates_tickets_numbered_from_1001
);

async fn same_bytes_twice_is_a_duplicate_in_one_batch_and_across_batches(store: &Store) {
    let first = message("dup@x", "Invoice wrong", "ann@contoso.com");
    let outcomes = ingest(store, vec![item(first.clone()), item(first.clone())]).await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Created(cs(1001)),
            IngestOutcome::Duplicate(cs(1001))
        ]
    );
    let outcomes = ingest(store, vec![item(first.clone())]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Duplicate(cs(1001))]);

    // Same Message-ID, other bytes: not a duplicate (the key is both). It names
    // no parent, so it is a new ticket, and both copies are kept.
    let mut changed = first.clone();
    changed.content_hash = "another-hash".into();
    let outcomes = ingest(store, vec![item(changed)]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1002))]);

    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(detail.messages.len(), 1);
    assert_eq!(
        audit_kinds(store, cs(1001)).await,
        ["ticket_created", "routed", "mail_queued"]
    );
}
store_test!(
    same_bytes_twice_is_a_duplicate_in_one_batch_and_across_batches_sqlite,
    same_bytes_twice_is_a_duplicate_in_one_batch_and_across_batches
);

async fn an_imap_position_already_stored_is_a_duplicate(store: &Store) {
    let mut first = item(message("p1@x", "Invoice", "ann@contoso.com"));
    first.source = SourcePosition::imap("INBOX", 42, 7);
    // Other content at the same (mailbox, uidvalidity, uid): re-fetched after a crash.
    let mut again = item(message("p2@x", "Other", "bob@contoso.com"));
    again.source = SourcePosition::imap("INBOX", 42, 7);
    // Same UID under a new UIDVALIDITY, other content: a new message.
    let mut renumbered = item(message("p3@x", "Third", "cy@contoso.com"));
    renumbered.source = SourcePosition::imap("INBOX", 43, 7);
    let outcomes = ingest(store, vec![first, again, renumbered]).await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Created(cs(1001)),
            IngestOutcome::Duplicate(cs(1001)),
            IngestOutcome::Created(cs(1002)),
        ]
    );
    let detail = store.ticket(cs(1002)).await.unwrap().unwrap();
    let source = &detail.messages[0].source;
    assert_eq!(source, &SourcePosition::imap("INBOX", 43, 7));
}
store_test!(
    an_imap_position_already_stored_is_a_duplicate_sqlite,
    an_imap_position_already_stored_is_a_duplicate
);

async fn checkpoint_moves_with_its_batch_and_only_then(store: &Store) {
    assert_eq!(store.checkpoint("support", "INBOX").await.unwrap(), None);
    let checkpoint = |uidvalidity, last_uid| Checkpoint {
        mailbox: "support".into(),
        folder: "INBOX".into(),
        uidvalidity,
        last_uid,
    };
    // The `start = now` position of a new folder: no items, only the checkpoint.
    store
        .ingest_batch_with_checkpoint(&[], &checkpoint(42, 10))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint(42, 10))
    );
    let mut first = item(message("c1@x", "Invoice", "ann@contoso.com"));
    first.source = SourcePosition::imap("support/INBOX", 42, 11);
    let outcomes = store
        .ingest_batch_with_checkpoint(&[first], &checkpoint(42, 11))
        .await
        .unwrap();
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1001))]);
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint(42, 11))
    );
    // The stored positions are found again by UID (for acknowledging after a crash).
    assert_eq!(
        store
            .stored_imap_uids("support/INBOX", 42, &[9, 11, 12])
            .await
            .unwrap(),
        vec![11]
    );
    assert_eq!(
        store
            .stored_imap_uids("support/INBOX", 41, &[11])
            .await
            .unwrap(),
        Vec::<u32>::new()
    );
    // Another folder keeps its own position.
    assert_eq!(
        store.checkpoint("support", "Escalations").await.unwrap(),
        None
    );
    // A new UIDVALIDITY replaces the old position.
    store
        .ingest_batch_with_checkpoint(&[], &checkpoint(43, 0))
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint(43, 0))
    );
}
store_test!(
    checkpoint_moves_with_its_batch_and_only_then_sqlite,
    checkpoint_moves_with_its_batch_and_only_then
);

// ---------------------------------------------------------------------------
// Ingest: threading

async fn reply_threads_by_in_reply_to_without_rerouting(store: &Store) {
    ingest(
        store,
        vec![item(message("root@x", "VM down", "ann@contoso.com"))],
    )
    .await;
    let answer = reply("r1@x", "Re: VM down", "ann@contoso.com", &["root@x"], &[]);
    // The reply's own routing would send it elsewhere: it must be ignored.
    let outcomes = ingest(
        store,
        vec![item_routed(answer, route("billing", Priority::Urgent, T0))],
    )
    .await;
    assert_eq!(outcomes, vec![IngestOutcome::Threaded(cs(1001))]);
    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(detail.ticket.queue.as_str(), "platform-tier1");
    assert_eq!(detail.ticket.priority, Priority::Normal);
    assert_eq!(detail.ticket.message_count, 2);
    assert_eq!(detail.routes.len(), 1);
    assert!(
        detail.messages[1].classification.is_some(),
        "kept for the record"
    );
    assert_eq!(
        audit_kinds(store, cs(1001)).await,
        [
            "ticket_created",
            "routed",
            "mail_queued",
            "message_threaded"
        ]
    );
}
store_test!(
    reply_threads_by_in_reply_to_without_rerouting_sqlite,
    reply_threads_by_in_reply_to_without_rerouting
);

async fn reply_threads_by_references(store: &Store) {
    ingest(
        store,
        vec![
            item(message("root@x", "VM down", "ann@contoso.com")),
            item(message("other@x", "Invoice", "bob@contoso.com")),
        ],
    )
    .await;
    // In-Reply-To names a message we never saw; References reach the root.
    let answer = reply(
        "r2@x",
        "Re: Re: VM down",
        "ann@contoso.com",
        &["unknown@elsewhere"],
        &["root@x", "unknown@elsewhere"],
    );
    let outcomes = ingest(store, vec![item(answer)]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Threaded(cs(1001))]);
}
store_test!(
    reply_threads_by_references_sqlite,
    reply_threads_by_references
);

async fn reply_threads_by_subject_tag_of_an_existing_ticket(store: &Store) {
    ingest(
        store,
        vec![item(message("root@x", "VM down", "ann@contoso.com"))],
    )
    .await;
    let outcomes = ingest(
        store,
        vec![
            item(message(
                "t1@x",
                "RE: [ext] [cs-1001] VM down",
                "ann@contoso.com",
            )),
            // A tag of a ticket that does not exist: a new ticket.
            item(message("t2@x", "Re: [CS-99999] lost", "bob@contoso.com")),
            // A colleague at the same company may add to the ticket by its tag.
            item(message("t3@x", "Re: [CS-1001] VM down", "cy@contoso.com")),
            // A stranger who knows the number may not: a ticket of their own.
            item(message("t4@x", "Re: [CS-1001] VM down", "eve@evil.example")),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Threaded(cs(1001)),
            IngestOutcome::Created(cs(1002)),
            IngestOutcome::Threaded(cs(1001)),
            IngestOutcome::Created(cs(1003)),
        ]
    );
}
store_test!(
    reply_threads_by_subject_tag_of_an_existing_ticket_sqlite,
    reply_threads_by_subject_tag_of_an_existing_ticket
);

async fn reply_in_the_same_batch_as_its_parent_threads(store: &Store) {
    let outcomes = ingest(
        store,
        vec![
            item(message("root@x", "VM down", "ann@contoso.com")),
            item(message("unrelated@x", "Invoice", "bob@contoso.com")),
            item(reply(
                "r1@x",
                "Re: VM down",
                "ann@contoso.com",
                &["root@x"],
                &["root@x"],
            )),
            item(reply(
                "r2@x",
                "Re: VM down",
                "ann@contoso.com",
                &["r1@x"],
                &["root@x", "r1@x"],
            )),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Created(cs(1001)),
            IngestOutcome::Created(cs(1002)),
            IngestOutcome::Threaded(cs(1001)),
            IngestOutcome::Threaded(cs(1001)),
        ]
    );
    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    let ids: Vec<&str> = detail
        .messages
        .iter()
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(ids, ["root@x", "r1@x", "r2@x"]);
}
store_test!(
    reply_in_the_same_batch_as_its_parent_threads_sqlite,
    reply_in_the_same_batch_as_its_parent_threads
);

async fn a_reply_reopens_a_resolved_ticket_but_not_a_closed_one(store: &Store) {
    ingest(
        store,
        vec![
            item(message("resolved@x", "VM down", "ann@contoso.com")),
            item(message("closed@x", "Invoice", "bob@contoso.com")),
        ],
    )
    .await;
    let previous = store
        .set_status(cs(1001), TicketStatus::Resolved, "alice", T0 + 10)
        .await
        .unwrap();
    assert_eq!(previous, Some(TicketStatus::Open));
    store
        .set_status(cs(1002), TicketStatus::Closed, "alice", T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        store
            .set_status(cs(4242), TicketStatus::Closed, "alice", T0)
            .await
            .unwrap(),
        None
    );

    let mut late_reply = item(reply(
        "r1@x",
        "Re: VM down",
        "ann@contoso.com",
        &["resolved@x"],
        &[],
    ));
    late_reply.received_at = T0 + 20;
    let outcomes = ingest(
        store,
        vec![
            late_reply,
            item(reply(
                "r2@x",
                "Re: Invoice",
                "bob@contoso.com",
                &["closed@x"],
                &[],
            )),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            IngestOutcome::Threaded(cs(1001)),
            IngestOutcome::Threaded(cs(1002))
        ]
    );

    let reopened = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(reopened.ticket.status, TicketStatus::Open);
    assert_eq!(reopened.ticket.updated_at, T0 + 20);
    let events = &reopened.audit_events;
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.slug()).collect();
    assert_eq!(
        kinds,
        [
            "ticket_created",
            "routed",
            "mail_queued",
            "status_changed",
            "message_threaded",
            "status_changed"
        ]
    );
    assert_eq!(events[3].actor, "alice");
    assert_eq!(events[3].detail["to"], "resolved");
    assert_eq!(events[5].actor, "supportd");
    assert_eq!(events[5].detail["from"], "resolved");
    assert_eq!(events[5].detail["to"], "open");

    let closed = store.ticket(cs(1002)).await.unwrap().unwrap();
    assert_eq!(closed.ticket.status, TicketStatus::Closed);
    assert_eq!(closed.messages.len(), 2);
}
store_test!(
    a_reply_reopens_a_resolved_ticket_but_not_a_closed_one_sqlite,
    a_reply_reopens_a_resolved_ticket_but_not_a_closed_one
);

// ---------------------------------------------------------------------------
// Ingest: quarantine

async fn quarantine_keeps_the_raw_bytes_and_its_duplicate_is_detected(store: &Store) {
    let raw = b"\xff\xfe not a mail \x00 at all".to_vec();
    let outcomes = ingest(store, vec![quarantined_item(&raw, "no header found")]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Quarantined(cs(1001))]);
    let outcomes = ingest(store, vec![quarantined_item(&raw, "no header found")]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Duplicate(cs(1001))]);

    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(detail.ticket.queue.as_str(), QueueName::QUARANTINE);
    assert_eq!(detail.ticket.labels, None);
    assert_eq!(detail.ticket.requester, None);
    assert_eq!(detail.ticket.first_response_due, T0 + 7200);
    assert!(detail.routes.is_empty());
    let stored = &detail.messages[0];
    assert_eq!(stored.quarantine_reason.as_deref(), Some("no header found"));
    assert_eq!(stored.classification, None);
    assert_eq!(stored.size, raw.len() as u64);
    assert_eq!(store.raw_message(stored.id).await.unwrap(), Some(raw));
    assert_eq!(store.raw_message(stored.id + 1000).await.unwrap(), None);
    let events = &detail.audit_events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, AuditKind::Quarantined);
    assert_eq!(events[0].detail["reason"], "no header found");
}
store_test!(
    quarantine_keeps_the_raw_bytes_and_its_duplicate_is_detected_sqlite,
    quarantine_keeps_the_raw_bytes_and_its_duplicate_is_detected
);

// ---------------------------------------------------------------------------
// Reads

async fn ticket_detail_has_messages_attachments_route_and_audit(store: &Store) {
    let mut first = message("root@x", "VM down", "ann@contoso.com");
    first.attachments = vec![
        Attachment {
            filename: "screenshot.png".into(),
            content_type: "image/png".into(),
            size: 12345,
            sha256: "ab".repeat(32),
        },
        Attachment {
            filename: "log.txt".into(),
            content_type: "text/plain".into(),
            size: 10,
            sha256: "cd".repeat(32),
        },
    ];
    first.cc = vec![address("boss@contoso.com")];
    first.flags.forwarded = true;
    first.warnings = vec!["bad date".into()];
    first.body_html = Some("<p>Hello</p>".into());
    let mut first_item = item(first.clone());
    first_item.source = SourcePosition::imap("INBOX", 1, 2);
    let raw = first_item.raw.clone();
    ingest(
        store,
        vec![
            first_item,
            item(reply(
                "r1@x",
                "Re: VM down",
                "ann@contoso.com",
                &["root@x"],
                &["root@x"],
            )),
        ],
    )
    .await;

    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(detail.messages.len(), 2);
    let stored = &detail.messages[0];
    assert_eq!(stored.message_id, "root@x");
    assert_eq!(stored.attachments, first.attachments);
    assert_eq!(stored.cc, first.cc);
    assert_eq!(stored.to, first.to);
    assert_eq!(stored.from, first.from);
    assert_eq!(stored.flags, first.flags);
    assert_eq!(stored.warnings, first.warnings);
    assert_eq!(stored.body_text, first.body_text);
    assert_eq!(stored.body_html, first.body_html);
    assert_eq!(stored.new_text, first.new_text);
    assert_eq!(stored.sent_at, first.date);
    assert_eq!(stored.received_at, T0);
    assert_eq!(stored.content_hash, first.content_hash);
    assert_eq!(stored.source, SourcePosition::imap("INBOX", 1, 2));
    assert_eq!(
        stored.classification,
        Some(classification(Tier::Platform, Category::Billing))
    );
    assert_eq!(store.raw_message(stored.id).await.unwrap(), Some(raw));
    assert_eq!(detail.messages[1].in_reply_to, ["root@x"]);
    assert_eq!(detail.messages[1].attachments, []);

    assert_eq!(detail.routes.len(), 1);
    assert_eq!(detail.routes[0].message_id, stored.id);
    assert_eq!(
        detail.routes[0].route,
        route("platform-tier1", Priority::Normal, T0 + 3600)
    );

    let events = &detail.audit_events;
    let kinds: Vec<&AuditKind> = events.iter().map(|event| &event.kind).collect();
    assert_eq!(
        kinds,
        [
            &AuditKind::TicketCreated,
            &AuditKind::Routed,
            &AuditKind::MailQueued,
            &AuditKind::MessageThreaded
        ]
    );
    assert!(
        events
            .iter()
            .all(|event| event.at == T0 && event.actor == "supportd")
    );
    assert_eq!(events[1].detail["queue"], "platform-tier1");
    assert_eq!(events[1].detail["rule"], "platform-tier1-rule");
    assert_eq!(events[2].detail["kind"], "acknowledge");
    assert_eq!(events[3].detail["message_id"], "r1@x");
}
store_test!(
    ticket_detail_has_messages_attachments_route_and_audit_sqlite,
    ticket_detail_has_messages_attachments_route_and_audit
);

async fn queue_summaries_count_open_overdue_and_priorities(store: &Store) {
    let routed = |id: &str, queue: &str, priority: Priority, due: i64, received_at: i64| {
        let mut item = item_routed(
            message(id, id, "ann@contoso.com"),
            route(queue, priority, due),
        );
        item.received_at = received_at;
        item
    };
    ingest(
        store,
        vec![
            routed("a@x", "billing", Priority::Low, T0 + 100, T0 - 50), // 1001 not overdue
            routed("b@x", "billing", Priority::High, T0 - 100, T0 - 500), // 1002 overdue
            routed("c@x", "billing", Priority::High, T0 - 1, T0 - 10),  // 1003 overdue
            routed("d@x", "billing", Priority::Urgent, T0 - 1000, T0 - 9000), // 1004 resolved below
            routed("e@x", "platform-tier1", Priority::Normal, T0, T0),  // 1005 pending below
            quarantined_item(b"junk", "unparseable"),                   // 1006
        ],
    )
    .await;
    store
        .set_status(cs(1004), TicketStatus::Resolved, "alice", T0)
        .await
        .unwrap();
    store
        .set_status(cs(1005), TicketStatus::PendingCustomer, "alice", T0)
        .await
        .unwrap();

    let summaries = store.queue_summaries_at(T0).await.unwrap();
    let names: Vec<&str> = summaries.iter().map(|s| s.queue.as_str()).collect();
    assert_eq!(names, ["billing", "platform-tier1", "quarantine"]);

    let billing = &summaries[0];
    assert_eq!(billing.open, 3);
    assert_eq!(billing.pending_customer, 0);
    assert_eq!(billing.oldest_open_created_at, Some(T0 - 500));
    assert_eq!(billing.overdue, 2);
    assert_eq!(
        billing.open_by_priority,
        vec![
            (Priority::Low, 1),
            (Priority::Normal, 0),
            (Priority::High, 2),
            (Priority::Urgent, 0),
        ]
    );

    let platform = &summaries[1];
    assert_eq!((platform.open, platform.pending_customer), (0, 1));
    assert_eq!(platform.oldest_open_created_at, None);
    assert_eq!(platform.overdue, 0);

    let quarantine = &summaries[2];
    assert_eq!((quarantine.open, quarantine.overdue), (1, 0));
    assert_eq!(quarantine.open_by_priority[1], (Priority::Normal, 1));
}
store_test!(
    queue_summaries_count_open_overdue_and_priorities_sqlite,
    queue_summaries_count_open_overdue_and_priorities
);

async fn queue_tickets_order_and_keyset_paging(store: &Store) {
    let items: Vec<IngestItem> = (0..7)
        .map(|index| {
            let queue = if index == 3 {
                "billing"
            } else {
                "platform-tier1"
            };
            item_routed(
                message(
                    &format!("m{index}@x"),
                    &format!("ticket {index}"),
                    "ann@contoso.com",
                ),
                route(queue, Priority::Normal, T0),
            )
        })
        .collect();
    ingest(store, items).await;
    // platform-tier1 holds 1001, 1002, 1003, 1005, 1006, 1007; 1006 is resolved.
    store
        .set_status(cs(1006), TicketStatus::Resolved, "alice", T0)
        .await
        .unwrap();
    let queue = QueueName::parse("platform-tier1").unwrap();

    let numbers = |tickets: Vec<supportd_store::TicketSummary>| -> Vec<u64> {
        tickets.into_iter().map(|t| t.ticket_ref.number()).collect()
    };

    let mut query = QueueQuery::open(queue.clone());
    query.limit = 2;
    let page1 = numbers(store.queue_tickets(&query).await.unwrap());
    assert_eq!(page1, [1007, 1005]);
    query.after = Some(cs(1005));
    let page2 = numbers(store.queue_tickets(&query).await.unwrap());
    assert_eq!(page2, [1003, 1002]);
    query.after = Some(cs(1002));
    let page3 = numbers(store.queue_tickets(&query).await.unwrap());
    assert_eq!(page3, [1001]);
    query.after = Some(cs(1001));
    assert_eq!(
        numbers(store.queue_tickets(&query).await.unwrap()),
        Vec::<u64>::new()
    );

    let mut oldest = QueueQuery::open(queue.clone());
    oldest.order = TicketOrder::OldestFirst;
    oldest.limit = 3;
    assert_eq!(
        numbers(store.queue_tickets(&oldest).await.unwrap()),
        [1001, 1002, 1003]
    );
    oldest.after = Some(cs(1003));
    assert_eq!(
        numbers(store.queue_tickets(&oldest).await.unwrap()),
        [1005, 1007]
    );

    let mut resolved = QueueQuery::open(queue);
    resolved.status = TicketStatus::Resolved;
    let tickets = store.queue_tickets(&resolved).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].ticket_ref, cs(1006));
    assert_eq!(tickets[0].status, TicketStatus::Resolved);
    assert_eq!(tickets[0].subject, "ticket 5");
    assert_eq!(tickets[0].message_count, 1);

    let unknown = QueueQuery::open(QueueName::parse("nobody").unwrap());
    assert!(store.queue_tickets(&unknown).await.unwrap().is_empty());
}
store_test!(
    queue_tickets_order_and_keyset_paging_sqlite,
    queue_tickets_order_and_keyset_paging
);

// ---------------------------------------------------------------------------
// Accounts

fn account(
    customer: &str,
    subscription: Option<&str>,
    relationship: Relationship,
) -> AccountRecord {
    AccountRecord {
        customer: customer.to_owned(),
        domains: vec!["contoso.com".into(), "contoso.co.uk".into()],
        contacts: vec!["it@contoso.com".into()],
        tenant_id: Some("7d1c0000-0000-0000-0000-000000000000".into()),
        subscription_id: subscription.map(str::to_owned),
        relationship,
        managed_os: relationship == Relationship::ResellerAgreement,
        is_default: subscription.is_none(),
        source: format!("accounts.csv:{customer}"),
    }
}

async fn replace_accounts_round_trips_and_replaces(store: &Store) {
    let first = vec![
        account("Contoso Ltd", None, Relationship::ElasticboxArm),
        account(
            "Contoso Ltd",
            Some("0f6b0000-0000-0000-0000-000000000001"),
            Relationship::ResellerAgreement,
        ),
        account(
            "O'Brien \"Tools\"; DROP TABLE accounts;--",
            None,
            Relationship::None,
        ),
    ];
    assert_eq!(store.replace_accounts(&first).await.unwrap(), 3);
    assert_eq!(store.accounts().await.unwrap(), first);

    let second = vec![account("Fabrikam", None, Relationship::ElasticboxArm)];
    assert_eq!(store.replace_accounts(&second).await.unwrap(), 1);
    assert_eq!(store.accounts().await.unwrap(), second);

    assert_eq!(store.replace_accounts(&[]).await.unwrap(), 0);
    assert_eq!(store.accounts().await.unwrap(), vec![]);
}
store_test!(
    replace_accounts_round_trips_and_replaces_sqlite,
    replace_accounts_round_trips_and_replaces
);

// ---------------------------------------------------------------------------
// Text is data

async fn quotes_and_sql_keywords_are_stored_verbatim(store: &Store) {
    let subject = "Robert'); DROP TABLE tickets;-- \"quoted\" `tick` \\ % _ ' OR '1'='1 ünï 🚀";
    let from = "o'hara+\"x\"@contoso.com";
    let message_id = "id'with\"quotes;DELETE FROM messages@x";
    let mut tricky = message(message_id, subject, from);
    tricky.from = Some(Address {
        name: Some("O'Hara; SELECT * FROM accounts".into()),
        email: from.into(),
    });
    tricky.body_text = "line1\n'; UPDATE tickets SET status='closed';--\n\0nul".into();
    let outcomes = ingest(store, vec![item(tricky.clone())]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1001))]);
    let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
    assert_eq!(detail.ticket.subject, subject);
    assert_eq!(detail.ticket.requester, tricky.from);
    assert_eq!(detail.messages[0].message_id, message_id);
    assert_eq!(detail.messages[0].body_text, tricky.body_text);
    assert_eq!(detail.ticket.status, TicketStatus::Open);

    // The quoted id threads like any other.
    let answer = reply("r@x", "Re: hi", "ann@contoso.com", &[message_id], &[]);
    assert_eq!(
        ingest(store, vec![item(answer)]).await,
        vec![IngestOutcome::Threaded(cs(1001))]
    );
}
store_test!(
    quotes_and_sql_keywords_are_stored_verbatim_sqlite,
    quotes_and_sql_keywords_are_stored_verbatim
);

async fn an_empty_batch_does_nothing(store: &Store) {
    assert_eq!(store.ingest_batch(&[]).await.unwrap(), vec![]);
    assert_eq!(store.queue_summaries().await.unwrap(), vec![]);
}
store_test!(
    an_empty_batch_does_nothing_sqlite,
    an_empty_batch_does_nothing
);

async fn concurrent_batches_both_commit(store: &Store) {
    let batch = |prefix: &str| -> Vec<IngestItem> {
        (0..50)
            .map(|index| {
                item(message(
                    &format!("{prefix}{index}@x"),
                    "load",
                    "ann@contoso.com",
                ))
            })
            .collect()
    };
    let (left, right) = (batch("left"), batch("right"));
    let (a, b) = tokio::join!(store.ingest_batch(&left), store.ingest_batch(&right));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut numbers: Vec<u64> = a
        .iter()
        .chain(&b)
        .map(|o| o.ticket_ref().number())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1001..1101).collect::<Vec<u64>>());
}
store_test!(
    concurrent_batches_both_commit_sqlite,
    concurrent_batches_both_commit
);

// ---------------------------------------------------------------------------
// SQLite specifics

#[tokio::test]
async fn sqlite_audit_events_refuse_update_and_delete() {
    use sqlx::Connection;
    let test_store = fresh_store(Backend::Sqlite).await;
    ingest(
        &test_store.store,
        vec![item(message("a@x", "x", "ann@contoso.com"))],
    )
    .await;
    let path = test_store.store.database().to_owned();
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_events SET kind = 'forged'",
        "DELETE FROM audit_events",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut connection)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    // The CHECK constraints hold the slugs.
    let error = sqlx::query("UPDATE tickets SET status = 'Open'")
        .execute(&mut connection)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("CHECK"), "{error}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supportd.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let url = format!("sqlite:{}", path.display());
    let error = match Store::open(&url).await {
        Ok(store) => store.migrate().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_version_is_refused() {
    use sqlx::Connection;
    let test_store = fresh_store(Backend::Sqlite).await;
    let path = test_store.store.database().to_owned();
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let error = test_store.store.migrate().await.unwrap_err();
    assert!(matches!(error, StoreError::Migration { .. }), "{error:?}");
    assert!(error.to_string().contains(&path), "{error}");
}

#[tokio::test]
async fn sqlite_a_failing_item_rolls_back_the_whole_batch() {
    use sqlx::Connection;
    let test_store = fresh_store(Backend::Sqlite).await;
    let store = &test_store.store;
    let path = store.database().to_owned();
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    // Sabotage: the database refuses one particular subject.
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.subject = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
    )
    .execute(&mut connection)
    .await
    .unwrap();

    let batch = vec![
        item(message("first@x", "fine", "ann@contoso.com")),
        item(message("second@x", "boom", "ann@contoso.com")),
    ];
    let error = store.ingest_batch(&batch).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("refused by test trigger"),
        "{error:#}"
    );
    assert_eq!(store.ticket(cs(1001)).await.unwrap(), None);
    assert_eq!(store.queue_summaries().await.unwrap(), vec![]);

    // A checkpoint in a failing batch does not move either.
    let checkpoint = Checkpoint {
        mailbox: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid: 2,
    };
    store
        .ingest_batch_with_checkpoint(&batch, &checkpoint)
        .await
        .unwrap_err();
    assert_eq!(store.checkpoint("support", "INBOX").await.unwrap(), None);

    // Nothing was consumed: the same first item now creates CS-1001.
    let outcomes = ingest(store, vec![batch[0].clone()]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1001))]);
}

// ---------------------------------------------------------------------------
// One mapping: every slug of the core enums is accepted by the schema

async fn every_core_slug_round_trips(store: &Store) {
    let items: Vec<IngestItem> = Category::ALL
        .iter()
        .enumerate()
        .map(|(index, category)| {
            let tier = Tier::ALL[index % Tier::ALL.len()];
            let priority = Priority::ALL[index % Priority::ALL.len()];
            let mut item = item_routed(
                message(
                    &format!("slug{index}@x"),
                    category.slug(),
                    "ann@contoso.com",
                ),
                route("platform-tier1", priority, T0),
            );
            if let IngestContent::Parsed {
                classification: c,
                route,
                ..
            } = &mut item.content
            {
                *c = classification(tier, *category);
                c.account = Some(account("Contoso", None, Relationship::ALL[index % 3]));
                route.actions = Action::ALL.to_vec();
            }
            item
        })
        .collect();
    let outcomes = ingest(store, items.clone()).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, IngestOutcome::Created(_)))
    );
    for (item, outcome) in items.iter().zip(&outcomes) {
        let detail = store.ticket(outcome.ticket_ref()).await.unwrap().unwrap();
        let IngestContent::Parsed {
            classification,
            route,
            ..
        } = &item.content
        else {
            unreachable!()
        };
        assert_eq!(
            detail.messages[0].classification.as_ref(),
            Some(classification)
        );
        assert_eq!(&detail.routes[0].route, route);
        assert_eq!(detail.ticket.priority, route.priority);
    }
    for status in TicketStatus::ALL {
        store
            .set_status(cs(1001), *status, "alice", T0)
            .await
            .unwrap();
        let detail = store.ticket(cs(1001)).await.unwrap().unwrap();
        assert_eq!(detail.ticket.status, *status);
    }
}
store_test!(
    every_core_slug_round_trips_sqlite,
    every_core_slug_round_trips
);
