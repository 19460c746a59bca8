//! `supportd serve` against a real Dovecot: mail in the mailbox becomes routed
//! tickets, exactly once, through crashes and server restarts.

use std::time::Duration;

use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};
use supportd_tests::{
    ServeProcess, TestEnv, customer_mail, fixtures, http_get, imap_env, wait_until,
};

fn env_for(dovecot: &Dovecot, extra_mailbox_keys: &str) -> TestEnv {
    imap_env(dovecot, dovecot.plain_port(), extra_mailbox_keys)
}

fn mailbox_config(dovecot: &Dovecot, name: &str, password: &str, extra: &str) -> String {
    supportd_tests::mailbox_config(dovecot, dovecot.plain_port(), name, password, extra)
}

fn start_serve(env: &TestEnv) -> ServeProcess {
    ServeProcess::start(env)
}

fn stop_serve(serve: ServeProcess) -> String {
    serve.stop()
}

fn ticket_count(env: &TestEnv) -> u64 {
    env.ticket_count()
}

#[test]
fn mail_arriving_during_idle_becomes_a_ticket_and_is_moved_to_processed() {
    let dovecot = Dovecot::start();
    let env = env_for(&dovecot, "");
    let child = start_serve(&env);
    wait_until("the first checkpoint", Duration::from_secs(20), || {
        env.run(&["queue", "list"]).status.success() && dovecot.folder_exists(SUPPORT_USER, "INBOX")
    });
    // Give the daemon time to reach IDLE, then deliver.
    std::thread::sleep(Duration::from_millis(500));
    dovecot.deliver(
        SUPPORT_USER,
        &std::fs::read(fixtures().join("mail/01-billing.eml")).unwrap(),
    );
    wait_until("the ticket", Duration::from_secs(20), || {
        ticket_count(&env) == 1
    });
    wait_until("the move to Processed", Duration::from_secs(20), || {
        dovecot.folder_exists(SUPPORT_USER, "Processed")
            && dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages") == 1
    });
    assert_eq!(dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages"), 0);
    let log = stop_serve(child);
    assert!(log.contains("Ticket created."), "{log}");
    let ticket = env.ok(&["ticket", "show", "CS-1001"]);
    assert!(ticket.contains("queue billing"), "{ticket}");
}

#[test]
fn two_thousand_waiting_mails_become_two_thousand_tickets_once() {
    let dovecot = Dovecot::start();
    for index in 0..2_000 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = env_for(&dovecot, "acknowledge = \"seen\"\nbatch_size = 250");
    let child = start_serve(&env);
    wait_until("2000 tickets", Duration::from_secs(120), || {
        ticket_count(&env) == 2_000
    });
    stop_serve(child);
    // Running again finds nothing new: the checkpoint holds, nothing doubles.
    let child = start_serve(&env);
    std::thread::sleep(Duration::from_secs(2));
    stop_serve(child);
    assert_eq!(ticket_count(&env), 2_000);
    let seen = dovecot
        .flags(SUPPORT_USER, "INBOX")
        .iter()
        .filter(|(_, flags)| flags.contains("\\Seen"))
        .count();
    assert_eq!(seen, 2_000, "every stored mail is flagged \\Seen");
}

#[test]
fn sigkill_in_the_middle_of_a_batch_loses_and_doubles_nothing() {
    let dovecot = Dovecot::start();
    const MAILS: u64 = 3_000;
    for index in 0..MAILS as usize {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = env_for(&dovecot, "batch_size = 50");
    // Create the database first, so polling it does not race the daemon's migration.
    env.ok(&["migrate"]);
    let serve = start_serve(&env);
    wait_until("the first tickets", Duration::from_secs(60), || {
        ticket_count(&env) >= 1
    });
    // Dropping the guard sends SIGKILL and waits.
    drop(serve);
    let after_kill = ticket_count(&env);
    eprintln!("killed with {after_kill} of {MAILS} tickets stored");
    let child = start_serve(&env);
    wait_until("every ticket", Duration::from_secs(120), || {
        ticket_count(&env) >= MAILS
    });
    wait_until("every mail moved", Duration::from_secs(30), || {
        dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages") == 0
    });
    stop_serve(child);
    assert_eq!(ticket_count(&env), MAILS, "no ticket doubled, none lost");
    // Each mail is in the mailbox exactly once, in Processed, including those
    // committed just before the kill and acknowledged after the restart.
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages"),
        MAILS
    );
}

#[test]
fn dovecot_restarted_under_the_daemon_is_reconnected_and_nothing_is_missed() {
    let mut dovecot = Dovecot::start();
    let env = env_for(&dovecot, "");
    let child = start_serve(&env);
    dovecot.deliver(SUPPORT_USER, &customer_mail(1));
    wait_until("the first ticket", Duration::from_secs(20), || {
        env.run(&["queue", "list"]).status.success() && ticket_count(&env) == 1
    });
    dovecot.kill();
    dovecot.deliver(SUPPORT_USER, &customer_mail(2));
    dovecot.start_again();
    dovecot.deliver(SUPPORT_USER, &customer_mail(3));
    wait_until("the mail of the outage", Duration::from_secs(60), || {
        ticket_count(&env) == 3
    });
    let log = stop_serve(child);
    assert!(log.contains("reconnecting"), "{log}");
}

#[test]
fn a_recreated_folder_with_a_new_uidvalidity_doubles_nothing() {
    let dovecot = Dovecot::start();
    for index in 0..5 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }
    let env = env_for(&dovecot, "acknowledge = \"none\"");
    let child = start_serve(&env);
    wait_until("5 tickets", Duration::from_secs(20), || {
        env.run(&["queue", "list"]).status.success() && ticket_count(&env) == 5
    });
    stop_serve(child);
    dovecot.recreate_folder(SUPPORT_USER, "INBOX");
    dovecot.deliver(SUPPORT_USER, &customer_mail(5));
    let child = start_serve(&env);
    wait_until("the sixth ticket", Duration::from_secs(20), || {
        ticket_count(&env) == 6
    });
    std::thread::sleep(Duration::from_secs(1));
    let log = stop_serve(child);
    assert_eq!(ticket_count(&env), 6);
    assert!(log.contains("UIDVALIDITY changed"), "{log}");
}

