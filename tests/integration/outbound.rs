//! Mail back to people through a real Postfix delivering over LMTP into a real
//! Dovecot: `supportd ingest` writes the outbox rows, `supportd outbox send`
//! (or the worker inside `supportd serve`) sends them, and the tests read the
//! delivered bytes back from the sink Maildir.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use supportd_tests::servers::Dovecot;
use supportd_tests::servers::postfix::{self, Postfix};
use supportd_tests::servers::stalling_smtp::{Stall, StallingSmtp};
use supportd_tests::{TestEnv, fixtures, wait_until};

/// A test env with the account directory, whose commands send to `smtp_port`
/// with short pacing (the `[outbound]` keys through the environment).
struct Outbound {
    env: TestEnv,
    smtp_port: u16,
}

impl Outbound {
    fn new(smtp_port: u16) -> Outbound {
        let outbound = Outbound {
            env: TestEnv::with_config(""),
            smtp_port,
        };
        outbound.ok(&[
            "accounts",
            "import",
            fixtures().join("accounts.csv").to_str().unwrap(),
        ]);
        outbound
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(args);
        command
            .env("SUPPORTD_OUTBOUND__PORT", self.smtp_port.to_string())
            .env("SUPPORTD_OUTBOUND__POLL_INTERVAL_MS", "50")
            .env("SUPPORTD_OUTBOUND__BACKOFF_INITIAL_MS", "200")
            .env("SUPPORTD_OUTBOUND__BACKOFF_MAX_MS", "1000")
            .env("SUPPORTD_OUTBOUND__TIMEOUT_S", "10");
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("run supportd");
        assert!(
            output.status.success(),
            "supportd {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// `supportd ingest` of one message written to a file.
    fn ingest_mail(&self, name: &str, mail: &str) {
        let path = self.env.path().join(name);
        std::fs::write(&path, mail).unwrap();
        self.ok(&["ingest", path.to_str().unwrap()]);
    }

    fn ingest_fixture(&self, name: &str) {
        let path = fixtures().join("mail").join(name);
        self.ok(&["ingest", path.to_str().unwrap()]);
    }
}

/// `supportd serve`, stopped with SIGTERM (then killed) when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mail(from: &str, message_id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Dana Whitfield <{from}>\r\nTo: CloudSupport@centurylink.com\r\n\
         Subject: {subject}\r\nDate: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

/// One delivered message: its header section unfolded, and its body with
/// quoted-printable soft breaks and `=3D` undone (enough for the templates).
struct Delivered {
    raw: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Delivered {
    fn parse(bytes: &[u8]) -> Delivered {
        let raw = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        let headers = unfolded
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect();
        let body = body.replace("=\n", "").replace("=3D", "=");
        Delivered {
            headers,
            body,
            raw: raw.clone(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> &str {
        let values = self.all(name);
        assert_eq!(values.len(), 1, "one {name} header in:\n{}", self.raw);
        values[0]
    }

    /// The body with every run of whitespace as one space.
    fn flat_body(&self) -> String {
        self.body.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn delivered(dovecot: &Dovecot) -> Vec<Delivered> {
    postfix::delivered(dovecot)
        .iter()
        .map(|bytes| Delivered::parse(bytes))
        .collect()
}

/// The summary line of `supportd outbox send`.
fn send_summary(output: &str) -> (u64, u64, u64) {
    let words: Vec<&str> = output.split_whitespace().collect();
    let number = |label: &str| -> u64 {
        let at = words
            .iter()
            .position(|word| *word == label)
            .unwrap_or_else(|| panic!("`{label}` in {output}"));
        words[at - 1].parse().unwrap()
    };
    (number("sent,"), number("to"), number("dead"))
}

/// How many deliveries Postfix has logged (`status=sent`), once it has
/// logged at least one: the sink file appears before Postfix logs the LMTP
/// reply.
fn deliveries_logged(postfix: &Postfix) -> usize {
    let count = || postfix.log().matches("status=sent").count();
    wait_until(
        "Postfix to log the delivery",
        Duration::from_secs(20),
        || count() > 0,
    );
    count()
}

/// One SMTP command and its reply (multi-line replies read to the last line).
fn smtp(stream: &mut TcpStream, line: Option<&str>) -> String {
    if let Some(line) = line {
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut reply = String::new();
    loop {
        let mut next = String::new();
        reader.read_line(&mut next).unwrap();
        reply.push_str(&next);
        if next.len() < 4 || next.as_bytes()[3] == b' ' {
            return reply;
        }
    }
}

#[test]
fn the_harness_postfix_delivers_over_lmtp_into_the_dovecot_sink() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let mut stream = TcpStream::connect(("127.0.0.1", postfix.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(smtp(&mut stream, None).starts_with("220"));
    assert!(smtp(&mut stream, Some("EHLO test")).starts_with("250"));
    assert!(smtp(&mut stream, Some("MAIL FROM:<a@sender.example>")).starts_with("250"));
    let refused = smtp(&mut stream, Some("RCPT TO:<reject-x@customer.example>"));
    assert!(refused.starts_with("550"), "{refused}");
    let accepted = smtp(&mut stream, Some("RCPT TO:<anyone@customer.example>"));
    assert!(accepted.starts_with("250"), "{accepted}");
    assert!(smtp(&mut stream, Some("DATA")).starts_with("354"));
    let queued = smtp(
        &mut stream,
        Some("Subject: harness\r\nMessage-ID: <harness-1@test>\r\n\r\nhello\r\n."),
    );
    assert!(queued.starts_with("250"), "{queued}");
    smtp(&mut stream, Some("QUIT"));
    wait_until("delivery into the sink", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 1, "{}", postfix.log());
    assert_eq!(mails[0].one("Message-ID"), "<harness-1@test>");
    assert_eq!(mails[0].one("Delivered-To"), "sink@sink.test");
}

#[test]
fn acknowledgment_is_delivered_once_threaded_tagged_and_auto_submitted() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("01-billing.eml");

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (1, 0, 0), "{summary}");
    wait_until("the acknowledgment", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    // Nothing left to send: a second run sends nothing again.
    let again = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&again), (0, 0, 0), "{again}");

    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 1, "{}", postfix.log());
    let ack = &mails[0];
    assert_eq!(
        ack.one("Subject"),
        "[CS-1001] Re: Charged twice on this month's invoice"
    );
    assert_eq!(ack.one("To"), "dana@fabrikam-freight.example");
    assert!(
        ack.one("From").contains("<CloudSupport@centurylink.com>"),
        "{}",
        ack.raw
    );
    let customer_id = "<invoice-question-1@fabrikam-freight.example>";
    assert_eq!(ack.one("In-Reply-To"), customer_id);
    assert_eq!(ack.one("References"), customer_id);
    assert_eq!(ack.one("Auto-Submitted"), "auto-replied");
    assert_eq!(ack.one("X-Supportd-Ticket"), "CS-1001");
    assert!(
        ack.one("Message-ID").starts_with("<outbox-1."),
        "{}",
        ack.raw
    );
    let text = ack.flat_body();
    for expected in [
        "Thank you for contacting CenturyLink Cloud Support.",
        "opened ticket CS-1001",
        "Your ticket is in the billing queue",
        "Please keep CS-1001 in the subject",
        "844-874-5167",
        "CloudSupport@centurylink.com",
        "MSP Portal",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{}", ack.raw);
    }

    let listing = outbound.ok(&["outbox", "list"]);
    assert!(listing.contains("\tacknowledge\tsent\t1\t"), "{listing}");
}

#[test]
fn an_unmanaged_sender_gets_the_scope_notice() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("06-unmanaged.eml");

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (1, 0, 0), "{summary}");
    wait_until("the scope notice", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 1, "{}", postfix.log());
    let notice = &mails[0];
    assert_eq!(notice.one("To"), "ines@unknown-startup.example");
    assert_eq!(
        notice.one("Subject"),
        "[CS-1001] Re: Our storage account returns 403"
    );
    assert_eq!(
        notice.one("In-Reply-To"),
        "<storage-403@unknown-startup.example>"
    );
    assert_eq!(notice.one("Auto-Submitted"), "auto-replied");
    let text = notice.flat_body();
    for expected in ["re-sold (CSP)", "ElasticBox ARM provider", "844-874-5167"] {
        assert!(text.contains(expected), "`{expected}` in:\n{}", notice.raw);
    }
    let listing = outbound.ok(&["outbox", "list"]);
    assert!(listing.contains("\tscope_notice\tsent\t"), "{listing}");
}

#[test]
fn line_breaks_in_the_subject_and_name_inject_no_header() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    // Encoded words decode to CR/LF; a raw injection attempt rides along in
    // the display name.
    let hostile = "From: =?utf-8?q?Dana=0D=0ABcc:_name@evil.example?= <dana@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: =?utf-8?q?Invoice_question=0D=0ABcc:_victim@evil.example=0D=0A=0D=0Abody?=\r\n\
         Date: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <hostile-1@fabrikam-freight.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nThe November invoice shows a charge we do not recognise.\r\n";
    outbound.ingest_mail("hostile.eml", hostile);

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (1, 0, 0), "{summary}");
    wait_until("the acknowledgment", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 1, "{}", postfix.log());
    let ack = &mails[0];
    assert!(ack.all("Bcc").is_empty(), "{}", ack.raw);
    assert_eq!(ack.one("To"), "dana@fabrikam-freight.example");
    let subject = ack.one("Subject");
    assert!(
        subject.starts_with("[CS-1001] Re: Invoice question"),
        "{subject}"
    );
    // The whole header section is ours: every header name is one we write.
    let ours = [
        "Return-Path",
        "Delivered-To",
        "Received",
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "X-Supportd-Ticket",
        "X-Auto-Response-Suppress",
        "Auto-Submitted",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
    ];
    for (name, _) in &ack.headers {
        assert!(
            ours.contains(&name.as_str()),
            "header {name} in:\n{}",
            ack.raw
        );
    }
    // One recipient only: the envelope carried no injected address.
    assert_eq!(deliveries_logged(&postfix), 1, "{}", postfix.log());
}

#[test]
fn a_550_makes_the_row_dead_with_the_servers_reply() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_mail(
        "refused.eml",
        &mail(
            "reject-me@fabrikam-freight.example",
            "reject-1@fabrikam-freight.example",
            "Invoice copy",
            "Hello, please send a copy of the November invoice.",
        ),
    );

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (0, 0, 1), "{summary}");
    let dead = outbound.ok(&["outbox", "list", "--status", "dead"]);
    let row = dead
        .lines()
        .find(|line| line.contains("reject-me@fabrikam-freight.example"))
        .unwrap_or_else(|| panic!("a dead row in {dead}"));
    assert!(row.contains("550"), "{row}");
    assert!(row.contains("5.1.1"), "{row}");
    assert!(row.contains("mailbox unavailable"), "{row}");
    // Dead is final: no further attempt, nothing delivered.
    let again = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&again), (0, 0, 0), "{again}");
    assert!(delivered(&dovecot).is_empty());
}

