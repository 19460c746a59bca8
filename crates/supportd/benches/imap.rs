//! IMAP intake benchmark against a real Dovecot on loopback (a bench binary that
//! prints figures; not a timed test).
//!
//! 1. 10,000 mails of about 4 KB wait in INBOX. A plain client fetches every
//!    body (supportd-intake's `fetch_after` in batches of 500, no parsing, no
//!    store), then `supportd serve` (the release binary, a fresh SQLite file,
//!    the mailbox's default batch size) ingests all of them. Each is run three times; the median is printed with
//!    the ratio, and the peak RSS of the `serve` process.
//! 2. Latency under IDLE, one mail at a time: delivery to ticket stored, beside
//!    the delivery-to-EXISTS delay a plain IDLE client sees (Dovecot adds about
//!    500 ms before it notifies); the difference is what supportd adds.
//!
//! `cargo bench -p supportd --bench imap` (needs Dovecot installed, as root).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{mail, serve_config};
use supportd_intake::{
    Acknowledge, Auth, IdleOutcome, ImapAccount, SecretSource, Security, Start, connect,
};
use supportd_store::Store;
use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};

const MAILS: usize = 10_000;
const RUNS: usize = 3;
const LATENCY_SAMPLES: usize = 40;

fn account(dovecot: &Dovecot, password_file: &Path) -> ImapAccount {
    ImapAccount {
        name: "bench".to_owned(),
        host: "127.0.0.1".to_owned(),
        port: dovecot.plain_port(),
        security: Security::Plain,
        username: SUPPORT_USER.to_owned(),
        auth: Auth::Password(SecretSource::File(password_file.to_path_buf())),
        ca_file: None,
        folders: vec!["INBOX".to_owned()],
        acknowledge: Acknowledge::LeaveUntouched,
        quarantine_folder: "Quarantine".to_owned(),
        batch_size: 500,
        max_message_bytes: 25 * 1024 * 1024,
        idle_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(60),
        stale_after: Duration::from_secs(3600),
        start: Start::Since(chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("date")),
    }
}

async fn plain_fetch(account: &ImapAccount) -> (usize, u64, Duration) {
    let started = Instant::now();
    let mut session = connect(account).await.expect("connect");
    session.select("INBOX").await.expect("select");
    let (mut count, mut bytes, mut last_uid) = (0usize, 0u64, 0u32);
    loop {
        let batch = session.fetch_after(last_uid, 500).await.expect("fetch");
        let Some(last) = batch.last() else { break };
        last_uid = last.uid;
        count += batch.len();
        bytes += batch
            .iter()
            .map(|message| message.raw.as_ref().map_or(0, Vec::len) as u64)
            .sum::<u64>();
    }
    let elapsed = started.elapsed();
    let _ = session.logout().await;
    (count, bytes, elapsed)
}

