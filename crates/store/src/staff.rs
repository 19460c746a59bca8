//! Staff accounts, browser sessions and API tokens: the records the web crate
//! authenticates against. The store keeps only hashes; hashing (argon2 for
//! passwords, SHA-256 for session ids and tokens) is the caller's.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a staff account or API token may do. Stored as its slug, guarded by a CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Reads everything and acts on tickets (status changes, later replies).
    Staff,
    /// Reads everything, changes nothing.
    ReadOnly,
}

impl StaffRole {
    pub const ALL: [StaffRole; 2] = [StaffRole::Staff, StaffRole::ReadOnly];

    pub fn slug(self) -> &'static str {
        match self {
            StaffRole::Staff => "staff",
            StaffRole::ReadOnly => "read_only",
        }
    }

    /// True when the role may change tickets.
    pub fn may_act(self) -> bool {
        self == StaffRole::Staff
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A role slug the store does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected staff or read_only)")]
pub struct ParseStaffRoleError(String);

impl FromStr for StaffRole {
    type Err = ParseStaffRoleError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let normalised = value.replace('-', "_");
        StaffRole::ALL
            .into_iter()
            .find(|role| role.slug() == normalised)
            .ok_or_else(|| ParseStaffRoleError(value.to_owned()))
    }
}

/// A staff account as stored, for checking a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccount {
    pub id: i64,
    /// The login, and the actor of the audit events this person causes.
    pub name: String,
    pub role: StaffRole,
    /// argon2 PHC string; compared by the caller, never shown.
    pub password_hash: String,
}

/// Who a live session or an API token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The staff login or the API token's name.
    pub name: String,
    pub role: StaffRole,
}

/// A session to store at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 hex of the session id the cookie carries.
    pub id_hash: String,
    pub staff_id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the session is refused from then on.
    pub expires_at: i64,
}
