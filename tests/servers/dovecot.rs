//! A real Dovecot 2.3 on loopback, one per test: its own config, TLS
//! certificates, users, Maildir storage and ports under a temp dir.
//!
//! - plain IMAP on [`Dovecot::plain_port`], IMAPS on [`Dovecot::tls_port`]
//!   with a leaf certificate for `localhost`/`127.0.0.1` signed by a test CA
//!   ([`Dovecot::ca_pem_path`]);
//! - users from a passwd-file ([`SUPPORT_USER`], [`OTHER_USER`], more with
//!   [`Dovecot::add_user`]);
//! - SASL XOAUTH2 through Dovecot's oauth2 passdb, which asks a tiny
//!   introspection endpoint run here ([`Dovecot::issue_oauth2_token`]); the
//!   same small server is the token endpoint that refreshes and rotates
//!   ([`Dovecot::issue_oauth2_refresh_token`]);
//! - fast seeding by writing into Maildir ([`Dovecot::deliver`]); `doveadm`
//!   for what a test checks or changes behind the client's back.
//!
//! Facts behind the choices: `shared/notes/mail-servers.md`.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// The mailbox every test uses, and its password.
pub const SUPPORT_USER: &str = "support";
pub const SUPPORT_PASSWORD: &str = "support-password";
/// A second mailbox, for tests that need two.
pub const OTHER_USER: &str = "other";
pub const OTHER_PASSWORD: &str = "other-password";

/// Owner of all mail files: Dovecot refuses uid 0 for mail.
const MAIL_UID: u32 = 5000;
const MAIL_GID: u32 = 5000;

/// A running Dovecot. Dropping it stops the server and removes its files.
pub struct Dovecot {
    directory: tempfile::TempDir,
    /// Set to advertise fewer capabilities than Dovecot has (`imap_capability`).
    capabilities: Option<String>,
    child: Option<Child>,
    plain_port: u16,
    tls_port: u16,
    /// LMTP listener, 0 when not asked for ([`Dovecot::start_with_lmtp`]).
    lmtp_port: u16,
    introspection: IntrospectionServer,
}

impl Dovecot {
    /// Writes the config, certificates and users, and starts Dovecot; returns
    /// once it accepts connections. Panics (it is test set-up) when Dovecot
    /// is not installed or does not come up.
    pub fn start() -> Dovecot {
        Dovecot::start_with_capabilities(None, false)
    }

    /// Like [`Dovecot::start`], with an LMTP listener on [`Dovecot::lmtp_port`]
    /// (for an MTA that delivers here). Any recipient `local@domain` lands in
    /// the Maildir of user `local`.
    pub fn start_with_lmtp() -> Dovecot {
        Dovecot::start_with_capabilities(None, true)
    }

    /// Like [`Dovecot::start`], but the server does not advertise these
    /// capabilities (such as `IDLE` or `MOVE`), to test a client's fallbacks.
    pub fn start_without_capabilities(hidden: &[&str]) -> Dovecot {
        let advertised: Vec<&str> = DOVECOT_CAPABILITIES
            .split_whitespace()
            .filter(|capability| !hidden.contains(capability))
            .collect();
        Dovecot::start_with_capabilities(Some(advertised.join(" ")), false)
    }

