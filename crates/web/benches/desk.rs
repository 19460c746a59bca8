//! Queue page and ticket page latency under concurrent load, on a SQLite file
//! holding many tickets (default 1,000,000; `BENCH_TICKETS`).
//!
//! Seeds the file through `Store::ingest_batch` (the real write path, in
//! batches of 1,000) unless `BENCH_DB` names a file already seeded with that
//! many tickets, then serves the real router on loopback and runs
//! `BENCH_CONNECTIONS` (default 16) keep-alive HTTP/1.1 clients for
//! `BENCH_SECONDS` (default 10) per page, printing p50, p99 and requests/s.
//!
//! `cargo bench -p supportd-web --bench desk`

use std::sync::Arc;
use std::time::{Duration, Instant};

use supportd_core::{
    Action, Address, Category, Classification, Entities, InboundMessage, MessageFlags, Priority,
    QueueName, RouteDecision, TicketRef, Tier,
};
use supportd_store::{
    IngestContent, IngestItem, NewSession, SourceKind, SourcePosition, StaffRole, Store,
};
use supportd_web::{AppState, WebSettings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const QUEUES: [&str; 4] = [
    "billing",
    "platform-tier1",
    "accounts-and-access",
    "managed-os",
];
const CATEGORIES: [Category; 4] = [
    Category::Billing,
    Category::TechnicalSupport,
    Category::PortalUsers,
    Category::Patching,
];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn item(number: u64, now: i64) -> IngestItem {
    let kind = (number % 4) as usize;
    let subject = format!("Request {number}: invoice and portal access question");
    let from = format!("user{}@customer{}.example", number % 5000, number % 700);
    let body = format!("Hello,\n\nticket body {number} with some words about the request.\n");
    let message_id = format!("bench-{number}@customer.example");
    let raw =
        format!("Message-ID: <{message_id}>\r\nFrom: {from}\r\nSubject: {subject}\r\n\r\n{body}")
            .into_bytes();
    let message = InboundMessage {
        message_id,
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(Address {
            name: Some(format!("User {number}")),
            email: from,
        }),
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        subject,
        date: None,
        body_text: body.clone(),
        body_html: None,
        new_text: body,
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        size: raw.len() as u64,
        content_hash: format!("bench-hash-{number}"),
        warnings: vec![],
    };
    IngestItem {
        raw,
        source: SourcePosition::new(SourceKind::Maildir, "bench"),
        received_at: now - 86_400 + (number % 86_400) as i64,
        content: IngestContent::Parsed {
            message,
            classification: Classification {
                tier: if kind == 3 {
                    Tier::ManagedOs
                } else {
                    Tier::Platform
                },
                category: CATEGORIES[kind],
                in_scope: true,
                microsoft: false,
                confidence: 0.9,
                reasons: vec!["bench".to_owned()],
                entities: Entities::default(),
                account: None,
            },
            route: RouteDecision {
                queue: QueueName::parse(QUEUES[kind]).expect("a valid queue"),
                priority: Priority::Normal,
                first_response_due: now + 86_400,
                rule: "bench".to_owned(),
                reasons: vec![],
                // No outbox rows: the bench measures reads.
                actions: vec![] as Vec<Action>,
            },
        },
    }
}

async fn seed(store: &Store, tickets: u64) {
    let existing = store
        .queue_summaries()
        .await
        .expect("queue summaries")
        .iter()
        .map(|summary| summary.open)
        .sum::<u64>();
    if existing >= tickets {
        println!("seed: {existing} tickets already there");
        return;
    }
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let mut number = existing;
    while number < tickets {
        let batch: Vec<IngestItem> = (number..(number + 1000).min(tickets))
            .map(|n| item(n, now))
            .collect();
        number += batch.len() as u64;
        store.ingest_batch(&batch).await.expect("ingest a batch");
        if number % 100_000 == 0 {
            println!(
                "seed: {number} tickets ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "seed: {tickets} tickets in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// One keep-alive connection: GET `path()` until `deadline`, latencies in µs.
async fn client(
    address: std::net::SocketAddr,
    cookie: Arc<String>,
    deadline: Instant,
    path: impl Fn() -> String,
) -> Vec<u64> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut latencies = Vec::new();
    let mut line = String::new();
    while Instant::now() < deadline {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: bench\r\nCookie: supportd_session={cookie}\r\n\r\n",
            path()
        );
        let started = Instant::now();
        write.write_all(request.as_bytes()).await.expect("send");
        let mut length = 0usize;
        let mut status = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.expect("read a header");
            if status.is_empty() {
                status = line.clone();
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line
                .to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::trim)
            {
                length = value.parse().expect("a length");
            }
        }
        assert!(status.contains(" 200 "), "{status}");
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await.expect("read the body");
        latencies.push(started.elapsed().as_micros() as u64);
    }
    latencies
}

fn report(name: &str, mut latencies: Vec<u64>, seconds: u64) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name}: {} requests, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        at(0.50) as f64 / 1000.0,
        at(0.99) as f64 / 1000.0,
        at(1.0) as f64 / 1000.0,
    );
}

