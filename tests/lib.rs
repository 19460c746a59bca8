//! Harness for the integration tests: runs the real `supportd` binary in a
//! temporary directory with its own SQLite file, and finds the shared corpora.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod servers;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Our own fixtures (tests/fixtures).
pub fn fixtures() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

/// The `supportd` binary of this build: `target/<profile>/supportd`, built on
/// first use when `cargo test` was run for this package alone.
pub fn supportd_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test_executable = std::env::current_exe().expect("current test executable");
        // target/<profile>/deps/integration-<hash> -> target/<profile>/supportd
        let profile_dir = test_executable
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps");
        let binary = profile_dir.join(format!("supportd{}", std::env::consts::EXE_SUFFIX));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "supportd", "--bin", "supportd"])
            .args(if profile_dir.ends_with("release") {
                &["--release"][..]
            } else {
                &[][..]
            })
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of supportd failed");
        assert!(binary.is_file(), "{} missing after build", binary.display());
        binary
    })
}

/// The shared corpora (`../shared` beside the workspace, or `SUPPORTD_SHARED_DIR`).
/// `None` when absent; under CI (env `CI` set) their absence fails the test,
/// because CI must run the acceptance tests.
pub fn shared_dir() -> Option<PathBuf> {
    let candidate = std::env::var_os("SUPPORTD_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("..").join("shared"));
    if candidate.join("corpus").is_dir() {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the shared corpora are missing at {} (set SUPPORTD_SHARED_DIR)",
        candidate.display()
    );
    eprintln!(
        "skipped: shared corpora not found at {}",
        candidate.display()
    );
    None
}

/// A scratch directory with its own database, drop folder and working directory.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    /// The configuration file used: the repository's, or one written by
    /// [`TestEnv::with_config`].
    config_path: PathBuf,
    /// `--database` for every command: the SQLite file in `dir` unless
    /// [`TestEnv::on_database`] named another.
    database_url: Option<String>,
    /// Environment variables set for every command ([`TestEnv::with_env`]).
    env_vars: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            config_path: workspace_root().join("config").join("default.toml"),
            database_url: None,
            env_vars: Vec::new(),
        }
    }

    /// Every command of this env uses the database at `url` (e.g. a
    /// PostgreSQL database of the test's own) instead of the SQLite file.
    pub fn on_database(mut self, url: &str) -> TestEnv {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Every command of this env runs with `key=value` in its environment
    /// (e.g. `SUPPORTD_OUTBOUND__PORT`).
    pub fn with_env(mut self, key: &str, value: &str) -> TestEnv {
        self.env_vars.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `--database` URL commands use.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.database_path().display()))
    }

    /// A test env whose configuration is the repository's default plus `extra`
    /// TOML (e.g. `[[mailbox]]` tables), with the rule files still read from
    /// the repository.
    pub fn with_config(extra: &str) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_dir = workspace_root().join("config");
        let default = std::fs::read_to_string(config_dir.join("default.toml"))
            .expect("read config/default.toml");
        let absolute = |name: &str| config_dir.join(name).display().to_string();
        let config = default
            .replace(
                "rules = \"classifier.toml\"",
                &format!("rules = {:?}", absolute("classifier.toml")),
            )
            .replace(
                "rules = \"routing.toml\"",
                &format!("rules = {:?}", absolute("routing.toml")),
            )
            .replace(
                "templates = \"templates\"",
                &format!("templates = {:?}", absolute("templates")),
            );
        let config_path = dir.path().join("supportd.toml");
        std::fs::write(&config_path, format!("{config}\n{extra}\n")).expect("write config");
        TestEnv {
            dir,
            config_path,
            database_url: None,
            env_vars: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database_path(&self) -> PathBuf {
        self.path().join("supportd.db")
    }

    /// `supportd --config <repo config> --database <temp db> ARGS`, run in the temp dir.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_on(&self.database_url(), args)
    }

    /// [`TestEnv::command`] on another database (a file on a small disk).
    pub fn command_on(&self, database_url: &str, args: &[&str]) -> Command {
        let mut command = Command::new(supportd_binary());
        command
            .arg("--config")
            .arg(&self.config_path)
            .arg("--database")
            .arg(database_url)
            .args(args)
            .current_dir(self.path())
            .env("SUPPORTD_INTAKE__DROP_FOLDER", self.path().join("inbox"))
            // Any free port: tests run `serve` in parallel; the bound address is logged.
            .env("SUPPORTD_WEB__ADDRESS", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .env_remove("SUPPORTD_DATABASE__URL")
            .envs(self.env_vars.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null());
        command
    }

    /// Runs a command and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run supportd")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "supportd {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "supportd {args:?} should have failed:\nstdout:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "a user error must not panic:\n{stderr}"
        );
        stderr
    }
}

/// A running `supportd serve`, killed if the test fails before stopping it.
/// Its log goes to a file (a pipe nobody reads would fill and block it).
pub struct ServeProcess {
    child: Option<std::process::Child>,
    log_path: PathBuf,
}

impl ServeProcess {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Starts `supportd serve` in `env`, logging at info level.
    pub fn start(env: &TestEnv) -> ServeProcess {
        ServeProcess::start_with(env, &[])
    }

