//! The store against real databases: every test body runs twice, as
//! `<body>::sqlite` on a fresh SQLite file in a temp dir and as
//! `<body>::postgres` on a fresh PostgreSQL database created for the test
//! (dropped at the end), so the tests run in parallel.
//!
//! PostgreSQL is found at `SUPPORTD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, the server the tests may
//! create databases on). When it cannot be reached, the PostgreSQL half fails
//! under `CI=true` and is skipped with a notice otherwise.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use supportd_core::{
    AccountRecord, Action, Address, Attachment, Category, Classification, Entities, InboundMessage,
    MessageFlags, Priority, QueueName, Relationship, RouteDecision, TicketRef, TicketStatus, Tier,
};
use supportd_store::{
    AuditKind, Checkpoint, Fence, IngestContent, IngestItem, IngestOutcome, NewSession,
    OutboxClaim, OutboxKind, OutboxStatus, QueueQuery, SourceKind, SourcePosition, StaffRole,
    Store, StoreError, TicketOrder,
};
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Harness

/// A backend the tests run on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated store; the temp dir or the database lives as long as it.
struct TestStore {
    store: Store,
    _dir: Option<TempDir>,
    /// The PostgreSQL database to drop at the end.
    database: Option<String>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            // Drop is synchronous and may run inside the test's runtime: drop
            // the database from a thread with a runtime of its own.
            let admin = postgres_admin_url();
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    use sqlx::Connection;
                    let mut connection = sqlx::PgConnection::connect(&admin).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                    )))
                    .execute(&mut connection)
                    .await
                    .map(|_| ())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop a test database: {dropped:?}");
            }
        }
    }
}

fn postgres_admin_url() -> String {
    std::env::var("SUPPORTD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The URL of database `name` on the test server.
fn postgres_url(name: &str) -> String {
    let admin = postgres_admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

async fn fresh_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("data/supportd.db").display());
            let store = Store::open(&url).await.unwrap();
            store.migrate().await.unwrap();
            TestStore {
                store,
                _dir: Some(dir),
                database: None,
            }
        }
        Backend::Postgres => {
            let (store, database) = fresh_postgres_database().await;
            TestStore {
                store,
                _dir: None,
                database: Some(database),
            }
        }
    }
}

/// A new, migrated database on the test server, with a name no other test uses.
async fn fresh_postgres_database() -> (Store, String) {
    use sqlx::Connection;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let database = format!(
        "supportd_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        fastrand::u32(..)
    );
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = Store::open(&postgres_url(&database)).await.unwrap();
    store.migrate().await.unwrap();
    (store, database)
}

/// Whether the PostgreSQL half runs: fails under CI=true when the server
/// cannot be reached, skips with a notice otherwise.
async fn postgres_available() -> bool {
    use sqlx::Connection;
    let url = postgres_admin_url();
    match sqlx::PgConnection::connect(&url).await {
        Ok(_) => true,
        Err(error) if std::env::var("CI").is_ok_and(|value| value == "true") => {
            panic!("PostgreSQL at {url} is unreachable under CI=true: {error}")
        }
        Err(error) => {
            eprintln!(
                "NOTICE: PostgreSQL at {url} is unreachable ({error}); skipping the PostgreSQL half of this test."
            );
            false
        }
    }
}

