//! A real Postfix 3.7 on loopback, one per test, delivering every mail over
//! LMTP into a Dovecot ([`super::Dovecot::start_with_lmtp`]): its own config
//! directory, queue and log under a temp dir, smtpd on a free loopback port.
//!
//! A catch-all alias sends every recipient to [`SINK_USER`], so a test reads
//! all delivered mail from one Maildir ([`Postfix::delivered`]). Recipients
//! whose local part starts with `reject-` are refused at RCPT with a 550.
//! smtpd offers STARTTLS on [`Postfix::port`] and implicit TLS on
//! [`Postfix::tls_port`], with the Dovecot's test certificate.
//! Facts behind the choices: `shared/notes/mail-servers.md`.

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Dovecot;
use super::dovecot::{free_port, wait_for_group_exit};

/// The Dovecot user every mail is delivered to.
pub const SINK_USER: &str = "sink";

/// A configured Postfix; [`Postfix::start`] runs it. Dropping it stops it.
pub struct Postfix {
    directory: tempfile::TempDir,
    port: u16,
    tls_port: u16,
    child: Option<Child>,
}

impl Postfix {
    /// Writes the configuration for a server on a free port, delivering
    /// into `dovecot`'s LMTP listener, without starting it (a test of an
    /// outage starts it later on the same port).
    pub fn configure(dovecot: &Dovecot) -> Postfix {
        assert_ne!(dovecot.lmtp_port(), 0, "start Dovecot with start_with_lmtp");
        let directory = tempfile::Builder::new()
            .prefix("supportd-postfix-")
            .tempdir()
            .expect("temp dir for Postfix");
        let dir = directory.path();
        for sub in ["etc", "queue", "data"] {
            fs::create_dir_all(dir.join(sub)).expect("create Postfix dirs");
        }
        let chown = Command::new("chown")
            .args(["postfix:postfix"])
            .arg(dir.join("data"))
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown postfix data dir");
        let port = free_port();
        let tls_port = free_port();
        let tls = dovecot.directory().join("tls");
        let tls = tls.display();
        let lmtp = format!("lmtp:inet:127.0.0.1:{}", dovecot.lmtp_port());
        let d = dir.display();
        fs::write(
            dir.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {d}/queue\n\
                 data_directory = {d}/data\n\
                 maillog_file = {d}/maillog\n\
                 maillog_file_prefixes = {d}, /var, /dev/stdout\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 myhostname = localhost\n\
                 mydestination =\n\
                 local_recipient_maps =\n\
                 alias_maps =\n\
                 alias_database =\n\
                 relay_domains =\n\
                 virtual_alias_domains =\n\
                 virtual_alias_maps = regexp:{d}/etc/catchall\n\
                 default_transport = {lmtp}\n\
                 relay_transport = {lmtp}\n\
                 virtual_transport = {lmtp}\n\
                 mynetworks = 127.0.0.0/8\n\
                 smtpd_recipient_restrictions = check_recipient_access regexp:{d}/etc/reject, permit_mynetworks, reject_unauth_destination\n\
                 smtputf8_enable = no\n\
                 minimal_backoff_time = 1s\n\
                 maximal_backoff_time = 2s\n\
                 queue_run_delay = 1s\n\
                 smtpd_banner = $myhostname ESMTP\n\
                 smtpd_tls_cert_file = {tls}/server.pem\n\
                 smtpd_tls_key_file = {tls}/server.key\n\
                 smtpd_tls_security_level = may\n\
                 smtpd_tls_loglevel = 1\n"
            ),
        )
        .expect("write main.cf");
        fs::write(
            dir.join("etc/catchall"),
            format!("/^.*$/ {SINK_USER}@sink.test\n"),
        )
        .expect("write catch-all");
        fs::write(
            dir.join("etc/reject"),
            "/^reject-/ 550 5.1.1 Recipient address rejected: mailbox unavailable\n",
        )
        .expect("write reject map");
        let master = fs::read_to_string("/etc/postfix/master.cf")
            .expect("read /etc/postfix/master.cf (install postfix, see .ci/run)");
        let master: String = master
            .lines()
            .map(|line| {
                if line.starts_with("smtp ") && line.contains(" inet ") {
                    format!(
                        "127.0.0.1:{port} inet n - n - - smtpd\n\
                         127.0.0.1:{tls_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
                    )
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        fs::write(dir.join("etc/master.cf"), master + "\n").expect("write master.cf");
        let postconf = Command::new("postconf")
            .arg("-c")
            .arg(dir.join("etc"))
            .args(["-F", "*/*/chroot = n"])
            .status()
            .expect("run postconf");
        assert!(postconf.success(), "postconf -F chroot");
        // A config file modified "now" costs Postfix about 2 s at start.
        for file in ["main.cf", "master.cf"] {
            let _ = Command::new("touch")
                .args(["-d", "-1 minute"])
                .arg(dir.join("etc").join(file))
                .status();
        }
        Postfix {
            directory,
            port,
            tls_port,
            child: None,
        }
    }

    /// Configures and starts one.
    pub fn start(dovecot: &Dovecot) -> Postfix {
        let mut postfix = Postfix::configure(dovecot);
        postfix.run();
        postfix
    }

    /// The smtpd port (SMTP on 127.0.0.1, STARTTLS offered with the
    /// certificate of the Dovecot it delivers to, signed by its test CA).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The smtpd port with implicit TLS (submissions style), same certificate.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Postfix's own log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.directory.path().join("maillog")).unwrap_or_default()
    }

    /// Starts `postfix start-fg` in its own process group; returns once
    /// smtpd accepts connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "Postfix is running");
        let output = fs::File::create(self.directory.path().join("postfix.out")).expect("log");
        let errors = output.try_clone().expect("log");
        let child = Command::new("postfix")
            .arg("-c")
            .arg(self.directory.path().join("etc"))
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .spawn()
            .expect("run postfix (install postfix, see .ci/run)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "postfix exited with {status}: {}{}",
                    fs::read_to_string(self.directory.path().join("postfix.out"))
                        .unwrap_or_default(),
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Postfix not listening after 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops Postfix and everything in its process group.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as libc::pid_t;
        // SAFETY: signals our own child, the leader of its process group.
        unsafe {
            libc::kill(group, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: what is left of our child's process group.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = child.wait();
        if !wait_for_group_exit(group, Duration::from_secs(10)) {
            eprintln!("Postfix processes of group {group} still alive 10 s after stopping");
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every message delivered to the sink so far (new/ and cur/), oldest file first.
pub fn delivered(dovecot: &Dovecot) -> Vec<Vec<u8>> {
    let maildir: PathBuf = dovecot
        .directory()
        .join("mail")
        .join(SINK_USER)
        .join("Maildir");
    let mut paths: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| fs::read_dir(maildir.join(sub)).ok())
        .flat_map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| fs::read(path).ok())
        .collect()
}
