//! The desk's store methods against a real SQLite file: filtered, breached-first
//! keyset paging (and its query plans), search, assign, move, notes, replies
//! as first responses, the SLA sweep, idempotency keys.

use supportd_core::{
    Action, Address, Category, Classification, Entities, InboundMessage, MessageFlags, Priority,
    QueueName, RouteDecision, TicketRef, TicketStatus, Tier,
};
use supportd_store::{
    DeskQuery, IdempotencyClaim, IngestContent, IngestItem, SearchQuery, SourceKind,
    SourcePosition, Store, TicketOrder,
};
use tempfile::TempDir;

const T0: i64 = 1_780_000_000;

/// A fresh, migrated store: a SQLite file, or a PostgreSQL database dropped
/// at the end.
struct TestStore {
    store: Store,
    dir: Option<TempDir>,
    database: Option<String>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            let admin = postgres_admin_url();
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
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
        }
    }
}

fn postgres_admin_url() -> String {
    std::env::var("SUPPORTD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("desk.db").display());
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        dir: Some(dir),
        database: None,
    }
}

/// A fresh PostgreSQL database; `None` (with a notice) when the server is
/// unreachable, except under CI=true, where that fails the test.
async fn postgres_store() -> Option<TestStore> {
    use sqlx::Connection;
    let admin_url = postgres_admin_url();
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(error) if std::env::var("CI").is_ok_and(|value| value == "true") => {
            panic!("PostgreSQL at {admin_url} is unreachable under CI=true: {error}")
        }
        Err(error) => {
            eprintln!("NOTICE: PostgreSQL at {admin_url} is unreachable ({error}); skipping.");
            return None;
        }
    };
    let database = format!(
        "supportd_desk_test_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let store = Store::open(&format!("{base}/{database}")).await.unwrap();
    store.migrate().await.unwrap();
    Some(TestStore {
        store,
        dir: None,
        database: Some(database),
    })
}

/// Runs `body` as `body::sqlite` and `body::postgres`, each on a fresh store.
macro_rules! desk_test {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                let test = super::sqlite_store().await;
                super::$body(&test.store).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(test) = super::postgres_store().await {
                    super::$body(&test.store).await;
                }
            }
        }
    };
}

desk_test!(sla_sweep_breaches_raises_priority_audits_and_lists_first);
desk_test!(filters_search_assign_move_and_notes);
desk_test!(idempotency_keys_remember_their_request);

struct Mail<'a> {
    subject: &'a str,
    from: &'a str,
    tier: Tier,
    category: Category,
    queue: &'a str,
    priority: Priority,
    due: i64,
    subscription: &'a str,
}

fn item(number: usize, mail: &Mail<'_>) -> IngestItem {
    let message_id = format!("m{number}@example.com");
    let raw = format!(
        "Message-ID: <{message_id}>\r\nFrom: {}\r\nSubject: {}\r\n\r\nbody {number}\r\n",
        mail.from, mail.subject
    )
    .into_bytes();
    let message = InboundMessage {
        message_id,
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(Address {
            name: None,
            email: mail.from.to_owned(),
        }),
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        subject: mail.subject.to_owned(),
        date: None,
        body_text: format!("body {number}"),
        body_html: None,
        new_text: format!("body {number}"),
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        size: raw.len() as u64,
        content_hash: format!("hash-{number}"),
        warnings: vec![],
    };
    IngestItem {
        raw,
        source: SourcePosition::new(SourceKind::Maildir, "inbox"),
        received_at: T0,
        content: IngestContent::Parsed {
            message,
            classification: Classification {
                tier: mail.tier,
                category: mail.category,
                in_scope: true,
                microsoft: false,
                confidence: 0.9,
                reasons: vec![],
                entities: Entities {
                    subscription_ids: vec![mail.subscription.to_owned()],
                    ..Entities::default()
                },
                account: None,
            },
            route: RouteDecision {
                queue: QueueName::parse(mail.queue).unwrap(),
                priority: mail.priority,
                first_response_due: mail.due,
                rule: "test".to_owned(),
                reasons: vec![],
                actions: vec![Action::Acknowledge],
            },
        },
    }
}