/// Runs `body` as two tests, `body::sqlite` and `body::postgres`, each on a
/// fresh store of its backend.
macro_rules! store_test {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                let test_store = super::fresh_store(super::Backend::Sqlite).await;
                super::$body(&test_store.store).await;
            }

            #[tokio::test]
            async fn postgres() {
                if !super::postgres_available().await {
                    return;
                }
                let test_store = super::fresh_store(super::Backend::Postgres).await;
                super::$body(&test_store.store).await;
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
        "mysql://x",
        "postgres//localhost",
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
store_test!(creates_tickets_numbered_from_1001);

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
store_test!(same_bytes_twice_is_a_duplicate_in_one_batch_and_across_batches);

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
store_test!(an_imap_position_already_stored_is_a_duplicate);

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
store_test!(checkpoint_moves_with_its_batch_and_only_then);

/// Runs `sqlite` or `postgres` (by backend) on the store's database through a
/// connection of its own: for tests that change the schema under the store.
async fn execute_directly(store: &Store, sqlite: &'static str, postgres: &'static str) {
    use sqlx::Connection;
    match store {
        Store::Sqlite(_) => {
            let url = format!("sqlite:{}", store.database());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlite)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        Store::Postgres(_) => {
            let mut connection = sqlx::PgConnection::connect(store.database()).await.unwrap();
            sqlx::raw_sql(postgres)
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }
}

async fn one_refused_item_is_quarantined_and_the_rest_of_its_batch_stored(store: &Store) {
    let checkpoint = Checkpoint {
        mailbox: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid: 3,
    };
    let items: Vec<IngestItem> = (1..=3)
        .map(|uid| {
            let mut item = item(message(
                &format!("poison-{uid}@x"),
                &format!("Question {uid}"),
                "ann@contoso.com",
            ));
            item.source = SourcePosition::imap("support/INBOX", 7, uid);
            item
        })
        .collect();
    // The database refuses the second message (a trigger stands in for a
    // value nobody foresaw): it must neither block the mailbox nor be lost.
    execute_directly(
        store,
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages \
         WHEN NEW.message_id = 'poison-2@x' AND NEW.quarantine_reason IS NULL \
         BEGIN SELECT RAISE(ABORT, 'poisoned for the test'); END",
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.message_id = 'poison-2@x' AND NEW.quarantine_reason IS NULL THEN \
         RAISE EXCEPTION 'poisoned for the test'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_poison BEFORE INSERT ON messages \
         FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    )
    .await;
    let outcomes = store
        .ingest_batch_with_checkpoint(&items, &checkpoint)
        .await
        .unwrap();
    // (PostgreSQL's sequence skips the numbers of the refused attempts.)
    let [
        IngestOutcome::Created(_),
        IngestOutcome::Quarantined(refused),
        IngestOutcome::Created(_),
    ] = outcomes[..]
    else {
        panic!("created, quarantined, created: {outcomes:?}");
    };
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint.clone())
    );
    let refused = store.ticket(refused).await.unwrap().unwrap();
    let stored = &refused.messages[0];
    assert!(
        stored
            .quarantine_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("refused")),
        "{:?}",
        stored.quarantine_reason
    );
    assert_eq!(
        store.raw_message(stored.id).await.unwrap().unwrap(),
        items[1].raw,
        "the bytes are kept"
    );
    // The same batch again: all duplicates, nothing doubled.
    let again = store
        .ingest_batch_with_checkpoint(&items, &checkpoint)
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|outcome| matches!(outcome, IngestOutcome::Duplicate(_))),
        "{again:?}"
    );
}
store_test!(one_refused_item_is_quarantined_and_the_rest_of_its_batch_stored);

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
store_test!(reply_threads_by_in_reply_to_without_rerouting);

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
store_test!(reply_threads_by_references);

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
store_test!(reply_threads_by_subject_tag_of_an_existing_ticket);

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
store_test!(reply_in_the_same_batch_as_its_parent_threads);

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
store_test!(a_reply_reopens_a_resolved_ticket_but_not_a_closed_one);

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
store_test!(quarantine_keeps_the_raw_bytes_and_its_duplicate_is_detected);

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
store_test!(ticket_detail_has_messages_attachments_route_and_audit);

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
store_test!(queue_summaries_count_open_overdue_and_priorities);

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
store_test!(queue_tickets_order_and_keyset_paging);

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
store_test!(replace_accounts_round_trips_and_replaces);

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
    match store {
        Store::Sqlite(_) => assert_eq!(detail.messages[0].body_text, tricky.body_text),
        // PostgreSQL text cannot hold NUL: it reads back as U+FFFD, and the
        // raw bytes keep the original.
        Store::Postgres(_) => assert_eq!(
            detail.messages[0].body_text,
            tricky.body_text.replace('\0', "\u{FFFD}")
        ),
    }
    // The same mail again is a duplicate on both backends.
    assert_eq!(
        ingest(store, vec![item(tricky.clone())]).await,
        vec![IngestOutcome::Duplicate(cs(1001))]
    );
    assert_eq!(detail.ticket.status, TicketStatus::Open);

    // The quoted id threads like any other.
    let answer = reply("r@x", "Re: hi", "ann@contoso.com", &[message_id], &[]);
    assert_eq!(
        ingest(store, vec![item(answer)]).await,
        vec![IngestOutcome::Threaded(cs(1001))]
    );
}
store_test!(quotes_and_sql_keywords_are_stored_verbatim);