async fn load(
    name: &str,
    address: std::net::SocketAddr,
    cookie: &Arc<String>,
    connections: u64,
    seconds: u64,
    path: impl Fn(u64) -> String + Clone + Send + Sync + 'static,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let cookie = cookie.clone();
        let path = path.clone();
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(connection * 7919));
        tasks.push(tokio::spawn(async move {
            client(address, cookie, deadline, move || {
                path(counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            })
            .await
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client"));
    }
    report(name, latencies, seconds);
}

fn main() {
    let tickets = env_number("BENCH_TICKETS", 1_000_000);
    let connections = env_number("BENCH_CONNECTIONS", 16);
    let seconds = env_number("BENCH_SECONDS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let scratch = tempfile::tempdir().expect("a temp dir");
        let path = std::env::var("BENCH_DB")
            .unwrap_or_else(|_| scratch.path().join("bench.db").display().to_string());
        let store = Store::open(&format!("sqlite://{path}"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        seed(&store, tickets).await;

        let now = chrono::Utc::now().timestamp();
        let _ = store
            .add_staff("bench", StaffRole::Staff, "unused", now)
            .await;
        let staff_id = store
            .staff_account("bench")
            .await
            .expect("read the bench account")
            .expect("the bench account")
            .id;
        let session_id = format!("bench-session-{}", fastrand::u64(..));
        store
            .create_session(&NewSession {
                id_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    session_id.as_bytes(),
                )),
                staff_id,
                created_at: now,
                expires_at: now + 3600,
            })
            .await
            .expect("a session");
        let settings = WebSettings {
            address: "127.0.0.1:0".parse().expect("an address"),
            secure_cookies: false,
            session_ttl: Duration::from_secs(3600),
            sla_sweep_interval: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
        };
        let metrics = supportd_web::install_metrics().expect("metrics");
        let listener = supportd_web::bind(&settings).await.expect("bind");
        let address = listener.local_addr().expect("an address");
        let state = AppState::new(store.clone(), settings, metrics).expect("state");
        let server = tokio::spawn(supportd_web::run(
            listener,
            state,
            std::future::pending::<()>(),
        ));
        let cookie = Arc::new(session_id);
        println!("{tickets} tickets, {connections} connections, {seconds} s per page");
        load(
            "queue page (first page, 50 rows)",
            address,
            &cookie,
            connections,
            seconds,
            |_| "/queues/billing".to_owned(),
        )
        .await;
        load(
            "queue page (filtered, deep keyset page)",
            address,
            &cookie,
            connections,
            seconds,
            move |n| {
                format!(
                    "/queues/billing?category=billing&after={}",
                    TicketRef::new(1001 + (n * 104_729) % tickets.max(1))
                )
            },
        )
        .await;
        load(
            "ticket page (random ticket)",
            address,
            &cookie,
            connections,
            seconds,
            move |n| {
                format!(
                    "/tickets/{}",
                    TicketRef::new(1001 + (n * 104_729) % tickets.max(1))
                )
            },
        )
        .await;
        server.abort();
    });
}
