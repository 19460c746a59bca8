use std::io::Write;
use std::process::Stdio;

use supportd_tests::{TestEnv, fixtures, parse_summary};

fn env_with_accounts() -> TestEnv {
    let env = TestEnv::new();
    let accounts = fixtures().join("accounts.csv");
    let stdout = env.ok(&["accounts", "import", accounts.to_str().unwrap()]);
    assert!(stdout.contains("4 account records"), "{stdout}");
    env
}

#[test]
fn a_folder_becomes_routed_tickets_and_replies_thread() {
    let env = env_with_accounts();
    let mail = fixtures().join("mail");
    let stdout = env.ok(&["ingest", mail.to_str().unwrap()]);
    // 8 files: 5 new tickets (billing, patching, out-of-office, outage, unmanaged),
    // 2 replies threaded (In-Reply-To and [CS-1001] tag), 1 binary file quarantined.
    assert_eq!(parse_summary(&stdout), [8, 5, 2, 0, 1, 0], "{stdout}");

    let billing = env.ok(&["ticket", "show", "CS-1001"]);
    assert!(billing.contains("Charged twice"), "{billing}");
    assert!(billing.contains("queue billing"), "{billing}");
    assert!(billing.contains("Message 3 of 3"), "{billing}");
    assert!(billing.contains("message_threaded"), "{billing}");
    assert!(billing.contains("ticket_created"), "{billing}");
    assert!(billing.contains("tier platform"), "{billing}");

    let queues = env.ok(&["queue", "list"]);
    let open_in = |queue: &str| -> u64 {
        let line = queues
            .lines()
            .find(|line| line.split_whitespace().next() == Some(queue))
            .unwrap_or_else(|| panic!("queue {queue} missing:\n{queues}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(open_in("billing"), 1, "{queues}");
    assert_eq!(open_in("managed-os"), 1, "{queues}");
    assert_eq!(open_in("noise"), 1, "{queues}");
    assert_eq!(open_in("microsoft-escalation"), 1, "{queues}");
    assert_eq!(open_in("unmanaged"), 1, "{queues}");
    assert_eq!(open_in("quarantine"), 1, "{queues}");

    let escalation = env.ok(&["queue", "show", "microsoft-escalation"]);
    assert!(escalation.contains("Production down"), "{escalation}");
    assert!(escalation.contains("urgent"), "{escalation}");
}

#[test]
fn ingesting_the_same_mail_again_creates_nothing() {
    let env = env_with_accounts();
    let mail = fixtures().join("mail");
    let first = parse_summary(&env.ok(&["ingest", mail.to_str().unwrap()]));
    let second = parse_summary(&env.ok(&["ingest", mail.to_str().unwrap()]));
    assert_eq!(first[0], second[0]);
    assert_eq!(
        second,
        [8, 0, 0, 8, 0, 0],
        "second run must be all duplicates"
    );
    let queues = env.ok(&["queue", "list"]);
    assert!(queues.contains("billing"), "{queues}");
}

#[test]
fn stdin_maildir_and_mbox_are_sources_too() {
    let env = env_with_accounts();
    let billing = std::fs::read(fixtures().join("mail/01-billing.eml")).unwrap();

    let mut child = env
        .command(&["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&billing).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(parse_summary(&stdout), [1, 1, 0, 0, 0, 0], "{stdout}");

    let maildir = env.path().join("Maildir");
    for folder in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(folder)).unwrap();
    }
    std::fs::copy(
        fixtures().join("mail/02-billing-reply.eml"),
        maildir.join("new/1764000000.1.host"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("mail/06-unmanaged.eml"),
        maildir.join("cur/1764000001.2.host:2,S"),
    )
    .unwrap();
    let stdout = env.ok(&["ingest", maildir.to_str().unwrap()]);
    assert_eq!(parse_summary(&stdout), [2, 1, 1, 0, 0, 0], "{stdout}");

    let mut mbox = Vec::new();
    for name in ["03-patching-managed-os.eml", "05-outage.eml"] {
        mbox.extend_from_slice(b"From sender@example.com Wed Nov 25 09:00:00 2026\n");
        let message = std::fs::read(fixtures().join("mail").join(name)).unwrap();
        mbox.extend_from_slice(&message);
        mbox.extend_from_slice(b"\n");
    }
    let mbox_path = env.path().join("archive.mbox");
    std::fs::write(&mbox_path, mbox).unwrap();
    let stdout = env.ok(&["ingest", mbox_path.to_str().unwrap()]);
    assert_eq!(parse_summary(&stdout), [2, 2, 0, 0, 0, 0], "{stdout}");
}