fn default_mail() -> Mail<'static> {
    Mail {
        subject: "Invoice charged twice",
        from: "ana@contoso.com",
        tier: Tier::Platform,
        category: Category::Billing,
        queue: "billing",
        priority: Priority::Normal,
        due: T0 + 3600,
        subscription: "0f6b0000-0000-0000-0000-000000000001",
    }
}

fn query(queue: &str) -> DeskQuery {
    DeskQuery {
        queue: QueueName::parse(queue).unwrap(),
        status: TicketStatus::Open,
        tier: None,
        category: None,
        order: TicketOrder::NewestFirst,
        after: None,
        limit: 50,
    }
}

fn numbers(tickets: &[supportd_store::DeskTicket]) -> Vec<u64> {
    tickets
        .iter()
        .map(|ticket| ticket.summary.ticket_ref.number())
        .collect()
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

async fn sla_sweep_breaches_raises_priority_audits_and_lists_first(store: &Store) {
    // 1001: due long ago; 1002: due later; 1003: due long ago but answered;
    // 1004: urgent and due long ago.
    let mut items = Vec::new();
    for (number, due, priority) in [
        (1, T0 - 100, Priority::Low),
        (2, T0 + 10_000, Priority::Normal),
        (3, T0 - 100, Priority::Normal),
        (4, T0 - 50, Priority::Urgent),
    ] {
        items.push(item(
            number,
            &Mail {
                due,
                priority,
                ..default_mail()
            },
        ));
    }
    store.ingest_batch(&items).await.unwrap();
    store
        .queue_staff_reply(TicketRef::new(1003), "On it.", "ana", T0 - 200)
        .await
        .unwrap()
        .unwrap();

    let breaches = store.sweep_sla(T0, 500).await.unwrap();
    let marked: Vec<(u64, Priority, Priority)> = breaches
        .iter()
        .map(|breach| {
            (
                breach.ticket_ref.number(),
                breach.priority_from,
                breach.priority_to,
            )
        })
        .collect();
    assert_eq!(
        marked,
        [
            (1001, Priority::Low, Priority::Normal),
            (1004, Priority::Urgent, Priority::Urgent)
        ]
    );
    assert!(
        store.sweep_sla(T0, 500).await.unwrap().is_empty(),
        "a ticket is breached once"
    );
    assert!(
        audit_kinds(store, TicketRef::new(1001))
            .await
            .contains(&"sla_breached".to_owned())
    );
    let detail = store.ticket(TicketRef::new(1001)).await.unwrap().unwrap();
    assert_eq!(detail.ticket.priority, Priority::Normal);
    let desk = store
        .desk_detail(TicketRef::new(1003))
        .await
        .unwrap()
        .unwrap();
    assert!(!desk.sla_breached);
    assert_eq!(desk.first_responded_at, Some(T0 - 200));
    assert_eq!(desk.replies.len(), 1);
    assert_eq!(desk.replies[0].body, "On it.");

    // Breached first (newest first within), then the others.
    let page = store.desk_queue(&query("billing")).await.unwrap();
    assert_eq!(numbers(&page), [1004, 1001, 1003, 1002]);
    assert!(page[0].sla_breached && !page[2].sla_breached);
    // Keyset paging crosses from the breached part into the rest.
    let mut paged = Vec::new();
    let mut page_query = DeskQuery {
        limit: 1,
        ..query("billing")
    };
    loop {
        let page = store.desk_queue(&page_query).await.unwrap();
        let Some(last) = page.last() else { break };
        paged.push(last.summary.ticket_ref.number());
        page_query.after = Some(last.summary.ticket_ref);
    }
    assert_eq!(paged, [1004, 1001, 1003, 1002]);
    let oldest = store
        .desk_queue(&DeskQuery {
            order: TicketOrder::OldestFirst,
            ..query("billing")
        })
        .await
        .unwrap();
    assert_eq!(numbers(&oldest), [1001, 1004, 1002, 1003]);

    // A first response ends the alert: 1001 leaves the breached part and is
    // not breached again, and its audit trail keeps the breach.
    store
        .queue_staff_reply(TicketRef::new(1001), "Sorry for the wait.", "ana", T0 + 5)
        .await
        .unwrap()
        .unwrap();
    let page = store.desk_queue(&query("billing")).await.unwrap();
    assert_eq!(numbers(&page), [1004, 1003, 1002, 1001]);
    assert!(store.sweep_sla(T0 + 10, 500).await.unwrap().is_empty());
    let kinds = audit_kinds(store, TicketRef::new(1001)).await;
    assert!(kinds.contains(&"sla_breached".to_owned()), "{kinds:?}");
}

async fn filters_search_assign_move_and_notes(store: &Store) {
    let items = vec![
        item(1, &default_mail()),
        item(
            2,
            &Mail {
                subject: "Patch window for the web servers",
                from: "Bob@Fabrikam.com",
                tier: Tier::ManagedOs,
                category: Category::Patching,
                subscription: "1b2c3d4e-0000-4000-8000-00000000000a",
                ..default_mail()
            },
        ),
        item(
            3,
            &Mail {
                subject: "Estimate for next month",
                category: Category::Estimates,
                ..default_mail()
            },
        ),
    ];
    store.ingest_batch(&items).await.unwrap();

    let by_tier = store
        .desk_queue(&DeskQuery {
            tier: Some(Tier::ManagedOs),
            ..query("billing")
        })
        .await
        .unwrap();
    assert_eq!(numbers(&by_tier), [1002]);
    let by_category = store
        .desk_queue(&DeskQuery {
            category: Some(Category::Estimates),
            ..query("billing")
        })
        .await
        .unwrap();
    assert_eq!(numbers(&by_category), [1003]);
    let both = store
        .desk_queue(&DeskQuery {
            tier: Some(Tier::Platform),
            category: Some(Category::Billing),
            ..query("billing")
        })
        .await
        .unwrap();
    assert_eq!(numbers(&both), [1001]);

    let search = |text: &str| {
        let query = SearchQuery::parse(text).unwrap();
        async move { numbers(&store.search(&query, 50).await.unwrap()) }
    };
    assert_eq!(search("CS-1002").await, [1002]);
    assert_eq!(search("bob@fabrikam.COM").await, [1002]);
    assert_eq!(search("1B2C3D4E-0000-4000-8000-00000000000A").await, [1002]);
    assert_eq!(
        search("0f6b0000-0000-0000-0000-000000000001").await,
        [1003, 1001]
    );
    assert_eq!(search("charged").await, [1001]);
    assert_eq!(
        search("patch web").await,
        [1002],
        "words are prefixes, all required"
    );
    assert_eq!(
        search("estimate OR invoice").await,
        Vec::<u64>::new(),
        "no operators"
    );
    assert_eq!(
        search("\"; DROP TABLE tickets; --").await,
        Vec::<u64>::new()
    );

    let ticket = TicketRef::new(1001);
    assert_eq!(
        store.assign(ticket, Some("ana"), "ana", T0).await.unwrap(),
        Some(None)
    );
    assert_eq!(
        store.assign(ticket, Some("ana"), "ana", T0).await.unwrap(),
        Some(Some("ana".to_owned()))
    );
    let moved = store
        .move_ticket(
            ticket,
            &QueueName::parse("accounts-and-access").unwrap(),
            "portal access, not billing",
            "ana",
            T0,
        )
        .await
        .unwrap();
    assert_eq!(moved.unwrap().as_str(), "billing");
    let note = store
        .add_note(ticket, "Called the customer.", "ana", T0)
        .await
        .unwrap();
    assert!(note.is_some());
    assert_eq!(
        store
            .add_note(TicketRef::new(9999), "x", "ana", T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .assign(TicketRef::new(9999), Some("ana"), "ana", T0)
            .await
            .unwrap(),
        None
    );

    let kinds = audit_kinds(store, ticket).await;
    assert_eq!(
        kinds.iter().filter(|kind| *kind == "assigned").count(),
        1,
        "assigning to the same person again changes nothing: {kinds:?}"
    );
    assert!(kinds.contains(&"moved".to_owned()) && kinds.contains(&"note_added".to_owned()));
    let moved_event = store
        .ticket(ticket)
        .await
        .unwrap()
        .unwrap()
        .audit_events
        .into_iter()
        .find(|event| event.kind.to_string() == "moved")
        .unwrap();
    assert_eq!(moved_event.detail["reason"], "portal access, not billing");
    assert_eq!(moved_event.detail["to"], "accounts-and-access");
    let in_new_queue = store
        .desk_queue(&query("accounts-and-access"))
        .await
        .unwrap();
    assert_eq!(numbers(&in_new_queue), [1001]);
    assert_eq!(in_new_queue[0].assignee.as_deref(), Some("ana"));
    let desk = store.desk_detail(ticket).await.unwrap().unwrap();
    assert_eq!(desk.notes[0].body, "Called the customer.");
}

async fn idempotency_keys_remember_their_request(store: &Store) {
    store
        .ingest_batch(&[item(1, &default_mail())])
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency_key("k", "h1", T0).await.unwrap(),
        IdempotencyClaim::New
    );
    assert_eq!(
        store.claim_idempotency_key("k", "h1", T0).await.unwrap(),
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        store.claim_idempotency_key("k", "h2", T0).await.unwrap(),
        IdempotencyClaim::Conflict
    );
    store
        .complete_idempotency_key("k", TicketRef::new(1001))
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency_key("k", "h1", T0).await.unwrap(),
        IdempotencyClaim::Done(TicketRef::new(1001))
    );
    store.claim_idempotency_key("other", "h", T0).await.unwrap();
    store.release_idempotency_key("other").await.unwrap();
    assert_eq!(
        store.claim_idempotency_key("other", "h", T0).await.unwrap(),
        IdempotencyClaim::New
    );
}

