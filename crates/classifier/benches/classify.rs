//! Classification throughput on 4 KB messages, rules alone and rules + the shipped
//! model (config/model.bin), and the time to load that model.
//!
//! The messages are written here (no corpus text): a reply of about 4 KB asking
//! for something, with quoted history and a signature, in several variants so the
//! caches see different words.
//!
//! Times are CPU time of the benchmark thread (Linux `/proc/thread-self/schedstat`,
//! wall time elsewhere), so the figures hold on a machine shared with other work.
//!
//! `cargo bench -p supportd-classifier --bench classify`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use supportd_classifier::{CategoryModel, Classifier, Directory, Rules};
use supportd_core::{Address, InboundMessage, MessageFlags};

const ACCOUNTS: &str = "\
customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default
Acme Widgets,acme.example,,11111111-1111-4111-8111-111111111111,22222222-2222-4222-8222-222222222222,elasticbox_arm,false,true
";

const REQUESTS: &[(&str, &str)] = &[
    (
        "Charged twice for storage",
        "Hi team, looking at last month's statement we seem to have paid twice for the same storage account. Could you check the amounts and tell us how the refund will be handled? Thanks.",
    ),
    (
        "VM stuck after resize",
        "Our app server in West Europe stopped answering after we resized it this morning. The portal shows it as running but RDP times out and the boot diagnostics screen is black. Can you take a look?",
    ),
    (
        "New starter needs access",
        "Please give our new analyst read access to the production resource group. She should not be able to change anything; her login is already in our directory.",
    ),
    (
        "Patch window this weekend",
        "Could your team apply the pending operating system updates to the two database servers on Saturday night and reboot them one after the other? Let us know when it is done.",
    ),
];

/// Background sentences, many distinct words, so the message is not one word repeated.
const FILLER: &[&str] = &[
    "For context, we moved most of the workload over in the spring and the team has been happy with the setup so far.",
    "We keep the documentation in our wiki and can share screenshots if that helps anyone on your side.",
    "Our office hours are nine to five and someone is on call outside those hours for anything urgent.",
    "Last quarter we added a reporting service that pulls nightly exports from the warehouse into dashboards.",
    "The finance department asked whether the reserved capacity we bought still matches what we actually use.",
    "Two contractors join next week to help migrate the remaining file shares and the old intranet site.",
    "Our auditors want a yearly summary of who changed what, which we currently assemble by hand from logs.",
    "We tested failover between regions in June; it worked, although the DNS change took longer than expected.",
    "Marketing plans a campaign in November, so traffic to the web shop may triple for about ten days.",
    "If anything here is unclear, ring the service desk number in my signature and ask for the infrastructure lead.",
    "Backups run at midnight and are kept for thirty days, with monthly copies archived for seven years.",
    "The developers deploy twice a week through a pipeline that builds containers and runs integration tests first.",
];
const QUOTED: &str = "\n\nOn Monday, Support wrote:\n> Thank you for contacting support. A member of \
the team will reply shortly. Please keep the reference in the subject line when you answer.\n> \
Kind regards,\n> The support desk\n";

fn message(subject: &str, request: &str, variant: usize) -> InboundMessage {
    let mut new_text = format!("{request}\n\n");
    let mut sentence = 0;
    while new_text.len() < 3600 {
        new_text.push_str(FILLER[(variant + sentence * 5) % FILLER.len()]);
        new_text.push(' ');
        sentence += 1;
    }
    new_text.push_str("\n\nBest regards,\nJo Example\nOperations, Acme Widgets\n");
    let body_text = format!("{new_text}{QUOTED}");
    InboundMessage {
        message_id: format!("bench-{variant}@acme.example"),
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(Address {
            name: None,
            email: "jo@acme.example".into(),
        }),
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        subject: subject.into(),
        date: None,
        size: body_text.len() as u64,
        body_text,
        body_html: None,
        new_text,
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        content_hash: String::new(),
        warnings: vec![],
    }
}

/// CPU time of this thread so far, when Linux tells.
fn thread_cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanoseconds))
}

/// Runs `work` `iterations` times and returns the CPU time it took (wall time
/// when the CPU time is unavailable).
fn cpu_timed(iterations: u64, mut work: impl FnMut()) -> Duration {
    let wall = Instant::now();
    let start = thread_cpu_time();
    for _ in 0..iterations {
        work();
    }
    match (start, thread_cpu_time()) {
        (Some(start), Some(end)) => end.saturating_sub(start),
        _ => wall.elapsed(),
    }
}

fn benchmarks(criterion: &mut Criterion) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let rules_text = match std::fs::read_to_string(config.join("classifier.toml")) {
        Ok(text) => text,
        Err(error) => panic!("config/classifier.toml: {error}"),
    };
    let rules = || match Rules::from_toml(&rules_text, "classifier.toml") {
        Ok(rules) => rules,
        Err(error) => panic!("{error}"),
    };
    let directory = || match Directory::from_csv(ACCOUNTS, "accounts.csv") {
        Ok(directory) => directory,
        Err(error) => panic!("{error}"),
    };
    let model_bytes = match std::fs::read(config.join("model.bin")) {
        Ok(bytes) => bytes,
        Err(error) => panic!("config/model.bin: {error}"),
    };
    let model = match CategoryModel::from_bytes(&model_bytes) {
        Ok(model) => model,
        Err(error) => panic!("{error}"),
    };
    let rules_only = Classifier::new(directory(), rules());
    let combined = Classifier::new(directory(), rules()).with_model(model);
    let messages: Vec<InboundMessage> = (0..16)
        .map(|variant| {
            let (subject, request) = REQUESTS[variant % REQUESTS.len()];
            message(subject, request, variant)
        })
        .collect();
    eprintln!(
        "messages of {} bytes of body text",
        messages[0].body_text.len()
    );

    let mut group = criterion.benchmark_group("classify");
    group.throughput(Throughput::Elements(messages.len() as u64));
    // The thread's CPU time advances in scheduler ticks: few, long samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.bench_function("rules_only_4kb", |bencher| {
        bencher.iter_custom(|iterations| {
            cpu_timed(iterations, || {
                for message in &messages {
                    black_box(rules_only.classify(black_box(message)));
                }
            })
        })
    });
    group.bench_function("rules_and_model_4kb", |bencher| {
        bencher.iter_custom(|iterations| {
            cpu_timed(iterations, || {
                for message in &messages {
                    black_box(combined.classify(black_box(message)));
                }
            })
        })
    });
    group.finish();
    let mut group = criterion.benchmark_group("model");
    group.bench_function("load_model_bin", |bencher| {
        bencher.iter(|| CategoryModel::from_bytes(black_box(&model_bytes)))
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