async fn every_source_kind_is_stored_and_read_back(store: &Store) {
    let items: Vec<IngestItem> = SourceKind::ALL
        .into_iter()
        .enumerate()
        .map(|(n, kind)| {
            let mut item = item(message(
                &format!("kind-{n}@x"),
                &format!("Source {kind}"),
                "ann@contoso.com",
            ));
            item.source = match kind {
                SourceKind::Imap => SourcePosition::imap("support/INBOX", 7, 1),
                kind => SourcePosition::new(kind, format!("{kind}-place")),
            };
            item
        })
        .collect();
    let outcomes = ingest(store, items).await;
    assert_eq!(outcomes.len(), SourceKind::ALL.len());
    for (n, kind) in SourceKind::ALL.into_iter().enumerate() {
        let ticket_ref = cs(1001 + n as u64);
        let detail = store.ticket(ticket_ref).await.unwrap().unwrap();
        assert_eq!(detail.messages[0].source.kind, kind, "{ticket_ref}");
    }
}
store_test!(every_source_kind_is_stored_and_read_back);

async fn an_empty_batch_does_nothing(store: &Store) {
    assert_eq!(store.ingest_batch(&[]).await.unwrap(), vec![]);
    assert_eq!(store.queue_summaries().await.unwrap(), vec![]);
}
store_test!(an_empty_batch_does_nothing);

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
store_test!(concurrent_batches_both_commit);

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
async fn sqlite_an_item_refused_even_in_quarantine_fails_its_batch_alone() {
    use sqlx::Connection;
    let test_store = fresh_store(Backend::Sqlite).await;
    let store = &test_store.store;
    let path = store.database().to_owned();
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    // Sabotage: the database refuses one particular subject, even quarantined.
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
    let checkpoint = Checkpoint {
        mailbox: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid: 2,
    };
    // The batch fails, one by one the good item is stored, the bad one
    // cannot be stored at all: the call fails and the checkpoint stays.
    let error = store
        .ingest_batch_with_checkpoint(&batch, &checkpoint)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("refused by test trigger"),
        "{error:#}"
    );
    assert_eq!(store.checkpoint("support", "INBOX").await.unwrap(), None);
    assert!(store.ticket(cs(1001)).await.unwrap().is_some());

    // The source sends the batch again: the good item is a duplicate.
    let outcomes = ingest(store, vec![batch[0].clone()]).await;
    assert_eq!(outcomes, vec![IngestOutcome::Duplicate(cs(1001))]);
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
store_test!(every_core_slug_round_trips);

// ---------------------------------------------------------------------------
// Several instances on one database

/// A second handle on the same database: what another `supportd serve` has.
async fn second_instance(store: &Store) -> Store {
    let url = match store {
        Store::Sqlite(_) => format!("sqlite:{}", store.database()),
        Store::Postgres(_) => store.database().to_owned(),
    };
    let other = Store::open(&url).await.unwrap();
    other.migrate().await.unwrap();
    other
}

async fn two_instances_ingesting_the_same_mail_store_it_once(store: &Store) {
    let other = second_instance(store).await;
    let batch: Vec<IngestItem> = (0..200)
        .map(|index| {
            let mut item = item(message(
                &format!("same{index}@x"),
                "same mail, two instances",
                &format!("user{index}@contoso.com"),
            ));
            item.source = SourcePosition::imap("support/INBOX", 9, index + 1);
            item
        })
        .collect();
    let (left, right) = tokio::join!(store.ingest_batch(&batch), other.ingest_batch(&batch));
    let (left, right) = (left.unwrap(), right.unwrap());
    for (index, (left, right)) in left.iter().zip(&right).enumerate() {
        // Exactly one of the two created each ticket; the other saw a duplicate
        // of the same ticket.
        let created = [left, right]
            .iter()
            .filter(|outcome| matches!(outcome, IngestOutcome::Created(_)))
            .count();
        assert_eq!(created, 1, "item {index}: {left:?} / {right:?}");
        assert_eq!(left.ticket_ref(), right.ticket_ref(), "item {index}");
    }
    let summary = &store.queue_summaries().await.unwrap()[0];
    assert_eq!(summary.open, 200);
    // One acknowledgment per ticket, not two.
    let queued = store
        .outbox(Some(OutboxStatus::Queued), 1000)
        .await
        .unwrap();
    assert_eq!(queued.len(), 200);
    other.close().await;
}
store_test!(two_instances_ingesting_the_same_mail_store_it_once);

