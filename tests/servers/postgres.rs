//! A fresh database per test on the loopback PostgreSQL (trust auth on
//! 127.0.0.1:5432, or `SUPPORTD_TEST_POSTGRES_URL`), dropped when the test
//! ends. Created and read with `psql`, as an operator would.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// One database of its own; dropped (connections and all) on drop.
pub struct PostgresDatabase {
    name: String,
    admin_url: String,
    url: String,
}

impl PostgresDatabase {
    /// Creates an empty database named after the test process and a counter.
    pub fn create() -> PostgresDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = std::env::var("SUPPORTD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!(
            "supportd_it_{}_{}_{:06x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.subsec_micros())
                .unwrap_or(0)
        );
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("SUPPORTD_TEST_POSTGRES_URL ends with /DATABASE");
        let url = format!("{server}/{name}");
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        PostgresDatabase {
            name,
            admin_url,
            url,
        }
    }

    /// `postgres://…/<this database>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `sql` and returns its rows, one line each, fields separated by `|`.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }

    /// Runs a query answering one number.
    pub fn count(&self, sql: &str) -> u64 {
        let answer = self.query(sql);
        answer
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql} answered {answer:?}, not a number"))
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin_url, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// `psql -tA -c SQL` on `url`; panics with psql's message on failure.
pub(crate) fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql (install postgresql-client, see .ci/run)");
    assert!(
        output.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 from psql")
}
