//! Hostile clients of the web pages and the API, against the real `supportd
//! serve`: planted and replayed session ids, off-site redirects after login,
//! path tricks on attachment downloads, oversized bodies, slow clients
//! (slowloris headers, bodies that never finish), and SQL or FTS5 syntax in
//! every text a client sends. Each test also checks the server still answers
//! ordinary requests afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use supportd_tests::servers::PostgresDatabase;
use supportd_tests::{TestEnv, fixtures};

use crate::web::{PASSWORD, Reply, Serve, form_encode, get, log_in, request, seed_desk};

/// A session cookie pair no server ever issued (the attacker's choice).
const PLANTED: &str =
    "supportd_session=0000000000000000000000000000000000000000000000000000000000000000";

fn json_of(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {} {}", reply.status, reply.body))
}

/// Logs in as `ana` carrying `extra_cookie` (a planted or an older session)
/// beside the login form's cookie; returns the reply of the POST.
fn log_in_carrying(
    address: &str,
    extra_cookie: &str,
    query: &str,
    extra_fields: &[(&str, &str)],
) -> Reply {
    let page = get(
        address,
        &format!("/login{query}"),
        &[("Cookie", extra_cookie)],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let login_cookie = page.cookie("supportd_login").expect("a login CSRF cookie");
    let csrf = page.csrf_field();
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("name", "ana"),
        ("password", PASSWORD),
    ];
    fields.extend_from_slice(extra_fields);
    let cookies = format!("{login_cookie}; {extra_cookie}");
    request(
        address,
        "POST",
        &format!("/login{query}"),
        &[("Cookie", &cookies)],
        &form_encode(&fields),
    )
}

/// The Location of a redirect is a path on this site: `/…`, but not `//…`
/// or `/\…` (which browsers read as another host).
fn assert_local(location: Option<&str>, what: &str) {
    let location = location.unwrap_or_else(|| panic!("{what}: no Location"));
    assert!(
        location.starts_with('/')
            && !location.starts_with("//")
            && !location.starts_with("/\\")
            && !location.contains("evil"),
        "{what}: Location {location:?} leaves the site"
    );
}

/// The desk of the web tests ([`seed_desk`]) plus a mail with an attachment,
/// and an API token that may act (returned).
fn prepared(env: &TestEnv) -> String {
    env.ok(&["migrate"]);
    seed_desk(env);
    env.ok(&[
        "ingest",
        fixtures()
            .join("web/invoice-attachment.eml")
            .to_str()
            .unwrap(),
    ]);
    env.ok(&["token", "create", "desk", "--role", "staff"])
        .trim()
        .to_owned()
}