    /// [`ServeProcess::start`] with extra environment variables (settings
    /// overrides such as `SUPPORTD_WEB__SLA_SWEEP_SECONDS`, secrets) for the
    /// daemon alone.
    pub fn start_with(env: &TestEnv, variables: &[(&str, &str)]) -> ServeProcess {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = env.path().join(format!("serve-{run}.log"));
        let log_file = std::fs::File::create(&log_path).expect("create the serve log");
        let child = env
            .command(&["serve"])
            .env("RUST_LOG", "info")
            .envs(variables.iter().copied())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn supportd serve");
        ServeProcess {
            child: Some(child),
            log_path,
        }
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The address the web server listens on, from its log line (waits up to
    /// 60 s for it).
    pub fn web_address(&mut self) -> String {
        let started = std::time::Instant::now();
        loop {
            let log = self.log();
            if let Some(address) = log
                .lines()
                .filter(|line| line.contains("Web server listening."))
                .find_map(|line| {
                    line.split_whitespace()
                        .find_map(|field| field.strip_prefix("address="))
                })
            {
                return address.to_owned();
            }
            self.assert_running();
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "serve did not listen in time:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The peak resident memory of the daemon so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Kills the daemon with SIGKILL (no chance to finish anything: the crash
    /// the fault tests mean to cause) and returns its log.
    pub fn kill(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
        self.log()
    }

    /// Panics with the log if the daemon has exited.
    pub fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("poll serve") {
            panic!("serve exited ({status}):\n{}", self.log());
        }
    }

    /// Sends SIGTERM, waits for a clean exit (status 0) and returns the log.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll serve") {
                let log = self.log();
                assert!(status.success(), "serve exits 0 on SIGTERM:\n{log}");
                return log;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "serve did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // SIGKILL: a test that failed, or one that means to crash the daemon.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// `GET path` on `address` (HTTP/1.1, connection closed after): the status
/// code and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    http_get_with(address, path, &[])
}

/// [`http_get`] with extra request headers (`("Authorization", "Bearer …")`).
pub fn http_get_with(address: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the web server");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line in {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Parses `ingest`'s summary line into (total, created, threaded, duplicates, quarantined, unreadable).
pub fn parse_summary(stdout: &str) -> [u64; 6] {
    let line = stdout
        .lines()
        .find(|line| line.contains("new tickets"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().expect("number"))
        .collect();
    numbers
        .try_into()
        .unwrap_or_else(|_| panic!("unexpected summary line: {line}"))
}

/// Polls `done` every 50 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A `[[mailbox]]` table for the test Dovecot's support user at `port` (the
/// server's own plain port, or a proxy in front of it), with the password in
/// a file beside the server. `extra` adds keys, and replaces the defaults
/// (acknowledge "move", short poll interval and timeouts) it names.
pub fn mailbox_config(
    dovecot: &servers::Dovecot,
    port: u16,
    name: &str,
    password: &str,
    extra: &str,
) -> String {
    let password_file = dovecot.directory().join(format!("{name}-password"));
    std::fs::write(&password_file, password).expect("write the password file");
    restrict_to_owner(&password_file);
    // Defaults for the keys `extra` does not set itself.
    let defaults: String = [
        ("acknowledge", "\"move\""),
        ("poll_interval", "\"1s\""),
        ("connect_timeout", "\"5s\""),
        ("command_timeout", "\"10s\""),
    ]
    .iter()
    .filter(|(key, _)| !extra.contains(&format!("{key} =")))
    .map(|(key, value)| format!("{key} = {value}\n"))
    .collect();
    format!(
        r#"
[[mailbox]]
name = "{name}"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{user}"
auth = {{ method = "password", password_file = "{password_file}" }}
folders = ["INBOX"]
start = "2000-01-01"
{defaults}{extra}
"#,
        user = servers::dovecot::SUPPORT_USER,
        password_file = password_file.display(),
    )
}

/// Mode 0600: secret files the tests write are as an operator should keep them.
pub fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// A test env reading the support mailbox of `dovecot` through `port`, with
/// the fixture account directory imported.
pub fn imap_env(dovecot: &servers::Dovecot, port: u16, extra_mailbox_keys: &str) -> TestEnv {
    let env = TestEnv::with_config(&mailbox_config(
        dovecot,
        port,
        "support",
        servers::dovecot::SUPPORT_PASSWORD,
        extra_mailbox_keys,
    ));
    env.ok(&[
        "accounts",
        "import",
        fixtures()
            .join("accounts.csv")
            .to_str()
            .expect("utf-8 path"),
    ]);
    env
}

/// A customer mail with a unique Message-ID.
pub fn customer_mail(index: usize) -> Vec<u8> {
    format!(
        "From: Dana Whitfield <dana@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Question {index} about our invoice\r\n\
         Date: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <question-{index}@fabrikam-freight.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello,\r\n\r\nThe November invoice shows a charge we do not recognise (line {index}).\r\n\
         Could you explain it?\r\n\r\nThanks,\r\nDana\r\n"
    )
    .into_bytes()
}

impl TestEnv {
    /// How many tickets the database holds (via the CLI: the open counts of every queue).
    pub fn ticket_count(&self) -> u64 {
        let queues = self.ok(&["queue", "list"]);
        queues
            .lines()
            .skip(1)
            .map(|line| {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|count| count.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("a count in {line:?}"))
            })
            .sum()
    }
}