#[test]
fn a_mailbox_with_a_wrong_password_fails_alone() {
    let dovecot = Dovecot::start();
    let good = mailbox_config(&dovecot, "support", SUPPORT_PASSWORD, "");
    let bad = mailbox_config(&dovecot, "broken", "not-the-password", "");
    let env = TestEnv::with_config(&format!("{good}\n{bad}"));
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    dovecot.deliver(SUPPORT_USER, &customer_mail(1));
    let mut child = start_serve(&env);
    wait_until(
        "the ticket of the good mailbox",
        Duration::from_secs(20),
        || ticket_count(&env) == 1,
    );
    // /readyz names the refused mailbox and is not ready; the good one is
    // connected.
    let address = child.web_address();
    let mut readiness = (0, String::new());
    wait_until("readyz to report both", Duration::from_secs(20), || {
        readiness = http_get(&address, "/readyz");
        readiness.1.contains("credentials_refused") && readiness.1.contains("\"connected\"")
    });
    let (status, body) = readiness;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["checks"]["mailboxes"]["broken"]["status"],
        "credentials_refused"
    );
    assert_eq!(
        body["checks"]["mailboxes"]["support"]["status"],
        "connected"
    );
    assert!(
        body["checks"]["mailboxes"]["support"]["last_sync_age_s"]
            .as_i64()
            .unwrap()
            < 20,
        "{body}"
    );
    assert!(!body.to_string().contains("not-the-password"), "{body}");
    let log = stop_serve(child);
    assert!(log.contains("broken"), "{log}");
    assert!(log.contains("Mailbox failed"), "{log}");
    assert!(
        !log.contains("not-the-password"),
        "the password never appears in the log"
    );
}
