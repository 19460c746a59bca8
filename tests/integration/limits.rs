//! Limits that hold against the real daemon: an oversized mail in a real
//! Dovecot mailbox is quarantined from its header alone, without the daemon's
//! memory growing with it.

use std::time::Duration;

use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_USER};
use supportd_tests::{ServeProcess, customer_mail, imap_env, wait_until};

/// A 30 MB message: a small text part and a base64 attachment.
fn thirty_megabyte_mail() -> Vec<u8> {
    let mut raw = b"From: Dana Whitfield <dana@fabrikam-freight.example>\r\n\
To: CloudSupport@centurylink.com\r\n\
Subject: The whole disk image you asked for\r\n\
Message-ID: <huge-image@fabrikam-freight.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"cut\"\r\n\r\n\
--cut\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n\
--cut\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"disk.img\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    let line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n";
    while raw.len() < 30 * 1024 * 1024 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--cut--\r\n");
    raw
}

/// What `serve` may use at most here: a debug build peaked at 33 MiB in this
/// test; fetching the 30 MB mail would add at least its size.
const PEAK_RSS_BOUND_KIB: u64 = 56 * 1024;

#[test]
fn a_thirty_megabyte_mail_is_quarantined_from_its_header_with_memory_bounded() {
    let dovecot = Dovecot::start();
    dovecot.deliver(SUPPORT_USER, &customer_mail(1));
    dovecot.deliver(SUPPORT_USER, &thirty_megabyte_mail());
    dovecot.deliver(SUPPORT_USER, &customer_mail(2));
    let env = imap_env(&dovecot, dovecot.plain_port(), "");
    env.ok(&["migrate"]);
    let serve = ServeProcess::start(&env);
    wait_until("three tickets", Duration::from_secs(60), || {
        env.ticket_count() == 3
    });
    wait_until("the mailbox emptied", Duration::from_secs(30), || {
        dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages") == 0
    });
    let peak_kib = serve.peak_rss_kib();
    let log = serve.stop();
    eprintln!("peak RSS of serve with a 30 MB mail waiting: {peak_kib} KiB");
    // The 30 MB mail was never fetched: the daemon's own footprint (rules,
    // model, runtime) and nothing of the mail's size on top.
    assert!(
        peak_kib < PEAK_RSS_BOUND_KIB,
        "serve's peak RSS {peak_kib} KiB is above {PEAK_RSS_BOUND_KIB} KiB"
    );
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Quarantine", "messages"),
        1,
        "the oversized mail is kept at the server, in the quarantine folder"
    );
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages"),
        2
    );
    let queues = env.ok(&["queue", "list"]);
    let quarantined = queues
        .lines()
        .find(|line| line.starts_with("quarantine"))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("0");
    assert_eq!(quarantined, "1", "{queues}");
    let ticket = env.ok(&["queue", "show", "quarantine"]);
    assert!(
        ticket.contains("The whole disk image you asked for"),
        "the quarantined ticket carries the subject read from the header: {ticket}"
    );
    assert!(log.contains("Message quarantined."), "{log}");
}
