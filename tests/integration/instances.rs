//! Several `supportd serve` on one PostgreSQL database, one Dovecot mailbox
//! and one Postfix: the mailbox lease gives the mailbox one poller at a time,
//! the outbox is shared with `FOR UPDATE SKIP LOCKED`, and a holder killed
//! with SIGKILL is replaced within 30 s with nothing lost or doubled.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use supportd_tests::servers::PostgresDatabase;
use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};
use supportd_tests::servers::postfix::{Postfix, SINK_USER};
use supportd_tests::{ServeProcess, TestEnv, fixtures, http_get};

/// Mail waiting in the mailbox before the instances start.
const WAITING: usize = 5_000;
/// Mail delivered afterwards, during which the lease holder is killed.
const SECOND_WAVE: usize = 1_500;
/// Messages per fetch and commit: small, so the holder is killed inside a
/// stream of batches rather than after one big one.
const BATCH_SIZE: u32 = 50;

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A customer of the account directory (so each mail is acknowledged) with
/// an address of its own (so the per-address limit does not apply).
fn customer_mail(index: usize) -> Vec<u8> {
    format!(
        "From: Customer {index} <customer-{index}@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Question {index} about our invoice\r\n\
         Date: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <instances-{index}@fabrikam-freight.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello,\r\n\r\nThe November invoice shows a charge we do not recognise (line {index}).\r\n\
         Could you explain it?\r\n\r\nThanks\r\n"
    )
    .into_bytes()
}

/// One database, one mailbox, one SMTP relay: the configuration every
/// instance shares. Lease timing is the shipped default.
fn shared_env(dovecot: &Dovecot, postfix: &Postfix, database: &PostgresDatabase) -> TestEnv {
    let password_file = dovecot.directory().join("support-password");
    std::fs::write(&password_file, SUPPORT_PASSWORD).unwrap();
    let mailbox = format!(
        r#"
[[mailbox]]
name = "support"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{SUPPORT_USER}"
auth = {{ method = "password", password_file = "{password_file}" }}
folders = ["INBOX"]
acknowledge = "move"
start = "2000-01-01"
batch_size = {BATCH_SIZE}
poll_interval = "1s"
connect_timeout = "5s"
command_timeout = "20s"
"#,
        port = dovecot.plain_port(),
        password_file = password_file.display(),
    );
    let env = TestEnv::with_config(&mailbox)
        .on_database(database.url())
        .with_env("SUPPORTD_OUTBOUND__PORT", &postfix.port().to_string())
        .with_env("SUPPORTD_OUTBOUND__POLL_INTERVAL_MS", "100")
        .with_env("SUPPORTD_OUTBOUND__BACKOFF_INITIAL_MS", "200")
        .with_env("SUPPORTD_OUTBOUND__BACKOFF_MAX_MS", "1000")
        // Rows claimed by a killed worker are claimed again after this.
        .with_env("SUPPORTD_OUTBOUND__LEASE_S", "10");
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    env
}

fn tickets(database: &PostgresDatabase) -> u64 {
    database.count("SELECT count(*) FROM tickets")
}

/// The current holder of the mailbox's lease, if any.
fn lease_holder(database: &PostgresDatabase) -> Option<String> {
    let holder = database.query("SELECT holder FROM leases WHERE name = 'mailbox:support'");
    let holder = holder.trim();
    (!holder.is_empty()).then(|| holder.to_owned())
}

/// Which of `instances` a lease holder (`host/pid/random`) is.
fn holder_index(instances: &[ServeProcess], holder: &str) -> usize {
    let pid = holder.split('/').nth(1).expect("holder is host/pid/random");
    let matching: Vec<usize> = (0..instances.len())
        .filter(|&index| instances[index].pid().to_string() == pid)
        .collect();
    assert_eq!(matching.len(), 1, "holder {holder} is one of the instances");
    matching[0]
}

/// The files delivered into the sink so far.
fn sink_files(dovecot: &Dovecot) -> Vec<PathBuf> {
    let maildir = dovecot
        .directory()
        .join("mail")
        .join(SINK_USER)
        .join("Maildir");
    ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flat_map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())))
        .collect()
}

/// The Message-ID (without brackets) of every delivered mail, in file order.
fn delivered_message_ids(dovecot: &Dovecot) -> Vec<String> {
    sink_files(dovecot)
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("read a delivered mail");
            let text = String::from_utf8_lossy(&bytes);
            let header = text.split("\r\n\r\n").next().unwrap_or_default();
            let header = header.split("\n\n").next().unwrap_or_default();
            header
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("Message-ID").then(|| {
                        value
                            .trim()
                            .trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_owned()
                    })
                })
                .unwrap_or_else(|| panic!("no Message-ID in {}", path.display()))
        })
        .collect()
}

/// Every acknowledgment row is sent and delivered: returns how many
/// deliveries repeat a Message-ID already delivered.
fn assert_every_acknowledgment_delivered(
    dovecot: &Dovecot,
    database: &PostgresDatabase,
    expected: usize,
) -> usize {
    wait_until(
        &format!("{expected} outbox rows sent"),
        Duration::from_secs(400),
        || database.count("SELECT count(*) FROM outbox WHERE status = 'sent'") == expected as u64,
    );
    assert_eq!(
        database.count("SELECT count(*) FROM outbox"),
        expected as u64,
        "one acknowledgment per ticket, nothing else"
    );
    wait_until(
        &format!("{expected} deliveries"),
        Duration::from_secs(60),
        || sink_files(dovecot).len() >= expected,
    );
    // Postfix delivers what it accepted within a second or two; let a late
    // duplicate show before counting.
    std::thread::sleep(Duration::from_secs(2));
    let delivered = delivered_message_ids(dovecot);
    let distinct: BTreeSet<String> = delivered.iter().cloned().collect();
    let rows: BTreeSet<String> = database
        .query("SELECT message_id FROM outbox")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), expected);
    assert_eq!(
        distinct, rows,
        "every outbox row's Message-ID is delivered, and nothing else"
    );
    delivered.len() - distinct.len()
}