    fn start_with_capabilities(capabilities: Option<String>, lmtp: bool) -> Dovecot {
        let directory = tempfile::Builder::new()
            .prefix("supportd-dovecot-")
            .tempdir()
            .expect("temp dir for Dovecot");
        // Dovecot's unprivileged processes must reach files in here.
        fs::set_permissions(directory.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        for sub in ["run", "state", "tls", "mail"] {
            fs::create_dir_all(directory.path().join(sub)).expect("create Dovecot dirs");
        }
        std::os::unix::fs::chown(
            directory.path().join("mail"),
            Some(MAIL_UID),
            Some(MAIL_GID),
        )
        .expect("chown mail dir");
        make_certificates(&directory.path().join("tls"));
        let users = directory.path().join("users");
        fs::write(
            &users,
            format!(
                "{SUPPORT_USER}:{{PLAIN}}{SUPPORT_PASSWORD}\n{OTHER_USER}:{{PLAIN}}{OTHER_PASSWORD}\n"
            ),
        )
        .expect("write passwd-file");
        fs::set_permissions(&users, fs::Permissions::from_mode(0o644)).expect("chmod users");
        let introspection = IntrospectionServer::start();

        let mut dovecot = Dovecot {
            directory,
            capabilities,
            child: None,
            plain_port: 0,
            tls_port: 0,
            lmtp_port: 0,
            introspection,
        };
        // A port picked free can be taken before Dovecot binds it: retry.
        for attempt in 0..5 {
            dovecot.plain_port = free_port();
            dovecot.tls_port = free_port();
            if lmtp {
                dovecot.lmtp_port = free_port();
            }
            dovecot.write_config();
            match dovecot.spawn_and_wait() {
                Ok(()) => return dovecot,
                Err(reason) if attempt < 4 && reason.contains("listen") => continue,
                Err(reason) => panic!("Dovecot did not start: {reason}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The LMTP port; 0 unless started with [`Dovecot::start_with_lmtp`].
    pub fn lmtp_port(&self) -> u16 {
        self.lmtp_port
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// The test CA that signed the server's certificate.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.directory.path().join("tls").join("ca.pem")
    }

    pub fn config_path(&self) -> PathBuf {
        self.directory.path().join("dovecot.conf")
    }

    /// Dovecot's own log (logins, errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.directory.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The process id of the master, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Adds a user with a password (Dovecot re-reads the file on change).
    pub fn add_user(&self, user: &str, password: &str) {
        let users = self.directory.path().join("users");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&users)
            .expect("open passwd-file");
        writeln!(file, "{user}:{{PLAIN}}{password}").expect("append user");
    }

    /// A fresh OAuth2 access token that the introspection endpoint will
    /// declare active for `user` until [`Dovecot::revoke_oauth2_token`].
    pub fn issue_oauth2_token(&self, user: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let token = format!(
            "ya29-test-{}-{}-{}",
            std::process::id(),
            self.plain_port,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.introspection
            .tokens
            .lock()
            .expect("token table")
            .insert(token.clone(), user.to_owned());
        token
    }

    pub fn revoke_oauth2_token(&self, token: &str) {
        self.introspection
            .tokens
            .lock()
            .expect("token table")
            .remove(token);
    }

    /// A refresh token the harness's token endpoint accepts once for `user`
    /// (each use rotates it).
    pub fn issue_oauth2_refresh_token(&self, user: &str) -> String {
        let token = unique_token("refresh");
        self.introspection
            .refresh_tokens
            .lock()
            .expect("refresh tokens")
            .insert(token.clone(), user.to_owned());
        token
    }

    /// The harness's OAuth2 token endpoint (refresh grant), plain HTTP on loopback.
    pub fn oauth2_token_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.introspection.port)
    }

    /// How many refresh requests the token endpoint answered.
    pub fn oauth2_token_requests(&self) -> u64 {
        self.introspection.token_requests.load(Ordering::Relaxed)
    }

    /// How many introspection requests Dovecot made (proof that XOAUTH2 went
    /// through the oauth2 passdb).
    pub fn introspection_requests(&self) -> u64 {
        self.introspection.requests.load(Ordering::Relaxed)
    }

    /// Stops Dovecot cleanly (SIGTERM) and starts it again on the same
    /// ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait()
            .unwrap_or_else(|reason| panic!("Dovecot did not restart: {reason}"));
    }

    /// Starts Dovecot again after [`Dovecot::kill`] or a stop.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Dovecot is still running");
        self.spawn_and_wait()
            .unwrap_or_else(|reason| panic!("Dovecot did not start again: {reason}"));
    }

    /// SIGKILLs Dovecot's whole process group (master, login and imap
    /// processes of open sessions alike) and waits until none is left.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals our child's process
        // group, which it leads (spawned with process_group(0)).
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        child.wait().expect("reap Dovecot");
        assert!(
            wait_for_group_exit(group, Duration::from_secs(10)),
            "Dovecot processes of group {group} still alive 10 s after SIGKILL"
        );
    }

