//! Faults injected under a running `supportd serve`, each counting mail in
//! and tickets out: crashes, a locked database, a full disk, PostgreSQL
//! stopped and restarted, a broken IMAP server and a stalling SMTP server. Nothing may be lost, doubled or
//! acknowledged before it is stored.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use supportd_tests::servers::PostgresCluster;
use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};
use supportd_tests::servers::fault_proxy::{Fault, FaultProxy};
use supportd_tests::servers::stalling_smtp::{Stall, StallingSmtp};
use supportd_tests::{
    ServeProcess, TestEnv, customer_mail, fixtures, http_get, imap_env, mailbox_config, wait_until,
};

fn inbox(dovecot: &Dovecot) -> u64 {
    dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages")
}

fn processed(dovecot: &Dovecot) -> u64 {
    if dovecot.folder_exists(SUPPORT_USER, "Processed") {
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages")
    } else {
        0
    }
}

/// Every mail is one ticket and sits in Processed exactly once.
fn assert_each_mail_once(env: &TestEnv, dovecot: &Dovecot, mails: u64) {
    wait_until("every mail moved", Duration::from_secs(60), || {
        inbox(dovecot) == 0
    });
    assert_eq!(env.ticket_count(), mails, "tickets out = mails in");
    assert_eq!(processed(dovecot), mails, "each mail moved once");
}

#[test]
fn twenty_sigkills_during_the_ingest_of_two_thousand_mails_lose_and_double_nothing() {
    const MAILS: u64 = 2_000;
    const KILLS: usize = 20;
    let dovecot = Dovecot::start();
    for index in 0..MAILS as usize {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = imap_env(&dovecot, dovecot.plain_port(), "batch_size = 25");
    env.ok(&["migrate"]);
    let seed = std::env::var("SUPPORTD_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill times from seed {seed} (set SUPPORTD_TEST_SEED to replay)");
    let mut random = fastrand::Rng::with_seed(seed);
    let mut stored_at_kill = Vec::new();
    for _ in 0..KILLS {
        let serve = ServeProcess::start(&env);
        // Anywhere from start-up (migrations, rules, model) to well into ingest.
        std::thread::sleep(Duration::from_millis(random.u64(100..1_500)));
        serve.kill();
        stored_at_kill.push(env.ticket_count());
    }
    eprintln!("tickets stored at each SIGKILL: {stored_at_kill:?}");
    assert!(
        stored_at_kill
            .iter()
            .any(|&stored| stored > 0 && stored < MAILS),
        "at least one kill landed in the middle of ingest: {stored_at_kill:?}"
    );
    assert!(
        stored_at_kill.windows(2).all(|pair| pair[0] <= pair[1]),
        "nothing stored is ever lost: {stored_at_kill:?}"
    );
    let serve = ServeProcess::start(&env);
    wait_until("every ticket", Duration::from_secs(180), || {
        env.ticket_count() >= MAILS
    });
    assert_each_mail_once(&env, &dovecot, MAILS);
    serve.stop();
    assert_eq!(
        env.ticket_count(),
        MAILS,
        "no ticket doubled after the stop"
    );
}

/// A second process holding SQLite's write lock (`BEGIN EXCLUSIVE`) until
/// its stdin closes.
struct SqliteLock {
    child: std::process::Child,
}

impl SqliteLock {
    fn hold(database: &std::path::Path) -> SqliteLock {
        let script = "import sqlite3, sys\n\
            connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
            connection.execute('BEGIN EXCLUSIVE')\n\
            print('locked', flush=True)\n\
            sys.stdin.read()\n\
            connection.execute('ROLLBACK')\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read the lock holder's answer");
        assert_eq!(line.trim(), "locked");
        SqliteLock { child }
    }

    fn release(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for the lock holder");
        assert!(status.success());
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_locked_database_pauses_intake_acknowledges_nothing_and_resumes() {
    let dovecot = Dovecot::start();
    for index in 0..5 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = imap_env(&dovecot, dovecot.plain_port(), "");
    env.ok(&["migrate"]);
    let serve = ServeProcess::start(&env);
    wait_until("the first five tickets", Duration::from_secs(60), || {
        env.ticket_count() == 5 && inbox(&dovecot) == 0
    });

    let lock = SqliteLock::hold(&env.database_path());
    for index in 5..25 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    // Longer than the store's busy timeout (10 s): the batch fails, the
    // mailbox task backs off and tries again.
    std::thread::sleep(Duration::from_secs(14));
    assert_eq!(env.ticket_count(), 5, "nothing stored while locked");
    assert_eq!(inbox(&dovecot), 20, "nothing acknowledged while locked");
    assert_eq!(processed(&dovecot), 5);

    lock.release();
    wait_until("the mail of the lock", Duration::from_secs(90), || {
        env.ticket_count() == 25
    });
    assert_each_mail_once(&env, &dovecot, 25);
    let log = serve.stop();
    assert!(log.contains("database is locked"), "{log}");
}

/// A tmpfs of `megabytes` mounted on a fresh directory, unmounted on drop.
/// `None` (with a notice) when not root; under CI that fails the test.
struct SmallDisk {
    directory: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u64) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the disk-full test as root (it mounts a tmpfs)"
            );
            eprintln!("skipped: the disk-full test mounts a tmpfs and needs root");
            return None;
        }
        let directory = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(directory.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs");
        Some(SmallDisk { directory })
    }

    fn path(&self) -> &std::path::Path {
        self.directory.path()
    }

    /// Fills the disk with a file of zeros, leaving nothing free.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .stderr(Stdio::null())
            .status();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.directory.path())
            .status();
    }
}

