//! A throwaway PostgreSQL cluster of one test's own: `initdb` into a temp dir
//! and `pg_ctl` on a free loopback port, so the test may stop it (`pg_ctl
//! stop -m immediate`, the crash a power cut or an OOM kill causes) and start
//! it again on the same data and port. The shared server on 5432
//! ([`super::PostgresDatabase`]) is never touched.
//!
//! `initdb` refuses to run as root: as root (CI), every PostgreSQL command
//! runs as the `postgres` user (`runuser`) in a temp dir it owns. The binaries
//! are found under `/usr/lib/postgresql/*/bin` (Debian), newest version first,
//! else on `PATH`.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The superuser of the cluster, and the database the tests use.
const SUPERUSER: &str = "postgres";
const DATABASE: &str = "supportd";

/// A running (or stopped) cluster; dropping it stops it and removes its files.
pub struct PostgresCluster {
    directory: tempfile::TempDir,
    /// Where `initdb`, `pg_ctl` and `postgres` live.
    bin: PathBuf,
    port: u16,
    /// Whether commands run as the `postgres` user (we are root).
    as_postgres_user: bool,
    running: bool,
}

impl PostgresCluster {
    /// `initdb` (trust authentication, loopback only) and start; creates the
    /// database `supportd`. Panics (test set-up) when PostgreSQL is missing.
    pub fn start() -> PostgresCluster {
        let bin = server_binaries();
        let directory = tempfile::tempdir().expect("temp dir for the cluster");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(directory.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the cluster dir to postgres");
        }
        std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod the cluster dir");
        let port = free_port();
        let mut cluster = PostgresCluster {
            directory,
            bin,
            port,
            as_postgres_user,
            running: false,
        };
        let data = cluster.data_dir();
        let output = cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.start_again();
        cluster.psql("postgres", &format!("CREATE DATABASE {DATABASE}"));
        cluster
    }

    /// `postgres://postgres@127.0.0.1:PORT/supportd`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `pg_ctl stop -m immediate`: every server process ends at once, with
    /// no checkpoint (recovery replays the WAL at the next start), and
    /// clients see their connections cut. Returns once the server is gone.
    pub fn stop_immediately(&mut self) {
        let output = self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "immediate",
                "-w",
            ],
        );
        assert!(
            output.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.running = false;
    }

    /// Starts the cluster (again) on the same data and port; returns once it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(!self.running, "the cluster is running");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c max_connections=50",
            self.port,
            path_str(self.directory.path())
        );
        let log = self.directory.path().join("server.log");
        let output = self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&self.data_dir()),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
            ],
        );
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
        let started = Instant::now();
        while !self.accepts_connections() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster does not accept connections:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when a query on the cluster (its `postgres` database) succeeds.
    pub fn accepts_connections(&self) -> bool {
        let url = format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port);
        Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-d", &url, "-c", "SELECT 1"])
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// Runs `sql` on the test database; its rows, one line each, fields
    /// separated by `|`.
    pub fn query(&self, sql: &str) -> String {
        self.psql(DATABASE, sql)
    }

    /// Runs a query on the test database answering one number.
    pub fn count(&self, sql: &str) -> u64 {
        let answer = self.psql(DATABASE, sql);
        answer
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql} answered {answer:?}, not a number"))
    }

    /// `psql -tA -c SQL` on `database` of this cluster.
    fn psql(&self, database: &str, sql: &str) -> String {
        let url = format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port);
        super::postgres::psql(&url, sql)
    }

    fn data_dir(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    /// Runs PostgreSQL program `program` with `args`, as `postgres` when root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            // The server's working directory must be readable by its user.
            .current_dir(self.directory.path())
            .output()
            .unwrap_or_else(|error| panic!("run {}: {error}", program.display()))
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.run(
                "pg_ctl",
                &[
                    "stop",
                    "-D",
                    path_str(&self.data_dir()),
                    "-m",
                    "immediate",
                    "-w",
                ],
            );
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, else the
/// directory of `initdb` on `PATH`.
fn server_binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .expect("run sh");
    let initdb = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(
        !initdb.is_empty(),
        "no initdb under /usr/lib/postgresql/*/bin or on PATH (install postgresql)"
    );
    Path::new(&initdb)
        .parent()
        .expect("initdb has a directory")
        .to_path_buf()
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}