#[test]
fn session_ids_are_never_fixed_and_logout_ends_them_at_the_server() {
    let env = TestEnv::new();
    let token = prepared(&env);
    let serve = Serve::start(&env);
    let address = serve.address.clone();

    // A cookie the server never issued opens nothing.
    let planted = get(&address, "/", &[("Cookie", PLANTED)]);
    assert_eq!(planted.status, 303);
    assert_eq!(planted.header("location"), Some("/login"));

    // Logging in while carrying it: a fresh id, and the planted one still opens nothing.
    let reply = log_in_carrying(&address, PLANTED, "", &[]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let first = reply.cookie("supportd_session").expect("a session cookie");
    assert_ne!(first, PLANTED);
    assert_eq!(first.len(), "supportd_session=".len() + 64, "{first}");
    assert_eq!(get(&address, "/", &[("Cookie", &first)]).status, 200);
    assert_eq!(get(&address, "/", &[("Cookie", PLANTED)]).status, 303);
    // The login form's own (pre-login) cookie is cleared, and is no session.
    let cleared = reply
        .headers
        .iter()
        .find(|(key, value)| {
            key.eq_ignore_ascii_case("set-cookie") && value.starts_with("supportd_login=")
        })
        .map(|(_, value)| value.clone())
        .expect("the login cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let login_page = get(&address, "/login", &[]);
    let pre_login = login_page.cookie("supportd_login").unwrap();
    let pre_login_value = pre_login.trim_start_matches("supportd_login=");
    let as_session = format!("supportd_session={pre_login_value}");
    assert_eq!(get(&address, "/", &[("Cookie", &as_session)]).status, 303);

    // Logging in again with a live session: another fresh id, and the old
    // one is ended at the server (not only forgotten by the browser).
    let again = log_in_carrying(&address, &first, "", &[]);
    assert_eq!(again.status, 303, "{}", again.body);
    let second = again.cookie("supportd_session").unwrap();
    assert_ne!(second, first);
    assert_eq!(get(&address, "/", &[("Cookie", &first)]).status, 303);
    assert_eq!(get(&address, "/", &[("Cookie", &second)]).status, 200);
    // Two browsers logging in get two ids.
    let other_browser = log_in(&address);
    assert_ne!(other_browser, second);

    // Logout ends the id at the server: replaying the cookie (GET, or a POST
    // with the CSRF token it had) gets the login redirect.
    let overview = get(&address, "/", &[("Cookie", &second)]);
    let csrf = overview.csrf_field();
    let logout = request(
        &address,
        "POST",
        "/logout",
        &[("Cookie", &second)],
        &form_encode(&[("csrf_token", &csrf)]),
    );
    assert_eq!(logout.status, 303);
    for path in ["/", "/tickets/CS-1001", "/queues/billing"] {
        let replay = get(&address, path, &[("Cookie", &second)]);
        assert_eq!(replay.status, 303, "{path}");
        assert_eq!(replay.header("location"), Some("/login"), "{path}");
    }
    let replayed_post = request(
        &address,
        "POST",
        "/tickets/CS-1001/note",
        &[("Cookie", &second)],
        &form_encode(&[("csrf_token", &csrf), ("body", "after logout")]),
    );
    assert_eq!(replayed_post.status, 303);
    assert_eq!(replayed_post.header("location"), Some("/login"));
    assert_eq!(
        get(&address, "/", &[("Cookie", &other_browser)]).status,
        200
    );
    let bearer = format!("Bearer {token}");
    let detail = get(
        &address,
        "/api/tickets/CS-1001",
        &[("Authorization", &bearer)],
    );
    assert!(!detail.body.contains("after logout"), "{}", detail.body);
    serve.stop();
}

#[test]
fn login_never_redirects_off_site() {
    let env = TestEnv::new();
    prepared(&env);
    let serve = Serve::start(&env);
    let address = serve.address.clone();
    let targets = [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "/%09/evil.example",
        "\\\\evil.example",
        "https:%2F%2Fevil.example",
    ];
    for target in targets {
        // Sent raw in the query (already encoded where it has `%`), and once
        // more percent-encoded, as a form field too.
        let encoded = form_encode(&[("next", target)]);
        for query in [
            format!("?next={target}"),
            format!("?{encoded}"),
            format!("?return_to={target}&redirect={target}"),
        ] {
            // A raw backslash is no valid request target: hyper answers 400.
            let query = query.replace(' ', "%20").replace('\\', "%5C");
            let page = get(&address, &format!("/login{query}"), &[]);
            assert_eq!(page.status, 200, "{query}");
            assert!(
                !page.body.contains("evil"),
                "{query} echoed:\n{}",
                page.body
            );
            let reply = log_in_carrying(&address, "x=y", &query, &[("next", target)]);
            assert_eq!(reply.status, 303, "{query}: {}", reply.body);
            assert_local(reply.header("location"), &query);
            assert_eq!(reply.header("location"), Some("/"), "{query}");
        }
        // The redirect to the login page never carries the target either.
        let stranger = get(
            &address,
            &format!("/queues/billing?next={}", target.replace('\\', "%5C")),
            &[],
        );
        assert_eq!(stranger.status, 303);
        assert_eq!(stranger.header("location"), Some("/login"));
    }
    // Paths that look like another host are no route here, never a redirect.
    for path in ["//evil.example/", "//evil.example/login", "/\\evil.example"] {
        let reply = get(&address, path, &[]);
        if (300..400).contains(&reply.status) {
            assert_local(reply.header("location"), path);
        }
        assert!(reply.status < 500, "{path}: {}", reply.status);
    }
    serve.stop();
}

/// A mail with an attachment only its own ticket may hand out.
const SECRET_MAIL: &str = "From: Ines Moreau <ines@contoso-logistics.example>\r\n\
To: CloudSupport@centurylink.com\r\n\
Subject: Secret ledger for the audit\r\n\
Date: Wed, 25 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <secret-ledger-1@contoso-logistics.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The ledger is attached.\r\n\
--b2\r\n\
Content-Type: text/plain; name=\"ledger.txt\"\r\n\
Content-Disposition: attachment; filename=\"ledger.txt\"\r\n\
\r\n\
SECRET-LEDGER-BYTES-7f3a\r\n\
--b2--\r\n";

#[test]
fn attachment_paths_never_reach_another_ticket_or_a_file() {
    let env = TestEnv::new();
    let token = prepared(&env);
    let secret = env.path().join("secret.eml");
    std::fs::write(&secret, SECRET_MAIL).unwrap();
    env.ok(&["ingest", secret.to_str().unwrap()]);
    let serve = Serve::start(&env);
    let address = serve.address.clone();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let find = |q: &str| -> (String, i64) {
        let found = json_of(&get(&address, &format!("/api/search?q={q}"), &auth));
        let reference = found["tickets"][0]["ticket_ref"]
            .as_str()
            .unwrap_or_else(|| panic!("no ticket for {q}: {found}"))
            .to_owned();
        let detail = json_of(&get(&address, &format!("/api/tickets/{reference}"), &auth));
        let message = detail["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|message| !message["attachments"].as_array().unwrap().is_empty())
            .unwrap_or_else(|| panic!("no attachment on {reference}: {detail}"));
        (reference, message["id"].as_i64().unwrap())
    };
    let (invoice, invoice_message) = find("invoice%20copy");
    let (ledger, ledger_message) = find("secret%20ledger");
    assert_ne!(invoice, ledger);
    let session = log_in(&address);
    let cookie = [("Cookie", session.as_str())];

    // The real downloads work (so the refusals below mean something).
    let own = get(
        &address,
        &format!("/tickets/{ledger}/attachments/{ledger_message}/0"),
        &cookie,
    );
    assert_eq!(own.status, 200);
    assert!(
        own.body.contains("SECRET-LEDGER-BYTES-7f3a"),
        "{}",
        own.body
    );
    let own = get(
        &address,
        &format!("/api/tickets/{invoice}/attachments/{invoice_message}/0"),
        &auth,
    );
    assert_eq!(own.status, 200);

    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let passwd_line = passwd.lines().next().unwrap_or("root:x:0:0");
    let hostile = [
        // Another ticket's message under this ticket, and the other way round.
        format!("{invoice}/attachments/{ledger_message}/0"),
        format!("{ledger}/attachments/{invoice_message}/0"),
        // Positions past the end, huge, negative, not numbers.
        format!("{invoice}/attachments/{invoice_message}/1"),
        format!("{invoice}/attachments/{invoice_message}/18446744073709551615"),
        format!("{invoice}/attachments/{invoice_message}/99999999999999999999999999"),
        format!("{invoice}/attachments/{invoice_message}/-1"),
        format!("{invoice}/attachments/-{ledger_message}/0"),
        format!("{invoice}/attachments/-1/0"),
        format!("{invoice}/attachments/9223372036854775807/0"),
        format!("{invoice}/attachments/9223372036854775808/0"),
        format!("{invoice}/attachments/0/0"),
        // Traversal, plain and encoded, and absolute paths.
        format!("{invoice}/attachments/../{ledger_message}/0"),
        format!(
            "{invoice}/attachments/{invoice_message}/../../../{ledger}/attachments/{ledger_message}/0"
        ),
        format!("{invoice}/attachments/%2e%2e%2f{ledger_message}/0"),
        format!("{invoice}/attachments/{invoice_message}/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        format!("{invoice}/attachments/{invoice_message}/..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("{invoice}/attachments//etc/passwd"),
        format!("{invoice}/attachments/%2Fetc%2Fpasswd/0"),
        format!("{invoice}/attachments/{invoice_message}/%2Fetc%2Fpasswd"),
        format!("..%2F{ledger}/attachments/{ledger_message}/0"),
        format!("{invoice}%2F..%2F{ledger}/attachments/{ledger_message}/0"),
        format!("{invoice}%00/attachments/{ledger_message}/0"),
        format!("CS-0/attachments/{ledger_message}/0"),
        format!("CS-99999999999999999999/attachments/{ledger_message}/0"),
        format!("{invoice}/attachments/{invoice_message}/0%20OR%201=1"),
        format!("{invoice}/attachments/{invoice_message}%3B/0"),
    ];
    for tail in &hostile {
        for (path, headers) in [
            (format!("/tickets/{tail}"), &cookie[..]),
            (format!("/api/tickets/{tail}"), &auth[..]),
        ] {
            let reply = get(&address, &path, headers);
            assert!(
                reply.status == 400 || reply.status == 404,
                "{path}: {} {}",
                reply.status,
                reply.body
            );
            assert!(
                !reply.body.contains("SECRET-LEDGER") && !reply.body.contains("Total: 42.00"),
                "{path} handed out attachment bytes"
            );
            assert!(
                !reply.body.contains(passwd_line) && !reply.body.contains("root:x:0"),
                "{path} handed out a file"
            );
            assert_ne!(
                reply.header("content-type"),
                Some("application/octet-stream"),
                "{path}"
            );
        }
    }
    assert_eq!(get(&address, "/healthz", &[]).status, 200);
    serve.stop();
}

/// Sends `head` (request line and headers, without the blank line's end)
/// and then reads the answer before sending any body: the server must
/// refuse on the declared `Content-Length` alone.
fn refused_on_length(address: &str, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"\r\n").unwrap();
    read_answer(&mut stream)
}

/// Reads until the server closes (an error after some bytes counts as the
/// end: a server that closes with unread input resets the connection).
fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => raw.extend_from_slice(&buffer[..read]),
            Err(error) if !raw.is_empty() => {
                eprintln!("read ended by {error} after the answer");
                break;
            }
            Err(error) => panic!("no answer: {error}"),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {text:?}"));
    (status, text)
}

#[test]
fn oversized_bodies_get_413_and_the_server_keeps_serving() {
    const LIMIT: usize = 1024 * 1024;
    let env = TestEnv::new();
    let token = prepared(&env);
    let serve = Serve::start(&env);
    let address = serve.address.clone();
    let session = log_in(&address);
    let overview = get(&address, "/", &[("Cookie", &session)]);
    let csrf = overview.csrf_field();
    let bearer = format!("Bearer {token}");
    let over = LIMIT + 1;

    // Declared too large: refused before a byte of the body is read.
    for (path, extra) in [
        ("/login", String::new()),
        ("/tickets/CS-1001/note", format!("Cookie: {session}\r\n")),
        ("/api/tickets", format!("Authorization: {bearer}\r\n")),
        (
            "/api/tickets/CS-1001/notes",
            format!("Authorization: {bearer}\r\n"),
        ),
    ] {
        let content_type = if path.starts_with("/api/") {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Content-Type: {content_type}\r\n\
             Content-Length: {over}\r\n"
        );
        let started = Instant::now();
        let (status, answer) = refused_on_length(&address, &head);
        assert_eq!(status, 413, "{path}: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} answered without waiting for the body"
        );
        assert!(
            answer.contains("larger than 1048576 bytes"),
            "{path}: {answer}"
        );
    }

    // Not declared (chunked), sent for real: refused once past the limit.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/tickets HTTP/1.1\r\nHost: {address}\r\nAuthorization: {bearer}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        for _ in 0..64 {
            let size = format!("{:x}\r\n", chunk.len());
            let framed = [size.as_bytes(), &chunk[..], &b"\r\n"[..]].concat();
            if writer.write_all(&framed).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = writer.write_all(b"0\r\n\r\n");
        sent
    });
    let (status, answer) = read_answer(&mut stream);
    let sent = sender.join().unwrap();
    assert_eq!(status, 413, "{answer}");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    eprintln!("chunked body refused after the client sent {sent} bytes");

    // Under the limit, a body reaches the handler (its own rules answer).
    let note = "n".repeat(100_000);
    let fits = request(
        &address,
        "POST",
        "/tickets/CS-1001/note",
        &[("Cookie", &session)],
        &form_encode(&[("csrf_token", &csrf), ("body", &note)]),
    );
    assert_eq!(fits.status, 303, "{}", fits.body);
    let too_long = format!("{{\"body\":\"{}\"}}", "n".repeat(900_000));
    let handled = request(
        &address,
        "POST",
        "/api/tickets/CS-1001/notes",
        &[("Authorization", &bearer)],
        &too_long,
    );
    assert_eq!(handled.status, 400, "{}", handled.body);
    assert!(handled.body.contains("longer than"), "{}", handled.body);

    // Still serving: health, a login, a page, the API.
    assert_eq!(get(&address, "/healthz", &[]).status, 200);
    let again = log_in(&address);
    assert_eq!(
        get(&address, "/tickets/CS-1001", &[("Cookie", &again)]).status,
        200
    );
    let metrics = get(&address, "/metrics", &[("Authorization", &bearer)]);
    assert!(metrics.body.contains("status=\"413\""), "{}", metrics.body);
    serve.stop();
}