/// Several instances ingest mail from one sender at the same moment: the
/// per-address limit on automatic mail (5 per hour) still holds in total,
/// not per instance.
async fn acknowledgment_limit_holds_across_instances_ingesting_at_once(store: &Store) {
    let instances = [
        store.clone(),
        second_instance(store).await,
        second_instance(store).await,
        second_instance(store).await,
    ];
    let batch = |instance: usize| -> Vec<IngestItem> {
        (0..5)
            .map(|index| {
                item(message(
                    &format!("flood-{instance}-{index}@x"),
                    &format!("outage report {instance}.{index}"),
                    "flood@contoso.com",
                ))
            })
            .collect()
    };
    let batches: Vec<Vec<IngestItem>> = (0..4).map(batch).collect();
    let (a, b, c, d) = tokio::join!(
        instances[0].ingest_batch(&batches[0]),
        instances[1].ingest_batch(&batches[1]),
        instances[2].ingest_batch(&batches[2]),
        instances[3].ingest_batch(&batches[3]),
    );
    let created = [a, b, c, d]
        .into_iter()
        .flat_map(|outcomes| outcomes.unwrap())
        .filter(|outcome| matches!(outcome, IngestOutcome::Created(_)))
        .count();
    assert_eq!(created, 20, "every mail opens its own ticket");
    let acknowledgments = store
        .outbox(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|mail| mail.recipient.contains("flood@contoso.com"))
        .filter(|mail| mail.status == OutboxStatus::Queued)
        .count();
    assert_eq!(
        acknowledgments, 5,
        "the limit is 5 per address, across instances"
    );
    for other in &instances[1..] {
        other.close().await;
    }
}
store_test!(acknowledgment_limit_holds_across_instances_ingesting_at_once);

/// Creates `count` tickets from distinct senders, each with one queued acknowledgment.
async fn tickets_with_acknowledgments(store: &Store, count: usize) {
    let items: Vec<IngestItem> = (0..count)
        .map(|index| {
            item(message(
                &format!("ack{index}@x"),
                "please acknowledge",
                &format!("sender{index}@contoso.com"),
            ))
        })
        .collect();
    ingest(store, items).await;
}

async fn concurrent_outbox_claims_never_share_a_row(store: &Store) {
    tickets_with_acknowledgments(store, 120).await;
    let other = second_instance(store).await;
    let claim = OutboxClaim {
        now: T0 + 10,
        lease_s: 300,
        limit: 7,
    };
    let mut claimed = Vec::new();
    loop {
        let (a, b, c) = tokio::join!(
            store.claim_outbox(claim),
            other.claim_outbox(claim),
            store.claim_outbox(claim)
        );
        let round: Vec<i64> = [a.unwrap(), b.unwrap(), c.unwrap()]
            .into_iter()
            .flatten()
            .map(|mail| mail.id)
            .collect();
        if round.is_empty() {
            break;
        }
        claimed.extend(round);
    }
    let total = claimed.len();
    claimed.sort_unstable();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "a row was claimed twice");
    assert_eq!(total, 120);
    // Leased rows come back only after the lease.
    let later = OutboxClaim {
        now: T0 + 10 + 301,
        ..claim
    };
    assert_eq!(store.claim_outbox(later).await.unwrap().len(), 7);
    other.close().await;
}
store_test!(concurrent_outbox_claims_never_share_a_row);

