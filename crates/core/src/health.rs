//! What each mail source (an IMAP mailbox) last reported about itself, shared
//! between the task that runs it and the `/readyz` and `/metrics` handlers.
//!
//! A source promises, at every report, when it will next prove alive
//! (`must_sync_by`): after a completed sync it is the IDLE or poll interval
//! plus a grace; while it backs off, the end of the backoff plus a grace. A
//! source past its promise is hung or failing for good, and `/readyz` says so,
//! even though no error was ever logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Where a source is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Started, not yet connected.
    Starting,
    /// Connected and synced (or waiting in IDLE).
    Connected,
    /// Failed; waiting to reconnect.
    Backoff,
    /// Another instance holds the mailbox's lease and polls it; this one
    /// checks the lease every few seconds, ready to take over. Healthy as
    /// long as it keeps checking.
    Standby,
}

impl SourceState {
    pub fn slug(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Connected => "connected",
            SourceState::Backoff => "backoff",
            SourceState::Standby => "standby",
        }
    }
}

/// One source's last report. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    pub state: SourceState,
    /// The last completed sync (every folder brought up to date).
    pub last_sync_at: Option<i64>,
    /// The source is unhealthy if it has not synced again by then.
    pub must_sync_by: i64,
    /// The last failure, as logged (no secrets: errors never carry them).
    pub last_error: Option<String>,
    /// The server refused the credentials: waiting will not fix it.
    pub credentials_refused: bool,
    /// When the OAuth2 access token in use expires, when known.
    pub token_expires_at: Option<i64>,
}

impl SourceHealth {
    /// Healthy at `now`: not refused, and its promise not broken.
    pub fn is_healthy(&self, now: i64) -> bool {
        !self.credentials_refused && now <= self.must_sync_by
    }
}

/// Every source's last report, by name. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SourceBoard {
    sources: Arc<Mutex<BTreeMap<String, SourceHealth>>>,
}

impl SourceBoard {
    pub fn new() -> SourceBoard {
        SourceBoard::default()
    }

    /// Registers `name` as starting; it must first sync by `must_sync_by`.
    pub fn register(&self, name: &str, must_sync_by: i64) {
        self.lock().insert(
            name.to_owned(),
            SourceHealth {
                state: SourceState::Starting,
                last_sync_at: None,
                must_sync_by,
                last_error: None,
                credentials_refused: false,
                token_expires_at: None,
            },
        );
    }

    /// Changes `name`'s report (registered first if needed).
    pub fn update(&self, name: &str, change: impl FnOnce(&mut SourceHealth)) {
        let mut sources = self.lock();
        let health = sources
            .entry(name.to_owned())
            .or_insert_with(|| SourceHealth {
                state: SourceState::Starting,
                last_sync_at: None,
                must_sync_by: i64::MAX,
                last_error: None,
                credentials_refused: false,
                token_expires_at: None,
            });
        change(health);
    }

    /// Every report, ordered by name.
    pub fn snapshot(&self) -> Vec<(String, SourceHealth)> {
        self.lock()
            .iter()
            .map(|(name, health)| (name.clone(), health.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SourceHealth>> {
        // A panic while holding the lock leaves plain data: still readable.
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_healthy_until_its_promise_or_a_refusal() {
        let board = SourceBoard::new();
        board.register("support", 100);
        let health = |board: &SourceBoard| board.snapshot()[0].1.clone();
        assert!(health(&board).is_healthy(100));
        assert!(!health(&board).is_healthy(101), "a silent hang shows");

        board.update("support", |health| {
            health.state = SourceState::Connected;
            health.last_sync_at = Some(150);
            health.must_sync_by = 300;
        });
        assert!(health(&board).is_healthy(200));

        board.update("support", |health| {
            health.state = SourceState::Backoff;
            health.credentials_refused = true;
        });
        assert!(
            !health(&board).is_healthy(200),
            "refused credentials show at once"
        );
    }

    #[test]
    fn a_standby_source_is_healthy_while_it_keeps_checking() {
        let board = SourceBoard::new();
        board.register("support", 100);
        board.update("support", |health| {
            health.state = SourceState::Standby;
            health.must_sync_by = 130;
        });
        let health = board.snapshot()[0].1.clone();
        assert_eq!(health.state.slug(), "standby");
        assert!(health.is_healthy(120), "standing by is not a failure");
        assert!(
            !health.is_healthy(131),
            "a standby that stops checking shows"
        );
    }

    #[test]
    fn snapshot_is_ordered_by_name() {
        let board = SourceBoard::new();
        board.register("b", 1);
        board.register("a", 1);
        board.update("c", |health| health.must_sync_by = 5);
        let names: Vec<String> = board.snapshot().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(board.snapshot()[2].1.state, SourceState::Starting);
    }
}
