//! Benchmarks of the pipeline: the pure stages per message (normalise + classify +
//! route) and batched ingest into a real SQLite file.
//!
//! `cargo bench -p supportd --bench pipeline`; the figures go in README.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use supportd::pipeline::Pipeline;
use supportd::settings::Settings;
use supportd_classifier::Directory;
use supportd_store::{SourceKind, SourcePosition};

const FILLER: &str = "We run our order processing and reporting on a handful of Azure virtual \
machines in two resource groups, with an Azure SQL database and a storage account behind them. \
Nothing changed on our side this week as far as we know, and the team has already checked the \
network security group rules and the activity log for anything unusual.\r\n";

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/supportd is two levels below the workspace root")
}

/// Our own fixtures, each padded with ordinary prose to about 4 KB.
fn messages_4k() -> Vec<Vec<u8>> {
    let fixtures = workspace_root().join("tests/fixtures/mail");
    let mut messages = Vec::new();
    for name in [
        "01-billing.eml",
        "02-billing-reply.eml",
        "03-patching-managed-os.eml",
        "04-out-of-office.eml",
        "05-outage.eml",
        "06-unmanaged.eml",
        "07-tagged-reply.eml",
    ] {
        let mut message = std::fs::read(fixtures.join(name)).expect("fixture");
        while message.len() < 4_000 {
            message.extend_from_slice(FILLER.as_bytes());
        }
        messages.push(message);
    }
    messages
}

fn pipeline() -> Pipeline {
    let config = workspace_root().join("config/default.toml");
    let settings = Settings::load(Some(&config), None).expect("shipped configuration");
    let accounts = std::fs::read_to_string(workspace_root().join("tests/fixtures/accounts.csv"))
        .expect("fixture accounts");
    let directory = Directory::from_csv(&accounts, "accounts.csv").expect("fixture accounts");
    Pipeline::load(&settings, directory).expect("shipped rules")
}

fn pure_stages(criterion: &mut Criterion) {
    let pipeline = pipeline();
    let messages = messages_4k();
    let mut group = criterion.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("normalise_classify_route_4k", |bencher| {
        bencher.iter(|| {
            for message in &messages {
                std::hint::black_box(pipeline.process(message, 1_795_618_800));
            }
        })
    });
    group.finish();
}

/// Unique messages: the fixtures with a distinct Message-ID each.
fn unique_messages(count: usize) -> Vec<Vec<u8>> {
    let templates = messages_4k();
    (0..count)
        .map(|index| {
            let template = &templates[index % templates.len()];
            let mut message = format!("Message-ID: <bench-{index}@bench.example>\r\n").into_bytes();
            // Drop the template's own Message-ID line so each message is new.
            let text = String::from_utf8_lossy(template);
            for line in text.split_inclusive("\r\n") {
                if !line.starts_with("Message-ID:")
                    && !line.starts_with("In-Reply-To:")
                    && !line.starts_with("References:")
                {
                    message.extend_from_slice(line.as_bytes());
                }
            }
            message
        })
        .collect()
}

fn sqlite_ingest(criterion: &mut Criterion) {
    const MESSAGES: usize = 5_000;
    const BATCH: usize = 500;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pipeline = pipeline();
    let messages = unique_messages(MESSAGES);
    let mut group = criterion.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("sqlite_batched_5000x4k", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let temp = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", temp.path().join("bench.db").display());
                total += runtime.block_on(async {
                    let store = supportd_store::Store::open(&url).await.expect("open");
                    store.migrate().await.expect("migrate");
                    let started = Instant::now();
                    for chunk in messages.chunks(BATCH) {
                        let items: Vec<_> = chunk
                            .iter()
                            .map(|raw| {
                                pipeline.prepare(
                                    raw.clone(),
                                    SourcePosition::new(SourceKind::File, "bench"),
                                    1_795_618_800,
                                )
                            })
                            .collect();
                        store.ingest_batch(&items).await.expect("ingest");
                    }
                    started.elapsed()
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, pure_stages, sqlite_ingest);
criterion_main!(benches);