    /// Stops Dovecot with SIGTERM (SIGKILL after 10 s), then ends what is
    /// left of its process group: the processes of still-open sessions.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as libc::pid_t;
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(group, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    // SAFETY: as in `kill`.
                    unsafe {
                        libc::kill(-group, libc::SIGKILL);
                    }
                    let _ = child.wait();
                    break;
                }
            }
        }
        // Processes still serving sessions outlive the master by seconds
        // (with the log and stats processes they use): end them now.
        // SAFETY: signals what is left of our child's process group.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        // Not an assert: this also runs in Drop, maybe while unwinding.
        if !wait_for_group_exit(group, Duration::from_secs(10)) {
            eprintln!("Dovecot processes of group {group} still alive 10 s after stopping");
        }
    }

    /// Puts a message into `user`'s INBOX the way a local delivery agent
    /// does: written into `Maildir/tmp/`, then renamed into `new/`.
    pub fn deliver(&self, user: &str, message: &[u8]) {
        self.deliver_to(user, "INBOX", message);
    }

    /// Like [`Dovecot::deliver`], with the given arrival time (a Maildir
    /// message's INTERNALDATE is its file's modification time).
    pub fn deliver_received_at(&self, user: &str, message: &[u8], received: SystemTime) {
        let path = self.deliver_to(user, "INBOX", message);
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(received))
            .expect("set the arrival time");
    }

    /// Like [`Dovecot::deliver`], into another folder (created if missing).
    /// Returns the file's path in `new/`.
    pub fn deliver_to(&self, user: &str, folder: &str, message: &[u8]) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let maildir = self.maildir(user, folder);
        let unique = format!(
            "{}.M{}P{}Q{}.supportd-test",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs())
                .unwrap_or(0),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.subsec_micros())
                .unwrap_or(0),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temporary = maildir.join("tmp").join(&unique);
        fs::write(&temporary, message).expect("write message into Maildir/tmp");
        std::os::unix::fs::chown(&temporary, Some(MAIL_UID), Some(MAIL_GID))
            .expect("chown message");
        let delivered = maildir.join("new").join(&unique);
        fs::rename(&temporary, &delivered).expect("rename message into Maildir/new");
        delivered
    }

    /// The Maildir of `user`'s `folder` (Maildir++: `.Folder`), created with
    /// the right owner if missing.
    pub fn maildir(&self, user: &str, folder: &str) -> PathBuf {
        let home = self.directory.path().join("mail").join(user);
        let root = home.join("Maildir");
        let maildir = if folder.eq_ignore_ascii_case("INBOX") {
            root.clone()
        } else {
            root.join(format!(".{folder}"))
        };
        for path in [&home, &root, &maildir] {
            if !path.exists() {
                fs::create_dir_all(path).expect("create Maildir");
                std::os::unix::fs::chown(path, Some(MAIL_UID), Some(MAIL_GID))
                    .expect("chown Maildir");
            }
        }
        for sub in ["cur", "new", "tmp"] {
            let path = maildir.join(sub);
            if !path.exists() {
                fs::create_dir(&path).expect("create Maildir subdir");
                std::os::unix::fs::chown(&path, Some(MAIL_UID), Some(MAIL_GID))
                    .expect("chown Maildir subdir");
            }
        }
        if maildir != root {
            let marker = maildir.join("maildirfolder");
            if !marker.exists() {
                fs::write(&marker, b"").expect("maildirfolder marker");
                std::os::unix::fs::chown(&marker, Some(MAIL_UID), Some(MAIL_GID))
                    .expect("chown marker");
            }
        }
        maildir
    }

    /// `doveadm -c OUR_CONFIG ARGS`; panics when it fails. Returns stdout.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let output = Command::new("doveadm")
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run doveadm");
        assert!(
            output.status.success(),
            "doveadm {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// One `doveadm mailbox status` field (`uidvalidity`, `uidnext`, `messages`).
    pub fn mailbox_status(&self, user: &str, folder: &str, field: &str) -> u64 {
        let output = self.doveadm(&["mailbox", "status", "-u", user, field, folder]);
        output
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{field}=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in doveadm output: {output}"))
    }

    /// Whether `folder` exists for `user`.
    pub fn folder_exists(&self, user: &str, folder: &str) -> bool {
        self.doveadm(&["mailbox", "list", "-u", user])
            .lines()
            .any(|line| line.trim() == folder)
    }

    /// UID and flags of every message in `folder`, in UID order.
    pub fn flags(&self, user: &str, folder: &str) -> Vec<(u32, String)> {
        let output = self.doveadm(&["fetch", "-u", user, "uid flags", "mailbox", folder]);
        let mut result = Vec::new();
        let mut uid = None;
        for line in output.lines() {
            if let Some(value) = line.strip_prefix("uid: ") {
                uid = value.trim().parse::<u32>().ok();
            } else if let Some(value) = line.strip_prefix("flags: ") {
                if let Some(uid) = uid.take() {
                    result.push((uid, value.trim().to_owned()));
                }
            } else if line.trim() == "flags:"
                && let Some(uid) = uid.take()
            {
                result.push((uid, String::new()));
            }
        }
        result.sort();
        result
    }

    /// Gives `folder` a new UIDVALIDITY, as when a server rebuilds or a
    /// person deletes and recreates a folder: the messages stay (same bytes)
    /// but get new UIDs. INBOX cannot be deleted, so it is emptied and its
    /// UIDVALIDITY raised instead.
    pub fn recreate_folder(&self, user: &str, folder: &str) {
        let maildir = self.maildir(user, folder);
        let mut messages = Vec::new();
        for sub in ["cur", "new"] {
            let mut paths: Vec<PathBuf> = fs::read_dir(maildir.join(sub))
                .expect("read Maildir")
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            paths.sort();
            for path in paths {
                messages.push(fs::read(&path).expect("read message"));
            }
        }
        let old_uidvalidity = self.mailbox_status(user, folder, "uidvalidity");
        if folder.eq_ignore_ascii_case("INBOX") {
            self.doveadm(&["expunge", "-u", user, "mailbox", folder, "all"]);
            let new_uidvalidity = (old_uidvalidity + 1).to_string();
            self.doveadm(&[
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                &new_uidvalidity,
                folder,
            ]);
        } else {
            self.doveadm(&["mailbox", "delete", "-u", user, folder]);
            self.doveadm(&["mailbox", "create", "-u", user, folder]);
        }
        for message in messages {
            self.deliver_to(user, folder, &message);
        }
        let new_uidvalidity = self.mailbox_status(user, folder, "uidvalidity");
        assert_ne!(
            old_uidvalidity, new_uidvalidity,
            "recreating {folder} did not change its UIDVALIDITY"
        );
    }

    fn write_config(&self) {
        let dir = self.directory.path().display().to_string();
        let instance = self
            .directory
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "supportd-dovecot".to_owned());
        let introspection_port = self.introspection.port;
        let oauth2 = format!(
            "introspection_mode = post\n\
             introspection_url = http://127.0.0.1:{introspection_port}/introspect\n\
             force_introspection = yes\n\
             username_attribute = username\n\
             active_attribute = active\n\
             active_value = true\n"
        );
        let oauth2_path = self.directory.path().join("oauth2.conf.ext");
        fs::write(&oauth2_path, oauth2).expect("write oauth2 config");
        fs::set_permissions(&oauth2_path, fs::Permissions::from_mode(0o644))
            .expect("chmod oauth2 config");
        let plain_port = self.plain_port;
        let tls_port = self.tls_port;
        let (protocols, lmtp_service) = if self.lmtp_port == 0 {
            ("imap", String::new())
        } else {
            (
                "imap lmtp",
                format!(
                    "service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {}\n  }}\n}}\n",
                    self.lmtp_port
                ),
            )
        };
        let capabilities = self
            .capabilities
            .as_ref()
            .map(|capabilities| format!("imap_capability = {capabilities}\n"))
            .unwrap_or_default();
        let config = format!(
            r#"# Written by the supportd test harness; every path is under {dir}.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = {instance}
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
listen = 127.0.0.1
protocols = {protocols}
ssl = yes
ssl_cert = <{dir}/tls/server.pem
ssl_key = <{dir}/tls/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
first_valid_uid = {MAIL_UID}
mail_location = maildir:~/Maildir
mail_fsync = never
{capabilities}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/users
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_GID} home={dir}/mail/%n allow_all_users=yes
}}
# Every test client is 127.0.0.1: without this, one failed login (a test of
# refusal) would delay every later login from loopback by 2 s and more.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {plain_port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
{lmtp_service}"#
        );
        let path = self.config_path();
        fs::write(&path, config).expect("write dovecot.conf");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod conf");
    }

    /// Spawns `dovecot -F` in its own process group and waits until both
    /// listeners accept; on failure returns the reason from Dovecot's output.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let output_path = self.directory.path().join("dovecot.out");
        let output = fs::File::create(&output_path).map_err(|error| error.to_string())?;
        let errors = output.try_clone().map_err(|error| error.to_string())?;
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .spawn()
            .map_err(|error| {
                format!("cannot run dovecot ({error}); install dovecot-imapd (see .ci/run)")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let listening = [self.plain_port, self.tls_port, self.lmtp_port]
                .iter()
                .filter(|port| **port != 0)
                .all(|port| TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok());
            if listening {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let reason = format!(
                    "dovecot exited with {status}: {}{}",
                    fs::read_to_string(&output_path).unwrap_or_default(),
                    self.log()
                );
                return Err(reason);
            }
            if Instant::now() > deadline {
                let reason = format!("no listener after 15 s: {}", self.log());
                self.kill();
                return Err(reason);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
        self.introspection.stop();
    }
}

/// What Dovecot 2.3 advertises after login, for `imap_capability`.
const DOVECOT_CAPABILITIES: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE";

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free loopback port")
}