/// One slow client: connects, waits at `ready` with the others, then sends
/// `bytes` one a second until the server closes the connection; returns how
/// long after connecting that was (`give_up` at most).
fn drip_until_closed(
    address: &str,
    bytes: &[u8],
    ready: &std::sync::Barrier,
    give_up: Duration,
) -> Duration {
    let mut stream = TcpStream::connect(address).expect("connect");
    let connected = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    ready.wait();
    let mut buffer = [0u8; 1024];
    for byte in bytes.iter().cycle() {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        // Waiting for an answer is also the pace: one byte a second.
        match stream.read(&mut buffer) {
            Ok(0) => break,
            // hyper sends nothing on a header timeout; anything else is not a close.
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        if connected.elapsed() >= give_up {
            break;
        }
    }
    connected.elapsed()
}

#[test]
fn slow_clients_are_disconnected_while_others_are_served() {
    const SLOW: usize = 50;
    const TIMEOUT_S: u64 = 5;
    let env = TestEnv::new();
    let token = prepared(&env);
    let serve = Serve::start_with(
        &env,
        &[("SUPPORTD_WEB__READ_TIMEOUT_SECONDS", &TIMEOUT_S.to_string())],
    );
    let address = serve.address.clone();
    let give_up = Duration::from_secs(TIMEOUT_S + 10);

    // 50 clients sending headers one byte a second (never the blank line).
    let started = Instant::now();
    let ready = std::sync::Arc::new(std::sync::Barrier::new(SLOW + 1));
    let slow: Vec<_> = (0..SLOW)
        .map(|index| {
            let address = address.clone();
            let ready = ready.clone();
            std::thread::spawn(move || {
                let head = format!("GET / HTTP/1.1\r\nHost: slow-{index}\r\nX-Padding: ");
                let mut bytes = head.into_bytes();
                bytes.extend(std::iter::repeat_n(b'a', 1000));
                drip_until_closed(&address, &bytes, &ready, give_up)
            })
        })
        .collect();
    ready.wait();
    let all_open = Instant::now();
    // An idle connection that sends nothing at all.
    let idle = {
        let address = address.clone();
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.set_read_timeout(Some(give_up)).unwrap();
            let opened = Instant::now();
            let mut buffer = [0u8; 64];
            let _ = stream.read(&mut buffer);
            opened.elapsed()
        })
    };
    // A body that never finishes: 10 of 1000 declared bytes.
    let unfinished = |path: &str, extra: &str| {
        let address = address.clone();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\n{extra}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nname=ana&p"
        );
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.set_read_timeout(Some(give_up)).unwrap();
            let opened = Instant::now();
            stream.write_all(head.as_bytes()).unwrap();
            let answer = read_answer(&mut stream);
            (opened.elapsed(), answer)
        })
    };
    let bearer = format!("Bearer {token}");
    let unfinished_login = unfinished("/login", "");
    let unfinished_api = unfinished("/api/tickets", &format!("Authorization: {bearer}\r\n"));

    // Meanwhile everyone else is served, promptly.
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let asked = Instant::now();
        assert_eq!(get(&address, "/healthz", &[]).status, 200);
        let session = log_in(&address);
        assert_eq!(
            get(&address, "/queues/billing", &[("Cookie", &session)]).status,
            200
        );
        assert_eq!(
            get(&address, "/api/queues", &[("Authorization", &bearer)]).status,
            200
        );
        slowest = slowest.max(asked.elapsed());
    }
    assert!(
        all_open.elapsed() < Duration::from_secs(TIMEOUT_S - 1),
        "the ordinary requests ran while the slow clients were connected"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "ordinary requests waited {slowest:?} behind the slow clients"
    );

    let mut disconnected: Vec<Duration> =
        slow.into_iter().map(|slow| slow.join().unwrap()).collect();
    disconnected.sort();
    let (first, last) = (disconnected[0], disconnected[SLOW - 1]);
    eprintln!(
        "{SLOW} slowloris clients disconnected after {first:?} to {last:?} \
         (read timeout {TIMEOUT_S} s); ordinary requests meanwhile at most {slowest:?}"
    );
    assert!(
        first >= Duration::from_millis(TIMEOUT_S * 1000 - 500),
        "closed by the timeout, not at once: {first:?}"
    );
    assert!(
        last < Duration::from_secs(TIMEOUT_S + 3),
        "every slow client is disconnected soon after the timeout: {last:?}"
    );
    let idle = idle.join().unwrap();
    assert!(
        idle < Duration::from_secs(TIMEOUT_S + 3),
        "an idle connection is closed too: {idle:?}"
    );
    for (what, handle) in [("login", unfinished_login), ("api", unfinished_api)] {
        let (elapsed, (status, answer)) = handle.join().unwrap();
        eprintln!("unfinished {what} body answered {status} after {elapsed:?}");
        assert_eq!(status, 408, "{what}: {answer}");
        assert!(
            elapsed >= Duration::from_millis(TIMEOUT_S * 1000 - 500)
                && elapsed < Duration::from_secs(TIMEOUT_S + 3),
            "{what}: {elapsed:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    assert_eq!(get(&address, "/healthz", &[]).status, 200);
    assert!(started.elapsed() < Duration::from_secs(60));
    serve.stop();
}

/// Text with quotes, SQL, LIKE wildcards and FTS5 or tsquery syntax.
const HOSTILE_TEXT: &[&str] = &[
    "'; DROP TABLE tickets; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "%",
    "_",
    "%@%",
    "_@_",
    "%' OR 1=1 --@x.example",
    "NEAR(",
    "NEAR(invoice charge, 2)",
    "\"unterminated",
    "*",
    "-",
    "invoice*",
    "-invoice",
    "invoice OR charged",
    "subject:invoice",
    "^invoice",
    "invoice AND NOT charged",
    "{subject}: invoice",
    "invoice:* & !charged",
    "a\\b",
    "');--",
    "1; SELECT pg_sleep(5)",
    "CS-1001' OR '1'='1",
    "0f8fad5b-d9cb-469f-a165-70867728950e' --",
    "𞤀 ͅ ² ǅ",
];

/// Every hostile text through search, filters, the API and logins: no 500,
/// nothing changed, and text sent as data comes back verbatim.
fn hostile_text_is_only_data(env: &TestEnv) {
    let token = prepared(env);
    let tickets_before = env.ticket_count();
    let serve = Serve::start(env);
    let address = serve.address.clone();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let session = log_in(&address);
    let cookie = [("Cookie", session.as_str())];
    let encode = |text: &str| {
        form_encode(&[("q", text)])
            .trim_start_matches("q=")
            .to_owned()
    };

    for &text in HOSTILE_TEXT {
        let q = encode(text);
        let page = get(&address, &format!("/search?q={q}"), &cookie);
        assert_eq!(page.status, 200, "search page {text:?}: {}", page.body);
        let api = get(&address, &format!("/api/search?q={q}"), &auth);
        assert!(
            api.status == 200 || api.status == 400,
            "API search {text:?}: {} {}",
            api.status,
            api.body
        );
        if api.status == 400 {
            assert!(
                json_of(&api)["error"]
                    .as_str()
                    .unwrap()
                    .contains("nothing to search for"),
                "{text:?}: {}",
                api.body
            );
        }
        // Wildcards are not wildcards: `%@%` finds no sender.
        if text.contains('@') {
            assert_eq!(
                json_of(&api)["tickets"].as_array().map(Vec::len),
                Some(0),
                "{text:?} matched as a pattern: {}",
                api.body
            );
        }
        for filter in ["status", "tier", "category", "order", "after"] {
            let reply = get(
                &address,
                &format!("/api/queues/billing/tickets?{filter}={q}"),
                &auth,
            );
            assert_eq!(reply.status, 400, "{filter}={text:?}: {}", reply.body);
            assert!(
                reply.body.contains(filter),
                "{filter}={text:?}: {}",
                reply.body
            );
            let page = get(&address, &format!("/queues/billing?{filter}={q}"), &cookie);
            assert_eq!(page.status, 400, "page {filter}={text:?}");
        }
        // A well-formed queue name (`-`) is an empty queue; anything else 404.
        let listing = get(&address, &format!("/api/queues/{q}/tickets"), &auth);
        match listing.status {
            200 => assert_eq!(
                json_of(&listing)["tickets"].as_array().map(Vec::len),
                Some(0),
                "{text:?}"
            ),
            status => assert_eq!(status, 404, "{text:?}: {}", listing.body),
        }
        let queue_page = get(&address, &format!("/queues/{q}"), &cookie);
        assert!(
            [200, 404].contains(&queue_page.status),
            "/queues/{q}: {}",
            queue_page.status
        );
        let ticket = get(&address, &format!("/api/tickets/{q}"), &auth);
        assert_eq!(ticket.status, 404, "{text:?}: {}", ticket.body);
        // As a staff name: refused by `staff add` with a message (the name,
        // or for a well-formed one the missing password), never a panic.
        let refused = env.fails(&["staff", "add", "--", text]);
        assert!(
            refused.contains("not a usable name") || refused.contains("password"),
            "{text:?}: {refused}"
        );
    }

    // As a login name: a refusal (401, or 429 once the address has failed
    // five times), never a 500, never a session.
    for &text in HOSTILE_TEXT.iter().take(8) {
        let page = get(&address, "/login", &[]);
        let login_cookie = page.cookie("supportd_login").unwrap();
        let reply = request(
            &address,
            "POST",
            "/login",
            &[("Cookie", &login_cookie)],
            &form_encode(&[
                ("csrf_token", &page.csrf_field()),
                ("name", text),
                ("password", "' OR '1'='1"),
            ]),
        );
        assert!(
            reply.status == 401 || reply.status == 429,
            "login as {text:?}: {} {}",
            reply.status,
            reply.body
        );
        assert!(reply.cookie("supportd_session").is_none());
    }

    // As ticket text through the API: stored and shown verbatim.
    let mut created = 0;
    for (index, &text) in HOSTILE_TEXT.iter().enumerate() {
        let body = serde_json::json!({
            "channel": "portal",
            "requester_email": format!("o'brien-{index}@contoso-logistics.example"),
            "requester_name": text,
            "subject": format!("Hostile {index} {text}"),
            "body": format!("{text}\n\nSecond line {text}"),
        });
        let reply = request(&address, "POST", "/api/tickets", &auth, &body.to_string());
        assert_eq!(reply.status, 201, "{text:?}: {}", reply.body);
        created += 1;
        let reference = json_of(&reply)["ticket"].as_str().unwrap().to_owned();
        let detail = json_of(&get(&address, &format!("/api/tickets/{reference}"), &auth));
        assert_eq!(
            detail["ticket"]["subject"],
            format!("Hostile {index} {text}"),
            "{detail}"
        );
        // A note with the text, read back.
        let note = request(
            &address,
            "POST",
            &format!("/api/tickets/{reference}/notes"),
            &auth,
            &serde_json::json!({ "body": text }).to_string(),
        );
        assert_eq!(note.status, 200, "{text:?}: {}", note.body);
    }
    let injected_address = serde_json::json!({
        "channel": "portal",
        "requester_email": "a@b.example' OR '1'='1",
        "subject": "s",
        "body": "b",
    });
    let refused = request(
        &address,
        "POST",
        "/api/tickets",
        &auth,
        &injected_address.to_string(),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("requester_email"), "{}", refused.body);
    // The first hostile subject is found by its words, and only it.
    let found = json_of(&get(
        &address,
        "/api/search?q=Hostile%200%20DROP%20TABLE",
        &auth,
    ));
    assert_eq!(found["tickets"].as_array().unwrap().len(), 1, "{found}");

    assert_eq!(get(&address, "/api/tickets/CS-1001", &auth).status, 200);
    let log = serve.stop();
    assert!(!log.contains("internal error"), "{log}");
    assert_eq!(
        env.ticket_count(),
        tickets_before + created,
        "no ticket lost or added beyond the API's"
    );
}

#[test]
fn hostile_text_is_only_data_on_sqlite() {
    hostile_text_is_only_data(&TestEnv::new());
}

#[test]
fn hostile_text_is_only_data_on_postgres() {
    let database = PostgresDatabase::create();
    hostile_text_is_only_data(&TestEnv::new().on_database(database.url()));
}