#[test]
fn smtp_down_when_the_ticket_arrives_then_up_delivers_exactly_once() {
    let dovecot = Dovecot::start_with_lmtp();
    // Configured (its port chosen) but not running yet.
    let mut postfix = Postfix::configure(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("01-billing.eml");

    let log = std::fs::File::create(outbound.env.path().join("serve.log")).unwrap();
    let _serve = Serve(
        outbound
            .command(&["serve"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    // The worker tries, fails on the refused connection, and backs off.
    wait_until("three failed attempts", Duration::from_secs(30), || {
        outbound
            .ok(&["outbox", "list", "--status", "queued"])
            .lines()
            .any(|line| {
                line.split('\t')
                    .nth(4)
                    .and_then(|attempts| attempts.parse::<u32>().ok())
                    .is_some_and(|attempts| attempts >= 3)
            })
    });
    assert!(delivered(&dovecot).is_empty());

    postfix.run();
    wait_until("the row marked sent", Duration::from_secs(30), || {
        outbound
            .ok(&["outbox", "list", "--status", "sent"])
            .contains("\tacknowledge\tsent\t")
    });
    wait_until("the delivery", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    drop(_serve);
    let again = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&again), (0, 0, 0), "{again}");
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 1, "{}", postfix.log());
    assert_eq!(
        mails[0].one("Subject"),
        "[CS-1001] Re: Charged twice on this month's invoice"
    );
    assert_eq!(deliveries_logged(&postfix), 1, "{}", postfix.log());
}

#[test]
fn two_hundred_acknowledgments_are_each_delivered_once() {
    const MAILS: usize = 200;
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    // Distinct senders: the per-address acknowledgment limit does not apply.
    let folder = outbound.env.path().join("many");
    std::fs::create_dir_all(&folder).unwrap();
    for index in 0..MAILS {
        std::fs::write(
            folder.join(format!("{index:04}.eml")),
            mail(
                &format!("customer-{index}@fabrikam-freight.example"),
                &format!("many-{index}@fabrikam-freight.example"),
                &format!("Invoice question number {index}"),
                "Hello, the November invoice shows a charge we do not recognise.",
            ),
        )
        .unwrap();
    }
    outbound.ok(&["ingest", folder.to_str().unwrap()]);

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (MAILS as u64, 0, 0), "{summary}");
    eprintln!("outbox send to the loopback Postfix: {}", summary.trim());
    wait_until("every delivery", Duration::from_secs(120), || {
        delivered(&dovecot).len() >= MAILS
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), MAILS);
    let mut ids: Vec<String> = mails
        .iter()
        .map(|mail| mail.one("Message-ID").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MAILS, "one mail per outbox row");
    for mail in &mails {
        let to = mail.one("To");
        let index: usize = to
            .strip_prefix("customer-")
            .and_then(|rest| rest.split('@').next())
            .and_then(|index| index.parse().ok())
            .unwrap_or_else(|| panic!("{to}"));
        assert_eq!(
            mail.one("In-Reply-To"),
            format!("<many-{index}@fabrikam-freight.example>")
        );
    }
}

#[test]
fn a_microsoft_bound_ticket_hands_off_to_the_escalation_desk_with_the_original_attached() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("05-outage.eml");

    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (2, 0, 0), "{summary}");
    wait_until("two deliveries", Duration::from_secs(20), || {
        delivered(&dovecot).len() >= 2
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 2, "{}", postfix.log());
    let hand_off = mails
        .iter()
        .find(|mail| mail.one("To") == "azure-escalations@centurylink.com")
        .unwrap_or_else(|| {
            panic!(
                "a hand-off among {:?}",
                mails.iter().map(|m| m.one("To")).collect::<Vec<_>>()
            )
        });
    let ack = mails
        .iter()
        .find(|mail| mail.one("To") == "sam@fabrikam-freight.example")
        .expect("the customer's acknowledgment");
    assert_eq!(ack.one("X-Supportd-Ticket"), "CS-1001");

    assert_eq!(hand_off.one("X-Supportd-Ticket"), "CS-1001");
    assert!(
        hand_off.one("Subject").contains("CS-1001"),
        "{}",
        hand_off.raw
    );
    assert!(
        hand_off.one("Content-Type").starts_with("multipart/mixed"),
        "{}",
        hand_off.raw
    );
    let text = hand_off.flat_body();
    for expected in [
        "Microsoft escalation hand-off for ticket CS-1001",
        "sam@fabrikam-freight.example",
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "urgent",
        "none of our virtual machines in West Europe respond",
        // The customer's mail, whole, as a message/rfc822 part.
        "message/rfc822",
        "Message-ID: <outage-now@fabrikam-freight.example>",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` in:\n{}",
            hand_off.raw
        );
    }
    // The hand-off is in the ticket's audit trail.
    let shown = outbound.ok(&["ticket", "show", "CS-1001"]);
    assert!(
        shown.contains("azure-escalations@centurylink.com"),
        "the audit trail names the hand-off:\n{shown}"
    );
}

#[test]
fn a_staff_reply_goes_out_threaded_tagged_and_not_marked_automatic() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("01-billing.eml");
    outbound.ok(&["outbox", "send"]);

    let body = outbound.env.path().join("reply.txt");
    std::fs::write(
        &body,
        "Hello Dana,\n\nthe second charge is a duplicate; we have refunded it.\n\nAlex\n",
    )
    .unwrap();
    outbound.ok(&[
        "ticket",
        "reply",
        "CS-1001",
        "--body-file",
        body.to_str().unwrap(),
        "--actor",
        "alex",
    ]);
    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (1, 0, 0), "{summary}");
    wait_until("the reply", Duration::from_secs(20), || {
        delivered(&dovecot).len() >= 2
    });
    let mails = delivered(&dovecot);
    assert_eq!(mails.len(), 2, "{}", postfix.log());
    let reply = mails
        .iter()
        .find(|mail| mail.flat_body().contains("we have refunded it"))
        .expect("the staff reply was delivered");
    assert_eq!(
        reply.one("Subject"),
        "[CS-1001] Re: Charged twice on this month's invoice"
    );
    assert_eq!(reply.one("To"), "dana@fabrikam-freight.example");
    let customer_id = "<invoice-question-1@fabrikam-freight.example>";
    assert_eq!(reply.one("In-Reply-To"), customer_id);
    assert!(
        reply.one("References").contains(customer_id),
        "{}",
        reply.raw
    );
    assert!(
        reply.all("Auto-Submitted").is_empty(),
        "a person's reply is not automatic:\n{}",
        reply.raw
    );
    let shown = outbound.ok(&["ticket", "show", "CS-1001"]);
    assert!(
        shown.contains("alex"),
        "the audit trail names the author:\n{shown}"
    );
}

/// A delivery status notification from the receiving side's MAILER-DAEMON for
/// `original` (the delivered acknowledgment), quoting its headers.
fn dsn_for(original: &Delivered, status: &str) -> String {
    let quoted_headers: String = original
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <dsn-1@mx.fabrikam-freight.example>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.fabrikam-freight.example\r\n\r\n\
         Final-Recipient: rfc822; dana@fabrikam-freight.example\r\n\
         Action: failed\r\nStatus: {status}\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\n{quoted_headers}\r\n\
         --b1--\r\n"
    )
}

#[test]
fn a_bounce_of_our_mail_joins_its_ticket_sends_nothing_and_silences_the_address() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("01-billing.eml");
    outbound.ok(&["outbox", "send"]);
    wait_until("the acknowledgment", Duration::from_secs(20), || {
        !delivered(&dovecot).is_empty()
    });
    let ack = delivered(&dovecot).remove(0);
    let rows_before = outbound.ok(&["outbox", "list"]).lines().count();

    outbound.ingest_mail("bounce.eml", &dsn_for(&ack, "5.1.1"));
    // No new ticket: the bounce is attached to CS-1001.
    let shown = outbound.ok(&["ticket", "show", "CS-1001"]);
    assert!(
        shown.contains("Undelivered Mail Returned to Sender"),
        "the bounce is in the thread of CS-1001:\n{shown}"
    );
    let second = outbound
        .command(&["ticket", "show", "CS-1002"])
        .output()
        .unwrap();
    assert!(
        !second.status.success() && String::from_utf8_lossy(&second.stderr).contains("no ticket"),
        "no ticket CS-1002: {second:?}"
    );
    // No mail answers the bounce.
    let rows_after = outbound.ok(&["outbox", "list"]).lines().count();
    assert_eq!(rows_after, rows_before, "no outbox row for a bounce");

    // The address bounced permanently: the next ticket from it gets no
    // acknowledgment, and the row says why.
    outbound.ingest_mail(
        "next.eml",
        &mail(
            "dana@fabrikam-freight.example",
            "invoice-question-2@fabrikam-freight.example",
            "Another invoice question",
            "Hello, one more question about the December invoice.",
        ),
    );
    let suppressed = outbound.ok(&["outbox", "list", "--status", "suppressed"]);
    let row = suppressed
        .lines()
        .find(|line| line.contains("dana@fabrikam-freight.example"))
        .unwrap_or_else(|| panic!("a suppressed row in:\n{suppressed}"));
    assert!(row.contains("bounced"), "{row}");
    let summary = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&summary), (0, 0, 0), "{summary}");
    assert_eq!(delivered(&dovecot).len(), 1, "{}", postfix.log());
}

#[test]
fn tls_to_the_relay_fails_without_its_ca_and_works_with_it_starttls_and_implicit() {
    let dovecot = Dovecot::start_with_lmtp();
    let postfix = Postfix::start(&dovecot);
    let outbound = Outbound::new(postfix.port());
    outbound.ingest_fixture("01-billing.eml");
    let ca = dovecot.ca_pem_path();
    let ca = ca.to_str().unwrap();

    // STARTTLS to a certificate no public root signed: refused, retried.
    let mut untrusted = outbound.command(&["outbox", "send"]);
    untrusted
        .env("SUPPORTD_OUTBOUND__SECURITY", "starttls")
        // Not due again within this run: one attempt.
        .env("SUPPORTD_OUTBOUND__BACKOFF_INITIAL_MS", "2000");
    let output = untrusted.output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(send_summary(&summary), (0, 1, 0), "{summary}");
    let queued = outbound.ok(&["outbox", "list", "--status", "queued"]);
    assert!(
        queued.to_lowercase().contains("certificate"),
        "the row says why: {queued}"
    );
    assert!(delivered(&dovecot).is_empty());

    // With the CA trusted: delivered (after the row's backoff).
    wait_until("STARTTLS delivery", Duration::from_secs(20), || {
        let mut trusted = outbound.command(&["outbox", "send"]);
        trusted
            .env("SUPPORTD_OUTBOUND__SECURITY", "starttls")
            .env("SUPPORTD_OUTBOUND__CA_FILE", ca);
        let output = trusted.output().unwrap();
        send_summary(&String::from_utf8_lossy(&output.stdout)).0 == 1
    });

    // Implicit TLS on the wrapper-mode port, for the next ticket.
    outbound.ingest_fixture("06-unmanaged.eml");
    let mut implicit = outbound.command(&["outbox", "send"]);
    implicit
        .env("SUPPORTD_OUTBOUND__SECURITY", "tls")
        .env("SUPPORTD_OUTBOUND__PORT", postfix.tls_port().to_string())
        .env("SUPPORTD_OUTBOUND__CA_FILE", ca);
    let output = implicit.output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert_eq!(send_summary(&summary), (1, 0, 0), "{summary} {output:?}");

    wait_until("both deliveries", Duration::from_secs(20), || {
        delivered(&dovecot).len() >= 2
    });
    assert_eq!(delivered(&dovecot).len(), 2, "{}", postfix.log());
    let log = postfix.log();
    assert!(
        log.matches("TLS connection established").count() >= 2,
        "Postfix saw TLS both times:\n{log}"
    );
}

#[test]
fn killed_after_the_server_took_the_mail_and_before_the_mark_resends_the_same_bytes() {
    let smtp = StallingSmtp::start(Stall::AfterData);
    let outbound = Outbound::new(smtp.port());
    outbound.ingest_fixture("01-billing.eml");

    // The server has the whole mail and stalls; supportd is killed (SIGKILL)
    // before it could mark the row.
    let mut sender = outbound
        .command(&["outbox", "send"])
        .env("SUPPORTD_OUTBOUND__LEASE_S", "1")
        .env("SUPPORTD_OUTBOUND__TIMEOUT_S", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first copy", Duration::from_secs(20), || {
        smtp.received().len() == 1
    });
    sender.kill().unwrap();
    sender.wait().unwrap();
    let queued = outbound.ok(&["outbox", "list", "--status", "queued"]);
    assert!(
        queued.contains("\tacknowledge\tqueued\t"),
        "the row is not marked sent: {queued}"
    );

    // After the lease runs out, the next run sends it again: the same bytes,
    // so the recipient's mail program sees one message (one Message-ID).
    smtp.answer_from_now_on();
    std::thread::sleep(Duration::from_millis(1100));
    wait_until("the row marked sent", Duration::from_secs(20), || {
        let output = outbound
            .command(&["outbox", "send"])
            .env("SUPPORTD_OUTBOUND__LEASE_S", "1")
            .output()
            .unwrap();
        send_summary(&String::from_utf8_lossy(&output.stdout)).0 == 1
    });
    let copies = smtp.received();
    assert_eq!(copies.len(), 2, "sent twice: once stalled, once answered");
    assert_eq!(
        copies[0], copies[1],
        "the resent mail is byte for byte the first one"
    );
    let first = Delivered::parse(&copies[0]);
    assert!(
        first.one("Message-ID").starts_with("<outbox-1."),
        "{}",
        first.raw
    );
    let again = outbound.ok(&["outbox", "send"]);
    assert_eq!(send_summary(&again), (0, 0, 0), "{again}");
}