async fn outbox_marks_and_staff_replies_are_audited(store: &Store) {
    tickets_with_acknowledgments(store, 3).await;
    let claim = OutboxClaim {
        now: T0 + 1,
        lease_s: 60,
        limit: 10,
    };
    let mails = store.claim_outbox(claim).await.unwrap();
    assert_eq!(mails.len(), 3);
    assert!(mails.iter().all(|mail| mail.attempts == 1));
    store.save_rendered(mails[0].id, b"first").await.unwrap();
    store.save_rendered(mails[0].id, b"second").await.unwrap();
    store
        .mark_outbox_sent(mails[0].id, T0 + 2, "250 OK")
        .await
        .unwrap();
    store
        .mark_outbox_retry(mails[1].id, T0 + 2, T0 + 100, "421 busy")
        .await
        .unwrap();
    store
        .mark_outbox_dead(mails[2].id, T0 + 2, "550 no such user")
        .await
        .unwrap();
    let sent = store.outbox(Some(OutboxStatus::Sent), 10).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].rendered.as_deref(), Some(&b"first"[..]));
    assert_eq!(sent[0].sent_at, Some(T0 + 2));
    assert!(
        store
            .retry_outbox(mails[2].id, T0 + 3, "alice")
            .await
            .unwrap()
    );
    assert!(
        !store
            .retry_outbox(mails[0].id, T0 + 3, "alice")
            .await
            .unwrap()
    );
    let kinds = audit_kinds(store, mails[2].ticket_ref).await;
    assert_eq!(
        kinds,
        [
            "ticket_created",
            "routed",
            "mail_queued",
            "mail_dead",
            "mail_queued"
        ]
    );
    let message_id = store
        .queue_staff_reply(mails[0].ticket_ref, "We are on it.", "alice", T0 + 4)
        .await
        .unwrap()
        .unwrap();
    let newest = &store.outbox(None, 1).await.unwrap()[0];
    assert_eq!(newest.message_id, message_id);
    assert_eq!(newest.kind, OutboxKind::StaffReply);
    assert_eq!(newest.body.as_deref(), Some("We are on it."));
    assert_eq!(newest.in_reply_to.as_deref(), Some("ack0@x"));
    assert_eq!(
        store
            .queue_staff_reply(cs(999_999), "x", "alice", T0)
            .await
            .unwrap(),
        None
    );
}
store_test!(outbox_marks_and_staff_replies_are_audited);