/// Waits until no live (non-zombie) process is left in `group`: PID 1
/// reaps orphans only every second or two, and a zombie holds no port.
/// False if some are still alive at the deadline.
pub(crate) fn wait_for_group_exit(group: libc::pid_t, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !group_has_live_process(group) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn group_has_live_process(group: libc::pid_t) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some(after_comm) = stat.rfind(')').map(|index| &stat[index + 1..]) else {
            return false;
        };
        let mut fields = after_comm.split_whitespace();
        let state = fields.next();
        let process_group = fields.nth(1).and_then(|value| value.parse::<i32>().ok());
        process_group == Some(group) && state != Some("Z") && state != Some("X")
    })
}

/// A test CA and a leaf for localhost/127.0.0.1 (CA:FALSE, serverAuth):
/// rustls rejects a self-signed CA certificate used as a server's.
fn make_certificates(directory: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(directory)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl (install the openssl package)");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    fs::write(
        directory.join("leaf.cnf"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write leaf extensions");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3",
        "-subj",
        "/CN=supportd test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "3",
        "-extfile",
        "leaf.cnf",
    ]);
}

/// A minimal OAuth2 token introspection endpoint (RFC 7662) for Dovecot's
/// oauth2 passdb: `POST /introspect` with `token=...` answers
/// `{"active": true, "username": USER}` for tokens issued by the harness.
struct IntrospectionServer {
    port: u16,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    /// Refresh tokens the token endpoint accepts, with their user.
    refresh_tokens: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<AtomicU64>,
    token_requests: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IntrospectionServer {
    fn start() -> IntrospectionServer {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind introspection endpoint");
        let port = listener.local_addr().expect("local address").port();
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let refresh_tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let requests: Arc<AtomicU64> = Arc::default();
        let token_requests: Arc<AtomicU64> = Arc::default();
        let stopping: Arc<AtomicBool> = Arc::default();
        let thread = {
            let tokens = Arc::clone(&tokens);
            let refresh_tokens = Arc::clone(&refresh_tokens);
            let requests = Arc::clone(&requests);
            let token_requests = Arc::clone(&token_requests);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let endpoints = Endpoints {
                            tokens: &tokens,
                            refresh_tokens: &refresh_tokens,
                            introspections: &requests,
                            token_requests: &token_requests,
                        };
                        let _ = answer_oauth2(stream, &endpoints);
                    }
                }
            })
        };
        IntrospectionServer {
            port,
            tokens,
            refresh_tokens,
            requests,
            token_requests,
            stopping,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A token no other test or call has: prefix, process, a counter.
fn unique_token(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the harness's OAuth2 server knows and counts.
struct Endpoints<'a> {
    tokens: &'a Mutex<HashMap<String, String>>,
    refresh_tokens: &'a Mutex<HashMap<String, String>>,
    introspections: &'a AtomicU64,
    token_requests: &'a AtomicU64,
}

/// `POST /introspect` (RFC 7662, for Dovecot) and `POST /token` (RFC 6749
/// §6 refresh grant, for supportd): a refresh token is good once; each use
/// issues an access token and rotates the refresh token, as Microsoft does.
fn answer_oauth2(stream: TcpStream, endpoints: &Endpoints<'_>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut content_length = 0usize;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body);
    let field = |name: &str| {
        body.split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let (status, json) = if request_line.contains(" /token ") {
        endpoints.token_requests.fetch_add(1, Ordering::Relaxed);
        let user = endpoints
            .refresh_tokens
            .lock()
            .expect("refresh tokens")
            .remove(&field("refresh_token"));
        match (user, field("grant_type").as_str()) {
            (Some(user), "refresh_token") => {
                let access = unique_token("access");
                let refresh = unique_token("refresh");
                endpoints
                    .tokens
                    .lock()
                    .expect("token table")
                    .insert(access.clone(), user.clone());
                endpoints
                    .refresh_tokens
                    .lock()
                    .expect("refresh tokens")
                    .insert(refresh.clone(), user);
                (
                    "200 OK",
                    format!(
                        r#"{{"token_type": "Bearer", "access_token": "{access}", "expires_in": 3600, "refresh_token": "{refresh}"}}"#
                    ),
                )
            }
            _ => (
                "400 Bad Request",
                r#"{"error": "invalid_grant", "error_description": "refresh token revoked"}"#
                    .to_owned(),
            ),
        }
    } else {
        endpoints.introspections.fetch_add(1, Ordering::Relaxed);
        let token = field("token");
        let user = endpoints
            .tokens
            .lock()
            .expect("token table")
            .get(&token)
            .cloned();
        let json = match user {
            Some(user) => format!(r#"{{"active": true, "username": "{user}"}}"#),
            None => r#"{"active": false}"#.to_owned(),
        };
        ("200 OK", json)
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )?;
    stream.flush()
}
