//! `supportd serve` on the embedded default: the Maildir drop folder.

use std::process::Stdio;
use std::time::{Duration, Instant};

use supportd_tests::{TestEnv, fixtures};

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dropped_mail_becomes_a_ticket_and_moves_to_cur_then_sigterm_stops_cleanly() {
    let env = TestEnv::new();
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    let child = env
        .command(&["serve"])
        .env("SUPPORTD_INTAKE__POLL_INTERVAL_MS", "50")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let inbox = env.path().join("inbox");
    wait_until("the drop folder", Duration::from_secs(20), || {
        inbox.join("tmp").is_dir() && inbox.join("new").is_dir()
    });
    // Deliver as an MTA does: write in tmp/, rename into new/.
    let message = std::fs::read(fixtures().join("mail/01-billing.eml")).unwrap();
    std::fs::write(inbox.join("tmp/1764.1.host"), &message).unwrap();
    std::fs::rename(inbox.join("tmp/1764.1.host"), inbox.join("new/1764.1.host")).unwrap();
    wait_until(
        "the message to move to cur/",
        Duration::from_secs(20),
        || std::fs::read_dir(inbox.join("cur")).unwrap().count() == 1,
    );
    assert_eq!(std::fs::read_dir(inbox.join("new")).unwrap().count(), 0);

    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "serve exits 0 on SIGTERM: {output:?}"
    );

    let ticket = env.ok(&["ticket", "show", "CS-1001"]);
    assert!(ticket.contains("queue billing"), "{ticket}");
}
