//! The web server of `supportd serve`, through the real binary on a free port:
//! health and readiness, authentication on every route of the route table,
//! login and the staff pages on ingested fixtures, CSRF, HTML sanitising, the
//! JSON API with bearer tokens, and the metrics text.
//!
//! The HTTP client is a small HTTP/1.0 one over `TcpStream` (one request per
//! connection, no redirects followed, cookies handled by hand), so each test
//! sees exactly the status, headers and body the server sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use supportd_tests::{ServeProcess, TestEnv, fixtures};
use supportd_web::{Access, route_table};

pub(crate) const PASSWORD: &str = "a long enough password";

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `name=value` of a Set-Cookie header for cookie `name`.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, value)| value.split(';').next())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the first hidden `csrf_token` field of the page.
    pub(crate) fn csrf_field(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a csrf_token field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

pub(crate) fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let content_type = if body.starts_with('{') {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut stream = TcpStream::connect(address).expect("connect to the web server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.0\r\nHost: {address}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Type: {content_type}\r\n"));
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

pub(crate) fn get(address: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(address, "GET", path, headers, "")
}

pub(crate) fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| {
            let encode = |text: &str| {
                text.bytes()
                    .map(|byte| match byte {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (byte as char).to_string()
                        }
                        _ => format!("%{byte:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", encode(key), encode(value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A running `supportd serve` and the address its web server listens on.
pub(crate) struct Serve {
    pub(crate) process: ServeProcess,
    pub(crate) address: String,
}

impl Serve {
    pub(crate) fn start(env: &TestEnv) -> Serve {
        Serve::start_with(env, &[])
    }

    pub(crate) fn start_with(env: &TestEnv, variables: &[(&str, &str)]) -> Serve {
        let mut process = ServeProcess::start_with(env, variables);
        let started = Instant::now();
        loop {
            let log = process.log();
            if let Some(line) = log
                .lines()
                .find(|line| line.contains("Web server listening."))
            {
                let address = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("address="))
                    .expect("the listening line names its address");
                return Serve {
                    address: address.to_owned(),
                    process,
                };
            }
            process.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve did not listen in time:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stop(self) -> String {
        self.process.stop()
    }
}

/// The accounts fixture, the hostile mail as CS-1001, the fixture mail after
/// it, staff `ana` (staff) and `rita` (read-only).
pub(crate) fn seed_desk(env: &TestEnv) {
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    env.ok(&[
        "ingest",
        fixtures().join("web/hostile-html.eml").to_str().unwrap(),
    ]);
    env.ok(&["ingest", fixtures().join("mail").to_str().unwrap()]);
    add_staff(env, "ana", "staff");
    add_staff(env, "rita", "read-only");
}

/// A database with the hostile mail as CS-1001, the fixture mail after it, a
/// staff account and an API token (returned).
pub(crate) fn prepared_env() -> (TestEnv, String) {
    let env = TestEnv::new();
    seed_desk(&env);
    let token = env.ok(&["token", "create", "monitoring"]).trim().to_owned();
    assert!(token.starts_with("sdt_"), "{token}");
    (env, token)
}

/// `supportd staff add NAME --role ROLE` with [`PASSWORD`] on stdin.
pub(crate) fn add_staff(env: &TestEnv, name: &str, role: &str) {
    let mut staff = env
        .command(&["staff", "add", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    staff
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let output = staff.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Logs in as `ana`; returns the `supportd_session=...` cookie pair.
pub(crate) fn log_in(address: &str) -> String {
    log_in_as(address, "ana")
}

/// Logs in as `name` (whose password is [`PASSWORD`]).
pub(crate) fn log_in_as(address: &str, name: &str) -> String {
    let page = get(address, "/login", &[]);
    assert_eq!(page.status, 200);
    let login_cookie = page.cookie("supportd_login").expect("a login CSRF cookie");
    let body = form_encode(&[
        ("csrf_token", &page.csrf_field()),
        ("name", name),
        ("password", PASSWORD),
    ]);
    let reply = request(
        address,
        "POST",
        "/login",
        &[("Cookie", &login_cookie)],
        &body,
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let set_cookie = reply
        .headers
        .iter()
        .find(|(key, value)| {
            key.eq_ignore_ascii_case("set-cookie") && value.starts_with("supportd_session=")
        })
        .map(|(_, value)| value.clone())
        .expect("a session cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    reply.cookie("supportd_session").unwrap()
}

#[test]
fn health_and_every_protected_route_refuses_strangers() {
    let (env, token) = prepared_env();
    let serve = Serve::start(&env);
    let address = serve.address.clone();

    let health = get(&address, "/healthz", &[]);
    assert_eq!(health.status, 200);
    let ready = get(&address, "/readyz", &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("\"ready\""), "{}", ready.body);

    let table = route_table();
    assert!(table.iter().any(|route| route.access == Access::Token));
    for route in &table {
        let path = route
            .path
            .replace("{name}", "billing")
            .replace("{reference}", "CS-1001")
            .replace("{message}", "1")
            .replace("{position}", "0");
        let reply = request(&address, route.method, &path, &[], "");
        match route.access {
            Access::Public => assert!(
                reply.status < 500,
                "{} {path}: {}",
                route.method,
                reply.status
            ),
            Access::Session => {
                assert_eq!(
                    reply.status, 303,
                    "{} {path} without a session",
                    route.method
                );
                assert_eq!(reply.header("location"), Some("/login"), "{path}");
            }
            Access::Token => {
                assert_eq!(reply.status, 401, "{} {path} without a token", route.method);
                let wrong = request(
                    &address,
                    route.method,
                    &path,
                    &[("Authorization", "Bearer sdt_wrong")],
                    "",
                );
                assert_eq!(
                    wrong.status, 401,
                    "{} {path} with a wrong token",
                    route.method
                );
                assert!(!wrong.body.contains("sqlite"), "{}", wrong.body);
            }
        }
    }
    // A session cookie is not an API token, and a token is not a session.
    let session = log_in(&address);
    assert_eq!(
        get(&address, "/api/queues", &[("Cookie", &session)]).status,
        401
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(&address, "/", &[("Authorization", &bearer)]).status,
        303
    );

    // A read-only account sees the pages but cannot change a ticket.
    let read_only = log_in_as(&address, "rita");
    let cookie = [("Cookie", read_only.as_str())];
    let ticket = get(&address, "/tickets/CS-1001", &cookie);
    assert_eq!(ticket.status, 200);
    assert!(
        !ticket.body.contains("Change status"),
        "no action form for read-only"
    );
    let body = form_encode(&[("csrf_token", &ticket.csrf_field()), ("status", "closed")]);
    let refused = request(&address, "POST", "/tickets/CS-1001/status", &cookie, &body);
    assert_eq!(refused.status, 403);

    // Repeated failures for one user are refused without checking the password.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let page = get(&address, "/login", &[]);
        let login_cookie = page.cookie("supportd_login").unwrap();
        let body = form_encode(&[
            ("csrf_token", &page.csrf_field()),
            ("name", "guessed"),
            ("password", "wrong"),
        ]);
        statuses.push(
            request(
                &address,
                "POST",
                "/login",
                &[("Cookie", &login_cookie)],
                &body,
            )
            .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let log = serve.stop();
    assert!(log.contains("Login refused."), "{log}");
}

#[test]
fn staff_pages_csrf_sanitising_api_and_metrics() {
    let (env, token) = prepared_env();
    let serve = Serve::start(&env);
    let address = serve.address.clone();

    // A wrong password is refused and logged, without a session.
    let page = get(&address, "/login", &[]);
    let login_cookie = page.cookie("supportd_login").unwrap();
    let wrong = form_encode(&[
        ("csrf_token", &page.csrf_field()),
        ("name", "ana"),
        ("password", "nope"),
    ]);
    let reply = request(
        &address,
        "POST",
        "/login",
        &[("Cookie", &login_cookie)],
        &wrong,
    );
    assert_eq!(reply.status, 401);
    assert!(reply.cookie("supportd_session").is_none());
    // A login form without its CSRF token is refused.
    let no_csrf = form_encode(&[("name", "ana"), ("password", PASSWORD)]);
    assert_eq!(
        request(
            &address,
            "POST",
            "/login",
            &[("Cookie", &login_cookie)],
            &no_csrf
        )
        .status,
        403
    );

    let session = log_in(&address);
    let cookie = [("Cookie", session.as_str())];
    let overview = get(&address, "/", &cookie);
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("href=\"/queues/billing\""),
        "{}",
        overview.body
    );

    let queue = get(&address, "/queues/billing", &cookie);
    assert_eq!(queue.status, 200);
    assert!(
        queue
            .body
            .contains("Charged twice on this month&#x27;s invoice"),
        "{}",
        queue.body
    );
    let oldest = get(&address, "/queues/billing?order=oldest&limit=1", &cookie);
    assert_eq!(oldest.status, 200);
    assert!(oldest.body.contains("Next page"), "{}", oldest.body);
    assert_eq!(
        get(&address, "/queues/billing?after=junk", &cookie).status,
        400
    );
    let missing = get(&address, "/tickets/CS-999999", &cookie);
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "pages answer errors in HTML"
    );
    assert!(
        missing.body.contains("Back to the queues"),
        "{}",
        missing.body
    );

    // The hostile HTML mail is CS-1001: its text shows, nothing active does.
    let ticket = get(&address, "/tickets/CS-1001", &cookie);
    assert_eq!(ticket.status, 200);
    assert!(
        ticket.body.contains("Hello from the sanitiser test"),
        "{}",
        ticket.body
    );
    assert!(ticket.body.contains("Open the invoice"), "{}", ticket.body);
    for active in ["<script", "onerror", "onmouseover", "javascript:", "owned"] {
        assert!(
            !ticket.body.contains(active),
            "`{active}` reached the page:\n{}",
            ticket.body
        );
    }
    assert!(ticket.body.contains("Audit trail"));
    assert!(ticket.body.contains("ticket created"));

    // A status change without the CSRF token is refused; with it, it is done and audited.
    let refused = request(
        &address,
        "POST",
        "/tickets/CS-1001/status",
        &cookie,
        "status=resolved",
    );
    assert_eq!(refused.status, 403);
    let body = form_encode(&[("csrf_token", &ticket.csrf_field()), ("status", "resolved")]);
    let changed = request(&address, "POST", "/tickets/CS-1001/status", &cookie, &body);
    assert_eq!(changed.status, 303, "{}", changed.body);
    let ticket = get(&address, "/tickets/CS-1001", &cookie);
    assert!(ticket.body.contains("status changed"), "{}", ticket.body);
    assert!(ticket.body.contains("to: resolved"), "{}", ticket.body);

    // The API with the token.
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let queues = get(&address, "/api/queues", &auth);
    assert_eq!(queues.status, 200);
    let queues: serde_json::Value = serde_json::from_str(&queues.body).unwrap();
    assert!(
        queues
            .as_array()
            .unwrap()
            .iter()
            .any(|queue| queue["queue"] == "billing")
    );
    let tickets = get(&address, "/api/queues/billing/tickets?limit=1", &auth);
    let tickets: serde_json::Value = serde_json::from_str(&tickets.body).unwrap();
    assert_eq!(tickets["tickets"].as_array().unwrap().len(), 1);
    assert!(tickets["next_after"].is_string(), "{tickets}");
    let detail = get(&address, "/api/tickets/CS-1001", &auth);
    assert_eq!(detail.status, 200);
    let detail: serde_json::Value = serde_json::from_str(&detail.body).unwrap();
    assert_eq!(detail["ticket"]["status"], "resolved");
    let missing = get(&address, "/api/tickets/CS-999999", &auth);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "{\"error\":\"not found\"}");

    let openapi = get(&address, "/api/openapi.json", &auth);
    assert_eq!(openapi.status, 200);
    let openapi: serde_json::Value = serde_json::from_str(&openapi.body).unwrap();
    assert!(openapi["paths"]["/api/tickets/{reference}"].is_object());
    assert!(
        ticket_page_headers_forbid_scripts(&address, &session),
        "pages carry a CSP without scripts"
    );

    let metrics = get(&address, "/metrics", &auth);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("supportd_http_requests_total{"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("route=\"/tickets/{reference}\""),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("supportd_queue_open_tickets{queue=\"billing\"}"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("supportd_login_failures_total"),
        "{}",
        metrics.body
    );

    // Logout ends the session (with its CSRF token).
    let overview = get(&address, "/", &cookie);
    let body = form_encode(&[("csrf_token", &overview.csrf_field())]);
    assert_eq!(
        request(&address, "POST", "/logout", &cookie, &body).status,
        303
    );
    assert_eq!(get(&address, "/", &cookie).status, 303);

    let log = serve.stop();
    assert!(log.contains("Login failed."), "{log}");
    assert!(!log.contains(PASSWORD), "a password reached the log");
}

/// The ticket page's Content-Security-Policy allows no script.
fn ticket_page_headers_forbid_scripts(address: &str, session: &str) -> bool {
    let page = get(address, "/tickets/CS-1001", &[("Cookie", session)]);
    page.header("content-security-policy")
        .is_some_and(|policy| {
            policy.contains("default-src 'none'") && !policy.contains("script-src")
        })
}

/// The JSON body of a reply.
fn json_of(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {} {}", reply.status, reply.body))
}

/// The reference of the newest ticket matching `q`, through the search API.
fn find_ticket(address: &str, auth: &[(&str, &str)], q: &str) -> String {
    let found = get(address, &format!("/api/search?q={q}"), auth);
    assert_eq!(found.status, 200, "{}", found.body);
    json_of(&found)["tickets"][0]["ticket_ref"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket for {q}: {}", found.body))
        .to_owned()
}

#[test]
fn ticket_actions_search_and_attachments_through_pages_and_api() {
    let (env, token) = prepared_env();
    env.ok(&[
        "ingest",
        fixtures()
            .join("web/invoice-attachment.eml")
            .to_str()
            .unwrap(),
    ]);
    // `monitoring` (from prepared_env) may only read; `desk` may act.
    let viewer = token;
    let token = env
        .ok(&["token", "create", "desk", "--role", "staff"])
        .trim()
        .to_owned();
    let serve = Serve::start(&env);
    let address = serve.address.clone();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let viewer_bearer = format!("Bearer {viewer}");
    let viewer_auth = [("Authorization", viewer_bearer.as_str())];

    // Search by subscription ID, sender, words, reference.
    let reference = find_ticket(&address, &auth, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(
        find_ticket(&address, &auth, "DANA%40fabrikam-freight.example"),
        reference,
        "newest ticket of that sender"
    );
    assert_eq!(find_ticket(&address, &auth, "invoice%20copy"), reference);
    assert_eq!(find_ticket(&address, &auth, &reference), reference);
    assert_eq!(get(&address, "/api/search?q=", &auth).status, 400);

    // Pages: assign to me, move with a reason, reply, note; each needs its CSRF token.
    let session = log_in(&address);
    let cookie = [("Cookie", session.as_str())];
    let page = get(&address, &format!("/tickets/{reference}"), &cookie);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Assign to me"), "{}", page.body);
    let csrf = page.csrf_field();
    for (action, fields) in [
        ("assign", vec![]),
        (
            "move",
            vec![
                ("queue", "accounts-and-access"),
                ("reason", "portal access"),
            ],
        ),
        (
            "reply",
            vec![("body", "We are refunding the second charge.")],
        ),
        ("note", vec![("body", "Refund approved by finance.")]),
    ] {
        let path = format!("/tickets/{reference}/{action}");
        let without = form_encode(&fields);
        assert_eq!(
            request(&address, "POST", &path, &cookie, &without).status,
            403,
            "{action} without CSRF"
        );
        let mut with_token = fields.clone();
        with_token.push(("csrf_token", &csrf));
        let done = request(&address, "POST", &path, &cookie, &form_encode(&with_token));
        assert_eq!(done.status, 303, "{action}: {}", done.body);
        assert_eq!(
            done.header("location"),
            Some(format!("/tickets/{reference}").as_str())
        );
    }
    // Bad input is a clear 400, never a change.
    let bad_move = form_encode(&[
        ("queue", "no-such-queue"),
        ("reason", "x"),
        ("csrf_token", &csrf),
    ]);
    let refused = request(
        &address,
        "POST",
        &format!("/tickets/{reference}/move"),
        &cookie,
        &bad_move,
    );
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("unknown queue"), "{}", refused.body);
    let empty_note = form_encode(&[("body", "  "), ("csrf_token", &csrf)]);
    assert_eq!(
        request(
            &address,
            "POST",
            &format!("/tickets/{reference}/note"),
            &cookie,
            &empty_note
        )
        .status,
        400
    );

    let page = get(&address, &format!("/tickets/{reference}"), &cookie);
    for shown in [
        "We are refunding the second charge.",
        "Refund approved by finance.",
        "internal note · never mailed",
        "accounts-and-access",
        "assigned",
        "moved",
        "reason: portal access",
        "note added",
        "mail queued",
    ] {
        assert!(
            page.body.contains(shown),
            "`{shown}` missing:\n{}",
            page.body
        );
    }
    assert!(!page.body.contains("Assign to me"), "already mine");

    // The attachment downloads with a safe disposition, bytes from the raw message.
    // minijinja escapes `/` in attribute values as `&#x2f;`.
    let body = page.body.replace("&#x2f;", "/");
    let marker = format!("/tickets/{reference}/attachments/");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no attachment link:\n{}", page.body));
    let end = body[start..].find('"').unwrap() + start;
    let link = body[start..end].to_owned();
    let download = get(&address, &link, &cookie);
    assert_eq!(download.status, 200);
    assert_eq!(download.body, "Invoice 2026-11\nTotal: 42.00 EUR\n");
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    let disposition = download.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        disposition.contains("filename*=UTF-8''Rechnung%20M%C3%A4rz.html"),
        "{disposition}"
    );
    let api_link = format!("/api{link}");
    assert_eq!(get(&address, &api_link, &auth).status, 200);
    let other_message = link.replace("/attachments/", "/attachments/9");
    assert_eq!(get(&address, &other_message, &cookie).status, 404);

    // The API: the same actions, JSON in and out; read-only tokens refused.
    let api = |path: &str| format!("/api/tickets/{reference}/{path}");
    let status = request(
        &address,
        "POST",
        &api("status"),
        &auth,
        r#"{"status":"pending_customer"}"#,
    );
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(json_of(&status)["previous_status"], "open");
    let moved = request(
        &address,
        "POST",
        &api("move"),
        &auth,
        r#"{"queue":"billing","reason":"back to billing after all"}"#,
    );
    assert_eq!(json_of(&moved)["previous_queue"], "accounts-and-access");
    let note = request(
        &address,
        "POST",
        &api("notes"),
        &auth,
        r#"{"body":"From the API."}"#,
    );
    assert!(json_of(&note)["note_id"].is_i64(), "{}", note.body);
    let reply = request(
        &address,
        "POST",
        &api("replies"),
        &auth,
        r#"{"body":"Done."}"#,
    );
    assert!(json_of(&reply)["message_id"].is_string(), "{}", reply.body);
    let assigned = request(&address, "POST", &api("assign"), &auth, "");
    assert_eq!(json_of(&assigned)["assignee"], "desk");
    for (path, body) in [
        ("status", r#"{"status":"closed"}"#),
        ("notes", r#"{"body":"no"}"#),
        ("assign", ""),
    ] {
        assert_eq!(
            request(&address, "POST", &api(path), &viewer_auth, body).status,
            403,
            "read-only {path}"
        );
    }
    let bad = request(
        &address,
        "POST",
        &api("status"),
        &auth,
        r#"{"status":"gone"}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(json_of(&bad)["error"].as_str().unwrap().contains("gone"));
    let malformed = request(&address, "POST", &api("notes"), &auth, r#"{"text":1}"#);
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(
        malformed.body.starts_with("{\"error\""),
        "{}",
        malformed.body
    );
    let detail = json_of(&get(&address, &format!("/api/tickets/{reference}"), &auth));
    assert_eq!(detail["ticket"]["queue"], "billing");
    assert_eq!(detail["ticket"]["status"], "pending_customer");
    assert_eq!(detail["desk"]["assignee"], "desk");
    assert_eq!(detail["desk"]["notes"].as_array().unwrap().len(), 2);
    assert_eq!(detail["desk"]["replies"].as_array().unwrap().len(), 2);
    assert!(detail["desk"]["first_responded_at"].is_i64());
    let kinds: Vec<&str> = detail["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "assigned",
        "moved",
        "note_added",
        "mail_queued",
        "status_changed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // Queue filters: by tier and category, and a wrong one named.
    let filtered = get(
        &address,
        "/api/queues/billing/tickets?status=pending_customer&tier=platform&category=billing",
        &auth,
    );
    assert_eq!(filtered.status, 200, "{}", filtered.body);
    let wrong = get(&address, "/queues/billing?tier=gold", &cookie);
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("unknown tier"), "{}", wrong.body);
    let search_page = get(&address, "/search?q=invoice", &cookie);
    assert_eq!(search_page.status, 200);
    assert!(
        search_page.body.contains(&reference),
        "{}",
        search_page.body
    );
    serve.stop();
}

#[test]
fn api_tickets_are_classified_routed_and_idempotent() {
    let (env, viewer) = prepared_env();
    let token = env
        .ok(&["token", "create", "portal", "--role", "staff"])
        .trim()
        .to_owned();
    let serve = Serve::start(&env);
    let address = serve.address.clone();
    let bearer = format!("Bearer {token}");
    let body = r#"{"channel":"portal","requester_email":"dana@fabrikam-freight.example","requester_name":"Dana Whitfield","subject":"We were charged twice on the November invoice","body":"Our November invoice shows the same subscription charge twice. Please refund one.","subscription_id":"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"}"#;
    let with_key = [
        ("Authorization", bearer.as_str()),
        ("Idempotency-Key", "portal-77"),
    ];
    let first = request(&address, "POST", "/api/tickets", &with_key, body);
    assert_eq!(first.status, 201, "{}", first.body);
    let created = json_of(&first);
    let reference = created["ticket"].as_str().unwrap().to_owned();
    assert_eq!(created["outcome"], "created");
    assert_eq!(
        first.header("location"),
        Some(format!("/api/tickets/{reference}").as_str())
    );

    let again = request(&address, "POST", "/api/tickets", &with_key, body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(json_of(&again)["ticket"], reference.as_str());
    let changed = body.replace("twice", "three times");
    let conflict = request(&address, "POST", "/api/tickets", &with_key, &changed);
    assert_eq!(conflict.status, 422, "{}", conflict.body);

    // Classified and routed like mail: the account's tier, the billing queue,
    // the subscription ID searchable, an acknowledgment queued.
    let auth = [("Authorization", bearer.as_str())];
    let detail = json_of(&get(&address, &format!("/api/tickets/{reference}"), &auth));
    assert_eq!(detail["ticket"]["queue"], "billing", "{detail}");
    assert_eq!(detail["ticket"]["labels"]["tier"], "platform", "{detail}");
    assert_eq!(detail["messages"][0]["source"]["kind"], "api", "{detail}");
    assert_eq!(
        detail["messages"][0]["source"]["mailbox"], "portal",
        "{detail}"
    );
    assert_eq!(
        find_ticket(&address, &auth, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
        reference
    );
    let phone = request(
        &address,
        "POST",
        "/api/tickets",
        &auth,
        r#"{"channel":"phone","requester_email":"ines@unknown-startup.example","subject":"Storage account returns 403","body":"Caller says every request to the storage account fails with 403."}"#,
    );
    assert_eq!(phone.status, 201, "{}", phone.body);
    assert_ne!(json_of(&phone)["ticket"], reference.as_str());

    // Bad input: named, never a ticket.
    for (bad, named) in [
        (
            r#"{"channel":"fax","requester_email":"a@b.example","subject":"s","body":"b"}"#,
            "channel",
        ),
        (
            r#"{"channel":"portal","requester_email":"nobody","subject":"s","body":"b"}"#,
            "requester_email",
        ),
        (
            r#"{"channel":"portal","requester_email":"a@b.example","subject":"two\nlines","body":"b"}"#,
            "subject",
        ),
        (
            r#"{"channel":"portal","requester_email":"a@b.example","subject":"s","body":"  "}"#,
            "body",
        ),
        (
            r#"{"channel":"portal","requester_email":"a@b.example","subject":"s","body":"b","subscription_id":"42"}"#,
            "subscription_id",
        ),
    ] {
        let refused = request(&address, "POST", "/api/tickets", &auth, bad);
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
        assert!(refused.body.contains(named), "{bad}: {}", refused.body);
    }
    let viewer_bearer = format!("Bearer {viewer}");
    assert_eq!(
        request(
            &address,
            "POST",
            "/api/tickets",
            &[("Authorization", viewer_bearer.as_str())],
            body
        )
        .status,
        403
    );
    serve.stop();
}

#[test]
fn the_sla_sweep_breaches_overdue_tickets_and_lists_them_first() {
    let (env, token) = prepared_env();
    // CS-1002 (the first fixture mail, in billing) is made overdue; the others are not.
    let database = env.database_path();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection;
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
                    .await
                    .unwrap();
            let before: (String, String) =
                sqlx::query_as("SELECT queue, priority FROM tickets WHERE number = 1002")
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
            assert_eq!(before, ("billing".to_owned(), "normal".to_owned()));
            sqlx::query("UPDATE tickets SET first_response_due = 1000 WHERE number = 1002")
                .execute(&mut connection)
                .await
                .unwrap();
        });
    let serve = Serve::start_with(&env, &[("SUPPORTD_WEB__SLA_SWEEP_SECONDS", "1")]);
    let address = serve.address.clone();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let started = Instant::now();
    let detail = loop {
        let detail = json_of(&get(&address, "/api/tickets/CS-1002", &auth));
        if detail["desk"]["sla_breached"] == true {
            break detail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no sweep: {detail}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(detail["ticket"]["priority"], "high", "raised one step");
    let events = detail["audit_events"].as_array().unwrap();
    let breach = events
        .iter()
        .find(|event| event["kind"] == "sla_breached")
        .expect("an sla_breached audit event");
    assert_eq!(breach["detail"]["priority_from"], "normal");
    let listing = json_of(&get(&address, "/api/queues/billing/tickets", &auth));
    assert_eq!(listing["tickets"][0]["ticket_ref"], "CS-1002", "{listing}");
    assert_eq!(listing["tickets"][0]["sla_breached"], true);
    let session = log_in(&address);
    let page = get(&address, "/queues/billing", &[("Cookie", session.as_str())]);
    let first_row = page.body.find("<tr class=").expect("a highlighted row");
    assert!(
        page.body[first_row..].starts_with("<tr class=\"breached\">"),
        "{}",
        page.body
    );
    let metrics = get(&address, "/metrics", &auth).body;
    assert!(
        metrics.contains("supportd_sla_breaches_total{queue=\"billing\"} 1"),
        "{metrics}"
    );
    let log = serve.stop();
    assert!(log.contains("SLA breached"), "{log}");
}