#[test]
fn a_full_disk_acknowledges_nothing_unstored_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount(16) else {
        return;
    };
    let dovecot = Dovecot::start();
    for index in 0..5 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = imap_env(&dovecot, dovecot.plain_port(), "batch_size = 20");
    let database = disk.path().join("supportd.db");
    let database_url = format!("sqlite://{}", database.display());
    let command = |args: &[&str]| env.command_on(&database_url, args);
    let count = || {
        let output = command(&["queue", "list"]).output().expect("queue list");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert!(command(&["migrate"]).status().expect("migrate").success());
    assert!(
        command(&[
            "accounts",
            "import",
            fixtures().join("accounts.csv").to_str().unwrap(),
        ])
        .output()
        .expect("import")
        .status
        .success()
    );
    let log_path = env.path().join("serve-disk.log");
    let mut serve = command(&["serve"])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("spawn serve");
    wait_until("the first five tickets", Duration::from_secs(60), || {
        count() == 5 && inbox(&dovecot) == 0
    });

    let filler = disk.fill();
    // 70 KB mails (2.8 MB in all, which fits once the disk is freed).
    let big_body = "The log we were asked for follows.\r\n".repeat(2_000);
    for index in 5..45 {
        let mut mail = customer_mail(index);
        mail.extend_from_slice(big_body.as_bytes());
        dovecot.deliver(SUPPORT_USER, &mail);
    }
    let started = Instant::now();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until("the disk-full error", Duration::from_secs(60), || {
        log().contains("full")
    });
    eprintln!("disk full reported after {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let stored_while_full = count();
    let acknowledged_while_full = processed(&dovecot);
    assert_eq!(
        acknowledged_while_full, stored_while_full,
        "only stored mail is acknowledged (stored {stored_while_full})"
    );
    assert!(stored_while_full < 45, "the disk really was full");
    assert!(
        matches!(serve.try_wait(), Ok(None)),
        "serve keeps running:\n{}",
        log()
    );

    std::fs::remove_file(&filler).expect("free the disk");
    let freed = Instant::now();
    while count() != 45 {
        assert!(
            freed.elapsed() < Duration::from_secs(120),
            "not every ticket after the disk was freed ({} of 45):\n{}",
            count(),
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("recovered {:?} after the disk was freed", freed.elapsed());
    wait_until("every mail moved", Duration::from_secs(60), || {
        inbox(&dovecot) == 0
    });
    assert_eq!(processed(&dovecot), 45);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().expect("wait for serve");
    assert!(status.success(), "{}", log());
    assert_eq!(count(), 45, "tickets out = mails in");
    let log = log();
    assert!(
        log.contains("database or disk is full"),
        "the error says what is wrong: {log}"
    );
}

#[test]
fn an_imap_server_that_drops_mid_fetch_answers_garbage_or_stalls_costs_nothing() {
    const MAILS: u64 = 300;
    let dovecot = Dovecot::start();
    for index in 0..MAILS as usize {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let proxy = FaultProxy::start(dovecot.plain_port());
    proxy.arm(Fault::DropMidFetch);
    proxy.arm(Fault::Garbage);
    proxy.arm(Fault::Stall);
    proxy.arm(Fault::DropMidFetch);
    let env = imap_env(
        &dovecot,
        proxy.port(),
        "batch_size = 20\ncommand_timeout = \"3s\"",
    );
    env.ok(&["migrate"]);
    let serve = ServeProcess::start(&env);
    let started = Instant::now();
    wait_until(
        "every ticket through the faults",
        Duration::from_secs(180),
        || env.ticket_count() >= MAILS,
    );
    eprintln!(
        "{MAILS} mails through {} faults on {} connections in {:?}",
        proxy.injected(),
        proxy.connections(),
        started.elapsed()
    );
    assert_eq!(proxy.pending(), 0, "every fault was injected");
    assert_eq!(proxy.injected(), 4);
    assert!(proxy.connections() >= 5, "a reconnection after each fault");
    assert_each_mail_once(&env, &dovecot, MAILS);
    let log = serve.stop();
    assert!(log.contains("reconnecting"), "{log}");
}

#[test]
fn an_smtp_server_stalling_mid_data_gets_the_mail_once_after_a_retry() {
    let smtp = StallingSmtp::start(Stall::MidData);
    let env = TestEnv::with_config("");
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    env.ok(&[
        "ingest",
        fixtures().join("mail/01-billing.eml").to_str().unwrap(),
    ]);
    let outbox = |args: &[&str]| {
        let output = env
            .command(args)
            .env("SUPPORTD_OUTBOUND__PORT", smtp.port().to_string())
            .env("SUPPORTD_OUTBOUND__TIMEOUT_S", "2")
            // Long enough that one `outbox send` makes one attempt.
            .env("SUPPORTD_OUTBOUND__BACKOFF_INITIAL_MS", "3000")
            .env("SUPPORTD_OUTBOUND__BACKOFF_MAX_MS", "3000")
            .output()
            .expect("run supportd");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The first attempt stalls in the middle of DATA and times out.
    let started = Instant::now();
    let first = outbox(&["outbox", "send"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the stalled send gave up in time, not after {:?}",
        started.elapsed()
    );
    assert_eq!(smtp.data_commands(), 1, "{first}");
    assert!(
        smtp.received().is_empty(),
        "the server never got the whole mail"
    );
    let queued = env.ok(&["outbox", "list", "--status", "queued"]);
    assert!(queued.contains("\tacknowledge\tqueued\t"), "{queued}");

    // Answered from now on: the row is retried after its backoff, sent once.
    smtp.answer_from_now_on();
    wait_until("the row sent", Duration::from_secs(30), || {
        outbox(&["outbox", "send"]);
        env.ok(&["outbox", "list", "--status", "sent"])
            .contains("\tacknowledge\tsent\t")
    });
    assert_eq!(smtp.received().len(), 1, "one complete copy at the server");
    std::thread::sleep(Duration::from_millis(3_100));
    outbox(&["outbox", "send"]);
    assert_eq!(smtp.received().len(), 1, "never sent again");
    assert_eq!(smtp.data_commands(), 2, "one stalled attempt, one good one");
}

/// The `index` of every `customer_mail` in `user`'s `folder`, read from the
/// Maildir files (their Message-ID `<question-INDEX@…>`).
fn mail_indexes_in(dovecot: &Dovecot, folder: &str) -> BTreeSet<u64> {
    let maildir = dovecot.maildir(SUPPORT_USER, folder);
    ["cur", "new"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flat_map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())))
        .filter_map(|path| std::fs::read(path).ok())
        .filter_map(|bytes| question_index(&String::from_utf8_lossy(&bytes)))
        .collect()
}

/// `5` of a text holding `question-5@`.
fn question_index(text: &str) -> Option<u64> {
    let start = text.find("question-")? + "question-".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn postgres_stopped_mid_ingest_acknowledges_nothing_unstored_and_every_mail_lands_once() {
    const FIRST_WAVE: u64 = 2_000;
    const WHILE_DOWN: u64 = 200;
    const MAILS: u64 = FIRST_WAVE + WHILE_DOWN;
    let mut cluster = PostgresCluster::start();
    let dovecot = Dovecot::start();
    for index in 0..FIRST_WAVE as usize {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = TestEnv::with_config(&mailbox_config(
        &dovecot,
        dovecot.plain_port(),
        "support",
        SUPPORT_PASSWORD,
        "batch_size = 25",
    ))
    .on_database(&cluster.url());
    env.ok(&["migrate"]);
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    let mut serve = ServeProcess::start(&env);
    let address = serve.web_address();
    wait_until("ingest under way", Duration::from_secs(120), || {
        cluster.count("SELECT count(*) FROM tickets") >= 50
    });
    assert_eq!(
        http_get(&address, "/readyz").0,
        200,
        "ready before the stop"
    );

    cluster.stop_immediately();
    let stopped = Instant::now();
    let waiting_at_stop = inbox(&dovecot);
    assert!(
        waiting_at_stop > 0,
        "the stop landed before the ingest was done"
    );
    wait_until("/readyz 503", Duration::from_secs(30), || {
        http_get(&address, "/readyz").0 == 503
    });
    let not_ready_after = stopped.elapsed();
    for index in FIRST_WAVE..MAILS {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index as usize));
    }
    // A batch committed just before the stop may still be moved; after that,
    // nothing is acknowledged while the database is down.
    std::thread::sleep(Duration::from_secs(2));
    let acknowledged_while_down = mail_indexes_in(&dovecot, "Processed");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        mail_indexes_in(&dovecot, "Processed"),
        acknowledged_while_down,
        "nothing acknowledged while PostgreSQL is down"
    );
    assert_eq!(
        inbox(&dovecot) + acknowledged_while_down.len() as u64,
        MAILS,
        "every mail is in INBOX or Processed"
    );
    let (status, body) = http_get(&address, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"database\":\"unreachable\""), "{body}");
    serve.assert_running();

    cluster.start_again();
    let down_for = stopped.elapsed();
    let restarted = Instant::now();
    // Mail moved to Processed is never fetched again: had any been moved
    // before it was stored, it would be missing now, and for good.
    let stored: BTreeSet<u64> = cluster
        .query("SELECT message_id FROM messages")
        .lines()
        .filter_map(question_index)
        .collect();
    let unstored: Vec<&u64> = acknowledged_while_down.difference(&stored).collect();
    assert!(
        unstored.is_empty(),
        "acknowledged but not stored: {unstored:?}"
    );
    wait_until("/readyz 200 again", Duration::from_secs(60), || {
        http_get(&address, "/readyz").0 == 200
    });
    let ready_after = restarted.elapsed();
    wait_until("every ticket", Duration::from_secs(180), || {
        cluster.count("SELECT count(*) FROM tickets") >= MAILS
    });
    let caught_up_after = restarted.elapsed();
    assert_each_mail_once(&env, &dovecot, MAILS);
    assert_eq!(cluster.count("SELECT count(*) FROM messages"), MAILS);
    assert_eq!(
        mail_indexes_in(&dovecot, "Processed"),
        (0..MAILS).collect::<BTreeSet<u64>>(),
        "every mail moved, once"
    );
    eprintln!(
        "PostgreSQL stopped with {waiting_at_stop} mails waiting and {} acknowledged; \
         /readyz 503 after {not_ready_after:?}; down for {down_for:?}; \
         /readyz 200 {ready_after:?} and all {MAILS} tickets {caught_up_after:?} after the restart",
        acknowledged_while_down.len()
    );
    let log = serve.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(
        cluster.count("SELECT count(*) FROM tickets"),
        MAILS,
        "no ticket doubled after the stop"
    );
}
