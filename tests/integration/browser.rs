//! The staff pages in a real headless Chromium (Debian's `chromium` driven
//! through `chromedriver` over WebDriver with fantoccini), against the real
//! `supportd serve`: log in, open a queue, open a ticket, move it, reply, read
//! the audit trail, log out; hostile mail HTML shows nothing active; a page
//! without a session goes to the login; a form without its CSRF token is
//! refused. Each page is also saved as a screenshot in `/tmp/shots/`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::web::{PASSWORD, Serve, prepared_env};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SHOTS: &str = "/tmp/shots";

/// A running chromedriver in its own process group, killed with its browsers.
struct ChromeDriver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        assert!(
            Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file(),
            "the browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
        );
        // A free port, released just before chromedriver takes it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().expect("a browser profile dir"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    async fn browser(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--hide-scrollbars", "--no-first-run",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let group = i32::try_from(self.child.id()).unwrap_or(0);
        if group > 0 {
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

async fn path_of(client: &Client) -> String {
    client
        .current_url()
        .await
        .expect("current URL")
        .path()
        .to_owned()
}

/// Waits until the browser shows `path` (after a redirect or a form post).
async fn wait_for_path(client: &Client, path: &str) {
    let started = Instant::now();
    loop {
        let current = path_of(client).await;
        if current == path {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still at {current}, waiting for {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn css(client: &Client, selector: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|error| panic!("no `{selector}`: {error}"))
}

/// The text of the first `selector`, retried while the page is changing
/// (an element found on the page that a form post is replacing goes stale).
async fn text_of(client: &Client, selector: &str) -> String {
    let started = Instant::now();
    loop {
        match css(client, selector).await.text().await {
            Ok(text) => return text,
            Err(error) => assert!(
                started.elapsed() < Duration::from_secs(15),
                "no text for `{selector}`: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the first `selector` contains `needle`; returns its text.
async fn wait_for_text(client: &Client, selector: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let text = text_of(client, selector).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "`{selector}` never showed `{needle}`; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    std::fs::create_dir_all(SHOTS).expect("create /tmp/shots");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(Path::new(SHOTS).join(format!("{name}.png")), png).expect("write a screenshot");
}

async fn submit(client: &Client, form: &str) {
    css(client, &format!("{form} button[type=submit]"))
        .await
        .click()
        .await
        .expect("click submit");
}

/// True when the script (a function body) returns true in the page.
async fn page_says(client: &Client, script: &str) -> bool {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|error| panic!("script failed ({error}): {script}"))
        == json!(true)
}

async fn staff_session_in_chromium(client: &Client, base: &str) {
    // No session: any page sends the browser to the login form.
    client
        .goto(&format!("{base}/queues/billing"))
        .await
        .unwrap();
    wait_for_path(client, "/login").await;
    screenshot(client, "login").await;

    css(client, "input[name=name]")
        .await
        .send_keys("ana")
        .await
        .unwrap();
    css(client, "input[name=password]")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    submit(client, ".login form").await;
    wait_for_path(client, "/").await;
    wait_for_text(client, "h1", "Queues").await;
    screenshot(client, "queues").await;

    css(client, "a[href='/queues/billing']")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(client, "/queues/billing").await;
    wait_for_text(client, "table.tickets", "Charged twice").await;
    screenshot(client, "queue").await;

    css(client, "td.ref a[href='/tickets/CS-1002']")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(client, "/tickets/CS-1002").await;
    wait_for_text(client, "h1", "CS-1002").await;
    screenshot(client, "ticket").await;

    // Move it to another queue, with a reason.
    css(client, "form[action$='/move'] select[name=queue]")
        .await
        .select_by_value("accounts-and-access")
        .await
        .unwrap();
    css(client, "form[action$='/move'] input[name=reason]")
        .await
        .send_keys("Portal login problem, not billing")
        .await
        .unwrap();
    submit(client, "form[action$='/move']").await;
    wait_for_text(client, "p.crumbs", "accounts-and-access").await;
    assert_eq!(
        path_of(client).await,
        "/tickets/CS-1002",
        "POST-redirect-GET"
    );

    // Reply to the customer.
    css(client, "#reply-body")
        .await
        .send_keys("Hello Dana, we have refunded the second charge.")
        .await
        .unwrap();
    submit(client, "form[action$='/reply']").await;
    wait_for_text(
        client,
        "article.entry.reply",
        "we have refunded the second charge",
    )
    .await;

    // The audit trail tells what happened and who did it.
    let audit = text_of(client, "table.audit").await;
    for expected in [
        "moved",
        "Portal login problem, not billing",
        "mail queued",
        "ana",
    ] {
        assert!(
            audit.contains(expected),
            "`{expected}` missing from the audit trail:\n{audit}"
        );
    }
    screenshot(client, "ticket-after-actions").await;

    // A form whose CSRF token was taken out is refused.
    assert!(
        page_says(
            client,
            "document.querySelector('form.compose.note input[name=csrf_token]').remove(); return true;"
        )
        .await
    );
    css(client, "#note-body")
        .await
        .send_keys("Should never be stored.")
        .await
        .unwrap();
    submit(client, "form.compose.note").await;
    wait_for_text(client, "h1", "403").await;
    wait_for_text(client, "main", "CSRF").await;
    client
        .goto(&format!("{base}/tickets/CS-1002"))
        .await
        .unwrap();
    let thread = wait_for_text(client, "main", "Conversation").await;
    assert!(!thread.contains("Should never be stored."), "{thread}");

    // Hostile mail HTML: nothing active survives, and nothing ran.
    client
        .goto(&format!("{base}/tickets/CS-1001"))
        .await
        .unwrap();
    wait_for_text(client, ".body.html", "Hello from the sanitiser test").await;
    screenshot(client, "ticket-hostile-html").await;
    assert!(
        page_says(
            client,
            "return document.querySelectorAll('script').length === 0;"
        )
        .await
    );
    assert!(
        page_says(
            client,
            "return !Array.from(document.querySelectorAll('*')).some(element => \
             Array.from(element.attributes).some(attribute => attribute.name.toLowerCase().startsWith('on')));"
        )
        .await,
        "an on* attribute reached the page"
    );
    assert!(
        page_says(
            client,
            "return !Array.from(document.querySelectorAll('[href], [src], [action]')).some(element => \
             ['href', 'src', 'action'].some(name => (element.getAttribute(name) || '').trim().toLowerCase().startsWith('javascript:')));"
        )
        .await,
        "a javascript: URL reached the page"
    );
    css(client, ".body.html a").await.click().await.unwrap();
    assert!(
        client.get_alert_text().await.is_err(),
        "a script opened an alert"
    );
    let title = client.title().await.unwrap();
    assert!(!title.contains("owned"), "the mail's script ran: {title}");
    assert_eq!(path_of(client).await, "/tickets/CS-1001");

    // Log out: the session is over.
    submit(client, "form.logout").await;
    wait_for_path(client, "/login").await;
    client.goto(&format!("{base}/")).await.unwrap();
    wait_for_path(client, "/login").await;
}

#[test]
fn staff_work_a_ticket_in_chromium() {
    let (env, _token) = prepared_env();
    let serve = Serve::start(&env);
    let base = format!("http://{}", serve.address);
    let driver = ChromeDriver::start();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = driver.browser().await;
            staff_session_in_chromium(&client, &base).await;
            client.close().await.expect("close the browser session");
        });
    drop(driver);
    serve.stop();
}
