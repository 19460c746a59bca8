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

const PASSWORD: &str = "a long enough password";

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `name=value` of a Set-Cookie header for cookie `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, value)| value.split(';').next())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the first hidden `csrf_token` field of the page.
    fn csrf_field(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a csrf_token field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

fn request(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(address).expect("connect to the web server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.0\r\nHost: {address}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("utf-8 response");
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

fn get(address: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(address, "GET", path, headers, "")
}

fn form_encode(fields: &[(&str, &str)]) -> String {
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
struct Serve {
    process: ServeProcess,
    address: String,
}

impl Serve {
    fn start(env: &TestEnv) -> Serve {
        let mut process = ServeProcess::start(env);
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

    fn stop(self) -> String {
        self.process.stop()
    }
}

/// A database with the hostile mail as CS-1001, the fixture mail after it, a
/// staff account and an API token (returned).
fn prepared_env() -> (TestEnv, String) {
    let env = TestEnv::new();
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
    add_staff(&env, "ana", "staff");
    add_staff(&env, "rita", "read-only");
    let token = env.ok(&["token", "create", "monitoring"]).trim().to_owned();
    assert!(token.starts_with("sdt_"), "{token}");
    (env, token)
}

/// `supportd staff add NAME --role ROLE` with [`PASSWORD`] on stdin.
fn add_staff(env: &TestEnv, name: &str, role: &str) {
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
fn log_in(address: &str) -> String {
    log_in_as(address, "ana")
}

/// Logs in as `name` (whose password is [`PASSWORD`]).
fn log_in_as(address: &str, name: &str) -> String {
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
            .replace("{reference}", "CS-1001");
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
    assert!(
        ticket.body.contains("&quot;to&quot;:&quot;resolved&quot;"),
        "{}",
        ticket.body
    );

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