fn spawn_serve(directory: &Path, config: &Path, database: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_supportd"))
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(format!("sqlite://{}", database.display()))
        .arg("serve")
        .current_dir(directory)
        .env("SUPPORTD_INTAKE__DROP_FOLDER", directory.join("inbox"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn supportd serve")
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
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

async fn open_store(database: &Path) -> Store {
    let store = Store::open(&format!("sqlite://{}", database.display()))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    store
}

/// The folder's checkpoint: `None` until `serve` first visits it, then the
/// last UID stored. A primary-key read, so polling it costs the daemon nothing
/// (counting tickets would scan the table 50 times a second).
async fn checkpoint_uid(store: &Store) -> Option<u32> {
    store
        .checkpoint("bench", "INBOX")
        .await
        .ok()
        .flatten()
        .map(|checkpoint| checkpoint.last_uid)
}

/// What one `serve` run took.
struct ServeRun {
    /// From spawning the process to its first visit of the folder (migrations,
    /// rules and model, IMAP login and SELECT).
    start_up: Duration,
    /// From that first visit to the last mail's commit.
    ingest: Duration,
    peak_rss_kib: u64,
}

/// `serve` ingesting every waiting mail.
async fn serve_ingest(dovecot: &Dovecot, password_file: &Path) -> ServeRun {
    let directory = tempfile::tempdir().expect("temp dir");
    let config = serve_config(
        directory.path(),
        dovecot,
        password_file,
        "start = \"2000-01-01\"\n",
    );
    let database = directory.path().join("supportd.db");
    let store = open_store(&database).await;
    let started = Instant::now();
    let child = spawn_serve(directory.path(), &config, &database);
    let mut peak = 0;
    let mut first_visit = None;
    loop {
        let last_uid = checkpoint_uid(&store).await;
        if last_uid.is_some() && first_visit.is_none() {
            first_visit = Some(started.elapsed());
        }
        if last_uid >= Some(MAILS as u32) {
            break;
        }
        peak = peak.max(peak_rss_kib(child.id()));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "serve too slow"
        );
    }
    let elapsed = started.elapsed();
    peak = peak.max(peak_rss_kib(child.id()));
    stop(child);
    assert_eq!(
        ticket_count(&store).await,
        MAILS as u64,
        "one ticket per mail"
    );
    let start_up = first_visit.unwrap_or(elapsed);
    ServeRun {
        start_up,
        ingest: elapsed - start_up,
        peak_rss_kib: peak,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn percentile(values: &[Duration], fraction: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

async fn latency(dovecot: &Dovecot, password_file: &Path) {
    // A plain IDLE client: delivery -> EXISTS.
    let idle_account = account(dovecot, password_file);
    let mut session = connect(&idle_account).await.expect("connect");
    let mut plain = Vec::new();
    for index in 0..LATENCY_SAMPLES {
        session.select("INBOX").await.expect("select");
        let _ = session.fetch_after(u32::MAX - 1, 1).await;
        // IDLE first, then deliver while it waits.
        let (outcome, delivered) = tokio::join!(
            session.idle_wait(Duration::from_secs(10), std::future::pending::<()>()),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let delivered = Instant::now();
                dovecot.deliver(SUPPORT_USER, &mail(MAILS + index));
                delivered
            }
        );
        assert_eq!(outcome.expect("idle"), IdleOutcome::NewMail);
        plain.push(delivered.elapsed());
    }
    let _ = session.logout().await;

    // supportd serve: delivery -> ticket stored.
    let directory = tempfile::tempdir().expect("temp dir");
    let config = serve_config(
        directory.path(),
        dovecot,
        password_file,
        "start = \"now\"\n",
    );
    let database = directory.path().join("supportd.db");
    let store = open_store(&database).await;
    let child = spawn_serve(directory.path(), &config, &database);
    // Wait for the daemon's first visit (start = now), then for one ticket.
    let started = Instant::now();
    while store
        .checkpoint("bench", "INBOX")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never started"
        );
    }
    dovecot.deliver(SUPPORT_USER, &mail(MAILS + 1_000));
    while ticket_count(&store).await < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never started"
        );
    }
    let mut end_to_end = Vec::new();
    for index in 0..LATENCY_SAMPLES {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = ticket_count(&store).await;
        let delivered = Instant::now();
        dovecot.deliver(SUPPORT_USER, &mail(MAILS + 2_000 + index));
        while ticket_count(&store).await == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert!(delivered.elapsed() < Duration::from_secs(30), "no ticket");
        }
        end_to_end.push(delivered.elapsed());
    }
    stop(child);
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let (plain_p50, plain_p99) = (percentile(&plain, 0.5), percentile(&plain, 0.99));
    let (serve_p50, serve_p99) = (percentile(&end_to_end, 0.5), percentile(&end_to_end, 0.99));
    println!(
        "IDLE latency, {LATENCY_SAMPLES} mails one at a time:\n  \
         plain IDLE client, delivery -> EXISTS: p50 {:.0} ms, p99 {:.0} ms\n  \
         supportd serve, delivery -> ticket stored: p50 {:.0} ms, p99 {:.0} ms\n  \
         supportd's own share (difference): p50 {:.0} ms, p99 {:.0} ms",
        ms(plain_p50),
        ms(plain_p99),
        ms(serve_p50),
        ms(serve_p99),
        ms(serve_p50.saturating_sub(plain_p50)),
        ms(serve_p99.saturating_sub(plain_p99)),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dovecot = Dovecot::start();
    let password_file = dovecot.directory().join("bench-password");
    std::fs::write(&password_file, SUPPORT_PASSWORD).expect("password file");
    let seeding = Instant::now();
    for index in 0..MAILS {
        dovecot.deliver(SUPPORT_USER, &mail(index));
    }
    println!(
        "seeded {MAILS} mails of {} bytes in {:.1} s",
        mail(0).len(),
        seeding.elapsed().as_secs_f64()
    );
    runtime.block_on(async {
        let account = account(&dovecot, &password_file);
        // Warm the server's index and the page cache once.
        let _ = plain_fetch(&account).await;
        let mut fetch_times = Vec::new();
        let mut serve_times = Vec::new();
        let mut peak_rss = 0;
        for _ in 0..RUNS {
            let (count, bytes, elapsed) = plain_fetch(&account).await;
            assert_eq!(count, MAILS);
            println!(
                "plain fetch: {count} mails, {:.1} MB in {:.2} s",
                bytes as f64 / 1e6,
                elapsed.as_secs_f64()
            );
            fetch_times.push(elapsed);
            let run = serve_ingest(&dovecot, &password_file).await;
            println!(
                "supportd serve: start-up {:.2} s, then {MAILS} tickets in {:.2} s, peak RSS {:.1} MB",
                run.start_up.as_secs_f64(),
                run.ingest.as_secs_f64(),
                run.peak_rss_kib as f64 / 1024.0
            );
            serve_times.push(run.ingest);
            peak_rss = peak_rss.max(run.peak_rss_kib);
        }
        let fetch = median(fetch_times);
        let serve = median(serve_times);
        let rate = |elapsed: Duration| MAILS as f64 / elapsed.as_secs_f64();
        println!(
            "median of {RUNS}: plain fetch {:.0} msg/s, supportd serve {:.0} msg/s after start-up ({:.0}% of the plain fetch); serve peak RSS {:.1} MB",
            rate(fetch),
            rate(serve),
            100.0 * fetch.as_secs_f64() / serve.as_secs_f64(),
            peak_rss as f64 / 1024.0
        );
        latency(&dovecot, &password_file).await;
    });
}
