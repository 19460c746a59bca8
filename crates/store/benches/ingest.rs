//! Batched ingest of synthetic 4 KB messages into a temporary SQLite file.
//!
//! Criterion reports the throughput of one 500-message batch (elements/s =
//! messages/s) on a growing database; before that, a plain timed run of
//! 20 000 messages prints msgs/s. One in five messages is a reply that threads
//! by In-Reply-To onto an earlier ticket; every tenth has an attachment.
//!
//! `cargo bench -p supportd-store --bench ingest`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use supportd_core::{
    Action, Address, Attachment, Category, Classification, Entities, InboundMessage, MessageFlags,
    Priority, QueueName, RouteDecision, Tier,
};
use supportd_store::{IngestContent, IngestItem, SourceKind, SourcePosition, Store};

const BATCH: usize = 500;
const MESSAGE_BYTES: usize = 4096;

/// Numbers each synthetic message so every one is new to the store.
static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(0);

fn synthetic_item(number: u64) -> IngestItem {
    let message_id = format!("{number}.bench@contoso.com");
    let subject = format!("VM number {number} does not start after resize");
    let paragraph = "Our virtual machine in westeurope fails to start after we resized it \
                     yesterday; the portal shows AllocationFailed. Subscription \
                     0f6b1234-0000-4000-8000-00000000abcd. Please advise. ";
    let mut body_text = String::with_capacity(MESSAGE_BYTES);
    while body_text.len() + paragraph.len() < MESSAGE_BYTES - 400 {
        body_text.push_str(paragraph);
    }
    let header = format!(
        "Message-ID: <{message_id}>\r\nFrom: Ann <ann@contoso.com>\r\n\
         To: CloudSupport@centurylink.com\r\nSubject: {subject}\r\n\
         Date: Fri, 27 Nov 2026 02:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let raw = format!("{header}{body_text}").into_bytes();
    let is_reply = number % 5 == 4 && number > 10;
    let in_reply_to = if is_reply {
        vec![format!("{}.bench@contoso.com", number - 3)]
    } else {
        vec![]
    };
    let attachments = if number.is_multiple_of(10) {
        vec![Attachment {
            filename: "screenshot.png".into(),
            content_type: "image/png".into(),
            size: 48_213,
            sha256: "ab".repeat(32),
        }]
    } else {
        vec![]
    };
    let message = InboundMessage {
        message_id,
        message_id_synthesized: false,
        in_reply_to: in_reply_to.clone(),
        references: in_reply_to,
        from: Some(Address {
            name: Some("Ann".into()),
            email: "ann@contoso.com".into(),
        }),
        reply_to: vec![],
        to: vec![Address {
            name: None,
            email: "CloudSupport@centurylink.com".into(),
        }],
        cc: vec![],
        subject,
        date: Some(1_795_000_000),
        new_text: body_text[..body_text.len().min(1024)].to_owned(),
        body_text,
        body_html: None,
        forwarded_text: String::new(),
        attachments,
        flags: MessageFlags::default(),
        size: raw.len() as u64,
        content_hash: format!("{number:064x}"),
        warnings: vec![],
    };
    IngestItem {
        raw,
        source: SourcePosition::new(SourceKind::Maildir, "bench/new"),
        received_at: 1_795_000_000,
        content: IngestContent::Parsed {
            message,
            classification: Classification {
                tier: Tier::Platform,
                category: Category::TechnicalSupport,
                in_scope: true,
                microsoft: false,
                confidence: 0.91,
                reasons: vec!["rule technical-support: AllocationFailed".into()],
                entities: Entities {
                    subscription_ids: vec!["0f6b1234-0000-4000-8000-00000000abcd".into()],
                    error_codes: vec!["AllocationFailed".into()],
                    regions: vec!["westeurope".into()],
                    ..Entities::default()
                },
                account: None,
            },
            route: RouteDecision {
                queue: QueueName::parse("platform-tier1")
                    .unwrap_or_else(|_| QueueName::quarantine()),
                priority: Priority::Normal,
                first_response_due: 1_795_014_400,
                rule: "platform-in-scope".into(),
                reasons: vec!["in scope, platform tier".into()],
                actions: vec![Action::Acknowledge],
            },
        },
    }
}

fn next_batch() -> Vec<IngestItem> {
    (0..BATCH)
        .map(|_| synthetic_item(NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed)))
        .collect()
}

async fn open_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open(&url).await.expect("open the bench database");
    store.migrate().await.expect("migrate the bench database");
    store
}

fn ingest(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    let dir = tempfile::tempdir().expect("create a temp dir");
    let store = runtime.block_on(open_store(&dir));

    // A plain timed run first, so the figure is printed whatever criterion says.
    let batches: Vec<Vec<IngestItem>> = (0..40).map(|_| next_batch()).collect();
    let started = Instant::now();
    runtime.block_on(async {
        for batch in &batches {
            store.ingest_batch(batch).await.expect("ingest a batch");
        }
    });
    let elapsed = started.elapsed();
    let messages = batches.len() * BATCH;
    println!(
        "ingest: {messages} messages of ~{MESSAGE_BYTES} bytes in batches of {BATCH}: \
         {:.0} msgs/s ({:.2?})",
        messages as f64 / elapsed.as_secs_f64(),
        elapsed
    );

    let mut group = criterion.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("batch_of_500_4k_messages", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let batch = next_batch();
                let started = Instant::now();
                runtime
                    .block_on(store.ingest_batch(&batch))
                    .expect("ingest a batch");
                total += started.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