async fn staff_sessions_and_tokens_round_trip(store: &Store) {
    assert!(
        store
            .add_staff("ana", StaffRole::Staff, "$argon2id$x", 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_staff("ana", StaffRole::ReadOnly, "$argon2id$y", 11)
            .await
            .unwrap()
    );
    let account = store.staff_account("ana").await.unwrap().unwrap();
    assert_eq!(account.role, StaffRole::Staff);
    let session = NewSession {
        id_hash: "abc".into(),
        staff_id: account.id,
        created_at: 100,
        expires_at: 200,
    };
    store.create_session(&session).await.unwrap();
    assert_eq!(
        store.session("abc", 150).await.unwrap().unwrap().name,
        "ana"
    );
    assert!(store.session("abc", 200).await.unwrap().is_none());
    store.delete_session("abc").await.unwrap();
    assert!(store.session("abc", 150).await.unwrap().is_none());
    assert!(
        store
            .add_api_token("portal", StaffRole::ReadOnly, "t1", 5)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_api_token("portal", StaffRole::Staff, "t2", 5)
            .await
            .unwrap()
    );
    assert_eq!(
        store.api_token("t1").await.unwrap().unwrap().role,
        StaffRole::ReadOnly
    );
    store.ping().await.unwrap();
}
store_test!(staff_sessions_and_tokens_round_trip);

// ---------------------------------------------------------------------------
// Leases

async fn a_lease_has_one_holder_and_is_taken_over_after_expiry(store: &Store) {
    let other = second_instance(store).await;
    let name = "mailbox:support/INBOX";
    let long = Duration::from_secs(30);
    assert!(
        store
            .try_acquire_lease(name, "instance-a", long)
            .await
            .unwrap()
    );
    // Held and not expired: the other instance is refused, the holder may
    // acquire again (it extends its own lease).
    assert!(
        !other
            .try_acquire_lease(name, "instance-b", long)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_acquire_lease(name, "instance-a", long)
            .await
            .unwrap()
    );
    assert!(store.renew_lease(name, "instance-a", long).await.unwrap());
    assert!(!other.renew_lease(name, "instance-b", long).await.unwrap());
    let lease = other.lease(name).await.unwrap().unwrap();
    assert_eq!(lease.holder, "instance-a");
    assert!(!lease.expired);
    assert!(lease.expires_at_ms > lease.acquired_at_ms);

    // The holder stops renewing (killed): after expiry the other takes over,
    // and the old holder's renewal now fails, so it knows to stop.
    assert!(
        store
            .renew_lease(name, "instance-a", Duration::from_millis(150))
            .await
            .unwrap()
    );
    assert!(
        !other
            .try_acquire_lease(name, "instance-b", long)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.lease(name).await.unwrap().unwrap().expired);
    assert!(
        other
            .try_acquire_lease(name, "instance-b", long)
            .await
            .unwrap()
    );
    assert!(!store.renew_lease(name, "instance-a", long).await.unwrap());
    assert!(
        !store
            .try_acquire_lease(name, "instance-a", long)
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease(name).await.unwrap().unwrap().holder,
        "instance-b"
    );

    // Release hands it over at once; releasing what one does not hold does nothing.
    assert!(!store.release_lease(name, "instance-a").await.unwrap());
    assert!(other.release_lease(name, "instance-b").await.unwrap());
    assert_eq!(store.lease(name).await.unwrap(), None);
    assert!(
        store
            .try_acquire_lease(name, "instance-a", long)
            .await
            .unwrap()
    );
    // Leases are independent by name.
    assert!(
        other
            .try_acquire_lease("mailbox:support/Archive", "instance-b", long)
            .await
            .unwrap()
    );
    other.close().await;
}
store_test!(a_lease_has_one_holder_and_is_taken_over_after_expiry);

async fn a_fenced_batch_commits_only_while_its_lease_is_held(store: &Store) {
    let other = second_instance(store).await;
    let name = "mailbox:support";
    let long = Duration::from_secs(30);
    let fence = |holder: &str| Fence {
        lease: name.to_owned(),
        holder: holder.to_owned(),
    };
    let checkpoint = |last_uid| Checkpoint {
        mailbox: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 7,
        last_uid,
    };
    let mail = |uid: u32| {
        let mut item = item(message(&format!("f{uid}@x"), "VM down", "ann@contoso.com"));
        item.source = SourcePosition::imap("support/INBOX", 7, uid);
        item
    };
    assert!(
        store
            .try_acquire_lease(name, "instance-a", long)
            .await
            .unwrap()
    );
    store
        .ingest_batch_fenced(&[mail(1)], &checkpoint(1), &fence("instance-a"))
        .await
        .unwrap();

    // instance-a stalls past its lease; instance-b takes over. A batch
    // instance-a had in hand is refused whole: no ticket, no checkpoint.
    assert!(
        store
            .renew_lease(name, "instance-a", Duration::from_millis(100))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        other
            .try_acquire_lease(name, "instance-b", long)
            .await
            .unwrap()
    );
    let refused = store
        .ingest_batch_fenced(&[mail(2)], &checkpoint(2), &fence("instance-a"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::LeaseLost { holder, .. } if holder == "instance-a"),
        "{refused:#}"
    );
    assert!(!refused.may_be_one_item(), "not retried item by item");
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint(1))
    );
    assert_eq!(store.ticket(cs(1002)).await.unwrap().map(|_| ()), None);

    // The new holder commits the same batch.
    let outcomes = other
        .ingest_batch_fenced(&[mail(2)], &checkpoint(2), &fence("instance-b"))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        store.checkpoint("support", "INBOX").await.unwrap(),
        Some(checkpoint(2))
    );
    // A lease nobody holds fences too.
    assert!(other.release_lease(name, "instance-b").await.unwrap());
    assert!(matches!(
        other
            .ingest_batch_fenced(&[mail(3)], &checkpoint(3), &fence("instance-b"))
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    other.close().await;
}
store_test!(a_fenced_batch_commits_only_while_its_lease_is_held);

async fn concurrent_acquires_give_a_lease_to_exactly_one(store: &Store) {
    let other = second_instance(store).await;
    let ttl = Duration::from_secs(30);
    for round in 0..20 {
        let name = format!("race-{round}");
        let (a, b, c) = tokio::join!(
            store.try_acquire_lease(&name, "a", ttl),
            other.try_acquire_lease(&name, "b", ttl),
            other.try_acquire_lease(&name, "c", ttl)
        );
        let winners = [a.unwrap(), b.unwrap(), c.unwrap()]
            .into_iter()
            .filter(|won| *won)
            .count();
        assert_eq!(winners, 1, "round {round}");
    }
    other.close().await;
}
store_test!(concurrent_acquires_give_a_lease_to_exactly_one);

// ---------------------------------------------------------------------------
// PostgreSQL specifics

#[tokio::test]
async fn postgres_audit_events_refuse_update_delete_and_truncate() {
    use sqlx::Connection;
    if !postgres_available().await {
        return;
    }
    let test_store = fresh_store(Backend::Postgres).await;
    ingest(
        &test_store.store,
        vec![item(message("a@x", "x", "ann@contoso.com"))],
    )
    .await;
    let url = postgres_url(test_store.database.as_deref().unwrap());
    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    for statement in [
        "UPDATE audit_events SET kind = 'forged'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events CASCADE",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut connection)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    let error = sqlx::query("UPDATE tickets SET status = 'Open'")
        .execute(&mut connection)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("check constraint"), "{error}");
}

