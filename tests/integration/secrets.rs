//! Secrets never leave supportd: a full `serve` with every kind of secret
//! configured, then its whole log and /metrics are searched for each one.
//! And secret files that others may read are named in a startup warning.

use std::time::Duration;

use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_PASSWORD, SUPPORT_USER};
use supportd_tests::servers::stalling_smtp::{Stall, StallingSmtp};
use supportd_tests::{
    ServeProcess, TestEnv, customer_mail, fixtures, http_get_with, mailbox_config,
    restrict_to_owner, wait_until,
};

const WRONG_PASSWORD: &str = "wrong-Pa55word-never-logged";
const SMTP_PASSWORD: &str = "smtp-Secret-never-logged";

#[test]
fn passwords_and_tokens_never_appear_in_logs_errors_or_metrics() {
    let dovecot = Dovecot::start();
    let good = mailbox_config(
        &dovecot,
        dovecot.plain_port(),
        "support",
        SUPPORT_PASSWORD,
        "",
    );
    let bad = mailbox_config(&dovecot, dovecot.plain_port(), "broken", WRONG_PASSWORD, "");
    // A third mailbox logs in with an OAuth2 bearer token (XOAUTH2).
    let oauth2_token = dovecot.issue_oauth2_token(SUPPORT_USER);
    let token_file = dovecot.directory().join("oauth2-token");
    std::fs::write(&token_file, &oauth2_token).unwrap();
    restrict_to_owner(&token_file);
    let oauth2 = format!(
        r#"
[[mailbox]]
name = "oauth2"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{SUPPORT_USER}"
auth = {{ method = "xoauth2", token_file = "{token_file}" }}
folders = ["INBOX"]
acknowledge = "none"
start = "2000-01-01"
poll_interval = "1s"
"#,
        port = dovecot.plain_port(),
        token_file = token_file.display(),
    );
    let smtp = StallingSmtp::start(Stall::AfterData);
    smtp.answer_from_now_on();
    let env = TestEnv::with_config(&format!("{good}\n{bad}\n{oauth2}"));
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    env.ok(&["migrate"]);
    let api_token = env.ok(&["token", "create", "monitoring"]).trim().to_owned();
    assert!(api_token.len() >= 20, "{api_token}");
    for index in 0..3 {
        dovecot.deliver(SUPPORT_USER, &customer_mail(index));
    }

    let smtp_port = smtp.port().to_string();
    let mut serve = ServeProcess::start_with(
        &env,
        &[
            ("SUPPORTD_OUTBOUND__PORT", smtp_port.as_str()),
            ("SUPPORTD_OUTBOUND__USERNAME", "supportd"),
            ("SUPPORTD_OUTBOUND__PASSWORD", SMTP_PASSWORD),
            ("SUPPORTD_OUTBOUND__POLL_INTERVAL_MS", "100"),
        ],
    );
    wait_until("three tickets", Duration::from_secs(60), || {
        env.ticket_count() == 3
    });
    let address = serve.web_address();
    let bearer = format!("Bearer {api_token}");
    let mut metrics = String::new();
    wait_until(
        "the refused mailbox and the sent mail in /metrics",
        Duration::from_secs(30),
        || {
            let (status, body) = http_get_with(&address, "/metrics", &[("Authorization", &bearer)]);
            assert_eq!(status, 200, "{body}");
            metrics = body;
            metrics.contains("broken") && !smtp.received().is_empty()
        },
    );
    let (_, readiness) = http_get_with(&address, "/readyz", &[]);
    let (_, queues) = http_get_with(&address, "/api/queues", &[("Authorization", &bearer)]);
    // A wrong token is refused without being echoed.
    let (refused, refusal) = http_get_with(
        &address,
        "/api/queues",
        &[("Authorization", "Bearer sdt_not-a-real-token-123")],
    );
    assert_eq!(refused, 401);
    let log = serve.stop();
    assert!(
        log.contains("broken"),
        "the refused mailbox is reported: {log}"
    );
    let sent_mail: Vec<String> = smtp
        .received()
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .collect();
    let outbox = env.ok(&["outbox", "list"]);
    for (name, secret) in [
        ("IMAP password", SUPPORT_PASSWORD),
        ("wrong IMAP password", WRONG_PASSWORD),
        ("OAuth2 token", oauth2_token.as_str()),
        ("SMTP password", SMTP_PASSWORD),
        ("API token", api_token.as_str()),
    ] {
        for (place, text) in [
            ("the log", &log),
            ("/metrics", &metrics),
            ("/readyz", &readiness),
            ("/api/queues", &queues),
            ("the 401 answer", &refusal),
            ("outbox list", &outbox),
        ] {
            assert!(!text.contains(secret), "the {name} appears in {place}");
        }
        for mail in &sent_mail {
            assert!(!mail.contains(secret), "the {name} appears in a sent mail");
        }
    }
    assert!(
        !log.contains("sdt_not-a-real-token-123") && !refusal.contains("sdt_not-a-real"),
        "a presented token is not echoed"
    );
}

#[test]
fn secret_files_readable_by_others_are_named_in_a_startup_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dovecot = Dovecot::start();
    // mailbox_config writes its password file 0600; open one of them up.
    let private = mailbox_config(
        &dovecot,
        dovecot.plain_port(),
        "private",
        SUPPORT_PASSWORD,
        "",
    );
    let open = mailbox_config(&dovecot, dovecot.plain_port(), "open", SUPPORT_PASSWORD, "");
    let open_file = dovecot.directory().join("open-password");
    std::fs::set_permissions(&open_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let smtp_password_file = dovecot.directory().join("smtp-password");
    std::fs::write(&smtp_password_file, SMTP_PASSWORD).unwrap();
    std::fs::set_permissions(&smtp_password_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let env = TestEnv::with_config(&format!("{private}\n{open}"));
    env.ok(&["migrate"]);
    let smtp_password_path = smtp_password_file.display().to_string();
    let mut serve = ServeProcess::start_with(
        &env,
        &[
            ("SUPPORTD_OUTBOUND__USERNAME", "supportd"),
            (
                "SUPPORTD_OUTBOUND__PASSWORD_FILE",
                smtp_password_path.as_str(),
            ),
        ],
    );
    serve.web_address();
    let log = serve.stop();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("readable by group or others"))
        .collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings
            .iter()
            .any(|line| line.contains(&open_file.display().to_string()) && line.contains("644")),
        "{log}"
    );
    assert!(
        warnings.iter().any(
            |line| line.contains(&smtp_password_file.display().to_string()) && line.contains("640")
        ),
        "{log}"
    );
    assert!(
        !log.contains("private-password"),
        "a 0600 file is fine: {log}"
    );
    assert!(!log.contains(SMTP_PASSWORD), "{log}");
}
