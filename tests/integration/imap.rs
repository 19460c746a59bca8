//! supportd-intake against a real Dovecot on loopback (tests/servers).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use supportd_intake::{
    Acknowledge, Auth, FetchedMessage, IdleOutcome, ImapAccount, IntakeError, SecretSource,
    Security, Start, connect,
};
use supportd_tests::servers::dovecot::{
    Dovecot, OTHER_PASSWORD, OTHER_USER, SUPPORT_PASSWORD, SUPPORT_USER,
};

/// A password or token file in the server's temp dir.
fn secret_file(dovecot: &Dovecot, name: &str, secret: &str) -> PathBuf {
    let path = dovecot.directory().join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write secret file");
    path
}

fn account_with(
    dovecot: &Dovecot,
    security: Security,
    username: &str,
    password: &str,
) -> ImapAccount {
    let port = match security {
        Security::Tls => dovecot.tls_port(),
        Security::Starttls | Security::Plain => dovecot.plain_port(),
    };
    ImapAccount {
        name: "test".to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
        security,
        username: username.to_owned(),
        auth: Auth::Password(SecretSource::File(secret_file(
            dovecot,
            &format!("{username}-password"),
            password,
        ))),
        ca_file: None,
        folders: vec!["INBOX".to_owned()],
        acknowledge: Acknowledge::Seen,
        quarantine_folder: "Quarantine".to_owned(),
        batch_size: 100,
        max_message_bytes: 1024 * 1024,
        idle_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        stale_after: Duration::from_secs(3600),
        start: Start::Now,
    }
}

fn plain_account(dovecot: &Dovecot) -> ImapAccount {
    account_with(dovecot, Security::Plain, SUPPORT_USER, SUPPORT_PASSWORD)
}

/// A small message with CRLF line ends (IMAP serves CRLF, so bytes compare).
fn message(number: usize) -> Vec<u8> {
    format!(
        "From: customer{number}@example.com\r\n\
         To: support@example.com\r\n\
         Subject: Ticket number {number}\r\n\
         Message-ID: <test-{number}@example.com>\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
         \r\n\
         Our VM number {number} does not start.\r\n"
    )
    .into_bytes()
}

fn uids(messages: &[FetchedMessage]) -> Vec<u32> {
    messages.iter().map(|message| message.uid).collect()
}

#[tokio::test]
async fn plain_login_and_select() {
    let dovecot = Dovecot::start();
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    let capabilities = session.capabilities();
    assert!(capabilities.idle && capabilities.move_command && capabilities.uidplus);
    let folder = session.select("INBOX").await.expect("select INBOX");
    assert_eq!(folder.folder, "INBOX");
    assert!(folder.uidvalidity > 0);
    assert_eq!((folder.uidnext, folder.exists), (1, 0));
    assert!(folder.has_idle && folder.has_move);
    let missing = session.select("NoSuchFolder").await.unwrap_err();
    assert!(
        matches!(missing, IntakeError::NoSuchFolder { .. }),
        "{missing:?}"
    );
    // A failed SELECT leaves the session usable.
    session.select("INBOX").await.expect("select INBOX again");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn wrong_password_is_refused_quickly() {
    let dovecot = Dovecot::start();
    let account = account_with(&dovecot, Security::Plain, SUPPORT_USER, "not-the-password");
    let started = Instant::now();
    let error = connect(&account).await.unwrap_err();
    assert!(
        matches!(&error, IntakeError::AuthenticationRefused { username, .. } if username == SUPPORT_USER),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{error:?} {error}").contains("not-the-password"));
    // The other user's login is unaffected.
    let other = account_with(&dovecot, Security::Plain, OTHER_USER, OTHER_PASSWORD);
    connect(&other).await.expect("other user logs in");
}

#[tokio::test]
async fn missing_credential_file_is_a_credential_error() {
    let dovecot = Dovecot::start();
    let mut account = plain_account(&dovecot);
    account.auth = Auth::Password(SecretSource::File(dovecot.directory().join("absent")));
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Credential { .. }), "{error:?}");
}

