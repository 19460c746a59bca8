//! Ingest throughput of one mailbox by one, two and three `supportd serve` on
//! one PostgreSQL database, and by one on SQLite (a bench binary that prints
//! figures; not a timed test).
//!
//! 10,000 mails of about 4 KB wait in one Dovecot INBOX (acknowledge =
//! "none", so every run reads the same mailbox). Each run starts the release
//! binary N times on a fresh database (a new SQLite file, or a new database
//! on the loopback PostgreSQL), with the outbox worker and the web server
//! off, and times from the spawn until the store holds 10,000 tickets. The
//! median of three runs is printed per setup.
//!
//! The mailbox lease gives the mailbox one poller at a time, so extra
//! instances are standbys for that mailbox: the figures show what that costs
//! (nothing) and that it gains nothing for one mailbox.
//!
//! `cargo bench -p supportd --bench instances` (needs Dovecot installed, as
//! root, and PostgreSQL on 127.0.0.1:5432 or `SUPPORTD_TEST_POSTGRES_URL`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{mail, serve_config};
use supportd_store::Store;
use supportd_tests::servers::PostgresDatabase;
use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};

const MAILS: usize = 10_000;
const RUNS: usize = 3;

fn spawn_serve(directory: &Path, config: &Path, database_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_supportd"))
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(database_url)
        .arg("serve")
        .current_dir(directory)
        .env("SUPPORTD_INTAKE__DROP_FOLDER", directory.join("inbox"))
        .env("SUPPORTD_OUTBOUND__ENABLED", "false")
        .env("SUPPORTD_WEB__ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn supportd serve")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

async fn ticket_count(store: &Store) -> u64 {
    store
        .queue_summaries()
        .await
        .map(|queues| queues.iter().map(|queue| queue.open).sum())
        .unwrap_or(0)
}

/// Where one run stores its tickets.
enum Backend {
    Sqlite,
    Postgres,
}

/// `instances` × `serve` on a fresh database until every mail is a ticket.
async fn ingest(
    dovecot: &Dovecot,
    password_file: &Path,
    backend: &Backend,
    instances: usize,
) -> Duration {
    let directory = tempfile::tempdir().expect("temp dir");
    let config = serve_config(
        directory.path(),
        dovecot,
        password_file,
        "batch_size = 500\nstart = \"2000-01-01\"\n",
    );
    let postgres = matches!(backend, Backend::Postgres).then(PostgresDatabase::create);
    let database_url = match &postgres {
        Some(database) => database.url().to_owned(),
        None => format!(
            "sqlite://{}",
            directory.path().join("supportd.db").display()
        ),
    };
    let store = Store::open(&database_url).await.expect("open");
    store.migrate().await.expect("migrate");
    let started = Instant::now();
    let children: Vec<Child> = (0..instances)
        .map(|_| spawn_serve(directory.path(), &config, &database_url))
        .collect();
    while ticket_count(&store).await < MAILS as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "serve too slow"
        );
    }
    let elapsed = started.elapsed();
    for child in children {
        stop(child);
    }
    store.close().await;
    elapsed
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dovecot = Dovecot::start();
    let password_file = dovecot.directory().join("bench-password");
    std::fs::write(&password_file, SUPPORT_PASSWORD).expect("password file");
    for index in 0..MAILS {
        dovecot.deliver(SUPPORT_USER, &mail(index));
    }
    println!("seeded {MAILS} mails of {} bytes", mail(0).len());
    let setups = [
        ("SQLite, 1 instance", Backend::Sqlite, 1),
        ("PostgreSQL, 1 instance", Backend::Postgres, 1),
        ("PostgreSQL, 2 instances", Backend::Postgres, 2),
        ("PostgreSQL, 3 instances", Backend::Postgres, 3),
    ];
    runtime.block_on(async {
        for (name, backend, instances) in &setups {
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let elapsed = ingest(&dovecot, &password_file, backend, *instances).await;
                println!("{name}: {MAILS} tickets in {:.2} s", elapsed.as_secs_f64());
                times.push(elapsed);
            }
            let elapsed = median(times);
            println!(
                "{name}: median of {RUNS}: {:.0} msg/s",
                MAILS as f64 / elapsed.as_secs_f64()
            );
        }
    });
}