/// (SQLite) Every queue-page statement is an index range, never a scan of the table or
/// a temporary sort: what keeps a page as fast on a million tickets as on ten.
#[tokio::test]
async fn queue_pages_and_searches_use_indexes() {
    use sqlx::Connection;
    let test = sqlite_store().await;
    let path = test.dir.as_ref().unwrap().path().join("desk.db");
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let plans = [
        (
            "queue",
            "SELECT t.* FROM tickets AS t WHERE t.queue = 'billing' AND t.status = 'open' AND t.sla_breached = 1 AND t.number < 5000 ORDER BY t.number DESC LIMIT 50",
        ),
        (
            "queue, oldest",
            "SELECT t.* FROM tickets AS t WHERE t.queue = 'billing' AND t.status = 'open' AND t.sla_breached = 0 AND t.number > 0 ORDER BY t.number ASC LIMIT 50",
        ),
        (
            "queue by tier",
            "SELECT t.* FROM tickets AS t WHERE t.queue = 'billing' AND t.status = 'open' AND t.sla_breached = 0 AND t.tier = 'platform' AND t.number < 5000 ORDER BY t.number DESC LIMIT 50",
        ),
        (
            "queue by category",
            "SELECT t.* FROM tickets AS t WHERE t.queue = 'billing' AND t.status = 'open' AND t.sla_breached = 0 AND t.category = 'billing' AND t.number < 5000 ORDER BY t.number DESC LIMIT 50",
        ),
        (
            "sender",
            "SELECT t.* FROM tickets AS t WHERE t.requester_email = 'a@b.c' COLLATE NOCASE ORDER BY t.number DESC LIMIT 50",
        ),
        (
            "sweep",
            "SELECT * FROM tickets WHERE status = 'open' AND sla_breached = 0 AND first_responded_at IS NULL AND first_response_due < 5 ORDER BY first_response_due LIMIT 500",
        ),
    ];
    for (name, sql) in plans {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&mut connection)
                .await
                .unwrap();
        let plan: Vec<&str> = rows.iter().map(|row| row.3.as_str()).collect();
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")
                && !step.starts_with("SCAN t")
                && !step.starts_with("SCAN tickets")),
            "{name}: {plan:?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.contains("USING") && step.contains("INDEX")),
            "{name}: {plan:?}"
        );
    }
}