#[tokio::test]
async fn closed_port_is_a_network_error() {
    let dovecot = Dovecot::start();
    let mut account = plain_account(&dovecot);
    account.port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let started = Instant::now();
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Network { .. }), "{error:?}");
    assert!(started.elapsed() < account.connect_timeout);
}

#[tokio::test]
async fn unreachable_host_is_a_network_error_within_the_timeout() {
    let dovecot = Dovecot::start();
    let mut account = account_with(&dovecot, Security::Tls, SUPPORT_USER, SUPPORT_PASSWORD);
    // TEST-NET-1 (RFC 5737): never routed; either unreachable at once or silent.
    account.host = "192.0.2.1".to_owned();
    account.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Network { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_server_times_out_at_the_greeting() {
    let dovecot = Dovecot::start();
    // Accepts TCP (the kernel's backlog does) and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut account = plain_account(&dovecot);
    account.port = listener.local_addr().expect("address").port();
    account.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}

#[tokio::test]
async fn tls_needs_the_test_ca_and_works_with_it() {
    let dovecot = Dovecot::start();
    let mut account = account_with(&dovecot, Security::Tls, SUPPORT_USER, SUPPORT_PASSWORD);
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Tls { .. }), "{error:?}");
    let chain = format!("{:?}", std::error::Error::source(&error));
    assert!(chain.contains("UnknownIssuer"), "{chain}");

    account.ca_file = Some(dovecot.ca_pem_path());
    let mut session = connect(&account).await.expect("TLS with the CA");
    session.select("INBOX").await.expect("select over TLS");
    session.logout().await.expect("logout");

    // The certificate names localhost too.
    account.host = "localhost".to_owned();
    connect(&account).await.expect("TLS to localhost");

    // Plain IMAP on the TLS port is a TLS failure, not a hang.
    let mut wrong_port = account.clone();
    wrong_port.port = dovecot.plain_port();
    let error = connect(&wrong_port).await.unwrap_err();
    assert!(matches!(error, IntakeError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn starttls_upgrades_the_plain_port() {
    let dovecot = Dovecot::start();
    let mut account = account_with(&dovecot, Security::Starttls, SUPPORT_USER, SUPPORT_PASSWORD);
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Tls { .. }), "{error:?}");
    account.ca_file = Some(dovecot.ca_pem_path());
    let mut session = connect(&account).await.expect("STARTTLS with the CA");
    session.select("INBOX").await.expect("select");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn fetch_after_returns_new_messages_by_uid_with_exact_bytes() {
    let dovecot = Dovecot::start();
    for number in 1..=5 {
        dovecot.deliver(SUPPORT_USER, &message(number));
    }
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    let folder = session.select("INBOX").await.expect("select");
    assert_eq!((folder.exists, folder.uidnext), (5, 6));

    let first = session.fetch_after(0, 3).await.expect("first batch");
    assert_eq!(uids(&first), [1, 2, 3]);
    let second = session.fetch_after(3, 3).await.expect("second batch");
    assert_eq!(uids(&second), [4, 5]);
    assert!(
        session
            .fetch_after(5, 3)
            .await
            .expect("nothing new")
            .is_empty()
    );

    // Which message got which UID is Dovecot's business; the bytes are ours.
    let mut fetched: Vec<Vec<u8>> = first
        .iter()
        .chain(&second)
        .map(|fetched| fetched.raw.clone().expect("whole message"))
        .collect();
    fetched.sort();
    let mut expected: Vec<Vec<u8>> = (1..=5).map(message).collect();
    expected.sort();
    assert_eq!(fetched, expected);
    for fetched in first.iter().chain(&second) {
        assert_eq!(
            fetched.size as usize,
            fetched.raw.as_ref().map_or(0, Vec::len)
        );
        assert!(fetched.internal_date.is_some());
        assert!(fetched.header.is_none());
    }
    // Fetching never marks anything \Seen.
    for (uid, flags) in dovecot.flags(SUPPORT_USER, "INBOX") {
        assert!(!flags.contains("\\Seen"), "uid {uid}: {flags}");
    }

    // A message that arrives later comes after the checkpoint.
    dovecot.deliver(SUPPORT_USER, &message(6));
    let third = session.fetch_after(5, 10).await.expect("later mail");
    assert_eq!(uids(&third), [6]);
    assert_eq!(third[0].raw.as_deref(), Some(&message(6)[..]));
}

#[tokio::test]
async fn oversized_message_comes_as_its_header_only() {
    let dovecot = Dovecot::start();
    let header = b"From: big@example.com\r\nSubject: A large attachment\r\nMessage-ID: <big@example.com>\r\n\r\n";
    let mut large = header.to_vec();
    large.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\r\n".as_slice(), 200).flatten(),
    );
    dovecot.deliver(SUPPORT_USER, &message(1));
    dovecot.deliver(SUPPORT_USER, &large);
    dovecot.deliver(SUPPORT_USER, &message(3));

    let mut account = plain_account(&dovecot);
    account.max_message_bytes = 1000;
    let mut session = connect(&account).await.expect("connect");
    session.select("INBOX").await.expect("select");
    let fetched = session.fetch_after(0, 10).await.expect("fetch");
    assert_eq!(uids(&fetched), [1, 2, 3]);
    let oversized: Vec<&FetchedMessage> = fetched.iter().filter(|m| m.is_oversized()).collect();
    assert_eq!(oversized.len(), 1);
    assert_eq!(oversized[0].size as usize, large.len());
    assert_eq!(oversized[0].header.as_deref(), Some(&header[..]));
    assert!(oversized[0].raw.is_none());
    assert_eq!(
        fetched.iter().filter(|m| m.raw.is_some()).count(),
        2,
        "the small ones come whole"
    );
}

#[tokio::test]
async fn acknowledge_seen_flags_only_the_given_uids() {
    let dovecot = Dovecot::start();
    for number in 1..=3 {
        dovecot.deliver(SUPPORT_USER, &message(number));
    }
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    session.select("INBOX").await.expect("select");
    session.fetch_after(0, 10).await.expect("fetch");
    session
        .acknowledge(&[1, 3], &Acknowledge::Seen)
        .await
        .expect("acknowledge");
    let flags = dovecot.flags(SUPPORT_USER, "INBOX");
    let seen: Vec<u32> = flags
        .iter()
        .filter(|(_, flags)| flags.contains("\\Seen"))
        .map(|(uid, _)| *uid)
        .collect();
    assert_eq!(seen, [1, 3], "{flags:?}");
    session
        .acknowledge(&[2], &Acknowledge::LeaveUntouched)
        .await
        .expect("leave untouched");
    assert_eq!(dovecot.flags(SUPPORT_USER, "INBOX"), flags);
}

#[tokio::test]
async fn acknowledge_move_creates_processed_and_quarantine_on_demand() {
    let dovecot = Dovecot::start();
    for number in 1..=4 {
        dovecot.deliver(SUPPORT_USER, &message(number));
    }
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    session.select("INBOX").await.expect("select");
    assert!(!dovecot.folder_exists(SUPPORT_USER, "Processed"));
    session
        .acknowledge(&[1, 2], &Acknowledge::MoveTo("Processed".to_owned()))
        .await
        .expect("move");
    session.quarantine(&[4]).await.expect("quarantine");
    // Again, to a folder that now exists.
    session
        .acknowledge(&[3], &Acknowledge::MoveTo("Processed".to_owned()))
        .await
        .expect("move again");
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages"),
        3
    );
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Quarantine", "messages"),
        1
    );
    assert_eq!(dovecot.mailbox_status(SUPPORT_USER, "INBOX", "messages"), 0);
    // The checkpoint logic still works after moves: nothing new above 4.
    assert!(session.fetch_after(4, 10).await.expect("fetch").is_empty());
}

