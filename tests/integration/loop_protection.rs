//! Loop protection: an auto-reply storm from one sender gets no mail, and the
//! sender's normal mail gets at most the configured number of acknowledgments.

use supportd_tests::{TestEnv, fixtures, parse_summary};

const AUTO_REPLIES: usize = 200;
const NORMAL_MAILS: usize = 50;
/// `[outbound] acknowledgment_limit` in config/default.toml.
const ACKNOWLEDGMENT_LIMIT: usize = 5;

fn auto_reply(index: usize) -> String {
    format!(
        "From: Dana Whitfield <dana@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Automatic reply: Re: [CS-{index}] your request\r\n\
         Date: Wed, 25 Nov 2026 09:{minute:02}:00 -0600\r\n\
         Message-ID: <ooo-{index}@fabrikam-freight.example>\r\n\
         Auto-Submitted: auto-replied\r\n\
         X-Auto-Response-Suppress: All\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         I am out of the office until Monday.\r\n",
        minute = index % 60
    )
}

fn normal_mail(index: usize) -> String {
    format!(
        "From: Dana Whitfield <dana@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Invoice question number {index}\r\n\
         Date: Wed, 25 Nov 2026 09:{minute:02}:30 -0600\r\n\
         Message-ID: <question-{index}@fabrikam-freight.example>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Our November invoice has a charge we do not recognise on line {index}. Could you explain it?\r\n",
        minute = index % 60
    )
}

/// Rows of `outbox list`: (kind, status, recipient).
fn outbox_rows(env: &TestEnv) -> Vec<(String, String, String)> {
    env.ok(&["outbox", "list", "--limit", "1000"])
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (
                fields[2].to_owned(),
                fields[3].to_owned(),
                fields[5].to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_auto_reply_storm_gets_no_mail_and_the_sender_at_most_the_limit() {
    let env = TestEnv::new();
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    let storm = env.path().join("storm");
    std::fs::create_dir(&storm).unwrap();
    // Interleaved, as they would arrive within one minute.
    for index in 0..AUTO_REPLIES {
        std::fs::write(storm.join(format!("{index:04}-a.eml")), auto_reply(index)).unwrap();
        if index < NORMAL_MAILS {
            std::fs::write(storm.join(format!("{index:04}-b.eml")), normal_mail(index)).unwrap();
        }
    }
    let summary = parse_summary(&env.ok(&["ingest", storm.to_str().unwrap()]));
    assert_eq!(summary[0] as usize, AUTO_REPLIES + NORMAL_MAILS);
    assert_eq!(summary[4], 0, "nothing quarantined");

    let rows = outbox_rows(&env);
    let to_dana: Vec<_> = rows
        .iter()
        .filter(|(_, _, recipient)| recipient == "dana@fabrikam-freight.example")
        .collect();
    let queued = to_dana
        .iter()
        .filter(|(_, status, _)| status == "queued")
        .count();
    assert_eq!(
        queued, ACKNOWLEDGMENT_LIMIT,
        "at most the limit is sent: {to_dana:?}"
    );
    assert!(
        to_dana
            .iter()
            .filter(|(_, status, _)| status == "queued")
            .all(|(kind, _, _)| kind == "acknowledge"),
        "{to_dana:?}"
    );
    let suppressed = to_dana
        .iter()
        .filter(|(_, status, _)| status == "suppressed")
        .count();
    assert_eq!(
        suppressed,
        NORMAL_MAILS - ACKNOWLEDGMENT_LIMIT,
        "the rest of the normal mail is recorded as suppressed"
    );
    // No row at all answers an auto-reply: every row is for one of the 50 tickets
    // of the normal mails.
    assert_eq!(to_dana.len(), NORMAL_MAILS, "{to_dana:?}");
}