#[test]
fn three_instances_share_one_mailbox_and_a_killed_lease_holder_is_replaced() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let database = PostgresDatabase::create();
    for index in 0..WAITING {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = shared_env(&dovecot, &postfix, &database);

    // Three instances start together on 5,000 waiting mails.
    let started = Instant::now();
    let mut instances: Vec<ServeProcess> = (0..3).map(|_| ServeProcess::start(&env)).collect();
    wait_until(
        "every waiting mail stored",
        Duration::from_secs(300),
        || tickets(&database) == WAITING as u64,
    );
    let ingest_time = started.elapsed();
    assert_eq!(
        database.count("SELECT count(*) FROM messages"),
        WAITING as u64
    );
    let holder = lease_holder(&database).expect("someone holds the mailbox lease");
    let first_holder = holder_index(&instances, &holder);
    for (index, instance) in instances.iter_mut().enumerate() {
        let log = instance.log();
        let acquired = log.matches("Mailbox lease acquired").count();
        if index == first_holder {
            assert_eq!(acquired, 1, "the holder took the lease once:\n{log}");
        } else {
            assert_eq!(acquired, 0, "a standby never polled:\n{log}");
            assert!(log.contains("standing by"), "{log}");
            assert!(!log.contains("Ticket created."), "{log}");
            // Standing by is healthy: /readyz stays ready and says why.
            let (status, body) = http_get(&instance.web_address(), "/readyz");
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("\"standby\""), "{body}");
        }
    }
    let redelivered = assert_every_acknowledgment_delivered(&dovecot, &database, WAITING);
    assert_eq!(redelivered, 0, "no instance was killed: nothing sent twice");
    let first_phase = started.elapsed();
    eprintln!(
        "three instances: {WAITING} mails stored in {:.1} s ({:.0} msg/s), every acknowledgment delivered after {:.1} s",
        ingest_time.as_secs_f64(),
        WAITING as f64 / ingest_time.as_secs_f64(),
        first_phase.as_secs_f64()
    );

    // More mail; the holder is killed with SIGKILL while it stores it.
    for index in WAITING..WAITING + SECOND_WAVE {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    wait_until("the second wave under way", Duration::from_secs(60), || {
        tickets(&database) >= (WAITING + 3 * BATCH_SIZE as usize) as u64
    });
    let killed_holder = lease_holder(&database).expect("a holder");
    assert_eq!(holder_index(&instances, &killed_holder), first_holder);
    let killed = instances.remove(first_holder).kill();
    let killed_at = Instant::now();
    let stored_at_kill = tickets(&database);
    assert!(
        stored_at_kill < (WAITING + SECOND_WAVE) as u64,
        "killed while storing ({stored_at_kill} stored)"
    );
    assert!(killed.contains("Ticket created."), "{killed}");

    let mut takeover = Duration::ZERO;
    wait_until(
        "another instance takes the lease",
        Duration::from_secs(30),
        || {
            let taken = lease_holder(&database).is_some_and(|holder| holder != killed_holder);
            takeover = killed_at.elapsed();
            taken
        },
    );
    assert!(takeover < Duration::from_secs(30));
    let new_holder = holder_index(&instances, &lease_holder(&database).expect("a holder"));
    wait_until(
        "every mail of the second wave stored",
        Duration::from_secs(120),
        || tickets(&database) == (WAITING + SECOND_WAVE) as u64,
    );
    let total = WAITING + SECOND_WAVE;
    assert_eq!(
        database.count("SELECT count(*) FROM messages"),
        total as u64
    );
    assert_eq!(
        database.count("SELECT count(DISTINCT message_id) FROM messages"),
        total as u64,
        "no mail stored twice"
    );
    // A SIGKILL between the relay's acceptance of a mail and the row's
    // `sent` mark makes the row be sent again (same bytes, same
    // Message-ID) after its claim runs out: SMTP gives no better than that.
    // The worker sends one mail at a time, so at most one.
    let redelivered = assert_every_acknowledgment_delivered(&dovecot, &database, total);
    assert!(
        redelivered <= 1,
        "{redelivered} acknowledgments delivered twice"
    );
    // Mail stored but not yet moved when the holder died is moved by the
    // next holder: the inbox ends empty.
    wait_until("the inbox emptied", Duration::from_secs(30), || {
        dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages") == 0
    });
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages"),
        total as u64
    );
    eprintln!(
        "killed the holder with {stored_at_kill} of {total} stored; another instance held the lease {:.1} s later; \
         {redelivered} acknowledgment(s) delivered twice",
        takeover.as_secs_f64()
    );

    // A clean stop releases the lease: the last instance takes over within
    // its standby retry, not the lease's time to live.
    let remaining = instances.remove(new_holder);
    let new_holder_name = lease_holder(&database).expect("a holder");
    let log = remaining.stop();
    assert!(log.contains("Mailbox lease released."), "{log}");
    let stopped_at = Instant::now();
    wait_until(
        "the last instance takes over",
        Duration::from_secs(10),
        || lease_holder(&database).is_some_and(|holder| holder != new_holder_name),
    );
    eprintln!(
        "after a clean stop, the last instance held the lease {:.1} s later",
        stopped_at.elapsed().as_secs_f64()
    );
    let last = instances.pop().expect("one instance left");
    last.stop();
    assert_eq!(lease_holder(&database), None, "released on shutdown");
}