#[tokio::test]
async fn idle_wait_wakes_on_new_mail() {
    let dovecot = Dovecot::start();
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    session.select("INBOX").await.expect("select");
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(
        session.idle_wait(Duration::from_secs(30), std::future::pending()),
        async {
            // Delivered while IDLE starts or runs: either way it is announced.
            tokio::task::yield_now().await;
            dovecot.deliver(SUPPORT_USER, &message(1));
        }
    );
    assert_eq!(outcome.expect("idle"), IdleOutcome::NewMail);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The session is usable again after IDLE.
    let fetched = session.fetch_after(0, 10).await.expect("fetch");
    assert_eq!(uids(&fetched), [1]);

    // Mail that arrived while we were not idling is reported at once.
    dovecot.deliver(SUPPORT_USER, &message(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = session
            .idle_wait(Duration::from_secs(2), std::future::pending())
            .await
            .expect("idle");
        if outcome == IdleOutcome::NewMail {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no NewMail for the second message"
        );
    }
    assert_eq!(uids(&session.fetch_after(1, 10).await.expect("fetch")), [2]);
}

#[tokio::test]
async fn idle_wait_times_out_and_cancels() {
    let dovecot = Dovecot::start();
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    session.select("INBOX").await.expect("select");
    let started = Instant::now();
    let outcome = session
        .idle_wait(Duration::from_millis(700), std::future::pending())
        .await
        .expect("idle");
    assert_eq!(outcome, IdleOutcome::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(started.elapsed() < Duration::from_secs(5));

    let started = Instant::now();
    let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
    let (outcome, ()) = tokio::join!(
        session.idle_wait(Duration::from_secs(60), async {
            let _ = receiver.await;
        }),
        async {
            tokio::task::yield_now().await;
            let _ = sender.send(());
        }
    );
    assert_eq!(outcome.expect("idle"), IdleOutcome::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
    session.select("INBOX").await.expect("usable after cancel");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn recreated_folder_has_a_new_uidvalidity() {
    let dovecot = Dovecot::start();
    for number in 1..=2 {
        dovecot.deliver_to(SUPPORT_USER, "Support", &message(number));
    }
    dovecot.deliver(SUPPORT_USER, &message(3));
    let account = plain_account(&dovecot);
    let mut session = connect(&account).await.expect("connect");
    let before = session.select("Support").await.expect("select");
    let inbox_before = session.select("INBOX").await.expect("select INBOX");
    session.logout().await.expect("logout");

    dovecot.recreate_folder(SUPPORT_USER, "Support");
    dovecot.recreate_folder(SUPPORT_USER, "INBOX");

    let mut session = connect(&account).await.expect("reconnect");
    let after = session.select("Support").await.expect("select again");
    assert_ne!(after.uidvalidity, before.uidvalidity);
    let refetched = session.fetch_after(0, 10).await.expect("re-scan");
    assert_eq!(refetched.len(), 2, "the mail is still there");
    let inbox_after = session.select("INBOX").await.expect("select INBOX again");
    assert_ne!(inbox_after.uidvalidity, inbox_before.uidvalidity);
    let refetched = session.fetch_after(0, 10).await.expect("re-scan INBOX");
    assert_eq!(refetched.len(), 1);
    assert_eq!(refetched[0].raw.as_deref(), Some(&message(3)[..]));
}

#[tokio::test]
async fn start_now_or_since_a_date() {
    let dovecot = Dovecot::start();
    let ten_days_ago = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    dovecot.deliver_received_at(SUPPORT_USER, &message(1), ten_days_ago);
    dovecot.deliver(SUPPORT_USER, &message(2));
    dovecot.deliver(SUPPORT_USER, &message(3));
    let mut session = connect(&plain_account(&dovecot)).await.expect("connect");
    let folder = session.select("INBOX").await.expect("select");
    let old_uid = {
        let all = session.fetch_after(0, 10).await.expect("fetch");
        all.iter()
            .find(|fetched| fetched.raw.as_deref() == Some(&message(1)[..]))
            .map(|fetched| fetched.uid)
            .expect("the old message")
    };
    let today = chrono::Utc::now().date_naive();
    let three_days_ago = today - chrono::Days::new(3);
    let recent = session.uids_since(three_days_ago).await.expect("search");
    assert_eq!(recent.len(), 2);
    assert!(!recent.contains(&old_uid));

    assert_eq!(
        session
            .start_after_uid(Start::Now, &folder)
            .await
            .expect("now"),
        folder.uidnext - 1
    );
    let tomorrow = today + chrono::Days::new(1);
    assert_eq!(
        session
            .start_after_uid(Start::Since(tomorrow), &folder)
            .await
            .expect("since tomorrow"),
        folder.uidnext - 1
    );
    let twenty_days_ago = today - chrono::Days::new(20);
    assert_eq!(
        session
            .start_after_uid(Start::Since(twenty_days_ago), &folder)
            .await
            .expect("since long ago"),
        0
    );
}

#[tokio::test]
async fn xoauth2_logs_in_through_the_oauth2_passdb() {
    let dovecot = Dovecot::start();
    let token = dovecot.issue_oauth2_token(SUPPORT_USER);
    let token_file = secret_file(&dovecot, "token", &token);
    let mut account = plain_account(&dovecot);
    account.auth = Auth::Xoauth2(SecretSource::File(token_file.clone()));
    let mut session = connect(&account).await.expect("XOAUTH2 login");
    session.select("INBOX").await.expect("select");
    session.logout().await.expect("logout");
    assert!(dovecot.introspection_requests() >= 1);
    // Dovecot writes its log line asynchronously: wait for it, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dovecot.log().contains("method=XOAUTH2") {
        assert!(
            Instant::now() < deadline,
            "no XOAUTH2 login in the Dovecot log:\n{}",
            dovecot.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A revoked token is refused, not retried forever or hung on.
    dovecot.revoke_oauth2_token(&token);
    let error = connect(&account).await.unwrap_err();
    assert!(
        matches!(error, IntakeError::AuthenticationRefused { .. }),
        "{error:?}"
    );
    assert!(!format!("{error:?} {error}").contains(&token));

    // A refreshed token written to the file is used at the next connect.
    let refreshed = dovecot.issue_oauth2_token(SUPPORT_USER);
    std::fs::write(&token_file, &refreshed).expect("rotate token");
    connect(&account)
        .await
        .expect("login with the refreshed token");

    // A token for another user does not open this mailbox.
    let others = dovecot.issue_oauth2_token(OTHER_USER);
    std::fs::write(&token_file, &others).expect("write other token");
    let error = connect(&account).await.unwrap_err();
    assert!(
        matches!(error, IntakeError::AuthenticationRefused { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn dovecot_killed_breaks_the_session_and_restart_keeps_the_mail() {
    let mut dovecot = Dovecot::start();
    dovecot.deliver(SUPPORT_USER, &message(1));
    let account = plain_account(&dovecot);
    let mut session = connect(&account).await.expect("connect");
    let before = session.select("INBOX").await.expect("select");
    dovecot.kill();
    let error = session.fetch_after(0, 10).await.unwrap_err();
    assert!(matches!(error, IntakeError::Network { .. }), "{error:?}");
    assert!(matches!(
        session.fetch_after(0, 10).await.unwrap_err(),
        IntakeError::SessionClosed
    ));
    let error = connect(&account).await.unwrap_err();
    assert!(matches!(error, IntakeError::Network { .. }), "{error:?}");

    dovecot.start_again();
    let mut session = connect(&account).await.expect("reconnect");
    let after = session.select("INBOX").await.expect("select");
    assert_eq!(after.uidvalidity, before.uidvalidity);
    assert_eq!(uids(&session.fetch_after(0, 10).await.expect("fetch")), [1]);
    dovecot.restart();
    let mut session = connect(&account).await.expect("connect after restart");
    session.select("INBOX").await.expect("select");
}

#[tokio::test]
async fn without_idle_and_move_it_polls_and_copies() {
    let dovecot = Dovecot::start_without_capabilities(&["IDLE", "MOVE"]);
    for number in 1..=3 {
        dovecot.deliver(SUPPORT_USER, &message(number));
    }
    let mut account = plain_account(&dovecot);
    account.poll_interval = Duration::from_millis(300);
    let mut session = connect(&account).await.expect("connect");
    let capabilities = session.capabilities();
    assert!(!capabilities.idle && !capabilities.move_command && capabilities.uidplus);
    let folder = session.select("INBOX").await.expect("select");
    assert!(!folder.has_idle && !folder.has_move);
    assert_eq!(
        uids(&session.fetch_after(0, 10).await.expect("fetch")),
        [1, 2, 3]
    );

    // COPY + \Deleted + UID EXPUNGE, touching only the given UIDs.
    session
        .acknowledge(&[1, 3], &Acknowledge::MoveTo("Processed".to_owned()))
        .await
        .expect("move by copy");
    assert_eq!(
        dovecot.mailbox_status(SUPPORT_USER, "Processed", "messages"),
        2
    );
    assert_eq!(dovecot.flags(SUPPORT_USER, "INBOX").len(), 1);
    assert_eq!(dovecot.flags(SUPPORT_USER, "INBOX")[0].0, 2);

    // No news: one poll interval, then Timeout.
    let started = Instant::now();
    let outcome = session
        .idle_wait(Duration::from_secs(30), std::future::pending())
        .await
        .expect("poll");
    assert_eq!(outcome, IdleOutcome::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));

    // New mail is found by the poll's NOOP, within a few intervals.
    dovecot.deliver(SUPPORT_USER, &message(4));
    let deadline = Instant::now() + Duration::from_secs(10);
    while session
        .idle_wait(Duration::from_secs(30), std::future::pending())
        .await
        .expect("poll")
        != IdleOutcome::NewMail
    {
        assert!(Instant::now() < deadline, "the poll never saw the new mail");
    }
    assert_eq!(uids(&session.fetch_after(3, 10).await.expect("fetch")), [4]);
}

#[tokio::test]
async fn oauth2_refreshes_the_access_token_and_saves_the_rotated_refresh_token() {
    use std::os::unix::fs::PermissionsExt;
    use supportd_intake::{OAuth2Settings, TokenRefresher};
    let dovecot = Dovecot::start();
    let first_refresh = dovecot.issue_oauth2_refresh_token(SUPPORT_USER);
    let refresh_file = secret_file(&dovecot, "refresh-token", &first_refresh);
    let settings = OAuth2Settings {
        token_endpoint: dovecot.oauth2_token_endpoint(),
        client_id: "supportd-test".to_owned(),
        client_secret: None,
        refresh_token_file: refresh_file.clone(),
        scope: Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access".to_owned()),
        ca_file: None,
    };
    let mut account = plain_account(&dovecot);
    account.auth = Auth::OAuth2(TokenRefresher::new(settings.clone()));

    let before = chrono::Utc::now().timestamp();
    let mut session = connect(&account)
        .await
        .expect("XOAUTH2 login with a refreshed token");
    session.select("INBOX").await.expect("select");
    let expires_at = session.token_expires_at().expect("the expiry is known");
    assert!(
        (before + 3500..=before + 3700).contains(&expires_at),
        "{expires_at}"
    );
    session.logout().await.expect("logout");
    assert_eq!(dovecot.oauth2_token_requests(), 1);

    // The provider rotated the refresh token: the new one is in the file,
    // readable by the owner only; the old one is spent.
    let saved = std::fs::read_to_string(&refresh_file).unwrap();
    let saved = saved.trim();
    assert_ne!(saved, first_refresh, "the rotated token was saved");
    assert!(saved.starts_with("refresh-"), "{saved}");
    let mode = std::fs::metadata(&refresh_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // A second login within the token's life asks the endpoint nothing.
    connect(&account)
        .await
        .expect("second login")
        .logout()
        .await
        .unwrap();
    assert_eq!(
        dovecot.oauth2_token_requests(),
        1,
        "the access token is reused"
    );

    // After a restart (a new refresher), the saved token works.
    account.auth = Auth::OAuth2(TokenRefresher::new(settings.clone()));
    connect(&account)
        .await
        .expect("login after a restart")
        .logout()
        .await
        .unwrap();
    assert_eq!(dovecot.oauth2_token_requests(), 2);

    // A revoked refresh token: refused, named as such, no secret in the error.
    std::fs::write(&refresh_file, "revoked-token\n").unwrap();
    account.auth = Auth::OAuth2(TokenRefresher::new(settings));
    let error = connect(&account).await.unwrap_err();
    assert!(
        matches!(error, IntakeError::AuthenticationRefused { .. }),
        "{error:?}"
    );
    assert!(format!("{error}").contains("invalid_grant"), "{error}");
    assert!(!format!("{error:?} {error}").contains("revoked-token"));
}