#[tokio::test]
async fn postgres_ticket_numbers_are_never_reused_after_a_rollback() {
    use sqlx::Connection;
    if !postgres_available().await {
        return;
    }
    let test_store = fresh_store(Backend::Postgres).await;
    let store = &test_store.store;
    let url = postgres_url(test_store.database.as_deref().unwrap());
    let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.subject = 'boom' THEN RAISE EXCEPTION 'refused by test trigger'; END IF; \
         RETURN NEW; END $$",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages FOR EACH ROW \
         EXECUTE FUNCTION refuse_boom()",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let boom = item(message("second@x", "boom", "ann@contoso.com"));
    let error = store.ingest_batch(&[boom]).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("refused by test trigger"),
        "{error:#}"
    );
    assert_eq!(store.queue_summaries().await.unwrap(), vec![]);
    // The rolled-back attempts drew 1001 and more; none is handed out again.
    let fine = item(message("first@x", "fine", "ann@contoso.com"));
    let outcomes = ingest(store, vec![fine]).await;
    assert!(
        matches!(outcomes[..], [IngestOutcome::Created(number)] if number.number() > 1001),
        "{outcomes:?}"
    );
}

// ---------------------------------------------------------------------------
// Copying a whole SQLite database into PostgreSQL

#[tokio::test]
async fn copy_moves_everything_from_sqlite_into_postgres() {
    if !postgres_available().await {
        return;
    }
    let source = fresh_store(Backend::Sqlite).await;
    let store = &source.store;
    // Tickets of every kind: routed with an acknowledgment, threaded replies,
    // quarantined non-UTF-8 bytes, a staff reply, a status change.
    let mut items: Vec<IngestItem> = (0..40)
        .map(|index| {
            let mut item = item(message(
                &format!("m{index}@x"),
                &format!("case {index} 'quoted' -- ; DROP TABLE tickets"),
                &format!("user{index}@contoso.com"),
            ));
            item.source = SourcePosition::imap("support/INBOX", 3, index + 1);
            item
        })
        .collect();
    items.push(item(reply(
        "r1@x",
        "Re: case 1",
        "user1@contoso.com",
        &["m1@x"],
        &[],
    )));
    items.push(quarantined_item(
        &[0xff, 0xfe, 0x00, b'\r', b'\n', 0x80],
        "not MIME",
    ));
    ingest(store, items).await;
    store
        .set_status(cs(1002), TicketStatus::Resolved, "alice", T0 + 5)
        .await
        .unwrap();
    store
        .queue_staff_reply(cs(1003), "Looking into it.", "alice", T0 + 6)
        .await
        .unwrap()
        .unwrap();
    let mails = store
        .claim_outbox(OutboxClaim {
            now: T0 + 7,
            lease_s: 60,
            limit: 2,
        })
        .await
        .unwrap();
    store
        .save_rendered(mails[0].id, &[0, 159, 146, 150])
        .await
        .unwrap();
    store
        .mark_outbox_sent(mails[0].id, T0 + 8, "250 2.0.0 Ok")
        .await
        .unwrap();
    store
        .replace_accounts(&[account("Contoso", None, Relationship::ElasticboxArm)])
        .await
        .unwrap();
    store
        .add_staff("alice", StaffRole::Staff, "$argon2id$v=19$x", T0)
        .await
        .unwrap();
    store
        .add_api_token("monitoring", StaffRole::ReadOnly, "aa11", T0)
        .await
        .unwrap();
    store
        .ingest_batch_with_checkpoint(
            &[],
            &Checkpoint {
                mailbox: "support".into(),
                folder: "INBOX".into(),
                uidvalidity: 3,
                last_uid: 40,
            },
        )
        .await
        .unwrap();
    store
        .try_acquire_lease("mailbox:support/INBOX", "old-host", Duration::from_secs(30))
        .await
        .unwrap();

    let target = fresh_store(Backend::Postgres).await;
    let report = store.copy_to(&target.store).await.unwrap();
    assert!(report.matches(), "{report:#?}");
    let count = |table: &str| {
        report
            .tables
            .iter()
            .find(|count| count.table == table)
            .unwrap()
            .target_rows
    };
    assert_eq!(count("tickets"), 41);
    assert_eq!(count("messages"), 42);
    assert_eq!(count("raw_messages"), 42);
    assert_eq!(count("staff"), 1);
    assert_eq!(count("leases"), 1);
    assert!(count("audit_events") > 100);
    assert_eq!(report.next_ticket_number, 1042);
    assert_eq!(report.texts_with_nul, 0);

    // The target reads back exactly what the source holds.
    for number in [1001, 1002, 1003, 1041] {
        assert_eq!(
            target.store.ticket(cs(number)).await.unwrap(),
            store.ticket(cs(number)).await.unwrap(),
            "CS-{number}"
        );
    }
    let quarantined = store.ticket(cs(1041)).await.unwrap().unwrap();
    let raw_id = quarantined.messages[0].id;
    assert_eq!(
        target.store.raw_message(raw_id).await.unwrap().unwrap(),
        vec![0xff, 0xfe, 0x00, b'\r', b'\n', 0x80]
    );
    assert_eq!(
        target.store.outbox(None, 100).await.unwrap(),
        store.outbox(None, 100).await.unwrap()
    );
    assert_eq!(
        target.store.checkpoint("support", "INBOX").await.unwrap(),
        store.checkpoint("support", "INBOX").await.unwrap()
    );
    assert_eq!(
        target.store.accounts().await.unwrap(),
        store.accounts().await.unwrap()
    );
    assert!(target.store.staff_account("alice").await.unwrap().is_some());
    assert_eq!(
        target.store.api_token("aa11").await.unwrap().unwrap().name,
        "monitoring"
    );
    // Idempotency keys came along: the same mail again is a duplicate, and
    // new mail continues the numbering and the ids.
    let again = item(message(
        "m5@x",
        "case 5 'quoted' -- ; DROP TABLE tickets",
        "user5@contoso.com",
    ));
    assert_eq!(
        ingest(&target.store, vec![again]).await,
        vec![IngestOutcome::Duplicate(cs(1006))]
    );
    let outcomes = ingest(
        &target.store,
        vec![item(message("new@x", "after the move", "new@contoso.com"))],
    )
    .await;
    assert_eq!(outcomes, vec![IngestOutcome::Created(cs(1042))]);
    let detail = target.store.ticket(cs(1042)).await.unwrap().unwrap();
    assert!(detail.messages[0].id > raw_id);
    target
        .store
        .queue_staff_reply(cs(1042), "Hello", "alice", T0 + 9)
        .await
        .unwrap()
        .unwrap();

    // A second copy into the now non-empty target is refused.
    let error = store.copy_to(&target.store).await.unwrap_err();
    assert!(error.to_string().contains("not empty"), "{error}");
}
